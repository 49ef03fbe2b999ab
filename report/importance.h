#pragma once
// Parameter importance: a port of Optuna's PedAnovaImportanceEvaluator (Optuna >= 3.6,
// optuna/importance/_ped_anova/evaluator.py and scott_parzen_estimator.py; PED-ANOVA,
// Watanabe et al., IJCAI 2023, arXiv:2304.10255), the evaluator get_param_importances() uses
// by default since Optuna 4.
//
//   auto data = lmsweep::report::load_study(store, std::nullopt);
//   auto ranked = lmsweep::report::param_importances(data);   // the study's first objective
//   std::cout << lmsweep::report::importance_report(ranked, "table");
//
// The method: take the completed trials (value = the objective at the trial's best epoch),
// keep the top `target_quantile` of them (ties at the cut-off kept). For each swept parameter,
// put its values on a grid (50 points over [low, high], log scale for loguniform; every integer
// of a small int range; a choice's values), fit a Parzen estimator (Scott's bandwidth, one
// prior kernel) to the top trials and one to all of them, and measure how far apart they are
// with the Pearson divergence sum_x p_all(x) (p_top(x) / p_all(x) - 1)^2. A parameter whose
// good values concentrate where the trials did not is important. The divergences are then
// normalised to sum to 1 (all equal when every divergence is 0), as get_param_importances does.
#include <optional>
#include <string>
#include <vector>

#include "report/study_data.h"

namespace lmsweep::report {

struct ParamImportance {
  std::string param;
  double importance = 0;
};

struct ImportanceOptions {
  std::optional<std::string> objective;  // default: the study's first objective
  double target_quantile = 0.1;          // gamma' of the paper: "what it takes to be top 10%"
  double region_quantile = 1.0;          // gamma: 1.0 = measured against every trial
  bool evaluate_on_local = true;         // false: against a uniform density on the grid
  int n_steps = 50;                      // grid points of a real dimension
  double prior_weight = 1.0;             // weight of the estimators' prior kernel
  int min_trials = 2;                    // Optuna returns all-zero importances below 2
  bool normalize = true;                 // sum to 1, as get_param_importances(normalize=True)
};

// Importances of the swept dimensions (not fixed, more than one value), most important first
// (ties by name). Throws lmsweep::Error naming the study when: the objective is unknown (not
// a study objective, an epoch column or a metric any trial recorded); no completed trial
// recorded it; fewer than options.min_trials did; the space has fewer than two swept
// dimensions (a ranking of one is no information); a completed trial lacks a swept parameter
// or holds a value its dimension cannot (a string for a real, a value not among the choices).
std::vector<ParamImportance> param_importances(const StudyData& data, const ImportanceOptions& options = {});

// "table": one line per parameter, "param  importance" aligned, with a header;
// "json": [{"param": "lambda", "importance": 0.61}, ...], most important first.
// Throws lmsweep::Error for another format.
std::string importance_report(const std::vector<ParamImportance>& importances, const std::string& format);

}  // namespace lmsweep::report
