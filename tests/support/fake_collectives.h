#pragma once
// Collectives of a pretend group in one process (this process is rank `rank` of `world`; the
// other ranks hold copies of its rows), recording every call: which tensors on which device,
// with which row counts. For checking what the trainer sends through a process group.
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "train/collectives.h"

namespace lmsweep::testing {

class RecordingCollectives : public Collectives {
 public:
  struct Call {
    std::string op;
    c10::Device device{c10::kCPU};
    at::ScalarType dtype = at::kFloat;
    std::vector<int64_t> shape, rows;
  };

  RecordingCollectives(int rank, int world) : rank_(rank), world_(world) {}
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }

  at::Tensor all_gather_rows(const at::Tensor& local, const std::vector<int64_t>& rows) override {
    record("all_gather_rows", local, rows);
    std::vector<at::Tensor> parts;
    for (int r = 0; r < world_; ++r) {
      auto shape = local.sizes().vec();
      shape[0] = rows[r];
      parts.push_back(r == rank_ ? local : at::zeros(shape, local.options()));  // another rank's rows
    }
    return at::cat(parts);
  }
  void all_reduce_sum(std::vector<at::Tensor>& tensors) override {
    for (auto& t : tensors) {
      record("all_reduce_sum", t, {});
      t.mul_(world_);  // every rank contributed the same
    }
  }
  void broadcast(std::vector<at::Tensor>& tensors, int) override {
    for (auto& t : tensors) record("broadcast", t, {});
  }

  std::vector<Call> calls;

 private:
  void record(const std::string& op, const at::Tensor& t, std::vector<int64_t> rows) {
    calls.push_back({op, t.device(), t.scalar_type(), t.sizes().vec(), std::move(rows)});
  }
  int rank_, world_;
};

}  // namespace lmsweep::testing
