#pragma once
// A sweep worker (see protocol.h): every rank runs one. Group leaders ask the coordinator for
// trials and report epochs; members follow their leader. LibTorch + MPI.
#include <mpi.h>

#include "dist/mpi_channel.h"

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "sweep/config.h"
#include "sweep/fault.h"
#include "train/options.h"

namespace lmsweep::sweep {

struct WorkerSetup {
  TrainOptions base;          // shared training options (resolved paths, no swept values)
  std::string study;          // for per-trial checkpoint folders
  int gpus_per_trial = 1;
  // Testing and benchmarking the protocol: > = 0 replaces training by a fake trial whose
  // epochs take this many seconds and report an mAP that is a fixed function of the point.
  double fake_epoch_seconds = -1;
  std::function<bool()> stop_requested;
  double watchdog_seconds = 0;  // [sweep] watchdog_seconds (0: auto)
  FaultPlan faults;             // LMSWEEP_FAULT (fault.h); empty: none
  // trial = command (command_trial.h): the program, where its folders go, how long it may
  // take to stop, and the objectives its epoch lines must carry.
  TrialKind trial = TrialKind::Lmclip;
  std::string command;
  std::string trial_root;  // trial folders: trial_root/<study>/trial-00042
  double stop_grace_seconds = 10;
  std::vector<std::string> objectives;
  // [sweep] trials_per_device: at most this many ranks per GPU (on CPU: per node, its cores
  // split between them); 0: not set.
  int trials_per_device = 0;
};


// Runs until the coordinator has no trial left for this rank's group. Returns the number of
// trials this rank took part in.
int run_worker(const WorkerSetup& setup, MPI_Comm world, const dist::Channels& channels);

// The options of trial `number` with `params` (flag -> value) applied to `base`.
TrainOptions trial_options(const TrainOptions& base, const nlohmann::json& params, uint64_t seed,
                           const std::string& study, int64_t number);

// A command trial's folder: trial_root/<study>/trial-00042.
std::string command_trial_dir(const std::string& trial_root, const std::string& study, int64_t number);

// A fake trial's mAP at an epoch: deterministic in (params, epoch), rising with the epoch.
double fake_map(const nlohmann::json& params, int64_t epoch, int64_t epochs);

}  // namespace lmsweep::sweep
