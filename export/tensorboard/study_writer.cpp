#include "export/tensorboard/study_writer.h"

#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/strings.h"
#include "export/tensorboard/event_file.h"

namespace lmsweep::tensorboard {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// What the HParams dashboard shows under a metric's name.
std::string metric_description(const std::string& tag) {
  static const std::map<std::string, std::string> known = {
      {"map", "test mAP over every class (fraction), maximised"},
      {"map_head", "test mAP of the head classes (fraction), maximised"},
      {"map_middle", "test mAP of the middle classes (fraction), maximised"},
      {"map_tail", "test mAP of the tail classes (fraction), maximised"},
      {"map_single", "test mAP of single-label images (fraction), maximised"},
      {"map_multi", "test mAP of multi-label images (fraction), maximised"},
      {"train_loss", "mean training loss of the epoch, minimised"},
      {"centroid_ratio", "intra / inter class centroid distance ratio, minimised"},
  };
  const auto it = known.find(tag);
  return it != known.end() ? it->second : "a metric the trial's command printed";
}

std::string number_text(double v) { return fmt::format("{}", v); }

// "uniform(2, 12)", "choice(8, 16)": the [space] expression, as the dashboard's description.
std::string expression(const sweep::Dimension& d) {
  if (d.dist == sweep::Distribution::Choice || d.dist == sweep::Distribution::Fixed) {
    std::string values;
    for (const auto& v : d.values) values += (values.empty() ? "" : ", ") + sweep::to_flag_value(v);
    return fmt::format("{}({})", sweep::to_string(d.dist), values);
  }
  return fmt::format("{}({}, {})", sweep::to_string(d.dist), number_text(d.low), number_text(d.high));
}

// Discrete values of one type (as the dashboard's filters need): their type, or Unset.
HParamType discrete_type(const std::vector<sweep::ParamValue>& values) {
  bool strings = false, numbers = false;
  for (const auto& v : values) (v.is_string() ? strings : numbers) = true;
  if (strings && numbers) return HParamType::Unset;
  return strings ? HParamType::String : HParamType::Float64;
}

}  // namespace

std::string trial_run_name(std::int64_t number) { return fmt::format("trial-{:05d}", number); }

std::string safe_run_name(const std::string& text) {
  std::string out = text.empty() ? "run" : text;
  for (char& c : out)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) c = '_';
  if (out == "." || out == "..") out = "run";
  return out;
}

std::vector<std::pair<std::string, double>> epoch_scalars(const db::EpochRecord& r) {
  std::vector<std::pair<std::string, double>> out;
  const std::pair<const char*, const std::optional<double>*> columns[] = {
      {"train_loss", &r.train_loss}, {"lr", &r.lr},             {"seconds", &r.seconds},
      {"map", &r.map},               {"map_head", &r.map_head}, {"map_middle", &r.map_middle},
      {"map_tail", &r.map_tail},     {"map_single", &r.map_single}, {"map_multi", &r.map_multi},
      {"centroid_ratio", &r.centroid_ratio}};
  for (const auto& [tag, v] : columns)
    if (*v && std::isfinite(**v)) out.emplace_back(tag, **v);
  const auto extra = nlohmann::json::parse(r.metrics_json.empty() ? "{}" : r.metrics_json, nullptr, false);
  if (!extra.is_object()) return out;  // a malformed metrics_json adds nothing; the columns stand
  for (const auto& [key, v] : extra.items())  // keys sorted: nlohmann::json orders objects
    if (v.is_number() && !v.is_boolean() && is_metric_name(key) && std::isfinite(v.get<double>()))
      out.emplace_back(key, v.get<double>());
  return out;
}

const std::vector<std::string>& lmclip_metric_tags() {
  static const std::vector<std::string> tags = {"map",       "map_head",   "map_middle", "map_tail",
                                                "map_single", "map_multi", "train_loss", "centroid_ratio"};
  return tags;
}

std::optional<SessionStatus> session_status(db::TrialStatus status) {
  switch (status) {
    case db::TrialStatus::Completed: return SessionStatus::Success;
    // The Status enum has no "stopped early": ASHA's pruned trials trained correctly, and
    // their metrics are real, so the dashboard counts them with the successful ones.
    case db::TrialStatus::Pruned: return SessionStatus::Success;
    case db::TrialStatus::Failed: return SessionStatus::Failure;
    default: return std::nullopt;  // running, pending, interrupted: not over yet
  }
}

std::vector<HParamSpec> hparam_specs(const sweep::SearchSpace& space) {
  std::vector<HParamSpec> out;
  for (const auto& d : space.dimensions()) {
    HParamSpec h;
    h.name = d.name;
    h.description = expression(d);
    if (d.dist == sweep::Distribution::Choice || d.dist == sweep::Distribution::Fixed) {
      h.type = discrete_type(d.values);
      if (h.type != HParamType::Unset) {
        h.discrete = nlohmann::json::array();
        for (const auto& v : d.values) h.discrete.push_back(v.to_json());
      }
    } else {
      h.type = HParamType::Float64;  // int too: the plugin has no integer type (its IntInterval)
      h.interval = std::make_pair(d.low, d.high);
    }
    out.push_back(std::move(h));
  }
  return out;
}

// --- the writer

struct TensorBoardStudyWriter::Impl {
  struct Session {
    EventFileWriter file;
    bool wrote_epoch = false;
  };
  std::string dir;
  TensorBoardOptions options;
  std::map<std::int64_t, Session> open;  // by trial number

  EventFileOptions file_options() const {
    EventFileOptions o;
    o.what = options.what;
    return o;
  }
  Session& session(const std::string& run_dir, std::int64_t number) {
    auto it = open.find(number);
    if (it == open.end()) it = open.emplace(number, Session{EventFileWriter(run_dir, file_options())}).first;
    return it->second;
  }
};

TensorBoardStudyWriter::TensorBoardStudyWriter(std::string dir, TensorBoardOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->dir = std::move(dir);
  impl_->options = std::move(options);
}
TensorBoardStudyWriter::TensorBoardStudyWriter(TensorBoardStudyWriter&&) noexcept = default;
TensorBoardStudyWriter& TensorBoardStudyWriter::operator=(TensorBoardStudyWriter&&) noexcept = default;
TensorBoardStudyWriter::~TensorBoardStudyWriter() = default;

const std::string& TensorBoardStudyWriter::dir() const { return impl_->dir; }

std::string TensorBoardStudyWriter::run_dir(const db::TrialInfo& trial) const {
  if (!impl_->options.run_per_trial) return impl_->dir;
  return (std::filesystem::path(impl_->dir) / trial_run_name(trial.number)).string();
}

void TensorBoardStudyWriter::begin(const db::StudyInfo& study, const sweep::SearchSpace& space,
                                   const std::vector<std::string>& metrics) {
  std::error_code ec;
  std::filesystem::create_directories(impl_->dir, ec);
  LMSWEEP_CHECK(!ec, "{} {}: cannot create the folder ({}): pass a folder you can write", impl_->options.what,
                impl_->dir, ec.message());
  if (space.empty()) return;
  ExperimentSpec e;
  e.name = study.name;
  e.description = fmt::format("lmsweep study '{}': {} sampling, seed {}, objective {}, scheduler {}", study.name,
                              study.method, study.seed, study.objective, study.scheduler);
  e.time_created_secs = study.created_at > 0 ? study.created_at : now_seconds();
  e.hparams = hparam_specs(space);
  std::set<std::string> seen;
  for (const auto& m : metrics)
    if (seen.insert(m).second) e.metrics.push_back({impl_->options.tag_prefix + m, metric_description(m)});
  EventFileWriter root(impl_->dir, impl_->file_options());
  root.write(experiment_event(now_seconds(), e));
  root.close();
}

void TensorBoardStudyWriter::trial_started(const db::TrialInfo& trial, const std::string& params_json) {
  nlohmann::json params = nlohmann::json::parse(params_json.empty() ? "{}" : params_json, nullptr, false);
  if (!params.is_object()) params = nlohmann::json::object();
  // A new attempt of a trial still open (it never reported its end): start a new file.
  impl_->open.erase(trial.number);
  const std::string folder = run_dir(trial);
  auto& s = impl_->session(folder, trial.number);
  // Group = the run's name: each trial its own row in the dashboard (the plugin would group
  // sessions of equal parameters otherwise, e.g. a repeated grid point).
  auto path = std::filesystem::path(folder).lexically_normal();
  if (path.filename().empty()) path = path.parent_path();  // "runs/voc/"
  const std::string group = path.filename().string();
  s.file.write(session_start_event(now_seconds(), params, group, trial.started_at.value_or(now_seconds())));
}

void TensorBoardStudyWriter::epoch(const db::TrialInfo& trial, const db::EpochRecord& record) {
  auto& s = impl_->session(run_dir(trial), trial.number);
  const double wall = record.recorded_at > 0 ? record.recorded_at : now_seconds();
  if (!s.wrote_epoch) {
    s.file.write(session_start_log_event(wall, record.epoch));
    s.wrote_epoch = true;
  }
  auto values = epoch_scalars(record);
  if (values.empty()) return;
  for (auto& [tag, v] : values) tag = impl_->options.tag_prefix + tag;
  s.file.write(scalars_event(wall, record.epoch, values));
}

void TensorBoardStudyWriter::trial_ended(const db::TrialInfo& trial, db::TrialStatus status) {
  const auto st = session_status(status);
  if (st) {
    auto& s = impl_->session(run_dir(trial), trial.number);
    s.file.write(session_end_event(now_seconds(), *st, trial.finished_at.value_or(now_seconds())));
  }
  const auto it = impl_->open.find(trial.number);
  if (it == impl_->open.end()) return;
  auto file = std::move(it->second.file);
  impl_->open.erase(it);
  file.close();
}

}  // namespace lmsweep::tensorboard
