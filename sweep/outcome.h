#pragma once
// How a trial ended on each rank of its group, and the group's verdict (protocol.h, "Faults").
// Torch-free, MPI-free.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lmsweep::sweep {

// How one rank's part of a trial ended.
struct RankOutcome {
  std::string status = "completed";  // completed | pruned | interrupted | failed
  std::string error;                 // of a failure: "rank 1 on node07: <first line>"
  bool caused_here = false;          // a failure of this rank, not one it saw on a peer
  double at = 0;                     // unix time of the failure
  nlohmann::json to_json() const;
  static RankOutcome from_json(const nlohmann::json& j);
};

// The group's outcome from every rank's: a failure anywhere fails the trial, with the message
// of the failure caused first; else interrupted, pruned, completed in that order.
RankOutcome combine_outcomes(const std::vector<RankOutcome>& outcomes);

}  // namespace lmsweep::sweep
