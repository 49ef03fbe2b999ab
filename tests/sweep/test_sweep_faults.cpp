// Faults in a distributed sweep (sweep/protocol.h, "Faults"), made with LMSWEEP_FAULT: a trial
// fails alone, the watchdog frees a hung rank, a crash loop ends at max_attempts, a killed rank
// is resumed, one sweep per database. Fake trials (--fake-epoch-seconds) with
// gpus_per_trial = 2 run a real Gloo collective per step, so the c10d failure path is the real
// one; one test trains for real.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "db/store.h"
#include "support/shared_data.h"
#include "support/sweep_process.h"

namespace lmsweep {
namespace {

namespace fs = std::filesystem;
using namespace testing::sweep_process;
using testing::temp_dir;
using Clock = std::chrono::steady_clock;

const std::string kPairs = "gpus_per_trial = 2\nwatchdog_seconds = 6\n";
const std::string kLambda = "lambda = loguniform(0.1, 10)\n";

std::string sweep(const fs::path& dir, int np, const std::string& fault, double epoch_seconds,
                  const std::string& extra = "") {
  return "cd " + dir.string() + " && " + (fault.empty() ? "" : "LMSWEEP_FAULT=" + fault + " ") + mpirun(np) + kExe +
         " sweep --config s.ini --db s.db --fake-epoch-seconds " + std::to_string(epoch_seconds) + extra;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Polls `status --format json` until `ready` holds (or 60 s pass); returns the last answer.
nlohmann::json wait_for_status(const fs::path& dir, const std::function<bool(const nlohmann::json&)>& ready) {
  nlohmann::json last;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto r = run("cd " + dir.string() + " && " + kExe + " status --db s.db --study f --format json");
    if (r.status != 0) continue;
    try {
      last = nlohmann::json::parse(r.output);
    } catch (const std::exception&) {
      continue;
    }
    if (ready(last)) return last;
  }
  return last;
}

TEST(SweepFaults, AThrowOnOneRankFailsThatTrialAlone) {
  const auto dir = temp_dir("fault_throw");
  write(dir / "s.ini", fake_config("f", "random", 6, kPairs, kLambda, 3));
  const auto t0 = Clock::now();
  const auto r = run(sweep(dir, 4, "throw:trial=2:rank=1:step=3", 0.2));
  const double took = seconds_since(t0);
  ASSERT_EQ(r.status, 0) << r.output;
  const auto rows = trials(dir / "s.db", "f");
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows.at(2).status, "failed");
  EXPECT_NE(rows.at(2).error.find("rank 1 on "), std::string::npos) << rows.at(2).error;
  EXPECT_NE(rows.at(2).error.find("LMSWEEP_FAULT throw at trial 2 rank 1 step 3"), std::string::npos);
  EXPECT_EQ(count_status(rows, "completed"), 5) << r.output;
  EXPECT_LT(took, 30) << "the failed trial held its group up";
}

TEST(SweepFaults, AnOutOfMemoryOnOneRankFailsThatTrialAlone) {
  const auto dir = temp_dir("fault_oom");
  write(dir / "s.ini", fake_config("f", "random", 4, kPairs, kLambda, 2));
  const auto r = run(sweep(dir, 4, "oom:trial=1:rank=0:step=2", 0.1));
  ASSERT_EQ(r.status, 0) << r.output;
  const auto rows = trials(dir / "s.db", "f");
  EXPECT_EQ(rows.at(1).status, "failed");
  EXPECT_NE(rows.at(1).error.find("rank 0 on "), std::string::npos) << rows.at(1).error;
  EXPECT_NE(rows.at(1).error.find("alloc"), std::string::npos) << rows.at(1).error;
  EXPECT_EQ(count_status(rows, "completed"), 3) << r.output;
}

TEST(SweepFaults, TheWatchdogFailsAHungRank) {
  const auto dir = temp_dir("fault_hang");
  write(dir / "s.ini", fake_config("f", "random", 4, kPairs, kLambda, 2));
  const auto t0 = Clock::now();
  const auto r = run(sweep(dir, 4, "hang:trial=1:rank=1:step=2", 0.2));
  const double took = seconds_since(t0);
  ASSERT_EQ(r.status, 0) << r.output;
  const auto rows = trials(dir / "s.db", "f");
  EXPECT_EQ(rows.at(1).status, "failed");
  EXPECT_NE(rows.at(1).error.find("watchdog_seconds = 6"), std::string::npos) << rows.at(1).error;
  EXPECT_EQ(count_status(rows, "completed"), 3) << r.output;
  // 6 s of watchdog, then the other trials (about 1 s each).
  EXPECT_LT(took, 6 + 20) << r.output;
}

// A rank the watchdog cannot free ends the job with a line naming it and exit 75 (requeue);
// the same command then goes on, the trial counting one crash.
TEST(SweepFaults, ARankThatCannotBeFreedEndsTheJobAndTheRerunGoesOn) {
  const auto dir = temp_dir("fault_stuck");
  write(dir / "s.ini", fake_config("f", "random", 4, "gpus_per_trial = 2\nwatchdog_seconds = 4\n", kLambda, 2));
  const auto t0 = Clock::now();
  const auto r = run(sweep(dir, 4, "stuck:trial=1:rank=1:step=2:attempt=1", 0.2));
  EXPECT_LT(seconds_since(t0), 4 + 5 + 20) << r.output;
  EXPECT_EQ(r.status, 75) << r.output;
  EXPECT_NE(r.output.find("lmsweep sweep: error: trial 1: rank 1 on "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cannot be freed"), std::string::npos) << r.output;
  const auto again = run(sweep(dir, 4, "stuck:trial=1:rank=1:step=2:attempt=1", 0.1));
  ASSERT_EQ(again.status, 0) << again.output;
  const auto rows = trials(dir / "s.db", "f");
  EXPECT_EQ(count_status(rows, "completed"), 4) << again.output;
  EXPECT_EQ(rows.at(1).attempts, 2);
}

// The same rank failing every trial: each fails on its own, the group's process group is rebuilt
// each time, and the run ends (exit 1: every trial failed) instead of hanging.
TEST(SweepFaults, AGroupThatFailsEveryTrialKeepsServing) {
  const auto dir = temp_dir("fault_every");
  write(dir / "s.ini", fake_config("f", "random", 6, kPairs, kLambda, 2));
  const auto r = run(sweep(dir, 4, "throw:rank=1:step=2", 0.1));
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("every trial of this run failed (6 of 6"), std::string::npos) << r.output;
  const auto rows = trials(dir / "s.db", "f");
  ASSERT_EQ(rows.size(), 6u);
  for (const auto& [k, t] : rows) {
    EXPECT_EQ(t.status, "failed") << "trial " << k;
    EXPECT_NE(t.error.find("rank 1 on "), std::string::npos) << t.error;
  }
}

TEST(SweepFaults, AnAbortAtEveryAttemptEndsAfterMaxAttempts) {
  const auto dir = temp_dir("fault_abort");
  write(dir / "s.ini", fake_config("f", "random", 6, kPairs + "max_attempts = 3\n", kLambda, 3));
  int runs = 0, last = -1;
  std::string output;
  for (; runs < 6 && last != 0; ++runs) {
    const auto r = run(sweep(dir, 4, "abort:trial=1:step=2", 0.2));
    last = r.status;
    output += r.output;
  }
  ASSERT_EQ(last, 0) << output;
  EXPECT_EQ(runs, 4) << "three runs that die, then one that ends the sweep";
  const auto rows = trials(dir / "s.db", "f");
  EXPECT_EQ(rows.at(1).status, "failed");
  EXPECT_NE(rows.at(1).error.find("its process died 3 times"), std::string::npos) << rows.at(1).error;
  EXPECT_NE(rows.at(1).error.find("SIGABRT"), std::string::npos) << rows.at(1).error;
  EXPECT_EQ(rows.at(1).attempts, 3);
  // The trial that ran beside it each time was not blamed: it completed.
  EXPECT_EQ(count_status(rows, "completed"), 5) << output;
  // After a fix (here: no fault), --retry-failed runs it again.
  const auto again = run(sweep(dir, 4, "", 0.05, " --retry-failed"));
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_NE(again.output.find("1 failed trial(s) to run again"), std::string::npos) << again.output;
  EXPECT_EQ(trials(dir / "s.db", "f").at(1).status, "completed");
}

TEST(SweepFaults, KillNineOfOneRankThenTheSameCommandResumes) {
  const auto dir = temp_dir("fault_kill");
  write(dir / "s.ini", fake_config("f", "random", 8, kPairs, kLambda, 4));
  const pid_t job = start_in_session(sweep(dir, 4, "", 1.0) + " > first.log 2>&1");
  // status --format json names the ranks of a running trial with their pids.
  const auto st = wait_for_status(dir, [](const nlohmann::json& j) {
    return j["completed"].get<int>() >= 1 && !j["running_trials"].empty() && j["running_trials"][0]["ranks"].size() == 2;
  });
  ASSERT_FALSE(st.is_null());
  ASSERT_FALSE(st["running_trials"].empty()) << st.dump();
  const auto& running = st["running_trials"][0];
  for (const auto& k : running["ranks"]) {
    EXPECT_FALSE(k["host"].get<std::string>().empty());
    EXPECT_GT(k["pid"].get<int64_t>(), 0);
    EXPECT_LT(k["heard_seconds_ago"].get<double>(), 30);
  }
  const int64_t victim = running["ranks"][1]["pid"].get<int64_t>();
  ASSERT_EQ(kill(static_cast<pid_t>(victim), SIGKILL), 0);
  EXPECT_NE(wait_exit(job), 0);
  // Once the job's processes are gone (mpirun may end before the last of them), its running
  // trials are shown as left behind, without an ETA.
  const auto d = wait_for_status(dir, [](const nlohmann::json& j) { return !j["sweep_alive"].get<bool>(); });
  EXPECT_FALSE(d["sweep_alive"].get<bool>()) << d.dump();
  EXPECT_TRUE(d["eta_seconds"].is_null()) << d.dump();
  const auto table = run("cd " + dir.string() + " && " + kExe + " status --db s.db");
  EXPECT_EQ(table.output.find("ETA"), std::string::npos) << table.output;

  const auto r = run(sweep(dir, 4, "", 0.1));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("requeued after a stopped job"), std::string::npos) << r.output;
  EXPECT_EQ(count_status(trials(dir / "s.db", "f"), "completed"), 8);
}

TEST(SweepFaults, ASecondSweepOnALiveDatabaseIsRefused) {
  const auto dir = temp_dir("fault_lease");
  write(dir / "s.ini", fake_config("f", "random", 6, "", kLambda, 3));
  const pid_t first = start_in_session(sweep(dir, 2, "", 0.4) + " > first.log 2>&1");
  wait_for_status(dir, [](const nlohmann::json& j) { return j["running"].get<int>() >= 1; });
  const auto second = run(sweep(dir, 2, "", 0.01));
  EXPECT_EQ(second.status, 1) << second.output;
  EXPECT_NE(second.output.find("is in use by another sweep"), std::string::npos) << second.output;
  EXPECT_NE(second.output.find("holds its lease"), std::string::npos) << second.output;
  EXPECT_EQ(second.output.find("cannot complete"), std::string::npos) << second.output;
  ASSERT_EQ(wait_exit(first), 0);
  const auto rows = trials(dir / "s.db", "f");
  EXPECT_EQ(count_status(rows, "completed"), 6);
  for (const auto& [k, t] : rows) EXPECT_EQ(t.attempts, 1) << "trial " << k;
}

TEST(SweepFaults, AStaleLeaseIsTakenOver) {
  const auto dir = temp_dir("fault_stale");
  write(dir / "s.ini", fake_config("f", "random", 2, "", kLambda, 1));
  {
    auto store = db::Store::open((dir / "s.db").string());
    db::LeaseInfo other;
    other.holder = "elsewhere:1:0";
    other.host = "node-that-died";
    other.pid = 1;
    other.job = "4242";
    other.stale_after = 5;
    store.take_lease(other, 5);
  }
  // Live for 5 s: refused; after that, taken over with a note.
  const auto refused = run(sweep(dir, 1, "", 0));
  EXPECT_EQ(refused.status, 1) << refused.output;
  EXPECT_NE(refused.output.find("SLURM job 4242 on node-that-died"), std::string::npos) << refused.output;
  std::this_thread::sleep_for(std::chrono::milliseconds(5200));
  const auto r = run(sweep(dir, 1, "", 0));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("took over the database lease of SLURM job 4242"), std::string::npos) << r.output;
  auto store = db::Store::open_read_only((dir / "s.db").string());
  EXPECT_FALSE(store.lease().has_value()) << "a finished sweep releases its lease";
}

TEST(SweepFaults, AThrowInRealTrainingFailsThatTrialAlone) {
  const auto dir = temp_dir("fault_real");
  write(dir / "s.ini",
        "[sweep]\nname = f\nmethod = grid\nseed = 1\ngpus_per_trial = 2\nwatchdog_seconds = 30\n"
        "[space]\nlambda = choice(0.4, 1, 2)\n"
        "[train]\nsynthetic = synth\n"
        "arch = vit:res=32,patch=8,width=32,layers=1,embed=16,text-width=32,text-layers=1,vocab=514\n"
        "epochs = 2\nbatch-size = 16\nthreads = 1\n");
  const auto r = run("cd " + dir.string() + " && LMSWEEP_FAULT=throw:trial=1:rank=1:step=2 " + mpirun(4) + kExe +
                     " sweep --config s.ini --db s.db");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto rows = trials(dir / "s.db", "f");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows.at(1).status, "failed");
  EXPECT_NE(rows.at(1).error.find("rank 1 on "), std::string::npos) << rows.at(1).error;
  EXPECT_EQ(rows.at(0).status, "completed") << r.output;
  EXPECT_EQ(rows.at(2).status, "completed") << r.output;
  EXPECT_EQ(rows.at(2).epochs, 2);
}

TEST(SweepFaults, OptionsWrongForEveryTrialAreRefusedBeforeTheFirst) {
  const auto dir = temp_dir("fault_options");
  const std::string arch = "arch = vit:res=32,patch=8,width=32,layers=1,embed=16,text-width=32,text-layers=1,vocab=514\n";
  auto config = [&](const std::string& train) {
    return "[sweep]\nname = f\nmethod = grid\nseed = 1\n[space]\nlambda = choice(0.4, 2)\n[train]\n" + arch +
           "epochs = 1\nthreads = 1\n" + train;
  };
  ASSERT_EQ(run("cd " + dir.string() + " && " + kExe + " synth-data --out synth").status, 0);
  write(dir / "no_image.txt", "images/none.jpg 0\n");
  write(dir / "file.txt", "x");
  struct Case {
    std::string name, train, expected;
  };
  const std::vector<Case> cases = {
      {"a missing split file", "train = missing.txt\ntest = synth/test.txt\nlabels = synth/labels.txt\n", "missing.txt"},
      {"a missing image", "train = no_image.txt\ntest = synth/test.txt\nlabels = synth/labels.txt\ndata-root = synth\n",
       "no_image.txt:1: image synth/images/none.jpg does not exist"},
      {"--device cuda without a GPU", "synthetic = synth\ndevice = cuda\n", "--device cuda: no CUDA GPU is visible"},
      {"a checkpoint folder that cannot be made", "synthetic = synth\ncheckpoint-dir = file.txt/ck\n",
       "--checkpoint-dir file.txt/ck: cannot create the folder"},
  };
  for (const auto& c : cases) {
    if (c.name.find("cuda") != std::string::npos && fs::exists("/dev/nvidia0")) continue;
    write(dir / "s.ini", config(c.train));
    const auto r = run("cd " + dir.string() + " && " + kExe + " sweep --config s.ini --db s.db");
    EXPECT_EQ(r.status, 1) << c.name << ": " << r.output;
    EXPECT_NE(r.output.find("lmsweep sweep: error: "), std::string::npos) << c.name << ": " << r.output;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << c.name << ": " << r.output;
    EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << c.name;
  }
  // Nothing was recorded: the fixed sweep runs every trial.
  write(dir / "s.ini", config("synthetic = synth\n"));
  const auto ok = run("cd " + dir.string() + " && " + kExe + " sweep --config s.ini --db s.db");
  ASSERT_EQ(ok.status, 0) << ok.output;
  EXPECT_EQ(count_status(trials(dir / "s.db", "f"), "completed"), 2);
}

TEST(SweepFaults, EveryTrialFailingIsAnErrorAndRetryFailedRunsThemAgain) {
  const auto dir = temp_dir("fault_allfail");
  write(dir / "s.ini", fake_config("f", "random", 3, "", kLambda, 1));
  const auto r = run(sweep(dir, 1, "throw:step=1", 0));
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("every trial of this run failed (3 of 3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--retry-failed"), std::string::npos) << r.output;
  const auto nothing = run(sweep(dir, 1, "", 0));
  EXPECT_NE(nothing.output.find("0 to run"), std::string::npos) << nothing.output;
  const auto again = run(sweep(dir, 1, "", 0, " --retry-failed"));
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_EQ(count_status(trials(dir / "s.db", "f"), "completed"), 3);
}

TEST(SweepFaults, ABadFaultSpecIsOneLine) {
  const auto dir = temp_dir("fault_spec");
  write(dir / "s.ini", fake_config("f", "random", 1, "", kLambda, 1));
  const auto r = run(sweep(dir, 1, "explode:trial=1", 0));
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("LMSWEEP_FAULT: unknown fault 'explode'"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace lmsweep
