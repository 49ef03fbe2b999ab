// A port of Optuna's PED-ANOVA importance (optuna/importance/_ped_anova/evaluator.py and
// scott_parzen_estimator.py, Optuna 4.x/5.x): same grid, same Scott bandwidth, same prior
// kernel, same Pearson divergence. lmsweep's spaces have no conditional parameters, so every
// parameter has one "regime" (all trials) and the regime weights of evaluate() are 1.
#include "report/importance.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace lmsweep::report {

namespace {

using sweep::Dimension;
using sweep::Distribution;

struct Observed {
  const TrialData* trial = nullptr;
  double value = 0;
};

bool single(const Dimension& d) {
  if (d.dist == Distribution::Fixed) return true;
  if (d.dist == Distribution::Choice) return d.values.size() < 2;
  return d.low == d.high;
}

bool known_objective(const StudyData& data, const std::string& name) {
  if (std::find(data.objectives.begin(), data.objectives.end(), name) != data.objectives.end()) return true;
  if (db::is_objective(name)) return true;
  for (const auto& t : data.trials)
    for (const auto& e : t.epochs)
      if (db::epoch_value(e, name)) return true;
  return false;
}

// Completed trials with a finite value at their best epoch (Optuna: COMPLETE, finite values).
std::vector<Observed> completed(const StudyData& data, const std::string& objective) {
  std::vector<Observed> out;
  for (const auto& t : data.trials) {
    if (t.info.status != db::TrialStatus::Completed) continue;
    const db::EpochRecord* e = best_epoch(t, objective);
    if (e == nullptr) continue;
    const auto v = db::epoch_value(*e, objective);
    if (v && std::isfinite(*v)) out.push_back({&t, *v});
  }
  return out;
}

// evaluator.py _QuantileFilter.filter: the top `quantile` by loss, ties at the cut-off kept.
std::vector<Observed> top_quantile(const std::vector<Observed>& trials, double quantile, bool lower_better) {
  if (quantile == 1.0) return trials;
  const double sign = lower_better ? 1.0 : -1.0;
  std::vector<double> loss;
  for (const auto& t : trials) loss.push_back(sign * t.value);
  const auto cutoff_index = static_cast<size_t>(std::ceil(quantile * static_cast<double>(loss.size())) - 1);
  std::vector<double> sorted = loss;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(cutoff_index), sorted.end());
  const double cutoff = sorted[cutoff_index];
  std::vector<Observed> out;
  for (size_t i = 0; i < trials.size(); ++i)
    if (loss[i] <= cutoff) out.push_back(trials[i]);
  return out;
}

// The grid: its size, and where a trial's parameter falls on it.
struct Grid {
  bool categorical = false;
  size_t size = 0;
  double low = 0, step = 1;  // numerical: value (log for loguniform) -> index
};

Grid make_grid(const Dimension& d, int n_steps) {
  if (d.dist == Distribution::Choice) return {true, d.values.size(), 0, 1};
  // scott_parzen_estimator.py _count_numerical_param_in_grid: ints step 1, reals n_steps.
  size_t n = static_cast<size_t>(n_steps);
  if (d.dist == Distribution::IntUniform) n = std::min(static_cast<size_t>(std::llround(d.high - d.low)) + 1, n);
  const bool log = d.dist == Distribution::LogUniform;
  const double low = log ? std::log(d.low) : d.low, high = log ? std::log(d.high) : d.high;
  return {false, n, low, (high - low) / static_cast<double>(n - 1)};
}

size_t grid_index(const Dimension& d, const Grid& g, const TrialData& t) {
  const auto it = t.params.find(d.name);
  LMSWEEP_CHECK(it != t.params.end(), "trial {} has no parameter {} although the study's [space] sweeps it",
                t.info.number, d.name);
  const auto v = sweep::ParamValue::from_json(*it);
  if (g.categorical) {
    for (size_t i = 0; i < d.values.size(); ++i)
      if (d.values[i] == v || (!v.is_string() && !d.values[i].is_string() && d.values[i].as_double() == v.as_double()))
        return i;
    throw_error("trial {}: parameter {} = {} is not one of the choices {} of the study's [space]", t.info.number,
                d.name, it->dump(), d.to_json().dump());
  }
  LMSWEEP_CHECK(!v.is_string(), "trial {}: parameter {} = {} is not a number, but [space] says {}", t.info.number,
                d.name, it->dump(), d.to_json().dump());
  const double x = d.dist == Distribution::LogUniform ? std::log(v.as_double()) : v.as_double();
  // "For backward compatibility, midpoint ties go to the lower grid."
  const double i = std::ceil((x - g.low) / g.step - 0.5);
  return static_cast<size_t>(std::clamp(i, 0.0, static_cast<double>(g.size - 1)));
}

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

// Mass of N(0, 1) in [a, b], computed in the tail where it is accurate (as _truncnorm does).
double gauss_mass(double a, double b) {
  if (b <= 0) return normal_cdf(b) - normal_cdf(a);
  if (a > 0) return normal_cdf(-a) - normal_cdf(-b);
  return 1.0 - normal_cdf(a) - normal_cdf(-b);
}

// ScottParzenEstimator on the integer grid 0..n-1 (_calculate_numerical_distributions): one
// discrete truncated normal kernel per occupied grid point, weighted by its count, plus a
// prior kernel at the centre with sigma = n; returns the pdf at every grid point.
std::vector<double> numerical_pdf(const std::vector<int64_t>& counts, double prior_weight) {
  const size_t n = counts.size();
  std::vector<double> mus, w;
  int64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    if (counts[i] == 0) continue;
    mus.push_back(static_cast<double>(i));
    w.push_back(static_cast<double>(counts[i]));
    total += counts[i];
  }
  const double wsum = static_cast<double>(total);
  double mean = 0, var = 0;
  for (size_t k = 0; k < mus.size(); ++k) mean += mus[k] * w[k] / wsum;
  for (size_t k = 0; k < mus.size(); ++k) var += (mus[k] - mean) * (mus[k] - mean) * w[k];
  double sigma = std::sqrt(var / std::max(1.0, wsum - 1));
  // np.searchsorted over the cumulative counts for the quartiles (integer division as numpy's //).
  std::vector<int64_t> cum(mus.size());
  int64_t acc = 0;
  for (size_t k = 0; k < mus.size(); ++k) cum[k] = acc += static_cast<int64_t>(w[k]);
  const size_t q1 = std::lower_bound(cum.begin(), cum.end(), total / 4) - cum.begin();
  const size_t q3 = std::upper_bound(cum.begin(), cum.end(), total * 3 / 4) - cum.begin();
  const double iqr = mus[std::min(mus.size() - 1, q3)] - mus[q1];
  sigma = 1.059 * std::min(iqr / 1.34, sigma) * std::pow(wsum, -0.2);
  sigma = std::max(sigma, 0.5 / 1.64);  // "1.64 sigma (=90%) will fit in the target grid"
  mus.push_back(static_cast<double>(n - 1) / 2.0);
  w.push_back(prior_weight);
  std::vector<double> sigmas(mus.size(), sigma);
  sigmas.back() = static_cast<double>(n);
  const double norm = wsum + prior_weight;
  std::vector<double> pdf(n, 0.0);
  const double lo = -0.5, hi = static_cast<double>(n - 1) + 0.5;
  for (size_t k = 0; k < mus.size(); ++k) {
    const double m = mus[k], s = sigmas[k];
    const double z = gauss_mass((lo - m) / s, (hi - m) / s);
    for (size_t x = 0; x < n; ++x) {
      const double xd = static_cast<double>(x);
      pdf[x] += w[k] / norm * gauss_mass((xd - 0.5 - m) / s, (xd + 0.5 - m) / s) / z;
    }
  }
  return pdf;
}

// _calculate_categorical_distributions: per observed choice a kernel prior/(k+1) everywhere
// plus 1 at the choice (row-normalised), and a uniform prior kernel.
std::vector<double> categorical_pdf(const std::vector<int64_t>& counts, double prior_weight) {
  const size_t c = counts.size();
  size_t observed = 0;
  int64_t total = 0;
  for (const auto n : counts) {
    if (n == 0) continue;
    ++observed;
    total += n;
  }
  const double n_kernels = static_cast<double>(observed + 1);
  const double base = prior_weight / n_kernels;
  const double row_sum = base * static_cast<double>(c) + 1.0;
  const double norm = static_cast<double>(total) + prior_weight;
  std::vector<double> pdf(c, 0.0);
  for (size_t i = 0; i < c; ++i) {
    if (counts[i] == 0) continue;
    const double wk = static_cast<double>(counts[i]) / norm;
    for (size_t x = 0; x < c; ++x) pdf[x] += wk * (base + (x == i ? 1.0 : 0.0)) / row_sum;
  }
  const double prior_row = base * static_cast<double>(c);
  for (size_t x = 0; x < c; ++x) pdf[x] += prior_weight / norm * (prior_row > 0 ? base / prior_row : 0.0);
  return pdf;
}

std::vector<double> grid_pdf(const Dimension& d, const Grid& g, const std::vector<Observed>& trials,
                             double prior_weight) {
  std::vector<int64_t> counts(g.size, 0);
  for (const auto& t : trials) ++counts[grid_index(d, g, *t.trial)];
  return g.categorical ? categorical_pdf(counts, prior_weight) : numerical_pdf(counts, prior_weight);
}

// evaluator.py _compute_pearson_divergence.
double pearson_divergence(const Dimension& d, const std::vector<Observed>& target,
                          const std::vector<Observed>& region, const ImportanceOptions& o) {
  const Grid g = make_grid(d, o.n_steps);
  const std::vector<double> top = grid_pdf(d, g, target, o.prior_weight);
  const std::vector<double> local = o.evaluate_on_local ? grid_pdf(d, g, region, o.prior_weight)
                                                        : std::vector<double>(g.size, 1.0 / static_cast<double>(g.size));
  double sum = 0;
  for (size_t x = 0; x < g.size; ++x) {
    const double p = top[x] + 1e-12, q = o.evaluate_on_local ? local[x] + 1e-12 : local[x];
    sum += q * (p / q - 1) * (p / q - 1);
  }
  return sum;
}

void normalize_and_sort(std::vector<ParamImportance>& out, bool normalize) {
  if (normalize) {
    double s = 0;
    for (const auto& p : out) s += p.importance;
    // importance/__init__.py get_param_importances: all equal when they sum to 0.
    for (auto& p : out) p.importance = s == 0.0 ? 1.0 / static_cast<double>(out.size()) : p.importance / s;
  }
  std::sort(out.begin(), out.end(), [](const ParamImportance& a, const ParamImportance& b) {
    return a.importance != b.importance ? a.importance > b.importance : a.param < b.param;
  });
}

}  // namespace

std::vector<ParamImportance> param_importances(const StudyData& data, const ImportanceOptions& o) {
  const std::string objective = o.objective.value_or(data.objective());
  LMSWEEP_CHECK(known_objective(data, objective),
                "study {}: unknown objective '{}': its objectives are {}; epoch columns: {}", data.study.name,
                objective, fmt::join(data.objectives, ", "), fmt::join(db::objective_names(), ", "));
  LMSWEEP_CHECK(0 < o.target_quantile && o.target_quantile < o.region_quantile && o.region_quantile <= 1,
                "importance: need 0 < target quantile ({}) < region quantile ({}) <= 1", o.target_quantile,
                o.region_quantile);
  std::vector<const Dimension*> swept;
  for (const auto& d : data.space.dimensions())
    if (!single(d)) swept.push_back(&d);
  LMSWEEP_CHECK(swept.size() >= 2,
                "study {}: its [space] sweeps {} dimension(s) ({}); importance ranks two or more (fixed ones and "
                "ones with a single value do not count)",
                data.study.name, swept.size(), data.space.empty() ? "the study has no space" : data.space.canonical());
  const auto trials = completed(data, objective);
  LMSWEEP_CHECK(!trials.empty(), "study {}: no completed trial recorded {} yet; wait for trials to complete",
                data.study.name, objective);
  LMSWEEP_CHECK(trials.size() >= static_cast<size_t>(o.min_trials),
                "study {}: {} completed trial(s) recorded {}; importance needs at least {}", data.study.name,
                trials.size(), objective, o.min_trials);
  const bool lower_better = !db::objective_maximized(objective);
  const auto target = top_quantile(trials, o.target_quantile, lower_better);
  const auto region = top_quantile(trials, o.region_quantile, lower_better);
  // Theorem 4.2 of the paper: the divergence scaled by (gamma' / gamma)^2.
  const double q = static_cast<double>(target.size()) / static_cast<double>(region.size());
  std::vector<ParamImportance> out;
  for (const Dimension* d : swept) out.push_back({d->name, q * q * pearson_divergence(*d, target, region, o)});
  normalize_and_sort(out, o.normalize);
  return out;
}

std::string importance_report(const std::vector<ParamImportance>& importances, const std::string& format) {
  if (format == "json") {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& p : importances) j.push_back({{"param", p.param}, {"importance", p.importance}});
    return j.dump(2) + "\n";
  }
  LMSWEEP_CHECK(format == "table", "--format {}: unknown format; use table or json", format);
  size_t width = 9;  // "parameter"
  for (const auto& p : importances) width = std::max(width, p.param.size());
  std::string out = fmt::format("{:<{}}  {:>10}\n", "parameter", width, "importance");
  for (const auto& p : importances) out += fmt::format("{:<{}}  {:>10.4f}\n", p.param, width, p.importance);
  return out;
}

}  // namespace lmsweep::report
