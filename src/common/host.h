#pragma once
// This machine's name, as recorded with each trial attempt, and whether a process of it lives.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <fstream>

#include <string>

namespace lmsweep {

inline std::string host_name() {
  char buf[256] = {0};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

// A process of this host that still runs (EPERM: it does, another user's). A zombie (killed,
// not yet reaped: orphans wait for an init that may never reap them in a container) does not.
inline bool process_alive(int64_t pid) {
  if (pid <= 0 || (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM)) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;  // no /proc: take kill's word
  const auto close = line.rfind(')');  // "pid (comm) state ...": comm may hold spaces
  return close == std::string::npos || close + 2 >= line.size() || (line[close + 2] != 'Z' && line[close + 2] != 'X');
}

}  // namespace lmsweep
