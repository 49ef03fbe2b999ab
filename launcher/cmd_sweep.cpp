#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/host.h"
#include "compat/torch_compat.h"
#include "launcher/cli.h"
#include "launcher/commands.h"
#include "launcher/preflight.h"
#include "launcher/report.h"
#include "launcher/signals.h"
#include "sweep/config.h"
#include "sweep/crash_notes.h"
#include "sweep/fault.h"
#include "sweep/placement.h"
#include "sweep/coordinator.h"
#include "dist/mpi_channel.h"
#include "sweep/point_sampler.h"
#include "sweep/worker.h"

namespace po = boost::program_options;

namespace lmsweep::cli {
namespace {

struct SweepArgs {
  std::string config, journal = "auto", tensorboard;
  double fake_epoch_seconds = -1;
  bool retry_failed = false;
};

// Adds the sweep's own options to `general` (the training options go in a group of their own).
void add_sweep_options(po::options_description& general, SweepArgs& a) {
  general.add_options()("help,h", "this help")
      ("config", po::value(&a.config)->required(), "INI file with [sweep], [space] and (optionally) [train]")
      ("journal", po::value(&a.journal)->default_value(a.journal),
       "SQLite journal: auto (WAL on local disks, rollback journal on network filesystems) | wal | delete")
      ("retry-failed", po::bool_switch(&a.retry_failed), "run the study's failed trials again (after a fix)")
      ("tensorboard", po::value(&a.tensorboard)->value_name("DIR"), "write TensorBoard event files live into DIR: "
       "the HParams experiment in DIR/, trial 3's parameters and epochs (tags map, map_tail, train_loss, ...; step = "
       "epoch) in DIR/trial-00003/; view with tensorboard --logdir DIR")
      ("fake-epoch-seconds", po::value(&a.fake_epoch_seconds)->default_value(-1),
       "testing: replace training by fake trials whose epochs take this long");
}

void print_sweep_help(const po::options_description& desc) {
  std::cout << help_text("mpirun -np N lmsweep sweep --config SWEEP.ini --db FILE [training options]",
                         "Runs a hyperparameter sweep of LM-CLIP (or of any training program: trial = command): "
                         "rank 0 coordinates (in a thread) and every "
                         "rank trains; groups of gpus_per_trial ranks train one trial with data parallelism. "
                         "Rerun the same command to resume a stopped sweep.", desc);
  std::cout << "\n[sweep] keys: name, method (grid|random|sobol|tpe), trials, seed, gpus_per_trial, objective "
               "(map|map_head|map_middle|map_tail|map_single|map_multi, or a command trial's metric), objectives "
               "(two or more: MOTPE), scheduler (none|asha), grace, reduction, grid_points, n_startup_trials, window, "
               "warm_start (a study), watchdog_seconds (0: auto), max_attempts (3), lease_seconds (60), trial "
               "(lmclip|command), command (with {dimension} placeholders), stop_grace_seconds (10), trial_dir, "
               "eval_epochs (all|rungs), eval_every, eval_last, trials_per_device, tpe_defaults (lmsweep|optuna), "
               "tpe_gamma (0.15), tpe_ei_candidates (48), tpe_categorical_prior (3), tpe_bandwidth (0.8)\n"
               "[space] keys: training flags, e.g. batch-size = choice(8, 16, 32, 64), gamma-neg = uniform(2, "
               "12), lambda = loguniform(0.1, 10), epochs = int(5, 20)\n";
}

// Command trials' folders: [sweep] trial_dir, or <database>-trials beside the database.
std::string trial_root(const sweep::SweepConfig& config, const std::string& db_path) {
  // Absolute: the program may change its folder, and its rank may start elsewhere.
  if (!config.trial_dir.empty()) return std::filesystem::absolute(config.trial_dir).lexically_normal().string();
  const std::filesystem::path db = std::filesystem::absolute(db_path);
  return (db.parent_path() / (db.stem().string() + "-trials")).lexically_normal().string();
}

// [sweep]'s evaluation settings on the trials' options. ASHA's rung epochs are always evaluated:
// its decisions need the objective there.
void apply_eval_schedule(const sweep::SweepConfig& c, const std::string& config, TrainOptions& base) {
  const bool set = c.eval_every || c.eval_last || c.eval_epochs == sweep::SweepConfig::EvalEpochs::Rungs;
  LMSWEEP_CHECK(!set || c.trial == sweep::TrialKind::Lmclip, "{} [sweep]: eval_epochs / eval_every / eval_last "
                "apply to LM-CLIP trials; a command trial evaluates as its program does", config);
  if (c.eval_every) base.eval_every = *c.eval_every;
  if (c.eval_last) base.eval_last = *c.eval_last;
  if (c.eval_epochs == sweep::SweepConfig::EvalEpochs::Rungs && !c.eval_every) base.eval_every = 0;
  std::string at = base.eval_at;
  for (int64_t e : c.rung_epochs(base.epochs)) at += (at.empty() ? "" : ",") + std::to_string(e);
  base.eval_at = at;
}

// [sweep] trials_per_device, checked per device on every node before any trial starts
// (collective): a node whose ranks do not fit says so once (its node-local rank 0), and every
// rank returns false.
bool placement_ok(const sweep::SweepSetup& setup, const TrainOptions& base) {
  const auto place = dist::node_placement(MPI_COMM_WORLD);
  const int gpus = compat::cuda_device_count();
  const bool on_gpu = sweep::places_on_gpus(gpus, base.device, setup.config.trial == sweep::TrialKind::Command);
  int bad = 0, any = 0;
  try {
    sweep::device_slot(setup.config.trials_per_device, place.rank, place.size, on_gpu ? gpus : -1, host_name());
  } catch (const Error& e) {
    bad = 1;
    if (place.rank == 0) std::cerr << "lmsweep sweep: error: " << e.what() << "\n";
  }
  MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any == 0;
}

// The sweep as every rank reads it (the same files, the same way: they fail or not together).
sweep::SweepSetup read_setup(const SweepArgs& a, const po::variables_map& vm, int ranks, TrainOptions& base) {
  SweepIni ini = read_sweep_ini(a.config, vm);
  sweep::SweepSetup setup;
  setup.config = std::move(ini.config);
  setup.space = std::move(ini.space);
  base = std::move(ini.base);
  apply_eval_schedule(setup.config, a.config, base);
  LMSWEEP_CHECK(ranks % setup.config.gpus_per_trial == 0,
                "{} [sweep]: gpus_per_trial = {} does not divide the {} MPI ranks: run mpirun -np with a multiple",
                a.config, setup.config.gpus_per_trial, ranks);
  setup.db_path = base.db;
  setup.retry_failed = a.retry_failed;
  setup.journal = db::parse_journal_mode(a.journal);
  setup.num_groups = ranks / setup.config.gpus_per_trial;
  setup.epochs = static_cast<int>(base.epochs);
  setup.trial_root = trial_root(setup.config, setup.db_path);
  setup.tensorboard_dir = a.tensorboard;
  LMSWEEP_CHECK(!setup.space.find("epochs") || setup.config.scheduler == sweep::SchedulerKind::None,
                "{}: 'epochs' is a [space] dimension and scheduler = asha: ASHA needs one epoch budget; sweep "
                "epochs with scheduler = none", a.config);
  if (setup.config.trial == sweep::TrialKind::Command) {
    // The program is the study's "training options": another command is another study.
    setup.base_options = {{"trial", "command"}, {"command", setup.config.command}, {"epochs", base.epochs}};
    if (!setup.config.objectives.empty()) setup.base_options["objectives"] = setup.config.objectives;
    return setup;
  }
  nlohmann::json shared = method_options(base);
  for (const char* k : {"weights", "arch", "bpe", "data-root", "train", "test", "labels", "synthetic"})
    shared[k] = get_train_option(base, k);
  for (const auto& dim : setup.space.dimensions()) shared.erase(dim.name);
  if (!setup.config.objectives.empty()) shared["objectives"] = setup.config.objectives;
  setup.base_options = shared;
  return setup;
}

// Rank 0: what would fail every trial, then the study and the database's lease.
std::unique_ptr<sweep::Coordinator> prepare_study(TrainOptions& base, const sweep::SweepSetup& setup, bool fake,
                                                  std::function<void(const std::string&)> log) {
  if (setup.config.trial == sweep::TrialKind::Lmclip) resolve_synthetic(base);
  sweep::PointSampler sampler(setup.space, setup.config);
  check_before_first_trial(base, setup, sampler, fake);
  auto coordinator = std::make_unique<sweep::Coordinator>(setup, std::move(log));
  coordinator->prepare();
  return coordinator;
}

// Rank 0 after the workers ended: the run's verdict, the lease released, the best table.
int finish_study(std::unique_ptr<sweep::Coordinator> coordinator, const sweep::SweepSetup& setup, bool stopped) {
  int exit_code = 0;
  if (!stopped && coordinator->done_this_run() > 0 && coordinator->failed_this_run() == coordinator->done_this_run()) {
    std::cerr << fmt::format("lmsweep sweep: error: every trial of this run failed ({} of {}; {}): fix the cause "
                             "and rerun with --retry-failed\n",
                             coordinator->failed_this_run(), coordinator->done_this_run(), coordinator->first_error());
    exit_code = 1;
  }
  coordinator.reset();  // releases the database lease
  auto store = db::Store::open_read_only(setup.db_path);
  BestOptions bo;
  bo.study = setup.config.name;
  bo.top = 5;
  std::cout << "\n" << best_report(store, bo);
  return exit_code;
}

}  // namespace

int run_sweep(int argc, const char* const argv[]) {
  SweepArgs args;
  po::options_description general("sweep options");
  add_sweep_options(general, args);
  po::options_description training("training options shared by every trial (also [train] keys of --config)");
  add_train_options(training);
  po::options_description desc;  // holds pointers to the two groups above
  desc.add(general).add(training);
  if (wants_help(argc, argv)) {
    print_sweep_help(desc);
    return 0;
  }
  const auto vm = parse("sweep", argc, argv, desc);

  // Only rank 0 reports. MPI is initialised even without mpirun (a singleton: one rank).
  dist::MpiSession mpi(nullptr, nullptr);
  const bool root = mpi.rank() == 0;
  auto fail_all = [&](const std::string& message) {
    if (root) std::cerr << "lmsweep sweep: error: " << message << "\n";
    return 1;
  };
  sweep::SweepSetup setup;
  TrainOptions base;
  sweep::FaultPlan faults;
  try {
    faults = sweep::FaultPlan::from_environment();
    setup = read_setup(args, vm, mpi.size(), base);
  } catch (const Error& e) {
    return fail_all(e.what());
  }
  if (!placement_ok(setup, base)) return 1;

  // Rank 0 writes the synthetic data (if asked) and prepares the study; the others wait.
  std::unique_ptr<sweep::Coordinator> coordinator;
  std::mutex log_mutex;
  auto log = [&](const std::string& line) {
    std::lock_guard<std::mutex> lock(log_mutex);
    std::cout << line << std::endl;
  };
  nlohmann::json ready = {{"ok", true}};
  if (root) {
    try {
      coordinator = prepare_study(base, setup, args.fake_epoch_seconds >= 0, log);
    } catch (const Error& e) {
      ready = {{"ok", false}, {"error", e.what()}};
    }
  }
  ready = dist::broadcast_json(MPI_COMM_WORLD, 0, ready);
  if (!ready.at("ok").get<bool>()) return fail_all(ready.value("error", std::string()));
  if (!root && setup.config.trial == sweep::TrialKind::Lmclip) resolve_synthetic(base);

  install_stop_handlers();
  sweep::install_crash_notes(sweep::crash_notes_path(setup.db_path));
  auto channels = dist::Channels::create(MPI_COMM_WORLD);
  std::thread coordinator_thread;
  if (root) {
    coordinator->set_stop_check([] { return stop_requested(); });
    coordinator_thread = std::thread([&] {
      try {
        coordinator->run(channels);
      } catch (const std::exception& e) {
        std::cerr << "lmsweep sweep: error: coordinator: " << e.what() << "\n";
        MPI_Abort(MPI_COMM_WORLD, 1);  // the protocol cannot go on; the database is consistent
      }
    });
  }
  sweep::WorkerSetup ws;
  ws.base = base;
  ws.study = setup.config.name;
  ws.gpus_per_trial = setup.config.gpus_per_trial;
  ws.fake_epoch_seconds = args.fake_epoch_seconds;
  ws.stop_requested = [] { return stop_requested(); };
  ws.watchdog_seconds = setup.config.watchdog_seconds;
  ws.faults = faults;
  ws.trial = setup.config.trial;
  ws.command = setup.config.command;
  ws.trial_root = setup.trial_root;
  ws.stop_grace_seconds = setup.config.stop_grace_seconds;
  ws.trials_per_device = setup.config.trials_per_device;
  ws.objectives = setup.config.objectives.empty() ? std::vector<std::string>{setup.config.objective}
                                                  : setup.config.objectives;
  sweep::run_worker(ws, MPI_COMM_WORLD, channels);
  bool stopped = stop_requested();
  int exit_code = 0;
  if (root) {
    coordinator_thread.join();
    stopped = stopped || coordinator->stopped();
    exit_code = finish_study(std::move(coordinator), setup, stopped);
  }
  // Tell every rank whether the sweep was stopped: a preempted job exits with
  // kExitRequeue so that its batch script requeues it (slurm/).
  stopped = dist::broadcast_json(MPI_COMM_WORLD, 0, stopped).get<bool>();
  exit_code = dist::broadcast_json(MPI_COMM_WORLD, 0, exit_code).get<int>();
  channels.free();
  if (stopped) {
    if (root)
      std::cout << fmt::format("sweep stopped by signal; state saved. Rerun the same command (or requeue the job) "
                               "to continue; exit code {}\n", kExitRequeue);
    return kExitRequeue;
  }
  return exit_code;
}

int run_best(int argc, const char* const argv[]) {
  std::string db_path = "lmsweep.db", study, objective, format = "table", objectives;
  int64_t top = 10;
  bool pareto = false;
  po::options_description desc("options");
  desc.add_options()("help,h", "this help")
      ("db", po::value(&db_path)->default_value(db_path), "results database")
      ("study", po::value(&study), "one study (default: every study)")
      ("objective", po::value(&objective), "map | map_head | map_middle | map_tail | a command trial's metric "
       "(default: the study's)")
      ("top", po::value(&top)->default_value(top), "trials listed (0: all)")
      ("format", po::value(&format)->default_value(format), "table | csv | json | markdown")
      ("pareto", po::bool_switch(&pareto), "the Pareto front of --objectives: every (trial, epoch) no other one beats "
       "in all of them, and its hypervolume")
      ("objectives", po::value(&objectives), "with --pareto: two or more metrics, comma-separated (default: the "
       "study's [sweep] objectives, else map_head,map_tail)");
  if (wants_help(argc, argv)) {
      std::cout << help_text("lmsweep best --db FILE [--study NAME] [--objective map_tail] [--top K] [--format "
                             "table|csv|json|markdown] [--pareto [--objectives map_head,map_tail]]",
                             "Trials ranked by their best epoch's objective, with their parameters and that epoch's "
                             "mAP total / head / middle / tail (the paper's Tables 3 and 1).", desc);
      return 0;
    }
  parse("best", argc, argv, desc);
  LMSWEEP_CHECK(top >= 0, "--top = {}: must be >= 0", top);
  auto store = db::Store::open_read_only(db_path);
  BestOptions o;
  if (!study.empty()) o.study = study;
  if (!objective.empty()) o.objective = objective;
  o.top = top;
  o.format = format;
  o.pareto = pareto;
  o.objectives.clear();
  std::stringstream list(objectives);
  for (std::string item; std::getline(list, item, ',');)
    if (!item.empty()) o.objectives.push_back(item);
  std::cout << best_report(store, o);
  return 0;
}

int run_status(int argc, const char* const argv[]) {
  std::string db_path = "lmsweep.db", study, format = "table";
  po::options_description desc("options");
  desc.add_options()("help,h", "this help")
      ("db", po::value(&db_path)->default_value(db_path), "results database (may be written by a running sweep)")
      ("study", po::value(&study), "one study (default: every study)")
      ("format", po::value(&format)->default_value(format), "table | json");
  if (wants_help(argc, argv)) {
      std::cout << help_text("lmsweep status --db FILE [--study NAME] [--format table|json]",
                             "Trial counts (completed, running, pending, failed, pruned), running trials with their "
                             "epoch, the best so far and an ETA; safe while a sweep writes the database.", desc);
      return 0;
    }
  parse("status", argc, argv, desc);
  auto store = db::Store::open_read_only(db_path);
  StatusOptions o;
  if (!study.empty()) o.study = study;
  o.format = format;
  std::cout << status_report(store, o);
  return 0;
}

}  // namespace lmsweep::cli
