// Command trials end to end (`[sweep] trial = command`): `mpirun lmsweep sweep` runs a small
// shell program per trial and records its epoch lines; ASHA prunes it with SIGTERM; a failing
// program is recorded with its stderr line; kill -9 of the job and the same command resume it;
// a 2-rank group gets torch.distributed's environment. Also warm starts (fake trials).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/host.h"
#include "db/store.h"
#include "support/shared_data.h"
#include "support/sweep_process.h"

namespace lmsweep {
namespace {

namespace fs = std::filesystem;
using namespace testing::sweep_process;
using testing::temp_dir;

// The training program: epochs from where its resume folder says, a score that rises with
// the epoch and peaks at lr = 0.01; `--crash yes` with lr > 0.01 fails at epoch 2 with a line
// on stderr. `--hold H` prints epoch H's line with epoch H+1's, in one write, as a program with
// buffered output might: a prune at H then finds H+1 already in the pipe. `--last-words yes`:
// on SIGTERM it ends the epoch it is in at once, prints its line and saves it.
// It notes its pid, each start and a SIGTERM in the trial folder.
const char* kProgram = R"(#!/bin/sh
hold=0; words=no; held=; printed=
while [ $# -gt 1 ]; do
  case "$1" in --lr) lr=$2;; --crash) crash=$2;; --epochs) epochs=$2;; --pause) pause=$2;;
    --hold) hold=$2;; --last-words) words=$2;; esac
  shift 2
done
dir="$LMSWEEP_TRIAL_DIR"; resume="$LMSWEEP_RESUME_DIR"
start=0; [ -f "$resume/epoch" ] && start=$(cat "$resume/epoch")
echo $$ >> "$dir/pids"; echo "$start" >> "$dir/starts"
epoch_line() {
  score=$(awk -v lr="$lr" -v e="$1" -v n="$epochs" 'BEGIN { l = log(lr) / log(10) + 2; printf "%.6f", (1 - l * l / 9) * e / n }')
  echo "{\"epoch\": $1, \"score\": $score, \"loss\": 0.5}"
}
on_term() {
  echo $$ >> "$dir/terminated"
  if [ "$words" = yes ] && [ "$e" -gt "$start" ]; then
    [ "$printed" = "$e" ] || epoch_line "$e"
    echo "$e" > "$resume/epoch"
  fi
  exit 143
}
trap on_term TERM
env | grep -E '^(MASTER_ADDR|MASTER_PORT|WORLD_SIZE|RANK|LOCAL_RANK|LOCAL_WORLD_SIZE|LMSWEEP_[A-Z_]*)=' | sort > "$dir/env.rank$RANK"
echo "starting at epoch $start"
big=$(awk -v lr="$lr" 'BEGIN { print (lr > 0.01) }')
e=$start
while [ "$e" -lt "$epochs" ]; do
  e=$((e + 1))
  sleep "$pause"
  if [ "$crash" = yes ] && [ "$big" = 1 ] && [ "$e" -ge 2 ]; then echo "loading batch $e" >&2; echo "diverged: loss is nan" >&2; exit 3; fi
  line=$(epoch_line "$e")
  if [ "$e" -eq "$hold" ]; then held="$line"; continue; fi
  if [ -n "$held" ]; then line="$held
$line"; held=; fi
  printf '%s\n' "$line"; printed=$e
  echo "$e" > "$resume/epoch"
done
)";

// `flags`: more of the program's options, e.g. "--hold 2".
std::string command_config(const std::string& name, int trials, const std::string& extra, int epochs,
                           double pause, const std::string& flags = "") {
  return "[sweep]\nname = " + name + "\nmethod = random\ntrials = " + std::to_string(trials) +
         "\nseed = 5\ntrial = command\nobjective = score\nstop_grace_seconds = 5\n"
         "command = ./train.sh --lr {lr} --crash {crash} --epochs " + std::to_string(epochs) + " --pause " +
         std::to_string(pause) + (flags.empty() ? "" : " " + flags) + "\n" + extra +
         "\n[space]\nlr = loguniform(0.0001, 1)\ncrash = choice(no, yes)\n\n[train]\nepochs = " +
         std::to_string(epochs) + "\n";
}

fs::path with_program(const std::string& name) {
  const auto dir = temp_dir(name);
  write(dir / "train.sh", kProgram);
  fs::permissions(dir / "train.sh", fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);
  return dir;
}

std::vector<std::string> lines_of(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool gone_within(int64_t pid, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (process_alive(pid) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return !process_alive(pid);
}

fs::path trial_folder(const fs::path& dir, const std::string& study, int64_t number) {
  char name[32];
  std::snprintf(name, sizeof name, "trial-%05lld", static_cast<long long>(number));
  return dir / "s-trials" / study / name;
}

// Whether, within a minute, a running trial of the study records `epoch`.
bool a_running_trial_reaches(const fs::path& db, const std::string& study, int64_t epoch) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    try {
      auto store = db::Store::open_read_only(db.string());
      const auto st = store.find_study(study);
      if (!st) continue;
      for (const auto& t : store.running_trials(st->id))
        if (t.last_epoch && t.last_epoch->epoch >= epoch) return true;
    } catch (const std::exception&) {
    }
  }
  return false;
}

int epoch_lines_of(const fs::path& folder) {
  int n = 0;
  for (const auto& l : lines_of(folder / "stdout.log")) n += l.rfind("{\"epoch\"", 0) == 0;
  return n;
}

TEST(SweepCommand, AshaRecordsEveryEpochPrunesWithSigtermAndKeepsStderr) {
  const auto dir = with_program("cmd_asha");
  // Epoch 2 (the first rung) comes with epoch 3: a trial pruned at 2 has 3 already printed.
  // 0.1 s epochs: a pruned program still runs when the decision comes, even on a busy machine.
  write(dir / "s.ini", command_config("cmd", 12, "scheduler = asha\ngrace = 2\nreduction = 2", 6, 0.1, "--hold 2"));
  const auto r = run("cd " + dir.string() + " && " + mpirun(3) + kExe + " sweep --config s.ini --db s.db");
  // The sweep goes on past failed trials (exit 0 unless every trial failed).
  ASSERT_EQ(r.status, 0) << r.output;
  const auto rows = trials(dir / "s.db", "cmd");
  ASSERT_EQ(rows.size(), 12u);
  int pruned = 0, completed = 0, failed = 0;
  for (const auto& [k, t] : rows) {
    const fs::path folder = trial_folder(dir, "cmd", k);
    const int epoch_lines = epoch_lines_of(folder);
    EXPECT_EQ(t.epochs, epoch_lines) << "trial " << k << ": every epoch line recorded, and only those";
    EXPECT_EQ(lines_of(folder / "stdout.log").at(0), "starting at epoch 0") << "other output kept in the folder";
    const auto pids = lines_of(folder / "pids");
    ASSERT_EQ(pids.size(), 1u) << "trial " << k;
    EXPECT_TRUE(gone_within(std::stoll(pids[0]), 5.0)) << "trial " << k << "'s program outlived it";
    if (t.status == "pruned") {
      ++pruned;
      EXPECT_EQ(lines_of(folder / "terminated"), pids) << "trial " << k << " was pruned without SIGTERM";
      EXPECT_LT(t.epochs, 6);
      EXPECT_GE(t.epochs, 3) << "trial " << k << ": the line after the rung's, printed with it, is recorded too";
    } else if (t.status == "completed") {
      ++completed;
      EXPECT_EQ(t.epochs, 6);
      EXPECT_FALSE(fs::exists(folder / "terminated"));
    } else {
      ++failed;
      EXPECT_EQ(t.status, "failed");
      EXPECT_NE(t.error.find("command exit code 3: diverged: loss is nan"), std::string::npos) << t.error;
      EXPECT_EQ(t.epochs, 1);
    }
  }
  EXPECT_GE(pruned, 1) << r.output;
  EXPECT_GE(completed, 1) << r.output;
  EXPECT_GE(failed, 1) << r.output;
  const auto best = run("cd " + dir.string() + " && " + kExe + " best --db s.db --format json --top 1");
  ASSERT_EQ(best.status, 0) << best.output;
  const auto j = nlohmann::json::parse(best.output);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_GT(j[0]["score"].get<double>(), 0.5);
  EXPECT_TRUE(j[0]["params"].contains("lr"));
}

TEST(SweepCommand, KillNineThenTheSameCommandResumesFromTheResumeFolder) {
  const auto dir = with_program("cmd_kill");
  write(dir / "s.ini", command_config("kill", 6, "", 8, 0.15));
  const std::string command = "cd " + dir.string() + " && " + mpirun(3) + kExe + " sweep --config s.ini --db s.db";
  const pid_t pid = start_in_session(command + " > first.log 2>&1");
  ASSERT_GE(pid, 0);
  ASSERT_TRUE(a_running_trial_reaches(dir / "s.db", "kill", 2)) << "no trial reached epoch 2";
  kill_session(pid);
  const auto before = trials(dir / "s.db", "kill");
  std::set<int64_t> interrupted;
  for (const auto& [k, t] : before) {
    if (t.status != "running") continue;
    interrupted.insert(k);
    // Killed with the session, or (started just as the kill went round) by PR_SET_PDEATHSIG
    // when its rank died.
    for (const auto& p : lines_of(trial_folder(dir, "kill", k) / "pids"))
      EXPECT_TRUE(gone_within(std::stoll(p), 5.0)) << "trial " << k << "'s program survived kill -9 of the job";
  }
  ASSERT_FALSE(interrupted.empty());

  const auto r = run(command);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("requeued after a stopped job"), std::string::npos) << r.output;
  const auto after = trials(dir / "s.db", "kill");
  for (const auto& [k, t] : after) {
    if (t.status == "failed") continue;  // crash = yes
    EXPECT_EQ(t.status, "completed") << "trial " << k;
    std::set<int64_t> missing;
    for (int64_t e = 1; e <= 8; ++e) missing.insert(e);
    for (int64_t e : t.epoch_numbers) missing.erase(e);
    // Every epoch, except that a line the program printed (and saved its state after) as the
    // job died, still on its way to the database, is lost: the program resumes after it.
    const bool lost_in_flight = interrupted.count(k) && missing == std::set<int64_t>{before.at(k).epochs + 1};
    EXPECT_TRUE(missing.empty() || lost_in_flight) << "trial " << k << " lacks " << missing.size() << " epoch(s): "
                                                   << t.epoch_rows;
  }
  bool resumed = false;
  for (int64_t k : interrupted) {
    EXPECT_EQ(after.at(k).attempts, before.at(k).attempts + 1) << "trial " << k;
    const auto starts = lines_of(trial_folder(dir, "kill", k) / "starts");
    ASSERT_EQ(starts.size(), 2u) << "trial " << k;
    EXPECT_EQ(starts[0], "0");
    resumed = resumed || std::stoi(starts[1]) >= 2;  // from LMSWEEP_RESUME_DIR, not from scratch
  }
  EXPECT_TRUE(resumed);
}

// A stop (SIGUSR1 to the ranks: SLURM's warning before the time limit) sends the program
// SIGTERM; it ends its epoch there, prints its line and saves. That line, printed after the
// stop, is recorded, so the same command resumes after it and no epoch is missing (after kill -9
// the line in flight may be: the test above).
TEST(SweepCommand, AStopRecordsTheProgramsLastLineAndTheRerunMissesNoEpoch) {
  const auto dir = with_program("cmd_stop");
  write(dir / "s.ini", command_config("stop", 6, "", 8, 0.15, "--last-words yes"));
  const std::string command = "cd " + dir.string() + " && " + mpirun(3) + kExe + " sweep --config s.ini --db s.db";
  const pid_t pid = start_in_session(command + " > first.log 2>&1");
  ASSERT_GE(pid, 0);
  ASSERT_TRUE(a_running_trial_reaches(dir / "s.db", "stop", 2)) << "no trial reached epoch 2";
  run("pkill -USR1 -x lmsweep -s " + std::to_string(pid));
  waitpid(pid, nullptr, 0);
  const auto before = trials(dir / "s.db", "stop");
  std::set<int64_t> interrupted;
  for (const auto& [k, t] : before) {
    if (t.status != "interrupted") continue;
    interrupted.insert(k);
    const fs::path folder = trial_folder(dir, "stop", k);
    EXPECT_EQ(lines_of(folder / "terminated"), lines_of(folder / "pids")) << "trial " << k << " was not sent SIGTERM";
    EXPECT_EQ(t.epochs, epoch_lines_of(folder)) << "trial " << k << ": its last words were not recorded";
  }
  ASSERT_FALSE(interrupted.empty()) << testing::read_text_file((dir / "first.log").string());

  const auto r = run(command);
  ASSERT_EQ(r.status, 0) << r.output;
  for (const auto& [k, t] : trials(dir / "s.db", "stop")) {
    if (t.status == "failed") continue;  // crash = yes
    EXPECT_EQ(t.status, "completed") << "trial " << k;
    EXPECT_EQ(t.epoch_numbers, (std::set<int64_t>{1, 2, 3, 4, 5, 6, 7, 8})) << "trial " << k << ": " << t.epoch_rows;
  }
  for (int64_t k : interrupted) {
    const auto starts = lines_of(trial_folder(dir, "stop", k) / "starts");
    ASSERT_EQ(starts.size(), 2u) << "trial " << k;
    EXPECT_EQ(std::stoll(starts[1]), before.at(k).epochs) << "trial " << k << " resumed after its last recorded epoch";
  }
}

std::map<std::string, std::string> env_file(const fs::path& file) {
  std::map<std::string, std::string> env;
  for (const auto& l : lines_of(file)) env[l.substr(0, l.find('='))] = l.substr(l.find('=') + 1);
  return env;
}

TEST(SweepCommand, TwoRankTrialSeesTheDdpEnvironment) {
  const auto dir = with_program("cmd_ddp");
  std::string config = command_config("ddp", 1, "gpus_per_trial = 2", 2, 0.02);
  const std::string choice = "crash = choice(no, yes)";
  config.replace(config.find(choice), choice.size(), "crash = no");
  write(dir / "s.ini", config);
  const auto r = run("cd " + dir.string() + " && " + mpirun(2) + kExe + " sweep --config s.ini --db s.db");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(trials(dir / "s.db", "ddp").at(0).status, "completed");
  const fs::path folder = trial_folder(dir, "ddp", 0);
  const auto a = env_file(folder / "env.rank0"), b = env_file(folder / "env.rank1");
  for (const auto* e : {&a, &b}) {
    EXPECT_EQ(e->at("WORLD_SIZE"), "2");
    EXPECT_EQ(e->at("LOCAL_WORLD_SIZE"), "2");
    EXPECT_EQ(e->at("MASTER_ADDR"), "127.0.0.1");
    EXPECT_GT(std::stoi(e->at("MASTER_PORT")), 1023);
    EXPECT_EQ(e->at("LMSWEEP_TRIAL"), "0");
    EXPECT_EQ(e->at("LMSWEEP_TRIAL_DIR"), folder.string());
    EXPECT_EQ(e->at("LMSWEEP_RESUME_DIR"), (folder / "resume").string());
    const auto params = nlohmann::json::parse(e->at("LMSWEEP_PARAMS"));
    EXPECT_EQ(params["crash"], "no");
    EXPECT_TRUE(params["lr"].is_number());
  }
  EXPECT_EQ(a.at("MASTER_PORT"), b.at("MASTER_PORT"));
  EXPECT_EQ(a.at("RANK"), "0");
  EXPECT_EQ(b.at("RANK"), "1");
  EXPECT_EQ(a.at("LOCAL_RANK"), "0");
  EXPECT_EQ(b.at("LOCAL_RANK"), "1");
  EXPECT_EQ(a.at("LMSWEEP_SEED"), b.at("LMSWEEP_SEED"));
  EXPECT_TRUE(fs::exists(folder / "stdout.rank1.log"));
}

TEST(SweepCommand, BadInputFailsWithOneClearLine) {
  const auto dir = with_program("cmd_bad");
  auto expect_line = [&](const std::string& config, const std::string& expected) {
    write(dir / "bad.ini", config);
    const auto r = run("cd " + dir.string() + " && " + kExe + " sweep --config bad.ini --db bad.db");
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find(expected), std::string::npos) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  };
  std::string c = command_config("bad", 2, "", 2, 0.01);
  expect_line(std::string(c).replace(c.find("{crash}"), 7, "{crsh}"),
              "bad.ini [sweep] command: {crsh} is not a [space] dimension; dimensions: crash, lr");
  expect_line(std::string(c).replace(c.find("./train.sh"), 10, "trainer-not-installed"),
              "command: 'trainer-not-installed' is not found on PATH");
  expect_line(std::string(c).replace(c.find("objective = score"), 17, "objectives = score, acc!"),
              "objective 'acc!': a metric's name is a letter or '_'");
  expect_line(fake_config("lm", "tpe", 4, "objectives = map_head, map_tial", kSpace, 2),
              "objective 'map_tial' is not a metric LM-CLIP trials record");
  expect_line(fake_config("lm", "tpe", 4, "window = -1", kSpace, 2), "window = -1: must be >= 0");
  expect_line(fake_config("lm", "bayes", 4, "", kSpace, 2), "method = 'bayes' is not known");
  // An objective the program does not print: its trials fail, each saying so.
  write(dir / "s.ini", std::string(c).replace(c.find("objective = score"), 17, "objective = accuracy"));
  const auto r = run("cd " + dir.string() + " && " + mpirun(1) + kExe + " sweep --config s.ini --db s.db");
  EXPECT_EQ(r.status, 1) << r.output;
  const auto rows = trials(dir / "s.db", "bad");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_NE(rows.at(0).error.find("the command's epoch line has no number 'accuracy' (an objective of the sweep); "
                                  "its keys: epoch, loss, score"),
            std::string::npos) << rows.at(0).error;
}

TEST(SweepCommand, WarmStartFeedsAnotherStudysTrialsToTpe) {
  const auto dir = temp_dir("cmd_warm");
  write(dir / "a.ini", fake_config("first", "random", 12, "", kSpace, 2));
  write(dir / "b.ini", fake_config("second", "tpe", 3, "warm_start = first", kSpace, 2));
  write(dir / "c.ini", fake_config("cold", "tpe", 3, "", kSpace, 2));
  for (const char* ini : {"a.ini", "b.ini", "c.ini"}) {
    const auto r = run("cd " + dir.string() + " && " + mpirun(1) + kExe + " sweep --config " + ini +
                       " --db s.db --fake-epoch-seconds 0");
    ASSERT_EQ(r.status, 0) << r.output;
    if (std::string(ini) == "b.ini")
      EXPECT_NE(r.output.find("warm start: 12 trial(s) of study 'first'"), std::string::npos) << r.output;
  }
  auto store = db::Store::open_read_only((dir / "s.db").string());
  const auto second = store.trials(store.find_study("second")->id), cold = store.trials(store.find_study("cold")->id);
  const auto seen = nlohmann::json::parse(store.suggestion(second.at(0).id));
  EXPECT_EQ(seen["warm_start"]["trials"], 12) << seen.dump();
  // 12 finished trials >= n_startup_trials: TPE from the first trial, not the Sobol design.
  EXPECT_NE(second.at(0).params_json, cold.at(0).params_json);
  const auto bad = run("cd " + dir.string() + " && sed 's/warm_start = first/warm_start = nosuch/' b.ini > d.ini && " +
                       mpirun(1) + kExe + " sweep --config d.ini --db s.db --fake-epoch-seconds 0");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.output.find("warm_start = nosuch: "), std::string::npos) << bad.output;
}

TEST(SweepCommand, MultiObjectiveTpeSweepAndItsParetoFront) {
  const auto dir = temp_dir("cmd_motpe");
  write(dir / "s.ini", fake_config("mo", "tpe", 12, "n_startup_trials = 4\nobjectives = map_head, map_tail", kSpace, 2));
  const auto r = run("cd " + dir.string() + " && " + mpirun(2) + kExe +
                     " sweep --config s.ini --db s.db --fake-epoch-seconds 0");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(count_status(trials(dir / "s.db", "mo"), "completed"), 12);
  // Without --objectives, the front is the study's own objectives'.
  const auto front = run("cd " + dir.string() + " && " + kExe + " best --db s.db --pareto --format json");
  ASSERT_EQ(front.status, 0) << front.output;
  const auto j = nlohmann::json::parse(front.output);
  ASSERT_FALSE(j.empty());
  for (const auto& row : j) {
    EXPECT_TRUE(row.contains("map_head") && row.contains("map_tail") && row.contains("params")) << row.dump();
    EXPECT_FALSE(row.contains("map_middle"));
  }
}

}  // namespace
}  // namespace lmsweep
