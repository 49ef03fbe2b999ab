#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/error.h"
#include "common/files.h"
#include "loss/losses.h"
#include "train/evaluate.h"
#include "train/resume_state.h"
#include "train/run.h"
#include "train/step.h"

namespace lmsweep {

std::shared_ptr<const ImageSet> ImageCache::get(const std::string& data_root, const Split& split, int64_t size,
                                                int threads, const ImageCacheOptions& cache) {
  const std::string key = fmt::format("{}|{}|{}|{}", data_root, split.file, split.entries.size(), size);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sets_.find(key);
  if (it != sets_.end()) return it->second;
  CacheReport report;
  auto set = load_images_shared(data_root, split, size, threads, cache, &report);
  const std::string line = describe(report, *set) + " (" + split.file + ")";
  if (log_) log_(line); else std::cout << line << std::endl;
  sets_.emplace(key, set);
  return set;
}

namespace {

using Clock = std::chrono::steady_clock;

std::string format_duration(double seconds) {
  const int64_t s = std::llround(std::max(0.0, seconds));
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

std::string percent(const std::optional<double>& v) { return v ? fmt::format("{:.2f}", *v * 100) : "-"; }

}  // namespace

std::string epoch_json_line(const EpochResult& e) {
  // An epoch not evaluated has no metric keys at all: the database records them as absent.
  nlohmann::json j = e.evaluated ? to_json(e.metrics) : nlohmann::json{{"evaluated", false}};
  j["epoch"] = e.epoch;
  j["train_loss"] = e.train_loss;
  j["lr"] = e.lr;
  j["seconds"] = e.seconds;
  j["images"] = e.images;
  if (!e.class_names.empty()) j["class_names"] = e.class_names;
  if (!e.class_train_count.empty()) j["class_train_count"] = e.class_train_count;
  return j.dump();
}

LmClipLossOptions loss_options(const TrainOptions& o) {
  LmClipLossOptions l;
  l.kind = parse_loss_kind(o.loss);
  l.lambda = o.lambda;
  l.bal.gamma_neg = o.gamma_neg;
  l.bal.gamma_pos = o.gamma_pos;
  l.bal.clip = o.clip;
  l.bal.label_smoothing = o.label_smoothing;
  l.bal.use_class_weights = o.class_weights;
  validate(l);
  return l;
}

EvalMetrics evaluate_epoch(TrainRun& run) {
  run.embedding.write_back();
  const auto scores = score_images(run.model, run.data.test_pixels, run.data.prompts,
                                   ImageNormalization::from_name(run.options.normalize),
                                   run.options.eval_batch_size, run.device, run.group, run.options.eval_bf16());
  // Every rank scored its slice of the test split; the metrics are computed once, by the leader
  // (the others' are empty: only the leader records or reports them).
  if (!run.leader()) return EvalMetrics{};
  return evaluate_scores(scores, run.data.test_hot, &run.data.groups);
}

namespace {

// The loop's bookkeeping: the best epochs so far, what the run has done.
struct Progress {
  TrainResult result;
  double run_seconds = 0;
  int64_t run_epochs = 0;
  ResumeState state(int64_t next_epoch) const {
    ResumeState s;
    s.next_epoch = next_epoch;
    s.best_map = result.best_map;
    s.best_tail = result.best_tail;
    s.best_map_epoch = result.best_map_epoch;
    s.best_tail_epoch = result.best_tail_epoch;
    return s;
  }
};

void check_finite(const EpochLoss& loss, int64_t epoch) {
  const int64_t bad = loss.first_nonfinite_step();
  LMSWEEP_CHECK(bad < 0, "the training loss became {} at epoch {} step {}: lower --lr or check --label-smoothing / "
                "--gamma-neg", "nan or inf", epoch + 1, bad + 1);
}

// After an epoch's evaluation: best weights, the resume state, --metrics-out.
void record_epoch(TrainRun& run, const EpochResult& er, Progress& p) {
  const TrainOptions& o = run.options;
  const bool files = !o.checkpoint_dir.empty() && run.leader();
  if (er.evaluated && er.metrics.map > p.result.best_map) {
    p.result.best_map = er.metrics.map;
    p.result.best_map_epoch = er.epoch;
    if (files) save_weights(run, "best_map.pt");
  }
  if (er.evaluated && er.metrics.map_tail && *er.metrics.map_tail > p.result.best_tail) {
    p.result.best_tail = *er.metrics.map_tail;
    p.result.best_tail_epoch = er.epoch;
    if (files) save_weights(run, "best_map_tail.pt");
  }
  if (files) save_state(run, p.state(er.epoch));
  if (!o.metrics_out.empty() && run.leader())
    write_text_file(o.metrics_out, epoch_json_line(er) + "\n", "--metrics-out", /*append=*/true);
}

std::string epoch_line(const EpochResult& er, double eta) {
  if (!er.evaluated)
    return fmt::format("epoch {:>3}/{}  loss {:.4f}  (not evaluated)  lr {:.3g}  {:.1f}s  ETA {}", er.epoch, er.epochs,
                       er.train_loss, er.lr, er.seconds, format_duration(eta));
  return fmt::format("epoch {:>3}/{}  loss {:.4f}  mAP {} (head {} / middle {} / tail {})  lr {:.3g}  {:.1f}s  ETA {}",
                     er.epoch, er.epochs, er.train_loss, percent(er.metrics.map), percent(er.metrics.map_head),
                     percent(er.metrics.map_middle), percent(er.metrics.map_tail), er.lr, er.seconds,
                     format_duration(eta));
}

}  // namespace

TrainResult train_lmclip(const TrainOptions& o, const TrainHooks& hooks) {
  auto run_ptr = set_up_run(o, hooks.collectives, hooks.images);
  TrainRun& run = *run_ptr;
  auto log = [&](const std::string& line) {
    if (!run.leader() || hooks.quiet) return;
    if (hooks.log) hooks.log(line); else std::cout << line << std::endl;
  };
  ResumeState st;
  if (!o.checkpoint_dir.empty()) std::filesystem::create_directories(o.checkpoint_dir);
  if (o.resume && load_state(run, st))
    log(fmt::format("resumed from {} at epoch {} step {}", state_path(o), st.next_epoch + 1, st.next_step));
  const RunData& d = run.data;
  log(fmt::format("training {} on {} images ({} classes: {} head / {} middle / {} tail), test {} images, {} "
                  "epochs, batch {}{}, {}{}",
                  run.model->config().describe(), d.train_size, d.classes, d.groups.head.size(),
                  d.groups.middle.size(), d.groups.tail.size(), d.test.entries.size(), o.epochs, o.batch_size,
                  run.world > 1 ? fmt::format(" over {} ranks", run.world) : "", run.device.str(),
                  run.bf16 ? ", bf16" : ""));

  Progress p;
  p.result.best_map = st.best_map;
  p.result.best_tail = st.best_tail;
  p.result.best_map_epoch = st.best_map_epoch;
  p.result.best_tail_epoch = st.best_tail_epoch;
  StopVote stop_vote(run.group, run.device);
  for (int64_t epoch = st.next_epoch; epoch < o.epochs; ++epoch) {
    const auto t0 = Clock::now();
    const EpochPlan plan = plan_epoch(run, epoch);
    run.set_lr(plan.lr);
    const bool resumed = epoch == st.next_epoch && st.next_step > 0;
    const int64_t first_step = resumed ? st.next_step : 0;
    double count = resumed ? st.count : 0;
    const double resumed_seconds = resumed ? st.epoch_seconds : 0;
    EpochLoss loss_sum(run.device, resumed ? st.loss_sum : 0);
    run.model->train();
    for (int64_t step = first_step; step < plan.steps; ++step) {
      if (stop_vote(hooks.stop_requested && hooks.stop_requested())) {
        run.embedding.write_back();
        if (!o.checkpoint_dir.empty() && run.leader()) {
          ResumeState s = p.state(epoch);
          s.next_step = step;
          s.loss_sum = loss_sum.sum();
          s.count = count;
          s.epoch_seconds = resumed_seconds + std::chrono::duration<double>(Clock::now() - t0).count();
          save_state(run, s);
        }
        log(fmt::format("interrupted at epoch {} step {}/{}{}", epoch + 1, step, plan.steps,
                        o.checkpoint_dir.empty() ? "" : "; state saved"));
        p.result.end = RunEnd::Interrupted;
        return p.result;
      }
      if (hooks.at_step) hooks.at_step();
      const at::Tensor loss = train_step(run, plan, step);
      const int64_t batch = batch_slice(run, step).size;
      loss_sum.add(loss, batch, step);
      count += static_cast<double>(batch);
    }
    check_finite(loss_sum, epoch);

    EpochResult er;
    er.epoch = epoch + 1;
    er.epochs = o.epochs;
    er.train_loss = count > 0 ? loss_sum.sum() / count : 0;
    er.lr = plan.lr;
    er.images = static_cast<int64_t>(count);
    er.evaluated = o.evaluates(er.epoch);
    if (er.evaluated) er.metrics = evaluate_epoch(run);
    if (epoch == st.next_epoch) {
      er.class_names = d.labels.names;
      er.class_train_count = class_counts(d.train, d.classes);
    }
    er.seconds = resumed_seconds + std::chrono::duration<double>(Clock::now() - t0).count();
    p.result.epochs.push_back(er);
    p.run_seconds += er.seconds;
    ++p.run_epochs;
    record_epoch(run, er, p);
    log(epoch_line(er, p.run_seconds / static_cast<double>(p.run_epochs) * static_cast<double>(o.epochs - er.epoch)));
    if (hooks.on_epoch && !hooks.on_epoch(er)) {
      p.result.end = RunEnd::Stopped;
      return p.result;
    }
  }
  if (!o.checkpoint_dir.empty() && run.leader()) save_weights(run, "last.pt");
  return p.result;
}

}  // namespace lmsweep
