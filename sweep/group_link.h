#pragma once
// Control messages inside one trial group (protocol.h, "Faults"): point to point on a duplicate
// of the group communicator, every wait bounded and interruptible, every message tagged with
// its trial so that a late one from an earlier trial is dropped. Torch-free.
#include <mpi.h>

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <stdexcept>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sweep/outcome.h"

namespace lmsweep::sweep {

// Thrown on a rank whose peer failed the trial (seen in a wait or at a step boundary).
struct PeerFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class GroupLink {
 public:
  explicit GroupLink(MPI_Comm group_comm);  // collective over the group
  ~GroupLink();
  GroupLink(const GroupLink&) = delete;
  GroupLink& operator=(const GroupLink&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }

  // Tells every other rank that the trial failed here (does not block; thread-safe).
  void announce_failure(int64_t trial_id, const std::string& error);
  // Throws PeerFailed when a peer announced a failure of this trial.
  void check_peers(int64_t trial_id);
  // Whether a peer announced one (thread-safe: the watchdog asks, to abort NCCL at once).
  bool peer_failed(int64_t trial_id);

  // Leader -> members after each epoch: go on or stop.
  void send_decision(int64_t trial_id, bool keep_going);
  // Members: the leader's decision; `check` runs between polls (it throws to give up).
  bool receive_decision(int64_t trial_id, double timeout_seconds, const std::function<void()>& check);
  // Members of a command trial, between polls of their process: a decision if one came.
  std::optional<bool> poll_decision(int64_t trial_id);

  // Every rank calls it when its part of the trial ended: members send their outcome to the
  // leader, which combines them (a member silent for timeout_seconds counts as failed) and
  // sends back the verdict that every rank returns.
  RankOutcome agree(int64_t trial_id, const RankOutcome& mine, double timeout_seconds);

 private:
  void send(int dest, int tag, const nlohmann::json& message);
  std::optional<nlohmann::json> poll(int source, int tag, int64_t trial_id);
  nlohmann::json wait(int source, int tag, int64_t trial_id, double timeout_seconds,
                      const std::function<void()>& check);

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::mutex receive_mutex_;   // probe + receive of one message from one thread at a time
  std::mutex failures_mutex_;  // peer_failures_
  std::map<int64_t, std::string> peer_failures_;  // trial id -> first announced failure
  std::list<std::pair<std::string, MPI_Request>> in_flight_;  // sends not yet known complete
  std::mutex send_mutex_;
};

}  // namespace lmsweep::sweep
