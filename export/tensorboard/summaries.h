#pragma once
// The events lmsweep writes, serialized (tbproto/*.proto), with plain C++ in the interface so
// that callers need no generated header: scalars, and the HParams plugin's three summaries as
// tensorboard/plugins/hparams/summary_v2.py writes them (tag _hparams_/..., plugin "hparams",
// content = HParamsPluginData version 0, an empty float tensor as the value, step 0).
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace lmsweep::tensorboard {

inline constexpr const char* kFileVersion = "brain.Event:2";
inline constexpr const char* kHParamsPlugin = "hparams";
inline constexpr const char* kExperimentTag = "_hparams_/experiment";
inline constexpr const char* kSessionStartTag = "_hparams_/session_start_info";
inline constexpr const char* kSessionEndTag = "_hparams_/session_end_info";

std::string file_version_event(double wall_time);

// One event holding one simple_value (float) per (tag, value), at `step`.
std::string scalars_event(double wall_time, std::int64_t step,
                          const std::vector<std::pair<std::string, double>>& values);

// SessionLog START at `step`: a second one in a run makes TensorBoard drop what it read of
// that run at steps >= step (a resumed trial rewriting its later epochs).
std::string session_start_log_event(double wall_time, std::int64_t step);

// api.proto's DataType and Status, same values.
enum class HParamType { Unset = 0, String = 1, Bool = 2, Float64 = 3 };
enum class SessionStatus { Unknown = 0, Success = 1, Failure = 2, Running = 3 };

struct HParamSpec {
  std::string name;
  std::string description;
  HParamType type = HParamType::Unset;
  std::optional<std::pair<double, double>> interval;  // domain_interval [min, max]
  nlohmann::json discrete;                            // domain_discrete when an array (numbers, strings, bools)
};

struct MetricSpec {
  std::string tag;  // the scalar's tag in each session's run
  std::string description;
};

struct ExperimentSpec {
  std::string name, description;
  double time_created_secs = 0;
  std::vector<HParamSpec> hparams;
  std::vector<MetricSpec> metrics;
};

std::string experiment_event(double wall_time, const ExperimentSpec& experiment);
// hparams: a JSON object; numbers -> number_value, strings -> string_value, booleans ->
// bool_value, anything else as its JSON text.
std::string session_start_event(double wall_time, const nlohmann::json& hparams, const std::string& group_name,
                                double start_time_secs);
std::string session_end_event(double wall_time, SessionStatus status, double end_time_secs);

}  // namespace lmsweep::tensorboard
