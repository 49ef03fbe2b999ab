#pragma once
// The device a rank trains on, the same rule in `train` and `sweep`: on a node whose ranks see
// G GPUs, node-local rank r takes GPU r % G (with `--gpus-per-task=1` every task sees one GPU
// and takes it). The GPU is made current for the calling thread before any CUDA work, so no
// stray context lands on GPU 0.
#include <string>

namespace lmsweep::dist {

// requested: "cpu", "cuda" (GPU by node-local rank) or "cuda:N" (as given) -> "cpu" / "cuda:N".
// visible_gpus: what this process sees (compat::cuda_device_count()).
std::string rank_device(const std::string& requested, int node_local_rank, int visible_gpus);

// Makes `device` ("cuda:N") current for this thread; nothing for "cpu". Throws lmsweep::Error
// when the GPU does not exist.
void use_device(const std::string& device);

}  // namespace lmsweep::dist
