#pragma once
// Command trials (`[sweep] trial = command`): a sweep of any training program. Each rank of a
// trial's group runs one process of the program, with the point substituted into its command
// line and described in its environment; the leader's process prints one JSON line per epoch on
// stdout (`{"epoch": 3, "map": 0.71, ...}`), which the sweep records as it records LM-CLIP's.
//
//   command = python3 train.py --lr {lr} --wd {wd}     (no shell: see CommandTemplate)
// Environment of every process (beside the sweep's own, without MPI's OMPI_* / PMIX_*):
//   LMSWEEP_PARAMS      the point as JSON, {"lr": 0.001, "wd": 0.05}
//   LMSWEEP_TRIAL       the trial number; LMSWEEP_SEED its seed; LMSWEEP_ATTEMPT 1, 2, ...
//   LMSWEEP_TRIAL_DIR   the trial's folder (its logs: stdout.log, stderr.log, one pair per rank)
//   LMSWEEP_RESUME_DIR  a folder kept across attempts: save state there, resume from it
//   MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE: torch.distributed's
//                       env:// rendezvous (one process per rank of the group)
//   CUDA_VISIBLE_DEVICES the GPUs of the group's ranks on this host (when the host has GPUs)
// A prune or a stop sends SIGTERM to the process's group, then SIGKILL after
// stop_grace_seconds. A process dies with its rank (PR_SET_PDEATHSIG). Torch-free, MPI-free.
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sweep/search_space.h"

namespace lmsweep::sweep {

// The command line as words, split as a shell would split a simple command: blanks separate,
// '...' and "..." quote, a backslash escapes the next character. No expansion, pipes or
// redirections (run `bash -c '...'` for those). {name} anywhere in a word is replaced by the
// point's value of dimension `name` ({{ and }} are literal braces).
class CommandTemplate {
 public:
  // Throws lmsweep::Error for an empty command, an unterminated quote or a '{' without '}'.
  static CommandTemplate parse(const std::string& text);
  const std::vector<std::string>& words() const { return words_; }
  std::set<std::string> placeholders() const;
  // Throws lmsweep::Error (starting with `label`) for a {name} that is not a dimension of `space`.
  void check_names(const SearchSpace& space, const std::string& label) const;
  // The words with the point's values (as to_flag_value writes them).
  std::vector<std::string> substitute(const nlohmann::json& params) const;

 private:
  std::vector<std::string> words_;
};

// The program a command's first word names: a path with '/' as it is, else found on PATH.
// Throws lmsweep::Error naming the word and PATH when it is not an executable file.
std::string find_program(const std::string& word);

// Whether a stdout line is an epoch line: a JSON object with a numeric "epoch".
std::optional<nlohmann::json> parse_epoch_output(const std::string& line);

// The last non-blank line of a file ("" when none or unreadable), at most 300 characters.
std::string last_line_of(const std::string& path);

struct ProcessSpec {
  std::vector<std::string> argv;                            // argv[0]: found with find_program
  std::vector<std::pair<std::string, std::string>> env;     // set over the inherited environment
  std::string stdout_log, stderr_log;                       // appended to
};

// One running program: stdout through a pipe (every line also appended to stdout_log), stderr
// appended to stderr_log. Its own process group, so that signals reach what it starts.
class ChildProcess {
 public:
  explicit ChildProcess(const ProcessSpec& spec);  // throws lmsweep::Error when it cannot start
  ~ChildProcess();                                 // terminate(2 s) if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The next complete stdout line within timeout_seconds; nullopt on timeout or at the end.
  std::optional<std::string> read_line(double timeout_seconds);
  // The stdout lines not yet read, up to the end of the output or timeout_seconds in all (a
  // process it started outside its group may hold the pipe open). For after it has ended.
  std::vector<std::string> remaining_lines(double timeout_seconds);
  bool output_ended() const { return eof_; }
  // Reaps the process if it has ended (non-blocking); true once it has.
  bool poll_exit();
  bool exited() const { return status_.has_value(); }
  bool succeeded() const;  // exited with code 0
  std::string describe_exit() const;  // "exit code 3", "killed by signal 9 (SIGKILL)"
  // SIGTERM to the process group, SIGKILL after grace_seconds; waits for the process.
  void terminate(double grace_seconds);
  pid_t pid() const { return pid_; }

 private:
  void drain_to_log(const std::string& text);
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int log_fd_ = -1;
  bool eof_ = false;
  std::string buffer_;
  std::optional<int> status_;  // waitpid's status
};

// A free TCP port on this host (bound to port 0, then released): the group's MASTER_PORT.
int free_tcp_port();

}  // namespace lmsweep::sweep
