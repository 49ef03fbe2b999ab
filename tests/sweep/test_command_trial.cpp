// Command trials' pieces (sweep/command_trial.h): the command line and its placeholders, the
// program lookup, epoch lines, and a child process's output, exit and termination.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "common/host.h"
#include "support/errors.h"
#include "support/shared_data.h"
#include "sweep/command_trial.h"

namespace lmsweep::sweep {
namespace {

namespace fs = std::filesystem;

using testing::error_of;
using testing::temp_dir;

SearchSpace lr_wd_space() {
  Dimension lr, wd;
  lr.name = "lr";
  lr.dist = Distribution::LogUniform;
  lr.low = 1e-4;
  lr.high = 1e-1;
  wd.name = "wd";
  wd.dist = Distribution::Uniform;
  wd.low = 0;
  wd.high = 0.1;
  return SearchSpace({lr, wd});
}

TEST(CommandTemplate, SplitsLikeAShellAndSubstitutesByName) {
  const auto t = CommandTemplate::parse(R"(python3 train.py --lr {lr} --tag 'a b' "x\"y" --name=run-{wd}  --br {{x}})");
  EXPECT_EQ(t.words(), (std::vector<std::string>{"python3", "train.py", "--lr", "{lr}", "--tag", "a b", "x\"y",
                                                  "--name=run-{wd}", "--br", "{{x}}"}));
  EXPECT_EQ(t.placeholders(), (std::set<std::string>{"lr", "wd"}));
  const auto argv = t.substitute({{"lr", 0.001}, {"wd", 0.05}});
  EXPECT_EQ(argv[3], "0.001");
  EXPECT_EQ(argv[7], "--name=run-0.05");
  EXPECT_EQ(argv[9], "{x}");  // doubled braces are literal
  EXPECT_NO_THROW(t.check_names(lr_wd_space(), "s.ini [sweep]"));
}

TEST(CommandTemplate, BadInputSaysWhatIsWrong) {
  const std::string unknown =
      error_of([] { CommandTemplate::parse("python3 t.py --lr {lr} --m {momentum}").check_names(lr_wd_space(), "s.ini [sweep]"); });
  EXPECT_NE(unknown.find("s.ini [sweep] command: {momentum} is not a [space] dimension; dimensions: lr, wd"),
            std::string::npos) << unknown;
  EXPECT_NE(error_of([] { CommandTemplate::parse("python3 'open"); }).find("quote is not closed"), std::string::npos);
  EXPECT_NE(error_of([] { CommandTemplate::parse("   "); }).find("command is empty"), std::string::npos);
  EXPECT_NE(error_of([] { CommandTemplate::parse("t --lr {lr"); }).find("without '}'"), std::string::npos);
  const std::string missing = error_of([] { find_program("no-such-program-lmsweep"); });
  EXPECT_NE(missing.find("command: 'no-such-program-lmsweep' is not found on PATH"), std::string::npos) << missing;
  EXPECT_NE(error_of([] { find_program("/nonexistent/train"); }).find("is not an executable file"), std::string::npos);
  EXPECT_EQ(find_program("sh").substr(find_program("sh").size() - 3), "/sh");
}

TEST(CommandTrial, EpochLinesAreJsonObjectsWithAnEpoch) {
  EXPECT_TRUE(parse_epoch_output(R"({"epoch": 3, "map": 0.71})"));
  EXPECT_TRUE(parse_epoch_output(R"(  {"epoch": 1.0, "loss": 2}  )"));
  EXPECT_FALSE(parse_epoch_output("epoch 3: map 0.71"));
  EXPECT_FALSE(parse_epoch_output(R"({"step": 3})"));
  EXPECT_FALSE(parse_epoch_output(R"({"epoch": "three"})"));
  EXPECT_FALSE(parse_epoch_output(R"({"epoch": 3)"));
}

ProcessSpec sh(const fs::path& dir, const std::string& script) {
  ProcessSpec spec;
  spec.argv = {find_program("sh"), "-c", script};
  spec.env = {{"LMSWEEP_TRIAL", "7"}, {"OMPI_COMM_WORLD_RANK", "3"}};
  spec.stdout_log = (dir / "stdout.log").string();
  spec.stderr_log = (dir / "stderr.log").string();
  return spec;
}

TEST(ChildProcess, LinesExitCodeStderrAndEnvironment) {
  const auto dir = temp_dir("lines");
  ::setenv("OMPI_COMM_WORLD_SIZE", "4", 1);  // an MPI job's variable: not passed on
  ChildProcess child(sh(dir, "echo one; echo \"trial=$LMSWEEP_TRIAL mpi=${OMPI_COMM_WORLD_SIZE:-none}\"; "
                             "echo oops >&2; echo last words >&2; printf tail; exit 3"));
  std::vector<std::string> lines;
  while (auto l = child.read_line(10)) lines.push_back(*l);
  ::unsetenv("OMPI_COMM_WORLD_SIZE");
  EXPECT_EQ(lines, (std::vector<std::string>{"one", "trial=7 mpi=none", "tail"}));
  EXPECT_TRUE(child.output_ended());
  while (!child.poll_exit()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_FALSE(child.succeeded());
  EXPECT_EQ(child.describe_exit(), "exit code 3");
  EXPECT_EQ(last_line_of((dir / "stderr.log").string()), "last words");
  std::ifstream log(dir / "stdout.log");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "one\ntrial=7 mpi=none\ntail");
}

TEST(ChildProcess, TerminateSendsSigtermThenSigkill) {
  const auto dir = temp_dir("term");
  // Traps SIGTERM and exits: terminate() returns at once with the program's own exit.
  ChildProcess polite(sh(dir, "trap 'echo got-term >&2; exit 0' TERM; echo ready; while true; do sleep 0.05; done"));
  ASSERT_EQ(polite.read_line(10).value_or(""), "ready");
  const auto t0 = std::chrono::steady_clock::now();
  polite.terminate(5);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 3.0);
  EXPECT_TRUE(polite.succeeded());
  EXPECT_EQ(last_line_of((dir / "stderr.log").string()), "got-term");
  // Ignores SIGTERM: killed after the grace period; its group (the sleep it started) too.
  ChildProcess stubborn(sh(dir, "trap '' TERM; echo $$; sleep 30 & echo $!; wait"));
  const pid_t shell = std::stoi(stubborn.read_line(10).value_or("0"));
  const pid_t sleeper = std::stoi(stubborn.read_line(10).value_or("0"));
  EXPECT_EQ(shell, stubborn.pid());
  stubborn.terminate(0.3);
  EXPECT_EQ(stubborn.describe_exit(), "killed by SIGKILL");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(process_alive(sleeper)) << "the program's own child outlived it";
}

// What a prune leaves in the pipe: the lines printed after the one that was read, and the
// SIGTERM handler's last one, come back after terminate(); a process outside the program's
// group holding the pipe open costs the timeout, not a hang.
TEST(ChildProcess, RemainingLinesAfterTerminate) {
  const auto dir = temp_dir("remaining");
  ChildProcess child(sh(dir, "trap 'echo bye; exit 0' TERM; echo 1; echo 2; echo 3; while true; do sleep 0.05; done"));
  ASSERT_EQ(child.read_line(10).value_or(""), "1");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // 2 and 3 are in the pipe
  child.terminate(5);
  EXPECT_EQ(child.remaining_lines(5), (std::vector<std::string>{"2", "3", "bye"}));
  EXPECT_TRUE(child.output_ended());

  ChildProcess holder(sh(dir, "setsid sleep 30 & echo $!; echo after; exit 0"));
  const pid_t sleeper = std::stoi(holder.read_line(10).value_or("0"));
  while (!holder.poll_exit()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(holder.remaining_lines(0.3), (std::vector<std::string>{"after"}));
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(waited, 0.25);
  EXPECT_LT(waited, 3.0);
  EXPECT_FALSE(holder.output_ended()) << "the sleeper still holds the pipe";
  if (sleeper > 0) ::kill(sleeper, SIGKILL);
}

TEST(ChildProcess, FreePortIsBindable) {
  const int port = free_tcp_port();
  EXPECT_GT(port, 1023);
  EXPECT_LT(port, 65536);
}

}  // namespace
}  // namespace lmsweep::sweep
