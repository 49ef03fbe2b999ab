#pragma once
// TensorBoard event files: TFRecord framing and a writer of one events.out.tfevents.* file.
// Torch-free; the events are serialized lmsweep::tb::Event messages (tbproto/event.proto, the
// wire format of TensorFlow's Event), made by export/tensorboard/summaries.h.
//
//   lmsweep::tensorboard::EventFileWriter w("runs/trial-00003");  // writes file_version
//   w.write(scalars_event(now, 1, {{"map", 0.61}}));              // in the kernel on return
#include <cstdint>
#include <string>
#include <string_view>

namespace lmsweep::tensorboard {

// One TFRecord: uint64 length (little-endian), uint32 masked CRC-32C of those 8 bytes, the
// data, uint32 masked CRC-32C of the data.
std::string frame_record(std::string_view data);

struct EventFileOptions {
  std::string host;   // in the file name; "" = this machine's name
  std::string what = "TensorBoard folder";  // names the folder in error messages, e.g. "--tensorboard"
};

class EventFileWriter {
 public:
  // Creates `dir` (and its parents) when missing and a new file in it,
  // events.out.tfevents.<unix seconds>.<host>.<pid>.<counter> (TensorFlow's naming: files of
  // one run sort by creation), whose first event is file_version "brain.Event:2". Throws
  // lmsweep::Error naming the folder when it cannot be created or written.
  explicit EventFileWriter(const std::string& dir, const EventFileOptions& options = {});
  EventFileWriter(EventFileWriter&& other) noexcept;
  EventFileWriter& operator=(EventFileWriter&& other) noexcept;
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;
  ~EventFileWriter();  // closes, ignoring errors: call close() to see them

  // Appends one serialized Event as a record. Each record goes to the kernel before this
  // returns (no user-space buffer), so TensorBoard sees a running sweep live. Throws Error.
  void write(std::string_view serialized_event);
  void close();  // throws Error when closing fails; nothing after close()
  const std::string& path() const { return path_; }
  bool is_open() const { return fd_ >= 0; }

 private:
  std::string path_, what_;
  int fd_ = -1;
};

// The name of a new event file as EventFileWriter makes it (without the folder).
std::string event_file_name(double unix_seconds, const std::string& host, std::int64_t pid, std::int64_t counter);

}  // namespace lmsweep::tensorboard
