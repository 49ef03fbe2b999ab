#include "export/optuna_journal.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "common/error.h"
#include "common/files.h"

namespace lmsweep {

namespace {

using nlohmann::json;
using sweep::Dimension;
using sweep::Distribution;

// optuna/storages/_journal/storage.py JournalOperation; optuna/trial/_state.py TrialState;
// optuna/study/_study_direction.py StudyDirection.
enum Op { kCreateStudy = 0, kSetStudyUserAttr = 2, kCreateTrial = 4 };
enum State { kRunning = 0, kComplete = 1, kPruned = 2, kFail = 3, kWaiting = 4 };
constexpr int kMinimize = 1, kMaximize = 2;

// datetime.isoformat(timespec="microseconds") of a UTC datetime, as Optuna >= 4 writes it;
// datetime.fromisoformat reads it in every Python 3.7+.
std::string iso_utc(double unix_seconds) {
  auto whole = static_cast<std::time_t>(std::floor(unix_seconds));
  auto micros = static_cast<long>(std::llround((unix_seconds - static_cast<double>(whole)) * 1e6));
  if (micros >= 1000000) {
    ++whole;
    micros -= 1000000;
  }
  std::tm tm{};
  gmtime_r(&whole, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+00:00", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
}

// optuna.distributions.distribution_to_json: a JSON *string* {"name": class, "attributes": ...}.
std::string distribution_json(const Dimension& d) {
  json j;
  switch (d.dist) {
    case Distribution::Uniform:
    case Distribution::LogUniform:
      j = {{"name", "FloatDistribution"},
           {"attributes",
            {{"low", d.low}, {"high", d.high}, {"log", d.dist == Distribution::LogUniform}, {"step", nullptr}}}};
      break;
    case Distribution::IntUniform:
      j = {{"name", "IntDistribution"},
           {"attributes",
            {{"low", std::llround(d.low)}, {"high", std::llround(d.high)}, {"log", false}, {"step", 1}}}};
      break;
    default: {
      json choices = json::array();
      for (const auto& v : d.values) choices.push_back(v.to_json());
      j = {{"name", "CategoricalDistribution"}, {"attributes", {{"choices", choices}}}};
    }
  }
  return j.dump();
}

// The index of `v` among a choice's values: exact first, then numerically (1 vs 1.0).
std::optional<size_t> choice_index(const Dimension& d, const sweep::ParamValue& v) {
  for (size_t i = 0; i < d.values.size(); ++i)
    if (d.values[i] == v) return i;
  if (v.is_string()) return std::nullopt;
  for (size_t i = 0; i < d.values.size(); ++i)
    if (!d.values[i].is_string() && d.values[i].as_double() == v.as_double()) return i;
  return std::nullopt;
}

// Distribution.to_internal_repr: floats as they are, ints as ints, a categorical's index.
json internal_param(const Dimension& d, const json& value, const report::TrialData& t) {
  const auto v = sweep::ParamValue::from_json(value);
  if (d.dist == Distribution::Choice) {
    const auto i = choice_index(d, v);
    LMSWEEP_CHECK(i.has_value(), "trial {}: parameter {} = {} is not one of the choices {} of the study's [space]",
                  t.info.number, d.name, value.dump(), d.to_json().dump());
    return *i;
  }
  LMSWEEP_CHECK(!v.is_string(), "trial {}: parameter {} = {} is not a number, but [space] says {}", t.info.number,
                d.name, value.dump(), d.to_json().dump());
  if (d.dist == Distribution::IntUniform) return std::llround(v.as_double());
  return v.as_double();
}

std::optional<double> finite(std::optional<double> v) {
  return v && std::isfinite(*v) ? v : std::nullopt;
}

// The objectives at the best epoch by the first one, among the epochs recording them all.
std::optional<std::vector<double>> best_values(const report::StudyData& data, const report::TrialData& t) {
  const bool maximize = db::objective_maximized(data.objective());
  std::optional<std::vector<double>> best;
  for (const auto& e : t.epochs) {
    std::vector<double> values;
    for (const auto& o : data.objectives)
      if (auto v = finite(db::epoch_value(e, o))) values.push_back(*v);
    if (values.size() != data.objectives.size()) continue;
    if (!best || (maximize ? values[0] > (*best)[0] : values[0] < (*best)[0])) best = std::move(values);
  }
  return best;
}

// {epoch: value} of `objective`, as the journal's intermediate_values (keys are strings).
json curve(const report::TrialData& t, const std::string& objective) {
  json out = json::object();
  for (const auto& e : t.epochs)
    if (auto v = finite(db::epoch_value(e, objective))) out[std::to_string(e.epoch)] = *v;
  return out;
}

std::string status_name(db::TrialStatus s) { return std::string(db::to_string(s)); }

json user_attrs(const report::StudyData& data, const report::TrialData& t) {
  json a = {{"lmsweep_trial", t.info.number},
            {"lmsweep_seed", t.info.seed},
            {"lmsweep_status", status_name(t.info.status)}};
  if (!t.info.host.empty()) a["host"] = t.info.host;
  if (!t.info.error.empty()) a["error"] = t.info.error;
  if (data.objectives.size() > 1) {
    json curves = json::object();
    for (const auto& o : data.objectives) {
      json points = json::array();  // by epoch (curve()'s keys sort as strings)
      for (const auto& e : t.epochs)
        if (auto v = finite(db::epoch_value(e, o))) points.push_back({e.epoch, *v});
      curves[o] = points;
    }
    a["lmsweep_intermediate_values"] = curves;
  }
  return a;
}

struct StateValues {
  int state = kRunning;
  std::optional<std::vector<double>> values;
};

StateValues state_values(const report::StudyData& data, const report::TrialData& t, const json& intermediate) {
  switch (t.info.status) {
    case db::TrialStatus::Completed: {
      auto v = best_values(data, t);
      return v ? StateValues{kComplete, v} : StateValues{kFail, std::nullopt};
    }
    case db::TrialStatus::Pruned: {
      // optuna/study/_tell.py: a pruned trial's value is its last intermediate value.
      StateValues s{kPruned, std::nullopt};
      if (data.objectives.size() == 1 && !intermediate.empty()) {
        int64_t last = -1;
        double value = 0;
        for (const auto& [k, v] : intermediate.items()) {
          if (std::stoll(k) <= last) continue;  // keys sort as strings, not by epoch
          last = std::stoll(k);
          value = v.get<double>();
        }
        s.values = std::vector<double>{value};
      }
      return s;
    }
    case db::TrialStatus::Running: return {kRunning, std::nullopt};
    case db::TrialStatus::Pending: return {kWaiting, std::nullopt};
    default: return {kFail, std::nullopt};  // failed, interrupted (see the header)
  }
}

json params_and_distributions(const report::StudyData& data, const report::TrialData& t, json& distributions) {
  json params = json::object();
  distributions = json::object();
  for (const auto& [name, value] : t.params.items()) {
    const Dimension* d = data.space.find(name);
    LMSWEEP_CHECK(d != nullptr, "trial {}: parameter {} is not in the study's [space] ({}); cannot export it",
                  t.info.number, name, data.space.canonical());
    if (d->dist == Distribution::Fixed) continue;  // a constant: in the study's lmsweep_fixed_params
    params[name] = internal_param(*d, value, t);
    distributions[name] = distribution_json(*d);
  }
  return params;
}

json create_trial(const report::StudyData& data, const report::TrialData& t, const std::string& worker) {
  const json intermediate = data.objectives.size() == 1 ? curve(t, data.objective()) : json::object();
  const StateValues sv = state_values(data, t, intermediate);
  json op = {{"op_code", kCreateTrial}, {"worker_id", worker}, {"study_id", 0}, {"state", sv.state}};
  // Replay reads "datetime_start" always (null allowed), "datetime_complete" only when present.
  op["datetime_start"] = sv.state != kWaiting && t.info.started_at ? json(iso_utc(*t.info.started_at)) : json();
  if (sv.state != kRunning && sv.state != kWaiting && t.info.finished_at)
    op["datetime_complete"] = iso_utc(*t.info.finished_at);
  // FrozenTrial takes either value (one objective) or values (several), never both.
  op["value"] = sv.values && sv.values->size() == 1 ? json(sv.values->front()) : json();
  op["values"] = sv.values && sv.values->size() > 1 ? json(*sv.values) : json();
  json distributions;
  op["params"] = params_and_distributions(data, t, distributions);
  op["distributions"] = distributions;
  op["user_attrs"] = user_attrs(data, t);
  op["system_attrs"] = json::object();
  op["intermediate_values"] = intermediate;
  return op;
}

json study_user_attrs(const report::StudyData& data) {
  json fixed = json::object();
  for (const auto& d : data.space.dimensions())
    if (d.dist == Distribution::Fixed && !d.values.empty()) fixed[d.name] = d.values.front().to_json();
  return {{"lmsweep_objectives", data.objectives},
          {"lmsweep_method", data.study.method},
          {"lmsweep_seed", data.study.seed},
          {"lmsweep_space", data.space.to_json()},
          {"lmsweep_fixed_params", fixed}};
}

}  // namespace

std::string optuna_journal_text(const report::StudyData& data, const OptunaJournalOptions& options) {
  const std::string& worker = options.worker_id;
  json directions = json::array();
  for (const auto& o : data.objectives) directions.push_back(db::objective_maximized(o) ? kMaximize : kMinimize);
  std::string out = json{{"op_code", kCreateStudy},
                         {"worker_id", worker},
                         {"study_name", options.study_name.value_or(data.study.name)},
                         {"directions", directions}}
                        .dump() +
                    "\n";
  const json attrs = study_user_attrs(data);  // named: items() of a temporary would dangle
  for (const auto& [key, value] : attrs.items())
    out += json{{"op_code", kSetStudyUserAttr}, {"worker_id", worker}, {"study_id", 0}, {"user_attr", {{key, value}}}}
               .dump() +
           "\n";
  for (const auto& t : data.trials) out += create_trial(data, t, worker).dump() + "\n";
  return out;
}

void export_optuna_journal(const report::StudyData& data, const std::string& out_file,
                           const OptunaJournalOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  LMSWEEP_CHECK(!fs::is_directory(out_file, ec), "--out {}: is a folder; give the journal file's path", out_file);
  const std::string text = optuna_journal_text(data, options);  // errors before touching the disk
  try {
    write_file_durably(out_file, text.data(), text.size(), "--out");
  } catch (const fs::filesystem_error& e) {  // the rename: out_file.tmp must not stay behind
    fs::remove(out_file + ".tmp", ec);
    throw_error("--out {}: cannot replace it ({}); check the folder is writable", out_file, e.code().message());
  }
}

}  // namespace lmsweep
