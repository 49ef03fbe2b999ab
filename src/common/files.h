#pragma once
// Writing the files users asked for (--scores-out, --metrics-out) so that a failure is an
// error: the stream is checked after it is closed, when a full disk (ENOSPC at the flush)
// shows, not before, which would leave an empty file and exit 0.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "common/error.h"

namespace lmsweep {

// what: the option that named the file ("--metrics-out"), for the message.
inline void write_text_file(const std::string& path, const std::string& text, const std::string& what,
                            bool append = false) {
  std::ofstream out(path, append ? std::ios::app : std::ios::trunc);
  LMSWEEP_CHECK(out.is_open(), "{} {}: cannot open the file for writing ({})", what, path, std::strerror(errno));
  out << text;
  out.close();
  LMSWEEP_CHECK(!out.fail(), "{} {}: the write failed ({}); is the disk full?", what, path, std::strerror(errno));
}

}  // namespace lmsweep
