#include "sweep/crash_notes.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace lmsweep::sweep {
namespace {

// What the handler may touch: an fd and a prepared prefix, both set before any trial runs.
// Process-wide by nature (a signal handler has no other state); written only by the worker.
int g_fd = -1;
char g_prefix[2][768];
std::atomic<int> g_current{-1};  // which g_prefix holds the current trial, -1: none

const char* signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    default: return "a fatal signal";
  }
}

void append(char* out, size_t& at, size_t cap, const char* text) {
  const size_t n = std::strlen(text);
  const size_t take = at + n < cap ? n : cap - at;
  std::memcpy(out + at, text, take);
  at += take;
}

void write_line(const char* reason) {
  const int which = g_current.load();
  if (g_fd < 0 || which < 0) return;
  char line[1024];
  size_t at = 0;
  append(line, at, sizeof(line) - 4, g_prefix[which]);
  append(line, at, sizeof(line) - 4, reason);
  append(line, at, sizeof(line), "\"}\n");
  ssize_t ignored = ::write(g_fd, line, at);
  (void)ignored;
}

void on_fatal_signal(int sig) {
  write_line(signal_name(sig));
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

std::string crash_notes_path(const std::string& db_path) { return db_path + "-crashes"; }

void install_crash_notes(const std::string& path) {
  if (g_fd < 0) g_fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  for (int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL}) ::signal(sig, on_fatal_signal);
}

void set_crash_note_trial(int64_t trial_id, int64_t number, int rank, const std::string& host) {
  if (trial_id < 0) {
    g_current = -1;
    return;
  }
  const int next = g_current.load() == 0 ? 1 : 0;
  // The reason (a signal name, no quotes) follows "reason":" and closes the object.
  const std::string prefix = nlohmann::json{{"trial_id", trial_id}, {"number", number}, {"rank", rank},
                                            {"host", host}, {"pid", static_cast<int64_t>(::getpid())}}
                                 .dump();
  const std::string text = prefix.substr(0, prefix.size() - 1) + ",\"reason\":\"";
  std::snprintf(g_prefix[next], sizeof(g_prefix[next]), "%s", text.c_str());
  g_current = next;
}

void write_crash_note(const std::string& reason) {
  std::string clean = reason;
  for (char& c : clean)
    if (c == '"' || c == '\\' || c == '\n') c = ' ';
  write_line(clean.c_str());
}

std::vector<CrashNote> read_crash_notes(const std::string& path) {
  std::vector<CrashNote> notes;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    try {
      const auto j = nlohmann::json::parse(line);
      notes.push_back({j.value("trial_id", int64_t{-1}), j.value("number", int64_t{-1}), j.value("rank", 0),
                       j.value("host", std::string()), j.value("pid", int64_t{0}),
                       j.value("reason", std::string())});
    } catch (const std::exception&) {
      // A line cut short by a dying process: no note.
    }
  }
  return notes;
}

void remove_crash_notes(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
}

}  // namespace lmsweep::sweep
