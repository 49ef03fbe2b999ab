#pragma once
// The options of one LM-CLIP run (`lmsweep train`, one sweep trial), torch-free so that the
// launcher and the sweep can read, set and record them. Every option has one flag name, used
// on the command line (--batch-size), in INI files ([train] batch-size = 8) and as a sweep
// dimension ([space] batch-size = choice(8, 16)).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lmsweep {

struct TrainOptions {
  // Model and text.
  std::string weights;        // checkpoint; empty: random weights of `arch`
  std::string arch;           // architecture for random weights (ClipConfig::parse)
  std::string bpe;            // OpenAI's vocabulary; empty: byte-level tokenizer (no merges)
  // Data (split-file format), or the built-in synthetic set in a folder (written if missing;
  // fills data_root / train / test / labels: see resolve_synthetic in launcher/cli.h).
  std::string data_root, train, test, labels;
  std::string synthetic;
  // Method (DESIGN.md section 1; defaults: the published VOC-MLT ViT-B/16 settings).
  int64_t epochs = 50;
  int64_t batch_size = 8;
  double lr = 1e-6;
  double lambda = 0.4;
  double gamma_neg = 9.8;
  double gamma_pos = 0.0;
  double clip = 0.05;
  double s = 1.35;                       // class-weight power
  std::optional<double> sample_power;    // sampler power; defaults to s
  double label_smoothing = 0.1;
  std::string loss = "clip+bal";         // clip | asl | bal | clip+asl | clip+bal
  bool class_weights = true;             // BAL's (1 + w_c); off for the ablation
  std::string sampling = "weighted";     // weighted | uniform | sequential
  double flip = 0.5;
  std::string normalize = "imagenet";    // imagenet | clip
  std::string prompt = "a photo of a ";
  int64_t eval_batch_size = 64;
  // Which epochs are evaluated (scored on the test split): every eval_every-th, each of the last
  // eval_last, the ones listed in eval_at, and always the final one. An epoch not evaluated
  // records its loss only: it cannot be a trial's best epoch.
  int64_t eval_every = 1;                // 0: only eval_at, eval_last and the final epoch
  int64_t eval_last = 0;
  std::string eval_at;                   // "5,10,20" (a sweep with eval_epochs = rungs: ASHA's rungs)
  std::string eval_precision;            // "" (as precision) | fp32 | bf16
  // Run.
  uint64_t seed = 0;
  int threads = 0;                       // 0: all cores
  std::string device = "cpu";            // cpu | cuda | cuda:N
  std::string precision = "fp32";        // fp32 (the reference) | bf16 (autocast; norms, softmax, losses in fp32)
  bool tf32 = false;                     // TF32 matmuls / convolutions on CUDA
  std::string adamw = "auto";            // auto | loop | foreach | fused (the AdamW implementation)
  std::string metrics_out;               // JSON lines, one per epoch
  std::string db = "lmsweep.db";
  std::string checkpoint_dir;            // best / last weights and resume state
  bool resume = false;
  // Node-shared decoded-image cache folder (data/image_cache_file.h): auto = $TMPDIR, else
  // /dev/shm, else /tmp; none = every process decodes its own copy.
  std::string cache_dir = "auto";

  double effective_sample_power() const { return sample_power.value_or(s); }
  // Whether epoch `epoch` (1-based) is evaluated; see eval_every.
  bool evaluates(int64_t epoch) const;
  bool eval_bf16() const { return (eval_precision.empty() ? precision : eval_precision) == "bf16"; }
  // Throws lmsweep::Error naming the option, the value and the valid range.
  void validate() const;
};

struct TrainOptionInfo {
  std::string name;      // flag name without "--"
  std::string help;
  bool is_switch = false;  // takes no value on the command line (--resume)
  bool sweepable = true;   // may be a [space] dimension
};

// Every option, in --help order.
const std::vector<TrainOptionInfo>& train_option_table();
bool is_train_option(const std::string& name);
// Sets one option from its text form; throws lmsweep::Error naming the option and value.
void set_train_option(TrainOptions& options, const std::string& name, const std::string& value);
std::string get_train_option(const TrainOptions& options, const std::string& name);
// The method's options and values (what defines a trial), as flag name -> text.
std::map<std::string, std::string> method_options(const TrainOptions& options);

}  // namespace lmsweep
