#pragma once
// One LM-CLIP fine-tuning run, as the reference implementation trains (damilab/lm-clip
// train.py, model_openai_clip.py; DESIGN.md section 1): per step, images, captions and all
// class prompts are encoded with gradient, L = L_CLIP + lambda * BAL, AdamW; cosine annealing
// per epoch; the test split evaluated after every epoch.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "data/image.h"
#include "train/image_cache.h"
#include "eval/metrics.h"
#include "train/options.h"

namespace lmsweep {

class Collectives;

struct EpochResult {
  int64_t epoch = 0;        // 1-based
  int64_t epochs = 0;       // of the run
  double train_loss = 0;    // batch-size-weighted mean of the step losses (reference AvgMeter)
  double lr = 0;            // rate used in this epoch
  double seconds = 0;       // training + evaluation
  int64_t images = 0;       // training images seen
  bool evaluated = true;    // false: not scored (TrainOptions::evaluates); metrics are empty
  EvalMetrics metrics;
  // The classes as the report orders and names them (Figure 6): set on the first epoch a call
  // of train_lmclip runs, empty on the others.
  std::vector<std::string> class_names;     // [C]
  std::vector<int64_t> class_train_count;   // [C] training images holding each class
};

enum class RunEnd { Completed, Stopped /* by on_epoch, e.g. ASHA */, Interrupted /* stop_requested */ };

struct TrainResult {
  RunEnd end = RunEnd::Completed;
  std::vector<EpochResult> epochs;  // the epochs run by this call (after a resume: the rest)
  int64_t best_map_epoch = 0, best_tail_epoch = 0;
  double best_map = 0, best_tail = 0;
};

// What the caller hooks into a run; everything optional.
struct TrainHooks {
  std::function<void(const std::string&)> log;               // progress lines (default: stdout)
  std::function<bool(const EpochResult&)> on_epoch;           // false: stop after this epoch
  std::function<bool()> stop_requested;                       // checked at every step boundary
  std::function<void()> at_step;                              // before every step (may throw)
  Collectives* collectives = nullptr;                         // data-parallel group
  ImageCache* images = nullptr;                               // shared decoded images
  bool quiet = false;                                         // no per-epoch lines
};

struct LmClipLossOptions;
// The loss settings of a run's options (--loss, --lambda, --gamma-neg, ...), validated.
LmClipLossOptions loss_options(const TrainOptions& options);

// Throws lmsweep::Error for invalid options or inputs (before any training).
// The parts, each testable alone: set_up_run (train/run.h), plan_epoch and train_step
// (train/step.h), evaluate_epoch, save_state / load_state (train/resume_state.h).
TrainResult train_lmclip(const TrainOptions& options, const TrainHooks& hooks = {});

struct TrainRun;
// The test split scored by the run's model (compact embedding written back first).
EvalMetrics evaluate_epoch(TrainRun& run);

// The JSON line --metrics-out appends for an epoch.
std::string epoch_json_line(const EpochResult& epoch);

}  // namespace lmsweep
