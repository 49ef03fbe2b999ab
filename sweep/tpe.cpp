#include "sweep/tpe.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "sweep/pareto.h"

namespace lmsweep::sweep {
namespace {

constexpr double kLogFloor = -1e300;

// Counter-based draws: (seed, counter) -> bits, so a suggestion is a function of its seed.
class Draws {
 public:
  explicit Draws(uint64_t seed) : seed_(splitmix64(seed ^ 0x7465u)) {}
  double uniform() { return to_unit_interval(splitmix64(seed_ + ++counter_)); }
  double normal() {  // Box-Muller
    const double u1 = std::max(uniform(), 1e-300), u2 = uniform();
    return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
  }

 private:
  uint64_t seed_, counter_ = 0;
};

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

double log_sum_exp(const std::vector<double>& v) {
  const double m = *std::max_element(v.begin(), v.end());
  if (!std::isfinite(m)) return m;
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s);
}

// A non-fixed dimension in the estimator's domain.
struct Axis {
  const Dimension* dim = nullptr;
  bool categorical = false, integer = false, log_scale = false;
  double low = 0, high = 0;  // of the domain: log for loguniform, widened by 0.5 for int
};

Axis axis_of(const Dimension& d) {
  Axis a;
  a.dim = &d;
  a.categorical = d.dist == Distribution::Choice;
  a.integer = d.dist == Distribution::IntUniform;
  a.log_scale = d.dist == Distribution::LogUniform;
  a.low = a.log_scale ? std::log(d.low) : d.low - (a.integer ? 0.5 : 0.0);
  a.high = a.log_scale ? std::log(d.high) : d.high + (a.integer ? 0.5 : 0.0);
  return a;
}

// A value of the axis as the estimator sees it: a choice's index, or the domain coordinate.
double encode(const Axis& a, const ParamValue& v) {
  if (a.categorical) {
    const auto& values = a.dim->values;
    const auto it = std::find(values.begin(), values.end(), v);
    LMSWEEP_CHECK(it != values.end(), "tpe: {} = {} is not one of its choices", a.dim->name, to_flag_value(v));
    return static_cast<double>(it - values.begin());
  }
  return a.log_scale ? std::log(v.as_double()) : v.as_double();
}

ParamValue decode(const Axis& a, double x) {
  const Dimension& d = *a.dim;
  if (a.categorical) return d.values[static_cast<size_t>(x)];
  if (a.integer) return static_cast<int64_t>(std::clamp(std::round(x), d.low, d.high));
  return std::clamp(a.log_scale ? std::exp(x) : x, d.low, d.high);
}

// Optuna's bandwidths (parzen_estimator.py, _calculate_numerical_distributions): each kernel
// as wide as the larger gap to its neighbours among the observations and the two bounds, the
// outermost ones by their inner gap only (consider_endpoints = False), times `bandwidth`, then
// the magic clip to [(high - low) / min(100, 1 + kernels), high - low], the prior counted among
// the kernels.
std::vector<double> neighbour_sigmas(const std::vector<double>& mus, double low, double high, double bandwidth) {
  const size_t n = mus.size();
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return mus[x] < mus[y]; });
  std::vector<double> e{low};  // sorted, with the bounds
  for (size_t i : order) e.push_back(mus[i]);
  e.push_back(high);
  std::vector<double> sorted_sigma(n);
  for (size_t i = 0; i < n; ++i) sorted_sigma[i] = std::max(e[i + 1] - e[i], e[i + 2] - e[i + 1]);
  if (n >= 2) {
    sorted_sigma[0] = e[2] - e[1];
    sorted_sigma[n - 1] = e[n] - e[n - 1];
  }
  const double min_sigma = (high - low) / std::min(100.0, 1.0 + static_cast<double>(n + 1)), max_sigma = high - low;
  std::vector<double> sigma(n);
  for (size_t i = 0; i < n; ++i) sigma[order[i]] = std::clamp(bandwidth * sorted_sigma[i], min_sigma, max_sigma);
  return sigma;
}

// One group's mixture: kernel i < n is observation i, kernel n the prior.
struct Mixture {
  std::vector<double> log_weight;                        // [kernel]
  std::vector<std::vector<double>> mu, sigma;            // [axis][kernel] (numerical axes)
  std::vector<std::vector<std::vector<double>>> probs;   // [axis][kernel][choice] (choice axes)
};

Mixture build_mixture(const std::vector<Axis>& axes, const std::vector<std::vector<double>>& obs,
                      const TpeOptions& o, std::vector<double> w) {
  const int n = static_cast<int>(obs.size());
  Mixture m;
  w.push_back(o.prior_weight);
  double total = 0;
  for (double x : w) total += x;
  for (double x : w) m.log_weight.push_back(std::log(x / total));
  m.mu.resize(axes.size());
  m.sigma.resize(axes.size());
  m.probs.resize(axes.size());
  for (size_t a = 0; a < axes.size(); ++a) {
    const Axis& ax = axes[a];
    if (ax.categorical) {
      const size_t k = ax.dim->values.size();
      for (int i = 0; i <= n; ++i) {
        std::vector<double> p(k, o.categorical_prior_weight / static_cast<double>(n + 1));  // prior / kernels
        if (i < n) p[static_cast<size_t>(obs[i][a])] += 1;
        double s = 0;
        for (double x : p) s += x;
        for (double& x : p) x /= s;
        m.probs[a].push_back(std::move(p));
      }
      continue;
    }
    const double range = ax.high - ax.low;
    std::vector<double> mus;
    for (int i = 0; i < n; ++i) mus.push_back(obs[i][a]);
    m.mu[a] = mus;
    m.sigma[a] = neighbour_sigmas(mus, ax.low, ax.high, o.bandwidth);
    m.mu[a].push_back(0.5 * (ax.low + ax.high));
    m.sigma[a].push_back(range);
  }
  return m;
}

// log of kernel i's density (choice: probability) of x on axis a.
double log_kernel(const Mixture& m, const Axis& ax, size_t a, size_t i, double x) {
  if (ax.categorical) return std::log(std::max(m.probs[a][i][static_cast<size_t>(x)], 1e-300));
  const double mu = m.mu[a][i], s = m.sigma[a][i];
  const double z = normal_cdf((ax.high - mu) / s) - normal_cdf((ax.low - mu) / s);
  if (ax.integer) {  // the mass of x's bin
    const double p = normal_cdf((x + 0.5 - mu) / s) - normal_cdf((x - 0.5 - mu) / s);
    return std::log(std::max(p, 1e-300)) - std::log(std::max(z, 1e-300));
  }
  const double u = (x - mu) / s;
  return -0.5 * u * u - std::log(s * std::sqrt(2 * M_PI)) - std::log(std::max(z, 1e-300));
}

double log_density(const Mixture& m, const std::vector<Axis>& axes, const std::vector<double>& x) {
  std::vector<double> terms(m.log_weight.size());
  for (size_t i = 0; i < terms.size(); ++i) {
    double t = m.log_weight[i];
    for (size_t a = 0; a < axes.size(); ++a) t += log_kernel(m, axes[a], a, i, x[a]);
    terms[i] = std::max(t, kLogFloor);
  }
  return log_sum_exp(terms);
}

size_t draw_index(const std::vector<double>& log_p, Draws& draws) {
  double u = draws.uniform(), acc = 0;
  for (size_t i = 0; i < log_p.size(); ++i) {
    acc += std::exp(log_p[i]);
    if (u < acc) return i;
  }
  return log_p.size() - 1;
}

// One draw from the mixture: a kernel, then each axis from it (numerical: truncated normal by
// rejection, at worst a uniform draw in the domain).
std::vector<double> draw(const Mixture& m, const std::vector<Axis>& axes, Draws& draws) {
  const size_t i = draw_index(m.log_weight, draws);
  std::vector<double> x(axes.size());
  for (size_t a = 0; a < axes.size(); ++a) {
    const Axis& ax = axes[a];
    if (ax.categorical) {
      std::vector<double> lp;
      for (double p : m.probs[a][i]) lp.push_back(std::log(std::max(p, 1e-300)));
      x[a] = static_cast<double>(draw_index(lp, draws));
      continue;
    }
    double v = std::numeric_limits<double>::quiet_NaN();
    for (int attempt = 0; attempt < 100 && !(v >= ax.low && v <= ax.high); ++attempt)
      v = m.mu[a][i] + m.sigma[a][i] * draws.normal();
    if (!(v >= ax.low && v <= ax.high)) v = ax.low + draws.uniform() * (ax.high - ax.low);
    x[a] = ax.integer ? std::clamp(std::round(v), ax.dim->low, ax.dim->high) : v;
  }
  return x;
}

// Best first: completed by value, pruned by (epochs reached desc, value), running last.
bool better(const TpeObservation& a, const TpeObservation& b, bool maximize) {
  auto rank = [](const TpeObservation& o) {
    return o.state == TpeObservation::State::Completed ? 0 : o.state == TpeObservation::State::Pruned ? 1 : 2;
  };
  if (rank(a) != rank(b)) return rank(a) < rank(b);
  if (a.state == TpeObservation::State::Pruned && a.epochs != b.epochs) return a.epochs > b.epochs;
  if (a.state != TpeObservation::State::Running && a.value != b.value)
    return maximize ? a.value > b.value : a.value < b.value;
  return a.number < b.number;
}


// The good (below) and bad (above) observations, each in trial order (the age weights fall on
// the oldest).
struct Split {
  std::vector<const TpeObservation*> below, above;
};

bool multi_objective(const std::vector<TpeObservation>& history) {
  return std::any_of(history.begin(), history.end(), [](const TpeObservation& o) {
    return o.state == TpeObservation::State::Completed && o.values.size() >= 2;
  });
}

// Minimised copies, as Optuna's MOTPE computes with them: its reference point beyond the worst,
// max(1.1 w, 0.9 w) per objective (0 -> 1e-12), and hypervolumes over it.
std::vector<std::vector<double>> losses(const std::vector<const TpeObservation*>& obs) {
  std::vector<std::vector<double>> out;
  for (const auto* o : obs) {
    std::vector<double> l;
    for (double v : o->values) l.push_back(-v);  // every objective is maximised
    out.push_back(std::move(l));
  }
  return out;
}

std::vector<double> reference_point(const std::vector<std::vector<double>>& loss) {
  std::vector<double> ref(loss.at(0).size(), -std::numeric_limits<double>::infinity());
  for (const auto& l : loss)
    for (size_t k = 0; k < l.size(); ++k) ref[k] = std::max(ref[k], l[k]);
  for (double& r : ref) r = r == 0 ? 1e-12 : std::max(1.1 * r, 0.9 * r);
  return ref;
}

// The hypervolume of minimised points under `ref` (pareto.h maximises: negate both).
double loss_hypervolume(const std::vector<std::vector<double>>& loss, const std::vector<double>& ref) {
  std::vector<std::vector<double>> up;
  for (const auto& l : loss) {
    std::vector<double> p;
    for (double x : l) p.push_back(-x);
    up.push_back(std::move(p));
  }
  std::vector<double> r;
  for (double x : ref) r.push_back(-x);
  return hypervolume(up, r);
}

// Non-domination ranks (0: the Pareto front) of maximised value vectors.
std::vector<int> domination_ranks(const std::vector<const TpeObservation*>& obs) {
  std::vector<std::vector<double>> points;
  for (const auto* o : obs) points.push_back(o->values);
  std::vector<int> rank(points.size(), -1);
  std::vector<size_t> left(points.size());
  for (size_t i = 0; i < left.size(); ++i) left[i] = i;
  for (int r = 0; !left.empty(); ++r) {
    std::vector<std::vector<double>> sub;
    for (size_t i : left) sub.push_back(points[i]);
    std::vector<size_t> next;
    const auto front = pareto_front(sub);
    std::vector<bool> on(left.size(), false);
    for (size_t f : front) on[f] = true;
    for (size_t j = 0; j < left.size(); ++j) {
      if (on[j]) rank[left[j]] = r;
      else next.push_back(left[j]);
    }
    left = std::move(next);
  }
  return rank;
}

// Optuna's MOTPE split of the completed trials: whole fronts while they fit in n_below, then
// from the next front the points that add the most hypervolume, one at a time (greedy HSSP).
std::vector<const TpeObservation*> best_by_fronts(const std::vector<const TpeObservation*>& done, size_t n_below) {
  const std::vector<int> rank = domination_ranks(done);
  std::vector<const TpeObservation*> below;
  for (int r = 0; below.size() < n_below; ++r) {
    std::vector<const TpeObservation*> front;
    for (size_t i = 0; i < done.size(); ++i)
      if (rank[i] == r) front.push_back(done[i]);
    if (below.size() + front.size() <= n_below) {
      below.insert(below.end(), front.begin(), front.end());
      continue;
    }
    const auto loss = losses(front);
    const auto ref = reference_point(loss);
    std::vector<std::vector<double>> chosen;
    std::vector<bool> taken(front.size(), false);
    while (below.size() < n_below) {
      size_t best = 0;
      double best_gain = -1;
      for (size_t i = 0; i < front.size(); ++i) {
        if (taken[i]) continue;
        auto with = chosen;
        with.push_back(loss[i]);
        const double gain = loss_hypervolume(with, ref);
        if (gain > best_gain) {
          best_gain = gain;
          best = i;
        }
      }
      taken[best] = true;
      chosen.push_back(loss[best]);
      below.push_back(front[best]);
    }
  }
  return below;
}

Split split_observations(const std::vector<TpeObservation>& history, int finished, const TpeOptions& options) {
  std::vector<const TpeObservation*> order;
  for (const auto& o : history) order.push_back(&o);
  // gamma counts the finished trials only; running ones (the liars) always go to g.
  const bool multi = multi_objective(history);
  // Optuna's default_gamma_multiobjective has no cap of 25.
  const int gamma = multi ? static_cast<int>(std::ceil(0.1 * finished)) : tpe_gamma(finished, options.gamma);
  const size_t n_below = std::min(order.size(), static_cast<size_t>(gamma));
  std::vector<const TpeObservation*> below;
  if (multi) {
    // As Optuna: completed trials by fronts; pruned and running ones above.
    std::vector<const TpeObservation*> done;
    for (const auto* o : order)
      if (o->state == TpeObservation::State::Completed && o->values.size() >= 2) done.push_back(o);
    below = best_by_fronts(done, std::min(n_below, done.size()));
  } else {
    std::sort(order.begin(), order.end(),
              [&](const TpeObservation* a, const TpeObservation* b) { return better(*a, *b, options.maximize); });
    below.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n_below));
  }
  Split s;
  for (const auto* o : order)
    (std::find(below.begin(), below.end(), o) != below.end() ? s.below : s.above).push_back(o);
  auto by_number = [](const TpeObservation* a, const TpeObservation* b) { return a->number < b->number; };
  std::sort(s.below.begin(), s.below.end(), by_number);
  std::sort(s.above.begin(), s.above.end(), by_number);
  return s;
}

// l(x)'s weights: Optuna's age ramp; uniform with several objectives (Optuna 5's
// _build_parzen_estimator: weights_below = ones).
std::vector<double> below_weights(const std::vector<const TpeObservation*>& below, bool multi) {
  return multi ? std::vector<double>(below.size(), 1.0) : tpe_weights(static_cast<int>(below.size()));
}

std::vector<std::vector<double>> encode(const std::vector<Axis>& axes, const std::vector<const TpeObservation*>& group) {
  std::vector<std::vector<double>> out;
  for (const auto* o : group) {
    std::vector<double> x;
    for (const auto& ax : axes) {
      const ParamValue* v = find_value(o->point, ax.dim->name);
      LMSWEEP_CHECK(v, "tpe: trial {} has no value of {}", o->number, ax.dim->name);
      x.push_back(encode(ax, *v));
    }
    out.push_back(std::move(x));
  }
  return out;
}

}  // namespace

TpeOptions TpeOptions::optuna() {
  TpeOptions o;
  o.n_ei_candidates = 24;
  o.gamma = 0.1;
  o.categorical_prior_weight = 1.0;
  o.bandwidth = 1.0;
  return o;
}

TpeOptions tpe_options(const SweepConfig& config) {
  TpeOptions o = config.tpe_defaults == TpeDefaults::Optuna ? TpeOptions::optuna() : TpeOptions{};
  o.n_startup_trials = config.n_startup_trials;
  if (config.tpe_gamma) o.gamma = *config.tpe_gamma;
  if (config.tpe_ei_candidates) o.n_ei_candidates = *config.tpe_ei_candidates;
  if (config.tpe_categorical_prior) o.categorical_prior_weight = *config.tpe_categorical_prior;
  if (config.tpe_bandwidth) o.bandwidth = *config.tpe_bandwidth;
  return o;
}

int tpe_gamma(int n, double fraction) {
  // In doubles, as Optuna's math.ceil(0.1 * n) (exact for 0.1 and 0.15 and n < 300).
  return std::min(static_cast<int>(std::ceil(fraction * n)), 25);
}

std::vector<double> tpe_weights(int n) {
  if (n < 25) return std::vector<double>(static_cast<size_t>(n), 1.0);
  std::vector<double> w;
  const int ramp = n - 25;
  for (int i = 0; i < ramp; ++i)  // numpy.linspace(1 / n, 1.0, num=n - 25)
    w.push_back(ramp == 1 ? 1.0 / n : 1.0 / n + (1.0 - 1.0 / n) * i / (ramp - 1));
  w.insert(w.end(), 25, 1.0);
  return w;
}

Point suggest_tpe(const SearchSpace& space, const std::vector<TpeObservation>& history, const TpeOptions& options,
                  uint64_t seed, const Point& startup) {
  const auto finished = std::count_if(history.begin(), history.end(), [](const TpeObservation& o) {
    return o.state != TpeObservation::State::Running;
  });
  if (finished < options.n_startup_trials) return startup;
  std::vector<Axis> axes;
  for (const auto& d : space.dimensions())
    if (d.dist != Distribution::Fixed) axes.push_back(axis_of(d));
  const Split split = split_observations(history, static_cast<int>(finished), options);
  const Mixture below =
      build_mixture(axes, encode(axes, split.below), options, below_weights(split.below, multi_objective(history)));
  const Mixture above = build_mixture(axes, encode(axes, split.above), options,
                                      tpe_weights(static_cast<int>(split.above.size())));
  Draws draws(seed);
  std::vector<double> best;
  double best_score = -std::numeric_limits<double>::infinity();
  for (int c = 0; c < options.n_ei_candidates; ++c) {
    std::vector<double> x = draw(below, axes, draws);
    const double score = log_density(below, axes, x) - log_density(above, axes, x);
    if (best.empty() || score > best_score) {
      best = std::move(x);
      best_score = score;
    }
  }
  Point p;
  size_t a = 0;
  for (const auto& d : space.dimensions()) {
    if (d.dist == Distribution::Fixed) {
      p.emplace_back(d.name, d.values.at(0));
    } else {
      p.emplace_back(d.name, decode(axes[a], best[a]));
      ++a;
    }
  }
  return p;
}

}  // namespace lmsweep::sweep
