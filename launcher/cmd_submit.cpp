#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <iostream>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "common/error.h"
#include "launcher/cli.h"
#include "launcher/commands.h"
#include "launcher/slurm_submit.h"
#include "sweep/config.h"

namespace po = boost::program_options;

namespace lmsweep::cli {
namespace {

std::string self_executable() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("lmsweep") : p.string();
}

// Runs argv (no shell), returning its exit status and its stdout + stderr.
int run_capture(const std::vector<std::string>& args, std::string& output) {
  std::string command;
  for (const auto& a : args) {
    command += (command.empty() ? "" : " ") + std::string("'");
    for (char c : a) command += c == '\'' ? std::string("'\\''") : std::string(1, c);
    command += "'";
  }
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  LMSWEEP_CHECK(pipe, "cannot run {}", args[0]);
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), pipe)) output.append(buf, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool on_path(const std::string& program) {
  if (program.find('/') != std::string::npos) return access(program.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':'))
    if (!dir.empty() && access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  return false;
}

}  // namespace

int run_submit(int argc, const char* const argv[]) {
  SubmitOptions o;
  std::string sbatch = "sbatch";
  bool dry_run = false;
  po::options_description general("submit options");
  general.add_options()("help,h", "this help")
      ("config", po::value(&o.config)->required(), "the sweep INI ([sweep], [space], [train])")
      ("nodes", po::value(&o.nodes)->default_value(1), "nodes")
      ("gpus-per-node", po::value(&o.gpus_per_node)->required(), "GPUs per node, one MPI rank each; 0: CPU-only (--ntasks)")
      ("ntasks", po::value(&o.ntasks)->default_value(0), "CPU-only allocations: MPI ranks in all")
      ("time", po::value(&o.time)->default_value(o.time), "time limit (HH:MM:SS, D-HH:MM, minutes, ...)")
      ("partition", po::value(&o.partition), "partition")
      ("account", po::value(&o.account), "account")
      ("cpus-per-task", po::value(&o.cpus_per_task)->default_value(0), "CPUs per rank (0: 4 with GPUs, 1 without)")
      ("sbatch-arg", po::value(&o.sbatch_args)->composing(), "a further sbatch option, e.g. --sbatch-arg=--qos=high (repeatable)")
      ("launcher", po::value(&o.launcher)->default_value(o.launcher), "srun (srun --mpi=pmix) | mpirun (inside the allocation)")
      ("job-name", po::value(&o.job_name), "job name (default: lmsweep-<config name>)")
      ("signal-seconds", po::value(&o.signal_seconds)->default_value(o.signal_seconds),
       "SIGUSR1 this many seconds before the time limit: trials save their state, the job requeues")
      ("sbatch", po::value(&sbatch)->default_value(sbatch), "the sbatch program")
      ("dry-run", po::bool_switch(&dry_run), "write and print the script, do not submit");
  po::options_description training("training options passed to every trial (as in lmsweep sweep)");
  add_train_options(training);
  po::options_description desc;
  desc.add(general).add(training);
  if (wants_help(argc, argv)) {
      std::cout << help_text("lmsweep submit --config SWEEP.ini --db FILE --nodes N --gpus-per-node G [--time T] "
                             "[--partition P] [--account A] [--cpus-per-task C] [--sbatch-arg ...] [--dry-run]",
                             "Writes a SLURM batch script for the sweep beside the database (from "
                             "slurm/sweep.sbatch.in), prints its path, submits it with sbatch and prints the job "
                             "id. The job requeues itself when preempted or near its time limit and resumes.", desc);
      return 0;
    }
  const auto vm = parse("submit", argc, argv, desc);
  // What `sweep` would refuse is refused here, before a job waits in the queue for it.
  o.trials_per_device = read_sweep_ini(o.config, vm).config.trials_per_device;
  // Values go into #SBATCH lines and the script: a line break would add lines of its own.
  auto one_line = [](const std::string& option, const std::string& value) {
    LMSWEEP_CHECK(value.find_first_of("\n\r") == std::string::npos, "--{} = '{}': a value may not hold a line break",
                  option, value.substr(0, value.find_first_of("\n\r")) + "...");
  };
  one_line("partition", o.partition);
  one_line("account", o.account);
  one_line("time", o.time);
  one_line("job-name", o.job_name);
  for (const auto& a : o.sbatch_args) one_line("sbatch-arg", a);
  for (const auto& info : train_option_table())
    if (vm.count(info.name) && !info.is_switch) one_line(info.name, vm[info.name].as<std::string>());
  // Training options given here go to the sweep; the database is the sweep's --db.
  TrainOptions probe;
  o.db = vm.count("db") ? vm["db"].as<std::string>() : probe.db;
  bool has_checkpoint_dir = vm.count("checkpoint-dir") > 0;
  if (!has_checkpoint_dir && std::filesystem::exists(o.config)) {
    const auto ini = sweep::parse_ini_file(o.config);
    for (const auto& kv : ini.section("train")) has_checkpoint_dir |= kv.key == "checkpoint-dir";
  }
  for (const auto& info : train_option_table()) {
    if (info.name == "db" || !vm.count(info.name)) continue;
    o.sweep_args.push_back("--" + info.name);
    if (!info.is_switch) o.sweep_args.push_back(vm[info.name].as<std::string>());
  }
  if (!has_checkpoint_dir) {
    // Preempted trials resume from their last state only with checkpoints: keep them beside the db.
    o.sweep_args.push_back("--checkpoint-dir");
    o.sweep_args.push_back(std::filesystem::absolute(o.db).string() + ".checkpoints");
  }
  o.lmsweep = self_executable();
  o.workdir = std::filesystem::current_path().string();

  const std::string script = render_sbatch(o);
  const std::string path = script_path(o);
  {
    std::ofstream out(path, std::ios::trunc);
    LMSWEEP_CHECK(out.good(), "{}: cannot write the batch script (is the database's folder writable?)", path);
    out << script;
  }
  std::filesystem::permissions(path, std::filesystem::perms::owner_exec, std::filesystem::perm_options::add);
  std::cout << path << "\n";
  if (dry_run) {
    std::cout << script;
    return 0;
  }
  LMSWEEP_CHECK(on_path(sbatch), "{} not found: submit from a SLURM login node (or pass --sbatch PATH), or use "
                "--dry-run and submit {} yourself", sbatch, path);
  std::string output;
  const int rc = run_capture({sbatch, "--parsable", path}, output);
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
  if (rc != 0) {
    std::string first = output.substr(0, output.find('\n'));
    throw_error("{} failed (exit {}): {}", sbatch, rc, first.empty() ? "no message" : first);
  }
  const std::string job = output.substr(output.rfind('\n') == std::string::npos ? 0 : output.rfind('\n') + 1);
  std::cout << "submitted job " << job.substr(0, job.find(';')) << "\n";
  return 0;
}

}  // namespace lmsweep::cli
