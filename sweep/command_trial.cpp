#include "sweep/command_trial.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "common/error.h"
#include "common/strings.h"

extern char** environ;

namespace lmsweep::sweep {
namespace {

// Splits like a shell's simple command (see CommandTemplate); throws on an open quote.
std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote) {
      if (c == quote) quote = 0;
      else if (c == '\\' && quote == '"' && i + 1 < text.size()) word += text[++i];
      else word += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < text.size()) {
      word += text[++i];
      in_word = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) words.push_back(word);
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  LMSWEEP_CHECK(!quote, "command '{}': a {} quote is not closed", text, quote == '"' ? "double" : "single");
  if (in_word) words.push_back(word);
  return words;
}

// Calls f(name) for every {name} of a word, and lit(text) for the text between (braces doubled
// are literal).
template <typename Lit, typename Name>
void scan_word(const std::string& w, Lit lit, Name name) {
  for (size_t i = 0; i < w.size(); ++i) {
    if ((w[i] == '{' || w[i] == '}') && i + 1 < w.size() && w[i + 1] == w[i]) {
      lit(std::string(1, w[i++]));
    } else if (w[i] == '{') {
      const size_t end = w.find('}', i);
      LMSWEEP_CHECK(end != std::string::npos, "command word '{}': '{{' without '}}' (write {{{{ for a brace)", w);
      name(w.substr(i + 1, end - i - 1));
      i = end;
    } else {
      lit(std::string(1, w[i]));
    }
  }
}

bool executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string signal_name(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGKILL: return "SIGKILL";
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGINT: return "SIGINT";
    case SIGBUS: return "SIGBUS";
    default: return fmt::format("signal {}", sig);
  }
}

// The environment of the child: the inherited one without the MPI job's (a program that uses
// MPI itself must not take itself for a rank of the sweep), then spec.env.
std::vector<std::string> child_environment(const ProcessSpec& spec) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string kv = *e;
    const std::string key = kv.substr(0, kv.find('='));
    const bool mpi = (key.rfind("OMPI_", 0) == 0 && key.rfind("OMPI_MCA_", 0) != 0 &&
                      key.rfind("OMPI_ALLOW_RUN_AS_ROOT", 0) != 0) ||
                     key.rfind("PMIX_", 0) == 0;
    bool replaced = false;
    for (const auto& [k, v] : spec.env) replaced = replaced || k == key;
    if (!mpi && !replaced) env.push_back(kv);
  }
  for (const auto& [k, v] : spec.env) env.push_back(k + "=" + v);
  return env;
}

int open_log(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  LMSWEEP_CHECK(fd >= 0, "cannot write the trial log '{}': {}; check the folder (trial_dir)", path,
                std::strerror(errno));
  return fd;
}

// In the child, between fork and exec: only async-signal-safe calls.
[[noreturn]] void exec_child(const std::vector<char*>& argv, const std::vector<char*>& envp, int out_fd, int err_fd,
                             pid_t parent) {
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);  // the rank died before prctl
  ::dup2(out_fd, STDOUT_FILENO);
  ::dup2(err_fd, STDERR_FILENO);
  const int null_fd = ::open("/dev/null", O_RDONLY);
  if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGTERM, SIG_DFL);
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGUSR1, SIG_DFL);
  ::signal(SIGPIPE, SIG_DFL);
  ::execve(argv[0], argv.data(), envp.data());
  const char msg[] = "lmsweep: cannot start the trial's command (execve failed)\n";
  (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
  ::_exit(127);
}

}  // namespace

CommandTemplate CommandTemplate::parse(const std::string& text) {
  CommandTemplate t;
  t.words_ = split_words(text);
  LMSWEEP_CHECK(!t.words_.empty(), "command is empty: give the program and its arguments");
  for (const auto& w : t.words_) scan_word(w, [](const std::string&) {}, [](const std::string&) {});
  return t;
}

std::set<std::string> CommandTemplate::placeholders() const {
  std::set<std::string> names;
  for (const auto& w : words_) scan_word(w, [](const std::string&) {}, [&](const std::string& n) { names.insert(n); });
  return names;
}

void CommandTemplate::check_names(const SearchSpace& space, const std::string& label) const {
  std::string dims;
  for (const auto& d : space.dimensions()) dims += (dims.empty() ? "" : ", ") + d.name;
  for (const auto& name : placeholders())
    LMSWEEP_CHECK(space.find(name), "{} command: {{{}}} is not a [space] dimension; dimensions: {}", label, name,
                  dims);
}

std::vector<std::string> CommandTemplate::substitute(const nlohmann::json& params) const {
  std::vector<std::string> out;
  for (const auto& w : words_) {
    std::string s;
    scan_word(w, [&](const std::string& lit) { s += lit; }, [&](const std::string& n) {
      LMSWEEP_CHECK(params.contains(n), "command: the point has no value of {{{}}}", n);
      s += to_flag_value(ParamValue::from_json(params.at(n)));
    });
    out.push_back(std::move(s));
  }
  return out;
}

std::string find_program(const std::string& word) {
  if (word.find('/') != std::string::npos) {
    LMSWEEP_CHECK(executable_file(word), "command: '{}' is not an executable file; check the path", word);
    return word;
  }
  const char* path_env = std::getenv("PATH");
  const std::string path = path_env ? path_env : "/usr/bin:/bin";
  size_t begin = 0;
  while (begin <= path.size()) {
    const size_t end = std::min(path.find(':', begin), path.size());
    const std::string dir = end > begin ? path.substr(begin, end - begin) : ".";
    if (executable_file(dir + "/" + word)) return dir + "/" + word;
    begin = end + 1;
  }
  throw_error("command: '{}' is not found on PATH ({}); install it or give its full path", word, path);
}

std::optional<nlohmann::json> parse_epoch_output(const std::string& line) {
  const std::string t = trim(line);
  if (t.empty() || t.front() != '{') return std::nullopt;
  auto j = nlohmann::json::parse(t, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("epoch") || !j["epoch"].is_number()) return std::nullopt;
  return j;
}

std::string last_line_of(const std::string& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line))
    if (!trim(line).empty()) last = trim(line);
  return last.size() > 300 ? last.substr(0, 300) + "..." : last;
}

ChildProcess::ChildProcess(const ProcessSpec& spec) {
  LMSWEEP_CHECK(!spec.argv.empty(), "command: no program to run");
  log_fd_ = open_log(spec.stdout_log);
  const int err_fd = open_log(spec.stderr_log);
  int pipe_fds[2];
  LMSWEEP_CHECK(::pipe2(pipe_fds, O_CLOEXEC) == 0, "cannot create a pipe for the trial's command: {}",
                std::strerror(errno));
  // Everything the child needs, built before fork (no allocation after it).
  std::vector<std::string> env_strings = child_environment(spec);
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ == 0) exec_child(argv, envp, pipe_fds[1], err_fd, parent);
  const int fork_errno = errno;
  ::close(pipe_fds[1]);
  ::close(err_fd);
  out_fd_ = pipe_fds[0];
  if (pid_ < 0) {
    ::close(out_fd_);
    ::close(log_fd_);
    throw_error("cannot start '{}': fork failed: {}", spec.argv[0], std::strerror(fork_errno));
  }
  ::setpgid(pid_, pid_);  // also here: signals sent right after fork reach the group
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !exited()) terminate(2.0);
  if (out_fd_ >= 0) ::close(out_fd_);
  if (log_fd_ >= 0) ::close(log_fd_);
}

void ChildProcess::drain_to_log(const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(log_fd_, text.data() + done, text.size() - done);
    if (n <= 0) break;  // a full disk loses log text, not the trial
    done += static_cast<size_t>(n);
  }
}

std::optional<std::string> ChildProcess::read_line(double timeout_seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  while (true) {
    const size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    if (eof_) {
      if (buffer_.empty()) return std::nullopt;
      std::string rest;
      rest.swap(buffer_);  // a last line without '\n'
      return rest;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{out_fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return std::nullopt;
    char chunk[65536];
    const ssize_t n = ::read(out_fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof_ = true;
      continue;
    }
    const std::string text(chunk, static_cast<size_t>(n));
    drain_to_log(text);
    buffer_ += text;
  }
}

std::vector<std::string> ChildProcess::remaining_lines(double timeout_seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  std::vector<std::string> lines;
  while (true) {
    const std::chrono::duration<double> left = deadline - std::chrono::steady_clock::now();
    auto line = read_line(std::max(0.0, left.count()));
    if (!line) return lines;
    lines.push_back(std::move(*line));
  }
}

bool ChildProcess::poll_exit() {
  if (exited() || pid_ <= 0) return true;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) status_ = status;
  return exited();
}

bool ChildProcess::succeeded() const { return status_ && WIFEXITED(*status_) && WEXITSTATUS(*status_) == 0; }

std::string ChildProcess::describe_exit() const {
  if (!status_) return "still running";
  if (WIFEXITED(*status_)) return fmt::format("exit code {}", WEXITSTATUS(*status_));
  if (WIFSIGNALED(*status_)) return "killed by " + signal_name(WTERMSIG(*status_));
  return "ended";
}

void ChildProcess::terminate(double grace_seconds) {
  if (pid_ <= 0 || poll_exit()) return;
  ::kill(-pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace_seconds);
  while (!poll_exit() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (!exited()) {
    ::kill(-pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    status_ = status;
  }
}

int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  LMSWEEP_CHECK(fd >= 0, "cannot open a socket to find a free port: {}", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  const int err = errno;
  ::close(fd);
  LMSWEEP_CHECK(ok, "cannot find a free TCP port for MASTER_PORT: {}", std::strerror(err));
  return ntohs(addr.sin_port);
}

}  // namespace lmsweep::sweep
