#include "sweep/watchdog.h"

#include <algorithm>

namespace lmsweep::sweep {

double resolve_watchdog_seconds(double configured, double longest_interval_seen, double floor_seconds) {
  if (configured > 0) return configured;
  return std::max(floor_seconds, 10 * longest_interval_seen);
}

Watchdog::Watchdog(WatchdogOptions options, std::function<void(double)> on_stall, std::function<void()> on_stuck,
                   std::function<void()> on_heartbeat, std::function<void()> on_tick)
    : options_(options),
      on_stall_(std::move(on_stall)),
      on_stuck_(std::move(on_stuck)),
      on_heartbeat_(std::move(on_heartbeat)),
      on_tick_(std::move(on_tick)) {
  thread_ = std::thread([this] { loop(); });
}

Watchdog::~Watchdog() { stop(); }

void Watchdog::beat() {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = Clock::now();
  if (armed_) longest_ = std::max(longest_, std::chrono::duration<double>(now - last_beat_).count());
  armed_ = true;
  last_beat_ = now;
}

double Watchdog::longest_interval() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return longest_;
}

void Watchdog::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::loop() {
  const auto tick = std::chrono::milliseconds(200);
  auto next_heartbeat = Clock::now();
  Clock::time_point stalled_at{};
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, tick);
    if (stopping_) break;
    const auto now = Clock::now();
    const double idle = armed_ ? std::chrono::duration<double>(now - last_beat_).count() : 0;
    lock.unlock();  // callbacks may take time (MPI sends); beat() must not wait for them
    if (on_tick_) on_tick_();
    if (on_heartbeat_ && now >= next_heartbeat) {
      on_heartbeat_();
      next_heartbeat = now + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(options_.heartbeat_seconds));
    }
    if (!fired_ && idle >= options_.seconds) {
      stalled_at = now;
      if (on_stall_) on_stall_(idle);
      fired_ = true;  // after on_stall: what it prepares is ready for whoever sees fired()
    } else if (fired_ && on_stuck_ &&
               std::chrono::duration<double>(now - stalled_at).count() >= options_.grace_seconds) {
      auto stuck = std::move(on_stuck_);
      on_stuck_ = nullptr;
      stuck();
    }
    lock.lock();
  }
}

}  // namespace lmsweep::sweep
