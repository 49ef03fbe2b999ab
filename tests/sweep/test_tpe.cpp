// TPE (sweep/tpe.h): Optuna's gamma and weights, lmsweep's and Optuna's defaults, the startup
// design, determinism, and a search that learns: better than random on small test functions
// with the same budget, with either defaults.
#include <algorithm>
#include <cmath>
#include <functional>
#include <iostream>
#include <vector>

#include <gtest/gtest.h>

#include "sweep/pareto.h"
#include "sweep/point_sampler.h"
#include "sweep/tpe.h"

namespace lmsweep::sweep {
namespace {

TEST(Tpe, GammaAndWeightsAreOptunasDefaults) {
  EXPECT_EQ(tpe_gamma(1, 0.1), 1);
  EXPECT_EQ(tpe_gamma(10, 0.1), 1);
  EXPECT_EQ(tpe_gamma(11, 0.1), 2);
  EXPECT_EQ(tpe_gamma(1000, 0.1), 25);
  EXPECT_EQ(tpe_gamma(20, 0.15), 3);
  EXPECT_EQ(tpe_gamma(21, 0.15), 4);
  EXPECT_EQ(tpe_weights(24), std::vector<double>(24, 1.0));
  // numpy.concatenate([numpy.linspace(1 / 30, 1, 5), numpy.ones(25)])
  const auto w = tpe_weights(30);
  ASSERT_EQ(w.size(), 30u);
  EXPECT_NEAR(w[0], 1.0 / 30, 1e-12);
  EXPECT_NEAR(w[1], 1.0 / 30 + (1 - 1.0 / 30) / 4, 1e-12);
  EXPECT_NEAR(w[4], 1.0, 1e-12);
  EXPECT_EQ(w[29], 1.0);
}

TEST(Tpe, LmsweepAndOptunaDefaults) {
  const TpeOptions ours, optuna = TpeOptions::optuna();
  EXPECT_EQ(ours.n_ei_candidates, 48);
  EXPECT_EQ(ours.gamma, 0.15);
  EXPECT_EQ(ours.categorical_prior_weight, 3.0);
  EXPECT_EQ(ours.bandwidth, 0.8);
  // Optuna 5.1's TPESampler(): n_ei_candidates=24, default_gamma 0.1, prior_weight=1.0 (also
  // for categorical distributions), bandwidths as computed.
  EXPECT_EQ(optuna.n_ei_candidates, 24);
  EXPECT_EQ(optuna.gamma, 0.1);
  EXPECT_EQ(optuna.prior_weight, 1.0);
  EXPECT_EQ(optuna.categorical_prior_weight, 1.0);
  EXPECT_EQ(optuna.bandwidth, 1.0);
  EXPECT_EQ(optuna.n_startup_trials, 10);
}

TEST(Tpe, OptionsFromTheSweepConfig) {
  SweepConfig c;
  c.method = SamplingMethod::Tpe;
  c.n_startup_trials = 5;
  EXPECT_EQ(tpe_options(c).n_ei_candidates, 48);
  EXPECT_EQ(tpe_options(c).n_startup_trials, 5);
  c.tpe_defaults = TpeDefaults::Optuna;
  c.tpe_bandwidth = 0.5;
  const TpeOptions o = tpe_options(c);
  EXPECT_EQ(o.n_ei_candidates, 24);
  EXPECT_EQ(o.gamma, 0.1);
  EXPECT_EQ(o.categorical_prior_weight, 1.0);
  EXPECT_EQ(o.bandwidth, 0.5);  // given: overrides Optuna's
  EXPECT_EQ(o.n_startup_trials, 5);
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
              const std::function<double(const Point&)>& f, const TpeOptions& options = {}) {
  SweepConfig c = tpe_config(seed, budget);
  c.method = method == SamplingMethod::Random ? SamplingMethod::Random : SamplingMethod::Tpe;
  const PointSampler design(space, c);
  std::vector<TpeObservation> history;
  double best = -1e300;
  for (int k = 0; k < budget; ++k) {
    const Point p = method == SamplingMethod::Random
                        ? design.point(k)
                        : suggest_tpe(space, history, options, design.seed(k), design.point(k));
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
  std::vector<double> tpe, optuna, rnd;
  for (uint64_t seed = 1; seed <= 15; ++seed) {
    tpe.push_back(search(space, SamplingMethod::Tpe, seed, 60, f));
    optuna.push_back(search(space, SamplingMethod::Tpe, seed, 60, f, TpeOptions::optuna()));
    rnd.push_back(search(space, SamplingMethod::Random, seed, 60, f));
  }
  EXPECT_GT(median(tpe), median(rnd));
  EXPECT_GT(median(optuna), median(rnd));
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

namespace lmsweep::sweep {
namespace {

// ZDT1 in 4 dimensions (both objectives negated, maximised): the front is f2 = 1 - sqrt(f1) at
// x1 = x2 = x3 = 0. Returns the hypervolume of the points found over the reference (-1, -10).
double zdt1_search(bool motpe, uint64_t seed, int budget) {
  std::vector<Dimension> dims;
  for (const char* n : {"x0", "x1", "x2", "x3"}) {
    Dimension d;
    d.name = n;
    d.dist = Distribution::Uniform;
    d.low = 0;
    d.high = 1;
    dims.push_back(d);
  }
  const SearchSpace space(dims);
  SweepConfig c;
  c.name = "mo";
  c.method = motpe ? SamplingMethod::Tpe : SamplingMethod::Random;
  c.seed = seed;
  c.trials = budget;
  const PointSampler design(space, c);
  std::vector<TpeObservation> history;
  std::vector<std::vector<double>> found;
  for (int k = 0; k < budget; ++k) {
    const Point p = motpe ? suggest_tpe(space, history, TpeOptions{}, design.seed(k), design.point(k)) : design.point(k);
    const double x0 = find_value(p, "x0")->as_double();
    const double g = 1 + 9 * (find_value(p, "x1")->as_double() + find_value(p, "x2")->as_double() +
                              find_value(p, "x3")->as_double()) / 3;
    const std::vector<double> v = {-x0, -g * (1 - std::sqrt(x0 / g))};
    found.push_back(v);
    TpeObservation o{p, TpeObservation::State::Completed, v[0], 1, k};
    o.values = v;
    history.push_back(o);
  }
  return hypervolume(found, {-1.0, -10.0});
}

TEST(Motpe, ImprovesTheHypervolumeOverRandom) {
  std::vector<double> mo, rnd;
  for (uint64_t seed = 1; seed <= 11; ++seed) {
    mo.push_back(zdt1_search(true, seed, 60));
    rnd.push_back(zdt1_search(false, seed, 60));
  }
  std::sort(mo.begin(), mo.end());
  std::sort(rnd.begin(), rnd.end());
  // The ideal front's hypervolume over (-1, -10) is 10 - 1/3 = 9.667.
  std::cout << "median hypervolume over 11 seeds, 60 evaluations: MOTPE " << mo[5] << ", random " << rnd[5] << "\n";
  EXPECT_GT(mo[5], rnd[5]) << "MOTPE " << mo[5] << " random " << rnd[5];
  EXPECT_LE(mo[5], 9.667);
}

}  // namespace
}  // namespace lmsweep::sweep
