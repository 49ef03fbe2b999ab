#pragma once
// Checkpointing: the resume state (model, optimizer and where the run stands) written at
// every epoch's end and at an interruption, so that --resume continues as if never stopped;
// and the best / last weights.
#include <cstdint>
#include <string>

#include "train/run.h"

namespace lmsweep {

struct ResumeState {
  int64_t next_epoch = 0, next_step = 0;  // 0-based
  double loss_sum = 0, count = 0, epoch_seconds = 0;  // of the epoch in progress
  double best_map = -1, best_tail = -1;
  int64_t best_map_epoch = 0, best_tail_epoch = 0;
};

// checkpoint_dir/state.pt
std::string state_path(const TrainOptions& options);
// Atomic (temporary file + rename). The compact embedding must be written back first.
void save_state(TrainRun& run, const ResumeState& state);
// false when there is no state yet; throws lmsweep::Error for an unreadable one or one
// written with other options.
bool load_state(TrainRun& run, ResumeState& state);

// checkpoint_dir/NAME (best_map.pt, best_map_tail.pt, last.pt), torch.save-compatible.
void save_weights(TrainRun& run, const std::string& name);

}  // namespace lmsweep
