#pragma once
// This machine's name, as recorded with each trial attempt, and whether a process of it lives.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include <string>

namespace lmsweep {

inline std::string host_name() {
  char buf[256] = {0};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

// A process of this host that still exists (EPERM: it does, another user's).
inline bool process_alive(int64_t pid) {
  return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

}  // namespace lmsweep
