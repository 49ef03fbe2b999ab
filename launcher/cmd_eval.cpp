#include <chrono>
#include <fstream>
#include <sstream>
#include <iostream>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/error.h"
#include "common/files.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/image_cache_file.h"
#include "launcher/cli.h"
#include "launcher/commands.h"
#include "model/checkpoint.h"
#include "train/evaluate.h"

namespace po = boost::program_options;

namespace lmsweep::cli {
namespace {

std::string pct(const std::optional<double>& v) { return v ? fmt::format("{:6.2f}", *v * 100) : "     -"; }

void write_scores_csv(const std::string& path, const Split& split, const at::Tensor& logits) {
  std::ostringstream out;
  const int64_t c = logits.size(1);
  out << "image";
  for (int64_t k = 0; k < c; ++k) out << "," << k;
  out << "\n";
  const auto acc = logits.accessor<float, 2>();
  for (size_t i = 0; i < split.entries.size(); ++i) {
    out << split.entries[i].path;
    for (int64_t k = 0; k < c; ++k) out << "," << fmt::format("{:.7g}", acc[static_cast<int64_t>(i)][k]);
    out << "\n";
  }
  write_text_file(path, out.str(), "--scores-out");
}

}  // namespace

int run_eval(int argc, const char* const argv[]) {
  std::string weights, arch, bpe, data_root, test, labels, train, normalize = "imagenet",
              prompt = "a photo of a ", device = "cpu", precision = "fp32", scores_out, metrics_out,
              cache_dir = "auto";
  int64_t batch_size = 64;
  int threads = 0;
  uint64_t seed = 0;
  po::options_description desc("options");
  desc.add_options()("help,h", "this help")
      ("weights", po::value(&weights), "CLIP checkpoint: OpenAI's .pt, a torch.save state dict, or lmsweep's")
      ("arch", po::value(&arch), "random weights of this architecture instead of --weights (RN50, ViT-B/16, vit:...)")
      ("bpe", po::value(&bpe), "OpenAI's bpe_simple_vocab_16e6.txt.gz (needed for OpenAI checkpoints)")
      ("data-root", po::value(&data_root)->required(), "folder the split's image paths are relative to")
      ("test", po::value(&test)->required(), "test split file (path label label ...)")
      ("labels", po::value(&labels)->required(), "labels file (name index per line)")
      ("train", po::value(&train), "training split: gives head / middle / tail groups from its class counts")
      ("normalize", po::value(&normalize)->default_value(normalize), "imagenet | clip mean/std")
      ("prompt", po::value(&prompt)->default_value(prompt), "class prompt prefix")
      ("batch-size", po::value(&batch_size)->default_value(batch_size), "images per forward pass")
      ("device", po::value(&device)->default_value(device), "cpu | cuda | cuda:N")
      ("precision", po::value(&precision)->default_value(precision),
       "fp32 | bf16 (autocast: the towers' matmuls in bf16; norms, logits and softmax in fp32)")
      ("threads", po::value(&threads)->default_value(threads), "CPU threads (0: all cores)")
      ("seed", po::value(&seed)->default_value(seed), "seed of random weights (with --arch)")
      ("scores-out", po::value(&scores_out), "CSV of logits: image,0,...,C-1, one row per test image")
      ("metrics-out", po::value(&metrics_out), "JSON of the metrics (fractions)")
      ("cache-dir", po::value(&cache_dir)->default_value(cache_dir),
       "decoded test images shared by the processes of a node (one file per split in DIR, mapped read-only): "
       "auto ($TMPDIR, else /dev/shm, else /tmp) | none (decode in this process only) | DIR");
  if (wants_help(argc, argv)) {
      std::cout << help_text("lmsweep eval --weights FILE --bpe FILE --data-root DIR --test SPLIT --labels FILE "
                             "[--train SPLIT] [options]",
                             "Evaluates a CLIP on a long-tailed multi-label test split, zero-shot or fine-tuned: "
                             "mAP total / head / middle / tail (Table 1), single- and multi-label mAP, the "
                             "centroid-distance ratio.", desc);
      return 0;
    }
  parse("eval", argc, argv, desc);
  LMSWEEP_CHECK(!weights.empty() || !arch.empty(), "lmsweep eval: pass --weights FILE (or --arch for random weights)");
  LMSWEEP_CHECK(batch_size >= 1, "--batch-size = {}: must be >= 1", batch_size);
  const auto t0 = std::chrono::steady_clock::now();
  if (threads > 0) at::set_num_threads(threads);
  const c10::Device dev = parse_device(device);
  LMSWEEP_CHECK(precision == "fp32" || precision == "bf16", "--precision = '{}': valid: fp32, bf16", precision);
  const auto norm = ImageNormalization::from_name(normalize);

  const LabelNames names = read_label_names(labels);
  const int64_t C = static_cast<int64_t>(names.names.size());
  const Split test_split = read_split(test, C);
  LMSWEEP_CHECK(!test_split.entries.empty(), "{}: the test split is empty", test);
  ClassGroups groups;
  const bool have_groups = !train.empty();
  if (have_groups) groups = group_classes(class_counts(read_split(train, C), C));

  const BpeTokenizer tokenizer = bpe.empty() ? BpeTokenizer::byte_level() : BpeTokenizer::from_file(bpe);
  Clip model{nullptr};
  if (!weights.empty()) {
    model = load_clip(weights);
  } else {
    torch::manual_seed(seed);
    model = Clip(ClipConfig::parse(arch));
  }
  const auto& cfg = model->config();
  check_vocabulary(tokenizer, cfg, bpe, weights);
  model->to(dev);

  ImageCacheOptions cache;
  cache.dir = resolve_image_cache_dir(cache_dir);
  const auto images = load_images_shared(data_root, test_split, cfg.image_resolution, threads, cache);
  const at::Tensor prompts = class_prompt_tokens(tokenizer, prompt, names.names, cfg.context_length);
  // Read only (a mapped cache file is PROT_READ): score_images narrows and converts to float.
  const auto scores = score_images(model, image_set_tensor(*images), prompts, norm, batch_size, dev, nullptr,
                                   precision == "bf16");
  const auto labels_hot = multi_hot(test_split, C);
  const EvalMetrics m = evaluate_scores(scores, labels_hot, have_groups ? &groups : nullptr);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::cout << fmt::format("{} on {} test images of {} classes ({:.1f} s)\n", cfg.describe(),
                           test_split.entries.size(), C, seconds);
  if (have_groups)
    std::cout << fmt::format("classes: {} head / {} middle / {} tail (training counts >= 100, 20-99, < 20)\n",
                             groups.head.size(), groups.middle.size(), groups.tail.size());
  std::cout << "           Total   Head  Middle   Tail\n"
            << fmt::format("mAP (%)   {} {} {} {}\n", pct(m.map), pct(m.map_head), pct(m.map_middle), pct(m.map_tail))
            << fmt::format("single-label mAP {:.2f} %, multi-label mAP {:.2f} %", m.map_single * 100, m.map_multi * 100);
  if (m.centroid_ratio) std::cout << fmt::format(", centroid-distance ratio {:.4f}", *m.centroid_ratio);
  std::cout << "\n";

  if (!scores_out.empty()) write_scores_csv(scores_out, test_split, scores.logits);
  if (!metrics_out.empty()) write_text_file(metrics_out, to_json(m).dump(2) + "\n", "--metrics-out");
  return 0;
}

}  // namespace lmsweep::cli
