#include "launcher/preflight.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "common/error.h"
#include "compat/torch_compat.h"
#include "data/dataset.h"
#include "sweep/command_trial.h"
#include "sweep/worker.h"

namespace lmsweep::cli {
namespace fs = std::filesystem;

void check_device(const std::string& device) {
  if (device.rfind("cuda", 0) != 0 || compat::cuda_device_count() > 0) return;
  throw_error("--device {}: no CUDA GPU is visible here ({}): run on a GPU node, or pass --device cpu", device,
              compat::built_with_cuda() ? "check the allocation's GPUs and CUDA_VISIBLE_DEVICES"
                                        : "this lmsweep is built against a CPU-only LibTorch");
}

void check_writable_folder(const std::string& folder, const std::string& option) {
  if (folder.empty()) return;
  std::error_code ec;
  fs::create_directories(folder, ec);
  LMSWEEP_CHECK(!ec, "--{} {}: cannot create the folder ({}): fix the path or its permissions", option, folder,
                ec.message());
  const fs::path probe = fs::path(folder) / fmt::format(".lmsweep-write-test-{}", ::getpid());
  {
    std::ofstream out(probe);
    out << "x";
    out.close();
    LMSWEEP_CHECK(out.good(), "--{} {}: cannot write there ({}): fix its permissions or pass another folder",
                  option, folder, std::strerror(errno));
  }
  fs::remove(probe, ec);
}

void check_data_files(const TrainOptions& o) {
  const LabelNames labels = read_label_names(o.labels);
  const auto classes = static_cast<int64_t>(labels.names.size());
  for (const std::string* file : {&o.train, &o.test}) {
    const Split split = read_split(*file, classes);
    for (const auto& e : split.entries) {
      const fs::path image = fs::path(o.data_root) / e.path;
      std::error_code ec;
      LMSWEEP_CHECK(fs::is_regular_file(image, ec),
                    "{}:{}: image {} does not exist{}: fix --data-root or the split file", *file, e.line,
                    image.string(), o.data_root.empty() ? "" : " (--data-root " + o.data_root + ")");
    }
  }
}

void check_before_first_trial(const TrainOptions& base, const sweep::SweepSetup& setup,
                              const sweep::PointSampler& sampler, bool fake) {
  if (setup.config.trial == sweep::TrialKind::Command) {
    // The program must exist here (ranks on other nodes see the same PATH on a cluster's image).
    sweep::find_program(sweep::CommandTemplate::parse(setup.config.command).words().at(0));
    check_writable_folder(setup.trial_root, "trial_dir");
    return;
  }
  for (int64_t k = 0; k < sampler.num_trials(); ++k)
    sweep::trial_options(base, sweep::to_json(sampler.point(k)), sampler.seed(k), setup.config.name, k).validate();
  if (fake) return;
  check_device(base.device);
  check_writable_folder(base.checkpoint_dir, "checkpoint-dir");
  check_data_files(base);
}

}  // namespace lmsweep::cli
