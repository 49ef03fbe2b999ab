#include "sweep/config.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/strings.h"
#include "sweep/asha.h"
#include "sweep/tpe.h"

namespace lmsweep::sweep {
namespace {

std::string lower(std::string s) { return to_lower(std::move(s)); }

// "sweep.ini:3: [sweep]" or "[sweep]".
std::string where(const KeyValue& kv, const std::string& label) {
  return kv.origin.empty() ? label : fmt::format("{}: {}", kv.origin, label);
}

int64_t parse_int(const KeyValue& kv, const std::string& label, int64_t lo, int64_t hi) {
  const std::string text = trim(kv.value);
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE) {
    throw_error("{} {} = '{}': expected an integer", where(kv, label), kv.key, kv.value);
  }
  if (v < lo || v > hi) {
    if (hi == std::numeric_limits<int64_t>::max()) {
      throw_error("{} {} = {}: must be >= {}", where(kv, label), kv.key, v, lo);
    }
    throw_error("{} {} = {}: must be in {} .. {}", where(kv, label), kv.key, v, lo, hi);
  }
  return v;
}

double parse_real(const KeyValue& kv, const std::string& label) {
  const std::string text = trim(kv.value);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v)) {
    throw_error("{} {} = '{}': expected a number", where(kv, label), kv.key, kv.value);
  }
  return v;
}

template <typename Enum>
Enum parse_enum(const std::string& text, const std::string& what,
                const std::vector<std::pair<const char*, Enum>>& names) {
  const std::string key = lower(trim(text));
  std::string valid;
  for (const auto& [name, value] : names) {
    if (key == name) return value;
    valid += valid.empty() ? name : fmt::format(" | {}", name);
  }
  throw_error("{} = '{}' is not known; use {}", what, text, valid);
}

const std::vector<std::pair<const char*, SamplingMethod>> kMethods = {
    {"grid", SamplingMethod::Grid}, {"random", SamplingMethod::Random}, {"sobol", SamplingMethod::Sobol},
    {"tpe", SamplingMethod::Tpe}};
const std::vector<std::pair<const char*, TrialKind>> kTrialKinds = {
    {"lmclip", TrialKind::Lmclip}, {"command", TrialKind::Command}};
const std::vector<std::pair<const char*, TpeDefaults>> kTpeDefaults = {
    {"lmsweep", TpeDefaults::Lmsweep}, {"optuna", TpeDefaults::Optuna}};
const std::vector<std::pair<const char*, SchedulerKind>> kSchedulers = {
    {"none", SchedulerKind::None}, {"asha", SchedulerKind::Asha}};

// "a, b , c" -> {"a", "b", "c"} (empty items dropped).
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!trim(item).empty()) out.push_back(trim(item));
  return out;
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

template <typename Enum>
std::string enum_name(Enum value, const std::vector<std::pair<const char*, Enum>>& names) {
  for (const auto& [name, v] : names) {
    if (v == value) return name;
  }
  return "?";
}

}  // namespace

KeyValues to_key_values(const std::vector<std::pair<std::string, std::string>>& pairs) {
  KeyValues out;
  out.reserve(pairs.size());
  for (const auto& [k, v] : pairs) out.push_back({k, v, ""});
  return out;
}

bool IniFile::has_section(const std::string& name) const {
  return std::any_of(sections.begin(), sections.end(),
                     [&](const auto& s) { return s.first == name; });
}

KeyValues IniFile::section(const std::string& name) const {
  for (const auto& s : sections) {
    if (s.first == name) return s.second;
  }
  return {};
}

std::string strip_inline_comment(const std::string& text) {
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if ((c == ';' || c == '#') &&
               (i == 0 || std::isspace(static_cast<unsigned char>(text[i - 1])))) {
      return trim(text.substr(0, i));
    }
  }
  return trim(text);
}

IniFile parse_ini_text(const std::string& text, const std::string& path) {
  IniFile file;
  file.path = path;
  // Editors on Windows start UTF-8 files with a byte order mark.
  const bool bom = text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0;
  std::istringstream in(bom ? text.substr(3) : text);
  std::string raw;
  int line_no = 0;
  KeyValues* current = nullptr;
  auto open_section = [&](const std::string& name) {
    for (auto& s : file.sections) {
      if (s.first == name) return &s.second;
    }
    file.sections.emplace_back(name, KeyValues{});
    return &file.sections.back().second;
  };
  while (std::getline(in, raw)) {
    ++line_no;
    if (!raw.empty() && raw.back() == '\r') raw.pop_back();
    const std::string line = strip_inline_comment(raw);
    if (line.empty()) continue;
    if (line.front() == '[') {
      LMSWEEP_CHECK(line.back() == ']' && line.size() > 2,
                    "{}:{}: malformed section header '{}'; write [name]", path, line_no, line);
      const std::string name = trim(line.substr(1, line.size() - 2));
      LMSWEEP_CHECK(!name.empty(), "{}:{}: empty section name '{}'", path, line_no, line);
      current = open_section(name);
      continue;
    }
    const size_t eq = line.find('=');
    LMSWEEP_CHECK(eq != std::string::npos, "{}:{}: expected 'key = value', got '{}'", path,
                  line_no, line);
    const std::string key = trim(line.substr(0, eq));
    LMSWEEP_CHECK(!key.empty(), "{}:{}: missing key before '=' in '{}'", path, line_no, line);
    if (current == nullptr) current = open_section("");
    current->push_back({key, trim(line.substr(eq + 1)), fmt::format("{}:{}", path, line_no)});
  }
  return file;
}

IniFile parse_ini_file(const std::string& path) {
  std::error_code ec;
  LMSWEEP_CHECK(!std::filesystem::is_directory(path, ec), "config file '{}' is a folder: pass the INI file", path);
  std::ifstream in(path, std::ios::binary);
  LMSWEEP_CHECK(in.good(), "cannot read config file '{}'; check the path", path);
  std::stringstream ss;
  ss << in.rdbuf();
  LMSWEEP_CHECK(!in.bad(), "error while reading config file '{}'", path);
  return parse_ini_text(ss.str(), path);
}

std::string to_string(SamplingMethod method) { return enum_name(method, kMethods); }
std::string to_string(TrialKind kind) { return enum_name(kind, kTrialKinds); }
std::string to_string(SchedulerKind kind) { return enum_name(kind, kSchedulers); }

SamplingMethod parse_sampling_method(const std::string& text, const std::string& what) {
  return parse_enum(text, what, kMethods);
}
TrialKind parse_trial_kind(const std::string& text, const std::string& what) {
  return parse_enum(text, what, kTrialKinds);
}
std::string to_string(TpeDefaults defaults) { return enum_name(defaults, kTpeDefaults); }
TpeDefaults parse_tpe_defaults(const std::string& text, const std::string& what) {
  return parse_enum(text, what, kTpeDefaults);
}

const std::vector<std::string>& lmclip_objectives() {
  static const std::vector<std::string> names = {"map", "map_head", "map_middle", "map_tail", "map_single",
                                                 "map_multi"};
  return names;
}
SchedulerKind parse_scheduler_kind(const std::string& text, const std::string& what) {
  return parse_enum(text, what, kSchedulers);
}

void SweepConfig::validate(const std::string& label) const {
  LMSWEEP_CHECK(!name.empty(), "{} name is missing; set name = <study> (a study's name, "
                "unique in the database)", label);
  for (char c : name) {
    LMSWEEP_CHECK(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.',
                  "{} name = '{}': use letters, digits, '_', '-' or '.' only", label, name);
  }
  LMSWEEP_CHECK(trials >= 0, "{} trials = {}: must be >= 1", label, trials);
  LMSWEEP_CHECK(method == SamplingMethod::Grid || trials > 0,
                "{} trials is missing; method = {} needs the number of trials (trials = 100)",
                label, to_string(method));
  LMSWEEP_CHECK(seed <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
                "{} seed = {}: must be in 0 .. 2^63-1", label, seed);
  LMSWEEP_CHECK(gpus_per_trial >= 1, "{} gpus_per_trial = {}: must be >= 1", label,
                gpus_per_trial);
  LMSWEEP_CHECK(grace >= 1, "{} grace = {}: must be >= 1 epoch", label, grace);
  LMSWEEP_CHECK(reduction > 1.0 && std::isfinite(reduction),
                "{} reduction = {}: must be > 1 (2 halves the trials at each rung)", label,
                reduction);
  LMSWEEP_CHECK(grid_points >= 2, "{} grid_points = {}: must be >= 2", label, grid_points);
  LMSWEEP_CHECK(eval_epochs == EvalEpochs::All || scheduler == SchedulerKind::Asha,
                "{} eval_epochs = rungs needs scheduler = asha (without ASHA there are no rungs): use eval_every",
                label);
  LMSWEEP_CHECK(window >= 0, "{} window = {}: must be >= 0 (0: asynchronous suggestions)", label, window);
  LMSWEEP_CHECK(window == 0 || method == SamplingMethod::Tpe,
                "{} window = {} applies to method = tpe (method = {} points do not depend on results)", label,
                window, to_string(method));
  const bool tpe_set = tpe_defaults != TpeDefaults::Lmsweep || tpe_gamma || tpe_ei_candidates ||
                       tpe_categorical_prior || tpe_bandwidth;
  LMSWEEP_CHECK(!tpe_set || method == SamplingMethod::Tpe,
                "{} tpe_* keys set TPE's estimator: use them with method = tpe (method = {})", label,
                to_string(method));
  LMSWEEP_CHECK(watchdog_seconds == 0 || (watchdog_seconds >= 1 && std::isfinite(watchdog_seconds)),
                "{} watchdog_seconds = {}: give 0 (auto) or at least 1 second", label, watchdog_seconds);
  LMSWEEP_CHECK(max_attempts >= 1, "{} max_attempts = {}: must be >= 1", label, max_attempts);
  LMSWEEP_CHECK(lease_seconds >= 5 && std::isfinite(lease_seconds),
                "{} lease_seconds = {}: must be at least 5 seconds (the lease is renewed every "
                "lease_seconds / 6)", label, lease_seconds);
  validate_objectives(label);
  validate_trial(label);
}

void SweepConfig::validate_objectives(const std::string& label) const {
  LMSWEEP_CHECK(objectives.empty() || objectives.size() >= 2,
                "{} objectives = {}: give two or more (for one, use objective =)", label, join(objectives, ", "));
  LMSWEEP_CHECK(objectives.empty() || objectives.front() == objective,
                "{} objective = {} and objectives = {}: the first of objectives is the objective; give one of "
                "the two", label, objective, join(objectives, ", "));
  LMSWEEP_CHECK(objectives.empty() || scheduler == SchedulerKind::None,
                "{} objectives = {} with scheduler = asha: ASHA ranks trials by one objective; use objective = "
                "with asha, or scheduler = none", label, join(objectives, ", "));
  std::set<std::string> distinct(objectives.begin(), objectives.end());
  LMSWEEP_CHECK(distinct.size() == objectives.size(), "{} objectives = {}: a metric is listed twice", label,
                join(objectives, ", "));
  for (const auto& o : objectives.empty() ? std::vector<std::string>{objective} : objectives) {
    if (trial == TrialKind::Lmclip) {
      const auto& known = lmclip_objectives();
      LMSWEEP_CHECK(std::find(known.begin(), known.end(), o) != known.end(),
                    "{} objective '{}' is not a metric LM-CLIP trials record; use one of {}", label, o,
                    join(known, ", "));
    } else {
      LMSWEEP_CHECK(is_metric_name(o), "{} objective '{}': a metric's name is a letter or '_', then letters, "
                    "digits, '_', '-' or '.'", label, o);
    }
  }
}

void SweepConfig::validate_trial(const std::string& label) const {
  LMSWEEP_CHECK(trial == TrialKind::Command || command.empty(),
                "{} command = {} needs trial = command (trial = lmclip trains LM-CLIP itself)", label, command);
  LMSWEEP_CHECK(trial == TrialKind::Lmclip || !trim(command).empty(),
                "{} trial = command needs command = <program and arguments>, e.g. command = python3 train.py "
                "--lr {{lr}}", label);
  LMSWEEP_CHECK(stop_grace_seconds >= 0 && std::isfinite(stop_grace_seconds),
                "{} stop_grace_seconds = {}: must be >= 0", label, stop_grace_seconds);
  LMSWEEP_CHECK(warm_start.empty() || method == SamplingMethod::Tpe,
                "{} warm_start = {} feeds TPE's history: use it with method = tpe", label, warm_start);
  LMSWEEP_CHECK(warm_start.empty() || warm_start != name,
                "{} warm_start = {} is this study: name another study of the database", label, warm_start);
}

nlohmann::json SweepConfig::to_json() const {
  auto optional = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  return nlohmann::json{{"name", name},
                        {"method", to_string(method)},
                        {"trials", trials},
                        {"seed", seed},
                        {"gpus_per_trial", gpus_per_trial},
                        {"objective", objective},
                        {"objectives", objectives},
                        {"trial", to_string(trial)},
                        {"command", command},
                        {"stop_grace_seconds", stop_grace_seconds},
                        {"trial_dir", trial_dir},
                        {"warm_start", warm_start},
                        {"scheduler", to_string(scheduler)},
                        {"grace", grace},
                        {"reduction", reduction},
                        {"grid_points", grid_points},
                        {"n_startup_trials", n_startup_trials},
                        {"window", window},
                        {"tpe_defaults", to_string(tpe_defaults)},
                        {"tpe_gamma", optional(tpe_gamma)},
                        {"tpe_ei_candidates", optional(tpe_ei_candidates)},
                        {"tpe_categorical_prior", optional(tpe_categorical_prior)},
                        {"tpe_bandwidth", optional(tpe_bandwidth)},
                        {"watchdog_seconds", watchdog_seconds},
                        {"max_attempts", max_attempts},
                        {"lease_seconds", lease_seconds},
                        {"eval_epochs", eval_epochs == EvalEpochs::Rungs ? "rungs" : "all"},
                        {"eval_every", optional(eval_every)},
                        {"eval_last", optional(eval_last)},
                        {"trials_per_device", trials_per_device}};
}

std::vector<int64_t> SweepConfig::rung_epochs(int64_t epochs) const {
  if (scheduler != SchedulerKind::Asha || epochs < grace) return {};
  std::vector<int64_t> out;
  const AshaScheduler asha(grace, reduction, static_cast<int>(epochs));
  for (const auto& r : asha.rungs()) {
    const auto e = static_cast<int64_t>(std::ceil(r.milestone - 1e-9));
    if (out.empty() || out.back() != e) out.push_back(e);
  }
  return out;
}

namespace {

// A real > 0; the message names lmsweep's and Optuna's defaults.
double parse_positive(const KeyValue& kv, const std::string& label, double ours, double optuna) {
  const double v = parse_real(kv, label);
  LMSWEEP_CHECK(v > 0, "{} {} = {}: must be > 0 (lmsweep {}, Optuna {})", where(kv, label), kv.key, kv.value, ours,
                optuna);
  return v;
}

// [sweep] tpe_*: TPE's estimator settings (tpe.h).
void parse_tpe_key(SweepConfig& cfg, const std::string& key, const KeyValue& kv, const std::string& label) {
  const std::string what = fmt::format("{} {}", where(kv, label), kv.key);
  if (key == "tpe_defaults") {
    cfg.tpe_defaults = parse_tpe_defaults(kv.value, what);
  } else if (key == "tpe_ei_candidates") {
    cfg.tpe_ei_candidates = static_cast<int>(parse_int(kv, label, 1, 1 << 16));
  } else if (key == "tpe_gamma") {
    const double v = parse_real(kv, label);
    LMSWEEP_CHECK(v > 0 && v <= 1, "{} = {}: the share of finished trials that form l(x), in (0, 1] "
                  "(lmsweep {}, Optuna {})", what, kv.value, TpeOptions{}.gamma, TpeOptions::optuna().gamma);
    cfg.tpe_gamma = v;
  } else if (key == "tpe_bandwidth") {
    cfg.tpe_bandwidth = parse_positive(kv, label, TpeOptions{}.bandwidth, TpeOptions::optuna().bandwidth);
  } else if (key == "tpe_categorical_prior") {
    cfg.tpe_categorical_prior = parse_positive(kv, label, TpeOptions{}.categorical_prior_weight,
                                               TpeOptions::optuna().categorical_prior_weight);
  }
}

}  // namespace

SweepConfig parse_sweep_config(const KeyValues& entries, const std::string& label) {
  static const std::vector<std::string> kKeys = {"name",      "method",    "trials",
                                                 "seed",      "gpus_per_trial", "objective",
                                                 "scheduler", "grace",     "reduction",
                                                 "grid_points", "n_startup_trials", "window", "watchdog_seconds",
                                                 "max_attempts", "lease_seconds", "objectives", "trial",
                                                 "command", "stop_grace_seconds", "trial_dir", "warm_start",
                                                 "eval_epochs", "eval_every", "eval_last", "trials_per_device",
                                                 "tpe_defaults", "tpe_gamma", "tpe_ei_candidates",
                                                 "tpe_categorical_prior", "tpe_bandwidth"};
  SweepConfig cfg;
  bool objective_given = false;
  std::set<std::string> seen;
  for (const KeyValue& kv : entries) {
    std::string key = lower(trim(kv.key));
    std::replace(key.begin(), key.end(), '-', '_');
    if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
      std::string valid;
      for (const auto& k : kKeys) valid += valid.empty() ? k : ", " + k;
      throw_error("{} unknown key '{}'; valid: {}", where(kv, label), kv.key, valid);
    }
    LMSWEEP_CHECK(seen.insert(key).second, "{} {} is given twice; keep one", where(kv, label),
                  kv.key);
    const std::string value = trim(kv.value);
    const std::string what = fmt::format("{} {}", where(kv, label), kv.key);
    if (key == "name") {
      cfg.name = value;
    } else if (key == "method") {
      cfg.method = parse_sampling_method(value, what);
    } else if (key == "trials") {
      cfg.trials = parse_int(kv, label, 1, std::numeric_limits<int64_t>::max());
    } else if (key == "seed") {
      cfg.seed = static_cast<uint64_t>(parse_int(kv, label, 0, std::numeric_limits<int64_t>::max()));
    } else if (key == "gpus_per_trial") {
      cfg.gpus_per_trial = static_cast<int>(parse_int(kv, label, 1, 1 << 20));
    } else if (key == "objective") {
      cfg.objective = value;
      objective_given = true;
    } else if (key == "scheduler") {
      cfg.scheduler = parse_scheduler_kind(value, what);
    } else if (key == "grace") {
      cfg.grace = static_cast<int>(parse_int(kv, label, 1, 1 << 20));
    } else if (key == "reduction") {
      cfg.reduction = parse_real(kv, label);
      LMSWEEP_CHECK(cfg.reduction > 1.0, "{} reduction = {}: must be > 1", where(kv, label),
                    kv.value);
    } else if (key == "grid_points") {
      cfg.grid_points = static_cast<int>(parse_int(kv, label, 2, 1 << 20));
    } else if (key == "window") {
      cfg.window = static_cast<int>(parse_int(kv, label, std::numeric_limits<int>::min(), 1 << 20));
    } else if (key == "n_startup_trials") {
      cfg.n_startup_trials = static_cast<int>(parse_int(kv, label, 0, 1 << 20));
    } else if (key == "watchdog_seconds") {
      cfg.watchdog_seconds = parse_real(kv, label);
    } else if (key == "max_attempts") {
      cfg.max_attempts = static_cast<int>(parse_int(kv, label, 1, 1 << 20));
    } else if (key == "lease_seconds") {
      cfg.lease_seconds = parse_real(kv, label);
    } else if (key == "objectives") {
      cfg.objectives = split_list(value);
    } else if (key == "trial") {
      cfg.trial = parse_trial_kind(value, what);
    } else if (key == "command") {
      cfg.command = value;
    } else if (key == "stop_grace_seconds") {
      cfg.stop_grace_seconds = parse_real(kv, label);
    } else if (key == "trial_dir") {
      cfg.trial_dir = value;
    } else if (key == "warm_start") {
      cfg.warm_start = value;
    } else if (key == "eval_epochs") {
      LMSWEEP_CHECK(value == "all" || value == "rungs", "{} = '{}': valid: all (every epoch), rungs (ASHA's rung "
                    "epochs, eval_last and the final one)", what, value);
      cfg.eval_epochs = value == "rungs" ? SweepConfig::EvalEpochs::Rungs : SweepConfig::EvalEpochs::All;
    } else if (key == "eval_every") {
      cfg.eval_every = parse_int(kv, label, 0, 1 << 20);
    } else if (key == "eval_last") {
      cfg.eval_last = parse_int(kv, label, 0, 1 << 20);
    } else if (key == "trials_per_device") {
      cfg.trials_per_device = static_cast<int>(parse_int(kv, label, 1, 64));
    } else if (key.rfind("tpe_", 0) == 0) {
      parse_tpe_key(cfg, key, kv, label);
    }
  }
  if (!cfg.objectives.empty() && !objective_given) cfg.objective = cfg.objectives.front();
  cfg.validate(label);
  return cfg;
}

}  // namespace lmsweep::sweep
