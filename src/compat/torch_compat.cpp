#include "compat/torch_compat.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <thread>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/Event.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "common/error.h"

// 2.4 made autocast's switches device-generic and added a CPU kernel for _fused_adamw_.
#define LMSWEEP_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace lmsweep::compat {

std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

bool built_with_cuda() {
#ifdef LMSWEEP_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() { return built_with_cuda() ? static_cast<int>(torch::cuda::device_count()) : 0; }

void set_current_cuda_device(int index) {
  LMSWEEP_CHECK(index >= 0 && index < cuda_device_count(), "GPU {} requested but {} visible", index,
                cuda_device_count());
  c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->setDevice(c10::Device(c10::DeviceType::CUDA,
                                                                               static_cast<c10::DeviceIndex>(index)));
}

int current_cuda_device() {
  return c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->getDevice().index();
}

at::Tensor explicit_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool causal) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = at::matmul(q * scale, k.transpose(-2, -1));
  if (causal) {
    const int64_t l = q.size(-2);
    scores = scores + at::full({l, l}, -std::numeric_limits<float>::infinity(), scores.options()).triu_(1);
  }
  return at::matmul(at::softmax(scores, -1, at::kFloat).to(v.scalar_type()), v);
}

bool has_fused_attention() { return LMSWEEP_TORCH_AT_LEAST(2, 0); }

at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        bool causal) {
#if LMSWEEP_TORCH_AT_LEAST(2, 0)
  return at::scaled_dot_product_attention(q, k, v, {}, 0.0, causal);
#else
  return explicit_attention(q, k, v, causal);
#endif
}

namespace {
bool autocast_enabled(c10::DeviceType d) {
#if LMSWEEP_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(d);
#else
  return d == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}
void set_autocast_enabled(c10::DeviceType d, bool on) {
#if LMSWEEP_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(d, on);
#else
  if (d == c10::DeviceType::CUDA) at::autocast::set_enabled(on); else at::autocast::set_cpu_enabled(on);
#endif
}
at::ScalarType autocast_dtype(c10::DeviceType d) {
#if LMSWEEP_TORCH_AT_LEAST(2, 4)
  return at::autocast::get_autocast_dtype(d);
#else
  return d == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}
void set_autocast_dtype(c10::DeviceType d, at::ScalarType t) {
#if LMSWEEP_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_dtype(d, t);
#else
  if (d == c10::DeviceType::CUDA) at::autocast::set_autocast_gpu_dtype(t); else at::autocast::set_autocast_cpu_dtype(t);
#endif
}
}  // namespace

AutocastGuard::AutocastGuard(c10::DeviceType device, bool enabled, at::ScalarType dtype)
    : device_(device), enabled_(enabled) {
  if (!enabled_) return;
  LMSWEEP_CHECK(device == c10::DeviceType::CPU || device == c10::DeviceType::CUDA,
                "autocast: only cpu and cuda devices");
  previous_enabled_ = autocast_enabled(device_);
  previous_dtype_ = autocast_dtype(device_);
  set_autocast_enabled(device_, true);
  set_autocast_dtype(device_, dtype);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!enabled_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast_enabled(device_, previous_enabled_);
  set_autocast_dtype(device_, previous_dtype_);
}

void set_tf32(bool enabled) {
  at::globalContext().setAllowTF32CuBLAS(enabled);
  at::globalContext().setAllowTF32CuDNN(enabled);
}

bool has_fused_adamw(const c10::Device& device) {
#if LMSWEEP_TORCH_AT_LEAST(2, 4)
  return device.is_cuda() || device.is_cpu();
#elif LMSWEEP_TORCH_AT_LEAST(2, 0)
  return device.is_cuda();
#else
  (void)device;
  return false;
#endif
}

void foreach_adamw(std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
                   std::vector<at::Tensor>& exp_avgs, std::vector<at::Tensor>& exp_avg_sqs, int64_t step,
                   const AdamWHyper& h) {
  // torch/csrc/api/src/optim/adamw.cpp, one operation at a time over every tensor.
  const double bias_correction1 = 1 - std::pow(h.beta1, static_cast<double>(step));
  const double bias_correction2 = 1 - std::pow(h.beta2, static_cast<double>(step));
  if (h.weight_decay != 0) at::_foreach_mul_(params, 1 - h.lr * h.weight_decay);
  at::_foreach_mul_(exp_avgs, h.beta1);
  at::_foreach_add_(exp_avgs, grads, 1 - h.beta1);
  at::_foreach_mul_(exp_avg_sqs, h.beta2);
  at::_foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - h.beta2);
  auto denom = at::_foreach_sqrt(exp_avg_sqs);
  at::_foreach_div_(denom, std::sqrt(bias_correction2));
  at::_foreach_add_(denom, h.eps);
  at::_foreach_addcdiv_(params, exp_avgs, denom, -h.lr / bias_correction1);
}

void fused_adamw(std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
                 std::vector<at::Tensor>& exp_avgs, std::vector<at::Tensor>& exp_avg_sqs, int64_t step,
                 const AdamWHyper& h) {
#if LMSWEEP_TORCH_AT_LEAST(2, 0)
  if (params.empty()) return;
  // The step count as the kernel reads it: one float per parameter on the device (a fill,
  // no host read). Python's AdamW increments these tensors; ours live in AdamW's state.
  const auto steps = at::full({static_cast<int64_t>(params.size())}, static_cast<double>(step),
                              params[0].options().dtype(at::kFloat));
  const auto state_steps = steps.unbind(0);
  at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, {}, state_steps, h.lr, h.beta1, h.beta2,
                    h.weight_decay, h.eps, /*amsgrad=*/false, /*maximize=*/false);
#else
  foreach_adamw(params, grads, exp_avgs, exp_avg_sqs, step, h);
#endif
}

torch::optim::AdamWParamState& adamw_state(torch::optim::AdamW& optimizer, const at::Tensor& param) {
#if LMSWEEP_TORCH_AT_LEAST(2, 0)
  auto key = param.unsafeGetTensorImpl();
#else
  auto key = c10::guts::to_string(param.unsafeGetTensorImpl());
#endif
  auto& states = optimizer.state();
  auto it = states.find(key);
  if (it == states.end()) {
    auto state = std::make_unique<torch::optim::AdamWParamState>();
    state->step(0);
    state->exp_avg(at::zeros_like(param, at::MemoryFormat::Preserve));
    state->exp_avg_sq(at::zeros_like(param, at::MemoryFormat::Preserve));
    it = states.emplace(key, std::move(state)).first;
  }
  return static_cast<torch::optim::AdamWParamState&>(*it->second);
}

namespace {
struct EventImpl {
  explicit EventImpl(c10::DeviceType t) : event(t) {}
  c10::Event event;
};
}  // namespace

void DeviceEvent::record(const c10::Device& device) {
  if (device.is_cpu()) {
    impl_.reset();
    return;
  }
  auto e = std::make_shared<EventImpl>(device.type());
  e->event.record(c10::impl::getDeviceGuardImpl(device.type())->getStream(device));
  impl_ = e;
}

void DeviceEvent::synchronize() {
  if (!impl_) return;
  auto* e = static_cast<EventImpl*>(impl_.get());
#if LMSWEEP_TORCH_AT_LEAST(2, 0)
  e->event.synchronize();
#else
  while (!e->event.query()) std::this_thread::sleep_for(std::chrono::microseconds(50));
#endif
}

at::Tensor host_buffer_like(const at::Tensor& device_tensor) {
  auto options = device_tensor.options().device(c10::kCPU);
  if (device_tensor.is_cuda()) options = options.pinned_memory(true);
  return at::empty(device_tensor.sizes(), options);
}

}  // namespace lmsweep::compat
