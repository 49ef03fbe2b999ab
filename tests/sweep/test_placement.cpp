// Several trials per device: where each rank runs, counted per device (never only across the
// node, the ray#5902 bug), and the out-of-memory message that names trials_per_device.
#include <gtest/gtest.h>

#include "support/errors.h"
#include "sweep/placement.h"

namespace lmsweep::sweep {
namespace {

using testing::error_of;

TEST(Placement, RanksGoRoundTheGpusAtMostKPerGpu) {
  // 4 ranks, 2 GPUs, k = 2: GPU 0 holds ranks 0 and 2, GPU 1 ranks 1 and 3.
  std::vector<int> per_gpu(2, 0);
  for (int r = 0; r < 4; ++r) ++per_gpu.at(device_slot(2, r, 4, 2, "node1"));
  EXPECT_EQ(per_gpu, (std::vector<int>{2, 2}));
  // Not set (0): as before, by node-local rank, however many.
  EXPECT_EQ(device_slot(0, 5, 6, 2, "node1"), 1);
  // 5 ranks on 2 GPUs would put 3 on GPU 0 although the node's total (5 <= 2 x 3) looks fine
  // for k = 3 only: with k = 2 it is refused, naming what to do.
  const auto e = error_of([] { device_slot(2, 0, 5, 2, "node1"); });
  EXPECT_NE(e.find("trials_per_device = 2: node1 runs 5 ranks on 2 GPU(s), 3 on a GPU"), std::string::npos) << e;
  EXPECT_NE(e.find("at most 4 ranks"), std::string::npos) << e;
  EXPECT_EQ(device_slot(3, 4, 5, 2, "node1"), 0);
}

TEST(Placement, OnCpuTheNodeIsOneDevice) {
  EXPECT_EQ(device_slot(2, 1, 2, -1, "vm"), -1);
  EXPECT_EQ(device_slot(0, 3, 4, -1, "vm"), -1);
  const auto e = error_of([] { device_slot(2, 0, 3, -1, "vm"); });
  EXPECT_NE(e.find("trials_per_device = 2: vm runs 3 ranks on its CPU"), std::string::npos) << e;
}

TEST(Placement, OutOfMemoryNamesTrialsPerDevice) {
  const std::string oom = "CUDA out of memory. Tried to allocate 2.00 GiB\nstack...";
  EXPECT_EQ(trial_error_text(oom, 2),
            "CUDA out of memory. Tried to allocate 2.00 GiB (trials_per_device = 2: 2 trials share this GPU; lower "
            "trials_per_device or the batch size)");
  EXPECT_EQ(trial_error_text(oom, 1), "CUDA out of memory. Tried to allocate 2.00 GiB");
  EXPECT_EQ(trial_error_text("diverged", 4), "diverged");
}

}  // namespace
}  // namespace lmsweep::sweep
