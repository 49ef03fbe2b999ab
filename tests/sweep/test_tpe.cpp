// TPE (sweep/tpe.h): Optuna's gamma and weights, the startup design, determinism, and a search
// that learns: better than random on small test functions with the same budget.
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include <gtest/gtest.h>

#include "sweep/point_sampler.h"
#include "sweep/tpe.h"

namespace lmsweep::sweep {
namespace {

TEST(Tpe, GammaAndWeightsAreOptunasDefaults) {
  EXPECT_EQ(tpe_gamma(1), 1);
  EXPECT_EQ(tpe_gamma(10), 1);
  EXPECT_EQ(tpe_gamma(11), 2);
  EXPECT_EQ(tpe_gamma(1000), 25);
  EXPECT_EQ(tpe_weights(24), std::vector<double>(24, 1.0));
  // numpy.concatenate([numpy.linspace(1 / 30, 1, 5), numpy.ones(25)])
  const auto w = tpe_weights(30);
  ASSERT_EQ(w.size(), 30u);
  EXPECT_NEAR(w[0], 1.0 / 30, 1e-12);
  EXPECT_NEAR(w[1], 1.0 / 30 + (1 - 1.0 / 30) / 4, 1e-12);
  EXPECT_NEAR(w[4], 1.0, 1e-12);
  EXPECT_EQ(w[29], 1.0);
}

SearchSpace space_of(std::vector<Dimension> dims) { return SearchSpace(std::move(dims)); }

Dimension uniform(const std::string& name, double low, double high, Distribution d = Distribution::Uniform) {
  Dimension x;
  x.name = name;
  x.dist = d;
  x.low = low;
  x.high = high;
  return x;
}

SweepConfig tpe_config(uint64_t seed, int trials) {
  SweepConfig c;
  c.name = "t";
  c.method = SamplingMethod::Tpe;
  c.seed = seed;
  c.trials = trials;
  return c;
}

// Runs a sequential search of `budget` evaluations; returns the best value found (maximised).
double search(const SearchSpace& space, SamplingMethod method, uint64_t seed, int budget,
              const std::function<double(const Point&)>& f) {
  SweepConfig c = tpe_config(seed, budget);
  c.method = method == SamplingMethod::Random ? SamplingMethod::Random : SamplingMethod::Tpe;
  const PointSampler design(space, c);
  std::vector<TpeObservation> history;
  double best = -1e300;
  for (int k = 0; k < budget; ++k) {
    const Point p = method == SamplingMethod::Random
                        ? design.point(k)
                        : suggest_tpe(space, history, TpeOptions{}, design.seed(k), design.point(k));
    const double v = f(p);
    best = std::max(best, v);
    history.push_back({p, TpeObservation::State::Completed, v, 1, k});
  }
  return best;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Branin (negated, maximised; its maximum is -0.397887) and a 5-D function with the paper's
// dimensions and scales (a choice, a log scale, reals).
double branin(const Point& p) {
  const double x = find_value(p, "x")->as_double(), y = find_value(p, "y")->as_double();
  const double b = 5.1 / (4 * M_PI * M_PI), c = 5 / M_PI, t = 1 / (8 * M_PI);
  return -(std::pow(y - b * x * x + c * x - 6, 2) + 10 * (1 - t) * std::cos(x) + 10);
}

TEST(Tpe, BeatsRandomOnBranin) {
  const SearchSpace space = space_of({uniform("x", -5, 10), uniform("y", 0, 15)});
  std::vector<double> tpe, rnd;
  for (uint64_t seed = 1; seed <= 15; ++seed) {
    tpe.push_back(search(space, SamplingMethod::Tpe, seed, 60, branin));
    rnd.push_back(search(space, SamplingMethod::Random, seed, 60, branin));
  }
  EXPECT_GT(median(tpe), median(rnd));
  EXPECT_GT(median(tpe), -1.0);  // within 0.6 of the optimum
}

TEST(Tpe, BeatsRandomWithChoiceLogAndIntDimensions) {
  Dimension batch;
  batch.name = "batch-size";
  batch.dist = Distribution::Choice;
  batch.values = {8, 16, 32, 64};
  const SearchSpace space = space_of({batch, uniform("gamma-neg", 2, 12), uniform("lambda", 0.1, 10, Distribution::LogUniform),
                                      uniform("s", 1, 2), uniform("warmup", 0, 9, Distribution::IntUniform)});
  auto f = [](const Point& p) {
    const double b = static_cast<double>(find_value(p, "batch-size")->as_int());
    const double g = find_value(p, "gamma-neg")->as_double(), l = std::log10(find_value(p, "lambda")->as_double());
    const double s = find_value(p, "s")->as_double(), w = static_cast<double>(find_value(p, "warmup")->as_int());
    return -(std::pow(std::log2(b) - 5, 2) + std::pow((g - 9) / 3, 2) + 4 * std::pow(l - 0.3, 2) +
             std::pow((s - 1.2) * 3, 2) + std::pow((w - 2) / 3, 2));
  };
  std::vector<double> tpe, rnd;
  for (uint64_t seed = 1; seed <= 15; ++seed) {
    tpe.push_back(search(space, SamplingMethod::Tpe, seed, 60, f));
    rnd.push_back(search(space, SamplingMethod::Random, seed, 60, f));
  }
  EXPECT_GT(median(tpe), median(rnd));
}

TEST(Tpe, StartupDeterminismAndValidValues) {
  Dimension batch;
  batch.name = "batch-size";
  batch.dist = Distribution::Choice;
  batch.values = {8, 16, 32, 64};
  const SearchSpace space = space_of({batch, uniform("lambda", 0.1, 10, Distribution::LogUniform),
                                      uniform("warmup", 0, 5, Distribution::IntUniform)});
  const PointSampler design(space, tpe_config(3, 40));
  std::vector<TpeObservation> history;
  for (int k = 0; k < 9; ++k) history.push_back({design.point(k), TpeObservation::State::Completed, 0.1 * k, 1, k});
  // Fewer than n_startup_trials finished (running ones do not count): the design point.
  history.push_back({design.point(9), TpeObservation::State::Running, 0, 0, 9});
  EXPECT_EQ(to_json(suggest_tpe(space, history, TpeOptions{}, 77, design.point(10))), to_json(design.point(10)));
  history.back().state = TpeObservation::State::Completed;
  const Point a = suggest_tpe(space, history, TpeOptions{}, 77, design.point(10));
  EXPECT_EQ(to_json(a), to_json(suggest_tpe(space, history, TpeOptions{}, 77, design.point(10))));
  EXPECT_NE(to_json(a), to_json(design.point(10)));
  for (uint64_t seed = 0; seed < 50; ++seed) {
    const Point p = suggest_tpe(space, history, TpeOptions{}, seed, design.point(10));
    const auto b = find_value(p, "batch-size")->as_int();
    EXPECT_TRUE(b == 8 || b == 16 || b == 32 || b == 64);
    const double l = find_value(p, "lambda")->as_double();
    EXPECT_GE(l, 0.1);
    EXPECT_LE(l, 10);
    const auto w = find_value(p, "warmup")->as_int();
    EXPECT_GE(w, 0);
    EXPECT_LE(w, 5);
  }
}

}  // namespace
}  // namespace lmsweep::sweep
