#pragma once
// One study as the database holds it, read once into plain structs: what `report`, `export`
// and `importance` work from (torch-free).
//
//   auto store = lmsweep::db::Store::open_read_only("sweep.db");
//   auto data = lmsweep::report::load_study(store, std::nullopt);  // the only study, or Error
//   for (const auto& t : data.trials) ... t.epochs, t.params, best_epoch(t, data.objective())
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "db/store.h"
#include "sweep/search_space.h"

namespace lmsweep::report {

struct TrialData {
  db::TrialInfo info;
  nlohmann::json params = nlohmann::json::object();  // {"lambda": 0.4, ...}
  std::vector<db::EpochRecord> epochs;               // by epoch
};

struct StudyData {
  db::StudyInfo study;
  sweep::SearchSpace space;             // the study's [space]; empty for a `train` run
  std::vector<std::string> objectives;  // [sweep] objectives (2+), else the one objective
  std::vector<TrialData> trials;        // by number
  const std::string& objective() const { return objectives.front(); }
};

// The objectives a study was run with: [sweep] objectives (kept in its config), else its one.
std::vector<std::string> study_objectives(const db::StudyInfo& study);

// The study `name`, or the database's only study when none is given. Throws lmsweep::Error
// naming the database and the studies it has when `name` is not one of them, when it has none,
// or when it has several and no name was given.
StudyData load_study(db::Store& store, const std::optional<std::string>& name);

// The trial's best epoch by `objective` (maximised or minimised as db::objective_maximized
// says; ties to the lower epoch); nullptr when no epoch recorded it.
const db::EpochRecord* best_epoch(const TrialData& trial, const std::string& objective);

// Per-class results of one epoch (the paper's Figure 6).
struct ClassMetrics {
  std::vector<std::string> names;   // [C]; "class 3" where the trial did not record names
  std::vector<int64_t> train_count; // [C]; empty where not recorded
  std::vector<double> ap;           // [C], fractions
  std::vector<double> precision, recall, f1;  // [C] at threshold 0.5; empty where not recorded
};
// The trial's class names and training counts come from the first of its epochs that recorded
// them (train_lmclip writes them on the first epoch it runs); the rest from `epoch`. nullopt
// when the epoch has no per-class AP (a command trial).
std::optional<ClassMetrics> class_metrics(db::Store& store, const TrialData& trial, const db::EpochRecord& epoch);

// Whether every metric is one of LM-CLIP's maps (map, map_head, ...: shown in %, with Table 1's
// columns); a command trial's metrics are shown as they are.
bool lmclip_maps(const std::vector<std::string>& metrics);

// The trials with a value of the study's objective, best first by their best epoch (ties to
// the lower trial number).
std::vector<const TrialData*> ranked_trials(const StudyData& data);

// Trials with at least one epoch recording `objective`.
std::vector<const TrialData*> trials_with(const StudyData& data, const std::string& objective);

}  // namespace lmsweep::report
