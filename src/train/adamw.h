#pragma once
// The trainer's AdamW update: torch::optim::AdamW's arithmetic and state (so checkpoints keep
// their format), run over all parameters at once instead of one tensor at a time.
#include <string>

#include <c10/core/Device.h>
#include <torch/optim/adamw.h>

namespace lmsweep {

enum class AdamWImpl {
  Loop,     // torch::optim::AdamW::step(): a handful of kernels per parameter
  Foreach,  // ATen's _foreach_ multi-tensor ops: the same operations in the same order
  Fused,    // ATen's _fused_adamw_: one pass (LibTorch 2.x: CUDA; CPU from 2.4)
};

// "auto": fused where LibTorch has it for `device`, else foreach. Throws lmsweep::Error when
// "fused" is asked of a LibTorch without it.
AdamWImpl resolve_adamw_impl(const std::string& name, const c10::Device& device);
std::string to_string(AdamWImpl impl);

// One AdamW update of the parameters that have a gradient, as optimizer.step() would do it;
// the state (step, exp_avg, exp_avg_sq) lives in `optimizer`. No host read of the device.
void adamw_step(torch::optim::AdamW& optimizer, AdamWImpl impl);

}  // namespace lmsweep
