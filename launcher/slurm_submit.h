#pragma once
// `lmsweep submit`: the batch script of a sweep (slurm/sweep.sbatch.in) rendered and handed to
// sbatch. Torch-free.
#include <string>
#include <vector>

namespace lmsweep::cli {

struct SubmitOptions {
  std::string config;               // the sweep INI (absolute in the script)
  std::string db;                   // the results database; the script is written beside it
  int nodes = 1;
  int gpus_per_node = -1;           // required; 0: a CPU-only allocation (then ntasks)
  int ntasks = 0;                   // CPU-only: MPI ranks in all (spread over the nodes)
  std::string time = "24:00:00";    // SLURM time format
  std::string partition, account;
  int cpus_per_task = 0;            // 0: 4 per GPU task, 1 per CPU task
  std::vector<std::string> sbatch_args;  // extra "--key=value" lines
  std::string launcher = "srun";    // srun (srun --mpi=pmix) | mpirun (inside the allocation)
  std::string job_name;             // default: lmsweep-<config stem>
  int signal_seconds = 120;         // SIGUSR1 this long before the time limit
  std::vector<std::string> sweep_args;  // further `lmsweep sweep` arguments (training options)
  std::string lmsweep;              // the executable (absolute)
  std::string workdir;              // the job's working directory (absolute)
  // [sweep] trials_per_device (k): k ranks per GPU, and with k > 1 the script starts CUDA MPS on
  // every node before the sweep and stops it after.
  int trials_per_device = 0;
};

// Throws lmsweep::Error naming the option for a value SLURM would refuse.
void validate(const SubmitOptions& options);
// SLURM's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S (also "UNLIMITED").
bool is_slurm_time(const std::string& text);
// The script's text (options validated first).
std::string render_sbatch(const SubmitOptions& options);
// <db folder>/<db stem>.<job name>.sbatch
std::string script_path(const SubmitOptions& options);

}  // namespace lmsweep::cli
