#pragma once
// Where the ranks of a sweep run when several trials share a device (`[sweep]
// trials_per_device`), and what a trial's error says then. Torch-free.
#include <string>

namespace lmsweep::sweep {

// Where a rank of a sweep runs with `trials_per_device` = k (0: not set): its GPU on a node whose
// ranks see `gpus` GPUs (-1 on CPU), checked per device, never only across the node (ray#5902):
// node-local rank r takes GPU r % gpus, so a GPU holds ceil(ranks / gpus) ranks, which must not
// exceed k; on CPU the node is one device holding every rank. Throws lmsweep::Error naming
// the host, the ranks and k otherwise.
int device_slot(int trials_per_device, int node_rank, int node_ranks, int gpus, const std::string& host);

// Whether a sweep's ranks are placed on GPUs: some are visible and the trials use them (--device
// cuda, or command trials, which get theirs through CUDA_VISIBLE_DEVICES whatever --device says).
bool places_on_gpus(int visible_gpus, const std::string& device, bool command_trials);

// A trial's error as recorded: an out-of-memory error of a GPU shared by several trials names
// trials_per_device, the likely cause.
std::string trial_error_text(const std::string& what, int trials_per_device);

}  // namespace lmsweep::sweep
