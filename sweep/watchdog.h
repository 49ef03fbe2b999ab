#pragma once
// A trial's watchdog (protocol.h, "Faults"): a thread that fails a trial whose rank makes no
// progress (no step) for `seconds`, then, if the rank is still not free `grace_seconds` later,
// gives up on the process. It also sends the group's heartbeat. Torch-free.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace lmsweep::sweep {

struct WatchdogOptions {
  double seconds = 300;          // no beat for this long: on_stall
  double grace_seconds = 30;     // then not stopped for this long: on_stuck
  double heartbeat_seconds = 10; // on_heartbeat this often
};

// seconds = configured ? configured : max(floor, 10 x the longest beat interval seen).
double resolve_watchdog_seconds(double configured, double longest_interval_seen, double floor_seconds);

class Watchdog {
 public:
  // Callbacks run on the watchdog's thread: on_stall(seconds since the last beat) once,
  // on_stuck() once, on_heartbeat() periodically, on_tick() five times a second (any may be
  // empty). Armed by the first beat.
  Watchdog(WatchdogOptions options, std::function<void(double)> on_stall, std::function<void()> on_stuck,
           std::function<void()> on_heartbeat, std::function<void()> on_tick = nullptr);
  ~Watchdog();  // stop()
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void beat();                       // progress: a step starts
  bool fired() const { return fired_; }
  void stop();                       // the trial ended on this rank; joins the thread
  double longest_interval() const;   // between beats, in seconds

 private:
  using Clock = std::chrono::steady_clock;
  void loop();

  WatchdogOptions options_;
  std::function<void(double)> on_stall_;
  std::function<void()> on_stuck_, on_heartbeat_, on_tick_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false, armed_ = false;
  Clock::time_point last_beat_{};
  double longest_ = 0;
  std::atomic<bool> fired_{false};
  std::thread thread_;
};

}  // namespace lmsweep::sweep
