#include "sweep/group_link.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "common/error.h"
#include "db/store.h"

namespace lmsweep::sweep {
namespace {

enum GroupTag : int { kFailNotice = 201, kOutcome = 202, kVerdict = 203, kGroupDecision = 204 };

}  // namespace

GroupLink::GroupLink(MPI_Comm group_comm) {
  MPI_Comm_dup(group_comm, &comm_);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

GroupLink::~GroupLink() {
  // Sends still in flight are peers' unread notices: cancel them, the trial is long over.
  for (auto& [text, request] : in_flight_) {
    int done = 0;
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (!done) {
      MPI_Cancel(&request);
      MPI_Request_free(&request);
    }
  }
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void GroupLink::send(int dest, int tag, const nlohmann::json& message) {
  std::lock_guard<std::mutex> lock(send_mutex_);
  // Finished sends release their buffers; the others keep theirs alive.
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    int done = 0;
    MPI_Test(&it->second, &done, MPI_STATUS_IGNORE);
    it = done ? in_flight_.erase(it) : std::next(it);
  }
  in_flight_.emplace_back(message.dump(), MPI_REQUEST_NULL);
  auto& [text, request] = in_flight_.back();
  MPI_Isend(text.data(), static_cast<int>(text.size()), MPI_CHAR, dest, tag, comm_, &request);
}

std::optional<nlohmann::json> GroupLink::poll(int source, int tag, int64_t trial_id) {
  std::lock_guard<std::mutex> lock(receive_mutex_);
  while (true) {
    int flag = 0;
    MPI_Status status;
    MPI_Iprobe(source, tag, comm_, &flag, &status);
    if (!flag) return std::nullopt;
    int count = 0;
    MPI_Get_count(&status, MPI_CHAR, &count);
    std::string buffer(static_cast<size_t>(count), '\0');
    MPI_Recv(buffer.data(), count, MPI_CHAR, status.MPI_SOURCE, tag, comm_, MPI_STATUS_IGNORE);
    auto message = nlohmann::json::parse(buffer);
    message["source"] = status.MPI_SOURCE;
    if (message.value("trial_id", int64_t{-1}) == trial_id) return message;
    // A late message of an earlier trial: dropped.
  }
}

nlohmann::json GroupLink::wait(int source, int tag, int64_t trial_id, double timeout_seconds,
                               const std::function<void()>& check) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  int sleep_us = 50;
  while (true) {
    if (auto m = poll(source, tag, trial_id)) return *m;
    if (check) check();
    LMSWEEP_CHECK(std::chrono::steady_clock::now() < deadline, "no word from rank {} of the group within {:.0f} s",
                  source, timeout_seconds);
    std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
    sleep_us = std::min(sleep_us * 2, 5000);
  }
}

void GroupLink::announce_failure(int64_t trial_id, const std::string& error) {
  for (int r = 0; r < size_; ++r)
    if (r != rank_) send(r, kFailNotice, {{"trial_id", trial_id}, {"error", error}});
}

bool GroupLink::peer_failed(int64_t trial_id) {
  if (size_ == 1) return false;
  std::lock_guard<std::mutex> lock(failures_mutex_);
  if (!peer_failures_.count(trial_id))
    if (auto m = poll(MPI_ANY_SOURCE, kFailNotice, trial_id)) peer_failures_[trial_id] = m->value("error", "");
  return peer_failures_.count(trial_id) > 0;
}

void GroupLink::check_peers(int64_t trial_id) {
  if (!peer_failed(trial_id)) return;
  std::lock_guard<std::mutex> lock(failures_mutex_);
  throw PeerFailed("the trial failed on a peer: " + peer_failures_.at(trial_id));
}

void GroupLink::send_decision(int64_t trial_id, bool keep_going) {
  for (int r = 1; r < size_; ++r) send(r, kGroupDecision, {{"trial_id", trial_id}, {"continue", keep_going}});
}

bool GroupLink::receive_decision(int64_t trial_id, double timeout_seconds, const std::function<void()>& check) {
  return wait(0, kGroupDecision, trial_id, timeout_seconds, check).value("continue", false);
}

std::optional<bool> GroupLink::poll_decision(int64_t trial_id) {
  if (size_ == 1) return std::nullopt;
  const auto m = poll(0, kGroupDecision, trial_id);
  if (!m) return std::nullopt;
  return m->value("continue", false);
}

RankOutcome GroupLink::agree(int64_t trial_id, const RankOutcome& mine, double timeout_seconds) {
  if (size_ == 1) return mine;
  if (rank_ != 0) {
    auto m = mine.to_json();
    m["trial_id"] = trial_id;
    send(0, kOutcome, m);
    try {
      return RankOutcome::from_json(wait(0, kVerdict, trial_id, timeout_seconds, nullptr));
    } catch (const Error& e) {
      return {"failed", fmt::format("the group's leader did not report the outcome ({})", e.what()), true,
              db::unix_now()};
    }
  }
  std::vector<RankOutcome> all{mine};
  for (int r = 1; r < size_; ++r) {
    try {
      all.push_back(RankOutcome::from_json(wait(r, kOutcome, trial_id, timeout_seconds, nullptr)));
    } catch (const Error& e) {
      all.push_back({"failed", fmt::format("rank {} did not report its outcome ({})", r, e.what()), true,
                     db::unix_now()});
    }
  }
  const RankOutcome verdict = combine_outcomes(all);
  auto v = verdict.to_json();
  v["trial_id"] = trial_id;
  for (int r = 1; r < size_; ++r) send(r, kVerdict, v);
  return verdict;
}

}  // namespace lmsweep::sweep
