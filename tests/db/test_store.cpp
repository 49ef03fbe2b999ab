// Tests of the SQLite store (db/store.h): schema and its version, bad files, studies, trials
// and their status transitions, epochs, queries, transactions, and a reader running while the
// writer writes.
#include <atomic>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/errors.h"
#include "db/store.h"
#include "support/shared_data.h"

namespace lmsweep::db {
// Test names and failure messages show the mode as a word.
void PrintTo(JournalMode mode, std::ostream* os) { *os << to_string(mode); }
}  // namespace lmsweep::db

namespace {

namespace fs = std::filesystem;
using lmsweep::Error;
using namespace lmsweep::db;

// Raw SQLite access, to make files the store must refuse and to look under it.
void raw_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  const std::string message = error ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << message;
}

std::string raw_text(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  std::string out = "<error>";
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    const auto* text = sqlite3_column_text(stmt, 0);
    out = text ? reinterpret_cast<const char*>(text) : "";
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

using lmsweep::testing::error_of;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("db_") + info->test_suite_name() + "_" + info->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    dir_ = lmsweep::testing::temp_dir(name);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string db_path(const std::string& name = "results.db") const {
    return (dir_ / name).string();
  }

  fs::path dir_;
};

constexpr const char* kSpace = R"j({"lambda": "loguniform(0.1, 10)", "s": "uniform(1, 2)"})j";

StudySpec sweep_spec(const std::string& name, const std::string& space = kSpace) {
  StudySpec spec;
  spec.name = name;
  spec.space_json = space;
  spec.config_json = R"j({"epochs": 3, "batch-size": 8})j";
  spec.method = "random";
  spec.objective = "map";
  spec.seed = 1;
  spec.planned_trials = 10;
  spec.scheduler = "asha";
  spec.scheduler_json = R"j({"grace": 5, "reduction": 2})j";
  return spec;
}

EpochRecord make_epoch(std::int64_t epoch, double map, std::optional<double> map_tail,
                       double loss = 1.0) {
  EpochRecord r;
  r.epoch = epoch;
  r.train_loss = loss;
  r.lr = 1e-6;
  r.seconds = 2.5;
  r.map = map;
  r.map_head = map + 0.1;
  r.map_middle = map;
  r.map_tail = map_tail;
  r.map_single = map;
  r.map_multi = map;
  r.centroid_ratio = 0.8;
  r.metrics_json = R"j({"centroid_ratio_tail": 0.9})j";
  return r;
}

// ------------------------------------------------------------------ files and schema

TEST_F(StoreTest, CreatesSchemaAndReopens) {
  const std::string path = db_path();
  std::int64_t study_id = 0, trial_id = 0;
  {
    Store store = Store::open(path);
    EXPECT_EQ(store.schema_version(), kSchemaVersion);
    EXPECT_FALSE(store.read_only());
    EXPECT_EQ(store.journal_mode(), resolve_journal_mode(JournalMode::Auto, path));
    const StudyInfo study = store.create_or_get_study(sweep_spec("voc"));
    study_id = study.id;
    EXPECT_EQ(study.name, "voc");
    EXPECT_EQ(study.method, "random");
    EXPECT_EQ(study.planned_trials, std::optional<std::int64_t>(10));
    EXPECT_EQ(study.scheduler, "asha");
    const TrialInfo trial = store.add_trial(study.id, 0, R"j({"lambda": 0.4, "s": 1.35})j", 77);
    trial_id = trial.id;
    EXPECT_EQ(trial.status, TrialStatus::Pending);
    EXPECT_EQ(trial.attempts, 0);
    store.start_trial(trial.id, 2, "node07");
    store.record_epoch(trial.id, make_epoch(0, 0.5, 0.25), {0.25, 0.5, 0.75});
  }
  EXPECT_EQ(raw_text(path, "PRAGMA user_version"), std::to_string(kSchemaVersion));
  EXPECT_EQ(raw_text(path, "PRAGMA application_id"), std::to_string(kApplicationId));

  for (bool read_only : {false, true}) {
    SCOPED_TRACE(read_only ? "read-only" : "writer");
    Store store = read_only ? Store::open_read_only(path) : Store::open(path);
    EXPECT_EQ(store.read_only(), read_only);
    EXPECT_EQ(store.schema_version(), kSchemaVersion);
    const auto study = store.find_study("voc");
    ASSERT_TRUE(study.has_value());
    EXPECT_EQ(study->id, study_id);
    EXPECT_EQ(store.list_studies().size(), 1u);
    const TrialInfo trial = store.trial(trial_id);
    EXPECT_EQ(trial.number, 0);
    EXPECT_EQ(trial.seed, 77);
    EXPECT_EQ(trial.status, TrialStatus::Running);
    EXPECT_EQ(trial.attempts, 1);
    EXPECT_EQ(trial.rank_group, std::optional<int>(2));
    EXPECT_EQ(trial.host, "node07");
    EXPECT_EQ(trial.last_epoch, std::optional<std::int64_t>(0));
    const auto epochs = store.epochs(trial_id);
    ASSERT_EQ(epochs.size(), 1u);
    EXPECT_DOUBLE_EQ(*epochs[0].map, 0.5);
    EXPECT_DOUBLE_EQ(*epochs[0].map_tail, 0.25);
    EXPECT_DOUBLE_EQ(*epochs[0].lr, 1e-6);
    EXPECT_EQ(epochs[0].metrics_json, R"j({"centroid_ratio_tail":0.9})j");
    EXPECT_EQ(store.class_ap(trial_id, 0), (std::vector<double>{0.25, 0.5, 0.75}));
  }
}

TEST_F(StoreTest, ReadOnlyStoreRefusesWrites) {
  const std::string path = db_path();
  std::int64_t study_id = 0;
  {
    Store store = Store::open(path);
    study_id = store.create_or_get_study(sweep_spec("voc")).id;
  }
  Store reader = Store::open_read_only(path);
  const std::string message = error_of([&] { reader.add_trial(study_id, 0, "{}", 1); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("read-only"), std::string::npos) << message;
  EXPECT_TRUE(reader.trials(study_id).empty());
}

TEST_F(StoreTest, RefusesAnotherSchemaVersion) {
  const std::string path = db_path();
  { Store::open(path).create_or_get_study(sweep_spec("voc")); }
  raw_exec(path, "PRAGMA user_version = 3");
  for (bool read_only : {false, true}) {
    const std::string message =
        error_of([&] { read_only ? Store::open_read_only(path) : Store::open(path); });
    EXPECT_NE(message.find(path + " has schema version 3, this lmsweep reads versions 1 to 2"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("use a new --db file"), std::string::npos) << message;
  }
  // Nothing in the file was touched.
  EXPECT_EQ(raw_text(path, "PRAGMA user_version"), "3");
  EXPECT_EQ(raw_text(path, "SELECT name FROM studies"), "voc");
}

// A version-1 file (before leases and crash counts): readers take it as it is, the first
// writer migrates it and keeps everything.
TEST_F(StoreTest, MigratesAVersionOneFile) {
  const std::string path = db_path();
  std::int64_t trial_id = 0;
  {
    Store store = Store::open(path);
    const auto study = store.create_or_get_study(sweep_spec("voc"));
    trial_id = store.add_trial(study.id, 0, R"({"lambda": 0.4})", 7).id;
  }
  // Back to what version 1 wrote.
  raw_exec(path, "DROP TABLE lease; DROP TABLE trial_ranks; ALTER TABLE trials DROP COLUMN crashes; "
                 "ALTER TABLE trials DROP COLUMN suggestion_json; "
                 "PRAGMA user_version = 1");
  {
    Store reader = Store::open_read_only(path);
    EXPECT_EQ(reader.schema_version(), 1);
    EXPECT_FALSE(reader.lease().has_value());
    EXPECT_TRUE(reader.trial_ranks(trial_id).empty());
    EXPECT_EQ(reader.crashes(trial_id), 0);
    EXPECT_EQ(reader.trial(trial_id).params_json, R"({"lambda":0.4})");
  }
  Store writer = Store::open(path);
  EXPECT_EQ(writer.schema_version(), kSchemaVersion);
  EXPECT_EQ(raw_text(path, "PRAGMA user_version"), std::to_string(kSchemaVersion));
  EXPECT_EQ(writer.crashes(trial_id), 0);
  EXPECT_EQ(writer.trial(trial_id).seed, 7);
}

// status / best on a finished WAL sweep in a folder the reader cannot write (a shared results
// folder, another user's): SQLite cannot create the -shm index; the file is read as it is.
TEST_F(StoreTest, ReadsAWalFileInAFolderItCannotWrite) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root, to read as another user (nobody)";
  const std::string path = db_path("wal.db");
  {
    Store::Options o;
    o.journal = JournalMode::Wal;
    Store store = Store::open(path, o);
    store.create_or_get_study(sweep_spec("voc"));
  }
  ASSERT_FALSE(fs::exists(path + "-wal"));
  fs::permissions(fs::path(path).parent_path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                                    fs::perms::others_read | fs::perms::others_exec);
  const pid_t pid = fork();
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(4);
    try {
      Store reader = Store::open_read_only(path);
      _exit(reader.list_studies().size() == 1 && reader.find_study("voc") ? 0 : 2);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      _exit(3);
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "3: open_read_only threw (see stderr); 2: wrong content; 4: setuid failed";
  EXPECT_FALSE(fs::exists(path + "-shm"));
}

TEST_F(StoreTest, OneLeaseHolderAtATime) {
  Store store = Store::open(db_path());
  LeaseInfo a{"a:1:0", "", "node-a", 1, 0, 0, 60};
  LeaseInfo b{"b:2:0", "77", "node-b", 2, 0, 0, 60};
  EXPECT_FALSE(store.take_lease(a, 60).has_value());  // free: taken, nobody replaced
  EXPECT_FALSE(store.take_lease(a, 60).has_value());  // already a's
  const std::string message = error_of([&] { store.take_lease(b, 60); });
  EXPECT_NE(message.find("in use by another sweep: node-a (pid 1) holds its lease"), std::string::npos) << message;
  EXPECT_EQ(store.lease()->holder, "a:1:0");
  // a stops renewing: after stale_seconds b takes over, and a learns it at its next renewal.
  raw_exec(db_path(), "UPDATE lease SET heartbeat_at = heartbeat_at - 120");
  const auto replaced = store.take_lease(b, 60);
  ASSERT_TRUE(replaced.has_value());
  EXPECT_EQ(replaced->holder, "a:1:0");
  EXPECT_EQ(store.lease()->describe(), "SLURM job 77 on node-b (pid 2)");
  EXPECT_NE(error_of([&] { store.renew_lease(a); }).find("lost its lease to SLURM job 77 on node-b"),
            std::string::npos);
  store.release_lease(a);  // not a's: nothing happens
  EXPECT_TRUE(store.lease().has_value());
  store.renew_lease(b);
  store.release_lease(b);
  EXPECT_FALSE(store.lease().has_value());
}

TEST_F(StoreTest, CrashesCountTowardMaxAttempts) {
  Store store = Store::open(db_path());
  const auto study = store.create_or_get_study(sweep_spec("voc"));
  const auto id = store.add_trial(study.id, 0, "{}", 1).id;
  for (int crash = 1; crash <= 3; ++crash) {
    store.start_trial(id, 0, "node");
    store.set_trial_ranks(id, {{0, "node", 100 + crash, 0}, {1, "node", 200 + crash, 0}});
    const bool failed = store.requeue_crashed(id, 3, "its process died 3 times");
    EXPECT_EQ(failed, crash == 3) << "crash " << crash;
    EXPECT_EQ(store.crashes(id), crash);
  }
  const auto t = store.trial(id);
  EXPECT_EQ(t.status, TrialStatus::Failed);
  EXPECT_EQ(t.error, "its process died 3 times");
  EXPECT_EQ(t.attempts, 3);
  const auto ranks = store.trial_ranks(id);
  ASSERT_EQ(ranks.size(), 2u);
  EXPECT_EQ(ranks[1].pid, 203);
  EXPECT_GT(ranks[1].heard_at, 0);
  // --retry-failed: pending again, crashes forgotten.
  EXPECT_EQ(store.requeue(study.id, TrialStatus::Failed), 1);
  EXPECT_EQ(store.crashes(id), 0);
  EXPECT_EQ(store.trial(id).status, TrialStatus::Pending);
  // Only a running trial can crash.
  EXPECT_FALSE(store.requeue_crashed(id, 1, "x"));
  EXPECT_EQ(store.trial(id).status, TrialStatus::Pending);
}

TEST_F(StoreTest, RefusesAFileThatIsNotSqlite) {
  const std::string path = db_path("notes.db");
  std::string text;
  for (int i = 0; i < 200; ++i) text += "epoch,map\n1,0.5\n";
  { std::ofstream(path, std::ios::binary) << text; }
  for (bool read_only : {false, true}) {
    const std::string message =
        error_of([&] { read_only ? Store::open_read_only(path) : Store::open(path); });
    EXPECT_NE(message.find(path + " is not an SQLite database"), std::string::npos) << message;
  }
  EXPECT_EQ(lmsweep::testing::read_text_file(path), text);
}

TEST_F(StoreTest, RefusesAnotherProgramsSqliteFile) {
  const std::string path = db_path("other.db");
  raw_exec(path, "CREATE TABLE runs(id INTEGER, value REAL); INSERT INTO runs VALUES (1, 2.0)");
  const std::string message = error_of([&] { Store::open(path); });
  EXPECT_NE(message.find(path + " is an SQLite database but not an lmsweep one"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("runs"), std::string::npos) << message;

  const std::string other_app = db_path("app.db");
  raw_exec(other_app, "PRAGMA application_id = 1234");
  const std::string message2 = error_of([&] { Store::open(other_app); });
  EXPECT_NE(message2.find("another program"), std::string::npos) << message2;
}

TEST_F(StoreTest, ClearErrorsForPathsThatCannotBeOpened) {
  const std::string missing_dir = (dir_ / "no" / "such" / "folder" / "results.db").string();
  const std::string m1 = error_of([&] { Store::open(missing_dir); });
  EXPECT_NE(m1.find("cannot open database " + missing_dir + " for writing"), std::string::npos)
      << m1;
  EXPECT_FALSE(fs::exists(missing_dir));

  const std::string m2 = error_of([&] { Store::open(dir_.string()); });
  EXPECT_NE(m2.find("is a folder"), std::string::npos) << m2;

  const std::string missing = db_path("missing.db");
  const std::string m3 = error_of([&] { Store::open_read_only(missing); });
  EXPECT_NE(m3.find("database " + missing + " does not exist"), std::string::npos) << m3;
  EXPECT_FALSE(fs::exists(missing));  // a reader never creates the file

  const std::string empty = db_path("empty.db");
  { std::ofstream(empty).flush(); }
  const std::string m4 = error_of([&] { Store::open_read_only(empty); });
  EXPECT_NE(m4.find("holds no lmsweep results"), std::string::npos) << m4;
}

TEST_F(StoreTest, JournalModes) {
  EXPECT_EQ(parse_journal_mode("WAL"), JournalMode::Wal);
  EXPECT_EQ(parse_journal_mode("delete"), JournalMode::Delete);
  EXPECT_EQ(parse_journal_mode("auto"), JournalMode::Auto);
  EXPECT_NE(error_of([] { parse_journal_mode("memory"); })
                .find("unknown database journal mode 'memory'"),
            std::string::npos);
  EXPECT_NE(resolve_journal_mode(JournalMode::Auto, db_path()), JournalMode::Auto);

  const std::string path = db_path();
  Store::Options wal;
  wal.journal = JournalMode::Wal;
  {
    Store store = Store::open(path, wal);
    EXPECT_EQ(store.journal_mode(), JournalMode::Wal);
    EXPECT_EQ(raw_text(path, "PRAGMA journal_mode"), "wal");
    store.create_or_get_study(sweep_spec("voc"));
  }
  Store::Options del;
  del.journal = JournalMode::Delete;
  {
    Store store = Store::open(path, del);
    EXPECT_EQ(store.journal_mode(), JournalMode::Delete);
    EXPECT_EQ(Store::open_read_only(path).journal_mode(), JournalMode::Delete);
    EXPECT_TRUE(store.find_study("voc").has_value());  // switching modes keeps the data
  }
  EXPECT_EQ(raw_text(path, "PRAGMA journal_mode"), "delete");
  EXPECT_FALSE(fs::exists(path + "-wal"));
}

TEST(StoreNames, ParseAndPrint) {
  for (auto st : {TrialStatus::Pending, TrialStatus::Running, TrialStatus::Completed,
                  TrialStatus::Failed, TrialStatus::Pruned, TrialStatus::Interrupted}) {
    EXPECT_EQ(parse_trial_status(to_string(st)), st);
  }
  EXPECT_NE(error_of([] { parse_trial_status("done"); }).find("unknown trial status 'done'"),
            std::string::npos);
  EXPECT_TRUE(is_objective("map_tail"));
  EXPECT_FALSE(is_objective("map_tail "));
  EXPECT_TRUE(objective_maximized("map_middle"));
  EXPECT_FALSE(objective_maximized("train_loss"));
  EXPECT_FALSE(objective_maximized("centroid_ratio"));
  EXPECT_EQ(objective_names().size(), 8u);
  EXPECT_EQ(objective_names().front(), "map");
}

// ------------------------------------------------------------------ studies

TEST_F(StoreTest, StudyReuseNeedsTheSameSpace) {
  const std::string path = db_path();
  Store store = Store::open(path);
  const StudyInfo first = store.create_or_get_study(sweep_spec("voc"));

  // The same space, keys in another order and other spacing: the same study.
  StudySpec same = sweep_spec("voc", R"j({ "s" : "uniform(1, 2)",
                                          "lambda": "loguniform(0.1, 10)" })j");
  same.planned_trials = 50;  // the trial count may grow on a rerun
  EXPECT_EQ(store.create_or_get_study(same).id, first.id);

  const std::string m1 = error_of([&] {
    store.create_or_get_study(sweep_spec("voc", R"j({"lambda": "loguniform(0.1, 5)"})j"));
  });
  EXPECT_NE(m1.find("study voc exists in " + path + " with another search space"),
            std::string::npos)
      << m1;
  EXPECT_NE(m1.find("choose another name"), std::string::npos) << m1;

  StudySpec other_seed = sweep_spec("voc");
  other_seed.seed = 2;
  const std::string m2 = error_of([&] { store.create_or_get_study(other_seed); });
  EXPECT_NE(m2.find("with seed 1, not 2"), std::string::npos) << m2;

  StudySpec other_method = sweep_spec("voc");
  other_method.method = "grid";
  const std::string m3 = error_of([&] { store.create_or_get_study(other_method); });
  EXPECT_NE(m3.find("with method random, not grid"), std::string::npos) << m3;

  const std::string m4 =
      error_of([&] { store.create_or_get_study(sweep_spec("coco", "{lambda")); });
  EXPECT_NE(m4.find("study 'coco': search space: invalid JSON"), std::string::npos) << m4;

  StudySpec bad_objective = sweep_spec("coco");
  bad_objective.objective = "top-1 acc";  // a command trial's metric may be any name, not this one
  const std::string m5 = error_of([&] { store.create_or_get_study(bad_objective); });
  EXPECT_NE(m5.find("unknown objective 'top-1 acc'"), std::string::npos) << m5;

  // Failed attempts recorded nothing; another name is another study.
  EXPECT_EQ(store.list_studies().size(), 1u);
  const StudyInfo coco = store.create_or_get_study(sweep_spec("coco"));
  EXPECT_NE(coco.id, first.id);
  const auto studies = store.list_studies();
  ASSERT_EQ(studies.size(), 2u);
  EXPECT_EQ(studies[0].name, "voc");
  EXPECT_EQ(studies[1].name, "coco");

  store.set_planned_trials(first.id, 50);
  EXPECT_EQ(store.study(first.id).planned_trials, std::optional<std::int64_t>(50));
}

TEST_F(StoreTest, AddTrialIsIdempotentForTheSamePoint) {
  Store store = Store::open(db_path());
  const auto study = store.create_or_get_study(sweep_spec("voc"));
  const auto a = store.add_trial(study.id, 3, R"j({"lambda": 0.4, "s": 1.35})j", 11);
  const auto b = store.add_trial(study.id, 3, R"j({"s": 1.35, "lambda": 0.4})j", 11);
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.params_json, R"j({"lambda":0.4,"s":1.35})j");  // compact, key order kept
  const std::string m = error_of([&] { store.add_trial(study.id, 3, R"j({"lambda": 0.5})j", 11); });
  EXPECT_NE(m.find("trial 3 of study voc"), std::string::npos) << m;
  EXPECT_NE(m.find("exists with other parameters"), std::string::npos) << m;
  EXPECT_NE(error_of([&] { store.add_trial(study.id + 100, 0, "{}", 1); }).find("no study with id"),
            std::string::npos);
  EXPECT_EQ(store.trials(study.id).size(), 1u);
}

// ------------------------------------------------------------------ epochs and best

TEST_F(StoreTest, BestTrialsByACommandTrialsOwnMetric) {
  Store store = Store::open(db_path());
  StudySpec spec = sweep_spec("cmd");
  spec.objective = "val_acc";  // a key of metrics_json, maximised
  const auto study = store.create_or_get_study(spec);
  std::vector<std::int64_t> ids;
  const double acc[2][3] = {{0.5, 0.7, 0.6}, {0.8, 0.4, 0.75}};
  for (int k = 0; k < 2; ++k) {
    ids.push_back(store.add_trial(study.id, k, fmt::format(R"j({{"lr": {}}})j", k), k).id);
    store.start_trial(ids.back(), 0, "localhost");
    for (int e = 0; e < 3; ++e) {
      EpochRecord r;
      r.epoch = e;
      r.metrics_json = fmt::format(R"j({{"val_acc": {}, "note": "x"}})j", acc[k][e]);
      store.record_epoch(ids.back(), r, {});
    }
  }
  const auto best = store.best_trials(study.id, BestQuery{"val_acc", 0, false});
  ASSERT_EQ(best.size(), 2u);
  EXPECT_EQ(best[0].trial.number, 1);
  EXPECT_EQ(best[0].epoch.epoch, 0);
  EXPECT_DOUBLE_EQ(best[0].value, 0.8);
  EXPECT_EQ(best[1].trial.number, 0);
  EXPECT_DOUBLE_EQ(best[1].value, 0.7);
  EXPECT_EQ(store.trial(ids[0]).best_epoch, std::optional<std::int64_t>(1));  // by the study's objective
  EXPECT_DOUBLE_EQ(*epoch_value(best[1].epoch, "val_acc"), 0.7);
  EXPECT_FALSE(epoch_value(best[1].epoch, "note"));  // not a number
  EXPECT_FALSE(epoch_value(best[1].epoch, "missing"));
  EXPECT_TRUE(store.best_trials(study.id, BestQuery{"missing", 0, false}).empty());
  EXPECT_THROW(store.best_trials(study.id, BestQuery{"val acc'", 0, false}), Error);  // never reaches SQL
}

TEST_F(StoreTest, BestTrialsByObjective) {
  Store store = Store::open(db_path());
  const auto study = store.create_or_get_study(sweep_spec("voc"));
  std::vector<std::int64_t> ids;
  for (int k = 0; k < 3; ++k) {
    ids.push_back(store.add_trial(study.id, k, fmt::format(R"j({{"lambda": {}}})j", k), k).id);
    store.start_trial(ids.back(), k, "localhost");
  }
  // trial 0: map ties at epochs 1 and 2 -> epoch 1; tail best at epoch 2.
  store.record_epoch(ids[0], make_epoch(0, 0.30, 0.10, 3.0), {});
  store.record_epoch(ids[0], make_epoch(1, 0.50, 0.20, 2.0), {});
  store.record_epoch(ids[0], make_epoch(2, 0.50, 0.25, 2.5), {});
  // trial 1: map best at epoch 1, tail best at epoch 0.
  store.record_epoch(ids[1], make_epoch(0, 0.40, 0.30, 1.5), {});
  store.record_epoch(ids[1], make_epoch(1, 0.60, 0.15, 1.0), {});
  store.record_epoch(ids[1], make_epoch(2, 0.55, 0.10, 1.2), {});
  // trial 2: no tail mAP (no tail class evaluated): absent from the tail ranking.
  store.record_epoch(ids[2], make_epoch(0, 0.20, std::nullopt, 4.0), {});

  const auto by_map = store.best_trials(study.id, BestQuery{"map", 0, false});
  ASSERT_EQ(by_map.size(), 3u);
  EXPECT_EQ(by_map[0].trial.number, 1);
  EXPECT_EQ(by_map[0].epoch.epoch, 1);
  EXPECT_DOUBLE_EQ(by_map[0].value, 0.60);
  EXPECT_DOUBLE_EQ(*by_map[0].epoch.map_tail, 0.15);  // that epoch's other metrics
  EXPECT_EQ(by_map[1].trial.number, 0);
  EXPECT_EQ(by_map[1].epoch.epoch, 1);  // tie at 0.50: the lower epoch
  EXPECT_DOUBLE_EQ(*by_map[1].epoch.map_tail, 0.20);
  EXPECT_EQ(by_map[2].trial.number, 2);
  EXPECT_EQ(by_map[2].trial.params_json, R"j({"lambda":2})j");

  const auto by_tail = store.best_trials(study.id, BestQuery{"map_tail", 0, false});
  ASSERT_EQ(by_tail.size(), 2u);
  EXPECT_EQ(by_tail[0].trial.number, 1);
  EXPECT_EQ(by_tail[0].epoch.epoch, 0);
  EXPECT_DOUBLE_EQ(by_tail[0].value, 0.30);
  EXPECT_EQ(by_tail[1].trial.number, 0);
  EXPECT_EQ(by_tail[1].epoch.epoch, 2);
  EXPECT_DOUBLE_EQ(by_tail[1].value, 0.25);

  // train_loss is minimised.
  const auto by_loss = store.best_trials(study.id, BestQuery{"train_loss", 0, false});
  ASSERT_EQ(by_loss.size(), 3u);
  EXPECT_EQ(by_loss[0].trial.number, 1);
  EXPECT_EQ(by_loss[0].epoch.epoch, 1);
  EXPECT_DOUBLE_EQ(by_loss[0].value, 1.0);

  EXPECT_EQ(store.best_trials(study.id, BestQuery{"map", 1, false}).size(), 1u);
  store.complete_trial(ids[0]);
  const auto completed = store.best_trials(study.id, BestQuery{"map", 0, true});
  ASSERT_EQ(completed.size(), 1u);
  EXPECT_EQ(completed[0].trial.number, 0);
  EXPECT_EQ(completed[0].trial.status, TrialStatus::Completed);

  // best_epoch follows the study's objective (map).
  EXPECT_EQ(store.trial(ids[0]).best_epoch, std::optional<std::int64_t>(1));
  EXPECT_EQ(store.trial(ids[1]).best_epoch, std::optional<std::int64_t>(1));
  EXPECT_EQ(store.trial(ids[2]).best_epoch, std::optional<std::int64_t>(0));

  const std::string m = error_of(
      [&] { store.best_trials(study.id, BestQuery{"map; DROP TABLE epochs", 0, false}); });
  EXPECT_NE(m.find("unknown objective"), std::string::npos) << m;
  EXPECT_EQ(store.epochs(ids[0]).size(), 3u);
}

TEST_F(StoreTest, RewrittenEpochReplacesTheOldOne) {
  Store store = Store::open(db_path());
  const auto study = store.create_or_get_study(sweep_spec("voc"));
  const auto trial = store.add_trial(study.id, 0, "{}", 1);
  store.start_trial(trial.id, 0, "localhost");
  store.record_epoch(trial.id, make_epoch(0, 0.10, 0.05), {0.1, 0.2, 0.3});
  store.record_epoch(trial.id, make_epoch(1, 0.30, 0.05), {0.3, 0.3, 0.3});
  EXPECT_EQ(store.trial(trial.id).best_epoch, std::optional<std::int64_t>(1));

  // After a resume, epoch 0 is written again with other values and fewer classes.
  EpochRecord again = make_epoch(0, 0.40, 0.35);
  again.map_middle = std::nan("");  // NaN means absent
  store.record_epoch(trial.id, again, {0.5, 0.6});
  const auto epochs = store.epochs(trial.id);
  ASSERT_EQ(epochs.size(), 2u);
  EXPECT_EQ(epochs[0].epoch, 0);
  EXPECT_DOUBLE_EQ(*epochs[0].map, 0.40);
  EXPECT_DOUBLE_EQ(*epochs[0].map_tail, 0.35);
  EXPECT_FALSE(epochs[0].map_middle.has_value());
  EXPECT_EQ(store.class_ap(trial.id, 0), (std::vector<double>{0.5, 0.6}));
  EXPECT_EQ(store.trial(trial.id).best_epoch, std::optional<std::int64_t>(0));

  // A restart from the checkpoint of epoch 0 drops the later epochs.
  store.record_epoch(trial.id, make_epoch(2, 0.90, 0.80), {0.9});
  EXPECT_EQ(store.truncate_epochs(trial.id, 0), 2);
  ASSERT_EQ(store.epochs(trial.id).size(), 1u);
  EXPECT_TRUE(store.class_ap(trial.id, 2).empty());
  EXPECT_EQ(store.trial(trial.id).best_epoch, std::optional<std::int64_t>(0));
  EXPECT_EQ(store.trial(trial.id).last_epoch, std::optional<std::int64_t>(0));

  const std::string m =
      error_of([&] { store.record_epoch(trial.id + 50, make_epoch(0, 0.1, 0.1), {}); });
  EXPECT_NE(m.find("no trial with id"), std::string::npos) << m;
}

// ------------------------------------------------------------------ status

TEST_F(StoreTest, StatusTransitionsAndCounts) {
  const std::string path = db_path();
  Store store = Store::open(path);
  const auto study = store.create_or_get_study(sweep_spec("voc"));
  std::vector<std::int64_t> ids;
  for (int k = 0; k < 7; ++k) ids.push_back(store.add_trial(study.id, k, "{}", k).id);
  for (int k = 0; k < 5; ++k) store.start_trial(ids[k], k, "node" + std::to_string(k));
  store.complete_trial(ids[0]);
  store.fail_trial(ids[1], "CUDA out of memory at batch 64");
  store.prune_trial(ids[2]);
  store.interrupt_trial(ids[3]);
  store.fail_trial(ids[6], "could not start: bad image");  // pending -> failed is allowed

  StatusCounts c = store.status_counts(study.id);
  EXPECT_EQ(c.completed, 1);
  EXPECT_EQ(c.failed, 2);
  EXPECT_EQ(c.pruned, 1);
  EXPECT_EQ(c.interrupted, 1);
  EXPECT_EQ(c.running, 1);
  EXPECT_EQ(c.pending, 1);
  EXPECT_EQ(c.total(), 7);
  EXPECT_EQ(c.epochs_recorded, 0);
  EXPECT_FALSE(c.mean_epoch_seconds.has_value());
  ASSERT_TRUE(c.mean_completed_trial_seconds.has_value());
  EXPECT_GE(*c.mean_completed_trial_seconds, 0.0);

  const TrialInfo failed = store.trial(ids[1]);
  EXPECT_EQ(failed.error, "CUDA out of memory at batch 64");
  EXPECT_TRUE(failed.finished_at.has_value());
  EXPECT_EQ(store.trials(study.id, TrialStatus::Failed).size(), 2u);

  // Transitions that are not allowed name the trial and its status.
  const std::string m1 = error_of([&] { store.complete_trial(ids[5]); });
  EXPECT_NE(m1.find("cannot complete trial 5 of study 'voc' in " + path + ": it is pending"),
            std::string::npos)
      << m1;
  EXPECT_NE(error_of([&] { store.start_trial(ids[0], 0, "x"); }).find("it is completed"),
            std::string::npos);
  EXPECT_NE(error_of([&] { store.prune_trial(ids[3]); }).find("it is interrupted"),
            std::string::npos);
  EXPECT_NE(error_of([&] { store.complete_trial(12345); }).find("no trial with id 12345"),
            std::string::npos);
  EXPECT_NE(error_of([&] { store.requeue(study.id, TrialStatus::Completed); })
                .find("cannot requeue"),
            std::string::npos);

  // Running trials and their last epoch.
  auto running = store.running_trials(study.id);
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0].trial.number, 4);
  EXPECT_EQ(running[0].trial.host, "node4");
  EXPECT_FALSE(running[0].last_epoch.has_value());
  store.record_epoch(ids[4], make_epoch(0, 0.2, 0.1), {});
  store.record_epoch(ids[4], make_epoch(1, 0.3, 0.1), {});
  running = store.running_trials(study.id);
  ASSERT_EQ(running.size(), 1u);
  ASSERT_TRUE(running[0].last_epoch.has_value());
  EXPECT_EQ(running[0].last_epoch->epoch, 1);
  EXPECT_DOUBLE_EQ(*running[0].last_epoch->map, 0.3);
  c = store.status_counts(study.id);
  EXPECT_EQ(c.epochs_recorded, 2);
  ASSERT_TRUE(c.mean_epoch_seconds.has_value());
  EXPECT_DOUBLE_EQ(*c.mean_epoch_seconds, 2.5);

  // A dead job left trial 4 running: a resume puts it back to pending, attempts kept.
  EXPECT_EQ(store.requeue(study.id), 1);
  TrialInfo t4 = store.trial(ids[4]);
  EXPECT_EQ(t4.status, TrialStatus::Pending);
  EXPECT_EQ(t4.attempts, 1);
  EXPECT_EQ(store.epochs(ids[4]).size(), 2u);  // its epochs are kept for the checkpoint resume
  store.start_trial(ids[4], 9, "node9");
  t4 = store.trial(ids[4]);
  EXPECT_EQ(t4.status, TrialStatus::Running);
  EXPECT_EQ(t4.attempts, 2);
  EXPECT_EQ(t4.rank_group, std::optional<int>(9));
  EXPECT_EQ(t4.host, "node9");

  // An interrupted trial starts again directly.
  store.start_trial(ids[3], 1, "node1");
  EXPECT_EQ(store.trial(ids[3]).attempts, 2);
  EXPECT_TRUE(store.trial(ids[3]).seconds.has_value());  // the interrupted attempt's time

  // Failed trials can be requeued on request; the error stays until they start again.
  EXPECT_EQ(store.requeue(study.id, TrialStatus::Failed), 2);
  EXPECT_EQ(store.trial(ids[1]).error, "CUDA out of memory at batch 64");
  store.start_trial(ids[1], 0, "node0");
  EXPECT_EQ(store.trial(ids[1]).error, "");

  store.set_checkpoint(ids[4], "/ckpt/voc/trial4/last.pt");
  EXPECT_EQ(store.trial(ids[4]).checkpoint, "/ckpt/voc/trial4/last.pt");

  c = store.status_counts(study.id);
  EXPECT_EQ(c.running, 3);
  EXPECT_EQ(c.pending, 2);
  EXPECT_EQ(c.failed, 0);
  EXPECT_EQ(c.total(), 7);
}

// ------------------------------------------------------------------ transactions

TEST_F(StoreTest, TransactionRollsBackOnException) {
  const std::string path = db_path();
  Store store = Store::open(path);
  const auto study = store.create_or_get_study(sweep_spec("voc"));
  const auto trial = store.add_trial(study.id, 0, "{}", 1);
  store.start_trial(trial.id, 0, "localhost");
  store.record_epoch(trial.id, make_epoch(0, 0.1, 0.1), {0.1});

  try {
    auto tx = store.transaction();
    store.record_epoch(trial.id, make_epoch(0, 0.9, 0.9), {0.9, 0.9});  // a rewrite
    store.record_epoch(trial.id, make_epoch(1, 0.5, 0.5), {0.5});
    store.complete_trial(trial.id);
    store.add_trial(study.id, 1, "{}", 2);
    throw std::runtime_error("the worker died");
  } catch (const std::runtime_error&) {
  }
  auto epochs = store.epochs(trial.id);
  ASSERT_EQ(epochs.size(), 1u);
  EXPECT_DOUBLE_EQ(*epochs[0].map, 0.1);
  EXPECT_EQ(store.class_ap(trial.id, 0), std::vector<double>{0.1});
  EXPECT_EQ(store.trial(trial.id).status, TrialStatus::Running);
  EXPECT_EQ(store.trial(trial.id).best_epoch, std::optional<std::int64_t>(0));
  EXPECT_EQ(store.trials(study.id).size(), 1u);
  // The same from another connection: nothing was committed.
  EXPECT_EQ(Store::open_read_only(path).epochs(trial.id).size(), 1u);

  // A failing call inside a transaction undoes only itself (a savepoint); commit keeps the rest.
  {
    auto tx = store.transaction();
    store.record_epoch(trial.id, make_epoch(1, 0.5, 0.5), {0.5});
    EXPECT_THROW(store.complete_trial(trial.id + 99), Error);
    EXPECT_THROW(store.add_trial(study.id, 0, R"j({"other": 1})j", 1), Error);
    tx.commit();
  }
  EXPECT_EQ(store.epochs(trial.id).size(), 2u);
  EXPECT_EQ(store.trials(study.id).size(), 1u);
  EXPECT_EQ(Store::open_read_only(path).epochs(trial.id).size(), 2u);
}

// ------------------------------------------------------------------ a reader while writing

class StoreConcurrency : public StoreTest, public ::testing::WithParamInterface<JournalMode> {};

TEST_P(StoreConcurrency, ReaderNeverSeesLockedWhileWriterWrites) {
  const std::string path = db_path();
  Store::Options options;
  options.journal = GetParam();
  Store writer = Store::open(path, options);
  EXPECT_EQ(writer.journal_mode(), GetParam());
  const auto study = writer.create_or_get_study(sweep_spec("voc"));
  std::vector<std::int64_t> ids;
  for (int k = 0; k < 4; ++k) {
    ids.push_back(writer.add_trial(study.id, k, "{}", k).id);
    writer.start_trial(ids.back(), k, "localhost");
  }

  std::atomic<bool> done{false};
  std::atomic<int> errors{0};
  std::atomic<int> reads{0};
  std::string first_error;
  auto read_loop = [&](bool first) {
    try {
      Store reader = Store::open_read_only(path);
      EXPECT_EQ(reader.journal_mode(), GetParam());
      bool last = false;
      while (!last) {
        last = done.load();
        try {
          const StatusCounts c = reader.status_counts(study.id);
          EXPECT_EQ(c.total(), 4);
          EXPECT_LE(c.epochs_recorded, 200);
          reader.best_trials(study.id, BestQuery{"map_tail", 3, false});
          reader.running_trials(study.id);
          ++reads;
        } catch (const Error& e) {
          if (errors++ == 0 && first) first_error = e.what();
        }
      }
    } catch (const Error& e) {
      if (errors++ == 0 && first) first_error = e.what();
    }
  };
  std::thread reader1(read_loop, true);
  std::thread reader2(read_loop, false);

  // 200 epochs, each in its own transaction, over 4 trials; every 50th also changes a status.
  for (int i = 0; i < 200; ++i) {
    const std::int64_t trial = ids[i % 4];
    auto tx = writer.transaction();
    writer.record_epoch(trial, make_epoch(i / 4, 0.001 * i, 0.0005 * i),
                        std::vector<double>(20, 0.001 * i));
    tx.commit();
  }
  done = true;
  reader1.join();
  reader2.join();

  EXPECT_EQ(errors.load(), 0) << first_error;
  EXPECT_GE(reads.load(), 2);  // each reader reads at least once after the writer finished
  const StatusCounts c = Store::open_read_only(path).status_counts(study.id);
  EXPECT_EQ(c.epochs_recorded, 200);
  EXPECT_EQ(c.running, 4);
  const auto best = Store::open_read_only(path).best_trials(study.id, BestQuery{"map", 1, false});
  ASSERT_EQ(best.size(), 1u);
  EXPECT_EQ(best[0].trial.number, 3);   // i = 199 is trial 3's epoch 49
  EXPECT_EQ(best[0].epoch.epoch, 49);
}

// The real situation: `lmsweep status` in one process, the sweep writing in another.
TEST_P(StoreConcurrency, ReaderInAnotherProcessNeverSeesLocked) {
  const std::string path = db_path();
  Store::Options options;
  options.journal = GetParam();
  std::int64_t study_id = 0;
  std::vector<std::int64_t> ids;
  {
    Store writer = Store::open(path, options);
    study_id = writer.create_or_get_study(sweep_spec("voc")).id;
    for (int k = 0; k < 4; ++k) ids.push_back(writer.add_trial(study_id, k, "{}", k).id);
  }
  // Fork with no connection open: SQLite's lock bookkeeping must not cross a fork.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The writer process: exit status 0 when all 200 epochs were written.
    int status = 0;
    try {
      Store writer = Store::open(path, options);
      for (int k = 0; k < 4; ++k) writer.start_trial(ids[k], k, "localhost");
      for (int i = 0; i < 200; ++i) {
        writer.record_epoch(ids[i % 4], make_epoch(i / 4, 0.001 * i, 0.0005 * i),
                            std::vector<double>(20, 0.001 * i));
        if (i % 50 == 49) writer.complete_trial(ids[i / 50]);
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "writer process: %s\n", e.what());
      status = 1;
    }
    std::fflush(stderr);
    ::_exit(status);
  }

  Store reader = Store::open_read_only(path);
  int errors = 0, reads = 0, wait_status = 0;
  std::string first_error;
  for (bool writer_done = false; !writer_done;) {
    writer_done = ::waitpid(child, &wait_status, WNOHANG) == child;
    try {
      const StatusCounts c = reader.status_counts(study_id);
      EXPECT_EQ(c.total(), 4);
      reader.best_trials(study_id, BestQuery{"map_tail", 0, false});
      reader.running_trials(study_id);
      ++reads;
    } catch (const Error& e) {
      if (errors++ == 0) first_error = e.what();
    }
  }
  ASSERT_TRUE(WIFEXITED(wait_status));
  EXPECT_EQ(WEXITSTATUS(wait_status), 0);
  EXPECT_EQ(errors, 0) << first_error;
  EXPECT_GE(reads, 1);
  const StatusCounts c = reader.status_counts(study_id);
  EXPECT_EQ(c.epochs_recorded, 200);
  EXPECT_EQ(c.completed, 4);
}

INSTANTIATE_TEST_SUITE_P(Modes, StoreConcurrency,
                         ::testing::Values(JournalMode::Wal, JournalMode::Delete),
                         [](const auto& param_info) { return std::string(to_string(param_info.param)); });

}  // namespace
