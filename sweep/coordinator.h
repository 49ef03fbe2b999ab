#pragma once
// The sweep's coordinator (see protocol.h): owns the study in SQLite, hands trials to rank
// groups, records their epochs, takes ASHA decisions, prints progress. Torch-free.
#include <mpi.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "db/store.h"
#include "sweep/asha.h"
#include "sweep/config.h"
#include "dist/mpi_channel.h"
#include "sweep/point_sampler.h"
#include "sweep/search_space.h"
#include "sweep/tpe.h"

namespace lmsweep::tensorboard {
class TensorBoardStudyWriter;
}

namespace lmsweep::sweep {

struct SweepSetup {
  SweepConfig config;
  SearchSpace space;
  std::string db_path;
  db::JournalMode journal = db::JournalMode::Auto;
  nlohmann::json base_options;  // the training options every trial shares (flag -> value)
  int epochs = 1;               // of every trial (ASHA's max_t)
  int num_groups = 1;           // rank groups: mpirun -np / gpus_per_trial
  bool retry_failed = false;    // failed trials run again (sweep --retry-failed)
  std::string trial_root;       // command trials' folders ([sweep] trial_dir, or beside the database)
  std::string tensorboard_dir;  // sweep --tensorboard: event files written live there ("" = none)
};

class Coordinator {
 public:
  Coordinator(SweepSetup setup, std::function<void(const std::string&)> log);
  ~Coordinator();

  // Opens the database and takes its lease (Error naming a live holder), creates or checks
  // the study (same space, method and seed), adds the planned trials, requeues trials left
  // running by a dead job (failing those at max_attempts crashes), rebuilds ASHA from the
  // recorded epochs. Throws lmsweep::Error before anything is lost.
  void prepare();
  // Serves the groups' messages (channels.up, replies on channels.down) until every group
  // got kShutdown.
  void run(const dist::Channels& channels);
  // Preemption (SIGUSR1 / SIGTERM): checked between messages; once true the coordinator hands
  // out no more trials; running ones stop at their next step boundary by themselves and
  // report interrupted.
  void set_stop_check(std::function<bool()> check) { stop_check_ = std::move(check); }
  bool stopped() const { return stopping_; }
  // Trials this run ended, and how many of them failed (all failed: the options are wrong).
  int64_t done_this_run() const { return done_this_run_; }
  int64_t failed_this_run() const { return failed_this_run_; }
  const std::string& first_error() const { return first_error_; }

  const std::string& study_name() const { return setup_.config.name; }
  int64_t study_id() const { return study_id_; }

 private:
  bool on_request(MPI_Comm down, int source, const nlohmann::json& m);  // true: shut down
  void on_epoch(MPI_Comm down, int source, const nlohmann::json& m);
  void on_done(const nlohmann::json& m);
  void progress(const std::string& event);
  void take_lease();
  void renew_lease_if_due();
  int64_t requeue_dead_job_trials(int64_t* failed);  // returns how many were requeued
  int64_t suggest_next_trial();                       // tpe: adds trial next_number_, returns its id
  std::vector<TpeObservation> tpe_history(int64_t k);  // what trial k's suggestion sees
  bool window_allows(int64_t k);                       // every trial before k - window has ended
  void load_warm_start();                              // [sweep] warm_start's trials, into warm_history_
  // Runs `write` on the TensorBoard writer, if any; a failure (disk full) is logged and ends
  // the event files for this run, not the sweep: they are auxiliary, the database is not.
  void to_tensorboard(const std::function<void(tensorboard::TensorBoardStudyWriter&)>& write);

  SweepSetup setup_;
  std::function<void(const std::string&)> log_;
  std::unique_ptr<db::Store> store_;
  std::unique_ptr<PointSampler> sampler_;
  std::unique_ptr<AshaScheduler> asha_;
  int64_t study_id_ = 0;
  std::vector<int64_t> queue_;  // trial ids to run, by number
  int64_t next_number_ = 0;     // the next trial to add (tpe adds them as it hands them out)
  std::vector<std::pair<int, nlohmann::json>> waiting_;  // requests the window holds back
  std::vector<TpeObservation> warm_history_;            // warm_start's trials (negative numbers)
  struct Running {
    int64_t number = 0;
    int group = 0;
    double started = 0;
    int64_t last_epoch = 0;
    bool first_epoch = true;
  };
  std::map<int64_t, Running> running_;
  bool stopping_ = false;
  std::function<bool()> stop_check_;
  double started_at_ = 0;
  int64_t done_this_run_ = 0, failed_this_run_ = 0;
  std::string first_error_;
  db::LeaseInfo lease_;
  bool holds_lease_ = false;
  double lease_renewed_at_ = 0;
  double trial_seconds_this_run_ = 0;
  std::unique_ptr<tensorboard::TensorBoardStudyWriter> tensorboard_;
};

// The objective's value in an epoch record (a column such as map_tail, or a command trial's
// metric), NaN if absent.
double objective_value(const db::EpochRecord& record, const std::string& objective);

}  // namespace lmsweep::sweep
