#pragma once
// A run's state, set up once before its first step: the data resident on the model's device,
// the model, its compact token embedding and the optimizer (src/train/trainer.h runs it).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/optim/adamw.h>

#include "data/dataset.h"
#include "data/image.h"
#include "eval/metrics.h"
#include "loss/losses.h"
#include "model/clip.h"
#include "train/adamw.h"
#include "train/evaluate.h"
#include "train/options.h"

namespace lmsweep {

class Collectives;
class ImageCache;

// What the steps and the evaluations read, built once per run.
struct RunData {
  LabelNames labels;
  Split train, test;
  int64_t classes = 0, train_size = 0;
  ClassGroups groups;
  at::Tensor class_weights;   // [C] float64 on the device, undefined without BAL's weights
  at::Tensor sample_weights;  // [N] float64 CPU (the sampler runs on the host), or undefined
  std::shared_ptr<const ImageSet> train_images, test_images;
  at::Tensor train_pixels;    // [N, S, S, 3] uint8 on the device: no per-step host copy
  at::Tensor test_pixels;     // [M, S, S, 3] uint8 CPU, scored in batches
  at::Tensor captions;        // [N, context] int64 on the device
  std::vector<int64_t> caption_eot;  // [N] host: each caption's EOT position
  at::Tensor prompts;         // [C, context] int64 CPU (evaluation)
  at::Tensor local_prompts;   // this rank's slice of the class prompts, on the device
  int64_t prompt_lo = 0;      // its first row
  int64_t local_prompt_length = 0;  // last EOT + 1 over the slice (host)
  at::Tensor targets;         // [N, C] float 0/1 on the device
  std::vector<uint8_t> test_hot;  // [M * C]
  NormalizationTensors norm;  // mean / std [1, 3, 1, 1] on the device
};

// CLIP's token table is mostly rows no caption or prompt reads: they get a zero gradient at
// every step, so AdamW only decays them (p *= 1 - lr * wd; their moments stay 0). AdamW runs
// on the active rows as a small parameter of their own and the whole table is decayed with one
// multiply: the same arithmetic as AdamW over the full table, at a fraction of the cost.
struct CompactEmbedding {
  at::Tensor table;         // token_embedding.weight [vocab, width]
  at::Tensor active_ids;    // [R] int64 on the device, sorted
  at::Tensor row_of_token;  // [vocab] int64 on the device
  at::Tensor rows;          // [R, width], the parameter AdamW updates
  void decay_table(double lr, double weight_decay);  // the inactive rows' AdamW update
  void write_back();        // rows -> table (before an evaluation or a save)
  void read_back();         // table -> rows (after loading a state)
};

struct TrainRun {
  TrainOptions options;
  LmClipLossOptions loss;
  bool uses_captions = true, uses_prompts = true;
  Collectives* group = nullptr;
  int rank = 0, world = 1;
  c10::Device device{c10::kCPU};
  bool bf16 = false;
  RunData data;
  Clip model{nullptr};
  CompactEmbedding embedding;
  std::vector<at::Tensor> params;  // what AdamW updates (the model's but the table, then rows)
  std::unique_ptr<torch::optim::AdamW> optimizer;
  AdamWImpl adamw = AdamWImpl::Foreach;
  static constexpr double kWeightDecay = 0.01;

  bool leader() const { return rank == 0; }
  void set_lr(double lr);
};

// Validates the options, reads the data (decoded images from `images`, may be null), builds
// or loads the model and moves everything to the device. Throws lmsweep::Error for bad input.
std::unique_ptr<TrainRun> set_up_run(const TrainOptions& options, Collectives* group, ImageCache* images);

// Each row's EOT position (the highest id, as encode_text finds it). tokens: [N, L] int64 CPU.
std::vector<int64_t> eot_positions(const at::Tensor& tokens);

}  // namespace lmsweep
