#include "launcher/slurm_submit.h"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <sstream>

#include <fmt/format.h>

#include "common/error.h"

namespace lmsweep::cli {

extern const char* const kSbatchTemplate;  // slurm/sweep.sbatch.in, compiled in

namespace {

std::string replace_all(std::string text, const std::string& key, const std::string& value) {
  const std::string token = "{{" + key + "}}";
  for (size_t at = text.find(token); at != std::string::npos; at = text.find(token, at + value.size()))
    text.replace(at, token.size(), value);
  return text;
}

// Single-quoted for the shell unless it is plainly safe.
std::string quote(const std::string& s) {
  if (!s.empty() && std::regex_match(s, std::regex("[A-Za-z0-9_./:=@%+,-]+"))) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string absolute(const std::string& p) { return std::filesystem::absolute(p).lexically_normal().string(); }

std::string job_name_of(const SubmitOptions& o) {
  if (!o.job_name.empty()) return o.job_name;
  return "lmsweep-" + std::filesystem::path(o.config).stem().string();
}

}  // namespace

bool is_slurm_time(const std::string& t) {
  static const std::regex kFormats(
      R"(^(UNLIMITED|unlimited|infinite|\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2})$)");
  return std::regex_match(t, kFormats);
}

void validate(const SubmitOptions& o) {
  LMSWEEP_CHECK(!o.config.empty(), "lmsweep submit: --config is required (the sweep INI)");
  LMSWEEP_CHECK(std::filesystem::exists(o.config), "--config {}: no such file", o.config);
  LMSWEEP_CHECK(!o.db.empty(), "lmsweep submit: --db is required (the results database)");
  LMSWEEP_CHECK(o.nodes >= 1, "--nodes = {}: must be >= 1", o.nodes);
  LMSWEEP_CHECK(o.gpus_per_node >= 0, "--gpus-per-node is required (0 for a CPU-only allocation with --ntasks)");
  if (o.gpus_per_node == 0) {
    LMSWEEP_CHECK(o.ntasks >= 1, "--gpus-per-node 0 needs --ntasks N (MPI ranks on the CPU-only allocation)");
    LMSWEEP_CHECK(o.ntasks % o.nodes == 0, "--ntasks {} is not a multiple of --nodes {}", o.ntasks, o.nodes);
  } else {
    const int per_gpu = std::max(1, o.trials_per_device);
    LMSWEEP_CHECK(o.ntasks == 0 || o.ntasks == o.nodes * o.gpus_per_node * per_gpu,
                  "--ntasks {} contradicts {} nodes x {} GPUs x {} rank(s) per GPU (trials_per_device): leave --ntasks "
                  "out", o.ntasks, o.nodes, o.gpus_per_node, per_gpu);
  }
  LMSWEEP_CHECK(is_slurm_time(o.time),
                "--time '{}': not a SLURM time limit; use minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS",
                o.time);
  LMSWEEP_CHECK(o.cpus_per_task >= 0, "--cpus-per-task = {}: must be >= 1", o.cpus_per_task);
  LMSWEEP_CHECK(o.launcher == "srun" || o.launcher == "mpirun", "--launcher '{}': valid: srun, mpirun", o.launcher);
  LMSWEEP_CHECK(o.signal_seconds >= 0, "--signal-seconds = {}: must be >= 0", o.signal_seconds);
  for (const auto& a : o.sbatch_args)
    LMSWEEP_CHECK(a.rfind("--", 0) == 0 && a.find('\n') == std::string::npos,
                  "--sbatch-arg '{}': expected one sbatch option such as --qos=high", a);
  // sbatch splits an #SBATCH line at blanks: `--account=a b` would pass a stray argument.
  const std::pair<const char*, const std::string*> words[] = {
      {"job-name", &o.job_name}, {"partition", &o.partition}, {"account", &o.account}};
  for (const auto& [option, value] : words)
    LMSWEEP_CHECK(value->find_first_of(" \t'\"") == std::string::npos,
                  "--{} '{}': no blanks or quotes in an #SBATCH value; SLURM would split it", option, *value);
}

// k trials per GPU: one CUDA MPS control daemon per node, in a job step of its own that lasts
// the sweep (a daemon forked out of a step would be killed when that step ends), so that the
// trials' kernels share each GPU instead of time-slicing it.
std::string mps_start(int nodes, int gpus_per_node, int per_gpu) {
  return fmt::format(
      "# trials_per_device = {2}: {2} trials share each GPU through CUDA MPS, one control daemon per node.\n"
      "export CUDA_MPS_PIPE_DIRECTORY=\"${{TMPDIR:-/tmp}}/lmsweep-mps-${{SLURM_JOB_ID}}/pipe\"\n"
      "export CUDA_MPS_LOG_DIRECTORY=\"${{TMPDIR:-/tmp}}/lmsweep-mps-${{SLURM_JOB_ID}}/log\"\n"
      "srun --overlap --nodes={0} --ntasks-per-node=1 --gpus-per-node={1} bash -c "
      "'mkdir -p \"$CUDA_MPS_PIPE_DIRECTORY\" \"$CUDA_MPS_LOG_DIRECTORY\" && exec nvidia-cuda-mps-control -f' &\n"
      "mps=$!\n"
      "stop_mps() {{\n"
      "  srun --overlap --nodes={0} --ntasks-per-node=1 bash -c 'echo quit | nvidia-cuda-mps-control' || true\n"
      "  wait \"$mps\" 2>/dev/null || true\n"
      "}}\n"
      "sleep 2  # the daemons create their pipes\n"
      "echo \"lmsweep: CUDA MPS started on {0} node(s) for {2} trials per GPU\"\n",
      nodes, gpus_per_node, per_gpu);
}

std::string render_sbatch(const SubmitOptions& o) {
  validate(o);
  const bool gpu = o.gpus_per_node > 0;
  const int per_gpu = std::max(1, o.trials_per_device);
  const int tasks_per_node = gpu ? o.gpus_per_node * per_gpu : o.ntasks / o.nodes;
  const int cpus = o.cpus_per_task > 0 ? o.cpus_per_task : (gpu ? 4 : 1);
  std::string extra;
  for (const auto& a : o.sbatch_args) extra += "#SBATCH " + a + "\n";
  std::string args;
  std::vector<std::string> sweep_args = o.sweep_args;
  if (gpu && std::find(sweep_args.begin(), sweep_args.end(), "--device") == sweep_args.end()) {
    sweep_args.push_back("--device");
    sweep_args.push_back("cuda");  // each rank takes the GPU of its node-local rank
  }
  for (const auto& a : sweep_args) args += " " + quote(a);
  const std::string launch = o.launcher == "srun" ? "srun --mpi=pmix --kill-on-bad-exit=1"
                                                  : "mpirun -np \"${SLURM_NTASKS}\" --bind-to none";
  const std::filesystem::path db = absolute(o.db);
  std::string s = kSbatchTemplate;
  s = replace_all(s, "JOB_NAME", job_name_of(o));
  s = replace_all(s, "NODES", std::to_string(o.nodes));
  s = replace_all(s, "TASKS_PER_NODE", std::to_string(tasks_per_node));
  s = replace_all(s, "GPU_LINE", gpu ? fmt::format("#SBATCH --gpus-per-node={}\n", o.gpus_per_node) : "");
  s = replace_all(s, "CPUS_PER_TASK", std::to_string(cpus));
  s = replace_all(s, "TIME", o.time);
  s = replace_all(s, "PARTITION_LINE", o.partition.empty() ? "" : "#SBATCH --partition=" + o.partition + "\n");
  s = replace_all(s, "ACCOUNT_LINE", o.account.empty() ? "" : "#SBATCH --account=" + o.account + "\n");
  s = replace_all(s, "SIGNAL_SECONDS", std::to_string(o.signal_seconds));
  s = replace_all(s, "LOG", quote((db.parent_path() / (job_name_of(o) + "-%j.log")).string()));
  s = replace_all(s, "EXTRA_SBATCH", extra);
  s = replace_all(s, "WORKDIR", quote(o.workdir.empty() ? absolute(".") : absolute(o.workdir)));
  s = replace_all(s, "LAUNCH", launch);
  s = replace_all(s, "LMSWEEP", quote(o.lmsweep));
  s = replace_all(s, "CONFIG", quote(absolute(o.config)));
  s = replace_all(s, "DB", quote(db.string()));
  s = replace_all(s, "ARGS", args);
  const bool mps = gpu && per_gpu > 1;
  s = replace_all(s, "MPS_START", mps ? mps_start(o.nodes, o.gpus_per_node, per_gpu) : "");
  s = replace_all(s, "MPS_STOP", mps ? "stop_mps\n" : "");
  return s;
}

std::string script_path(const SubmitOptions& o) {
  const std::filesystem::path db = absolute(o.db);
  return (db.parent_path() / (db.stem().string() + "." + job_name_of(o) + ".sbatch")).string();
}

}  // namespace lmsweep::cli
