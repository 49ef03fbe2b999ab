#include "launcher/version.h"

#include <mpi.h>

#include <algorithm>
#include <cstring>
#include <iostream>

#include "common/error.h"
#include "compat/torch_compat.h"

#if defined(LMSWEEP_HAVE_CUDA) && __has_include(<cuda_runtime_api.h>)
#include <cuda_runtime_api.h>  // CUDART_VERSION: the CUDA runtime this build is compiled against
#endif
#ifdef LMSWEEP_HAVE_NCCL
#include <nccl.h>  // NCCL_MAJOR / NCCL_MINOR / NCCL_PATCH
#endif

#ifndef LMSWEEP_VERSION
#define LMSWEEP_VERSION "unknown"
#endif

namespace lmsweep::cli {
namespace {

std::string yes_no(bool yes) { return yes ? "yes" : "no"; }

std::string cuda_line() {
  if (!compat::built_with_cuda()) return "CUDA no";
  std::string version = "unknown";
#if defined(CUDART_VERSION)
  version = std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10);
#elif defined(LMSWEEP_CUDA_VERSION)
  version = LMSWEEP_CUDA_VERSION;
#endif
  const int gpus = compat::cuda_device_count();
  return "CUDA yes (" + version + "; " + std::to_string(gpus) + (gpus == 1 ? " GPU" : " GPUs") + " visible)";
}

std::string nccl_line() {
#ifdef LMSWEEP_HAVE_NCCL
  return "NCCL yes (" + std::to_string(NCCL_MAJOR) + "." + std::to_string(NCCL_MINOR) + "." +
         std::to_string(NCCL_PATCH) + ")";
#else
  return "NCCL no";
#endif
}

bool have_gloo() {
#ifdef LMSWEEP_HAVE_GLOO
  return true;
#else
  return false;
#endif
}

// MPI_Get_library_version may be called before MPI_Init (MPI 3.0). Its first line, up to the
// first comma ("Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4"), blanks collapsed.
std::string mpi_line() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {0};
  int length = 0;
  if (MPI_Get_library_version(text, &length) != MPI_SUCCESS) return "MPI unknown";
  std::string first(text, static_cast<size_t>(std::max(0, std::min(length, MPI_MAX_LIBRARY_VERSION_STRING))));
  first = first.substr(0, first.find_first_of(",\n"));
  std::string out;
  for (char c : first) {
    const bool blank = c == ' ' || c == '\t' || c == '\r';
    if (blank && (out.empty() || out.back() == ' ')) continue;
    out += blank ? ' ' : c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return "MPI " + (out.empty() ? std::string("unknown") : out);
}

}  // namespace

std::vector<std::string> version_lines() {
  return {std::string("lmsweep ") + LMSWEEP_VERSION,
          "LibTorch " + compat::torch_version(),
          cuda_line(),
          nccl_line(),
          "Gloo " + yes_no(have_gloo()),
          mpi_line()};
}

int run_version(int argc, const char* const argv[]) {
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::cout << "usage: lmsweep version   (or lmsweep --version)\n\n"
                   "Prints lmsweep's version, LibTorch's, and the backends compiled in (CUDA with the\n"
                   "GPUs visible now, NCCL, Gloo, MPI), one line each.\n";
      return 0;
    }
    throw_error("unknown option '{}' (it takes none)", argv[i]);
  }
  for (const auto& line : version_lines()) std::cout << line << "\n";
  return 0;
}

}  // namespace lmsweep::cli
