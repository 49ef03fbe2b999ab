#include "train/adamw.h"

#include <map>
#include <vector>

#include <ATen/ATen.h>

#include "common/error.h"
#include "compat/torch_compat.h"

namespace lmsweep {

AdamWImpl resolve_adamw_impl(const std::string& name, const c10::Device& device) {
  if (name == "loop") return AdamWImpl::Loop;
  if (name == "foreach") return AdamWImpl::Foreach;
  if (name == "fused") {
    LMSWEEP_CHECK(compat::has_fused_adamw(device), "--adamw fused: LibTorch {} has no fused AdamW for {}; use foreach",
                  compat::torch_version(), device.str());
    return AdamWImpl::Fused;
  }
  LMSWEEP_CHECK(name == "auto", "--adamw = '{}': valid: auto, fused, foreach, loop", name);
  return compat::has_fused_adamw(device) ? AdamWImpl::Fused : AdamWImpl::Foreach;
}

std::string to_string(AdamWImpl impl) {
  switch (impl) {
    case AdamWImpl::Loop: return "loop";
    case AdamWImpl::Foreach: return "foreach";
    case AdamWImpl::Fused: return "fused";
  }
  return "?";
}

namespace {
// Tensors whose state is at the same step count: one multi-tensor call each.
struct Bucket {
  std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs;
};
}  // namespace

void adamw_step(torch::optim::AdamW& optimizer, AdamWImpl impl) {
  if (impl == AdamWImpl::Loop) {
    optimizer.step();
    return;
  }
  at::NoGradGuard no_grad;
  for (auto& group : optimizer.param_groups()) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    LMSWEEP_CHECK(!o.amsgrad(), "internal: the trainer's AdamW has no amsgrad");
    compat::AdamWHyper h;
    h.lr = o.lr();
    h.beta1 = std::get<0>(o.betas());
    h.beta2 = std::get<1>(o.betas());
    h.eps = o.eps();
    h.weight_decay = o.weight_decay();
    std::map<int64_t, Bucket> buckets;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;  // as AdamW::step: no gradient, no update, no decay
      auto& state = compat::adamw_state(optimizer, p);
      state.step(state.step() + 1);
      auto& b = buckets[state.step()];
      b.params.push_back(p);
      b.grads.push_back(p.grad());
      b.exp_avgs.push_back(state.exp_avg());
      b.exp_avg_sqs.push_back(state.exp_avg_sq());
    }
    for (auto& [step, b] : buckets) {
      if (impl == AdamWImpl::Fused) compat::fused_adamw(b.params, b.grads, b.exp_avgs, b.exp_avg_sqs, step, h);
      else compat::foreach_adamw(b.params, b.grads, b.exp_avgs, b.exp_avg_sqs, step, h);
    }
  }
}

}  // namespace lmsweep
