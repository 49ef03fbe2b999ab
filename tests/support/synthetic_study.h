#pragma once
// Synthetic studies in a db::Store for the export, importance and report tests: trials brought
// to any status through the store's own transitions, with their epochs.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "db/store.h"
#include "sweep/search_space.h"

namespace lmsweep::testing {

// batch-size = choice(8, 16, 32), gamma-neg = uniform(2, 12), lambda = loguniform(0.1, 10),
// warmup = int(0, 5), loss = fixed(clip+bal).
inline sweep::SearchSpace optuna_test_space() {
  return sweep::SearchSpace({sweep::parse_dimension("batch-size", "choice(8, 16, 32)"),
                             sweep::parse_dimension("gamma-neg", "uniform(2, 12)"),
                             sweep::parse_dimension("lambda", "loguniform(0.1, 10)"),
                             sweep::parse_dimension("warmup", "int(0, 5)"),
                             sweep::parse_dimension("loss", "fixed(clip+bal)")});
}

inline db::StudyInfo make_test_study(db::Store& store, const std::string& name, const sweep::SearchSpace& space,
                                     const std::vector<std::string>& objectives = {"map"}) {
  db::StudySpec spec;
  spec.name = name;
  spec.space_json = space.canonical();
  spec.method = "random";
  spec.objective = objectives.front();
  spec.seed = 7;
  if (objectives.size() > 1) spec.config_json = nlohmann::json{{"objectives", objectives}}.dump();
  return store.create_or_get_study(spec);
}

struct SyntheticTrial {
  db::TrialStatus status = db::TrialStatus::Completed;
  nlohmann::json params;
  std::vector<db::EpochRecord> epochs;
  std::string error = "CUDA out of memory";  // of a failed trial
};

// Adds trial `number` and takes it to t.status the way a sweep would: started on host
// "node<number % 3>", its epochs recorded, then completed / pruned / failed / interrupted. A
// failed trial without epochs fails from pending (it never started).
inline db::TrialInfo add_synthetic_trial(db::Store& store, int64_t study_id, int64_t number, const SyntheticTrial& t) {
  using S = db::TrialStatus;
  const auto info = store.add_trial(study_id, number, t.params.dump(), 1000 + number);
  if (t.status == S::Pending) return store.trial(info.id);
  if (t.status == S::Failed && t.epochs.empty()) {
    store.fail_trial(info.id, t.error);
    return store.trial(info.id);
  }
  store.start_trial(info.id, 0, "node" + std::to_string(number % 3));
  for (const auto& e : t.epochs) store.record_epoch(info.id, e, {});
  switch (t.status) {
    case S::Completed: store.complete_trial(info.id); break;
    case S::Pruned: store.prune_trial(info.id); break;
    case S::Failed: store.fail_trial(info.id, t.error); break;
    case S::Interrupted: store.interrupt_trial(info.id); break;
    default: break;  // running
  }
  return store.trial(info.id);
}

inline db::EpochRecord test_epoch(int64_t epoch, double map, double train_loss) {
  db::EpochRecord r;
  r.epoch = epoch;
  r.map = map;
  r.train_loss = train_loss;
  return r;
}

}  // namespace lmsweep::testing
