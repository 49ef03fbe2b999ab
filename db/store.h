#pragma once
// The SQLite store of lmsweep: studies (a sweep, or one `train` run: a study with one trial),
// their trials, every epoch's metrics and per-class AP. Torch-free.
//
//   auto store = lmsweep::db::Store::open("sweep.db");
//   lmsweep::db::StudySpec spec;
//   spec.name = "voc_vitb16"; spec.space_json = space; spec.method = "random"; ...
//   auto study = store.create_or_get_study(spec);
//   auto trial = store.add_trial(study.id, 0, R"({"lambda": 0.4})", 1234);
//   store.start_trial(trial.id, /*rank_group=*/0, "node01");
//   store.record_epoch(trial.id, epoch_record, per_class_ap);
//   store.complete_trial(trial.id);
//
// Concurrency: one process writes (the sweep coordinator, or `train`); any number of readers
// (`status`, `best`) open the file with open_read_only() while it runs. A Store object is a
// single connection and is not thread-safe: use one per thread.
//
// Journal modes (Options::journal):
//  - Wal: readers never block the writer and the writer never blocks readers. Needs every
//    process that opens the file on ONE host (WAL uses a shared-memory index, the -shm file,
//    which does not work across NFS/Lustre/GPFS clients). synchronous=NORMAL: a killed process
//    loses nothing committed; a power loss may lose the last transactions, never consistency.
//  - Delete: the classic rollback journal with POSIX file locks, which network filesystems
//    support across hosts (NFSv4, Lustre with flock, GPFS...): the mode for a database on a
//    shared filesystem read by `lmsweep status` from a login node while a SLURM job writes it.
//    A reader holds a shared lock only while a query runs, the writer waits for it (busy
//    timeout) and vice versa; queries are short, so neither side sees "database is locked".
//    synchronous=FULL.
//  - Auto (default): Delete when the file's folder is on a network filesystem (NFS, SMB/CIFS,
//    Lustre, GPFS, BeeGFS, CephFS, PanFS, AFS, 9p, FUSE: checked with statfs on Linux), Wal
//    otherwise.
// The mode is set by the writer when it opens the file (WAL is stored in the file); readers
// use whatever the file says. Leaving WAL needs no other connection open at that moment.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "db/sqlite.h"

namespace lmsweep::db {

// Stored in PRAGMA user_version; a writer migrates version 1, a newer version is refused.
inline constexpr int kSchemaVersion = 2;
// Stored in PRAGMA application_id ("LMSW"): tells an lmsweep database from another SQLite file.
inline constexpr std::int32_t kApplicationId = 0x4C4D5357;

enum class JournalMode { Auto, Wal, Delete };
std::string_view to_string(JournalMode mode);
JournalMode parse_journal_mode(std::string_view text);  // "auto" | "wal" | "delete"
// What Auto resolves to for a database at `path` (the file need not exist yet).
JournalMode resolve_journal_mode(JournalMode mode, const std::string& path);

enum class TrialStatus { Pending, Running, Completed, Failed, Pruned, Interrupted };
std::string_view to_string(TrialStatus status);
TrialStatus parse_trial_status(std::string_view text);

// Objectives are epoch columns: map, map_head, map_middle, map_tail, map_single, map_multi
// (maximised), train_loss and centroid_ratio (minimised); is_objective() is true for these.
// Any other metric name (common/strings.h is_metric_name: a letter or '_', then letters, digits, '_', '-', '.')
// is a key of an epoch's metrics_json, as a command trial prints it, and is maximised.
bool is_objective(std::string_view name);
bool objective_maximized(std::string_view name);  // throws Error for a name neither of these
const std::vector<std::string>& objective_names();

// Unix time in seconds.
double unix_now();

struct StudySpec {
  std::string name;
  std::string space_json = "{}";   // the search space; "{}" for a `train` run
  std::string config_json = "{}";  // training options shared by every trial
  std::string method = "train";    // train | grid | random | sobol
  std::string objective = "map";
  std::int64_t seed = 0;
  std::optional<std::int64_t> planned_trials;  // the sweep's `trials`, if known
  int gpus_per_trial = 1;
  std::string scheduler = "none";     // none | asha
  std::string scheduler_json = "{}";  // e.g. {"grace": 5, "reduction": 2}
};

struct StudyInfo {
  std::int64_t id = 0;
  std::string name;
  std::string space_json;
  std::string config_json;
  std::string method;
  std::string objective;
  std::int64_t seed = 0;
  std::optional<std::int64_t> planned_trials;
  int gpus_per_trial = 1;
  std::string scheduler;
  std::string scheduler_json;
  double created_at = 0;
};

struct TrialInfo {
  std::int64_t id = 0;
  std::int64_t study_id = 0;
  std::int64_t number = 0;  // 0-based within the study
  std::string params_json;
  std::int64_t seed = 0;
  TrialStatus status = TrialStatus::Pending;
  int attempts = 0;                    // times the trial was started
  std::optional<int> rank_group;       // of the current / last attempt
  std::string host;                    // "" when never started
  double created_at = 0;
  std::optional<double> started_at;    // of the current / last attempt
  std::optional<double> finished_at;
  std::optional<double> seconds;       // wall time summed over attempts that ended
  std::string error;                   // of a failed trial
  std::optional<std::int64_t> best_epoch;  // by the study's objective, ties to the lower epoch
  std::string checkpoint;              // last checkpoint path, "" if none
  std::optional<std::int64_t> last_epoch;  // highest recorded epoch (filled by queries)
};

// One epoch of one trial. Maps are fractions in [0, 1]; an absent metric (not evaluated, or a
// group with no class) is nullopt, and a NaN is stored as absent too.
struct EpochRecord {
  std::int64_t epoch = 0;  // as the trainer numbers it
  std::optional<double> train_loss;
  std::optional<double> lr;
  std::optional<double> seconds;
  std::optional<double> map;
  std::optional<double> map_head;
  std::optional<double> map_middle;
  std::optional<double> map_tail;
  std::optional<double> map_single;
  std::optional<double> map_multi;
  std::optional<double> centroid_ratio;
  std::string metrics_json = "{}";  // anything else (per-group centroid ratios, ...)
  double recorded_at = 0;           // set by record_epoch
};

// The value of epoch column `column` (see is_objective) or of metric `column` in metrics_json;
// nullopt when absent, not a number or not a metric name.
std::optional<double> epoch_value(const EpochRecord& record, std::string_view column);

struct StatusCounts {
  std::int64_t pending = 0, running = 0, completed = 0, failed = 0, pruned = 0, interrupted = 0;
  std::int64_t total() const {
    return pending + running + completed + failed + pruned + interrupted;
  }
  std::int64_t epochs_recorded = 0;
  std::optional<double> mean_epoch_seconds;           // over every recorded epoch
  std::optional<double> mean_completed_trial_seconds;  // over completed trials
};

struct RunningTrial {
  TrialInfo trial;
  std::optional<EpochRecord> last_epoch;  // none before the first epoch ends
};

struct BestTrial {
  TrialInfo trial;
  EpochRecord epoch;  // the trial's best epoch by the objective
  double value = 0;   // the objective at that epoch
};

struct BestQuery {
  std::string objective = "map";
  std::int64_t top = 0;         // 0: every trial
  bool completed_only = false;  // false: also pruned, running, failed, interrupted trials
};

// One rank of a trial's group: where it runs and when the coordinator last heard of the group.
struct RankInfo {
  int rank = 0;  // within the group
  std::string host;
  std::int64_t pid = 0;
  double heard_at = 0;
};

// The writer's lease: one sweep per database. `holder` is unique per sweep process.
struct LeaseInfo {
  std::string holder;
  std::string job;   // SLURM job id, "" outside SLURM
  std::string host;
  std::int64_t pid = 0;
  double taken_at = 0;
  double heartbeat_at = 0;
  double stale_after = 60;  // seconds without a heartbeat after which the holder counts as dead
  std::string describe() const;  // "SLURM job 42 on node01 (pid 123)"
};

class Store {
 public:
  struct Options {
    JournalMode journal = JournalMode::Auto;
    int busy_timeout_ms = 5000;  // SQLite's wait on a lock, per attempt
    int busy_retries = 12;       // whole read queries / write transactions retried on busy
  };

  // The writer: creates the file and its schema when missing. Throws Error when the file is
  // not SQLite, is another program's SQLite file, has another schema version, or cannot be
  // written.
  static Store open(const std::string& path, const Options& options);
  static Store open(const std::string& path) { return open(path, Options{}); }
  // A reader (status, best): never writes, never changes the journal mode. Throws Error when
  // the file does not exist or is not an lmsweep database of this schema version.
  static Store open_read_only(const std::string& path, const Options& options);
  static Store open_read_only(const std::string& path) { return open_read_only(path, Options{}); }

  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  ~Store();

  const std::string& path() const;
  bool read_only() const;
  JournalMode journal_mode() const;  // as in effect: Wal or Delete
  int schema_version() const;

  // A transaction grouping several calls (commit() or it rolls back when destroyed); the
  // methods below nest inside it as savepoints. Without one, each write method is its own
  // transaction.
  Transaction transaction();

  // --- studies
  // Returns the study NAME, creating it when missing. An existing study must have the same
  // search space (compared as JSON: key order and spacing do not matter), method and seed,
  // else Error; its other fields are returned as stored.
  StudyInfo create_or_get_study(const StudySpec& spec);
  std::optional<StudyInfo> find_study(const std::string& name);
  StudyInfo study(std::int64_t study_id);
  std::vector<StudyInfo> list_studies();  // by creation
  void set_planned_trials(std::int64_t study_id, std::optional<std::int64_t> planned);

  // --- trials
  // Adds trial `number` (pending), or returns it when it exists with the same parameters and
  // seed (Error when they differ): resuming a sweep re-adds the same points harmlessly.
  TrialInfo add_trial(std::int64_t study_id, std::int64_t number, const std::string& params_json,
                      std::int64_t seed);
  TrialInfo trial(std::int64_t trial_id);
  std::optional<TrialInfo> find_trial(std::int64_t study_id, std::int64_t number);
  std::vector<TrialInfo> trials(std::int64_t study_id);  // by number
  std::vector<TrialInfo> trials(std::int64_t study_id, TrialStatus status);

  // Status transitions; each throws Error naming the trial and its current status when the
  // transition is not allowed.
  // pending | interrupted -> running: attempts + 1, rank group and host of this attempt.
  void start_trial(std::int64_t trial_id, int rank_group, const std::string& host);
  void complete_trial(std::int64_t trial_id);                         // running -> completed
  void fail_trial(std::int64_t trial_id, const std::string& error);   // pending | running -> failed
  void prune_trial(std::int64_t trial_id);                            // running -> pruned
  void interrupt_trial(std::int64_t trial_id);                        // running -> interrupted
  // Trials of the study in status `from` (running, interrupted or failed) go back to pending,
  // attempts kept: what a resumed sweep does with the trials a dead job left running.
  // Returns how many.
  std::int64_t requeue(std::int64_t study_id, TrialStatus from = TrialStatus::Running);
  void set_checkpoint(std::int64_t trial_id, const std::string& path);
  // A running trial whose job died: crashes + 1, then back to pending, or failed with `error`
  // once crashes reaches max_attempts. Returns true when it was marked failed.
  bool requeue_crashed(std::int64_t trial_id, int max_attempts, const std::string& error);
  int crashes(std::int64_t trial_id);  // 0 in a version-1 file
  // What a suggested trial's point was computed from (TPE: the trials it saw), as JSON; "" when
  // none was recorded.
  void set_suggestion(std::int64_t trial_id, const std::string& json);
  std::string suggestion(std::int64_t trial_id);

  // --- the writer's lease (one sweep per database; readers never need it)
  std::optional<LeaseInfo> lease();  // none when free (or in a version-1 file)
  // Takes the lease for `me` when it is free, already `me`'s, or stale (not renewed for
  // stale_seconds); returns the stale holder it replaced. Error naming a live holder.
  std::optional<LeaseInfo> take_lease(const LeaseInfo& me, double stale_seconds);
  void renew_lease(const LeaseInfo& me);    // Error when another sweep took it over
  void release_lease(const LeaseInfo& me);  // nothing when `me` does not hold it

  // --- liveness: the ranks of a running trial and the coordinator's last word from them
  void set_trial_ranks(std::int64_t trial_id, const std::vector<RankInfo>& ranks);
  void heard_from(std::int64_t trial_id);
  std::vector<RankInfo> trial_ranks(std::int64_t trial_id);  // by rank; none in version 1

  // --- epochs
  // Records (or replaces, after a resume) one epoch and its per-class AP (index = class) in
  // one transaction, and updates the trial's best_epoch by the study's objective.
  void record_epoch(std::int64_t trial_id, const EpochRecord& record,
                    const std::vector<double>& class_ap);
  // Deletes the epochs after `last_kept` (a trial restarting from the checkpoint of that
  // epoch; -1 or lower deletes all). Returns how many.
  std::int64_t truncate_epochs(std::int64_t trial_id, std::int64_t last_kept);
  std::vector<EpochRecord> epochs(std::int64_t trial_id);  // by epoch
  // By class index; a class stored without a value reads NaN.
  std::vector<double> class_ap(std::int64_t trial_id, std::int64_t epoch);

  // --- queries
  StatusCounts status_counts(std::int64_t study_id);
  std::vector<RunningTrial> running_trials(std::int64_t study_id);  // by number
  // Each trial's best epoch by the objective (ties to the lower epoch), trials sorted best
  // first (ties to the lower trial number). Trials with no value of the objective are left out.
  std::vector<BestTrial> best_trials(std::int64_t study_id, const BestQuery& query);

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lmsweep::db
