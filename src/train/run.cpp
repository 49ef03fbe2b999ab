#include "train/run.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "common/error.h"
#include "compat/torch_compat.h"
#include "data/sampling.h"
#include "model/checkpoint.h"
#include "text/bpe_tokenizer.h"
#include "train/collectives.h"
#include "train/image_cache.h"
#include "train/trainer.h"

namespace lmsweep {

std::vector<int64_t> eot_positions(const at::Tensor& tokens) {
  const auto t = tokens.to(torch::kLong).contiguous();
  const int64_t n = t.size(0), l = t.size(1);
  const int64_t* p = t.data_ptr<int64_t>();  // host memory: no ATen op, nothing to wait for
  std::vector<int64_t> out(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 1; j < l; ++j)
      if (p[i * l + j] > p[i * l + out[i]]) out[i] = j;  // the first maximum, as argmax
  return out;
}

void CompactEmbedding::decay_table(double lr, double weight_decay) {
  torch::NoGradGuard no_grad;
  table.mul_(1.0 - lr * weight_decay);
}
void CompactEmbedding::write_back() {
  torch::NoGradGuard no_grad;
  table.index_copy_(0, active_ids, rows.detach());
}
void CompactEmbedding::read_back() {
  torch::NoGradGuard no_grad;
  rows.copy_(table.index_select(0, active_ids));
}

void TrainRun::set_lr(double lr) {
  for (auto& g : optimizer->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
}

namespace {

// Splits, labels, class counts and weights (the host side of the data).
void read_data(TrainRun& r) {
  const TrainOptions& o = r.options;
  RunData& d = r.data;
  d.labels = read_label_names(o.labels);
  d.classes = static_cast<int64_t>(d.labels.names.size());
  d.train = read_split(o.train, d.classes);
  d.test = read_split(o.test, d.classes);
  LMSWEEP_CHECK(!d.train.entries.empty(), "{}: the training split is empty", o.train);
  LMSWEEP_CHECK(!d.test.entries.empty(), "{}: the test split is empty", o.test);
  d.train_size = static_cast<int64_t>(d.train.entries.size());
  const auto counts = class_counts(d.train, d.classes);
  d.groups = group_classes(counts);
  const bool weighted_bal = r.loss.kind == LossKind::Bal || r.loss.kind == LossKind::ClipBal;
  if (r.uses_prompts && o.class_weights && weighted_bal)  // reference: pos_weight
    d.class_weights = class_weights_from_counts(counts, d.train_size, o.s, d.labels.names).to(r.device);
  if (o.sampling == "weighted")
    d.sample_weights =
        torch::tensor(image_sampling_weights(d.train, counts, o.effective_sample_power()), torch::kDouble);
}

Clip build_model(const TrainOptions& o) {
  if (!o.weights.empty()) return load_clip(o.weights);
  torch::manual_seed(o.seed);  // random weights are a function of the seed
  return Clip(ClipConfig::parse(o.arch));
}

// Images, tokens and targets, moved to the device once.
void place_inputs(TrainRun& r, const BpeTokenizer& tokenizer, ImageCache& cache) {
  const TrainOptions& o = r.options;
  RunData& d = r.data;
  const ClipConfig& cfg = r.model->config();
  ImageCacheOptions shared;
  shared.dir = resolve_image_cache_dir(o.cache_dir);
  d.train_images = cache.get(o.data_root, d.train, cfg.image_resolution, o.threads, shared);
  d.test_images = cache.get(o.data_root, d.test, cfg.image_resolution, o.threads, shared);
  // CPU: shares the decoded images, possibly a read-only mapping of the node's cache file;
  // train and eval only read them (index_select / narrow + to(float) make copies).
  d.train_pixels = image_set_tensor(*d.train_images).to(r.device);
  d.test_pixels = image_set_tensor(*d.test_images);
  d.norm = normalization_tensors(ImageNormalization::from_name(o.normalize), r.device);
  const at::Tensor captions = caption_tokens(tokenizer, o.prompt, d.labels.names, d.train, cfg.context_length);
  d.caption_eot = eot_positions(captions);
  d.captions = captions.to(r.device);
  d.prompts = class_prompt_tokens(tokenizer, o.prompt, d.labels.names, cfg.context_length);
  // This rank's class prompts (each rank encodes a slice; gathered with gradient).
  const RowRange mine = rank_rows(d.classes, r.rank, r.world);
  d.prompt_lo = mine.begin;
  const at::Tensor local = d.prompts.narrow(0, mine.begin, mine.size());
  for (int64_t e : eot_positions(local)) d.local_prompt_length = std::max(d.local_prompt_length, e + 1);
  d.local_prompts = local.to(r.device);
  const auto train_hot = multi_hot(d.train, d.classes);
  d.targets = torch::from_blob(const_cast<uint8_t*>(train_hot.data()), {d.train_size, d.classes}, torch::kUInt8)
                  .to(torch::kFloat)
                  .to(r.device);
  d.test_hot = multi_hot(d.test, d.classes);
}

void set_up_embedding(TrainRun& r) {
  CompactEmbedding& e = r.embedding;
  e.table = r.model->token_embedding->weight;
  const auto ids = std::get<0>(
      at::_unique(torch::cat({r.data.captions.cpu().flatten(), r.data.prompts.flatten()}), /*sorted=*/true));
  e.active_ids = ids.to(r.device);
  auto row_of_token = torch::zeros({r.model->config().vocab_size}, torch::kLong);
  row_of_token.index_put_({ids}, torch::arange(ids.size(0), torch::kLong));
  e.row_of_token = row_of_token.to(r.device);
  torch::NoGradGuard no_grad;
  e.rows = e.table.index_select(0, e.active_ids).clone().set_requires_grad(true);
}

void set_up_optimizer(TrainRun& r) {
  for (const auto& p : r.model->parameters())
    if (!p.is_same(r.embedding.table)) r.params.push_back(p);
  r.params.push_back(r.embedding.rows);
  r.optimizer = std::make_unique<torch::optim::AdamW>(
      r.params, torch::optim::AdamWOptions(r.options.lr)
                    .betas(std::make_tuple(0.9, 0.98))
                    .eps(1e-9)
                    .weight_decay(TrainRun::kWeightDecay));
  r.adamw = resolve_adamw_impl(r.options.adamw, r.device);
}

}  // namespace

std::unique_ptr<TrainRun> set_up_run(const TrainOptions& options, Collectives* group, ImageCache* images) {
  options.validate();
  auto run = std::make_unique<TrainRun>();
  TrainRun& r = *run;
  r.options = options;
  r.loss = loss_options(options);
  r.uses_captions = r.loss.kind == LossKind::Clip || r.loss.kind == LossKind::ClipBal || r.loss.kind == LossKind::ClipAsl;
  r.uses_prompts = r.loss.kind != LossKind::Clip;
  r.group = group;
  r.rank = group ? group->rank() : 0;
  r.world = group ? group->world_size() : 1;
  r.bf16 = options.precision == "bf16";
  if (options.threads > 0) at::set_num_threads(options.threads);
  r.device = parse_device(options.device);
  if (r.device.is_cuda()) {
    compat::set_current_cuda_device(r.device.has_index() ? r.device.index() : 0);
    compat::set_tf32(options.tf32);  // every run sets it: no trial inherits another's
  }
  read_data(r);

  const BpeTokenizer tokenizer = options.bpe.empty() ? BpeTokenizer::byte_level() : BpeTokenizer::from_file(options.bpe);
  r.model = build_model(options);
  const ClipConfig& cfg = r.model->config();
  check_vocabulary(tokenizer, cfg, options.bpe, options.weights);
  r.model->to(r.device);
  if (r.world > 1) {  // every rank starts from rank 0's weights
    std::vector<at::Tensor> tensors;
    for (auto& p : r.model->parameters()) tensors.push_back(p.data());
    for (auto& b : r.model->buffers()) tensors.push_back(b);
    group->broadcast(tensors, 0);
  }
  ImageCache local_cache;
  place_inputs(r, tokenizer, images ? *images : local_cache);
  set_up_embedding(r);
  set_up_optimizer(r);
  return run;
}

}  // namespace lmsweep
