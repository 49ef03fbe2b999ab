#pragma once
// What `best`, `status` and the end of `sweep` print, from the database (torch-free).
#include <optional>
#include <string>
#include <vector>

#include "db/store.h"

namespace lmsweep::cli {

struct BestOptions {
  std::optional<std::string> study;  // none: every study
  std::optional<std::string> objective;  // none: each study's own
  int64_t top = 10;
  std::string format = "table";      // table | csv | json | markdown
  bool pareto = false;               // the non-dominated (trial, epoch) pairs instead
  // Of the front (maximised); empty: the study's [sweep] objectives, else map_head, map_tail.
  std::vector<std::string> objectives;
};

// Trials ranked by their best epoch's objective: their parameters and that epoch's mAP total /
// head / middle / tail. table / markdown: the Table-3 layout (best hyperparameters per study),
// the Table-1 row of the best trial, then the ranking.
// With options.pareto: every (trial, epoch) no other one beats in all `objectives`, best first
// by the first objective, with the parameters, and (table / markdown) the hypervolume over the
// reference 0 (json: a list of {study, trial, status, epoch, params, <objective>: value}).
std::string best_report(db::Store& store, const BestOptions& options);

struct StatusOptions {
  std::optional<std::string> study;
  std::string format = "table";  // table | json
};
std::string status_report(db::Store& store, const StatusOptions& options);

}  // namespace lmsweep::cli
