// Evaluation throughput: images / s through `lmsweep eval`'s scoring path (score_images in
// src/train/evaluate.h: uint8 -> to_model_input -> encode_image -> logits against the class
// prompts), on a CLIP of a named architecture with random weights (default ViT-B/16) and random
// 224x224 uint8 images. One warm-up batch first, then score_images on all --images is timed.
// Prints one JSON line per measurement and a human-readable line; no assertions.
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "bench/bench_common.h"
#include "common/error.h"
#include "model/clip.h"
#include "text/bpe_tokenizer.h"
#include "train/evaluate.h"

namespace {

using namespace lmsweep;
using lmsweep::bench::Args;
using lmsweep::bench::Timer;

const std::vector<std::string> kVocClasses = {
    "aeroplane", "bicycle", "bird",  "boat",      "bottle", "bus",         "car",
    "cat",       "chair",   "cow",   "diningtable", "dog",  "horse",       "motorbike",
    "person",    "pottedplant", "sheep", "sofa",   "train",  "tvmonitor"};

int run(int argc, char** argv) {
  bench::cpu_monitor();  // starts watching the other processes' share of the machine
  Args args("bench_eval",
            "Throughput of evaluation (score_images) on a random-weight CLIP: images / s.",
            {{"arch", {"ViT-B/16", "architecture (ClipConfig::parse: RN50, ViT-B/16, vit:...)"}},
             {"images", {"128", "images scored in the timed run"}},
             {"batch", {"64", "evaluation batch size"}},
             {"threads", {"0", "LibTorch intra-op threads (0: LibTorch's default, all cores)"}},
             {"device", {"cpu", "cpu | cuda | cuda:N"}},
             {"repeats", {"1", "timed runs; the best is reported as images_per_s"}},
             {"bpe", {"", "BPE vocabulary (default: <shared>/assets/bpe_simple_vocab_16e6.txt.gz, else byte-level)"}},
             {"seed", {"0", "seed of the weights and images"}},
             {"precision", {"fp32,bf16", "score_images' precisions to time, side by side (bf16: autocast)"}}});
  if (!args.parse(argc, argv)) return 0;
  const std::string arch = args.str("arch");
  const int64_t n = args.integer("images", 1), batch = args.integer("batch", 1);
  const int64_t threads = args.integer("threads", 0), repeats = args.integer("repeats", 1);
  if (threads > 0) at::set_num_threads(static_cast<int>(threads));
  const c10::Device device = parse_device(args.str("device"));

  torch::manual_seed(static_cast<uint64_t>(args.integer("seed", 0)));
  const ClipConfig cfg = ClipConfig::parse(arch);

  // OpenAI's vocabulary when given or found and the model's embedding holds it (CLIP-sized
  // models), else the byte-level tokenizer (small described models).
  std::string bpe = args.str("bpe");
  const bool bpe_given = !bpe.empty();
  if (!bpe_given) {
    const auto p = std::filesystem::path(bench::shared_dir()) / "assets" / "bpe_simple_vocab_16e6.txt.gz";
    if (std::filesystem::exists(p)) bpe = p.string();
  }
  BpeTokenizer tokenizer = bpe.empty() ? BpeTokenizer::byte_level() : BpeTokenizer::from_file(bpe);
  if (!bpe_given && tokenizer.vocab_size() > cfg.vocab_size) tokenizer = BpeTokenizer::byte_level();
  LMSWEEP_CHECK(tokenizer.vocab_size() <= cfg.vocab_size, "bench_eval: --bpe {} has {} tokens but --arch {} only {}",
                bpe, tokenizer.vocab_size(), arch, cfg.vocab_size);
  Clip model(cfg);
  model->to(device);
  const int64_t s = cfg.image_resolution;
  const at::Tensor images = torch::randint(0, 256, {n, s, s, 3}, torch::kUInt8);
  const at::Tensor prompts = class_prompt_tokens(tokenizer, "a photo of a ", kVocClasses, cfg.context_length);
  const auto norm = ImageNormalization::from_name("clip");
  bool bf16 = false;
  auto score = [&](const at::Tensor& imgs) {
    return score_images(model, imgs, prompts, norm, batch, device, nullptr, bf16).logits;
  };
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };

  at::Tensor fp32_logits;  // of the first batch, for the bf16 comparison
  double fp32_ips = 0;
  std::stringstream precisions(args.str("precision"));
  std::string precision;
  while (std::getline(precisions, precision, ',')) {
    LMSWEEP_CHECK(precision == "fp32" || precision == "bf16", "bench_eval: --precision {}: valid: fp32, bf16", precision);
    bf16 = precision == "bf16";
    std::cerr << "bench_eval: " << cfg.describe() << "; " << n << " images, batch " << batch << ", "
              << at::get_num_threads() << " threads, " << device.str() << std::endl;
    // Warm-up: one batch (allocator, oneDNN / cuBLAS plans).
    {
      Timer t;
      score(images.narrow(0, 0, std::min(batch, n)));
      sync();
      std::cerr << "bench_eval: warm-up batch " << t.seconds() << " s" << std::endl;
    }

    double best = 0;
    std::vector<double> runs;
    for (int64_t r = 0; r < repeats; ++r) {
      sync();
      Timer t;
      const auto scores = score(images);
      sync();
      const double sec = t.seconds();
      runs.push_back(sec);
      best = std::max(best, static_cast<double>(n) / sec);
      (void)scores;
    }

    // Where the time goes, per batch: the uint8 -> float input transform alone (the rest is
    // encode_image; the text tower runs once per call on 20 prompts).
    double preprocess_s = 0;
    {
      torch::NoGradGuard no_grad;
      sync();
      Timer t;
      for (int64_t i = 0; i < n; i += batch) {
        auto x = to_model_input(images.narrow(0, i, std::min(batch, n - i)).to(device), norm);
        (void)x;
      }
      sync();
      preprocess_s = t.seconds();
    }
    double text_s = 0;
    {
      torch::NoGradGuard no_grad;
      model->eval();
      sync();
      Timer t;
      auto e = model->encode_text(prompts.to(device));
      sync();
      text_s = t.seconds();
    }

    nlohmann::json fig = {{"bench", "eval_throughput"},
                          {"model", arch},
                          {"batch", batch},
                          {"images", n},
                          {"images_per_s", best},
                          {"seconds", runs},
                          {"threads", at::get_num_threads()},
                          {"device", device.str()},
                          {"precision", bf16 ? "bf16" : "fp32"},
                          {"prompts", static_cast<int64_t>(kVocClasses.size())},
                          {"preprocess_s", preprocess_s},
                          {"text_prompts_s", text_s}};
    if (!fp32_logits.defined()) {
      fp32_logits = score(images.narrow(0, 0, std::min(batch, n)));
      fp32_ips = best;
    } else {
      const auto l = score(images.narrow(0, 0, std::min(batch, n)));
      fig["max_logit_diff_vs_fp32"] = (l - fp32_logits).abs().max().item<double>();
      fig["speedup_vs_fp32"] = best / fp32_ips;
    }
    bench::emit(fig);
    std::cout << fmt::format("eval {} batch {}{}: {:.2f} images/s on {} thread(s), {} ({} images in {:.2f} s; "
                             "input transform {:.1f}% of it, prompt encoding {:.3f} s)",
                             arch, batch, bf16 ? " bf16" : "", best, at::get_num_threads(), device.str(), n, runs.front(),
                             100.0 * preprocess_s / runs.front(), text_s)
              << std::endl;
}
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return lmsweep::bench::guarded_main(run, argc, argv); }
