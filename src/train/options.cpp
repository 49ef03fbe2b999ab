#include "train/options.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "common/error.h"

namespace lmsweep {
namespace {

double parse_double(const std::string& name, const std::string& value) {
  try {
    size_t used = 0;
    const double v = std::stod(value, &used);
    if (used == value.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  throw_error("--{} = '{}': expected a number", name, value);
}

int64_t parse_int(const std::string& name, const std::string& value) {
  try {
    size_t used = 0;
    const double v = std::stod(value, &used);  // accepts "8" and "8.0" (sweep values)
    if (used == value.size() && std::isfinite(v) && v == std::floor(v)) return static_cast<int64_t>(v);
  } catch (const std::exception&) {
  }
  throw_error("--{} = '{}': expected an integer", name, value);
}

bool parse_bool(const std::string& name, const std::string& value) {
  std::string v = value;
  std::transform(v.begin(), v.end(), v.begin(), ::tolower);
  if (v == "1" || v == "true" || v == "yes" || v == "on" || v.empty()) return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  throw_error("--{} = '{}': expected true/false (1/0)", name, value);
}

std::string format_double(double v) {
  return fmt::format("{}", v);  // shortest round-trip form
}

struct Field {
  TrainOptionInfo info;
  std::function<void(TrainOptions&, const std::string&)> set;
  std::function<std::string(const TrainOptions&)> get;
};

#define STRING_FIELD(flag, member, help, sweep)                                                   \
  Field { {flag, help, false, sweep}, [](TrainOptions& o, const std::string& v) { o.member = v; }, \
          [](const TrainOptions& o) { return o.member; } }
#define DOUBLE_FIELD(flag, member, help)                                                          \
  Field { {flag, help, false, true},                                                               \
          [](TrainOptions& o, const std::string& v) { o.member = parse_double(flag, v); },        \
          [](const TrainOptions& o) { return format_double(o.member); } }
#define INT_FIELD(flag, member, help, sweep)                                                      \
  Field { {flag, help, false, sweep},                                                              \
          [](TrainOptions& o, const std::string& v) { o.member = parse_int(flag, v); },           \
          [](const TrainOptions& o) { return std::to_string(o.member); } }

const std::vector<Field>& fields() {
  static const std::vector<Field> kFields = {
      STRING_FIELD("weights", weights, "CLIP checkpoint (OpenAI .pt, torch.save state dict, or lmsweep's); empty: random weights of --arch", false),
      STRING_FIELD("arch", arch, "architecture for random weights: RN50, ViT-B/16, ... or vit:res=32,patch=8,width=64,...", false),
      STRING_FIELD("bpe", bpe, "OpenAI's bpe_simple_vocab_16e6.txt.gz; empty: byte-level tokenizer (random-weight models)", false),
      STRING_FIELD("data-root", data_root, "folder the split files' image paths are relative to", false),
      STRING_FIELD("train", train, "training split file (path label label ...)", false),
      STRING_FIELD("test", test, "test split file, evaluated after every epoch", false),
      STRING_FIELD("labels", labels, "labels file (name index per line)", false),
      STRING_FIELD("synthetic", synthetic, "use the built-in synthetic dataset in DIR (written if missing) instead of --data-root/--train/--test/--labels", false),
      INT_FIELD("epochs", epochs, "epochs (cosine annealing over them)", true),
      INT_FIELD("batch-size", batch_size, "global batch size", true),
      DOUBLE_FIELD("lr", lr, "AdamW learning rate"),
      DOUBLE_FIELD("lambda", lambda, "weight of the BAL / ASL term: L = L_CLIP + lambda * BAL"),
      DOUBLE_FIELD("gamma-neg", gamma_neg, "focusing exponent of negatives"),
      DOUBLE_FIELD("gamma-pos", gamma_pos, "focusing exponent of positives"),
      DOUBLE_FIELD("clip", clip, "asymmetric clipping of negatives (0: off)"),
      DOUBLE_FIELD("s", s, "class-weight power: w_c = (N/N_c)^s / max"),
      Field{{"sample-power", "sampler power: weight_i = (sum_c N/N_c)^p / max (default: --s)", false, true},
            [](TrainOptions& o, const std::string& v) {
              if (v.empty()) o.sample_power.reset(); else o.sample_power = parse_double("sample-power", v);
            },
            [](const TrainOptions& o) { return o.sample_power ? format_double(*o.sample_power) : std::string(); }},
      DOUBLE_FIELD("label-smoothing", label_smoothing, "label smoothing of BAL's targets, in [0, 1)"),
      STRING_FIELD("loss", loss, "clip+bal | clip+asl | clip | bal | asl", true),
      Field{{"class-weights", "BAL's class weights (1 + w_c) on positives: 1 | 0 (ablation)", false, true},
            [](TrainOptions& o, const std::string& v) { o.class_weights = parse_bool("class-weights", v); },
            [](const TrainOptions& o) { return std::string(o.class_weights ? "1" : "0"); }},
      STRING_FIELD("sampling", sampling, "weighted (with replacement) | uniform (shuffled) | sequential (file order)", true),
      DOUBLE_FIELD("flip", flip, "probability of a horizontal flip in training"),
      STRING_FIELD("normalize", normalize, "imagenet | clip mean/std", true),
      STRING_FIELD("prompt", prompt, "prompt prefix of captions and class prompts", true),
      INT_FIELD("eval-batch-size", eval_batch_size, "batch size of the per-epoch evaluation", false),
      INT_FIELD("eval-every", eval_every, "evaluate every Nth epoch (and always the last); 0: only --eval-at, --eval-last and the last", false),
      INT_FIELD("eval-last", eval_last, "also evaluate each of the last N epochs", false),
      STRING_FIELD("eval-at", eval_at, "also evaluate these epochs, comma-separated (5,10,20)", false),
      STRING_FIELD("eval-precision", eval_precision, "precision of the evaluation: fp32 | bf16 (default: --precision's)", false),
      Field{{"seed", "seed of sampling, flips and random weights", false, true},
            [](TrainOptions& o, const std::string& v) { o.seed = static_cast<uint64_t>(parse_int("seed", v)); },
            [](const TrainOptions& o) { return std::to_string(o.seed); }},
      INT_FIELD("threads", threads, "CPU threads (0: all cores)", false),
      STRING_FIELD("device", device, "cpu | cuda | cuda:N", false),
      STRING_FIELD("precision", precision, "fp32 | bf16 (autocast: matmuls in bf16; LayerNorm, softmax and losses in fp32)", true),
      Field{{"tf32", "TF32 tensor cores for fp32 matmuls and convolutions on CUDA: 0 | 1", false, false},
            [](TrainOptions& o, const std::string& v) { o.tf32 = parse_bool("tf32", v); },
            [](const TrainOptions& o) { return std::string(o.tf32 ? "1" : "0"); }},
      STRING_FIELD("adamw", adamw, "AdamW implementation: auto (fused where LibTorch has it, else multi-tensor) | fused | foreach | loop", false),
      STRING_FIELD("metrics-out", metrics_out, "append one JSON line per epoch to this file", false),
      STRING_FIELD("db", db, "SQLite results database", false),
      STRING_FIELD("checkpoint-dir", checkpoint_dir, "write best / last weights and the resume state here", false),
      STRING_FIELD("cache-dir", cache_dir, "decoded images shared by the processes of a node: one file per split in DIR, mapped read-only; auto ($TMPDIR, else /dev/shm, else /tmp) | none (each process decodes its own copy) | DIR", false),
      Field{{"resume", "continue from --checkpoint-dir's last state", true, false},
            [](TrainOptions& o, const std::string& v) { o.resume = parse_bool("resume", v); },
            [](const TrainOptions& o) { return std::string(o.resume ? "1" : "0"); }},
  };
  return kFields;
}

const Field* find_field(const std::string& name) {
  for (const auto& f : fields())
    if (f.info.name == name) return &f;
  return nullptr;
}

}  // namespace

const std::vector<TrainOptionInfo>& train_option_table() {
  static const std::vector<TrainOptionInfo> kTable = [] {
    std::vector<TrainOptionInfo> t;
    for (const auto& f : fields()) t.push_back(f.info);
    return t;
  }();
  return kTable;
}

bool is_train_option(const std::string& name) { return find_field(name) != nullptr; }

void set_train_option(TrainOptions& options, const std::string& name, const std::string& value) {
  const Field* f = find_field(name);
  if (!f) {
    std::string names;
    for (const auto& g : fields()) names += (names.empty() ? "" : ", ") + g.info.name;
    throw_error("unknown training option '{}'; valid: {}", name, names);
  }
  f->set(options, value);
}

std::string get_train_option(const TrainOptions& options, const std::string& name) {
  const Field* f = find_field(name);
  LMSWEEP_CHECK(f, "unknown training option '{}'", name);
  return f->get(options);
}

std::map<std::string, std::string> method_options(const TrainOptions& options) {
  std::map<std::string, std::string> out;
  for (const auto& f : fields())
    if (f.info.sweepable) out[f.info.name] = f.get(options);
  out["sample-power"] = format_double(options.effective_sample_power());
  return out;
}

namespace {

// --eval-at's epochs; throws lmsweep::Error naming the bad item.
std::vector<int64_t> parse_epoch_list(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) continue;
    const int64_t e = parse_int("eval-at", item);
    LMSWEEP_CHECK(e >= 1, "--eval-at = '{}': epoch {} must be >= 1", text, e);
    out.push_back(e);
  }
  return out;
}

}  // namespace

bool TrainOptions::evaluates(int64_t epoch) const {
  if (epoch >= epochs || epoch > epochs - eval_last) return true;
  if (eval_every > 0 && epoch % eval_every == 0) return true;
  const auto at = parse_epoch_list(eval_at);
  return std::find(at.begin(), at.end(), epoch) != at.end();
}

void TrainOptions::validate() const {
  auto in = [](bool ok, const char* name, const std::string& value, const char* range) {
    LMSWEEP_CHECK(ok, "--{} = {}: must be {}", name, value, range);
  };
  in(epochs >= 1, "epochs", std::to_string(epochs), ">= 1");
  in(batch_size >= 1, "batch-size", std::to_string(batch_size), ">= 1");
  in(eval_batch_size >= 1, "eval-batch-size", std::to_string(eval_batch_size), ">= 1");
  in(eval_every >= 0, "eval-every", std::to_string(eval_every), ">= 0 (0: only --eval-at, --eval-last and the last epoch)");
  in(eval_last >= 0, "eval-last", std::to_string(eval_last), ">= 0");
  parse_epoch_list(eval_at);
  LMSWEEP_CHECK(eval_precision.empty() || eval_precision == "fp32" || eval_precision == "bf16",
                "--eval-precision = '{}': valid: fp32, bf16 (or leave it unset: as --precision)", eval_precision);
  in(lr > 0, "lr", format_double(lr), "> 0");
  in(lambda >= 0, "lambda", format_double(lambda), ">= 0");
  in(gamma_neg >= 0, "gamma-neg", format_double(gamma_neg), ">= 0");
  in(gamma_pos >= 0, "gamma-pos", format_double(gamma_pos), ">= 0");
  in(clip >= 0 && clip < 1, "clip", format_double(clip), "in [0, 1)");
  in(s >= 0, "s", format_double(s), ">= 0");
  in(effective_sample_power() >= 0, "sample-power", format_double(effective_sample_power()), ">= 0");
  in(label_smoothing >= 0 && label_smoothing < 1, "label-smoothing", format_double(label_smoothing), "in [0, 1)");
  in(flip >= 0 && flip <= 1, "flip", format_double(flip), "in [0, 1]");
  // More threads than a few per core only thrash (and tens of thousands never start).
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int max_threads = std::max(64, 4 * cores);
  LMSWEEP_CHECK(threads >= 0 && threads <= max_threads, "--threads = {}: must be in 0..{} (0: all cores; this machine "
                "has {})", threads, max_threads, cores);
  static const std::vector<std::string> kLosses = {"clip+bal", "clip+asl", "clip", "bal", "asl"};
  LMSWEEP_CHECK(std::find(kLosses.begin(), kLosses.end(), loss) != kLosses.end(),
                "--loss = '{}': unknown loss; valid: clip+bal, clip+asl, clip, bal, asl", loss);
  LMSWEEP_CHECK(sampling == "weighted" || sampling == "uniform" || sampling == "sequential",
                "--sampling = '{}': valid: weighted, uniform, sequential", sampling);
  LMSWEEP_CHECK(normalize == "imagenet" || normalize == "clip", "--normalize = '{}': valid: imagenet, clip", normalize);
  LMSWEEP_CHECK(precision == "fp32" || precision == "bf16", "--precision = '{}': valid: fp32, bf16", precision);
  LMSWEEP_CHECK(adamw == "auto" || adamw == "fused" || adamw == "foreach" || adamw == "loop",
                "--adamw = '{}': valid: auto, fused, foreach, loop", adamw);
  LMSWEEP_CHECK(device == "cpu" || device.rfind("cuda", 0) == 0, "--device = '{}': valid: cpu, cuda, cuda:N", device);
  LMSWEEP_CHECK(!weights.empty() || !arch.empty(),
                "neither --weights nor --arch given: pass a CLIP checkpoint, or an architecture for random weights");
  LMSWEEP_CHECK(!train.empty(), "--train is required (the training split file), or --synthetic DIR");
  LMSWEEP_CHECK(!test.empty(), "--test is required (the test split file)");
  LMSWEEP_CHECK(!labels.empty(), "--labels is required (the labels file)");
  LMSWEEP_CHECK(!resume || !checkpoint_dir.empty(), "--resume needs --checkpoint-dir (where the last state is)");
}

}  // namespace lmsweep
