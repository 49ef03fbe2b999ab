#pragma once
// What data parallelism needs from a process group, so that the trainer knows nothing of MPI
// or of the c10d backend (Gloo on CPU builds, NCCL on CUDA builds; see sweep/). A null
// Collectives* means one process.
#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

namespace lmsweep {

// How every data-parallel split here cuts n rows: rank r of w takes [n r / w, n (r + 1) / w).
struct RowRange {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
inline RowRange rank_rows(int64_t n, int rank, int world) { return {n * rank / world, n * (rank + 1) / world}; }
// Every rank's count under that split: what all_gather_rows takes.
inline std::vector<int64_t> rows_per_rank(int64_t n, int world) {
  std::vector<int64_t> rows;
  for (int r = 0; r < world; ++r) rows.push_back(rank_rows(n, r, world).size());
  return rows;
}

class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // local: [rows[rank], ...] on every rank -> [sum(rows), ...] in rank order. The row counts
  // are known to every rank (they follow from the batch split), so none is exchanged. Every
  // tensor of every collective lives on the model's device (NCCL takes only CUDA tensors).
  // No autograd here; see GatherRowsFn in step.cpp.
  virtual at::Tensor all_gather_rows(const at::Tensor& local, const std::vector<int64_t>& rows) = 0;
  // In-place elementwise sum over ranks (gradient buckets).
  virtual void all_reduce_sum(std::vector<at::Tensor>& tensors) = 0;
  // In-place copy of root's tensors to every rank.
  virtual void broadcast(std::vector<at::Tensor>& tensors, int root) = 0;
  // From another thread: frees this rank from a collective that cannot complete (NCCL's
  // communicator abort); the group is unusable afterwards. Gloo has none: its collectives end
  // at their timeout, or at once when a peer destroys its group.
  virtual void abort() {}
};

}  // namespace lmsweep
