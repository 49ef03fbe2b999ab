#pragma once
// A study as Optuna's journal storage (JSON lines of operations), so that Optuna and
// optuna-dashboard open it:
//
//   lmsweep::export_optuna_journal(data, "study.log");
//   # Optuna 3.1:  optuna.storages.JournalStorage(optuna.storages.JournalFileStorage("study.log"))
//   # Optuna >= 4: optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend("study.log"))
//   optuna.load_study(study_name=..., storage=...)
//
// The format is what optuna/storages/_journal/storage.py (3.1) and
// optuna/storages/journal/_storage.py (4.x, 5.x) replay: one CREATE_STUDY (op 0), the study's
// user attributes (op 2, one key each), then one CREATE_TRIAL (op 4) per trial carrying
// everything at once (state, values, params, distributions, attributes, intermediate values,
// datetimes), as BaseStorage.create_new_trial(template_trial) writes it for study.add_trial.
// A trial is created in its final state, so replay never sees a forbidden state transition.
//
// Mapping (lmsweep -> Optuna):
//  - completed -> COMPLETE, values = the objectives at the trial's best epoch (ranked by the
//    first objective, among the epochs that recorded every objective). A completed trial with
//    no such epoch -> FAIL (Optuna refuses COMPLETE without values).
//  - pruned -> PRUNED with value = the last intermediate value, as optuna/study/_tell.py
//    records a pruned trial; multi-objective: no values (Optuna cannot prune those).
//  - failed -> FAIL; running -> RUNNING; pending -> WAITING (no datetime_start, as an
//    enqueued trial).
//  - interrupted (its job died; the sweep resumes it later) -> FAIL: what Optuna itself makes
//    of a trial whose process stopped (fail_stale_trials); WAITING would be popped and rerun by
//    any study.optimize() on the file, RUNNING would look alive forever. The user attribute
//    lmsweep_status says "interrupted".
//  - [space] choice -> CategoricalDistribution (param stored as the choice's index),
//    uniform -> FloatDistribution, loguniform -> FloatDistribution(log=True), int ->
//    IntDistribution(step=1); fixed dimensions are constants, not parameters: left out of the
//    trials and listed in the study's user attribute lmsweep_fixed_params.
//  - intermediate values: step = epoch, value = the objective's. Optuna has none for
//    multi-objective studies, so there each trial gets the user attribute
//    lmsweep_intermediate_values = {objective: [[epoch, value], ...]} instead.
//  - datetime_start / datetime_complete from started_at / finished_at, in UTC ("+00:00"), as
//    Optuna >= 4 writes them; user attributes lmsweep_trial (lmsweep's number), lmsweep_seed,
//    lmsweep_status, host, error.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "report/study_data.h"

namespace lmsweep {

struct OptunaJournalOptions {
  std::optional<std::string> study_name;  // default: the lmsweep study's name
  // Every operation's worker_id. Readers compare it with their own (uuid-based) one only to
  // raise errors for their own writes, so any fixed string works.
  std::string worker_id = "lmsweep-export";
};

// The journal's lines, each one JSON operation ending in '\n'. Throws lmsweep::Error for a
// trial whose parameter is not in the study's space or not one of its choices.
std::string optuna_journal_text(const report::StudyData& data, const OptunaJournalOptions& options = {});

// Writes optuna_journal_text() to out_file through out_file.tmp + rename, replacing a previous
// file whole (a journal cannot be appended to: the study would be created twice). Throws
// lmsweep::Error, one line naming out_file, when it cannot be written; nothing half-written is
// left.
void export_optuna_journal(const report::StudyData& data, const std::string& out_file,
                           const OptunaJournalOptions& options = {});

}  // namespace lmsweep
