// On a GPU (ctest label `cuda`; every test skips with a message where none is visible): the
// trainer's step on one GPU gives the CPU's losses, a steady-state step reads nothing back,
// the rank's GPU is made current, bf16 runs, and `train` over k GPUs (mpirun, NCCL) gives the
// one-process losses. Tolerances: fp32 with TF32 off differs from the CPU only by summation
// order (1e-4 relative on the loss); over k GPUs, as test_sweep_mpi's CPU check, 2e-3.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "compat/torch_compat.h"
#include "dist/device.h"
#include "support/shared_data.h"
#include "support/synthetic_run.h"
#include "train/host_sync.h"
#include "train/run.h"
#include "train/step.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace lmsweep;
using lmsweep::testing::temp_dir;

namespace {

#define LMSWEEP_REQUIRE_GPUS(n)                                                                        \
  do {                                                                                               \
    if (compat::cuda_device_count() < (n))                                                           \
      GTEST_SKIP() << "needs " << (n) << " GPU(s), " << compat::cuda_device_count() << " visible ("    \
                   << (compat::built_with_cuda() ? "CUDA build" : "this LibTorch has no CUDA") << ")"; \
  } while (0)

TrainOptions tiny_run(const fs::path& dir) {
  TrainOptions o = lmsweep::testing::synthetic_run(dir, 96, 40);
  o.arch = "vit:res=32,patch=8,width=64,layers=2,embed=32,text-width=64,text-layers=2,vocab=514";
  o.epochs = 2;
  o.batch_size = 8;
  o.lr = 5e-4;
  o.label_smoothing = 0;
  o.sampling = "sequential";
  o.seed = 3;
  o.threads = 2;
  return o;
}

std::vector<double> losses_of(TrainOptions o, int64_t steps) {
  auto run = set_up_run(o, nullptr, nullptr);
  run->model->train();
  const EpochPlan plan = plan_epoch(*run, 0);
  run->set_lr(plan.lr);
  std::vector<double> out;
  for (int64_t s = 0; s < steps; ++s) out.push_back(train_step(*run, plan, s).cpu().item<double>());
  return out;
}

int shell(const std::string& command, std::string* output) {
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) output->append(buf, n);
  const int s = pclose(p);
  return WIFEXITED(s) ? WEXITSTATUS(s) : 128 + WTERMSIG(s);
}

std::vector<double> epoch_losses(const fs::path& jsonl) {
  std::vector<double> out;
  std::ifstream in(jsonl);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line)["train_loss"]);
  return out;
}

}  // namespace

TEST(Cuda, OneGpuStepGivesTheCpuLosses) {
  LMSWEEP_REQUIRE_GPUS(1);
  const auto dir = temp_dir("cuda_step");
  TrainOptions o = tiny_run(dir);
  const auto cpu = losses_of(o, 6);
  o.device = "cuda:0";
  o.tf32 = false;
  const auto gpu = losses_of(o, 6);
  for (size_t s = 0; s < cpu.size(); ++s) EXPECT_NEAR(gpu[s] / cpu[s], 1.0, 1e-4) << "step " << s;
  fs::remove_all(dir);
}

TEST(Cuda, SteadyStateStepReadsNothingBack) {
  LMSWEEP_REQUIRE_GPUS(1);
  const auto dir = temp_dir("cuda_syncs");
  TrainOptions o = tiny_run(dir);
  o.device = "cuda:0";
  auto run = set_up_run(o, nullptr, nullptr);
  run->model->train();
  const EpochPlan plan = plan_epoch(*run, 0);
  EpochLoss loss(run->device);
  loss.add(train_step(*run, plan, 0), 8, 0);
  HostSyncCounter counter;
  for (int64_t s = 1; s < plan.steps; ++s) loss.add(train_step(*run, plan, s), 8, s);
  EXPECT_EQ(counter.count(), 0) << (counter.ops().empty() ? "" : counter.ops().front());
  EXPECT_GT(loss.sum(), 0);
  fs::remove_all(dir);
}

TEST(Cuda, RankDeviceIsNodeLocalRankModuloVisibleGpusAndCurrent) {
  LMSWEEP_REQUIRE_GPUS(1);
  const int g = compat::cuda_device_count();
  EXPECT_EQ(dist::rank_device("cuda", 0, g), "cuda:0");
  EXPECT_EQ(dist::rank_device("cuda", g, g), "cuda:0");          // --gpus-per-task=1: every task sees one
  EXPECT_EQ(dist::rank_device("cuda", g + 1, g), g > 1 ? "cuda:1" : "cuda:0");
  EXPECT_EQ(dist::rank_device("cuda:0", 5, g), "cuda:0");         // an explicit GPU is kept
  dist::use_device(dist::rank_device("cuda", g - 1, g));
  EXPECT_EQ(compat::current_cuda_device(), g - 1);
  dist::use_device("cuda:0");
}

TEST(Cuda, Bf16TrainingRunsAndLearns) {
  LMSWEEP_REQUIRE_GPUS(1);
  const auto dir = temp_dir("cuda_bf16");
  TrainOptions o = tiny_run(dir);
  o.device = "cuda:0";
  o.epochs = 3;
  TrainHooks quiet;
  quiet.quiet = true;
  const auto fp32 = train_lmclip(o, quiet);
  o.precision = "bf16";
  const auto bf16 = train_lmclip(o, quiet);
  EXPECT_NEAR(bf16.epochs.back().metrics.map, fp32.epochs.back().metrics.map, 0.02);
  fs::remove_all(dir);
}

TEST(Cuda, DataParallelOverTwoGpusGivesTheOneGpuAndCpuLosses) {
#ifndef LMSWEEP_EXE
  GTEST_SKIP() << "built without the lmsweep executable (LMSWEEP_DEVICE_CHECK_ONLY)";
#else
  LMSWEEP_REQUIRE_GPUS(2);
  const auto dir = temp_dir("cuda_dp");
  const std::string exe = LMSWEEP_EXE;
  const std::string args = " train --synthetic synth --arch vit:res=32,patch=8,width=32,layers=1,embed=16,"
                           "text-width=32,text-layers=1,vocab=514 --epochs 2 --batch-size 8 --sampling sequential "
                           "--flip 0 --lr 5e-4 --device cuda";
  const std::string mpirun = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 2 ";
  std::string out;
  ASSERT_EQ(shell("cd " + dir.string() + " && " + exe + args + " --db one.db --metrics-out one.jsonl", &out), 0) << out;
  ASSERT_EQ(shell("cd " + dir.string() + " && " + mpirun + exe + args + " --db two.db --metrics-out two.jsonl", &out), 0)
      << out;
  const std::string cpu_args = args.substr(0, args.find(" --device")) + " --device cpu";
  ASSERT_EQ(shell("cd " + dir.string() + " && " + exe + cpu_args + " --db cpu.db --metrics-out cpu.jsonl", &out), 0)
      << out;
  const auto one = epoch_losses(dir / "one.jsonl"), two = epoch_losses(dir / "two.jsonl");
  const auto cpu = epoch_losses(dir / "cpu.jsonl");
  ASSERT_EQ(one.size(), 2u);
  ASSERT_EQ(two.size(), 2u);
  ASSERT_EQ(cpu.size(), 2u);
  for (size_t e = 0; e < one.size(); ++e) {
    EXPECT_NEAR(two[e] / one[e], 1.0, 2e-3) << "epoch " << e + 1;
    EXPECT_NEAR(one[e] / cpu[e], 1.0, 2e-3) << "epoch " << e + 1;
  }
  fs::remove_all(dir);
#endif
}
