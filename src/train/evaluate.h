#pragma once
// Scoring a test split with a CLIP as the reference evaluates (valid_epoch / test.py): class
// prompts "a photo of a <name>", logits = logit_scale.exp() * cosine, scores = softmax over
// classes, then the metrics of eval/metrics.h.
#include <array>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "data/dataset.h"
#include "data/image.h"
#include "eval/metrics.h"
#include "model/clip.h"
#include "text/bpe_tokenizer.h"

namespace lmsweep {

class Collectives;

struct ImageNormalization {
  std::array<float, 3> mean{}, std{};
  // "imagenet" (the reference's training transform) or "clip" (OpenAI's preprocess).
  static ImageNormalization from_name(const std::string& name);
};

// mean / std as [1, 3, 1, 1] float tensors on a device, built once per run.
struct NormalizationTensors {
  at::Tensor mean, std;
};
NormalizationTensors normalization_tensors(const ImageNormalization& norm, const c10::Device& device);

// uint8 images [B, S, S, 3] (on norm's device) -> float [B, 3, S, S], /255 then (x - mean) / std.
// flip: optional bool [B]; true rows are mirrored horizontally.
at::Tensor to_model_input(const at::Tensor& images_u8, const NormalizationTensors& norm,
                          const at::Tensor& flip = {});
at::Tensor to_model_input(const at::Tensor& images_u8, const ImageNormalization& norm,
                          const at::Tensor& flip = {});

// The uint8 pixels of an ImageSet as a tensor [N, S, S, 3] sharing its memory, which may be a
// read-only mapping of the node's image cache (data/image_cache_file.h): read it, never write it.
at::Tensor image_set_tensor(const ImageSet& images);

// "a photo of a " + name for every class: [C, context] int64.
at::Tensor class_prompt_tokens(const BpeTokenizer& tokenizer, const std::string& prompt,
                               const std::vector<std::string>& names, int64_t context_length);
// The reference's caption: prompt + ", ".join(names of the labels, in split-file order).
std::string caption_text(const std::string& prompt, const std::vector<std::string>& names,
                         const std::vector<int>& labels);
// [N, context] int64. Too long captions lose whole words from the end (the reference retries
// clip.tokenize with fewer words); the end token is always kept.
at::Tensor caption_tokens(const BpeTokenizer& tokenizer, const std::string& prompt,
                          const std::vector<std::string>& names, const Split& split,
                          int64_t context_length);

struct SplitScores {
  at::Tensor logits;      // [N, C] float CPU
  at::Tensor scores;      // [N, C] softmax over classes, float CPU
  at::Tensor embeddings;  // [N, D] L2-normalised image embeddings, float CPU
};

// Evaluation mode, no gradient. images: [N, S, S, 3] uint8 CPU; prompts: [C, context].
// With collectives, each rank scores a slice of the images and all ranks get everything.
// bf16: under autocast (the logits and embeddings are returned in fp32).
SplitScores score_images(Clip& model, const at::Tensor& images, const at::Tensor& prompts,
                         const ImageNormalization& norm, int64_t batch_size,
                         const c10::Device& device, Collectives* collectives = nullptr, bool bf16 = false);

// labels: [N, C] 0/1 (data/dataset.h multi_hot); groups may be null (no training split).
EvalMetrics evaluate_scores(const SplitScores& scores, const std::vector<uint8_t>& labels,
                            const ClassGroups* groups);

// The tokenizer must be the model's: it may not have more tokens than the embedding, and a
// checkpoint's (weights non-empty) vocabulary larger than the byte-level one (OpenAI's 49,408)
// needs its BPE file: without --bpe such a model would score byte-level ids, silently wrong.
void check_vocabulary(const BpeTokenizer& tokenizer, const ClipConfig& config, const std::string& bpe,
                      const std::string& weights);

// "cpu", "cuda", "cuda:1"; fails clearly when CUDA is asked of a CPU build or no GPU is seen.
c10::Device parse_device(const std::string& name);

}  // namespace lmsweep
