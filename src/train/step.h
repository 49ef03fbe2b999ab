#pragma once
// One training step of LM-CLIP and what it needs per epoch. Nothing here reads a value back
// from the device: the step's loss stays on the device (EpochLoss sums it there) and every
// length or count is known on the host, so a GPU never waits for the host or the host for it.
#include <cstdint>
#include <deque>

#include <ATen/core/Tensor.h>

#include "compat/torch_compat.h"
#include "train/run.h"

namespace lmsweep {

// The epoch's sampling order and flips, drawn on the host from (seed, epoch[, step]) streams
// (recomputable at any step: a run resumed mid-epoch continues as if never stopped), then
// copied to the device once.
struct EpochPlan {
  int64_t epoch = 0;     // 0-based
  int64_t steps = 0;     // ceil(N / B); the last batch may be short
  double lr = 0;         // cosine annealing per epoch (T_max = epochs, eta_min = 0)
  at::Tensor order;      // [N] int64 CPU: image of each position
  at::Tensor order_dev;  // the same on the device
  at::Tensor flip_dev;   // [N] bool on the device (undefined without flips)
};
EpochPlan plan_epoch(const TrainRun& run, int64_t epoch);

// The global batch of `step` and this rank's rows of it.
struct BatchSlice {
  int64_t begin = 0, size = 0;  // positions [begin, begin + size) of the epoch's order
  int64_t lo = 0, hi = 0;       // this rank's rows, relative to begin
};
BatchSlice batch_slice(const TrainRun& run, int64_t step);

// Forward, L = L_CLIP + lambda * BAL, backward, gradient all-reduce, AdamW: the step's loss
// [] float32 on the device.
at::Tensor train_step(TrainRun& run, const EpochPlan& plan, int64_t step);

// The batch-size-weighted sum of an epoch's step losses (reference AvgMeter), kept on the
// device in float64 (the same arithmetic as summing on the host), and the first step whose
// loss was not finite.
class EpochLoss {
 public:
  EpochLoss(const c10::Device& device, double resumed_sum = 0);
  void add(const at::Tensor& loss, int64_t batch, int64_t step);
  double sum() const;                    // reads the device (epoch end, interruption)
  int64_t first_nonfinite_step() const;  // -1 when every loss was finite

 private:
  at::Tensor sum_, first_bad_;
};

// A stop request (SIGUSR1 / SIGTERM) seen by any rank of a group stops every rank at the same
// step boundary. The vote of boundary t is all-reduced on the model's device at once and read
// at boundary t + lag: by then the device has long finished it, so the host does not wait for
// the step in flight. With one rank the request takes effect at once.
class StopVote {
 public:
  StopVote(Collectives* group, const c10::Device& device, int lag = 2);
  // Every rank calls it at every step boundary; all return the same value.
  bool operator()(bool stop_requested_here);

 private:
  struct Ballot {
    at::Tensor device_flag, host_flag;
    compat::DeviceEvent copied;
  };
  Collectives* group_;
  c10::Device device_;
  int lag_;
  std::deque<Ballot> pending_;
};

}  // namespace lmsweep
