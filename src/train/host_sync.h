#pragma once
// Counts the ATen operations that make the host wait for the device on CUDA: reading a value
// (.item(), a tensor used as a bool: aten::_local_scalar_dense) and the ops whose output size
// depends on the data (nonzero, unique, masked_select, ...). They are counted on any device,
// so that a CPU test catches a host synchronisation that would stall a GPU. Ops nested inside
// a fused kernel whose CUDA version reads its scalars on the device (_fused_adamw_'s step on
// CPU) are not counted. Counts every thread (autograd runs CUDA backward on its own threads).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lmsweep {

class HostSyncCounter {
 public:
  HostSyncCounter();   // counting starts
  ~HostSyncCounter();  // and stops
  HostSyncCounter(const HostSyncCounter&) = delete;
  HostSyncCounter& operator=(const HostSyncCounter&) = delete;

  int64_t count() const;
  // Names of the counted ops, in order (capped); with LMSWEEP_SYNC_BACKTRACE=1 in the
  // environment each with the stack that called it.
  std::vector<std::string> ops() const;
  void reset();

  struct State;

 private:
  std::shared_ptr<State> state_;
  uint64_t handle_ = 0;
};

}  // namespace lmsweep
