// lmsweep: LM-CLIP fine-tuning and hyperparameter sweeps. A thin dispatcher over the libraries.
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include "common/error.h"
#include "launcher/commands.h"
#include "launcher/version.h"

namespace {

const char* kUsage =
    "lmsweep: LM-CLIP (CLIP fine-tuned for long-tailed multi-label classification) and its\n"
    "hyperparameter sweeps.\n\n"
    "usage: lmsweep COMMAND [options]      (lmsweep COMMAND --help for its options)\n\n"
    "commands:\n"
    "  sweep        hyperparameter sweep over MPI ranks (mpirun -np N lmsweep sweep ...)\n"
    "  best         best configurations of a sweep (Tables 3 and 1 of the paper)\n"
    "  status       progress of a sweep (safe while it runs)\n"
    "  report       an HTML page of a study with the paper's tables and figures (gnuplot)\n"
    "  export       a study for TensorBoard (--format tensorboard) or Optuna (--format optuna-journal)\n"
    "  importance   which parameters matter (PED-ANOVA, as Optuna's)\n"
    "  submit       submit a sweep as a SLURM batch job (requeued on preemption)\n"
    "  train        fine-tune CLIP with LM-CLIP (one run; mpirun -np k for data parallelism)\n"
    "  eval         evaluate a CLIP checkpoint on a test split (zero-shot or fine-tuned)\n"
    "  synth-data   write the built-in synthetic long-tailed multi-label dataset\n"
    "  version      lmsweep's and LibTorch's versions, the backends built in (also --version)\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  const int sub_argc = argc - 1;
  const char* const* sub_argv = argv + 1;
  try {
    if (command == "eval") return lmsweep::cli::run_eval(sub_argc, sub_argv);
    if (command == "train") return lmsweep::cli::run_train(sub_argc, sub_argv);
    if (command == "synth-data") return lmsweep::cli::run_synth_data(sub_argc, sub_argv);
    if (command == "sweep") return lmsweep::cli::run_sweep(sub_argc, sub_argv);
    if (command == "best") return lmsweep::cli::run_best(sub_argc, sub_argv);
    if (command == "status") return lmsweep::cli::run_status(sub_argc, sub_argv);
    if (command == "submit") return lmsweep::cli::run_submit(sub_argc, sub_argv);
    if (command == "report") return lmsweep::cli::run_report(sub_argc, sub_argv);
    if (command == "export") return lmsweep::cli::run_export(sub_argc, sub_argv);
    if (command == "importance") return lmsweep::cli::run_importance(sub_argc, sub_argv);
    if (command == "version" || command == "--version") return lmsweep::cli::run_version(sub_argc, sub_argv);
    std::cerr << "lmsweep: unknown command '" << command << "'\n\n" << kUsage;
    return 2;
  } catch (const lmsweep::Error& e) {
    std::cerr << "lmsweep " << command << ": error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    // Errors from libraries below ours (LibTorch, the C++ runtime): first line only.
    std::string what = e.what();
    std::cerr << "lmsweep " << command << ": error: " << what.substr(0, what.find('\n')) << "\n";
    return 1;
  }
}
