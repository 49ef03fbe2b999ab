// The distributed sweep end to end: `mpirun -np 3/4 lmsweep sweep` started from the test (ctest
// -> this test -> mpirun), checked through the database. Most sweeps use fake trials
// (--fake-epoch-seconds: the protocol without the training cost); one trains for real.
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
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

TEST(SweepMpi, RandomSweepRunsEveryTrial) {
  const auto dir = temp_dir("mpi_random");
  write(dir / "s.ini", fake_config("rnd", "random", 12, "", kSpace, 3));
  const auto r = run("cd " + dir.string() + " && " + mpirun(3) + kExe +
                     " sweep --config s.ini --db s.db --fake-epoch-seconds 0.02");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto rows = trials(dir / "s.db", "rnd");
  ASSERT_EQ(rows.size(), 12u);
  for (const auto& [k, t] : rows) {
    EXPECT_EQ(t.status, "completed") << "trial " << k;
    EXPECT_EQ(t.epochs, 3) << "trial " << k;
    EXPECT_EQ(t.attempts, 1) << "trial " << k;
  }
  // Three groups took part (rank groups 0, 1, 2 in the log).
  EXPECT_NE(r.output.find("-> group 2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Best configuration per study"), std::string::npos);
}

// trials_per_device = 2 on CPU (the node is one device): two ranks share it, three are refused
// with one line before any trial starts.
TEST(SweepMpi, TrialsPerDeviceOnCpu) {
  const auto dir = temp_dir("mpi_per_device");
  write(dir / "s.ini", fake_config("pack", "random", 4, "trials_per_device = 2\n", kSpace, 2));
  const auto two = run("cd " + dir.string() + " && " + mpirun(2) + kExe +
                       " sweep --config s.ini --db s.db --fake-epoch-seconds 0.02");
  ASSERT_EQ(two.status, 0) << two.output;
  for (const auto& [k, t] : trials(dir / "s.db", "pack")) EXPECT_EQ(t.status, "completed") << "trial " << k;
  write(dir / "t.ini", fake_config("pack3", "random", 4, "trials_per_device = 2\n", kSpace, 2));
  const auto three = run("cd " + dir.string() + " && " + mpirun(3) + kExe +
                         " sweep --config t.ini --db t.db --fake-epoch-seconds 0.02");
  EXPECT_NE(three.status, 0);
  EXPECT_NE(three.output.find("trials_per_device = 2: "), std::string::npos) << three.output;
  EXPECT_NE(three.output.find("runs 3 ranks on its CPU"), std::string::npos) << three.output;
  EXPECT_FALSE(fs::exists(dir / "t.db"));  // refused before the study was written
}

// method = tpe: Sobol design points first, then points suggested from the results as groups ask
// for trials (running trials as liars), every one distinct; resumable like the others.
TEST(SweepMpi, TpeSweepRunsEveryTrial) {
  const auto dir = temp_dir("mpi_tpe");
  write(dir / "s.ini", fake_config("tpe", "tpe", 16, "n_startup_trials = 5", kSpace, 2));
  const auto r = run("cd " + dir.string() + " && " + mpirun(3) + kExe +
                     " sweep --config s.ini --db s.db --fake-epoch-seconds 0.02");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("16 trials (tpe"), std::string::npos) << r.output;
  const auto rows = trials(dir / "s.db", "tpe");
  ASSERT_EQ(rows.size(), 16u);
  std::set<std::string> points;
  for (const auto& [k, t] : rows) {
    EXPECT_EQ(t.status, "completed") << "trial " << k;
    points.insert(t.params);
  }
  EXPECT_EQ(points.size(), 16u) << "two trials got the same point";
  // Extending the study adds trials suggested from all 16.
  write(dir / "s.ini", fake_config("tpe", "tpe", 20, "n_startup_trials = 5", kSpace, 2));
  const auto more = run("cd " + dir.string() + " && " + kExe + " sweep --config s.ini --db s.db --fake-epoch-seconds 0");
  ASSERT_EQ(more.status, 0) << more.output;
  EXPECT_NE(more.output.find("4 to run, 16 kept"), std::string::npos) << more.output;
  EXPECT_EQ(count_status(trials(dir / "s.db", "tpe"), "completed"), 20);
}

// window = 2: trial k is suggested from trials 0 .. k-3 (k-2, k-1 as liars), so -np 2 and -np 4
// give the same TPE points whatever order the trials end in; each trial records what it saw.
TEST(SweepMpi, TpeWithAWindowGivesTheSamePointsForAnyNp) {
  const auto dir = temp_dir("mpi_tpe_window");
  write(dir / "s.ini", fake_config("tpw", "tpe", 14, "n_startup_trials = 4\nwindow = 2", kSpace, 2));
  std::map<int64_t, TrialRow> by_np[2];
  const int nps[2] = {2, 4};
  for (int i = 0; i < 2; ++i) {
    const std::string db = "np" + std::to_string(nps[i]) + ".db";
    const auto r = run("cd " + dir.string() + " && " + mpirun(nps[i]) + kExe + " sweep --config s.ini --db " + db +
                       " --fake-epoch-seconds 0.03");
    ASSERT_EQ(r.status, 0) << r.output;
    by_np[i] = trials(dir / db, "tpw");
    ASSERT_EQ(by_np[i].size(), 14u);
  }
  for (const auto& [k, t] : by_np[0]) EXPECT_EQ(t.params, by_np[1].at(k).params) << "trial " << k;
  auto store = db::Store::open_read_only((dir / "np4.db").string());
  const auto study = store.find_study("tpw");
  const auto seen = nlohmann::json::parse(store.suggestion(store.find_trial(study->id, 10)->id));
  EXPECT_EQ(seen["finished"], nlohmann::json({0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(seen["liars"], nlohmann::json({8, 9}));
  EXPECT_EQ(seen["window"], 2);
}

TEST(SweepMpi, GridCoversTheGrid) {
  const auto dir = temp_dir("mpi_grid");
  write(dir / "s.ini", fake_config("grid", "grid", 0, "grid_points = 3",
                                   "batch-size = choice(8, 16)\ngamma-neg = uniform(2, 12)\n", 2));
  const auto r = run("cd " + dir.string() + " && " + mpirun(4) + kExe +
                     " sweep --config s.ini --db s.db --fake-epoch-seconds 0.01");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto rows = trials(dir / "s.db", "grid");
  ASSERT_EQ(rows.size(), 6u);
  std::set<std::pair<int64_t, double>> points;
  for (const auto& [k, t] : rows) {
    EXPECT_EQ(t.status, "completed");
    const auto p = nlohmann::json::parse(t.params);
    points.insert({p["batch-size"].get<int64_t>(), p["gamma-neg"].get<double>()});
  }
  const std::set<std::pair<int64_t, double>> expected = {{8, 2.0}, {8, 7.0}, {8, 12.0},
                                                         {16, 2.0}, {16, 7.0}, {16, 12.0}};
  EXPECT_EQ(points, expected);
}

TEST(SweepMpi, AshaPrunes) {
  const auto dir = temp_dir("mpi_asha");
  write(dir / "s.ini", fake_config("asha", "random", 16, "scheduler = asha\ngrace = 1\nreduction = 2", kSpace, 8));
  const auto r = run("cd " + dir.string() + " && " + mpirun(3) + kExe +
                     " sweep --config s.ini --db s.db --fake-epoch-seconds 0.01");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto rows = trials(dir / "s.db", "asha");
  ASSERT_EQ(rows.size(), 16u);
  const int pruned = count_status(rows, "pruned"), completed = count_status(rows, "completed");
  EXPECT_GT(pruned, 0) << r.output;
  EXPECT_GT(completed, 0);
  EXPECT_EQ(pruned + completed, 16);
  for (const auto& [k, t] : rows)
    if (t.status == "pruned") EXPECT_LT(t.epochs, 8) << "trial " << k;
}

TEST(SweepMpi, PointsDoNotDependOnRanks) {
  const auto dir = temp_dir("mpi_points");
  write(dir / "s.ini", fake_config("pts", "sobol", 8, "", kSpace, 1));
  const auto one = run("cd " + dir.string() + " && " + kExe + " sweep --config s.ini --db one.db --fake-epoch-seconds 0");
  ASSERT_EQ(one.status, 0) << one.output;
  const auto four = run("cd " + dir.string() + " && " + mpirun(4) + kExe +
                        " sweep --config s.ini --db four.db --fake-epoch-seconds 0");
  ASSERT_EQ(four.status, 0) << four.output;
  const auto a = trials(dir / "one.db", "pts"), b = trials(dir / "four.db", "pts");
  ASSERT_EQ(a.size(), 8u);
  ASSERT_EQ(b.size(), 8u);
  for (const auto& [k, t] : a) {
    EXPECT_EQ(t.params, b.at(k).params) << "trial " << k;
    EXPECT_EQ(t.epoch_rows, b.at(k).epoch_rows) << "trial " << k;  // fake metrics: a function of the point
  }
}

TEST(SweepMpi, KillNineThenResumeKeepsCompletedTrials) {
  const auto dir = temp_dir("mpi_kill");
  write(dir / "s.ini", fake_config("kill", "random", 10, "", kSpace, 4));
  const std::string command = "cd " + dir.string() + " && " + mpirun(3) + kExe +
                              " sweep --config s.ini --db s.db --fake-epoch-seconds 0.15";
  const pid_t pid = start_in_session(command + " > first.log 2>&1");
  ASSERT_GE(pid, 0);
  // Wait until some trials completed and others run.
  std::map<int64_t, TrialRow> before;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!fs::exists(dir / "s.db")) continue;
    try {
      auto store = db::Store::open_read_only((dir / "s.db").string());
      auto st = store.find_study("kill");
      if (!st) continue;
      const auto c = store.status_counts(st->id);
      if (c.completed >= 3 && c.running >= 1) break;
    } catch (const std::exception&) {
    }
  }
  kill_session(pid);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  before = trials(dir / "s.db", "kill");
  const int completed_before = count_status(before, "completed");
  ASSERT_GE(completed_before, 3);
  ASSERT_LT(completed_before, 10) << "the job finished before it was killed: slow the fake trials down";
  EXPECT_GE(count_status(before, "running"), 1);

  const auto r = run(command);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("requeued after a stopped job"), std::string::npos) << r.output;
  const auto after = trials(dir / "s.db", "kill");
  ASSERT_EQ(after.size(), 10u);
  EXPECT_EQ(count_status(after, "completed"), 10);
  for (const auto& [k, t] : before) {
    if (t.status != "completed") continue;
    // Completed trials are neither rerun nor changed.
    EXPECT_EQ(after.at(k).attempts, t.attempts) << "trial " << k;
    EXPECT_EQ(after.at(k).epoch_rows, t.epoch_rows) << "trial " << k;
    EXPECT_EQ(after.at(k).params, t.params) << "trial " << k;
  }
  for (const auto& [k, t] : before)
    if (t.status == "running") EXPECT_EQ(after.at(k).attempts, t.attempts + 1) << "trial " << k;
}

TEST(SweepMpi, StatusAndBestWhileTheSweepWrites) {
  const auto dir = temp_dir("mpi_readers");
  write(dir / "s.ini", fake_config("live", "random", 12, "", kSpace, 5));
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string command = "cd " + dir.string() + " && " + mpirun(3) + kExe +
                                " sweep --config s.ini --db s.db --fake-epoch-seconds 0.06 > sweep.log 2>&1";
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int reads = 0, status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (fs::exists(dir / "s.db")) {
      for (const std::string cmd : {" status --db s.db --format json", " best --db s.db --format json"}) {
        const auto r = run("cd " + dir.string() + " && " + kExe + cmd);
        EXPECT_EQ(r.output.find("locked"), std::string::npos) << r.output;
        EXPECT_EQ(r.output.find("busy"), std::string::npos) << r.output;
        // Before the study exists the commands say so; afterwards they succeed.
        if (r.status == 0) ++reads;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_GE(reads, 2);
  const auto final_status = run("cd " + dir.string() + " && " + kExe + " status --db s.db --study live --format json");
  ASSERT_EQ(final_status.status, 0) << final_status.output;
  const auto j = nlohmann::json::parse(final_status.output);
  EXPECT_EQ(j["completed"].get<int>(), 12);
  for (const char* key : {"running", "pending", "failed", "pruned"}) EXPECT_EQ(j[key].get<int>(), 0) << key;
  const auto best = run("cd " + dir.string() + " && " + kExe + " best --db s.db --objective map_tail --top 3 --format json");
  ASSERT_EQ(best.status, 0);
  const auto b = nlohmann::json::parse(best.output);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_GE(b[0]["map_tail"].get<double>(), b[1]["map_tail"].get<double>());
  for (const char* key : {"trial", "params", "epoch", "map", "map_head", "map_middle", "map_tail"})
    EXPECT_TRUE(b[0].contains(key)) << key;
}

TEST(SweepMpi, RealTrainingSweepOnSyntheticData) {
  const auto dir = temp_dir("mpi_real");
  write(dir / "s.ini",
        "[sweep]\nname = real\nmethod = grid\nseed = 1\n[space]\nlambda = choice(0.4, 2)\nlr = choice(5e-4)\n"
        "[train]\nsynthetic = synth\n"
        "arch = vit:res=32,patch=8,width=32,layers=1,embed=16,text-width=32,text-layers=1,vocab=514\n"
        "epochs = 2\nbatch-size = 16\nthreads = 1\n");
  const auto r = run("cd " + dir.string() + " && " + mpirun(3) + kExe + " sweep --config s.ini --db s.db");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto rows = trials(dir / "s.db", "real");
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& [k, t] : rows) {
    EXPECT_EQ(t.status, "completed") << r.output;
    EXPECT_EQ(t.epochs, 2);
  }
}

// eval_epochs = rungs scores the trials at ASHA's rungs (2, 4) and the last epoch only; there
// its results equal the every-epoch sweep's, and so do ASHA's decisions (one rank: the same order).
TEST(SweepMpi, EvalAtRungsEqualsEveryEpochWhereEvaluated) {
  const auto dir = temp_dir("mpi_eval_rungs");
  const std::string sweep = "method = grid\nseed = 1\nscheduler = asha\ngrace = 2\nreduction = 2\n";
  const std::string rest = "[space]\nlambda = choice(0.4, 2, 8)\nlr = choice(5e-4)\n[train]\nsynthetic = synth\n"
                           "arch = vit:res=32,patch=8,width=32,layers=1,embed=16,text-width=32,text-layers=1,vocab=514\n"
                           "epochs = 5\nbatch-size = 16\nthreads = 1\n";
  write(dir / "all.ini", "[sweep]\nname = all\n" + sweep + rest);
  write(dir / "rungs.ini", "[sweep]\nname = rungs\neval_epochs = rungs\n" + sweep + rest);
  for (const char* name : {"all", "rungs"}) {
    const auto r = run("cd " + dir.string() + " && " + mpirun(1, 240) + kExe + " sweep --config " + name +
                       ".ini --db " + name + ".db");
    ASSERT_EQ(r.status, 0) << r.output;
  }
  auto a = db::Store::open_read_only((dir / "all.db").string());
  auto b = db::Store::open_read_only((dir / "rungs.db").string());
  const auto ta = a.trials(a.find_study("all")->id), tb = b.trials(b.find_study("rungs")->id);
  ASSERT_EQ(ta.size(), 3u);
  ASSERT_EQ(tb.size(), 3u);
  int evaluated = 0;
  for (size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE("trial " + std::to_string(i));
    EXPECT_EQ(ta[i].status, tb[i].status);
    const auto ea = a.epochs(ta[i].id), eb = b.epochs(tb[i].id);
    ASSERT_EQ(ea.size(), eb.size());
    for (size_t k = 0; k < ea.size(); ++k) {
      EXPECT_EQ(ea[k].train_loss, eb[k].train_loss) << "epoch " << ea[k].epoch;
      const bool rung = ea[k].epoch == 2 || ea[k].epoch == 4 || ea[k].epoch == 5;
      EXPECT_EQ(eb[k].map.has_value(), rung) << "epoch " << ea[k].epoch;
      if (rung && eb[k].map) {
        EXPECT_EQ(*ea[k].map, *eb[k].map) << "epoch " << ea[k].epoch;
        ++evaluated;
      }
    }
    EXPECT_EQ(ta[i].best_epoch.has_value(), tb[i].best_epoch.has_value());
  }
  EXPECT_GE(evaluated, 4);
}

TEST(SweepMpi, DataParallelTrainMatchesOneProcess) {
  const auto dir = temp_dir("mpi_dp");
  const std::string args =
      " train --synthetic synth --arch vit:res=32,patch=8,width=32,layers=1,embed=16,text-width=32,text-layers=1,"
      "vocab=514 --epochs 3 --batch-size 8 --sampling sequential --flip 0 --lr 5e-4 --threads 1";
  const auto one = run("cd " + dir.string() + " && " + kExe + args + " --db one.db --metrics-out one.jsonl");
  ASSERT_EQ(one.status, 0) << one.output;
  const auto two = run("cd " + dir.string() + " && " + mpirun(2) + kExe + args + " --db two.db --metrics-out two.jsonl");
  ASSERT_EQ(two.status, 0) << two.output;
  std::ifstream a(dir / "one.jsonl"), b(dir / "two.jsonl");
  std::string la, lb;
  int epochs = 0;
  while (std::getline(a, la) && std::getline(b, lb)) {
    const auto ja = nlohmann::json::parse(la), jb = nlohmann::json::parse(lb);
    ++epochs;
    EXPECT_NEAR(ja["train_loss"].get<double>() / jb["train_loss"].get<double>(), 1.0, 0.002) << "epoch " << epochs;
    EXPECT_NEAR(ja["map"].get<double>(), jb["map"].get<double>(), 0.005) << "epoch " << epochs;
  }
  EXPECT_EQ(epochs, 3);
}

// ------------------------------------------------------------------ bad input

struct BadCase {
  std::string name, config, extra_args, expected;
};

TEST(SweepMpi, BadInputFailsClearlyAndLosesNothing) {
  const auto dir = temp_dir("mpi_bad");
  // A completed study first: nothing of it may be lost by the failures below.
  write(dir / "ok.ini", fake_config("keep", "random", 3, "", kSpace, 1));
  ASSERT_EQ(run("cd " + dir.string() + " && " + kExe + " sweep --config ok.ini --db s.db --fake-epoch-seconds 0").status, 0);
  const auto kept = trials(dir / "s.db", "keep");
  ASSERT_EQ(kept.size(), 3u);

  const std::vector<BadCase> cases = {
      {"empty space", fake_config("e", "random", 3, "", "", 1), "", "[space]"},
      {"unknown dimension", fake_config("u", "random", 3, "", "gama-neg = uniform(2, 12)\n", 1), "", "gama-neg"},
      {"low > high", fake_config("l", "random", 3, "", "gamma-neg = uniform(12, 2)\n", 1), "", "gamma-neg"},
      {"loguniform <= 0", fake_config("g", "random", 3, "", "lambda = loguniform(0, 10)\n", 1), "", "lambda"},
      {"swept and fixed", fake_config("c", "random", 3, "", "lambda = loguniform(0.1, 10)\n", 1), " --lambda 2",
       "lambda"},
      {"study reused with another space", fake_config("keep", "random", 3, "", "lambda = loguniform(0.1, 10)\n", 1),
       "", "keep"},
      {"a choice no trial can run with", fake_config("bc", "random", 3, "", "batch-size = choice(8, abc)\n", 1), "",
       "batch-size can take the value abc"},
      {"a range past the option's bounds", fake_config("ls", "random", 3, "", "label-smoothing = uniform(0.05, 1.5)\n", 1),
       "", "label-smoothing can take the value 1.5"},
      {"a negative window", fake_config("wn", "tpe", 3, "window = -1", kSpace, 1), "", "window = -1: must be >= 0"},
      {"a window without tpe", fake_config("wr", "random", 3, "window = 2", kSpace, 1), "",
       "window = 2 applies to method = tpe"},
      {"a misspelt section", fake_config("ms", "random", 3, "", kSpace, 1) + "[trian]\nepochs = 2\n", "",
       "[trian] is not a section of a sweep config"},
  };
  for (const auto& c : cases) {
    write(dir / "bad.ini", c.config);
    const auto r = run("cd " + dir.string() + " && " + mpirun(2) + kExe +
                       " sweep --config bad.ini --db s.db --fake-epoch-seconds 0" + c.extra_args);
    EXPECT_NE(r.status, 0) << c.name << ": " << r.output;
    EXPECT_NE(r.output.find("lmsweep sweep: error: "), std::string::npos) << c.name << ": " << r.output;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << c.name << ": " << r.output;
    EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << c.name;
    EXPECT_EQ(r.output.find("Signal"), std::string::npos) << c.name << ": " << r.output;
  }
  // A folder given as the config.
  {
    fs::create_directories(dir / "configs");
    const auto r = run("cd " + dir.string() + " && " + kExe + " sweep --config configs --db s.db --fake-epoch-seconds 0");
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("config file 'configs' is a folder"), std::string::npos) << r.output;
  }
  // A database of another schema version.
  {
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open((dir / "other.db").c_str(), &h), SQLITE_OK);
    sqlite3_exec(h, "CREATE TABLE x(a); PRAGMA user_version = 99;", nullptr, nullptr, nullptr);
    sqlite3_close(h);
    write(dir / "ok2.ini", fake_config("v", "random", 3, "", kSpace, 1));
    const auto r = run("cd " + dir.string() + " && " + kExe + " sweep --config ok2.ini --db other.db --fake-epoch-seconds 0");
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("schema version"), std::string::npos) << r.output;
  }
  const auto after = trials(dir / "s.db", "keep");
  ASSERT_EQ(after.size(), 3u);
  for (const auto& [k, t] : kept) EXPECT_EQ(after.at(k).epoch_rows, t.epoch_rows);
}

}  // namespace
}  // namespace lmsweep
