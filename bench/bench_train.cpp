// Training throughput (images / s) of LM-CLIP fine-tuning on a synthetic dataset (20 classes),
// --sampling sequential --flip 0, batch 8 by default:
// 1. the published Python step on the same machine and data (bench/reference_train_step.py
//    under --python, Debian's python3-torch by default; checkpoints only);
// 2. train_lmclip itself for --epochs epochs, the per-epoch evaluation excluded by timing the
//    steps (the trainer calls hooks.stop_requested at every step boundary);
// 3. the trainer's own step (set_up_run / plan_epoch / train_step, src/train) in several
//    configurations (--variants: fp32 or bf16, AdamW as torch::optim::AdamW's loop, multi-tensor
//    or fused) from the same weights on the same batches, with images / s, the host
//    synchronisations per step (HostSyncCounter) and the loss and weights against the first.
// --device cuda runs it on a GPU; --arch ViT-B/16 on random weights of that shape.
// Prints JSON lines and human-readable lines; no assertions.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include "bench/bench_common.h"
#include "common/error.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/synthetic.h"
#include "loss/losses.h"
#include "model/checkpoint.h"
#include "model/clip.h"
#include "text/bpe_tokenizer.h"
#include "train/evaluate.h"
#include "train/options.h"
#include "train/host_sync.h"
#include "train/run.h"
#include "train/step.h"
#include "train/trainer.h"

#ifndef LMSWEEP_BENCH_SOURCE_DIR
#define LMSWEEP_BENCH_SOURCE_DIR "bench"
#endif

namespace {

using namespace lmsweep;
using lmsweep::bench::Args;
using lmsweep::bench::Timer;
using Clock = std::chrono::steady_clock;

// ------------------------------------------------------------------ 1. train_lmclip

struct TrainerFigures {
  std::vector<double> epoch_images_per_s;  // training steps only
  std::vector<double> epoch_seconds;       // as the trainer reports them (training + evaluation)
  double steady_images_per_s = 0;          // epochs after the first (all when only one)
  std::vector<double> losses;
};

TrainerFigures run_trainer(const TrainOptions& o) {
  std::vector<std::vector<Clock::time_point>> step_starts(1);
  TrainerFigures f;
  TrainHooks hooks;
  hooks.quiet = true;
  hooks.stop_requested = [&] {
    step_starts.back().push_back(Clock::now());
    return false;
  };
  hooks.on_epoch = [&](const EpochResult& e) {
    f.epoch_seconds.push_back(e.seconds);
    f.losses.push_back(e.train_loss);
    step_starts.emplace_back();
    return true;
  };
  train_lmclip(o, hooks);
  step_starts.pop_back();  // opened by the last on_epoch
  double steady_images = 0, steady_seconds = 0;
  for (size_t e = 0; e < step_starts.size(); ++e) {
    const auto& s = step_starts[e];
    // Steps 0..n-2 are complete between the first and the last stamp; all are full batches
    // except perhaps the last one, which is not counted.
    const double images = static_cast<double>(s.size() - 1) * static_cast<double>(o.batch_size);
    const double seconds = std::chrono::duration<double>(s.back() - s.front()).count();
    f.epoch_images_per_s.push_back(images / seconds);
    if (e > 0 || step_starts.size() == 1) {
      steady_images += images;
      steady_seconds += seconds;
    }
  }
  f.steady_images_per_s = steady_images / steady_seconds;
  return f;
}

// ------------------------------------------------------------------ 2. Python reference

// The token ids of the captions and class prompts, for the Python side (no tokenizer there).
std::string write_tokens_file(const TrainOptions& o) {
  const LabelNames names = read_label_names(o.labels);
  const Split split = read_split(o.train, static_cast<int64_t>(names.names.size()));
  const BpeTokenizer tokenizer = BpeTokenizer::from_file(o.bpe);
  auto rows = [](const at::Tensor& t) {
    nlohmann::json out = nlohmann::json::array();
    const auto acc = t.accessor<int64_t, 2>();
    for (int64_t i = 0; i < t.size(0); ++i) {
      nlohmann::json row = nlohmann::json::array();
      for (int64_t j = 0; j < t.size(1); ++j) row.push_back(acc[i][j]);
      out.push_back(row);
    }
    return out;
  };
  const nlohmann::json j = {{"prompts", rows(class_prompt_tokens(tokenizer, o.prompt, names.names, 77))},
                            {"captions", rows(caption_tokens(tokenizer, o.prompt, names.names, split, 77))}};
  const std::string path = (std::filesystem::path(o.data_root) / "tokens.json").string();
  std::ofstream(path) << j.dump();
  return path;
}

std::vector<nlohmann::json> run_python(const std::string& python, const std::string& script, const TrainOptions& o,
                                       int threads, int64_t steps) {
  const std::string cmd = fmt::format(
      "'{}' '{}' --weights '{}' --tokens '{}' --data-root '{}' --train '{}' --labels '{}' --threads {} --batch {} "
      "--steps {} --lr {} --lam {} --gamma-neg {} --s {} --label-smoothing {} --breakdown --device '{}'",
      python, script, o.weights, write_tokens_file(o), o.data_root, o.train, o.labels, threads, o.batch_size, steps,
      o.lr, o.lambda, o.gamma_neg, o.s, o.label_smoothing, o.device);
  std::vector<nlohmann::json> out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return out;
  std::string text;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) text.append(buf.data(), n);
  const int rc = pclose(pipe);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line[0] == '{') {
      try {
        out.push_back(nlohmann::json::parse(line));
      } catch (const std::exception&) {
      }
    }
  }
  if (rc != 0 || out.empty()) std::cerr << "bench_train: the Python reference failed (" << cmd << "):\n" << text << std::endl;
  return out;
}

// ------------------------------------------------------------------ 3. the trainer's step

// The trainer's own step (set_up_run, plan_epoch, train_step of src/train) in one
// configuration, from the same weights and batches as the others, timed as a whole.
struct StepVariant {
  std::string adamw, precision;
  std::string label() const { return precision + "/adamw=" + adamw; }
};

struct StepFigures {
  std::string adamw_impl;  // what "auto" resolved to
  double images_per_s = 0, ms_per_step = 0, host_syncs_per_step = 0;
  std::vector<std::string> sync_ops;
  double final_loss = 0;
  std::vector<at::Tensor> weights;  // after the timed steps
};

StepFigures time_steps(TrainOptions o, const StepVariant& v, int64_t warmup, int64_t steps) {
  o.adamw = v.adamw;
  o.precision = v.precision;
  auto run = set_up_run(o, nullptr, nullptr);
  StepFigures f;
  f.adamw_impl = to_string(run->adamw);
  run->model->train();
  const EpochPlan plan = plan_epoch(*run, 0);
  LMSWEEP_CHECK(warmup + steps <= plan.steps, "bench_train: {} warm-up + {} timed steps but an epoch has {}: raise "
                "--train-images", warmup, steps, plan.steps);
  EpochLoss warm(run->device);
  for (int64_t s = 0; s < warmup; ++s) warm.add(train_step(*run, plan, s), o.batch_size, s);
  (void)warm.sum();  // the device has finished the warm-up
  EpochLoss loss(run->device);
  HostSyncCounter syncs;
  const auto t0 = Clock::now();
  at::Tensor last;
  for (int64_t s = warmup; s < warmup + steps; ++s) {
    last = train_step(*run, plan, s);
    loss.add(last, o.batch_size, s);
  }
  const int64_t counted = syncs.count();
  f.sync_ops = syncs.ops();
  (void)loss.sum();  // waits for the device: the timed steps are done
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  f.images_per_s = static_cast<double>(steps * o.batch_size) / seconds;
  f.ms_per_step = 1000.0 * seconds / static_cast<double>(steps);
  f.host_syncs_per_step = static_cast<double>(counted) / static_cast<double>(steps);
  f.final_loss = last.cpu().item<double>();
  run->embedding.write_back();
  for (const auto& p : run->model->parameters()) f.weights.push_back(p.detach().cpu().clone());
  return f;
}

double max_relative_diff(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double scale = std::max(a[i].abs().max().item<double>(), 1e-12);
    worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>() / scale);
  }
  return worst;
}

void run_step_variants(const TrainOptions& o, const std::vector<StepVariant>& variants, int64_t warmup,
                       int64_t steps, double python_images_per_s) {
  std::vector<StepFigures> figs;
  for (const auto& v : variants) {
    figs.push_back(time_steps(o, v, warmup, steps));
    const StepFigures& f = figs.back();
    const StepFigures& base = figs.front();
    const double wdiff = max_relative_diff(base.weights, f.weights);
    const double ldiff = std::abs(f.final_loss - base.final_loss) / std::max(std::abs(base.final_loss), 1e-12);
    nlohmann::json j = {{"bench", "train_step"},      {"variant", v.label()},
                        {"adamw_impl", f.adamw_impl}, {"precision", v.precision},
                        {"device", o.device},         {"model", o.weights.empty() ? o.arch : o.weights},
                        {"batch", o.batch_size},      {"threads", at::get_num_threads()},
                        {"steps", steps},             {"images_per_s", f.images_per_s},
                        {"ms_per_step", f.ms_per_step}, {"host_syncs_per_step", f.host_syncs_per_step},
                        {"sync_ops", f.sync_ops},     {"final_loss", f.final_loss},
                        {"loss_rel_diff_vs_first", ldiff}, {"weights_rel_diff_vs_first", wdiff},
                        {"speedup_vs_first", f.images_per_s / base.images_per_s}};
    if (python_images_per_s > 0) j["speedup_vs_python"] = f.images_per_s / python_images_per_s;
    bench::emit(j);
    std::cout << fmt::format("  step {:<22} ({:<7}) {:8.1f} images/s  {:7.2f} ms/step  {:.1f}x the first  host syncs/step {}"
                             "  loss rel. diff {:.1e}, weights {:.1e}{}",
                             v.label(), f.adamw_impl, f.images_per_s, f.ms_per_step,
                             f.images_per_s / base.images_per_s, f.host_syncs_per_step, ldiff, wdiff,
                             python_images_per_s > 0
                                 ? fmt::format("  ({:.2f}x Python)", f.images_per_s / python_images_per_s)
                                 : std::string())
              << std::endl;
  }
}

std::vector<StepVariant> parse_variants(const std::string& list) {
  // "fp32:loop,fp32:auto,bf16:auto"
  std::vector<StepVariant> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto colon = item.find(':');
    LMSWEEP_CHECK(colon != std::string::npos, "bench_train: --variants item '{}' is not PRECISION:ADAMW", item);
    out.push_back({item.substr(colon + 1), item.substr(0, colon)});
  }
  return out;
}

int run(int argc, char** argv) {
  bench::cpu_monitor();  // starts watching the other processes' share of the machine
  const std::string shared = bench::shared_dir();
  Args args("bench_train",
            "Training throughput (images / s, evaluation excluded) of train_lmclip on the shared tiny ViT, with "
            "the Python reference step and a breakdown of the step.",
            {{"weights", {shared + "/testdata/clip_vit_tiny/model.pt", "checkpoint"}},
             {"bpe", {shared + "/assets/bpe_simple_vocab_16e6.txt.gz", "BPE vocabulary"}},
             {"threads", {"2", "LibTorch intra-op threads (and the Python reference's)"}},
             {"batch", {"8", "batch size"}},
             {"epochs", {"2", "epochs of train_lmclip"}},
             {"train-images", {"400", "synthetic training images"}},
             {"test-images", {"50", "synthetic test images"}},
             {"classes", {"20", "synthetic classes (class prompts per step)"}},
             {"python", {"/usr/bin/python3", "interpreter with torch for the reference step; 'none' skips it"}},
             {"python-steps", {"50", "timed steps of the Python reference"}},
             {"device", {"cpu", "cpu | cuda | cuda:N"}},
             {"arch", {"", "random weights of this architecture (e.g. ViT-B/16) instead of --weights"}},
             {"image-size", {"0", "synthetic image size (0: the model's resolution)"}},
             {"trainer", {"1", "1: time train_lmclip's epochs; 0: skip"}},
             {"variants", {"fp32:loop,fp32:auto,bf16:auto", "the trainer's step in PRECISION:ADAMW configurations "
                           "(adamw: loop = torch::optim::AdamW, foreach, fused, auto); empty: skip"}},
             {"steps", {"30", "timed steps per variant"}},
             {"warmup", {"3", "untimed steps first"}},
             {"keep", {"", "keep the synthetic dataset folder", true}}});
  if (!args.parse(argc, argv)) return 0;
  const int threads = static_cast<int>(args.integer("threads", 1));
  at::set_num_threads(threads);

  bench::TempDir temp("bench_train");
  temp.keep(args.flag("keep"));
  const std::filesystem::path dir = temp.path();
  SyntheticOptions so;
  so.out_dir = dir.string();
  so.num_classes = args.integer("classes", 1);
  so.train_images = args.integer("train-images", 1);
  so.test_images = args.integer("test-images", 1);
  const std::string arch = args.str("arch");
  so.image_size = args.integer("image-size", 0);
  if (so.image_size == 0) so.image_size = arch.empty() ? 32 : ClipConfig::parse(arch).image_resolution;
  const SyntheticDataset data = write_synthetic_dataset(so);

  TrainOptions o;
  o.arch = arch;
  o.weights = arch.empty() ? args.str("weights") : "";
  o.bpe = args.str("bpe");
  o.data_root = data.data_root;
  o.train = data.train_split;
  o.test = data.test_split;
  o.labels = data.labels_file;
  o.epochs = args.integer("epochs", 1);
  o.batch_size = args.integer("batch", 1);
  o.sampling = "sequential";
  o.flip = 0;
  o.threads = threads;
  o.device = args.str("device");
  o.db.clear();
  LMSWEEP_CHECK(!o.weights.empty() || !o.arch.empty(), "bench_train: pass --weights or --arch");
  LMSWEEP_CHECK(o.weights.empty() || std::filesystem::exists(o.weights), "bench_train: --weights {} does not exist "
                "(set LMSWEEP_SHARED_DIR, pass --weights, or --arch for random weights)", o.weights);
  if (!o.arch.empty() && !std::filesystem::exists(o.bpe)) o.bpe.clear();  // random weights: byte-level tokens
  LMSWEEP_CHECK(o.bpe.empty() || std::filesystem::exists(o.bpe), "bench_train: --bpe {} does not exist", o.bpe);

  std::cerr << "bench_train: " << so.train_images << " train / " << so.test_images << " test images, " << so.num_classes
            << " classes, batch " << o.batch_size << ", " << threads << " threads, " << o.epochs << " epochs"
            << std::endl;
  double python_ips = 0;
  const std::string python = args.str("python");
  const std::string script = std::string(LMSWEEP_BENCH_SOURCE_DIR) + "/reference_train_step.py";
  if (python != "none" && !o.weights.empty() && std::filesystem::exists(python) && std::filesystem::exists(script)) {
    for (const auto& j : run_python(python, script, o, threads, args.integer("python-steps", 1))) {
      bench::emit(j);
      if (j.value("bench", "") == "reference_train_step") python_ips = j.value("images_per_s", 0.0);
    }
  } else if (python != "none") {
    std::cerr << "bench_train: no Python reference (" << python << " or " << script
              << " missing, or random weights)" << std::endl;
  }
  if (python_ips > 0) std::cout << fmt::format("Python reference step: {:.1f} images/s", python_ips) << std::endl;

  if (args.str("trainer") != "0") {
    const TrainerFigures tf = run_trainer(o);
    nlohmann::json fig = {{"bench", "train_throughput"},
                          {"impl", "lmsweep"},
                          {"model", o.weights.empty() ? o.arch : "clip_vit_tiny"},
                          {"device", o.device},
                          {"batch", o.batch_size},
                          {"threads", at::get_num_threads()},
                          {"epochs", o.epochs},
                          {"train_images", so.train_images},
                          {"images_per_s", tf.steady_images_per_s},
                          {"epoch_images_per_s", tf.epoch_images_per_s},
                          {"epoch_seconds_with_eval", tf.epoch_seconds},
                          {"train_loss", tf.losses}};
    if (python_ips > 0) {
      fig["python_images_per_s"] = python_ips;
      fig["speedup_vs_python"] = tf.steady_images_per_s / python_ips;
    }
    bench::emit(fig);
    std::cout << fmt::format("train_lmclip batch {} on {} ({} threads): {:.1f} images/s (training steps only; "
                             "per epoch {:.1f}){}",
                             o.batch_size, o.device, at::get_num_threads(), tf.steady_images_per_s,
                             fmt::join(tf.epoch_images_per_s, " / "),
                             python_ips > 0 ? fmt::format("; Python reference {:.1f} images/s -> {:.2f}x", python_ips,
                                                          tf.steady_images_per_s / python_ips)
                                            : std::string())
              << std::endl;
  }
  if (!args.str("variants").empty()) {
    std::cout << "the trainer's step (train_step), from the same weights on the same batches:" << std::endl;
    run_step_variants(o, parse_variants(args.str("variants")), args.integer("warmup", 0), args.integer("steps", 1),
                      python_ips);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return lmsweep::bench::guarded_main(run, argc, argv); }
