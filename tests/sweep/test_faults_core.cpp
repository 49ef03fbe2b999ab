// The torch-free parts of fault handling: LMSWEEP_FAULT plans, the group's verdict, the
// watchdog, crash notes.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "common/error.h"
#include "support/shared_data.h"
#include "sweep/crash_notes.h"
#include "sweep/fault.h"
#include "sweep/outcome.h"
#include "sweep/watchdog.h"

namespace lmsweep::sweep {
namespace {

TEST(FaultPlan, MatchesTrialRankStepAndAttempt) {
  const auto plan = FaultPlan::parse("throw:trial=2:rank=1:step=3,abort:trial=1:step=2,hang:step=4:attempt=2");
  EXPECT_EQ(plan.at(2, 1, 3, 1), FaultKind::Throw);
  EXPECT_FALSE(plan.at(2, 0, 3, 1));  // another rank
  EXPECT_FALSE(plan.at(2, 1, 2, 1));  // another step
  EXPECT_EQ(plan.at(1, 0, 2, 1), FaultKind::Abort);  // every rank, every attempt
  EXPECT_EQ(plan.at(1, 1, 2, 5), FaultKind::Abort);
  EXPECT_FALSE(plan.at(7, 0, 4, 1));
  EXPECT_EQ(plan.at(7, 0, 4, 2), FaultKind::Hang);
  EXPECT_EQ(FaultPlan::parse("oom").at(0, 0, 1, 1), FaultKind::Oom);  // step 1 by default
  EXPECT_TRUE(FaultPlan::parse("").empty());
}

TEST(FaultPlan, BadSpecsNameThePart) {
  auto message = [](const std::string& text) {
    try {
      FaultPlan::parse(text);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message("explode").find("unknown fault 'explode'"), std::string::npos);
  EXPECT_NE(message("throw:rank=x").find("'rank=x' needs an integer >= 0"), std::string::npos);
  EXPECT_NE(message("throw:step=0").find("'step=0' needs an integer >= 1"), std::string::npos);
  EXPECT_NE(message("throw:when=3").find("unknown 'when=3'"), std::string::npos);
}

TEST(Outcome, TheFailureCausedFirstNamesTheTrial) {
  const RankOutcome ok{"completed", "", false, 0};
  const RankOutcome seen{"failed", "the trial failed on a peer: rank 1 on b: boom", false, 5};
  const RankOutcome gloo{"failed", "rank 0 on a: Connection closed by peer", true, 12};
  const RankOutcome boom{"failed", "rank 1 on b: boom", true, 10};
  EXPECT_EQ(combine_outcomes({ok, ok}).status, "completed");
  EXPECT_EQ(combine_outcomes({ok, {"pruned", "", false, 0}}).status, "pruned");
  EXPECT_EQ(combine_outcomes({{"interrupted", "", false, 0}, {"pruned", "", false, 0}}).status, "interrupted");
  // A failure anywhere fails the trial; of those caused on a rank, the earliest is the cause.
  const auto v = combine_outcomes({gloo, seen, boom});
  EXPECT_EQ(v.status, "failed");
  EXPECT_EQ(v.error, "rank 1 on b: boom");
  EXPECT_EQ(combine_outcomes({ok, seen}).error, seen.error);  // only a seen one: still failed
  const auto round = RankOutcome::from_json(boom.to_json());
  EXPECT_EQ(round.error, boom.error);
  EXPECT_TRUE(round.caused_here);
}

TEST(Watchdog, FiresAfterItsTimeWithoutBeatsThenGivesUp) {
  std::atomic<int> stalls{0}, stuck{0}, heartbeats{0};
  std::atomic<double> idle{0};
  Watchdog dog({0.5, 0.4, 0.1}, [&](double s) { idle = s; ++stalls; }, [&] { ++stuck; }, [&] { ++heartbeats; });
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_EQ(stalls, 0) << "not armed before the first beat";
  for (int i = 0; i < 5; ++i) {
    dog.beat();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(dog.fired());
  std::this_thread::sleep_for(std::chrono::milliseconds(900));
  EXPECT_TRUE(dog.fired());
  EXPECT_EQ(stalls, 1);
  EXPECT_GE(idle, 0.5);
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  EXPECT_EQ(stuck, 1);
  dog.stop();
  EXPECT_GE(heartbeats, 5);
  EXPECT_GE(dog.longest_interval(), 0.09);
  EXPECT_LT(dog.longest_interval(), 0.4);
}

TEST(Watchdog, StoppedInTimeNeverFires) {
  std::atomic<int> stalls{0};
  {
    Watchdog dog({0.3, 0.1, 10}, [&](double) { ++stalls; }, nullptr, nullptr);
    dog.beat();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(stalls, 0);
}

TEST(Watchdog, AutoSecondsComeFromTheSlowestStep) {
  EXPECT_EQ(resolve_watchdog_seconds(42, 100, 300), 42);   // configured wins
  EXPECT_EQ(resolve_watchdog_seconds(0, 2, 300), 300);     // the floor
  EXPECT_EQ(resolve_watchdog_seconds(0, 45, 300), 450);    // 10x the slowest interval
}

// A process that aborts while it runs a trial leaves one line naming the trial and the signal.
TEST(CrashNotes, AFatalSignalLeavesANote) {
  const auto dir = lmsweep::testing::temp_dir("crash_notes");
  const std::string path = crash_notes_path((dir / "s.db").string());
  EXPECT_EQ(path, (dir / "s.db-crashes").string());
  const pid_t pid = fork();
  if (pid == 0) {
    install_crash_notes(path);
    set_crash_note_trial(12, 3, 1, "node07");
    std::abort();
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) << "the signal still ends the process";
  const auto notes = read_crash_notes(path);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].trial_id, 12);
  EXPECT_EQ(notes[0].number, 3);
  EXPECT_EQ(notes[0].rank, 1);
  EXPECT_EQ(notes[0].host, "node07");
  EXPECT_EQ(notes[0].pid, pid);
  EXPECT_EQ(notes[0].reason, "SIGABRT");
  remove_crash_notes(path);
  EXPECT_TRUE(read_crash_notes(path).empty());
}

}  // namespace
}  // namespace lmsweep::sweep
