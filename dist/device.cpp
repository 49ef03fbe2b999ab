#include "dist/device.h"

#include <fmt/format.h>

#include "common/error.h"
#include "compat/torch_compat.h"

namespace lmsweep::dist {

std::string rank_device(const std::string& requested, int node_local_rank, int visible_gpus) {
  // No GPU visible: left as it is, for parse_device to say what is missing.
  if (requested != "cuda" || visible_gpus <= 0) return requested;
  return fmt::format("cuda:{}", node_local_rank % visible_gpus);
}

void use_device(const std::string& device) {
  if (device.rfind("cuda:", 0) != 0) return;
  compat::set_current_cuda_device(std::stoi(device.substr(5)));
}

}  // namespace lmsweep::dist
