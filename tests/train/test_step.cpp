// The trainer's parts (src/train/run.h, step.h, adamw.h, host_sync.h) on CPU: each GPU-ready
// change equals the fp32 path it replaces (AdamW implementations to the bit or 1e-6 relative;
// bf16 within 0.01 mAP), a steady-state step reads nothing back from the device, and every
// collective carries tensors of the model's device with row counts known from the batch split.
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "compat/torch_compat.h"
#include "support/fake_collectives.h"
#include "support/shared_data.h"
#include "support/synthetic_run.h"
#include "train/adamw.h"
#include "train/host_sync.h"
#include "train/resume_state.h"
#include "train/run.h"
#include "train/step.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace lmsweep;
using lmsweep::testing::RecordingCollectives;
using lmsweep::testing::temp_dir;

namespace {

// Batch 8 of 64 tiny images, one thread (see test_trainer.cpp), no label smoothing (a random
// tiny model meets the reference's NaN case with it).
TrainOptions tiny_run(const fs::path& dir, int64_t train_images = 64) {
  TrainOptions o = lmsweep::testing::synthetic_run(dir, train_images, 32);
  o.epochs = 2;
  o.batch_size = 8;
  o.lr = 5e-4;
  o.label_smoothing = 0;
  o.seed = 3;
  o.threads = 1;
  return o;
}

double max_relative_diff(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double scale = std::max(a[i].abs().max().item<double>(), 1e-30);
    worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>() / scale);
  }
  return worst;
}

std::vector<at::Tensor> weights(TrainRun& run) {
  run.embedding.write_back();
  std::vector<at::Tensor> w;
  for (const auto& p : run.model->parameters()) w.push_back(p.detach().clone());
  return w;
}

// `steps` steps of epoch 0; returns the losses.
std::vector<double> steps_of(TrainRun& run, int64_t steps) {
  run.model->train();
  const EpochPlan plan = plan_epoch(run, 0);
  run.set_lr(plan.lr);
  std::vector<double> losses;
  for (int64_t s = 0; s < steps; ++s) losses.push_back(train_step(run, plan, s).item<double>());
  return losses;
}

}  // namespace

// ------------------------------------------------------------------ AdamW

struct AdamWCase {
  std::vector<at::Tensor> params;
  std::unique_ptr<torch::optim::AdamW> optimizer;
};

AdamWCase adamw_case(uint64_t seed) {
  at::manual_seed(seed);
  AdamWCase c;
  for (auto shape : std::vector<std::vector<int64_t>>{{7, 5}, {13}, {3, 4, 2}, {1}})
    c.params.push_back(at::randn(shape).set_requires_grad(true));
  c.optimizer = std::make_unique<torch::optim::AdamW>(
      c.params, torch::optim::AdamWOptions(3e-3).betas(std::make_tuple(0.9, 0.98)).eps(1e-9).weight_decay(0.01));
  return c;
}

std::vector<at::Tensor> run_adamw(AdamWImpl impl, int steps) {
  auto c = adamw_case(5);
  for (int s = 0; s < steps; ++s) {
    at::manual_seed(100 + s);
    for (size_t i = 0; i < c.params.size(); ++i) {
      // The last parameter gets no gradient on odd steps: no update, no decay, its step
      // count falls behind (AdamW::step's rules).
      if (i + 1 == c.params.size() && s % 2 == 1) c.params[i].mutable_grad().reset();
      else c.params[i].mutable_grad() = at::randn(c.params[i].sizes());
    }
    adamw_step(*c.optimizer, impl);
  }
  std::vector<at::Tensor> out;
  for (auto& p : c.params) out.push_back(p.detach().clone());
  return out;
}

TEST(AdamWStep, ForeachEqualsTorchAdamWToTheBit) {
  const auto loop = run_adamw(AdamWImpl::Loop, 6), foreach = run_adamw(AdamWImpl::Foreach, 6);
  for (size_t i = 0; i < loop.size(); ++i) EXPECT_TRUE(at::equal(loop[i], foreach[i])) << "parameter " << i;
  // ... and the update did something.
  auto c = adamw_case(5);
  EXPECT_GT((loop[0] - c.params[0]).abs().max().item<double>(), 1e-3);
}

TEST(AdamWStep, FusedWithin1e6OfTorchAdamW) {
  if (!compat::has_fused_adamw(c10::Device(c10::kCPU)))
    GTEST_SKIP() << "LibTorch " << compat::torch_version() << " has no fused AdamW on CPU (2.4+)";
  const auto loop = run_adamw(AdamWImpl::Loop, 6), fused = run_adamw(AdamWImpl::Fused, 6);
  EXPECT_LT(max_relative_diff(loop, fused), 1e-6);
}

TEST(AdamWStep, AutoPicksFusedWhereLibTorchHasIt) {
  const c10::Device cpu(c10::kCPU);
  EXPECT_EQ(resolve_adamw_impl("auto", cpu), compat::has_fused_adamw(cpu) ? AdamWImpl::Fused : AdamWImpl::Foreach);
  if (!compat::has_fused_adamw(cpu)) EXPECT_THROW(resolve_adamw_impl("fused", cpu), std::exception);
  EXPECT_THROW(resolve_adamw_impl("adam", cpu), std::exception);
}

// ------------------------------------------------------------------ the step

// foreach runs torch::optim::AdamW's operations in its order: the same bits. fused computes
// the same formula in one pass (rounding order differs): after one step every weight is within
// 1e-6 of its tensor's largest; after five the losses stay within 1e-6 relative and the weights
// within 1e-5, but for the key third of each attention's in_proj_bias: its gradient is zero up
// to rounding (softmax ignores a per-query shift), Adam turns a rounding difference there into
// steps of up to lr (which bounds it), and that spreads to the rest at the 1e-6 level.
TEST(TrainStep, MultiTensorAdamWStepEqualsTorchAdamWStep) {
  const auto dir = temp_dir("step_adamw");
  TrainOptions o = tiny_run(dir);
  o.adamw = "loop";
  constexpr int64_t kSteps = 5;
  auto a = set_up_run(o, nullptr, nullptr);
  const auto la = steps_of(*a, kSteps);
  const auto wa = weights(*a);
  const auto names = a->model->named_parameters();
  for (const std::string impl : {"foreach", "auto"}) {
    o.adamw = impl;
    auto b = set_up_run(o, nullptr, nullptr);
    const auto lb = steps_of(*b, kSteps);
    const auto wb = weights(*b);
    const std::string what = impl + " (" + to_string(b->adamw) + ")";
    if (b->adamw == AdamWImpl::Foreach) {
      EXPECT_EQ(la, lb) << what;
      for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(at::equal(wa[i], wb[i])) << what << " " << names[i].key();
      continue;
    }
    for (size_t s = 0; s < la.size(); ++s) EXPECT_NEAR(lb[s] / la[s], 1.0, 1e-6) << what << " step " << s;
    for (size_t i = 0; i < wa.size(); ++i) {
      const std::string& name = names[i].key();
      std::vector<at::Tensor> x{wa[i]}, y{wb[i]};
      if (name.size() > 12 && name.compare(name.size() - 12, 12, "in_proj_bias") == 0) {
        const auto xs = wa[i].chunk(3), ys = wb[i].chunk(3);
        x = {xs[0], xs[2]};
        y = {ys[0], ys[2]};
        EXPECT_LE((xs[1] - ys[1]).abs().max().item<double>(), 2 * o.lr * kSteps) << what << " " << name << " (keys)";
      }
      EXPECT_LT(max_relative_diff(x, y), 1e-5) << what << " " << name;
    }
    auto a1 = set_up_run(o, nullptr, nullptr);
    o.adamw = "loop";
    auto b1 = set_up_run(o, nullptr, nullptr);
    steps_of(*a1, 1);
    steps_of(*b1, 1);
    EXPECT_LT(max_relative_diff(weights(*a1), weights(*b1)), 1e-6) << what << " after one step";
  }
  fs::remove_all(dir);
}

TEST(TrainStep, SteadyStateStepsReadNothingBackFromTheDevice) {
  const auto dir = temp_dir("step_syncs");
  auto run = set_up_run(tiny_run(dir), nullptr, nullptr);
  run->model->train();
  const EpochPlan plan = plan_epoch(*run, 0);
  EpochLoss loss(run->device);
  loss.add(train_step(*run, plan, 0), 8, 0);  // first step: allocations, state creation
  HostSyncCounter counter;
  for (int64_t s = 1; s < plan.steps; ++s) loss.add(train_step(*run, plan, s), 8, s);
  EXPECT_EQ(counter.count(), 0) << "host syncs in " << plan.steps - 1 << " steps, first: "
                                << (counter.ops().empty() ? "" : counter.ops().front());
  EXPECT_GT(loss.sum(), 0);
  fs::remove_all(dir);
}

TEST(TrainStep, HostSyncCounterSeesAnItem) {
  HostSyncCounter counter;
  const auto t = at::ones({3});
  EXPECT_EQ(counter.count(), 0);
  (void)t.sum().item<float>();
  (void)at::nonzero(t);
  EXPECT_EQ(counter.count(), 2);
  EXPECT_EQ(counter.ops().front(), "aten::_local_scalar_dense");
}

TEST(TrainStep, EpochLossSumsOnTheDeviceAsTheHostDid) {
  EpochLoss loss(c10::Device(c10::kCPU), 0.5);
  double host = 0.5;
  const std::vector<float> values = {1.25f, 0.3f, 7.0f / 3.0f};
  for (size_t i = 0; i < values.size(); ++i) {
    loss.add(at::full({}, values[i]), 8 - static_cast<int64_t>(i), static_cast<int64_t>(i));
    host += static_cast<double>(values[i]) * static_cast<double>(8 - i);
  }
  EXPECT_EQ(loss.sum(), host);  // the same float64 arithmetic
  EXPECT_EQ(loss.first_nonfinite_step(), -1);
  loss.add(at::full({}, std::nanf("")), 8, 5);
  loss.add(at::full({}, INFINITY), 8, 6);
  EXPECT_EQ(loss.first_nonfinite_step(), 5);
}

TEST(TrainStep, CollectivesCarryModelDeviceTensorsWithKnownRowCounts) {
  const auto dir = temp_dir("step_collectives");
  TrainOptions o = tiny_run(dir, 60);  // 60 / 8: a short last batch of 4, split 2 + 2
  RecordingCollectives group(/*rank=*/0, /*world=*/2);
  auto run = set_up_run(o, &group, nullptr);
  run->model->train();
  const EpochPlan plan = plan_epoch(*run, 0);
  group.calls.clear();  // the set-up's broadcast
  (void)train_step(*run, plan, plan.steps - 1);
  int gathers = 0;
  for (const auto& c : group.calls) {
    EXPECT_EQ(c.device, run->device) << c.op;
    EXPECT_NE(c.dtype, at::kLong) << c.op << ": a count exchanged";
    if (c.op == "all_gather_rows") {
      ++gathers;
      ASSERT_EQ(c.rows.size(), 2u);
      EXPECT_EQ(c.rows[0], c.shape[0]);
    }
  }
  EXPECT_EQ(gathers, 3);  // image, caption and prompt features
  EXPECT_EQ(group.calls[0].rows, (std::vector<int64_t>{2, 2}));
  fs::remove_all(dir);
}

TEST(TrainStep, StopVoteAgreesAfterItsLagAndVotesAtEveryBoundary) {
  RecordingCollectives group(0, 2);
  StopVote vote(&group, c10::Device(c10::kCPU), /*lag=*/2);
  std::vector<bool> decided;
  for (int b = 0; b < 6; ++b) decided.push_back(vote(b == 2));
  EXPECT_EQ(decided, (std::vector<bool>{false, false, false, false, true, false}));
  EXPECT_EQ(group.calls.size(), 6u);  // one collective per boundary, asked or not
  StopVote alone(nullptr, c10::Device(c10::kCPU));
  EXPECT_TRUE(alone(true));  // one rank: at once
}

// The tiny ViT of ../shared (OpenAI's format) fine-tuned for 3 epochs in fp32 and in bf16.
TEST(TrainStep, Bf16FinalMapWithinOnePointOfFp32) {
  LMSWEEP_REQUIRE_SHARED("testdata/clip_vit_tiny/model.pt");
  LMSWEEP_REQUIRE_SHARED("assets/bpe_simple_vocab_16e6.txt.gz");
  const auto dir = temp_dir("step_bf16");
  TrainOptions o = tiny_run(dir, 200);
  o.arch.clear();
  o.weights = lmsweep::testing::shared_file("testdata/clip_vit_tiny/model.pt").string();
  o.bpe = lmsweep::testing::shared_file("assets/bpe_simple_vocab_16e6.txt.gz").string();
  o.epochs = 3;
  o.batch_size = 16;
  o.lr = 1e-4;
  o.label_smoothing = 0.1;
  TrainHooks quiet;
  quiet.quiet = true;
  const auto fp32 = train_lmclip(o, quiet);
  o.precision = "bf16";
  const auto bf16 = train_lmclip(o, quiet);
  ASSERT_EQ(fp32.epochs.size(), 3u);
  ASSERT_EQ(bf16.epochs.size(), 3u);
  EXPECT_NEAR(bf16.epochs.back().metrics.map, fp32.epochs.back().metrics.map, 0.01);
  EXPECT_NEAR(bf16.epochs.back().train_loss / fp32.epochs.back().train_loss, 1.0, 0.05);
  EXPECT_GT(fp32.epochs.back().metrics.map, fp32.epochs.front().metrics.map);  // it learned: a real comparison
  RecordProperty("map_fp32", std::to_string(fp32.epochs.back().metrics.map));
  RecordProperty("map_bf16", std::to_string(bf16.epochs.back().metrics.map));
  fs::remove_all(dir);
}

// ------------------------------------------------------------------ evaluation, checkpointing

TEST(TrainParts, EvaluateEpochScoresTheTestSplitWithTheCompactRowsWrittenBack) {
  const auto dir = temp_dir("parts_eval");
  auto run = set_up_run(tiny_run(dir), nullptr, nullptr);
  steps_of(*run, 3);  // the compact rows now differ from the table
  const EvalMetrics m = evaluate_epoch(*run);
  // The same as scoring by hand with the table the rows were written back to.
  const auto scores = score_images(run->model, run->data.test_pixels, run->data.prompts,
                                   ImageNormalization::from_name(run->options.normalize),
                                   run->options.eval_batch_size, run->device);
  const EvalMetrics ref = evaluate_scores(scores, run->data.test_hot, &run->data.groups);
  EXPECT_EQ(m.map, ref.map);
  EXPECT_EQ(m.map_tail, ref.map_tail);
  EXPECT_TRUE(at::equal(run->embedding.table.index_select(0, run->embedding.active_ids), run->embedding.rows));
  EXPECT_GT(m.map, 0);
  fs::remove_all(dir);
}

TEST(TrainParts, SaveStateThenLoadStateRestoresWeightsOptimizerAndPosition) {
  const auto dir = temp_dir("parts_state");
  TrainOptions o = tiny_run(dir);
  o.checkpoint_dir = (dir / "ckpt").string();
  fs::create_directories(o.checkpoint_dir);
  auto a = set_up_run(o, nullptr, nullptr);
  steps_of(*a, 2);
  a->embedding.write_back();
  ResumeState s;
  s.next_epoch = 1;
  s.next_step = 3;
  s.loss_sum = 12.5;
  s.count = 24;
  s.best_map = 0.25;
  s.best_map_epoch = 1;
  save_state(*a, s);
  auto b = set_up_run(o, nullptr, nullptr);
  ResumeState t;
  ASSERT_TRUE(load_state(*b, t));
  EXPECT_EQ(t.next_epoch, 1);
  EXPECT_EQ(t.next_step, 3);
  EXPECT_EQ(t.loss_sum, 12.5);
  EXPECT_EQ(t.best_map, 0.25);
  const auto wa = weights(*a), wb = weights(*b);
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(at::equal(wa[i], wb[i])) << "parameter " << i;
  EXPECT_TRUE(at::equal(b->embedding.rows, a->embedding.rows));
  // The next step of both is the same: the optimizer's moments and step count came back too.
  EXPECT_EQ(steps_of(*a, 1), steps_of(*b, 1));
  // Another run's options are refused, naming the file.
  TrainOptions other = o;
  other.lambda = 2;
  auto c = set_up_run(other, nullptr, nullptr);
  try {
    load_state(*c, t);
    ADD_FAILURE() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("state.pt"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}
