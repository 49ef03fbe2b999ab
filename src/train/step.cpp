#include "train/step.h"

#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "common/error.h"
#include "train/collectives.h"

namespace lmsweep {
namespace {

uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
// Independent streams for (seed, epoch[, step]).
at::Generator stream(uint64_t seed, uint64_t epoch, uint64_t step = ~0ull) {
  return at::detail::createCPUGenerator(splitmix(splitmix(splitmix(seed) ^ epoch) ^ step) >> 1);
}

// All-gather of rows with the gradient flowing back to this rank's rows only: with the
// gradients then summed over ranks, the step equals one process on the global batch.
struct GatherRowsFn : public torch::autograd::Function<GatherRowsFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::Tensor local, int64_t offset,
                            Collectives* group, std::vector<int64_t> rows) {
    ctx->saved_data["offset"] = offset;
    ctx->saved_data["count"] = local.size(0);
    return group->all_gather_rows(local.detach().contiguous(), rows);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const int64_t offset = ctx->saved_data["offset"].toInt(), count = ctx->saved_data["count"].toInt();
    return {grads[0].narrow(0, offset, count), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor gather_rows(const at::Tensor& local, int64_t offset, int64_t total, const TrainRun& run) {
  if (run.world == 1) return local;
  return GatherRowsFn::apply(local, offset, run.group, rows_per_rank(total, run.world));
}

at::Tensor l2_normalize(const at::Tensor& x) { return x / x.norm(2, -1, true); }

// Gradients summed over the group in buckets of ~32 MB (fewer, larger collectives).
void all_reduce_gradients(std::vector<at::Tensor>& params, Collectives* group) {
  constexpr int64_t kBucketBytes = 32 << 20;
  std::vector<at::Tensor> bucket;
  int64_t bytes = 0;
  auto flush = [&] {
    if (bucket.empty()) return;
    std::vector<at::Tensor> views;
    for (auto& g : bucket) views.push_back(g.view(-1));
    std::vector<at::Tensor> flat{torch::cat(views)};
    group->all_reduce_sum(flat);
    int64_t at = 0;
    for (auto& g : bucket) {
      g.view(-1).copy_(flat[0].narrow(0, at, g.numel()));
      at += g.numel();
    }
    bucket.clear();
    bytes = 0;
  };
  for (auto p : params) {
    // Every rank must reduce the same tensors: a parameter this rank gave no gradient (the
    // logit scale off rank 0) contributes zeros.
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    auto g = p.grad();
    bucket.push_back(g);
    bytes += g.numel() * g.element_size();
    if (bytes >= kBucketBytes) flush();
  }
  flush();
}

struct Features {
  at::Tensor image, caption, prompt;  // L2-normalised, fp32, gathered over the group
};

// The towers, under autocast with --precision bf16; the normalisation and the losses in fp32.
Features encode_batch(TrainRun& run, const EpochPlan& plan, const BatchSlice& b) {
  RunData& d = run.data;
  const at::Tensor idx_local = plan.order_dev.narrow(0, b.begin + b.lo, b.hi - b.lo);
  at::Tensor flip;
  if (plan.flip_dev.defined()) flip = plan.flip_dev.narrow(0, b.begin + b.lo, b.hi - b.lo);
  Features f;
  at::Tensor caption_raw, prompt_raw, image_raw;
  {
    compat::AutocastGuard autocast(run.device.type(), run.bf16);
    const auto x = to_model_input(d.train_pixels.index_select(0, idx_local), d.norm, flip);
    image_raw = run.model->encode_image(x);
    // The text is run up to the batch's last EOT, known from host-side token ids.
    int64_t caption_length = 0;
    const int64_t* order = plan.order.data_ptr<int64_t>();
    for (int64_t i = b.begin + b.lo; i < b.begin + b.hi; ++i)
      caption_length = std::max(caption_length, d.caption_eot[static_cast<size_t>(order[i])] + 1);
    const auto& e = run.embedding;
    if (run.uses_captions && run.uses_prompts) {
      // One text pass for captions and class prompts (rows are independent).
      const at::Tensor caps = d.captions.index_select(0, idx_local);
      auto text = run.model->encode_text(torch::cat({caps, d.local_prompts}), e.rows, e.row_of_token,
                                         std::max(caption_length, d.local_prompt_length));
      caption_raw = text.narrow(0, 0, caps.size(0));
      prompt_raw = text.narrow(0, caps.size(0), d.local_prompts.size(0));
    } else if (run.uses_captions) {
      caption_raw = run.model->encode_text(d.captions.index_select(0, idx_local), e.rows, e.row_of_token, caption_length);
    } else {
      prompt_raw = run.model->encode_text(d.local_prompts, e.rows, e.row_of_token, d.local_prompt_length);
    }
  }
  f.image = gather_rows(l2_normalize(image_raw.to(torch::kFloat)), b.lo, b.size, run);
  if (caption_raw.defined()) f.caption = gather_rows(l2_normalize(caption_raw.to(torch::kFloat)), b.lo, b.size, run);
  if (prompt_raw.defined())
    f.prompt = gather_rows(l2_normalize(prompt_raw.to(torch::kFloat)), d.prompt_lo, d.classes, run);
  return f;
}

}  // namespace

EpochPlan plan_epoch(const TrainRun& run, int64_t epoch) {
  const TrainOptions& o = run.options;
  const int64_t n = run.data.train_size, b = o.batch_size;
  EpochPlan p;
  p.epoch = epoch;
  p.steps = (n + b - 1) / b;
  p.lr = o.lr * (1.0 + std::cos(M_PI * static_cast<double>(epoch) / static_cast<double>(o.epochs))) / 2.0;
  {
    auto gen = stream(o.seed, static_cast<uint64_t>(epoch));
    if (o.sampling == "weighted") p.order = torch::multinomial(run.data.sample_weights, n, /*replacement=*/true, gen);
    else if (o.sampling == "uniform") p.order = torch::randperm(n, gen, torch::kLong);
    else p.order = torch::arange(n, torch::kLong);
  }
  p.order = p.order.contiguous();
  p.order_dev = p.order.to(run.device);
  if (o.flip > 0) {
    std::vector<at::Tensor> flips;
    for (int64_t s = 0; s < p.steps; ++s) {
      auto gen = stream(o.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(s));
      flips.push_back(torch::rand({std::min(b, n - s * b)}, gen) < o.flip);
    }
    p.flip_dev = torch::cat(flips).to(run.device);
  }
  return p;
}

BatchSlice batch_slice(const TrainRun& run, int64_t step) {
  const int64_t b = run.options.batch_size;
  BatchSlice s;
  s.begin = step * b;
  s.size = std::min(b, run.data.train_size - s.begin);
  const RowRange mine = rank_rows(s.size, run.rank, run.world);
  s.lo = mine.begin;
  s.hi = mine.end;
  return s;
}

at::Tensor train_step(TrainRun& run, const EpochPlan& plan, int64_t step) {
  const BatchSlice b = batch_slice(run, step);
  const Features f = encode_batch(run, plan, b);
  // logit_scale enters the loss directly: let one rank carry its gradient.
  at::Tensor scale = run.model->logit_scale.exp();
  if (run.rank != 0) scale = scale.detach();
  at::Tensor logits, targets;
  if (run.uses_prompts) {
    logits = scale * f.image.matmul(f.prompt.t());
    targets = run.data.targets.index_select(0, plan.order_dev.narrow(0, b.begin, b.size));
  }
  auto loss = lmclip_loss(f.image, f.caption, logits, targets, run.data.class_weights, scale, run.loss);
  // Gradients reset rather than zeroed, as the reference's zero_grad(set_to_none=True).
  for (auto& p : run.params) p.mutable_grad().reset();
  loss.backward();
  if (run.world > 1) all_reduce_gradients(run.params, run.group);
  adamw_step(*run.optimizer, run.adamw);
  run.embedding.decay_table(plan.lr, TrainRun::kWeightDecay);  // AdamW on the rows no token reads
  return loss.detach();
}

EpochLoss::EpochLoss(const c10::Device& device, double resumed_sum)
    : sum_(torch::full({}, resumed_sum, torch::TensorOptions().dtype(torch::kDouble).device(device))),
      first_bad_(torch::full({}, -1, torch::TensorOptions().dtype(torch::kLong).device(device))) {}

void EpochLoss::add(const at::Tensor& loss, int64_t batch, int64_t step) {
  sum_.add_(loss.to(torch::kDouble) * static_cast<double>(batch));
  first_bad_.masked_fill_(first_bad_.lt(0).logical_and(loss.isfinite().logical_not()), step);
}

double EpochLoss::sum() const { return sum_.cpu().data_ptr<double>()[0]; }
int64_t EpochLoss::first_nonfinite_step() const { return first_bad_.cpu().data_ptr<int64_t>()[0]; }

StopVote::StopVote(Collectives* group, const c10::Device& device, int lag)
    : group_(group && group->world_size() > 1 ? group : nullptr), device_(device), lag_(lag) {}

bool StopVote::operator()(bool here) {
  if (!group_) return here;
  Ballot b;
  b.device_flag = torch::full({1}, here ? 1.0f : 0.0f, torch::TensorOptions().device(device_));
  std::vector<at::Tensor> flag{b.device_flag};
  group_->all_reduce_sum(flag);
  b.host_flag = compat::host_buffer_like(b.device_flag);
  b.host_flag.copy_(b.device_flag, /*non_blocking=*/true);
  b.copied.record(device_);
  pending_.push_back(std::move(b));
  if (static_cast<int>(pending_.size()) <= lag_) return false;
  Ballot old = std::move(pending_.front());
  pending_.pop_front();
  old.copied.synchronize();  // queued lag steps ago: long done
  return old.host_flag.data_ptr<float>()[0] > 0;
}

}  // namespace lmsweep
