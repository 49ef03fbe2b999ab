#pragma once
// The Tree-structured Parzen Estimator (Bergstra et al. 2011), multivariate, with Optuna's
// semantics (optuna/samplers/_tpe/sampler.py, parzen_estimator.py, Optuna 5.1):
//  - the first n_startup_trials points come from the study's Sobol design (PointSampler);
//  - observations, best first: completed trials by value, then pruned ones by the epoch they
//    reached (later first) and their last value, then running ones (the constant liar: counted
//    among the worst, so parallel groups are not sent to the same place); failed ones are left
//    out. The best gamma(n) = min(ceil(gamma n), 25), n the finished ones, form l(x), the rest
//    (running ones among them) g(x);
//  - each group is a mixture with one kernel per observation and a prior kernel (weight
//    prior_weight); observations weigh by age as Optuna's default_weights (the 25 newest 1,
//    older ones on a ramp down to 1/n);
//  - numerical dimensions: truncated Gaussians in the dimension's own scale (log for
//    loguniform), each kernel `bandwidth` times as wide as the larger gap to its neighbours
//    (the outermost by their inner gap: consider_endpoints = False), clipped to
//    [(high - low) / min(100, 2 + n), high - low] (the magic clip); the prior
//    N((low+high)/2, high - low) (Optuna 5's parzen_estimator.py, the same for its
//    multivariate estimator). Integers are bins of width 1 ([low - 0.5, high + 0.5]);
//  - choice dimensions: per observation categorical_prior_weight / (n + 1) on every value plus
//    1 on its own, normalised; the prior uniform;
//  - n_ei_candidates points drawn from l, the one with the largest log l(x) - log g(x) wins;
//  - several objectives (observations with `values`; Optuna's MOTPE, sampler.py
//    _split_complete_trials_multi_objective, Optuna 5.1): gamma(n) = ceil(0.1 n) without the
//    cap, the completed trials split by non-domination fronts, the last front cut by greedy
//    hypervolume subset selection; l's kernels weigh 1 each; pruned and running trials go to
//    g. Unlike Optuna's default for several objectives the estimator stays multivariate.
// Defaults: TpeOptions{} is lmsweep's, TpeOptions::optuna() Optuna 5.1's (gamma 0.1, 24
// candidates, categorical prior 1, bandwidth 1). Ours take 15 % of the finished trials for l
// (Optuna's 10 % gives l a single kernel until trial 11), draw twice the candidates, give the
// prior of choice dimensions three times the weight (with 1, l locks onto the first good
// choice of batch size) and keep kernels 0.8 times as wide. Chosen on the sampler benchmark's
// seeds 1..200, checked on seeds 201..400 and three functions not tuned on (bench/README.md).
// Deterministic in (history, seed): the same history gives the same point. Torch-free.
#include <cstdint>
#include <vector>

#include "sweep/point_sampler.h"
#include "sweep/search_space.h"

namespace lmsweep::sweep {

struct TpeObservation {
  enum class State { Completed, Pruned, Running };
  Point point;
  State state = State::Completed;
  double value = 0;    // the objective (completed: the trial's best; pruned: its last); ignored for running
  int64_t epochs = 0;  // reached (orders pruned trials)
  int64_t number = 0;  // the trial number (orders observations by age)
  // Several objectives (MOTPE, all maximised): a completed trial's values, else empty.
  std::vector<double> values;
};

struct TpeOptions {
  int n_startup_trials = 10;
  int n_ei_candidates = 48;
  double gamma = 0.15;                    // one objective: l(x) takes min(ceil(gamma n), 25) trials
  double prior_weight = 1.0;              // the prior kernel's weight in each mixture
  double categorical_prior_weight = 3.0;  // choice dimensions: the prior's share in each kernel
  double bandwidth = 0.8;                 // factor on the numerical kernels' widths, before the clip
  bool maximize = true;

  static TpeOptions optuna();  // Optuna 5.1's TPESampler defaults
};

// The estimator's settings of a study: [sweep] tpe_defaults (lmsweep | optuna), then the
// tpe_* keys given, and n_startup_trials.
TpeOptions tpe_options(const SweepConfig& config);

// gamma(n) = min(ceil(fraction n), 25) (Optuna's default_gamma with fraction 0.1); weights(n):
// ones for n < 25, else a ramp from 1/n to 1 over the n - 25 oldest and ones for the 25 newest
// (oldest first; Optuna's default_weights).
int tpe_gamma(int n, double fraction);
std::vector<double> tpe_weights(int n);

// The point TPE suggests from `history` (Completed and Pruned observations count toward
// n_startup_trials), with `seed` for its draws. `startup` is the point used while the history
// is too short (the Sobol design point of this trial).
Point suggest_tpe(const SearchSpace& space, const std::vector<TpeObservation>& history, const TpeOptions& options,
                  uint64_t seed, const Point& startup);

}  // namespace lmsweep::sweep
