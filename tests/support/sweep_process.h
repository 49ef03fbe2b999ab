#pragma once
// The MPI sweep from tests: `mpirun -np N lmsweep sweep ...` through a shell (each bounded by
// timeout(1)), fake-trial configs, and the trials as the database holds them.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "db/store.h"

namespace lmsweep::testing::sweep_process {

namespace fs = std::filesystem;

struct Result {
  int status = -1;
  std::string output;
};

// Runs a shell command, capturing stdout + stderr.
inline Result run(const std::string& command) {
  Result r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) r.output.append(buf, n);
  const int s = pclose(p);
  r.status = WIFEXITED(s) ? WEXITSTATUS(s) : 128 + WTERMSIG(s);
  return r;
}

// Root needs Open MPI's consent; more ranks than the 2 cores need --oversubscribe. No job may
// outlive `seconds` (a hang fails its test, not the suite).
inline std::string mpirun(int np, int seconds = 120) {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_mpi_yield_when_idle=1 "
         "timeout -k 5 " + std::to_string(seconds) + " mpirun --oversubscribe -np " + std::to_string(np) + " ";
}

inline const std::string kExe = LMSWEEP_EXE;

// Starts a shell command in a session of its own (returns its pid), so that kill_session can
// take every process of the job at once, as a node failure or a job kill would.
inline pid_t start_in_session(const std::string& command) {
  const pid_t pid = fork();
  if (pid == 0) {
    setsid();
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// kill -9 of every process of the session (mpirun puts each rank in a process group of its
// own, within the session), then reaps the shell.
inline void kill_session(pid_t pid) {
  run("pkill -KILL -s " + std::to_string(pid));
  waitpid(pid, nullptr, 0);
}

inline void write(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

// A sweep config over the fake-trial protocol.
inline std::string fake_config(const std::string& name, const std::string& method, int trials, const std::string& extra_sweep,
                        const std::string& space, int epochs) {
  return "[sweep]\nname = " + name + "\nmethod = " + method + "\n" +
         (trials > 0 ? "trials = " + std::to_string(trials) + "\n" : "") + "seed = 7\n" + extra_sweep +
         "\n[space]\n" + space + "\n[train]\narch = vit:res=32,patch=8,width=32,layers=1,embed=16\n"
         "train = unused.txt\ntest = unused.txt\nlabels = unused.txt\nepochs = " + std::to_string(epochs) + "\n";
}

inline const std::string kSpace =
    "batch-size = choice(8, 16, 32, 64)\ngamma-neg = uniform(2, 12)\nlambda = loguniform(0.1, 10)\n"
    "s = uniform(1, 2)\nlabel-smoothing = loguniform(0.01, 0.1)\n";

struct TrialRow {
  std::string status;
  std::string params;
  int64_t attempts = 0;
  std::string error;
  int64_t epochs = 0;
  std::set<int64_t> epoch_numbers;  // the epochs recorded
  std::string epoch_rows;  // every recorded value, to compare across runs
};

inline std::map<int64_t, TrialRow> trials(const fs::path& db, const std::string& study) {
  auto store = db::Store::open_read_only(db.string());
  auto st = store.find_study(study);
  EXPECT_TRUE(st.has_value());
  std::map<int64_t, TrialRow> out;
  if (!st) return out;
  for (const auto& t : store.trials(st->id)) {
    TrialRow r;
    r.status = db::to_string(t.status);
    r.params = t.params_json;
    r.attempts = t.attempts;
    r.error = t.error;
    for (const auto& e : store.epochs(t.id)) {
      ++r.epochs;
      r.epoch_numbers.insert(e.epoch);
      r.epoch_rows += std::to_string(e.epoch) + ":" + std::to_string(e.map.value_or(-1)) + ":" +
                      std::to_string(e.train_loss.value_or(-1)) + ";";
    }
    out[t.number] = r;
  }
  return out;
}

inline int count_status(const std::map<int64_t, TrialRow>& rows, const std::string& status) {
  int n = 0;
  for (const auto& [_, r] : rows) n += r.status == status;
  return n;
}

}  // namespace lmsweep::testing::sweep_process
