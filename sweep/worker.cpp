#include "sweep/worker.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/error.h"
#include "common/host.h"
#include "compat/torch_compat.h"
#include "dist/device.h"
#include "dist/c10d_group.h"
#include "dist/mpi_channel.h"
#include "sweep/point_sampler.h"
#include "sweep/protocol.h"
#include "sweep/search_space.h"
#include "train/trainer.h"

namespace lmsweep::sweep {
namespace {


}  // namespace

TrainOptions trial_options(const TrainOptions& base, const nlohmann::json& params, uint64_t seed,
                           const std::string& study, int64_t number) {
  TrainOptions o = base;
  for (auto it = params.begin(); it != params.end(); ++it)
    set_train_option(o, it.key(), to_flag_value(ParamValue::from_json(it.value())));
  o.seed = seed;
  o.metrics_out.clear();
  if (!base.checkpoint_dir.empty()) {
    o.checkpoint_dir =
        (std::filesystem::path(base.checkpoint_dir) / study / fmt::format("trial-{:05}", number)).string();
    o.resume = true;  // a requeued trial continues from its last state, if it has one
  }
  return o;
}

double fake_map(const nlohmann::json& params, int64_t epoch, int64_t epochs) {
  const uint64_t h = splitmix64(std::hash<std::string>{}(params.dump()));
  const double quality = to_unit_interval(h);  // in [0, 1)
  const double progress = 1.0 - std::exp(-3.0 * static_cast<double>(epoch) / static_cast<double>(epochs));
  return 0.2 + 0.7 * quality * progress;
}

int run_worker(const WorkerSetup& setup, MPI_Comm world, const dist::Channels& channels) {
  int rank = 0, size = 1;
  MPI_Comm_rank(world, &rank);
  MPI_Comm_size(world, &size);
  const int k = setup.gpus_per_trial;
  const int group = rank / k;
  MPI_Comm group_comm;
  MPI_Comm_split(world, group, rank, &group_comm);
  int group_rank = 0;
  MPI_Comm_rank(group_comm, &group_rank);
  const bool leader = group_rank == 0;

  TrainOptions base = setup.base;
  if (base.threads == 0) {
    // "All cores" means this rank's share of its node: ranks beside each other must not
    // oversubscribe the cores (OpenMP's spinning threads then slow everyone down).
    base.threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / dist::node_placement(world).size);
  }
  const bool cuda = base.device.rfind("cuda", 0) == 0;
  // One GPU per rank, by node-local rank, current for this thread before any CUDA work
  // (the NCCL communicator below included).
  base.device = dist::rank_device(base.device, dist::node_placement(world).rank, compat::cuda_device_count());
  dist::use_device(base.device);
  std::unique_ptr<Collectives> collectives;
  if (k > 1 && setup.fake_epoch_seconds < 0) {
    dist::ProcessGroupOptions po;
    po.cuda = cuda;
    po.single_host = dist::node_placement(group_comm).whole_comm_on_node;
    collectives = dist::make_process_group(group_comm, po);
  }
  ImageCache images;  // decoded once for every trial of this process
  const std::string host = host_name();
  int trials = 0;

  while (true) {
    nlohmann::json message;
    if (leader) {
      dist::send_json(channels.up, 0, kRequest, {{"group", group}, {"host", host}});
      const dist::Received r = dist::receive_json(channels.down, 0, MPI_ANY_TAG);
      message = r.tag == kAssign ? r.message : nlohmann::json{{"shutdown", true}};
    }
    message = dist::broadcast_json(group_comm, 0, message);
    if (message.contains("shutdown")) break;
    const Assignment a = Assignment::from_json(message);
    ++trials;

    // Leaders report each epoch and relay the coordinator's decision to the group.
    auto report = [&](const std::string& line) {
      bool keep_going = false;
      if (leader) {
        dist::send_json(channels.up, 0, kEpoch, {{"trial_id", a.trial_id}, {"line", line}});
        keep_going = dist::receive_json(channels.down, 0, kDecision).message.value("continue", false);
      }
      return dist::broadcast_json(group_comm, 0, keep_going).get<bool>();
    };

    std::string status = "completed", error;
    try {
      const TrainOptions o = trial_options(base, a.params, a.seed, setup.study, a.number);
      if (setup.fake_epoch_seconds >= 0) {
        for (int64_t e = 1; e <= o.epochs; ++e) {
          std::this_thread::sleep_for(std::chrono::duration<double>(setup.fake_epoch_seconds));
          bool stop = setup.stop_requested && setup.stop_requested();
          stop = dist::broadcast_json(group_comm, 0, stop).get<bool>();
          if (stop) {
            status = "interrupted";
            break;
          }
          const double map = fake_map(a.params, e, o.epochs);
          const nlohmann::json line = {{"epoch", e}, {"train_loss", 1.0 / static_cast<double>(e)}, {"lr", o.lr},
                                       {"seconds", setup.fake_epoch_seconds}, {"map", map},
                                       {"map_head", map}, {"map_middle", map}, {"map_tail", map}};
          if (!report(line.dump())) {
            status = e < o.epochs ? "pruned" : "completed";
            break;
          }
        }
      } else {
        TrainHooks hooks;
        hooks.quiet = true;
        hooks.collectives = collectives.get();
        hooks.images = &images;
        hooks.stop_requested = setup.stop_requested;
        hooks.on_epoch = [&](const EpochResult& e) { return report(epoch_json_line(e)); };
        const TrainResult result = train_lmclip(o, hooks);
        if (result.end == RunEnd::Stopped) status = "pruned";
        if (result.end == RunEnd::Interrupted) status = "interrupted";
      }
    } catch (const std::exception& e) {
      status = "failed";
      error = e.what();
      error = error.substr(0, error.find('\n'));
    }
    if (leader) dist::send_json(channels.up, 0, kDone, {{"trial_id", a.trial_id}, {"status", status}, {"error", error}});
    // After an interruption the coordinator, stopping too, answers the next request with
    // kShutdown.
  }
  MPI_Comm_free(&group_comm);
  return trials;
}

}  // namespace lmsweep::sweep
