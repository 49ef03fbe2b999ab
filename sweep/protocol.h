#pragma once
// The sweep's MPI protocol (after horovod's rank-0 coordinator).
//
// Processes: `mpirun -np N lmsweep sweep ...`. Every rank is a worker; the coordinator is a
// thread of rank 0, so every GPU of the allocation trains. Ranks form groups of k =
// gpus_per_trial consecutive ranks (N must be a multiple of k); group g = ranks [g*k, g*k+k),
// its leader is rank g*k. A group trains one trial at a time with data parallelism over a
// c10d process group (Gloo on CPU builds, NCCL on CUDA builds) whose TCPStore address the
// leader sends to its members over MPI.
//
// Only leaders talk to the coordinator (MPI_COMM_WORLD, rank 0, the tags below); each message
// is one JSON object sent as MPI_CHAR:
//
//   leader -> coordinator                     coordinator -> leader
//   kRequest {group, host, ranks}             kAssign {trial_id, number, seed, attempt, params}
//     (ranks: [{rank, host, pid}] of the group)
//                                             or kShutdown {} when no trial is left
//   kEpoch {trial_id, line}                   kDecision {continue: bool}
//     (line: the trainer's per-epoch JSON:     (ASHA at rung boundaries; false also when the
//      epoch, train_loss, lr, map, ap, ...)    sweep is stopping)
//   kDone {trial_id, status, error}           (no reply)
//     status: completed | pruned | failed | interrupted
//   kHeartbeat {trial_id}                     (no reply; every 10 s while a trial runs)
//
// Leaders relay kAssign / kShutdown to their members with MPI_Bcast on the group communicator
// and each kDecision point to point (group_link.h), so every rank of a group runs the same
// trial and stops at the same epoch.
//
// Faults. A trial fails alone; the sweep goes on:
//  - A rank that throws announces the failure to its group (GroupLink, non-blocking) and
//    destroys its c10d group, which frees peers blocked in a Gloo collective at once; peers see
//    the announcement at their next step boundary or wait. Every rank then reports its outcome
//    to the leader, which combines them (the failure caused first names the error, with its
//    rank and host) and tells the group; the leader sends one kDone. After a failure every rank
//    of the group builds a new c10d group (a new TCPStore) for the next trial.
//  - Each rank runs a watchdog (watchdog.h): no step for watchdog_seconds fails the trial (the
//    announcement, NCCL's communicator abort; Gloo collectives time out at the same bound). A
//    rank still not free after a grace period ends the job with a line naming trial, rank, host
//    and pid (exit 75: the batch script requeues, the rerun continues).
//  - A process that dies (segfault, abort, OOM killer) takes the job down; its last words
//    (crash_notes.h) blame its trial. On the next start the blamed trials (all that were
//    running when nothing was written) count a crash, and one at max_attempts is failed.
//  - The coordinator holds the database's lease (one sweep per database; db/store.h), renewed
//    every lease_seconds / 6, and records the groups' heartbeats per running trial.
//
// method = tpe adds each trial when a group asks for one, suggested from the results so far.
// With [sweep] window = W a request for trial k waits (unanswered) until trials 0 .. k-W-1 have
// ended, so that trial k's point depends on their results alone, not on -np or timing.
//
// The coordinator is the only writer of the SQLite database (no "database is locked"; readers
// such as `lmsweep status` never block it). A trial's point and seed are functions of
// (study seed, trial number) alone, so they do not depend on -np or on the order trials finish.
// On start the coordinator requeues trials left running by a dead job; completed, pruned and
// failed trials are kept and not rerun (failed ones are, with `sweep --retry-failed`).
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace lmsweep::sweep {

enum Tag : int {
  kRequest = 101,
  kAssign = 102,
  kShutdown = 103,
  kEpoch = 104,
  kDecision = 105,
  kDone = 106,
  kHeartbeat = 107,
};

struct Assignment {
  int64_t trial_id = 0;
  int64_t number = 0;
  uint64_t seed = 0;
  int attempt = 1;        // 1 for the first start
  nlohmann::json params;  // flag name -> value

  nlohmann::json to_json() const {
    return {{"trial_id", trial_id}, {"number", number}, {"seed", seed}, {"attempt", attempt}, {"params", params}};
  }
  static Assignment from_json(const nlohmann::json& j) {
    Assignment a;
    a.trial_id = j.at("trial_id");
    a.number = j.at("number");
    a.seed = j.at("seed");
    a.attempt = j.value("attempt", 1);
    a.params = j.at("params");
    return a;
  }
};

}  // namespace lmsweep::sweep
