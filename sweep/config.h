#pragma once
// The [sweep] section of a sweep config file, and a small INI reader that keeps line numbers.
//
// The launcher may read the file with Boost.Program_options instead; note that Boost keeps a
// `; comment` after a value as part of the value (it only strips `#`), which is why
// parse_ini_file() exists: it drops `;`/`#` comments, keeps the order of keys and says
// file:line for every entry.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace lmsweep::sweep {

// One `key = value` of a section. `origin` is "file:line" when known (parse_ini_file fills it),
// empty otherwise; error messages start with it.
struct KeyValue {
  std::string key;
  std::string value;
  std::string origin;
};
using KeyValues = std::vector<KeyValue>;

// Adapts already-split pairs (e.g. from Boost.Program_options) to KeyValues, origin empty.
KeyValues to_key_values(const std::vector<std::pair<std::string, std::string>>& pairs);

// An INI file: sections in file order, entries in file order. Entries before the first
// `[section]` header belong to the section named "". Repeated headers append to the section.
struct IniFile {
  std::string path;
  std::vector<std::pair<std::string, KeyValues>> sections;

  bool has_section(const std::string& name) const;
  // The entries of `name`; empty when the section is missing.
  KeyValues section(const std::string& name) const;
};

// Reads `path`. Blank lines and lines starting with `;` or `#` are skipped; an inline `;`/`#`
// comment starts at a `;`/`#` preceded by whitespace and outside quotes. Keys and values are
// trimmed. Throws lmsweep::Error naming file:line for a malformed header or a line without `=`,
// and naming the file when it cannot be read.
IniFile parse_ini_file(const std::string& path);
// Same, from text already in memory; `path` only names it in errors and origins.
IniFile parse_ini_text(const std::string& text, const std::string& path);

// Removes an inline `;`/`#` comment (see above) and trims the result.
std::string strip_inline_comment(const std::string& text);

enum class SamplingMethod { Grid, Random, Sobol, Tpe };
enum class SchedulerKind { None, Asha };
// What a trial runs: LM-CLIP training in the worker's process, or the user's program
// (command_trial.h).
enum class TrialKind { Lmclip, Command };
// method = tpe: whose estimator defaults a study starts from (tpe.h): lmsweep's, or Optuna
// 5.1's TPESampler's.
enum class TpeDefaults { Lmsweep, Optuna };

std::string to_string(SamplingMethod method);  // "grid" | "random" | "sobol" | "tpe"
std::string to_string(SchedulerKind kind);     // "none" | "asha"
std::string to_string(TrialKind kind);         // "lmclip" | "command"
std::string to_string(TpeDefaults defaults);   // "lmsweep" | "optuna"
// Inverses; throw lmsweep::Error listing the valid names. `what` names the value in the error.
SamplingMethod parse_sampling_method(const std::string& text, const std::string& what = "method");
SchedulerKind parse_scheduler_kind(const std::string& text, const std::string& what = "scheduler");
TrialKind parse_trial_kind(const std::string& text, const std::string& what = "trial");
TpeDefaults parse_tpe_defaults(const std::string& text, const std::string& what = "tpe_defaults");

// The metrics an LM-CLIP trial records that can be objectives (maximised).
const std::vector<std::string>& lmclip_objectives();

// [sweep]: what to search and how. Defaults are the reference setup (ASHA grace 5 epochs,
// reduction factor 2, as in damilab/lm-clip's Ray Tune run).
inline constexpr double kWatchdogFloorSeconds = 300;

struct SweepConfig {
  std::string name;                 // the study; several studies may share one database
  SamplingMethod method = SamplingMethod::Random;
  int64_t trials = 0;               // 0: not given (grid: the grid size; random/sobol: an error)
  uint64_t seed = 0;                // study seed, 0 .. 2^63-1
  int gpus_per_trial = 1;
  // What is maximised: for LM-CLIP trials one of lmclip_objectives(); for command trials any
  // key of the program's epoch lines. With `objectives` (two or more), the first.
  std::string objective = "map";
  // Several objectives, each maximised: MOTPE suggests (method = tpe), `best --pareto` shows
  // their front. Empty: one objective.
  std::vector<std::string> objectives;
  TrialKind trial = TrialKind::Lmclip;
  // trial = command: the program and its arguments, {name} replaced by the point's value of
  // dimension `name` (command_trial.h).
  std::string command;
  double stop_grace_seconds = 10;  // command trials: SIGTERM, then SIGKILL after this long
  std::string trial_dir;           // command trials' folders (default: beside the database)
  // Another study of the same database whose completed and pruned trials TPE learns from
  // before its first suggestion (the same dimensions).
  std::string warm_start;
  SchedulerKind scheduler = SchedulerKind::None;
  int grace = 5;                    // ASHA: first rung, in epochs
  double reduction = 2.0;           // ASHA: reduction factor (> 1)
  int grid_points = 3;              // grid: values per uniform / loguniform / int range (>= 2)
  int n_startup_trials = 10;        // tpe: Sobol points before the estimator takes over
  // tpe: > 0 suggests trial k from the results of trials 0 .. k-window-1 only (the trials in
  // between as liars), waiting for them when needed: the same points for any -np and any
  // finishing order. 0: from whatever has finished (asynchronous, as Optuna).
  int window = 0;
  // tpe: the estimator (tpe.h TpeOptions): tpe_defaults, then each setting given overrides it.
  TpeDefaults tpe_defaults = TpeDefaults::Lmsweep;
  std::optional<double> tpe_gamma;              // (0, 1]: the share of finished trials in l(x)
  std::optional<int> tpe_ei_candidates;         // >= 1: points drawn from l(x) per suggestion
  std::optional<double> tpe_categorical_prior;  // > 0: the prior's weight on choice dimensions
  std::optional<double> tpe_bandwidth;          // > 0: factor on the numerical kernels' widths
  // Fault tolerance (sweep/protocol.h): a trial whose group makes no step for this long is
  // failed (0: auto, 10x the slowest step or evaluation seen, at least kWatchdogFloorSeconds);
  // a trial running each time its job died this many times is failed, not rerun; a lease not
  // renewed for lease_seconds belongs to a dead sweep and is taken over.
  double watchdog_seconds = 0;
  int max_attempts = 3;
  double lease_seconds = 60;
  // Evaluation cost: `rungs` scores a trial at ASHA's rung epochs (and eval_last, the final
  // epoch) instead of every epoch; eval_every / eval_last set the trials' --eval-every /
  // --eval-last (none: [train]'s). With ASHA, its rung epochs are always evaluated.
  enum class EvalEpochs { All, Rungs };
  EvalEpochs eval_epochs = EvalEpochs::All;
  std::optional<int64_t> eval_every, eval_last;
  // Trial groups sharing one device: k per GPU (CUDA MPS started by the batch script when
  // k > 1), or, on CPU, k per node with the cores split between them. 0: not set (every rank
  // by node-local rank, as before).
  int trials_per_device = 0;

  // Cross-field checks (name given, trials given for random/sobol, ranges); throws
  // lmsweep::Error. `label` names the section in messages, e.g. "sweep.ini [sweep]".
  void validate(const std::string& label = "[sweep]") const;
  void validate_objectives(const std::string& label) const;
  void validate_trial(const std::string& label) const;
  // The epochs ASHA decides at (its rungs, rounded up to whole epochs) for `epochs`; empty
  // without ASHA.
  std::vector<int64_t> rung_epochs(int64_t epochs) const;

  // Every field, with enums as their names. Stored with the study.
  nlohmann::json to_json() const;
};

// Parses [sweep] entries (keys may use `_` or `-`: gpus_per_trial = gpus-per-trial) and
// validates. Throws lmsweep::Error for an unknown key (listing the valid ones), a key given
// twice, a value of the wrong type or out of range, or a failed validate().
SweepConfig parse_sweep_config(const KeyValues& entries, const std::string& label = "[sweep]");

}  // namespace lmsweep::sweep
