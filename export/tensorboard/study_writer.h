#pragma once
// A study as TensorBoard shows it: one run per trial with its epochs as scalars (step = epoch)
// and the HParams dashboard's records (experiment, session start / end). Used live by `train`
// and `sweep --tensorboard DIR` and by `export --format tensorboard`. Torch-free.
//
//   DIR/                  the HParams experiment: the space's dimensions and their domains
//   DIR/trial-00003/      trial 3: session_start_info (its parameters), scalars, session_end_info
//
//   lmsweep::tensorboard::TensorBoardStudyWriter tb("runs/voc");
//   tb.begin(study, space, {"map", "map_tail"});
//   tb.trial_started(trial, trial.params_json);
//   tb.epoch(trial, record);               // tags map, map_tail, train_loss, ... at step = epoch
//   tb.trial_ended(trial, db::TrialStatus::Completed);
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "db/store.h"
#include "export/tensorboard/summaries.h"
#include "sweep/search_space.h"

namespace lmsweep::tensorboard {

struct TensorBoardOptions {
  // Put before every scalar tag, e.g. "test/" groups them in a folder of the Scalars
  // dashboard. Default none: tags are the keys of `train --metrics-out` ("map", "train_loss").
  std::string tag_prefix;
  // false: the study's one trial writes into the folder itself (`train --tensorboard`, whose
  // folder is DIR/<study>), not into trial-NNNNN below it.
  bool run_per_trial = true;
  std::string what = "--tensorboard";  // names the folder in error messages
};

// "trial-00003": zero-padded so that TensorBoard's run list (sorted as text) is by number.
std::string trial_run_name(std::int64_t number);

// `text` as one folder name: characters other than letters, digits, '.', '_' and '-' become
// '_' ("train:/ckpt/a" -> "train__ckpt_a"): `train --tensorboard DIR` writes DIR/<study>/.
std::string safe_run_name(const std::string& text);

// The epoch's scalars, as (tag without prefix, value): the record's columns that are set
// (train_loss, lr, seconds, map, map_head, map_middle, map_tail, map_single, map_multi,
// centroid_ratio), then every finite top-level number of metrics_json whose key is a metric
// name (a command trial's metrics; LM-CLIP's precision, recall, f1, centroid_ratio_head, ...).
std::vector<std::pair<std::string, double>> epoch_scalars(const db::EpochRecord& record);

// The tags an LM-CLIP study lists as HParams metrics: the maps, train_loss, centroid_ratio.
const std::vector<std::string>& lmclip_metric_tags();

// The dashboard's status for a trial that ended so; nullopt: write no session_end_info (an
// interrupted trial runs again, and TensorBoard keeps the first end info of a run it reads).
std::optional<SessionStatus> session_status(db::TrialStatus status);

// The space's dimensions as HParams infos: uniform / loguniform / int as intervals, choice
// and fixed as discrete values (no domain when a choice mixes strings and numbers).
std::vector<HParamSpec> hparam_specs(const sweep::SearchSpace& space);

class TensorBoardStudyWriter {
 public:
  // Nothing is written until begin(); `dir` is created then.
  explicit TensorBoardStudyWriter(std::string dir, TensorBoardOptions options = {});
  TensorBoardStudyWriter(TensorBoardStudyWriter&&) noexcept;
  TensorBoardStudyWriter& operator=(TensorBoardStudyWriter&&) noexcept;
  ~TensorBoardStudyWriter();  // closes the open trials' files

  // Writes the HParams experiment into a new event file of `dir` (the root run): the space's
  // dimensions and `metrics` (objectives first; duplicates dropped) with the tag prefix. An
  // empty space (a `train` run) writes none: TensorBoard then derives it from the sessions.
  // Throws lmsweep::Error naming `dir` when it cannot be created or written.
  void begin(const db::StudyInfo& study, const sweep::SearchSpace& space, const std::vector<std::string>& metrics);
  // Opens a new event file in the trial's run folder and writes session_start_info: the
  // trial's parameters (params_json, an object), group name = the run's name, start time =
  // trial.started_at (else now). A resumed trial gets another file in the same folder.
  void trial_started(const db::TrialInfo& trial, const std::string& params_json);
  // Scalars at step = record.epoch, wall time record.recorded_at (else now). The first epoch
  // of a file comes after a SessionLog START at its step, so that TensorBoard drops the epochs
  // from there on that an earlier attempt of the trial wrote.
  void epoch(const db::TrialInfo& trial, const db::EpochRecord& record);
  // session_end_info as session_status() says (end time = trial.finished_at, else now), then
  // closes the trial's file.
  void trial_ended(const db::TrialInfo& trial, db::TrialStatus status);

  const std::string& dir() const;
  std::string run_dir(const db::TrialInfo& trial) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lmsweep::tensorboard
