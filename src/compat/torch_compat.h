#pragma once
// The calls that differ between Debian's LibTorch 1.13 (CPU) and the official LibTorch 2.x
// (CUDA, NCCL), behind one interface, so the rest of lmsweep is written once.
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch/optim/adamw.h>

namespace lmsweep::compat {

// "2.11.0", "1.13.1".
std::string torch_version();
bool built_with_cuda();     // this LibTorch has CUDA kernels (a GPU may still be absent)
int cuda_device_count();    // visible GPUs; 0 on CPU builds; creates no CUDA context

// Makes GPU `index` current for the calling thread (CUDA's device guard), before any CUDA
// work of that thread, so that no context lands on GPU 0.
void set_current_cuda_device(int index);
int current_cuda_device();  // this thread's current GPU

// softmax(q k^T / sqrt(hd) [+ causal mask]) v. q, k, v: [B, H, L, hd] -> [B, H, L, hd].
// 2.x: at::scaled_dot_product_attention (flash / memory-efficient kernels on CUDA);
// 1.13: explicit_attention.
at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        bool causal);
// The same written out; the softmax is computed in fp32 whatever the inputs' dtype.
at::Tensor explicit_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool causal);
bool has_fused_attention();  // scaled_dot_product_attention is ATen's

// Autocast for the scope of the guard: matmuls, linears and convolutions of `device`'s type
// run in `dtype` (bf16); the previous state is restored (and the cast cache cleared) on exit.
// enabled = false: a no-op guard.
class AutocastGuard {
 public:
  AutocastGuard(c10::DeviceType device, bool enabled, at::ScalarType dtype = at::kBFloat16);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType device_;
  bool enabled_, previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kBFloat16;
};

// TF32 tensor cores for fp32 matmuls and convolutions on CUDA (LibTorch's global context:
// set at every trial's start, so one trial's choice never leaks into the next).
void set_tf32(bool enabled);

// AdamW's update (decoupled weight decay, bias correction) on lists of tensors at once.
// fused: ATen's one-kernel _fused_adamw_ (2.x; CUDA, and CPU from 2.4) where it exists,
// otherwise the _foreach_ multi-tensor ops, written as torch::optim::AdamW::step so that on
// CPU the result is the same to the bit. `step` is the step count after this update (>= 1).
struct AdamWHyper {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};
bool has_fused_adamw(const c10::Device& device);
void foreach_adamw(std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
                   std::vector<at::Tensor>& exp_avgs, std::vector<at::Tensor>& exp_avg_sqs, int64_t step,
                   const AdamWHyper& h);
void fused_adamw(std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
                 std::vector<at::Tensor>& exp_avgs, std::vector<at::Tensor>& exp_avg_sqs, int64_t step,
                 const AdamWHyper& h);
// torch::optim::AdamW's state of `param`, created as AdamW::step creates it (step 0, zero
// moments) when absent. Its map's key differs between 1.13 and 2.x.
torch::optim::AdamWParamState& adamw_state(torch::optim::AdamW& optimizer, const at::Tensor& param);

// A marker in the device's work queue: the host can wait for the work queued before it
// without waiting for what was queued after. On CPU everything has already run.
class DeviceEvent {
 public:
  DeviceEvent() = default;
  void record(const c10::Device& device);
  void synchronize();  // waits for the work queued before record()

 private:
  std::shared_ptr<void> impl_;
};

// Pinned (page-locked) host memory where the device is CUDA (asynchronous copies), plain
// host memory otherwise.
at::Tensor host_buffer_like(const at::Tensor& device_tensor);

}  // namespace lmsweep::compat
