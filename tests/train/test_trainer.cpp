// The trainer in process (train_lmclip), on the built-in synthetic data with tiny random-weight
// CLIPs on CPU: --resume continues exactly as if never stopped (after an epoch, and mid-epoch),
// the model learns, and --metrics-out writes one complete JSON line per epoch.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "data/dataset.h"
#include "data/synthetic.h"
#include "launcher/lmsweep_process.h"
#include "model/checkpoint.h"
#include "support/shared_data.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace lmsweep;
using lmsweep::testing::KeepIfFailed;
using lmsweep::testing::remove_unless_failed;
using lmsweep::testing::temp_dir;

namespace {

const char* kTinyArch = "vit:res=32,patch=8,width=32,layers=1,embed=16,text-width=32,text-layers=1,vocab=514";

SyntheticDataset synthetic(const fs::path& dir, int64_t train_images, int64_t test_images) {
  SyntheticOptions so;
  so.out_dir = dir.string();
  so.train_images = train_images;
  so.test_images = test_images;
  so.seed = 0;
  return write_synthetic_dataset(so);
}

TrainOptions options_for(const SyntheticDataset& ds) {
  TrainOptions o;
  o.arch = kTinyArch;
  o.data_root = ds.data_root;
  o.train = ds.train_split;
  o.test = ds.test_split;
  o.labels = ds.labels_file;
  o.epochs = 4;
  o.batch_size = 16;
  o.lr = 5e-4;
  o.sampling = "weighted";
  o.flip = 0.5;
  o.seed = 11;
  // One thread: LibTorch's OpenMP threads spin at every op, and on a busy machine (ctest -j, other
  // builds) two threads made these tiny runs ~40x slower (1 s -> 38 s measured).
  o.threads = 1;
  // Label smoothing off: with it, BAL's focal weight of a clipped negative is pow(< 0, gamma_neg),
  // NaN, which a random tiny model meets at its first step (TrainRunLoss below pins that bug).
  o.label_smoothing = 0;
  return o;
}

// A --metrics-out file's lines.
std::vector<json> json_lines(const std::string& path) {
  std::istringstream in(lmsweep::testing::read_text_file(path));
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  return lines;
}

// Largest absolute difference between two saved CLIPs, name for name (every name in both).
double max_weight_difference(const fs::path& a, const fs::path& b) {
  const StateDict sa = read_state_dict(a.string()), sb = read_state_dict(b.string());
  EXPECT_EQ(sa.tensors.size(), sb.tensors.size());
  EXPECT_GT(sa.tensors.size(), 10u);
  double worst = 0;
  for (const auto& [name, t] : sa.tensors) {
    const at::Tensor* u = sb.find(name);
    if (!u) {
      ADD_FAILURE() << name << " missing in " << b;
      continue;
    }
    EXPECT_EQ(t.sizes(), u->sizes()) << name;
    if (t.sizes() != u->sizes()) continue;
    worst = std::max(worst, (t.to(at::kDouble) - u->to(at::kDouble)).abs().max().item<double>());
  }
  return worst;
}

// Epoch results of the interrupted-then-resumed run against those of the uninterrupted one.
void expect_same_epochs(const std::vector<EpochResult>& resumed, const std::vector<EpochResult>& full) {
  ASSERT_EQ(resumed.size(), full.size());
  for (size_t i = 0; i < full.size(); ++i) {
    SCOPED_TRACE("epoch " + std::to_string(full[i].epoch));
    EXPECT_EQ(resumed[i].epoch, full[i].epoch);
    EXPECT_DOUBLE_EQ(resumed[i].lr, full[i].lr);
    EXPECT_EQ(resumed[i].images, full[i].images);
    EXPECT_NEAR(resumed[i].train_loss, full[i].train_loss, 1e-6 * std::abs(full[i].train_loss));
    EXPECT_NEAR(resumed[i].metrics.map, full[i].metrics.map, 1e-6);
    ASSERT_EQ(resumed[i].metrics.ap.size(), full[i].metrics.ap.size());
    for (size_t c = 0; c < full[i].metrics.ap.size(); ++c)
      EXPECT_NEAR(resumed[i].metrics.ap[c], full[i].metrics.ap[c], 1e-6) << "class " << c;
  }
}

class TrainRunResume : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_dir("train_resume");
    data_ = synthetic(dir_ / "synth", 120, 60);
    // The uninterrupted reference run.
    TrainOptions o = options_for(data_);
    o.checkpoint_dir = (dir_ / "full").string();
    TrainHooks hooks;
    hooks.quiet = true;
    hooks.images = &images_;
    full_ = train_lmclip(o, hooks);
    ASSERT_EQ(full_.end, RunEnd::Completed);
    ASSERT_EQ(full_.epochs.size(), 4u);
    ASSERT_TRUE(fs::exists(dir_ / "full" / "last.pt"));
    // The run trains: without it, equal weights would prove nothing.
    ASSERT_NE(full_.epochs.front().train_loss, full_.epochs.back().train_loss);
  }

  void TearDown() override { remove_unless_failed(dir_); }

  fs::path dir_;
  SyntheticDataset data_;
  ImageCache images_;
  TrainResult full_;
};

TEST_F(TrainRunResume, StopAfterEpoch2ThenResumeEqualsUninterruptedRun) {
  TrainOptions o = options_for(data_);
  o.checkpoint_dir = (dir_ / "stopped").string();
  TrainHooks hooks;
  hooks.quiet = true;
  hooks.images = &images_;
  hooks.on_epoch = [](const EpochResult& e) { return e.epoch < 2; };
  const TrainResult first = train_lmclip(o, hooks);
  ASSERT_EQ(first.end, RunEnd::Stopped);
  ASSERT_EQ(first.epochs.size(), 2u);
  EXPECT_FALSE(fs::exists(dir_ / "stopped" / "last.pt"));  // written when the run completes

  o.resume = true;
  TrainHooks rest;
  rest.quiet = true;  // a fresh image cache: the resumed process decodes again
  const TrainResult second = train_lmclip(o, rest);
  ASSERT_EQ(second.end, RunEnd::Completed);
  ASSERT_EQ(second.epochs.size(), 2u);
  EXPECT_EQ(second.epochs.front().epoch, 3);

  std::vector<EpochResult> resumed = first.epochs;
  resumed.insert(resumed.end(), second.epochs.begin(), second.epochs.end());
  expect_same_epochs(resumed, full_.epochs);
  EXPECT_EQ(second.best_map_epoch, full_.best_map_epoch);
  EXPECT_NEAR(second.best_map, full_.best_map, 1e-6);
  EXPECT_EQ(second.best_tail_epoch, full_.best_tail_epoch);
  EXPECT_LE(max_weight_difference(dir_ / "full" / "last.pt", dir_ / "stopped" / "last.pt"), 1e-6);
  EXPECT_LE(max_weight_difference(dir_ / "full" / "best_map.pt", dir_ / "stopped" / "best_map.pt"), 1e-6);
}

TEST_F(TrainRunResume, InterruptMidEpochThenResumeEqualsUninterruptedRun) {
  // 120 images, batch 16: 8 steps per epoch. The 13th check is epoch 2, step 4.
  TrainOptions o = options_for(data_);
  o.checkpoint_dir = (dir_ / "interrupted").string();
  TrainHooks hooks;
  hooks.quiet = true;
  hooks.images = &images_;
  int calls = 0;
  hooks.stop_requested = [&calls] { return ++calls == 13; };
  const TrainResult first = train_lmclip(o, hooks);
  ASSERT_EQ(first.end, RunEnd::Interrupted);
  ASSERT_EQ(calls, 13);
  ASSERT_EQ(first.epochs.size(), 1u);

  o.resume = true;
  TrainHooks rest;
  rest.quiet = true;
  rest.images = &images_;
  const TrainResult second = train_lmclip(o, rest);
  ASSERT_EQ(second.end, RunEnd::Completed);
  ASSERT_EQ(second.epochs.size(), 3u);  // epoch 2 (finished), 3, 4
  std::vector<EpochResult> resumed = first.epochs;
  resumed.insert(resumed.end(), second.epochs.begin(), second.epochs.end());
  // Epoch 2's loss is the mean over steps before and after the interruption.
  expect_same_epochs(resumed, full_.epochs);
  EXPECT_LE(max_weight_difference(dir_ / "full" / "last.pt", dir_ / "interrupted" / "last.pt"), 1e-6);
}

TEST_F(TrainRunResume, ResumeWithOtherOptionsIsRefused) {
  TrainOptions o = options_for(data_);
  o.checkpoint_dir = (dir_ / "full").string();  // holds the state of the finished run
  o.resume = true;
  o.lambda = 0.7;
  TrainHooks hooks;
  hooks.quiet = true;
  hooks.images = &images_;
  try {
    train_lmclip(o, hooks);
    ADD_FAILURE() << "resuming with another --lambda should fail";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("state.pt"), std::string::npos) << e.what();
  }
}

TEST(TrainRunLoss, DefaultLossOnRandomTinyModelStaysFinite) {
  // The default method (clip+bal, label smoothing 0.1, clip 0.05, gamma_neg 9.8) on a random
  // tiny CLIP: logits / max(logits) of a negative reach below logit(0.05), its 1 - p + clip
  // clamps at 1 and the focal base 1 - p * t - 1 = -p * eps / C is negative; pow(negative, 9.8)
  // is NaN in the reference as well. Only the training loss being finite is asked here.
  const auto dir = temp_dir("train_loss_finite");
  KeepIfFailed cleanup{dir};
  const SyntheticDataset ds = synthetic(dir / "synth", 120, 60);
  TrainOptions o = options_for(ds);
  o.label_smoothing = TrainOptions{}.label_smoothing;
  ASSERT_GT(o.label_smoothing, 0.0);
  o.epochs = 2;
  TrainHooks hooks;
  hooks.quiet = true;
  TrainResult r;
  ASSERT_NO_THROW(r = train_lmclip(o, hooks));
  ASSERT_EQ(r.epochs.size(), 2u);
  for (const auto& e : r.epochs) EXPECT_TRUE(std::isfinite(e.train_loss)) << "epoch " << e.epoch;
}

TEST(TrainRunLearning, TestMapRisesFromRandomWeights) {
  // The default synthetic set (400 / 200 images) and configs/quickstart.ini's CLIP. Measured
  // (1 thread, label smoothing off: see TrainRunLoss): mAP 0.36 at epoch 1, best of epochs 6-8
  // 0.55 at seed 0 (seed 1: 0.26 -> 0.53); ~0.7 s per epoch.
  const auto dir = temp_dir("train_learning");
  KeepIfFailed cleanup{dir};
  const SyntheticDataset ds = synthetic(dir / "synth", 400, 200);
  TrainOptions o = options_for(ds);
  o.arch = "vit:res=32,patch=8,width=64,layers=2,embed=32,text-width=64,text-layers=2,vocab=514";
  o.epochs = 8;
  o.batch_size = 32;
  o.lr = 5e-4;
  o.seed = 0;
  TrainHooks hooks;
  hooks.quiet = true;
  const TrainResult r = train_lmclip(o, hooks);
  ASSERT_EQ(r.epochs.size(), 8u);
  const double first = r.epochs[0].metrics.map;
  double late = 0;
  for (size_t i = 5; i < 8; ++i) late = std::max(late, r.epochs[i].metrics.map);
  std::ostringstream trace;
  for (const auto& e : r.epochs) trace << " " << e.metrics.map;
  EXPECT_GT(late - first, 0.1) << "test mAP by epoch:" << trace.str();
  EXPECT_GT(r.epochs[0].train_loss - r.epochs[7].train_loss, 0.3) << "train loss should fall";
  const auto best = std::max_element(r.epochs.begin(), r.epochs.end(),
                                     [](const EpochResult& a, const EpochResult& b) { return a.metrics.map < b.metrics.map; });
  EXPECT_EQ(r.best_map, best->metrics.map);
  EXPECT_EQ(r.best_map_epoch, best->epoch);
}

TEST(TrainRunMetricsOut, OneJsonLinePerEpochWithCosineRate) {
  const auto dir = temp_dir("train_metrics_out");
  KeepIfFailed cleanup{dir};
  const SyntheticDataset ds = synthetic(dir / "synth", 120, 60);
  TrainOptions o = options_for(ds);
  o.epochs = 3;
  o.lr = 3e-4;
  o.metrics_out = (dir / "metrics.jsonl").string();
  TrainHooks hooks;
  hooks.quiet = true;
  const TrainResult r = train_lmclip(o, hooks);
  ASSERT_EQ(r.epochs.size(), 3u);

  const LabelNames names = read_label_names(ds.labels_file);
  const int64_t C = static_cast<int64_t>(names.names.size());
  const ClassGroups groups = group_classes(class_counts(read_split(ds.train_split, C), C));

  std::istringstream in(lmsweep::testing::read_text_file(o.metrics_out));
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);) {
    ASSERT_FALSE(line.empty());
    lines.push_back(json::parse(line));
  }
  ASSERT_EQ(lines.size(), 3u);
  for (size_t i = 0; i < lines.size(); ++i) {
    const json& j = lines[i];
    SCOPED_TRACE(j.dump());
    for (const char* key : {"epoch", "train_loss", "lr", "seconds", "map", "map_head", "map_middle", "map_tail", "ap",
                            "map_single", "map_multi"})
      ASSERT_TRUE(j.contains(key)) << key;
    EXPECT_EQ(j["epoch"].get<int64_t>(), static_cast<int64_t>(i) + 1);
    // Cosine annealing per epoch, T_max = epochs, eta_min = 0; epoch 1 uses --lr itself.
    const double expected_lr = o.lr * (1 + std::cos(M_PI * static_cast<double>(i) / 3.0)) / 2;
    EXPECT_NEAR(j["lr"].get<double>(), expected_lr, 1e-15);
    if (i == 0) EXPECT_EQ(j["lr"].get<double>(), o.lr);
    EXPECT_GT(j["seconds"].get<double>(), 0.0);
    EXPECT_TRUE(std::isfinite(j["train_loss"].get<double>()));
    EXPECT_DOUBLE_EQ(j["train_loss"].get<double>(), r.epochs[i].train_loss);
    const auto ap = j["ap"].get<std::vector<double>>();
    ASSERT_EQ(static_cast<int64_t>(ap.size()), C);
    EXPECT_NEAR(j["map"].get<double>(), std::accumulate(ap.begin(), ap.end(), 0.0) / static_cast<double>(C), 1e-9);
    auto group_map = [&](const std::vector<int>& classes, const char* key) {
      if (classes.empty()) {
        EXPECT_TRUE(j[key].is_null()) << key << " of an empty group";
        return;
      }
      double s = 0;
      for (int c : classes) s += ap[static_cast<size_t>(c)];
      EXPECT_NEAR(j[key].get<double>(), s / static_cast<double>(classes.size()), 1e-9) << key;
    };
    group_map(groups.head, "map_head");
    group_map(groups.middle, "map_middle");
    group_map(groups.tail, "map_tail");
  }
  // The rate anneals.
  EXPECT_LT(lines[1]["lr"].get<double>(), lines[0]["lr"].get<double>());
}

// Per-class precision / recall / F1 (Figure 6) with every epoch, the class names and training
// counts with the first.
TEST(TrainRunMetricsOut, PerClassPrecisionRecallAndClassInfo) {
  const auto dir = temp_dir("train_metrics_prf");
  KeepIfFailed cleanup{dir};
  const SyntheticDataset ds = synthetic(dir / "synth", 120, 60);
  TrainOptions o = options_for(ds);
  o.epochs = 2;
  o.metrics_out = (dir / "metrics.jsonl").string();
  TrainHooks hooks;
  hooks.quiet = true;
  train_lmclip(o, hooks);
  const std::vector<json> lines = json_lines(o.metrics_out);
  ASSERT_EQ(lines.size(), 2u);
  const LabelNames names = read_label_names(ds.labels_file);
  const size_t C = names.names.size();
  for (const auto& j : lines)
    for (const char* key : {"precision", "recall", "f1"}) {
      ASSERT_EQ(j.at(key).size(), C) << key;
      for (double v : j[key].get<std::vector<double>>()) EXPECT_TRUE(v >= 0 && v <= 1) << key;
    }
  EXPECT_EQ(lines[0].at("class_names").get<std::vector<std::string>>(), names.names);
  EXPECT_EQ(lines[0].at("class_train_count").get<std::vector<int64_t>>(),
            class_counts(read_split(ds.train_split, static_cast<int64_t>(C)), static_cast<int64_t>(C)));
  EXPECT_FALSE(lines[1].contains("class_names"));  // once per run
}

// --eval-every 2 / --eval-at: the epochs not evaluated record their loss only, and the ones
// evaluated have exactly the every-epoch run's results (evaluation changes nothing of training).
TEST(TrainRunEvalSchedule, SkippedEpochsChangeNothingElse) {
  const auto dir = temp_dir("train_eval_schedule");
  KeepIfFailed cleanup{dir};
  const SyntheticDataset ds = synthetic(dir / "synth", 120, 60);
  TrainOptions every = options_for(ds);
  every.epochs = 5;
  TrainOptions sparse = every;
  sparse.eval_every = 0;
  sparse.eval_at = "2";
  sparse.eval_last = 2;  // 4, 5
  sparse.metrics_out = (dir / "sparse.jsonl").string();
  TrainHooks hooks;
  hooks.quiet = true;
  const TrainResult full = train_lmclip(every, hooks), part = train_lmclip(sparse, hooks);
  ASSERT_EQ(part.epochs.size(), 5u);
  const std::vector<bool> expected = {false, true, false, true, true};
  for (size_t i = 0; i < 5; ++i) {
    SCOPED_TRACE("epoch " + std::to_string(i + 1));
    EXPECT_EQ(part.epochs[i].evaluated, expected[i]);
    EXPECT_EQ(part.epochs[i].train_loss, full.epochs[i].train_loss);  // bit for bit
    if (expected[i]) EXPECT_EQ(part.epochs[i].metrics.ap, full.epochs[i].metrics.ap);
  }
  const std::vector<json> lines = json_lines(sparse.metrics_out);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_FALSE(lines[0].contains("map"));
  EXPECT_EQ(lines[0].at("evaluated"), false);
  EXPECT_TRUE(lines[0].contains("train_loss"));
  EXPECT_TRUE(lines[1].contains("map"));
  // The best epoch is chosen among the evaluated ones.
  double best = 0;
  for (size_t i : {1u, 3u, 4u}) best = std::max(best, full.epochs[i].metrics.map);
  EXPECT_EQ(part.best_map, best);
}

TEST(TrainOptionsEval, WhichEpochsAreEvaluated) {
  TrainOptions o;
  o.epochs = 10;
  for (int64_t e = 1; e <= 10; ++e) EXPECT_TRUE(o.evaluates(e)) << e;  // the default: every epoch
  o.eval_every = 3;
  std::vector<int64_t> got;
  for (int64_t e = 1; e <= 10; ++e)
    if (o.evaluates(e)) got.push_back(e);
  EXPECT_EQ(got, (std::vector<int64_t>{3, 6, 9, 10}));  // and always the last
  o.eval_every = 0;
  o.eval_at = "2, 5";
  o.eval_last = 3;
  got.clear();
  for (int64_t e = 1; e <= 10; ++e)
    if (o.evaluates(e)) got.push_back(e);
  EXPECT_EQ(got, (std::vector<int64_t>{2, 5, 8, 9, 10}));
  o.arch = "x";
  o.train = o.test = o.labels = "f";
  o.eval_at = "2,x";
  EXPECT_THROW(o.validate(), Error);
  o.eval_at = "0";
  EXPECT_THROW(o.validate(), Error);
  o.eval_at = "";
  o.eval_every = -1;
  EXPECT_THROW(o.validate(), Error);
  o.eval_every = 1;
  o.eval_precision = "fp16";
  EXPECT_THROW(o.validate(), Error);
  o.eval_precision = "bf16";
  EXPECT_NO_THROW(o.validate());
  EXPECT_TRUE(o.eval_bf16());
}

}  // namespace
