#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/host.h"
#include "compat/torch_compat.h"
#include "dist/device.h"
#include "db/epoch_json.h"
#include "db/store.h"
#include "launcher/cli.h"
#include "launcher/commands.h"
#include "launcher/signals.h"
#include "dist/c10d_group.h"
#include "dist/mpi_channel.h"
#include "export/tensorboard/study_writer.h"
#include "train/collectives.h"
#include "train/trainer.h"

namespace po = boost::program_options;

namespace lmsweep::cli {
namespace {


std::string default_study_name(const TrainOptions& o) {
  // Resumable runs keep their study; others get a fresh one.
  if (!o.checkpoint_dir.empty())
    return "train:" + std::filesystem::weakly_canonical(o.checkpoint_dir).string();
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::localtime(&now));
  return fmt::format("train-{}-{}", stamp, getpid());
}

// `train --tensorboard DIR`: the run's event files in DIR/<study>/, so that runs of one DIR sit
// side by side in TensorBoard. A write that fails after the start (disk full) is reported once
// and ends the event files, not the training: the database has everything.
class LiveTensorBoard {
 public:
  LiveTensorBoard(const std::string& dir, const db::StudyInfo& study) {
    if (dir.empty()) return;
    tensorboard::TensorBoardOptions o;
    o.run_per_trial = false;
    writer_ = std::make_unique<tensorboard::TensorBoardStudyWriter>(
        (std::filesystem::path(dir) / tensorboard::safe_run_name(study.name)).string(), o);
    writer_->begin(study, sweep::SearchSpace{}, tensorboard::lmclip_metric_tags());  // Error: before training
  }
  void operator()(const std::function<void(tensorboard::TensorBoardStudyWriter&)>& write) {
    if (!writer_) return;
    try {
      write(*writer_);
    } catch (const std::exception& e) {
      std::cerr << "lmsweep train: warning: TensorBoard: " << e.what()
                << "; no more event files (training goes on; `lmsweep export --format tensorboard` writes them "
                   "from the database)\n";
      writer_.reset();
    }
  }

 private:
  std::unique_ptr<tensorboard::TensorBoardStudyWriter> writer_;
};

}  // namespace

int run_train(int argc, const char* const argv[]) {
  std::string config, study_name, tensorboard_dir;
  po::options_description general("general");
  general.add_options()("help,h", "this help")
      ("config", po::value(&config), "INI file whose [train] section sets options (the command line wins)")
      ("study", po::value(&study_name), "study name in --db (default: train:<checkpoint-dir> or a timestamp)")
      ("tensorboard", po::value(&tensorboard_dir)->value_name("DIR"), "write TensorBoard event files live into "
       "DIR/<study>/: every epoch's train_loss, lr, map, map_head, ... (step = epoch) and the run's options for the "
       "HParams dashboard; view with tensorboard --logdir DIR");
  po::options_description training("training options (also [train] keys of --config)");
  add_train_options(training);
  po::options_description desc;
  desc.add(general).add(training);
  if (wants_help(argc, argv)) {
      std::cout << help_text("lmsweep train [--config FILE] [options]",
                             "Fine-tunes CLIP with LM-CLIP (L_CLIP + lambda * BAL, class-weighted sampling, label "
                             "smoothing), evaluating the test split after every epoch; results go to --db.", desc);
      return 0;
    }
  const auto vm = parse("train", argc, argv, desc);
  TrainOptions o = train_options_from(vm, config);

  // Under mpirun / srun with several ranks: one run with data parallelism over all of them
  // (--batch-size is the global batch). Rank 0 alone writes files and the database.
  std::unique_ptr<dist::MpiSession> mpi;
  std::unique_ptr<Collectives> group;
  if (dist::launched_by_mpi()) mpi = std::make_unique<dist::MpiSession>(nullptr, nullptr);
  const bool root = !mpi || mpi->rank() == 0;
  if (root) resolve_synthetic(o);
  if (mpi && mpi->size() > 1) {
    dist::quiet_barrier(MPI_COMM_WORLD);  // rank 0 has written the synthetic data
    if (!root) resolve_synthetic(o);
    o.validate();
    dist::ProcessGroupOptions po;
    po.cuda = o.device.rfind("cuda", 0) == 0;
    const auto placement = dist::node_placement(MPI_COMM_WORLD);
    po.single_host = placement.whole_comm_on_node;
    // One GPU per rank (node-local rank modulo the GPUs it sees), current before NCCL starts.
    o.device = dist::rank_device(o.device, placement.rank, compat::cuda_device_count());
    dist::use_device(o.device);
    group = dist::make_process_group(MPI_COMM_WORLD, po);
  }
  o.device = dist::rank_device(o.device, 0, compat::cuda_device_count());  // one process: "cuda" = GPU 0
  o.validate();
  if (!root) {
    // Followers train their share and leave the records to rank 0.
    o.metrics_out.clear();
    TrainHooks hooks;
    hooks.collectives = group.get();
    hooks.quiet = true;
    hooks.stop_requested = [] { return stop_requested(); };
    install_stop_handlers();
    return train_lmclip(o, hooks).end == RunEnd::Interrupted ? kExitRequeue : 0;
  }

  auto store = db::Store::open(o.db);
  db::StudySpec spec;
  spec.name = study_name.empty() ? default_study_name(o) : study_name;
  nlohmann::json cfg = method_options(o);
  for (const char* k : {"weights", "arch", "bpe", "data-root", "train", "test", "labels"}) cfg[k] = get_train_option(o, k);
  spec.config_json = cfg.dump();
  spec.method = "train";
  spec.objective = "map";
  spec.seed = static_cast<int64_t>(o.seed);
  spec.planned_trials = 1;
  const auto study = store.create_or_get_study(spec);
  const auto trial = store.add_trial(study.id, 0, nlohmann::json(method_options(o)).dump(), static_cast<int64_t>(o.seed));
  if (trial.status == db::TrialStatus::Running || trial.status == db::TrialStatus::Failed)
    store.requeue(study.id, trial.status);
  LMSWEEP_CHECK(trial.status != db::TrialStatus::Completed,
                "study '{}' in {} already holds a completed run: pass --study NAME for a new one", spec.name, o.db);
  LiveTensorBoard tensorboard(tensorboard_dir, study);  // an unwritable DIR stops here, nothing started
  store.start_trial(trial.id, 0, host_name());
  if (!o.checkpoint_dir.empty()) store.set_checkpoint(trial.id, o.checkpoint_dir);
  tensorboard([&](auto& tb) { tb.trial_started(store.trial(trial.id), trial.params_json); });
  auto end_tensorboard = [&](db::TrialStatus status) {
    tensorboard([&](auto& tb) { tb.trial_ended(store.trial(trial.id), status); });
  };

  install_stop_handlers();
  TrainHooks hooks;
  hooks.collectives = group.get();
  hooks.stop_requested = [] { return stop_requested(); };
  hooks.on_epoch = [&](const EpochResult& e) {
    const auto line = db::parse_epoch_line(epoch_json_line(e));
    store.record_epoch(trial.id, line.record, line.class_ap);
    tensorboard([&](auto& tb) { tb.epoch(trial, line.record); });
    return true;
  };
  TrainResult result;
  try {
    result = train_lmclip(o, hooks);
  } catch (const std::exception& e) {
    store.fail_trial(trial.id, e.what());
    end_tensorboard(db::TrialStatus::Failed);
    throw;
  }
  if (result.end == RunEnd::Interrupted) {
    store.interrupt_trial(trial.id);
    end_tensorboard(db::TrialStatus::Interrupted);
    std::cout << fmt::format("stopped by signal {}; rerun with --resume --checkpoint-dir {} to continue\n",
                             stop_signal(), o.checkpoint_dir.empty() ? "DIR" : o.checkpoint_dir);
    return kExitRequeue;
  }
  store.complete_trial(trial.id);
  end_tensorboard(db::TrialStatus::Completed);
  std::cout << fmt::format("best mAP {:.2f} % at epoch {}, best tail mAP {:.2f} % at epoch {}; results in {} (study "
                           "'{}')\n",
                           result.best_map * 100, result.best_map_epoch, result.best_tail * 100,
                           result.best_tail_epoch, o.db, spec.name);
  return 0;
}

}  // namespace lmsweep::cli
