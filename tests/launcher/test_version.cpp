// `lmsweep --version` and `lmsweep version` as a user runs them: lmsweep's version, LibTorch's
// (the one this build compiled against), and the four backends with yes / no matching the
// build, one line each in a stable order.
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "compat/torch_compat.h"
#include "launcher/lmsweep_process.h"

#ifdef LMSWEEP_HAVE_NCCL
#include <nccl.h>
#endif

using namespace lmsweep::testing;
namespace compat = lmsweep::compat;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

void check_version_output(const ProcessResult& r) {
  ASSERT_TRUE(Succeeds(r));
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 6u) << r;
  EXPECT_EQ(lines[0], std::string("lmsweep ") + LMSWEEP_EXPECTED_VERSION) << r;
  EXPECT_EQ(lines[1], "LibTorch " + compat::torch_version()) << r;

  if (compat::built_with_cuda()) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(lines[2], m, std::regex(R"(CUDA yes \(([0-9]+\.[0-9]+); ([0-9]+) GPUs? visible\))")))
        << r;
    EXPECT_EQ(std::stoi(m[2].str()), compat::cuda_device_count()) << r;
  } else {
    EXPECT_EQ(lines[2], "CUDA no") << r;
  }

#ifdef LMSWEEP_HAVE_NCCL
  EXPECT_EQ(lines[3], "NCCL yes (" + std::to_string(NCCL_MAJOR) + "." + std::to_string(NCCL_MINOR) + "." +
                          std::to_string(NCCL_PATCH) + ")")
      << r;
#else
  EXPECT_EQ(lines[3], "NCCL no") << r;
#endif

#ifdef LMSWEEP_HAVE_GLOO
  EXPECT_EQ(lines[4], "Gloo yes") << r;
#else
  EXPECT_EQ(lines[4], "Gloo no") << r;
#endif

  // "MPI Open MPI v4.1.4", "MPI MPICH Version: 4.0": the library's name, no trailing text.
  EXPECT_TRUE(std::regex_match(lines[5], std::regex(R"(MPI [^ ,].*[^ ,])"))) << r;
  EXPECT_EQ(lines[5].find(','), std::string::npos) << r;
}

TEST(LauncherVersion, DashDashVersionNamesLibTorchAndTheBackendsBuiltIn) {
  check_version_output(run_lmsweep({"--version"}));
}

TEST(LauncherVersion, VersionCommandPrintsTheSame) {
  const auto a = run_lmsweep({"version"});
  check_version_output(a);
  EXPECT_EQ(a.out, run_lmsweep({"--version"}).out);
}

TEST(LauncherVersion, UnknownOptionFailsWithOneLine) {
  EXPECT_TRUE(FailsWithOneLine(run_lmsweep({"version", "--bogus"}), "lmsweep version: error:", {"--bogus"}));
}

TEST(LauncherVersion, UsageListsTheVersionCommand) {
  const auto r = run_lmsweep({"--help"});
  ASSERT_TRUE(Succeeds(r));
  EXPECT_NE(r.out.find("version"), std::string::npos) << r;
}

}  // namespace
