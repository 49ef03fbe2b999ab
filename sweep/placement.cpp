#include "sweep/placement.h"

#include <fmt/format.h>

#include "common/error.h"

namespace lmsweep::sweep {

int device_slot(int k, int node_rank, int node_ranks, int gpus, const std::string& host) {
  if (gpus > 0) {
    const int per_gpu = (node_ranks + gpus - 1) / gpus;
    LMSWEEP_CHECK(k == 0 || per_gpu <= k,
                  "trials_per_device = {}: {} runs {} ranks on {} GPU(s), {} on a GPU: start at most {} ranks there "
                  "(trials_per_device x GPUs, e.g. srun --ntasks-per-node) or raise trials_per_device",
                  k, host, node_ranks, gpus, per_gpu, k * gpus);
    return node_rank % gpus;
  }
  LMSWEEP_CHECK(k == 0 || node_ranks <= k,
                "trials_per_device = {}: {} runs {} ranks on its CPU (one device: its cores are split between its "
                "ranks): start at most {} ranks there or raise trials_per_device", k, host, node_ranks, k);
  return -1;
}

bool places_on_gpus(int visible_gpus, const std::string& device, bool command_trials) {
  return visible_gpus > 0 && (device.rfind("cuda", 0) == 0 || command_trials);
}

std::string trial_error_text(const std::string& what, int k) {
  std::string line = what.substr(0, what.find('\n'));
  if (k > 1 && line.find("out of memory") != std::string::npos)
    line += fmt::format(" (trials_per_device = {}: {} trials share this GPU; lower trials_per_device or the batch size)",
                        k, k);
  return line;
}

}  // namespace lmsweep::sweep
