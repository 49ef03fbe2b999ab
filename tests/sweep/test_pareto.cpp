// Pareto fronts against a brute-force filter, and hypervolumes against boxes counted by hand
// and by Monte Carlo.
#include <cmath>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "sweep/pareto.h"
#include "sweep/point_sampler.h"

namespace lmsweep::sweep {
namespace {

std::vector<std::vector<double>> random_points(uint64_t seed, int n, int d, bool grid) {
  std::vector<std::vector<double>> pts(static_cast<size_t>(n), std::vector<double>(static_cast<size_t>(d)));
  uint64_t c = seed * 1000;
  for (auto& p : pts)
    for (auto& x : p) {
      x = to_unit_interval(splitmix64(++c));
      if (grid) x = std::floor(x * 5) / 5;  // ties and duplicates
    }
  return pts;
}

// The definition, written out: i is kept unless some j is >= everywhere and > somewhere.
std::vector<size_t> brute_front(const std::vector<std::vector<double>>& pts) {
  std::vector<size_t> out;
  for (size_t i = 0; i < pts.size(); ++i) {
    bool dominated = false;
    for (size_t j = 0; j < pts.size(); ++j) {
      bool ge = true, gt = false;
      for (size_t k = 0; k < pts[i].size(); ++k) {
        ge = ge && pts[j][k] >= pts[i][k];
        gt = gt || pts[j][k] > pts[i][k];
      }
      dominated = dominated || (ge && gt);
    }
    if (!dominated) out.push_back(i);
  }
  return out;
}

TEST(Pareto, FrontEqualsTheBruteForceFilter) {
  for (uint64_t seed = 1; seed <= 30; ++seed)
    for (int d : {2, 3})
      for (bool grid : {false, true}) {
        const auto pts = random_points(seed, 40, d, grid);
        EXPECT_EQ(pareto_front(pts), brute_front(pts)) << "seed " << seed << " d " << d << " grid " << grid;
      }
}

TEST(Pareto, HypervolumeOfBoxes) {
  // Two boxes from the origin: 0.8 x 0.2 and 0.3 x 0.9, overlapping in 0.3 x 0.2.
  EXPECT_NEAR(hypervolume({{0.8, 0.2}, {0.3, 0.9}}, {0, 0}), 0.16 + 0.27 - 0.06, 1e-12);
  // A dominated point and one below the reference add nothing.
  EXPECT_NEAR(hypervolume({{0.8, 0.2}, {0.3, 0.9}, {0.2, 0.1}, {-1, 5}}, {0, 0}), 0.37, 1e-12);
  EXPECT_NEAR(hypervolume({{0.5, 0.5, 0.5}}, {0, 0, 0}), 0.125, 1e-12);
  EXPECT_EQ(hypervolume({}, {0, 0}), 0);
}

TEST(Pareto, HypervolumeMatchesMonteCarloIn3d) {
  const auto pts = random_points(7, 12, 3, false);
  int inside = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double x = to_unit_interval(splitmix64(3 * i + 1)), y = to_unit_interval(splitmix64(3 * i + 2)),
                 z = to_unit_interval(splitmix64(3 * i + 3));
    for (const auto& p : pts)
      if (x < p[0] && y < p[1] && z < p[2]) {
        ++inside;
        break;
      }
  }
  EXPECT_NEAR(hypervolume(pts, {0, 0, 0}), static_cast<double>(inside) / n, 0.005);
}

}  // namespace
}  // namespace lmsweep::sweep
