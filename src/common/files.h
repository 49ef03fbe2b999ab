#pragma once
// Writing the files users asked for (--scores-out, --metrics-out) so that a failure is an
// error: the stream is checked after it is closed, when a full disk (ENOSPC at the flush)
// shows, not before, which would leave an empty file and exit 0.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
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

// Publishes `size` bytes as `path` the way a checkpoint must be: written to path.tmp, fsync'ed,
// renamed over `path` (the previous file stays whole until then), and the folder fsync'ed so
// that the rename itself survives a crash of the node. what: "checkpoint", "resume state".
inline void write_file_durably(const std::string& path, const void* data, size_t size, const std::string& what) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  LMSWEEP_CHECK(fd >= 0, "{} {}: cannot write it ({}): check the folder exists and is writable", what, path,
                std::strerror(errno));
  const char* p = static_cast<const char*>(data);
  size_t left = size;
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw_error("{} {}: the write failed ({}); is the disk full? The previous file is kept", what, path,
                  std::strerror(e));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  const int e = errno;
  ::close(fd);
  if (!synced) {
    ::unlink(tmp.c_str());
    throw_error("{} {}: fsync failed ({}); the previous file is kept", what, path, std::strerror(e));
  }
  std::filesystem::rename(tmp, path);
  const std::string folder = std::filesystem::path(path).parent_path().string();
  const int dir = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);  // best effort: some filesystems refuse fsync on a folder
    ::close(dir);
  }
}

}  // namespace lmsweep
