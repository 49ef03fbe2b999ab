#pragma once
// Collectives (src/train/collectives.h) over a c10d process group: Gloo on CPU, NCCL on CUDA
// builds of LibTorch. The rendezvous goes through a c10d TCPStore whose address the group's
// first rank sends to the others over MPI. The only file with LibTorch-version-specific c10d
// calls (ProcessGroup in 1.13, Backend in 2.x).
#include <mpi.h>

#include <memory>
#include <string>

#include "train/collectives.h"

namespace lmsweep::dist {

struct ProcessGroupOptions {
  bool cuda = false;              // NCCL (needs a CUDA build) instead of Gloo
  bool single_host = true;        // every rank of the group on this host: loopback addresses
  int timeout_seconds = 1800;     // of every collective
};

// Collective over `group_comm` (all ranks of one trial group call it together).
std::unique_ptr<Collectives> make_process_group(MPI_Comm group_comm, const ProcessGroupOptions& options);

}  // namespace lmsweep::dist
