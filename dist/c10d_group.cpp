#include "dist/c10d_group.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>
#include <torch/version.h>
#ifdef LMSWEEP_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "common/error.h"
#include "dist/mpi_channel.h"

namespace lmsweep::dist {
namespace {

#if TORCH_VERSION_MAJOR >= 2
using GroupBase = c10d::Backend;       // 2.x: backends (Gloo, NCCL) derive from Backend
#else
using GroupBase = c10d::ProcessGroup;  // 1.13: they derive from ProcessGroup
#endif

class C10dCollectives : public Collectives {
 public:
  C10dCollectives(c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<GroupBase> group, int rank, int size,
                  bool cuda)
      : store_(std::move(store)), group_(std::move(group)), rank_(rank), size_(size), cuda_(cuda) {}

  int rank() const override { return rank_; }
  int world_size() const override { return size_; }

  at::Tensor all_gather_rows(const at::Tensor& local_in, const std::vector<int64_t>& rows) override {
    LMSWEEP_CHECK(static_cast<int>(rows.size()) == size_ && rows[rank_] == local_in.size(0),
                  "internal: all_gather_rows with {} rows on rank {}, expected {}", local_in.size(0), rank_,
                  rank_ < static_cast<int>(rows.size()) ? rows[rank_] : -1);
    check_device(local_in);
    const at::Tensor local = local_in.contiguous();
    const int64_t max_rows = *std::max_element(rows.begin(), rows.end());
    // Collectives move equal shapes: pad to the largest slice, then cut each part.
    auto shape = local.sizes().vec();
    shape[0] = max_rows;
    at::Tensor padded = local;
    if (local.size(0) != max_rows) {
      padded = torch::zeros(shape, local.options());
      if (local.size(0) > 0) padded.narrow(0, 0, local.size(0)).copy_(local);
    }
    std::vector<std::vector<at::Tensor>> out(1);
    for (int r = 0; r < size_; ++r) out[0].push_back(torch::empty(shape, local.options()));
    std::vector<at::Tensor> in{padded};
    group_->allgather(out, in)->wait();
    std::vector<at::Tensor> parts;
    for (int r = 0; r < size_; ++r) parts.push_back(out[0][r].narrow(0, 0, rows[r]));
    return torch::cat(parts);
  }

  void all_reduce_sum(std::vector<at::Tensor>& tensors) override {
    for (const auto& t : tensors) check_device(t);
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    group_->allreduce(tensors, options)->wait();
  }

  void abort() override {
#ifdef LMSWEEP_HAVE_NCCL
    if (cuda_) group_->abort();
#endif
  }

  void broadcast(std::vector<at::Tensor>& tensors, int root) override {
    for (const auto& t : tensors) check_device(t);
    c10d::BroadcastOptions options;
    options.rootRank = root;
    // Gloo broadcasts one tensor per call in 1.13; flatten into one for a single collective.
    if (tensors.empty()) return;
    std::vector<at::Tensor> flat_parts;
    for (auto& t : tensors) flat_parts.push_back(t.detach().reshape(-1));
    std::vector<at::Tensor> flat{torch::cat(flat_parts)};
    group_->broadcast(flat, options)->wait();
    int64_t at = 0;
    torch::NoGradGuard no_grad;
    for (auto& t : tensors) {
      t.view(-1).copy_(flat[0].narrow(0, at, t.numel()));
      at += t.numel();
    }
  }

 private:
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<GroupBase> group_;
  int rank_, size_;
  bool cuda_;

  // NCCL moves CUDA tensors only; Gloo here moves CPU tensors. A tensor on the other kind of
  // device is a bug in the caller, named before the backend fails obscurely.
  void check_device(const at::Tensor& t) const {
    LMSWEEP_CHECK(t.is_cuda() == cuda_, "internal: a {} tensor in a collective of a {} group", t.device().str(),
                  cuda_ ? "NCCL (CUDA)" : "Gloo (CPU)");
  }
};

std::string this_host() {
  char buf[256] = {0};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

}  // namespace

std::unique_ptr<Collectives> make_process_group(MPI_Comm group_comm, const ProcessGroupOptions& options) {
  int rank = 0, size = 1;
  MPI_Comm_rank(group_comm, &rank);
  MPI_Comm_size(group_comm, &size);
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(options.timeout_seconds) * 1000);
  const std::string host = options.single_host ? "127.0.0.1" : this_host();

  // The first rank serves the store on a free port and tells the others where it is.
  c10::intrusive_ptr<c10d::TCPStore> store;
  nlohmann::json address;
  if (rank == 0) {
    c10d::TCPStoreOptions so;
    so.port = 0;  // any free port
    so.isServer = true;
    so.numWorkers = static_cast<size_t>(size);
    so.waitWorkers = false;
    so.timeout = timeout;
    store = c10::make_intrusive<c10d::TCPStore>(host, so);
    address = {{"host", host}, {"port", store->getPort()}};
  }
  address = broadcast_json(group_comm, 0, address);
  if (rank != 0) {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(address.at("port").get<int>());
    so.isServer = false;
    so.timeout = timeout;
    store = c10::make_intrusive<c10d::TCPStore>(address.at("host").get<std::string>(), so);
  }

  c10::intrusive_ptr<GroupBase> group;
  if (options.cuda) {
#ifdef LMSWEEP_HAVE_NCCL
    // CleanUpOnly: an NCCL error or timeout aborts the communicators and fails the trial on
    // this rank; it does not end the process (torch's default, 3, would take the job down).
    setenv("TORCH_NCCL_ASYNC_ERROR_HANDLING", "2", /*overwrite=*/0);
    auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
    nccl_options->timeout = timeout;
    group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, nccl_options);
#else
    throw_error("--device cuda with gpus_per_trial > 1 needs NCCL: build lmsweep against the CUDA LibTorch");
#endif
  } else {
    auto gloo_options = c10d::ProcessGroupGloo::Options::create();
    gloo_options->timeout = timeout;
    gloo_options->devices.push_back(options.single_host
                                        ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                        : c10d::ProcessGroupGloo::createDefaultDevice());
    group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, gloo_options);
  }
  return std::make_unique<C10dCollectives>(store, group, rank, size, options.cuda);
}

}  // namespace lmsweep::dist
