#pragma once
// Last words of a sweep process that dies of a fatal signal (SIGSEGV, SIGABRT, SIGBUS, SIGFPE,
// SIGILL) while it runs a trial: one JSON line appended with a single write() (async-signal-
// safe, atomic for O_APPEND) to DB-crashes beside the database. The next sweep's coordinator
// reads them to blame the trial that took the job down: only that one counts a crash toward
// max_attempts, the other trials that were running are requeued as they were. A process
// killed outright (SIGKILL: the OOM killer, kill -9, a lost node) leaves no note; then every
// trial that was running counts a crash. Torch-free.
#include <cstdint>
#include <string>
#include <vector>

namespace lmsweep::sweep {

std::string crash_notes_path(const std::string& db_path);  // DB + "-crashes"

// Opens `path` for appending and installs the fatal-signal handlers (each rank, once). A path
// that cannot be opened (the database folder not visible from this host) leaves no notes.
void install_crash_notes(const std::string& path);
// The trial this process works on (trial_id < 0: none); what a fatal signal writes.
void set_crash_note_trial(int64_t trial_id, int64_t number, int rank, const std::string& host);
// A note written now, for a process that ends itself (the watchdog giving up on a rank).
void write_crash_note(const std::string& reason);

struct CrashNote {
  int64_t trial_id = -1;
  int64_t number = -1;
  int rank = 0;
  std::string host;
  int64_t pid = 0;
  std::string reason;  // "SIGABRT", "stuck: ..."
};
std::vector<CrashNote> read_crash_notes(const std::string& path);  // none when missing
void remove_crash_notes(const std::string& path);

}  // namespace lmsweep::sweep
