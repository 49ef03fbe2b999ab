#include "export/tensorboard/event_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <utility>

#include <fmt/format.h>

#include "common/error.h"
#include "common/host.h"
#include "export/tensorboard/crc32c.h"
#include "export/tensorboard/summaries.h"

namespace lmsweep::tensorboard {
namespace {

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}

std::atomic<std::int64_t> g_file_counter{0};  // several writers of one process in one second

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string frame_record(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 16);
  put_le(out, data.size(), 8);
  put_le(out, masked_crc32c(std::string_view(out.data(), 8)), 4);
  out.append(data.data(), data.size());
  put_le(out, masked_crc32c(data), 4);
  return out;
}

std::string event_file_name(double unix_seconds, const std::string& host, std::int64_t pid, std::int64_t counter) {
  return fmt::format("events.out.tfevents.{:010d}.{}.{}.{}", static_cast<std::int64_t>(std::floor(unix_seconds)),
                     host, pid, counter);
}

EventFileWriter::EventFileWriter(const std::string& dir, const EventFileOptions& options) : what_(options.what) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  LMSWEEP_CHECK(!ec, "{} {}: cannot create the folder ({}): pass a folder you can write", what_, dir, ec.message());
  const std::string host = options.host.empty() ? host_name() : options.host;
  path_ = (std::filesystem::path(dir) /
           event_file_name(now_seconds(), host, ::getpid(), g_file_counter.fetch_add(1)))
              .string();
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  LMSWEEP_CHECK(fd_ >= 0, "{} {}: cannot create the event file {} ({}): pass a folder you can write", what_, dir,
                path_, std::strerror(errno));
  write(file_version_event(now_seconds()));
}

EventFileWriter::EventFileWriter(EventFileWriter&& other) noexcept
    : path_(std::move(other.path_)), what_(std::move(other.what_)), fd_(std::exchange(other.fd_, -1)) {}

EventFileWriter& EventFileWriter::operator=(EventFileWriter&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    what_ = std::move(other.what_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

EventFileWriter::~EventFileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void EventFileWriter::write(std::string_view serialized_event) {
  LMSWEEP_CHECK(fd_ >= 0, "{}: event file {} is closed", what_, path_);
  // One write() per record: a reader never sees half a record from a short write it could
  // not tell apart from a truncated file, except on a full disk (reported here).
  const std::string record = frame_record(serialized_event);
  const char* p = record.data();
  std::size_t left = record.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    LMSWEEP_CHECK(n > 0, "{}: writing the event file {} failed ({}); is the disk full?", what_, path_,
                  std::strerror(errno));
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void EventFileWriter::close() {
  if (fd_ < 0) return;
  const int rc = ::close(std::exchange(fd_, -1));
  LMSWEEP_CHECK(rc == 0, "{}: closing the event file {} failed ({}); is the disk full?", what_, path_,
                std::strerror(errno));
}

}  // namespace lmsweep::tensorboard
