#include "report/study_data.h"

#include <algorithm>
#include <type_traits>

#include <fmt/format.h>

#include "common/error.h"

namespace lmsweep::report {

std::vector<std::string> study_objectives(const db::StudyInfo& st) {
  const auto config = nlohmann::json::parse(st.config_json.empty() ? "{}" : st.config_json, nullptr, false);
  if (config.is_object() && config.contains("objectives") && config["objectives"].is_array() &&
      config["objectives"].size() >= 2)
    return config["objectives"].get<std::vector<std::string>>();
  return {st.objective.empty() ? "map" : st.objective};
}

namespace {

std::string study_names(db::Store& store) {
  std::string names;
  for (const auto& st : store.list_studies()) names += (names.empty() ? "" : ", ") + st.name;
  return names;
}

db::StudyInfo select_study(db::Store& store, const std::optional<std::string>& name) {
  if (name) {
    if (auto s = store.find_study(*name)) return *s;
    const auto names = study_names(store);
    throw_error("{}: no study named '{}'{}", store.path(), *name,
                names.empty() ? " (the database has none)" : "; studies: " + names);
  }
  const auto all = store.list_studies();
  LMSWEEP_CHECK(!all.empty(), "{}: the database holds no study yet", store.path());
  LMSWEEP_CHECK(all.size() == 1, "{}: the database holds {} studies ({}): choose one with --study", store.path(),
                all.size(), study_names(store));
  return all.front();
}

}  // namespace

StudyData load_study(db::Store& store, const std::optional<std::string>& name) {
  StudyData d;
  d.study = select_study(store, name);
  const auto space = nlohmann::json::parse(d.study.space_json.empty() ? "{}" : d.study.space_json);
  if (!space.empty()) d.space = sweep::SearchSpace::from_json(space);
  d.objectives = study_objectives(d.study);
  for (auto& info : store.trials(d.study.id)) {
    TrialData t;
    t.params = nlohmann::json::parse(info.params_json.empty() ? "{}" : info.params_json);
    t.epochs = store.epochs(info.id);
    t.info = std::move(info);
    d.trials.push_back(std::move(t));
  }
  return d;
}

const db::EpochRecord* best_epoch(const TrialData& trial, const std::string& objective) {
  const bool maximize = db::objective_maximized(objective);
  const db::EpochRecord* best = nullptr;
  double best_value = 0;
  for (const auto& e : trial.epochs) {
    const auto v = db::epoch_value(e, objective);
    if (!v) continue;
    if (best == nullptr || (maximize ? *v > best_value : *v < best_value)) {
      best = &e;
      best_value = *v;
    }
  }
  return best;
}

namespace {

template <typename T>
std::vector<T> list_of(const nlohmann::json& j, const char* key) {
  std::vector<T> out;
  if (!j.is_object() || !j.contains(key) || !j[key].is_array()) return out;
  for (const auto& v : j[key]) {
    if constexpr (std::is_same_v<T, std::string>) out.push_back(v.is_string() ? v.get<std::string>() : v.dump());
    else out.push_back(v.is_number() ? v.get<T>() : T{});
  }
  return out;
}

nlohmann::json metrics_of(const db::EpochRecord& e) {
  return nlohmann::json::parse(e.metrics_json.empty() ? "{}" : e.metrics_json, nullptr, false);
}

}  // namespace

std::optional<ClassMetrics> class_metrics(db::Store& store, const TrialData& trial, const db::EpochRecord& epoch) {
  ClassMetrics m;
  m.ap = store.class_ap(trial.info.id, epoch.epoch);
  if (m.ap.empty()) return std::nullopt;
  const size_t c = m.ap.size();
  const auto j = metrics_of(epoch);
  m.precision = list_of<double>(j, "precision");
  m.recall = list_of<double>(j, "recall");
  m.f1 = list_of<double>(j, "f1");
  if (m.precision.size() != c || m.recall.size() != c || m.f1.size() != c) m.precision.clear(), m.recall.clear(), m.f1.clear();
  for (const auto& e : trial.epochs) {
    const auto first = metrics_of(e);
    auto names = list_of<std::string>(first, "class_names");
    auto counts = list_of<int64_t>(first, "class_train_count");
    if (names.size() == c && m.names.empty()) m.names = std::move(names);
    if (counts.size() == c && m.train_count.empty()) m.train_count = std::move(counts);
  }
  if (m.names.empty())
    for (size_t k = 0; k < c; ++k) m.names.push_back(fmt::format("class {}", k));
  return m;
}

bool lmclip_maps(const std::vector<std::string>& metrics) {
  return std::all_of(metrics.begin(), metrics.end(),
                     [](const std::string& m) { return m.rfind("map", 0) == 0 && db::is_objective(m); });
}

std::vector<const TrialData*> ranked_trials(const StudyData& data) {
  const std::string& objective = data.objective();
  std::vector<std::pair<double, const TrialData*>> valued;
  for (const auto* t : trials_with(data, objective))
    valued.emplace_back(*db::epoch_value(*best_epoch(*t, objective), objective), t);
  const bool max = db::objective_maximized(objective);
  std::stable_sort(valued.begin(), valued.end(),
                   [&](const auto& a, const auto& b) { return max ? a.first > b.first : a.first < b.first; });
  std::vector<const TrialData*> out;
  for (const auto& [v, t] : valued) out.push_back(t);
  return out;
}

std::vector<const TrialData*> trials_with(const StudyData& data, const std::string& objective) {
  std::vector<const TrialData*> out;
  for (const auto& t : data.trials)
    if (best_epoch(t, objective) != nullptr) out.push_back(&t);
  return out;
}

}  // namespace lmsweep::report
