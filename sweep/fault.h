#pragma once
// LMSWEEP_FAULT: a test hook that makes a chosen rank of a sweep fail in a chosen way at a
// chosen point, so that the fault handling (protocol.h) can be tested end to end. Unset, it
// does nothing. Torch-free.
//
//   LMSWEEP_FAULT=KIND[:trial=N][:rank=R][:step=S][:attempt=A][,KIND...]
//     KIND     throw  an exception (the trial fails on this rank)
//              hang   no progress until the watchdog frees the rank (a hung collective)
//              stuck  no progress, and deaf to the watchdog (stuck outside lmsweep's control)
//              abort  std::abort(): the process dies (SIGABRT), taking the job down
//              oom    an allocation far beyond any memory (LibTorch's own out-of-memory error)
//     trial    the trial number (default: every trial)
//     rank     the rank within the trial's group (default: every rank of the group)
//     step     the trial's Nth training step of this attempt, from 1 (default 1); fake trials
//              (--fake-epoch-seconds) take 4 steps per epoch
//     attempt  the attempt, from 1 (default: every attempt)
// e.g. throw:trial=2:rank=1:step=3, hang:trial=1:rank=1:step=2, abort:trial=1:step=2.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lmsweep::sweep {

enum class FaultKind { Throw, Hang, Stuck, Abort, Oom };
std::string to_string(FaultKind kind);

struct Fault {
  FaultKind kind = FaultKind::Throw;
  std::optional<int64_t> trial;
  std::optional<int> rank;
  int64_t step = 1;
  std::optional<int> attempt;
};

class FaultPlan {
 public:
  // Throws lmsweep::Error naming the variable and the part it cannot read.
  static FaultPlan parse(const std::string& text);
  static FaultPlan from_environment();  // LMSWEEP_FAULT, empty when unset
  bool empty() const { return faults_.empty(); }
  // The fault planned at this point, if any.
  std::optional<FaultKind> at(int64_t trial, int rank, int64_t step, int attempt) const;

 private:
  std::vector<Fault> faults_;
};

}  // namespace lmsweep::sweep
