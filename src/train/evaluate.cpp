#include "train/evaluate.h"

#include <torch/torch.h>

#include "common/error.h"
#include "compat/torch_compat.h"
#include "train/collectives.h"

namespace lmsweep {

ImageNormalization ImageNormalization::from_name(const std::string& name) {
  if (name == "imagenet") return {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
  if (name == "clip")
    return {{0.48145466f, 0.4578275f, 0.40821073f}, {0.26862954f, 0.26130258f, 0.27577711f}};
  throw_error("--normalize = '{}': valid: imagenet, clip", name);
}

NormalizationTensors normalization_tensors(const ImageNormalization& norm, const c10::Device& device) {
  const auto opts = torch::TensorOptions().dtype(torch::kFloat).device(device);
  NormalizationTensors t;
  t.mean = torch::tensor(std::vector<float>(norm.mean.begin(), norm.mean.end())).to(opts).view({1, 3, 1, 1});
  t.std = torch::tensor(std::vector<float>(norm.std.begin(), norm.std.end())).to(opts).view({1, 3, 1, 1});
  return t;
}

at::Tensor to_model_input(const at::Tensor& images_u8, const NormalizationTensors& norm, const at::Tensor& flip) {
  auto x = images_u8.permute({0, 3, 1, 2}).to(at::kFloat).div_(255.0);
  if (flip.defined()) x = at::where(flip.view({-1, 1, 1, 1}).to(x.device()), x.flip({3}), x);
  return (x - norm.mean) / norm.std;
}

at::Tensor to_model_input(const at::Tensor& images_u8, const ImageNormalization& norm, const at::Tensor& flip) {
  return to_model_input(images_u8, normalization_tensors(norm, images_u8.device()), flip);
}

at::Tensor image_set_tensor(const ImageSet& images) {
  // The bytes may be a PROT_READ mapping shared by the node's ranks: the tensor is for reading
  // only (an in-place op on it faults). It does not keep `images` alive.
  return torch::from_blob(const_cast<uint8_t*>(images.data()), {images.count, images.size, images.size, 3},
                          torch::kUInt8);
}

namespace {
at::Tensor rows_to_tensor(const std::vector<std::vector<int32_t>>& rows, int64_t context) {
  auto t = torch::zeros({static_cast<int64_t>(rows.size()), context}, torch::kLong);
  auto acc = t.accessor<int64_t, 2>();
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < rows[i].size() && static_cast<int64_t>(j) < context; ++j) acc[i][j] = rows[i][j];
  return t;
}
}  // namespace

at::Tensor class_prompt_tokens(const BpeTokenizer& tokenizer, const std::string& prompt,
                               const std::vector<std::string>& names, int64_t context_length) {
  std::vector<std::vector<int32_t>> rows;
  for (const auto& n : names) rows.push_back(tokenizer.tokenize(prompt + n, context_length));
  return rows_to_tensor(rows, context_length);
}

std::string caption_text(const std::string& prompt, const std::vector<std::string>& names,
                         const std::vector<int>& labels) {
  std::string s = prompt;
  for (size_t i = 0; i < labels.size(); ++i) s += (i ? ", " : "") + names.at(labels[i]);
  return s;
}

at::Tensor caption_tokens(const BpeTokenizer& tokenizer, const std::string& prompt,
                          const std::vector<std::string>& names, const Split& split, int64_t context_length) {
  std::vector<std::vector<int32_t>> rows;
  rows.reserve(split.entries.size());
  for (const auto& e : split.entries) {
    std::string text = caption_text(prompt, names, e.labels);
    // Word-level truncation as the reference: drop space-separated words from the end.
    while (static_cast<int64_t>(tokenizer.encode(text).size()) + 2 > context_length) {
      const auto cut = text.find_last_of(' ');
      if (cut == std::string::npos) break;
      text = text.substr(0, cut);
    }
    rows.push_back(tokenizer.tokenize(text, context_length));
  }
  return rows_to_tensor(rows, context_length);
}

SplitScores score_images(Clip& model, const at::Tensor& images, const at::Tensor& prompts,
                         const ImageNormalization& norm, int64_t batch_size, const c10::Device& device,
                         Collectives* collectives, bool bf16) {
  torch::NoGradGuard no_grad;
  // bf16 runs the towers under autocast; the logits, norms and softmax stay fp32.
  auto encode = [&](auto&& fn) {
    compat::AutocastGuard autocast(device.type(), bf16);
    return fn().to(torch::kFloat);
  };
  const auto norm_t = normalization_tensors(norm, device);
  const bool was_training = model->is_training();
  model->eval();
  auto text = encode([&] { return model->encode_text(prompts.to(device)); });
  text = text / text.norm(2, -1, true);
  const auto scale = model->logit_scale.exp();
  const bool parallel = collectives && collectives->world_size() > 1;
  const RowRange mine = parallel ? rank_rows(images.size(0), collectives->rank(), collectives->world_size())
                                 : RowRange{0, images.size(0)};
  const int64_t begin = mine.begin, end = mine.end;
  std::vector<at::Tensor> logits, embeddings;
  for (int64_t i = begin; i < end; i += batch_size) {
    const int64_t b = std::min(batch_size, end - i);
    auto x = to_model_input(images.narrow(0, i, b).to(device), norm_t);
    auto e = encode([&] { return model->encode_image(x); });
    e = e / e.norm(2, -1, true);
    logits.push_back((scale * e.matmul(text.t())).to(torch::kFloat));
    embeddings.push_back(e.to(torch::kFloat));
  }
  const int64_t c = prompts.size(0), d = text.size(1);
  auto all_logits = logits.empty() ? torch::zeros({0, c}, text.options().dtype(torch::kFloat)) : torch::cat(logits);
  auto all_embed = embeddings.empty() ? torch::zeros({0, d}, text.options().dtype(torch::kFloat)) : torch::cat(embeddings);
  if (parallel) {
    // Every rank's row count follows from the split above: no count exchange.
    const auto rows = rows_per_rank(images.size(0), collectives->world_size());
    all_logits = collectives->all_gather_rows(all_logits, rows);
    all_embed = collectives->all_gather_rows(all_embed, rows);
  }
  if (was_training) model->train();
  SplitScores out;
  out.logits = all_logits.to(torch::kCPU).contiguous();
  out.scores = torch::softmax(out.logits, 1).contiguous();
  out.embeddings = all_embed.to(torch::kCPU).contiguous();
  return out;
}

EvalMetrics evaluate_scores(const SplitScores& scores, const std::vector<uint8_t>& labels, const ClassGroups* groups) {
  EvalInputs in;
  in.scores = scores.scores.data_ptr<float>();
  in.labels = labels.data();
  in.n = scores.scores.size(0);
  in.c = scores.scores.size(1);
  LMSWEEP_CHECK(static_cast<int64_t>(labels.size()) == in.n * in.c, "internal: {} labels for {} x {} scores",
                labels.size(), in.n, in.c);
  in.embeddings = scores.embeddings.data_ptr<float>();
  in.d = scores.embeddings.size(1);
  in.groups = groups;
  return evaluate(in);
}

void check_vocabulary(const BpeTokenizer& tokenizer, const ClipConfig& config, const std::string& bpe,
                      const std::string& weights) {
  LMSWEEP_CHECK(tokenizer.vocab_size() <= config.vocab_size,
                "the tokenizer has {} tokens but the model's embedding only {}: {}", tokenizer.vocab_size(),
                config.vocab_size, bpe.empty() ? "pass --bpe with the model's vocabulary" : "use the model's vocabulary");
  LMSWEEP_CHECK(!bpe.empty() || weights.empty() || config.vocab_size <= tokenizer.vocab_size(),
                "--weights {}: its vocabulary has {} tokens (OpenAI's BPE) but no --bpe was given, so the text would "
                "be byte-level ids the model was not trained on; pass --bpe bpe_simple_vocab_16e6.txt.gz",
                weights, config.vocab_size);
}

c10::Device parse_device(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  LMSWEEP_CHECK(name.rfind("cuda", 0) == 0, "--device = '{}': valid: cpu, cuda, cuda:N", name);
  LMSWEEP_CHECK(torch::cuda::is_available(),
                "--device {}: this LibTorch build has no CUDA or no GPU is visible; build against the CUDA "
                "LibTorch (README: Running on a SLURM cluster) or use --device cpu", name);
  c10::Device d(name);
  LMSWEEP_CHECK(!d.has_index() || d.index() < static_cast<int>(torch::cuda::device_count()),
                "--device {}: only {} GPU(s) visible", name, torch::cuda::device_count());
  return d;
}

}  // namespace lmsweep
