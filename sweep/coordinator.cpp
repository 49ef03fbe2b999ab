#include "sweep/coordinator.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include <fmt/format.h>

#include "common/error.h"
#include "common/host.h"
#include "db/epoch_json.h"
#include "dist/mpi_channel.h"
#include "export/tensorboard/study_writer.h"
#include "sweep/crash_notes.h"
#include "sweep/protocol.h"
#include "sweep/tpe.h"

namespace lmsweep::sweep {
namespace {

std::string duration(double seconds) {
  const int64_t s = std::llround(std::max(0.0, seconds));
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

// SLURM_JOB_ID, with "+N" after a requeue (SLURM_RESTART_COUNT): the same job id with another
// restart count is an earlier incarnation of this job, dead by SLURM's word.
std::string slurm_job_tag() {
  const char* job = std::getenv("SLURM_JOB_ID");
  if (!job) return "";
  const char* restart = std::getenv("SLURM_RESTART_COUNT");
  return restart && std::string(restart) != "0" ? fmt::format("{}+{}", job, restart) : job;
}

// A holder known dead without waiting for its lease to go stale.
bool holder_dead(const db::LeaseInfo& held, const db::LeaseInfo& me) {
  if (held.host == me.host && !process_alive(held.pid)) return true;
  const auto job_of = [](const std::string& tag) { return tag.substr(0, tag.find('+')); };
  return !me.job.empty() && job_of(held.job) == job_of(me.job) && held.job != me.job;
}

// LM-CLIP's maps as percentages; a command trial's metrics as they are.
std::string show_value(double v, TrialKind kind = TrialKind::Command) {
  return kind == TrialKind::Lmclip ? fmt::format("{:.2f} %", v * 100) : fmt::format("{:.4g}", v);
}

// An epoch for the log: LM-CLIP's loss and maps, or a command trial's objectives.
std::string describe_epoch(const db::EpochRecord& e, const SweepConfig& cfg) {
  auto pct = [](const std::optional<double>& v) { return v ? fmt::format("{:.2f}", *v * 100) : std::string("-"); };
  if (cfg.trial == TrialKind::Lmclip)
    return fmt::format("loss {:.4f}  mAP {} (head {} / middle {} / tail {})", e.train_loss.value_or(0), pct(e.map),
                       pct(e.map_head), pct(e.map_middle), pct(e.map_tail));
  std::string out;
  for (const auto& o : cfg.objectives.empty() ? std::vector<std::string>{cfg.objective} : cfg.objectives) {
    const auto v = db::epoch_value(e, o);
    out += fmt::format("{}{} {}", out.empty() ? "" : "  ", o, v ? show_value(*v) : "-");
  }
  return out;
}

}  // namespace

double objective_value(const db::EpochRecord& e, const std::string& objective) {
  return db::epoch_value(e, objective).value_or(std::numeric_limits<double>::quiet_NaN());
}

Coordinator::Coordinator(SweepSetup setup, std::function<void(const std::string&)> log)
    : setup_(std::move(setup)), log_(std::move(log)) {}
Coordinator::~Coordinator() {
  if (!holds_lease_) return;
  // No process died: the notes file is empty, and no use to anyone.
  std::error_code ec;
  const std::string notes = crash_notes_path(setup_.db_path);
  if (std::filesystem::exists(notes, ec) && std::filesystem::file_size(notes, ec) == 0) remove_crash_notes(notes);
  try {
    store_->release_lease(lease_);
  } catch (const std::exception&) {
    // Another sweep took it over, or the database is gone: nothing of ours to release.
  }
}

void Coordinator::take_lease() {
  lease_.host = host_name();
  lease_.pid = ::getpid();
  lease_.job = slurm_job_tag();
  lease_.holder = fmt::format("{}:{}:{:.6f}", lease_.host, lease_.pid, db::unix_now());
  const double stale = setup_.config.lease_seconds;
  lease_.stale_after = stale;
  std::optional<db::LeaseInfo> previous;
  if (auto held = store_->lease(); held && holder_dead(*held, lease_)) {
    previous = store_->take_lease(lease_, 0);
  } else {
    // The holder's own promise: it renews six times within its stale_after.
    previous = store_->take_lease(lease_, held ? held->stale_after : stale);
  }
  holds_lease_ = true;
  lease_renewed_at_ = db::unix_now();
  if (previous)
    log_(fmt::format("took over the database lease of {} (last heard from {:.0f} s ago: that sweep is gone)",
                     previous->describe(), std::max(0.0, db::unix_now() - previous->heartbeat_at)));
}

void Coordinator::renew_lease_if_due() {
  if (db::unix_now() - lease_renewed_at_ < setup_.config.lease_seconds / 6) return;
  store_->renew_lease(lease_);
  lease_renewed_at_ = db::unix_now();
}

int64_t Coordinator::requeue_dead_job_trials(int64_t* failed) {
  const std::string notes_path = crash_notes_path(setup_.db_path);
  const auto running = store_->trials(study_id_, db::TrialStatus::Running);
  std::map<int64_t, CrashNote> blamed;
  for (const auto& n : read_crash_notes(notes_path))
    for (const auto& t : running)
      if (t.id == n.trial_id) blamed[t.id] = n;
  if (!running.empty()) remove_crash_notes(notes_path);
  *failed = 0;
  for (const auto& t : running) {
    // Without a note no process said why it died: every running trial is a suspect.
    if (!blamed.empty() && !blamed.count(t.id)) continue;
    const int n = setup_.config.max_attempts;
    std::string why = "no process left a note: killed (kill -9, the OOM killer) or a lost node";
    if (blamed.count(t.id)) {
      const auto& note = blamed.at(t.id);
      why = fmt::format("last: {} on rank {} of {}, pid {}", note.reason, note.rank, note.host, note.pid);
    }
    const std::string error = fmt::format(
        "its process died {} time{} while it ran (max_attempts = {}; {}): not rerun; fix the cause and rerun with "
        "--retry-failed", n, n == 1 ? "" : "s", n, why);
    if (store_->requeue_crashed(t.id, n, error)) {
      ++*failed;
      log_(fmt::format("trial {} failed: {}", t.number, error));
      to_tensorboard([&](auto& tb) { tb.trial_ended(store_->trial(t.id), db::TrialStatus::Failed); });
    }
  }
  return static_cast<int64_t>(running.size()) - *failed;
}

void Coordinator::prepare() {
  const auto& cfg = setup_.config;
  sampler_ = std::make_unique<PointSampler>(setup_.space, cfg);
  db::Store::Options options;
  options.journal = setup_.journal;
  store_ = std::make_unique<db::Store>(db::Store::open(setup_.db_path, options));
  take_lease();  // before anything is changed: a second sweep on this database stops here

  db::StudySpec spec;
  spec.name = cfg.name;
  spec.space_json = setup_.space.canonical();
  spec.config_json = setup_.base_options.dump();
  spec.method = to_string(cfg.method);
  spec.objective = cfg.objective;
  spec.seed = static_cast<int64_t>(cfg.seed);
  spec.planned_trials = sampler_->num_trials();
  spec.gpus_per_trial = cfg.gpus_per_trial;
  spec.scheduler = to_string(cfg.scheduler);
  spec.scheduler_json = nlohmann::json{{"grace", cfg.grace}, {"reduction", cfg.reduction}}.dump();
  const auto study = store_->create_or_get_study(spec);
  study_id_ = study.id;
  LMSWEEP_CHECK(study.config_json == spec.config_json || study.config_json == "{}",
                "study '{}' in {} was run with other training options ({}); use another [sweep] name or the same "
                "options", cfg.name, setup_.db_path, study.config_json);
  if (!study.planned_trials || *study.planned_trials < spec.planned_trials)
    store_->set_planned_trials(study_id_, spec.planned_trials);
  if (!setup_.tensorboard_dir.empty()) {
    // The HParams experiment now: a folder that cannot be written stops the sweep here, with
    // one line, before any trial runs. Metrics: the objectives, then LM-CLIP's.
    auto metrics = cfg.objectives.empty() ? std::vector<std::string>{cfg.objective} : cfg.objectives;
    if (cfg.trial == TrialKind::Lmclip)
      for (const auto& tag : tensorboard::lmclip_metric_tags()) metrics.push_back(tag);
    tensorboard_ = std::make_unique<tensorboard::TensorBoardStudyWriter>(setup_.tensorboard_dir);
    tensorboard_->begin(store_->study(study_id_), setup_.space, metrics);
  }

  // Trials left running by a dead job run again (from their checkpoint when there is one),
  // except one that was running each of max_attempts times its job died.
  int64_t crash_failed = 0;
  const int64_t requeued = requeue_dead_job_trials(&crash_failed);
  store_->requeue(study_id_, db::TrialStatus::Running);
  const int64_t retried = setup_.retry_failed ? store_->requeue(study_id_, db::TrialStatus::Failed) : 0;
  // TPE's points depend on the results: its trials are added when they are handed out.
  if (cfg.method != SamplingMethod::Tpe) {
    auto tx = store_->transaction();
    for (int64_t k = 0; k < sampler_->num_trials(); ++k) {
      if (store_->find_trial(study_id_, k)) continue;
      store_->add_trial(study_id_, k, to_json(sampler_->point(k)).dump(), static_cast<int64_t>(sampler_->seed(k)));
    }
    tx.commit();
  }
  int64_t completed = 0, kept = 0;
  for (const auto& t : store_->trials(study_id_)) {
    next_number_ = std::max(next_number_, t.number + 1);
    if (t.number >= sampler_->num_trials()) continue;
    if (t.status == db::TrialStatus::Pending || t.status == db::TrialStatus::Interrupted) queue_.push_back(t.id);
    else ++kept;
    if (t.status == db::TrialStatus::Completed) ++completed;
  }
  if (cfg.method == SamplingMethod::Tpe) load_warm_start();
  if (cfg.scheduler == SchedulerKind::Asha) {
    AshaOptions ao;
    ao.grace = cfg.grace;
    ao.reduction = cfg.reduction;
    ao.max_epochs = setup_.epochs;
    ao.mode = Mode::Max;
    std::vector<EpochResult> history;
    for (const auto& t : store_->trials(study_id_))
      for (const auto& e : store_->epochs(t.id))
        if (db::epoch_value(e, cfg.objective))  // epochs not evaluated decide nothing (eval_epochs)
          history.push_back({t.number, static_cast<int>(e.epoch), objective_value(e, cfg.objective)});
    asha_ = std::make_unique<AshaScheduler>(AshaScheduler::rebuild(ao, history));
  }
  log_(fmt::format("sweep '{}': {} trials ({} {}, seed {}), {} rank group(s) of {}; {} to run{}{}", cfg.name,
                   sampler_->num_trials(), to_string(cfg.method), setup_.space.size() == 1 ? "dimension" : "dimensions",
                   cfg.seed, setup_.num_groups, cfg.gpus_per_trial,
                   queue_.size() + static_cast<size_t>(std::max<int64_t>(0, sampler_->num_trials() - next_number_)),
                   kept ? fmt::format(", {} kept from earlier runs ({} completed)", kept, completed) : "",
                   requeued ? fmt::format(", {} requeued after a stopped job", requeued) : "") +
       (retried ? fmt::format(", {} failed trial(s) to run again (--retry-failed)", retried) : ""));
}

void Coordinator::run(const dist::Channels& channels) {
  started_at_ = db::unix_now();
  int active = setup_.num_groups;
  while (active > 0) {
    renew_lease_if_due();
    const auto received = dist::receive_json_for(channels.up, MPI_ANY_SOURCE, MPI_ANY_TAG, 1.0);
    if (!stopping_ && stop_check_ && stop_check_()) {
      stopping_ = true;
      log_(fmt::format("[{}] stop requested: no new trials; running ones save their state and stop",
                       setup_.config.name));
    }
    if (received) {
      const dist::Received& r = *received;
      switch (r.tag) {
        case kHeartbeat: store_->heard_from(r.message.at("trial_id").get<int64_t>()); break;
        case kRequest:
          if (on_request(channels.down, r.source, r.message)) --active;
          break;
        case kEpoch: on_epoch(channels.down, r.source, r.message); break;
        case kDone: on_done(r.message); break;
        default: log_(fmt::format("coordinator: ignoring a message with tag {} from rank {}", r.tag, r.source));
      }
    }
    // Requests held back by the window: a trial ended (or the sweep stops) since.
    auto held = std::move(waiting_);
    waiting_.clear();
    for (const auto& [source, m] : held)
      if (on_request(channels.down, source, m)) --active;
  }
  progress(stopping_ ? "stopped" : "finished");
}

bool Coordinator::on_request(MPI_Comm down, int source, const nlohmann::json& m) {
  if (queue_.empty() && !stopping_ && next_number_ < sampler_->num_trials()) {
    if (!window_allows(next_number_)) {
      waiting_.emplace_back(source, m);  // answered once the trials the window needs have ended
      return false;
    }
    queue_.push_back(suggest_next_trial());
  }
  if (queue_.empty() || stopping_) {
    dist::send_json(down, source, kShutdown, nlohmann::json::object());
    return true;
  }
  const int64_t trial_id = queue_.front();
  queue_.erase(queue_.begin());
  const int group = m.value("group", 0);
  store_->start_trial(trial_id, group, m.value("host", std::string()));
  std::vector<db::RankInfo> ranks;
  for (const auto& r : m.value("ranks", nlohmann::json::array()))
    ranks.push_back({r.value("rank", 0), r.value("host", std::string()), r.value("pid", int64_t{0}), 0});
  store_->set_trial_ranks(trial_id, ranks);
  const auto t = store_->trial(trial_id);
  Assignment a;
  a.trial_id = trial_id;
  a.number = t.number;
  a.seed = static_cast<uint64_t>(t.seed);
  a.attempt = t.attempts;
  a.params = nlohmann::json::parse(t.params_json);
  running_[trial_id] = Running{t.number, group, db::unix_now(), 0, true};
  to_tensorboard([&](auto& tb) { tb.trial_started(t, t.params_json); });
  dist::send_json(down, source, kAssign, a.to_json());
  log_(fmt::format("trial {} -> group {} ({}){}", t.number, group, a.params.dump(),
                   t.attempts > 1 ? fmt::format(", attempt {}", t.attempts) : ""));
  return false;
}

namespace {

bool ended(db::TrialStatus s) {
  return s == db::TrialStatus::Completed || s == db::TrialStatus::Pruned || s == db::TrialStatus::Failed;
}

}  // namespace

bool Coordinator::window_allows(int64_t k) {
  const int w = setup_.config.window;
  if (w == 0) return true;
  for (const auto& t : store_->trials(study_id_))
    if (t.number < k - w && !ended(t.status)) return false;
  return true;
}

namespace {

// What TPE learns from one trial: its state and its value(s). Completed: the best epoch (as
// `best` ranks them), or with several objectives the last epoch that recorded them all;
// pruned: the last value it reached. nullopt: nothing to learn (no value yet, failed).
std::optional<TpeObservation> observe(const db::TrialInfo& t, const std::vector<db::EpochRecord>& epochs,
                                      const SweepConfig& cfg, bool liar) {
  TpeObservation o;
  switch (t.status) {
    case db::TrialStatus::Completed: o.state = TpeObservation::State::Completed; break;
    case db::TrialStatus::Pruned: o.state = TpeObservation::State::Pruned; break;
    case db::TrialStatus::Failed: return std::nullopt;  // as Optuna: a failed trial says nothing of its point
    default: o.state = TpeObservation::State::Running;  // running, or about to run again: liars
  }
  if (liar) o.state = TpeObservation::State::Running;
  o.point = point_from_json(nlohmann::json::parse(t.params_json));
  o.number = t.number;
  o.epochs = static_cast<int64_t>(epochs.size());
  bool any = false;
  for (const auto& e : epochs) {
    const double v = objective_value(e, cfg.objective);
    if (std::isnan(v)) continue;
    o.value = !any || o.state == TpeObservation::State::Pruned ? v : std::max(o.value, v);
    any = true;
    if (cfg.objectives.size() < 2) continue;
    std::vector<double> values;
    for (const auto& name : cfg.objectives)
      if (const double x = objective_value(e, name); !std::isnan(x)) values.push_back(x);
    if (values.size() == cfg.objectives.size()) o.values = std::move(values);
  }
  if (o.state != TpeObservation::State::Running && !any) return std::nullopt;
  return o;
}

}  // namespace

std::vector<TpeObservation> Coordinator::tpe_history(int64_t k) {
  const int w = setup_.config.window;
  std::vector<TpeObservation> history = warm_history_;
  for (const auto& t : store_->trials(study_id_)) {
    if (t.number >= k) continue;
    // The window: trials k-w .. k-1 count as liars whatever they have become, so that the
    // suggestion does not depend on when they end.
    const bool liar = w > 0 && t.number >= k - w;
    if (auto o = observe(t, store_->epochs(t.id), setup_.config, liar)) history.push_back(std::move(*o));
  }
  return history;
}

void Coordinator::load_warm_start() {
  const auto& name = setup_.config.warm_start;
  if (name.empty()) return;
  const auto other = store_->find_study(name);
  LMSWEEP_CHECK(other, "[sweep] warm_start = {}: {} holds no such study; name one of its studies", name,
                setup_.db_path);
  const auto theirs = SearchSpace::from_json(nlohmann::json::parse(other->space_json));
  std::string mine_names, their_names;
  for (const auto& d : setup_.space.dimensions()) mine_names += (mine_names.empty() ? "" : ", ") + d.name;
  for (const auto& d : theirs.dimensions()) their_names += (their_names.empty() ? "" : ", ") + d.name;
  LMSWEEP_CHECK(mine_names == their_names,
                "[sweep] warm_start = {}: its dimensions ({}) are not this study's ({}); warm-start from a study of "
                "the same space", name, their_names, mine_names);
  const auto trials = store_->trials(other->id);
  for (const auto& t : trials) {
    if (t.status != db::TrialStatus::Completed && t.status != db::TrialStatus::Pruned) continue;
    auto o = observe(t, store_->epochs(t.id), setup_.config, false);
    if (!o || !fits(setup_.space, o->point)) continue;  // a value outside this space's ranges or choices
    o->number = t.number - static_cast<int64_t>(trials.size());  // older than any trial of this study
    warm_history_.push_back(std::move(*o));
  }
  log_(fmt::format("warm start: {} trial(s) of study '{}' in TPE's history", warm_history_.size(), name));
}

int64_t Coordinator::suggest_next_trial() {
  const int64_t k = next_number_++;
  const auto history = tpe_history(k);
  const Point p = suggest_tpe(setup_.space, history, tpe_options(setup_.config), sampler_->seed(k), sampler_->point(k));
  const int64_t id = store_->add_trial(study_id_, k, to_json(p).dump(), static_cast<int64_t>(sampler_->seed(k))).id;
  // What it saw: the trials with values, and the liars.
  nlohmann::json seen = {{"finished", nlohmann::json::array()}, {"liars", nlohmann::json::array()},
                         {"window", setup_.config.window}};
  int64_t warm = 0;
  for (const auto& o : history) {
    if (o.number < 0) ++warm;  // warm-start trials: counted, not listed
    else seen[o.state == TpeObservation::State::Running ? "liars" : "finished"].push_back(o.number);
  }
  if (!setup_.config.warm_start.empty()) seen["warm_start"] = {{"study", setup_.config.warm_start}, {"trials", warm}};
  store_->set_suggestion(id, seen.dump());
  return id;
}

void Coordinator::on_epoch(MPI_Comm down, int source, const nlohmann::json& m) {
  const int64_t trial_id = m.at("trial_id");
  const std::string line = m.at("line");
  const auto parsed = db::parse_epoch_line(line);
  auto& run = running_[trial_id];
  if (run.first_epoch) {
    // A restarted trial rewrites its epochs from where it resumed: drop later stale ones.
    store_->truncate_epochs(trial_id, parsed.record.epoch - 1);
    run.first_epoch = false;
  }
  store_->record_epoch(trial_id, parsed.record, parsed.class_ap);
  store_->heard_from(trial_id);
  to_tensorboard([&](auto& tb) { tb.epoch(store_->trial(trial_id), parsed.record); });
  run.last_epoch = parsed.record.epoch;
  // When stopping, trials stop at their next step by themselves (their own signal), not here.
  bool keep_going = true;
  std::string note;
  // An epoch that was not evaluated (eval_every, eval_epochs = rungs) has nothing to decide on;
  // the rung epochs always are.
  const auto value = db::epoch_value(parsed.record, setup_.config.objective);
  if (asha_ && value) {
    const auto d = asha_->on_epoch_result(run.number, static_cast<int>(parsed.record.epoch), *value);
    if (d.action == Action::Stop && parsed.record.epoch < setup_.epochs) {
      keep_going = false;
      note = "  pruned by ASHA: " + d.describe();
    }
  }
  dist::send_json(down, source, kDecision, nlohmann::json{{"continue", keep_going}});
  log_(fmt::format("trial {} epoch {}/{}  {}{}", run.number, parsed.record.epoch, setup_.epochs,
                   describe_epoch(parsed.record, setup_.config), note));
}

void Coordinator::on_done(const nlohmann::json& m) {
  const int64_t trial_id = m.at("trial_id");
  const std::string status = m.at("status");
  auto it = running_.find(trial_id);
  const int64_t number = it != running_.end() ? it->second.number : -1;
  if (it != running_.end()) {
    trial_seconds_this_run_ += db::unix_now() - it->second.started;
    running_.erase(it);
  }
  if (status == "completed") store_->complete_trial(trial_id);
  else if (status == "pruned") store_->prune_trial(trial_id);
  else if (status == "interrupted") {
    store_->interrupt_trial(trial_id);
    stopping_ = true;  // a group was stopped: the job is going down
  }
  else {
    store_->fail_trial(trial_id, m.value("error", std::string("unknown error")));
    ++failed_this_run_;
    if (first_error_.empty()) first_error_ = fmt::format("trial {}: {}", number, m.value("error", std::string()));
  }
  ++done_this_run_;
  to_tensorboard([&](auto& tb) {
    const auto t = store_->trial(trial_id);
    tb.trial_ended(t, t.status);
  });
  progress(fmt::format("trial {} {}{}", number, status,
                       status == "failed" ? ": " + m.value("error", std::string()) : std::string()));
}

void Coordinator::to_tensorboard(const std::function<void(tensorboard::TensorBoardStudyWriter&)>& write) {
  if (!tensorboard_) return;
  try {
    write(*tensorboard_);
  } catch (const std::exception& e) {
    log_(fmt::format("TensorBoard: {}; no more event files in this run (the sweep goes on; `lmsweep export --format "
                     "tensorboard` writes them all from the database)", e.what()));
    tensorboard_.reset();
  }
}

void Coordinator::progress(const std::string& event) {
  const auto c = store_->status_counts(study_id_);
  const auto best = store_->best_trials(study_id_, db::BestQuery{setup_.config.objective, 1, false});
  std::string best_text = "none yet";
  if (!best.empty())
    best_text = fmt::format("{} {} (trial {}, epoch {})", setup_.config.objective, show_value(best[0].value, setup_.config.trial),
                            best[0].trial.number, best[0].epoch.epoch);
  const int64_t remaining = c.pending + c.running + c.interrupted;
  std::string eta = "-";
  if (done_this_run_ > 0 && remaining > 0) {
    const double per_trial = trial_seconds_this_run_ / static_cast<double>(done_this_run_);
    eta = duration(per_trial * static_cast<double>(remaining) / std::max(1, setup_.num_groups));
  } else if (remaining == 0) {
    eta = "0s";
  }
  log_(fmt::format("[{}] {}: {}/{} done (completed {}, pruned {}, failed {}), running {}, pending {}; best {}; "
                   "elapsed {}, ETA {}",
                   setup_.config.name, event, c.completed + c.pruned + c.failed, c.total(), c.completed, c.pruned,
                   c.failed, c.running, c.pending + c.interrupted, best_text, duration(db::unix_now() - started_at_),
                   eta));
}

}  // namespace lmsweep::sweep
