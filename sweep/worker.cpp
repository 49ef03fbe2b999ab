#include "sweep/worker.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/error.h"
#include "common/exit_codes.h"
#include "common/host.h"
#include "compat/torch_compat.h"
#include "dist/device.h"
#include "dist/c10d_group.h"
#include "dist/mpi_channel.h"
#include "db/store.h"
#include "sweep/command_trial.h"
#include "sweep/crash_notes.h"
#include "sweep/group_link.h"
#include "sweep/placement.h"
#include "sweep/point_sampler.h"
#include "sweep/watchdog.h"
#include "sweep/protocol.h"
#include "sweep/search_space.h"
#include "train/trainer.h"

namespace lmsweep::sweep {
namespace {

// A stalled rank's time to get free after its watchdog fired: half the watchdog, 5 to 30 s.
double grace_seconds(double watchdog_seconds) { return std::clamp(watchdog_seconds / 2, 5.0, 30.0); }
constexpr int kFakeStepsPerEpoch = 4;

// What every trial of this process shares: its place in the group and the group's links.
struct Worker {
  const WorkerSetup& setup;
  const dist::Channels& channels;
  MPI_Comm group_comm = MPI_COMM_NULL;
  int group = 0, group_rank = 0, k = 1;
  bool leader = false;
  std::string host;
  int gpu = -1;          // this rank's GPU on its host (-1: none), for command trials' CUDA_VISIBLE_DEVICES
  nlohmann::json ranks;  // [{rank, host, pid}] of the group, for the coordinator
  TrainOptions base;
  dist::ProcessGroupOptions pg_options;
  std::mutex collectives_mutex;  // reset (worker) vs abort (watchdog)
  std::unique_ptr<Collectives> collectives;
  std::unique_ptr<GroupLink> link;
  ImageCache images;  // decoded once for every trial of this process
  double longest_interval = 0;  // between two steps, over every trial so far (auto watchdog)

  Worker(const WorkerSetup& s, const dist::Channels& c) : setup(s), channels(c) {}
  // Command trials bring their own (torch.distributed's env:// rendezvous).
  bool process_group_needed() const { return k > 1 && setup.trial == TrialKind::Lmclip; }
  void reset_collectives() {
    std::lock_guard<std::mutex> lock(collectives_mutex);
    collectives.reset();  // closes this rank's connections: peers blocked in Gloo get an error
  }
  void build_collectives() {
    if (!process_group_needed()) return;
    reset_collectives();
    auto pg = dist::make_process_group(group_comm, pg_options);
    std::lock_guard<std::mutex> lock(collectives_mutex);
    collectives = std::move(pg);
  }
  void abort_collectives() {
    std::lock_guard<std::mutex> lock(collectives_mutex);
    if (collectives) collectives->abort();
  }
  std::string who() const { return fmt::format("rank {} on {}", group_rank, host); }
};

// One attempt of one trial on this rank: its steps, its watchdog, its faults.
class Attempt {
 public:
  Attempt(Worker& w, const Assignment& a)
      : w_(w), a_(a),
        seconds_(resolve_watchdog_seconds(w.setup.watchdog_seconds, w.longest_interval, kWatchdogFloorSeconds)) {}

  // Before every step: progress, a peer's failure, the watchdog, a planned fault.
  void at_step() {
    ++step_;
    if (dog_) dog_->beat();
    check();
    if (const auto fault = w_.setup.faults.at(a_.number, w_.group_rank, step_, a_.attempt)) fire(*fault);
  }
  // Progress without a step of LM-CLIP's (command trials): the watchdog and the peers only.
  void beat() {
    ++step_;
    if (dog_) dog_->beat();
    check();
  }
  void check() {
    w_.link->check_peers(a_.trial_id);
    if (dog_ && dog_->fired()) throw Error(stall_message_);
  }
  RankOutcome run(const std::function<std::string()>& trial);

 private:
  void fire(FaultKind kind);
  void on_stall(double idle);
  void on_stuck();

  Worker& w_;
  const Assignment& a_;
  double seconds_;
  std::atomic<int64_t> step_{0};  // read by the watchdog's thread
  bool aborted_ = false;           // the watchdog's thread only
  std::string stall_message_;
  std::unique_ptr<Watchdog> dog_;
};

void Attempt::fire(FaultKind kind) {
  const std::string where = fmt::format("trial {} rank {} step {}", a_.number, w_.group_rank, step_.load());
  switch (kind) {
    case FaultKind::Throw: throw Error(fmt::format("LMSWEEP_FAULT throw at {}", where));
    case FaultKind::Abort: std::abort();
    case FaultKind::Oom:  // 1 PiB: beyond any machine, LibTorch's own allocation error
      (void)torch::empty({int64_t{1} << 50}, torch::TensorOptions(torch::kUInt8).device(w_.base.device));
      break;
    case FaultKind::Hang:
      // A hung collective: no progress until the watchdog gives up on it.
      while (!dog_->fired()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      throw Error(stall_message_);
    case FaultKind::Stuck:
      while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

void Attempt::on_stall(double idle) {
  stall_message_ = fmt::format("no progress for {:.0f} s after step {} (watchdog_seconds = {:.0f})", idle,
                               step_.load(), seconds_);
  w_.link->announce_failure(a_.trial_id, fmt::format("{}: {}", w_.who(), stall_message_));
  w_.abort_collectives();
}

void Attempt::on_stuck() {
  const std::string line = fmt::format(
      "lmsweep sweep: error: trial {}: {} (pid {}) is stuck {:.0f} s after its watchdog fired ({}) and cannot be "
      "freed: ending the job; rerun the same command (or requeue the job) to continue, the trial counts one crash",
      a_.number, w_.who(), ::getpid(), grace_seconds(seconds_), stall_message_);
  std::cerr << line << std::endl;
  write_crash_note("stuck: " + stall_message_);
  MPI_Abort(MPI_COMM_WORLD, kExitRequeue);
}

RankOutcome Attempt::run(const std::function<std::string()>& trial) {
  set_crash_note_trial(a_.trial_id, a_.number, w_.group_rank, w_.host);
  std::function<void()> heartbeat;
  if (w_.leader)
    heartbeat = [this] { dist::send_json(w_.channels.up, 0, kHeartbeat, {{"trial_id", a_.trial_id}}); };
  // NCCL: a peer's failure leaves this rank's kernels waiting on the GPU; abort at once rather
  // than at the watchdog (Gloo ranks are freed when the peer closes its connections).
  std::function<void()> tick;
  if (w_.pg_options.cuda && w_.k > 1)
    tick = [this] {
      if (!aborted_ && w_.link->peer_failed(a_.trial_id)) {
        aborted_ = true;
        w_.abort_collectives();
      }
    };
  dog_ = std::make_unique<Watchdog>(WatchdogOptions{seconds_, grace_seconds(seconds_), 10.0},
                                    [this](double idle) { on_stall(idle); }, [this] { on_stuck(); }, heartbeat, tick);
  RankOutcome mine;
  try {
    mine.status = trial();
  } catch (const PeerFailed& e) {
    mine = {"failed", e.what(), false, db::unix_now()};
  } catch (const std::exception& e) {
    std::string what = dog_->fired() ? stall_message_ : trial_error_text(e.what(), w_.setup.trials_per_device);
    mine = {"failed", fmt::format("{}: {}", w_.who(), what.substr(0, what.find('\n'))), true, db::unix_now()};
    w_.link->announce_failure(a_.trial_id, mine.error);
  }
  if (mine.status == "failed") w_.reset_collectives();  // frees peers blocked in a collective
  dog_->stop();
  w_.longest_interval = std::max(w_.longest_interval, dog_->longest_interval());
  const RankOutcome verdict = w_.link->agree(a_.trial_id, mine, seconds_ + 2 * grace_seconds(seconds_));
  set_crash_note_trial(-1, -1, 0, "");
  return verdict;
}

// The leader's kEpoch and the coordinator's decision on it (protocol.h).
bool send_epoch(const Worker& w, const Assignment& a, const std::string& line) {
  dist::send_json(w.channels.up, 0, kEpoch, {{"trial_id", a.trial_id}, {"line", line}});
  return dist::receive_json(w.channels.down, 0, kDecision).message.value("continue", false);
}

// The leader reports each epoch and relays the coordinator's decision to the group.
bool report_epoch(Worker& w, Attempt& attempt, const Assignment& a, const std::string& line) {
  if (!w.leader) return w.link->receive_decision(a.trial_id, 3600, [&] { attempt.check(); });
  const bool keep_going = send_epoch(w, a, line);
  w.link->send_decision(a.trial_id, keep_going);
  return keep_going;
}

// A fake trial: the protocol, the faults and (in groups) one real collective per step, without
// the training.
std::string run_fake_trial(Worker& w, Attempt& attempt, const Assignment& a, const TrainOptions& o) {
  const double step_seconds = w.setup.fake_epoch_seconds / kFakeStepsPerEpoch;
  for (int64_t e = 1; e <= o.epochs; ++e) {
    for (int s = 0; s < kFakeStepsPerEpoch; ++s) {
      attempt.at_step();
      std::this_thread::sleep_for(std::chrono::duration<double>(step_seconds));
      bool stop = w.setup.stop_requested && w.setup.stop_requested();
      if (w.collectives) {
        std::vector<at::Tensor> vote{torch::full({1}, stop ? 1.0f : 0.0f)};
        w.collectives->all_reduce_sum(vote);
        stop = vote[0].item<float>() > 0;
      }
      if (stop) return "interrupted";
    }
    const double map = fake_map(a.params, e, o.epochs);
    const nlohmann::json line = {{"epoch", e}, {"train_loss", 1.0 / static_cast<double>(e)}, {"lr", o.lr},
                                 {"seconds", w.setup.fake_epoch_seconds}, {"map", map},
                                 {"map_head", map}, {"map_middle", map}, {"map_tail", map}};
    if (!report_epoch(w, attempt, a, line.dump())) return e < o.epochs ? "pruned" : "completed";
  }
  return "completed";
}

std::string run_real_trial(Worker& w, Attempt& attempt, const Assignment& a, const TrainOptions& o) {
  TrainHooks hooks;
  hooks.quiet = true;
  hooks.collectives = w.collectives.get();
  hooks.images = &w.images;
  hooks.stop_requested = w.setup.stop_requested;
  hooks.at_step = [&] { attempt.at_step(); };
  hooks.on_epoch = [&](const EpochResult& e) { return report_epoch(w, attempt, a, epoch_json_line(e)); };
  const TrainResult result = train_lmclip(o, hooks);
  if (result.end == RunEnd::Stopped) return "pruned";
  if (result.end == RunEnd::Interrupted) return "interrupted";
  return "completed";
}

// ---------------------------------------------------------------- command trials

// The environment of this rank's process (command_trial.h): the trial, and torch.distributed's
// env:// rendezvous over the group.
std::vector<std::pair<std::string, std::string>> command_environment(const Worker& w, const Assignment& a,
                                                                     const std::string& dir, int port) {
  std::vector<std::pair<std::string, std::string>> env = {
      {"LMSWEEP_PARAMS", a.params.dump()},         {"LMSWEEP_TRIAL", std::to_string(a.number)},
      {"LMSWEEP_SEED", std::to_string(a.seed)},     {"LMSWEEP_ATTEMPT", std::to_string(a.attempt)},
      {"LMSWEEP_TRIAL_DIR", dir},                   {"LMSWEEP_RESUME_DIR", dir + "/resume"},
      {"MASTER_ADDR", w.pg_options.single_host ? "127.0.0.1" : w.ranks[0].value("host", std::string())},
      {"MASTER_PORT", std::to_string(port)},        {"WORLD_SIZE", std::to_string(w.k)},
      {"RANK", std::to_string(w.group_rank)}};
  int local_rank = 0, local_size = 0;
  std::string gpus;
  for (const auto& r : w.ranks) {
    if (r.value("host", std::string()) != w.host) continue;
    local_rank += r.value("rank", 0) < w.group_rank;
    ++local_size;
    if (r.value("gpu", -1) >= 0) gpus += (gpus.empty() ? "" : ",") + std::to_string(r.value("gpu", -1));
  }
  env.emplace_back("LOCAL_RANK", std::to_string(local_rank));
  env.emplace_back("LOCAL_WORLD_SIZE", std::to_string(local_size));
  if (!gpus.empty()) env.emplace_back("CUDA_VISIBLE_DEVICES", gpus);
  return env;
}

ProcessSpec command_spec(const Worker& w, const Assignment& a, int port) {
  const std::string dir = command_trial_dir(w.setup.trial_root, w.setup.study, a.number);
  std::filesystem::create_directories(std::filesystem::path(dir) / "resume");
  ProcessSpec spec;
  spec.argv = CommandTemplate::parse(w.setup.command).substitute(a.params);
  spec.argv[0] = find_program(spec.argv[0]);
  spec.env = command_environment(w, a, dir, port);
  const std::string suffix = w.group_rank == 0 ? "" : fmt::format(".rank{}", w.group_rank);
  spec.stdout_log = fmt::format("{}/stdout{}.log", dir, suffix);
  spec.stderr_log = fmt::format("{}/stderr{}.log", dir, suffix);
  return spec;
}

// The first objective the epoch line lacks as a number; nullptr when it has them all.
const std::string* missing_objective(const nlohmann::json& line, const std::vector<std::string>& objectives) {
  for (const auto& o : objectives)
    if (!line.contains(o) || !line[o].is_number()) return &o;
  return nullptr;
}

// The leader's check of an epoch line: it carries every objective, as a number.
void check_objectives(const nlohmann::json& line, const std::vector<std::string>& objectives) {
  const std::string* missing = missing_objective(line, objectives);
  if (!missing) return;
  std::string keys;
  for (auto it = line.begin(); it != line.end(); ++it) keys += (keys.empty() ? "" : ", ") + it.key();
  throw Error(fmt::format("the command's epoch line has no number '{}' (an objective of the sweep); its keys: {}",
                          *missing, keys));
}

// How the process ended, as a status; throws with its stderr's last line when it failed.
std::string command_exit(Worker& w, Attempt& attempt, const Assignment& a, ChildProcess& child, const ProcessSpec& spec) {
  while (!child.poll_exit()) {
    attempt.beat();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (child.succeeded()) return "completed";
  // A member's process dies when the leader's was pruned: the leader's word comes first.
  if (!w.leader)
    for (int i = 0; i < 50; ++i) {
      if (const auto d = w.link->poll_decision(a.trial_id); d && !*d) return "pruned";
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  const std::string last = last_line_of(spec.stderr_log);
  throw Error(fmt::format("command {}: {} (log: {})", child.describe_exit(),
                          last.empty() ? "nothing on stderr" : last, spec.stderr_log));
}

// Stops the process; the leader then records the epoch lines it printed before it ended that
// were not read yet (a prune decided while later epochs were already in the pipe, what its
// SIGTERM handler printed), so the database holds every epoch line of stdout.log. The
// coordinator's reply is moot: the program has ended, and a pruned trial stays pruned (ASHA
// repeats its decision for a pruned trial, as when rebuilding from the database).
void stop_and_record_the_rest(Worker& w, const Assignment& a, ChildProcess& child) {
  constexpr double kLateOutputSeconds = 2.0;  // for a process outside the group holding the pipe
  child.terminate(w.setup.stop_grace_seconds);
  if (!w.leader) return;
  for (const auto& line : child.remaining_lines(kLateOutputSeconds)) {
    const auto j = parse_epoch_output(line);
    if (!j || missing_objective(*j, w.setup.objectives)) continue;  // a stopped trial does not fail on it
    send_epoch(w, a, j->dump());
  }
}

// One rank's process of a command trial, from start to end (command_trial.h).
std::string run_command_trial(Worker& w, Attempt& attempt, const Assignment& a, int64_t epochs) {
  const int port = dist::broadcast_json(w.group_comm, 0, w.leader ? free_tcp_port() : 0).get<int>();
  const ProcessSpec spec = command_spec(w, a, port);
  ChildProcess child(spec);  // its destructor stops it when this throws
  const bool beat_on_output = w.setup.watchdog_seconds > 0;  // else only peers and stops end it
  while (true) {
    const auto line = child.read_line(0.1);
    if (line || !beat_on_output) attempt.beat();
    // The line in hand first: one that came just as a stop did is recorded too.
    if (!w.leader) {
      if (const auto d = w.link->poll_decision(a.trial_id); d && !*d) {
        stop_and_record_the_rest(w, a, child);
        return "pruned";
      }
    } else if (const auto j = line ? parse_epoch_output(*line) : std::nullopt) {
      check_objectives(*j, w.setup.objectives);
      if (!report_epoch(w, attempt, a, j->dump())) {
        stop_and_record_the_rest(w, a, child);
        return j->value("epoch", int64_t{0}) < epochs ? "pruned" : "completed";
      }
    }
    if (w.setup.stop_requested && w.setup.stop_requested()) {
      stop_and_record_the_rest(w, a, child);
      return "interrupted";
    }
    if (!line && child.output_ended()) return command_exit(w, attempt, a, child, spec);
  }
}

// Rank, host and pid of every rank of the group, known to every rank of it.
nlohmann::json group_ranks(MPI_Comm group_comm, int group_rank, const std::string& host, int gpu, int k) {
  nlohmann::json ranks = nlohmann::json::array();
  const nlohmann::json mine = {
      {"rank", group_rank}, {"host", host}, {"pid", static_cast<int64_t>(::getpid())}, {"gpu", gpu}};
  for (int r = 0; r < k; ++r) ranks.push_back(dist::broadcast_json(group_comm, r, mine));
  return ranks;
}

void set_up(Worker& w, MPI_Comm world) {
  int rank = 0;
  MPI_Comm_rank(world, &rank);
  w.k = w.setup.gpus_per_trial;
  w.group = rank / w.k;
  MPI_Comm_split(world, w.group, rank, &w.group_comm);
  MPI_Comm_rank(w.group_comm, &w.group_rank);
  w.leader = w.group_rank == 0;
  w.host = host_name();
  const int gpus = compat::cuda_device_count();
  const auto place = dist::node_placement(world);
  const bool on_gpu = places_on_gpus(gpus, w.setup.base.device, w.setup.trial == TrialKind::Command);
  w.gpu = device_slot(w.setup.trials_per_device, place.rank, place.size, on_gpu ? gpus : -1, w.host);
  if (w.gpu < 0 && gpus > 0) w.gpu = place.rank % gpus;  // a CPU sweep on a GPU node: as before
  w.ranks = group_ranks(w.group_comm, w.group_rank, w.host, w.gpu, w.k);
  w.link = std::make_unique<GroupLink>(w.group_comm);
  w.base = w.setup.base;
  if (w.base.threads == 0) {
    // "All cores" means this rank's share of its node: ranks beside each other must not
    // oversubscribe the cores (OpenMP's spinning threads then slow everyone down).
    const int cores = static_cast<int>(std::thread::hardware_concurrency());
    w.base.threads = std::max(1, cores / dist::node_placement(world).size);
  }
  const bool cuda = w.base.device.rfind("cuda", 0) == 0;
  // One GPU per rank, by node-local rank, current for this thread before any CUDA work
  // (the NCCL communicator below included).
  w.base.device = dist::rank_device(w.base.device, dist::node_placement(world).rank, compat::cuda_device_count());
  dist::use_device(w.base.device);
  w.pg_options.cuda = cuda && w.setup.fake_epoch_seconds < 0 && w.setup.trial == TrialKind::Lmclip;
  w.pg_options.single_host = dist::node_placement(w.group_comm).whole_comm_on_node;
  // A Gloo collective waits a little longer than the watchdog: the watchdog names the stall,
  // the timeout frees a rank the watchdog could not (Gloo has no abort).
  w.pg_options.timeout_seconds = static_cast<int>(std::ceil(
      (w.setup.watchdog_seconds > 0 ? w.setup.watchdog_seconds : kWatchdogFloorSeconds) + 5));
  w.build_collectives();
}

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

std::string command_trial_dir(const std::string& trial_root, const std::string& study, int64_t number) {
  return (std::filesystem::path(trial_root) / study / fmt::format("trial-{:05}", number)).string();
}

double fake_map(const nlohmann::json& params, int64_t epoch, int64_t epochs) {
  const uint64_t h = splitmix64(std::hash<std::string>{}(params.dump()));
  const double quality = to_unit_interval(h);  // in [0, 1)
  const double progress = 1.0 - std::exp(-3.0 * static_cast<double>(epoch) / static_cast<double>(epochs));
  return 0.2 + 0.7 * quality * progress;
}

int run_worker(const WorkerSetup& setup, MPI_Comm world, const dist::Channels& channels) {
  Worker w(setup, channels);
  set_up(w, world);
  int trials = 0;
  while (true) {
    nlohmann::json message;
    if (w.leader) {
      dist::send_json(channels.up, 0, kRequest, {{"group", w.group}, {"host", w.host}, {"ranks", w.ranks}});
      const dist::Received r = dist::receive_json(channels.down, 0, MPI_ANY_TAG);
      message = r.tag == kAssign ? r.message : nlohmann::json{{"shutdown", true}};
    }
    message = dist::broadcast_json(w.group_comm, 0, message);
    if (message.contains("shutdown")) break;
    const Assignment a = Assignment::from_json(message);
    ++trials;
    Attempt attempt(w, a);
    const RankOutcome outcome = attempt.run([&] {
      if (setup.trial == TrialKind::Command) return run_command_trial(w, attempt, a, w.base.epochs);
      const TrainOptions o = trial_options(w.base, a.params, a.seed, setup.study, a.number);
      return setup.fake_epoch_seconds >= 0 ? run_fake_trial(w, attempt, a, o) : run_real_trial(w, attempt, a, o);
    });
    // After a failure the group's c10d state is unknown: every rank builds a new group.
    if (outcome.status == "failed") w.build_collectives();
    if (w.leader)
      dist::send_json(channels.up, 0, kDone,
                      {{"trial_id", a.trial_id}, {"status", outcome.status}, {"error", outcome.error}});
    // After an interruption the coordinator, stopping too, answers the next request with
    // kShutdown.
  }
  w.reset_collectives();
  w.link.reset();
  MPI_Comm_free(&w.group_comm);
  return trials;
}

}  // namespace lmsweep::sweep
