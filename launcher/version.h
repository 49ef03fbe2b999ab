#pragma once
// `lmsweep --version` / `lmsweep version`: lmsweep's version, LibTorch's, and the backends
// compiled in, one line each, in a stable format (tests and scripts read it):
//   lmsweep 0.1.0
//   LibTorch 2.11.0
//   CUDA yes (13.0; 0 GPUs visible)        or: CUDA no
//   NCCL yes (2.28.9)                      or: NCCL no
//   Gloo yes                               or: Gloo no
//   MPI Open MPI v4.1.4
#include <ostream>
#include <string>
#include <vector>

namespace lmsweep::cli {

std::vector<std::string> version_lines();
int run_version(int argc, const char* const argv[]);  // prints version_lines() to stdout

}  // namespace lmsweep::cli
