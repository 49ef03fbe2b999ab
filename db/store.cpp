#include "db/store.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cctype>
#include <filesystem>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "common/strings.h"

#include <unistd.h>

#if defined(__linux__)
#include <sys/vfs.h>
#endif

#ifndef LMSWEEP_VERSION
#define LMSWEEP_VERSION "unknown"
#endif

namespace lmsweep::db {

namespace {

// ---------------------------------------------------------------- schema (version 1)

constexpr const char* kSchema = R"sql(
CREATE TABLE studies(
  id              INTEGER PRIMARY KEY,
  name            TEXT NOT NULL UNIQUE,
  space_json      TEXT NOT NULL,
  config_json     TEXT NOT NULL,
  method          TEXT NOT NULL,
  objective       TEXT NOT NULL,
  seed            INTEGER NOT NULL,
  planned_trials  INTEGER,
  gpus_per_trial  INTEGER NOT NULL DEFAULT 1,
  scheduler       TEXT NOT NULL DEFAULT 'none',
  scheduler_json  TEXT NOT NULL DEFAULT '{}',
  created_at      REAL NOT NULL,
  lmsweep_version TEXT NOT NULL DEFAULT ''
);
CREATE TABLE trials(
  id          INTEGER PRIMARY KEY,
  study_id    INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
  number      INTEGER NOT NULL CHECK(number >= 0),
  params_json TEXT NOT NULL,
  seed        INTEGER NOT NULL,
  status      TEXT NOT NULL DEFAULT 'pending' CHECK(status IN
                ('pending', 'running', 'completed', 'failed', 'pruned', 'interrupted')),
  attempts    INTEGER NOT NULL DEFAULT 0,
  rank_group  INTEGER,
  host        TEXT,
  created_at  REAL NOT NULL,
  started_at  REAL,
  finished_at REAL,
  seconds     REAL,
  error       TEXT,
  best_epoch  INTEGER,
  checkpoint  TEXT,
  UNIQUE(study_id, number)
);
CREATE INDEX trials_by_status ON trials(study_id, status);
CREATE TABLE epochs(
  trial_id       INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
  epoch          INTEGER NOT NULL,
  train_loss     REAL,
  lr             REAL,
  seconds        REAL,
  map            REAL,
  map_head       REAL,
  map_middle     REAL,
  map_tail       REAL,
  map_single     REAL,
  map_multi      REAL,
  centroid_ratio REAL,
  metrics_json   TEXT NOT NULL DEFAULT '{}',
  recorded_at    REAL NOT NULL,
  PRIMARY KEY(trial_id, epoch)
) WITHOUT ROWID;
CREATE TABLE class_ap(
  trial_id    INTEGER NOT NULL,
  epoch       INTEGER NOT NULL,
  class_index INTEGER NOT NULL,
  ap          REAL,
  PRIMARY KEY(trial_id, epoch, class_index),
  FOREIGN KEY(trial_id, epoch) REFERENCES epochs(trial_id, epoch) ON DELETE CASCADE
) WITHOUT ROWID;
)sql";

// Version 2 adds what keeps a sweep alive and alone: each trial's crash count (times its job
// died while it ran), the ranks that run it (with the coordinator's last heartbeat), and the
// writer's lease; and what a TPE trial's suggestion saw (suggestion_json). A version-1 file is migrated by its first writer; readers take either.
constexpr const char* kSchemaV2 = R"sql(
ALTER TABLE trials ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE trials ADD COLUMN suggestion_json TEXT;
CREATE TABLE trial_ranks(
  trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
  rank     INTEGER NOT NULL,
  host     TEXT NOT NULL,
  pid      INTEGER NOT NULL,
  heard_at REAL NOT NULL,
  PRIMARY KEY(trial_id, rank)
) WITHOUT ROWID;
CREATE TABLE lease(
  id           INTEGER PRIMARY KEY CHECK(id = 1),
  holder       TEXT NOT NULL,
  job          TEXT NOT NULL,
  host         TEXT NOT NULL,
  pid          INTEGER NOT NULL,
  taken_at     REAL NOT NULL,
  heartbeat_at REAL NOT NULL,
  stale_after  REAL NOT NULL
);
)sql";

// Column lists shared by the queries and the readers below (keep them in step).
constexpr const char* kStudyColumns =
    "id, name, space_json, config_json, method, objective, seed, planned_trials, "
    "gpus_per_trial, scheduler, scheduler_json, created_at";
constexpr const char* kTrialColumns =
    "t.id, t.study_id, t.number, t.params_json, t.seed, t.status, t.attempts, t.rank_group, "
    "t.host, t.created_at, t.started_at, t.finished_at, t.seconds, t.error, t.best_epoch, "
    "t.checkpoint, (SELECT MAX(x.epoch) FROM epochs x WHERE x.trial_id = t.id)";
constexpr int kTrialColumnCount = 17;
constexpr const char* kEpochColumns =
    "e.epoch, e.train_loss, e.lr, e.seconds, e.map, e.map_head, e.map_middle, e.map_tail, "
    "e.map_single, e.map_multi, e.centroid_ratio, e.metrics_json, e.recorded_at";

struct ObjectiveSpec {
  const char* name;  // also the epochs column
  bool maximize;
};
constexpr ObjectiveSpec kObjectives[] = {
    {"map", true},        {"map_head", true},   {"map_middle", true},
    {"map_tail", true},   {"map_single", true}, {"map_multi", true},
    {"train_loss", false}, {"centroid_ratio", false},
};

const ObjectiveSpec* find_objective(std::string_view name) {
  for (const auto& o : kObjectives) {
    if (name == o.name) return &o;
  }
  return nullptr;
}

// An objective as SQL sees it: an epoch column, or a key of metrics_json (a command trial's own
// metric, maximised). Only names that pass is_metric_name() reach the SQL text.
struct ObjectiveRef {
  std::string name;
  bool maximize = true;
  bool column = false;
  // `table`.column, or json_extract(`table`.metrics_json, '$."name"').
  std::string sql(const char* table) const {
    return column ? fmt::format("{}.{}", table, name)
                  : fmt::format("json_extract({}.metrics_json, '$.\"{}\"')", table, name);
  }
};

ObjectiveRef objective_or_throw(std::string_view name) {
  if (const auto* o = find_objective(name)) return {o->name, o->maximize, true};
  if (!is_metric_name(name)) {
    std::string names;
    for (const auto& x : kObjectives) names += std::string(names.empty() ? "" : ", ") + x.name;
    throw Error(fmt::format("unknown objective '{}': use one of {}, or a metric a command trial prints (letters, "
                            "digits, '_', '-', '.')", name, names));
  }
  return {std::string(name), true, false};
}

// Resets a cached statement when the scope ends, whatever happens: a statement left
// mid-iteration would keep its read lock (and block a writer in rollback-journal mode).
class Use {
 public:
  explicit Use(Statement& statement) : statement_(statement) {}
  ~Use() { statement_.reset(); }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;
  Statement& operator*() { return statement_; }
  Statement* operator->() { return &statement_; }

 private:
  Statement& statement_;
};

// Parses `text` as JSON (key order kept) and returns it compact; Error naming `what` if invalid.
std::string canonical_json(const std::string& text, const std::string& what) {
  try {
    return nlohmann::ordered_json::parse(text).dump();
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: invalid JSON ({}): {}", what, e.what(), text.substr(0, 200)));
  }
}

// JSON equality ignoring key order and spacing (1 and 1.0 compare equal).
bool same_json(const std::string& a, const std::string& b) {
  try {
    return nlohmann::json::parse(a) == nlohmann::json::parse(b);
  } catch (const nlohmann::json::exception&) {
    return a == b;
  }
}

StudyInfo read_study(Statement& s) {
  StudyInfo info;
  info.id = s.get_int64(0);
  info.name = s.get_text(1);
  info.space_json = s.get_text(2);
  info.config_json = s.get_text(3);
  info.method = s.get_text(4);
  info.objective = s.get_text(5);
  info.seed = s.get_int64(6);
  info.planned_trials = s.get_optional_int64(7);
  info.gpus_per_trial = s.get_int(8);
  info.scheduler = s.get_text(9);
  info.scheduler_json = s.get_text(10);
  info.created_at = s.get_double(11);
  return info;
}

TrialInfo read_trial(Statement& s, int at = 0) {
  TrialInfo t;
  t.id = s.get_int64(at + 0);
  t.study_id = s.get_int64(at + 1);
  t.number = s.get_int64(at + 2);
  t.params_json = s.get_text(at + 3);
  t.seed = s.get_int64(at + 4);
  t.status = parse_trial_status(s.get_text(at + 5));
  t.attempts = s.get_int(at + 6);
  if (!s.is_null(at + 7)) t.rank_group = s.get_int(at + 7);
  t.host = s.get_text(at + 8);
  t.created_at = s.get_double(at + 9);
  t.started_at = s.get_optional_double(at + 10);
  t.finished_at = s.get_optional_double(at + 11);
  t.seconds = s.get_optional_double(at + 12);
  t.error = s.get_text(at + 13);
  t.best_epoch = s.get_optional_int64(at + 14);
  t.checkpoint = s.get_text(at + 15);
  t.last_epoch = s.get_optional_int64(at + 16);
  return t;
}

EpochRecord read_epoch(Statement& s, int at = 0) {
  EpochRecord e;
  e.epoch = s.get_int64(at + 0);
  e.train_loss = s.get_optional_double(at + 1);
  e.lr = s.get_optional_double(at + 2);
  e.seconds = s.get_optional_double(at + 3);
  e.map = s.get_optional_double(at + 4);
  e.map_head = s.get_optional_double(at + 5);
  e.map_middle = s.get_optional_double(at + 6);
  e.map_tail = s.get_optional_double(at + 7);
  e.map_single = s.get_optional_double(at + 8);
  e.map_multi = s.get_optional_double(at + 9);
  e.centroid_ratio = s.get_optional_double(at + 10);
  e.metrics_json = s.get_text(at + 11);
  e.recorded_at = s.get_double(at + 12);
  return e;
}

// A NaN metric is stored as NULL (absent); so is an absent optional.
std::optional<double> finite_or_null(const std::optional<double>& v) {
  if (v && std::isnan(*v)) return std::nullopt;
  return v;
}

struct Header {
  int user_version = 0;
  std::int32_t application_id = 0;
  std::vector<std::string> tables;
};

// Reads the header pragmas; a file that is not SQLite fails here (SQLite opens lazily).
Header read_header(Connection& c) {
  Header h;
  try {
    {
      Statement s(c, "PRAGMA user_version");
      if (s.step()) h.user_version = s.get_int(0);
    }
    {
      Statement s(c, "PRAGMA application_id");
      if (s.step()) h.application_id = static_cast<std::int32_t>(s.get_int64(0));
    }
    Statement s(c, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    while (s.step()) h.tables.push_back(s.get_text(0));
  } catch (const SqliteError& e) {
    if (e.primary_code() == SQLITE_NOTADB) {
      throw Error(fmt::format(
          "{} is not an SQLite database (file is not a database): pass another --db path",
          c.path()));
    }
    if (e.primary_code() == SQLITE_CANTOPEN || e.primary_code() == SQLITE_IOERR) {
      throw Error(fmt::format("cannot read database {} ({}): check the path and permissions",
                              c.path(), e.what()));
    }
    throw;
  }
  return h;
}

void check_header(const Header& h, const std::string& path) {
  if (h.application_id != 0 && h.application_id != kApplicationId) {
    throw Error(fmt::format(
        "{} is an SQLite database of another program (application_id {:#x}), not an lmsweep "
        "one: pass another --db path",
        path, static_cast<std::uint32_t>(h.application_id)));
  }
  if (h.user_version != 0 && (h.user_version < 1 || h.user_version > kSchemaVersion)) {
    throw Error(fmt::format(
        "{} has schema version {}, this lmsweep reads versions 1 to {}: use a new --db file or "
        "the matching lmsweep version",
        path, h.user_version, kSchemaVersion));
  }
  if (h.user_version == 0 && !h.tables.empty()) {
    std::string names;
    for (std::size_t i = 0; i < h.tables.size() && i < 5; ++i) {
      names += (i ? ", " : "") + h.tables[i];
    }
    throw Error(fmt::format(
        "{} is an SQLite database but not an lmsweep one (it holds tables {}): pass another "
        "--db path",
        path, names));
  }
}

bool is_network_filesystem(const std::string& path) {
#if defined(__linux__)
  std::error_code ec;
  auto dir = std::filesystem::absolute(path, ec).parent_path();
  if (ec || dir.empty()) return false;
  struct statfs st {};
  if (::statfs(dir.c_str(), &st) != 0) return false;
  switch (static_cast<std::uint32_t>(st.f_type)) {
    case 0x6969u:      // NFS
    case 0x517Bu:      // SMB
    case 0xFF534D42u:  // CIFS
    case 0xFE534D42u:  // SMB2
    case 0x0BD00BD0u:  // Lustre
    case 0x47504653u:  // GPFS
    case 0x19830326u:  // BeeGFS
    case 0x00C36400u:  // CephFS
    case 0xAAD7AAEAu:  // PanFS
    case 0x5346414Fu:  // AFS
    case 0x6B414653u:  // kAFS
    case 0x01021997u:  // 9p
    case 0x65735546u:  // FUSE (sshfs, JuiceFS, ...)
      return true;
    default:
      return false;
  }
#else
  (void)path;
  return false;
#endif
}

// The case Store::open_read_only reads as immutable: no -wal file (no writer), a folder this
// process cannot write (so no -shm can be made).
bool wal_file_in_unwritable_folder_at_rest(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path + "-wal", ec)) return false;
  const auto folder = std::filesystem::absolute(path, ec).parent_path();
  return !ec && ::access(folder.c_str(), W_OK) != 0;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

// ---------------------------------------------------------------- free functions

std::string_view to_string(JournalMode mode) {
  switch (mode) {
    case JournalMode::Auto: return "auto";
    case JournalMode::Wal: return "wal";
    case JournalMode::Delete: return "delete";
  }
  return "auto";
}

JournalMode parse_journal_mode(std::string_view text) {
  const std::string t = lower(std::string(text));
  if (t == "auto") return JournalMode::Auto;
  if (t == "wal") return JournalMode::Wal;
  if (t == "delete") return JournalMode::Delete;
  throw Error(fmt::format("unknown database journal mode '{}': use auto, wal or delete", text));
}

JournalMode resolve_journal_mode(JournalMode mode, const std::string& path) {
  if (mode != JournalMode::Auto) return mode;
  return is_network_filesystem(path) ? JournalMode::Delete : JournalMode::Wal;
}

std::string_view to_string(TrialStatus status) {
  switch (status) {
    case TrialStatus::Pending: return "pending";
    case TrialStatus::Running: return "running";
    case TrialStatus::Completed: return "completed";
    case TrialStatus::Failed: return "failed";
    case TrialStatus::Pruned: return "pruned";
    case TrialStatus::Interrupted: return "interrupted";
  }
  return "pending";
}

TrialStatus parse_trial_status(std::string_view text) {
  for (auto s : {TrialStatus::Pending, TrialStatus::Running, TrialStatus::Completed,
                 TrialStatus::Failed, TrialStatus::Pruned, TrialStatus::Interrupted}) {
    if (text == to_string(s)) return s;
  }
  throw Error(fmt::format(
      "unknown trial status '{}': use pending, running, completed, failed, pruned or interrupted",
      text));
}

bool is_objective(std::string_view name) { return find_objective(name) != nullptr; }

std::optional<double> epoch_value(const EpochRecord& e, std::string_view column) {
  if (column == "map") return e.map;
  if (column == "map_head") return e.map_head;
  if (column == "map_middle") return e.map_middle;
  if (column == "map_tail") return e.map_tail;
  if (column == "map_single") return e.map_single;
  if (column == "map_multi") return e.map_multi;
  if (column == "train_loss") return e.train_loss;
  if (column == "centroid_ratio") return e.centroid_ratio;
  if (is_objective(column) || !is_metric_name(column)) return std::nullopt;
  // A command trial's own metric, kept in metrics_json.
  const auto j = nlohmann::json::parse(e.metrics_json, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  const auto it = j.find(std::string(column));
  if (it == j.end() || !it->is_number()) return std::nullopt;
  const double v = it->get<double>();
  return std::isnan(v) ? std::nullopt : std::optional<double>(v);
}

bool objective_maximized(std::string_view name) { return objective_or_throw(name).maximize; }

const std::vector<std::string>& objective_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& o : kObjectives) v.emplace_back(o.name);
    return v;
  }();
  return names;
}

double unix_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// ---------------------------------------------------------------- Store::Impl

struct Store::Impl {
  std::unique_ptr<Connection> connection;
  Options options;
  JournalMode journal = JournalMode::Wal;
  int version = kSchemaVersion;

  Connection& c() { return *connection; }
  const std::string& path() const { return connection->path(); }

  void require_writable() const {
    LMSWEEP_CHECK(!connection->read_only(),
                  "{} is opened read-only here: this command cannot write to it", path());
  }

  // Runs f, retrying it when SQLite stays busy beyond its timeout. Only outside a caller's
  // transaction: f is then a whole query or a whole transaction, rolled back before a retry.
  template <typename F>
  auto retry(F&& f) -> decltype(f()) {
    if (connection->in_transaction()) return f();
    for (int attempt = 0;; ++attempt) {
      try {
        return f();
      } catch (const BusyError& e) {
        if (attempt >= options.busy_retries) {
          throw Error(fmt::format(
              "{} stayed locked through {} attempts ({}): another process holds a lock on it; "
              "check for a stuck process, or a filesystem without working file locks",
              path(), attempt + 1, e.what()));
        }
        const int ms = std::min(1000, 10 << std::min(attempt, 7));
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      }
    }
  }

  std::string journal_pragma() {
    Statement s(c(), "PRAGMA journal_mode");
    return s.step() ? lower(s.get_text(0)) : std::string();
  }

  void set_journal(JournalMode mode) {
    const char* want = mode == JournalMode::Wal ? "wal" : "delete";
    const std::string got = retry([&] {
      Statement s(c(), fmt::format("PRAGMA journal_mode = {}", want));
      return s.step() ? lower(s.get_text(0)) : std::string();
    });
    // An in-memory or temporary database keeps its "memory" journal.
    if (got == "memory") return;
    if (got != want) {
      throw Error(fmt::format(
          "cannot switch {} to the {} journal mode (it stays in {} mode){}", path(), want, got,
          mode == JournalMode::Delete
              ? ": close the other programs that have it open (lmsweep status, ...) and retry"
              : ": use the delete journal mode for this filesystem"));
    }
    c().exec(mode == JournalMode::Wal ? "PRAGMA synchronous = NORMAL"
                                      : "PRAGMA synchronous = FULL");
  }

  StudyInfo study_by_id(std::int64_t id) {
    Use s(c().cached(fmt::format("SELECT {} FROM studies WHERE id = ?", kStudyColumns)));
    s->bind(1, id);
    LMSWEEP_CHECK(s->step(), "{}: no study with id {}", path(), id);
    return read_study(*s);
  }

  std::optional<StudyInfo> study_by_name(const std::string& name) {
    Use s(c().cached(fmt::format("SELECT {} FROM studies WHERE name = ?", kStudyColumns)));
    s->bind(1, name);
    if (!s->step()) return std::nullopt;
    return read_study(*s);
  }

  TrialInfo trial_by_id(std::int64_t id) {
    Use s(c().cached(fmt::format("SELECT {} FROM trials t WHERE t.id = ?", kTrialColumns)));
    s->bind(1, id);
    LMSWEEP_CHECK(s->step(), "{}: no trial with id {}", path(), id);
    return read_trial(*s);
  }

  std::string trial_name(const TrialInfo& t) {
    return fmt::format("trial {} of study '{}' in {}", t.number, study_by_id(t.study_id).name,
                       path());
  }

  // Runs an UPDATE of one trial guarded by its current status; when no row changed, says why.
  template <typename... Args>
  void transition(std::int64_t trial_id, const char* verb, const char* done, const char* allowed,
                  const std::string& sql, const Args&... args) {
    require_writable();
    retry([&] {
      Use s(c().cached(sql));
      s->bind_all(args...);
      s->run();
      if (c().changes() == 0) {
        const TrialInfo t = trial_by_id(trial_id);  // throws when there is no such trial
        throw Error(fmt::format("cannot {} {}: it is {} (only {} trials can be {})", verb,
                                trial_name(t), to_string(t.status), allowed, done));
      }
    });
  }

  void update_best_epoch(std::int64_t trial_id, const std::string& objective) {
    // An objective unknown to this version (a study written by hand) leaves best_epoch unset.
    if (!find_objective(objective) && !is_metric_name(objective)) return;
    const ObjectiveRef o = objective_or_throw(objective);
    Use s(c().cached(fmt::format(
        "UPDATE trials SET best_epoch = (SELECT epoch FROM epochs e WHERE trial_id = ?1 AND {0} "
        "IS NOT NULL ORDER BY {0} {1}, epoch ASC LIMIT 1) WHERE id = ?1",
        o.sql("e"), o.maximize ? "DESC" : "ASC")));
    s->bind(1, trial_id);
    s->run();
  }

  std::string study_objective_of_trial(std::int64_t trial_id) {
    Use s(c().cached(
        "SELECT s.objective FROM trials t JOIN studies s ON s.id = t.study_id WHERE t.id = ?"));
    s->bind(1, trial_id);
    LMSWEEP_CHECK(s->step(), "{}: no trial with id {}", path(), trial_id);
    return s->get_text(0);
  }
};

// ---------------------------------------------------------------- open

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() = default;

Store Store::open(const std::string& path, const Options& options) {
  LMSWEEP_CHECK(!path.empty(), "empty database path: pass --db FILE");
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw Error(fmt::format("database path {} is a folder: pass a file path such as {}/lmsweep.db",
                            path, path));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->connection = std::make_unique<Connection>(path, /*read_only=*/false, /*create=*/true,
                                                  options.busy_timeout_ms);
  Connection& c = impl->c();
  // SQLite silently opens a write-protected file read-only.
  if (sqlite3_db_readonly(c.handle(), "main") == 1) {
    throw Error(fmt::format(
        "cannot write database {} (the file is read-only): fix its permissions or pass another "
        "--db",
        path));
  }
  // Refuse foreign or other-version files before touching anything in them.
  check_header(impl->retry([&] { return read_header(c); }), path);

  c.exec("PRAGMA foreign_keys = ON");
  impl->journal = resolve_journal_mode(options.journal, path);
  impl->set_journal(impl->journal);

  impl->retry([&] {
    Transaction tx(c);
    const Header h = read_header(c);  // again under the write lock: another writer may have won
    check_header(h, path);
    if (h.user_version == 0) {
      c.exec(kSchema);
      c.exec(fmt::format("PRAGMA application_id = {}", kApplicationId));
    }
    if (h.user_version < 2) {
      c.exec(kSchemaV2);
      c.exec(fmt::format("PRAGMA user_version = {}", kSchemaVersion));
    }
    tx.commit();
  });
  impl->version = kSchemaVersion;
  return Store(std::move(impl));
}

Store Store::open_read_only(const std::string& path, const Options& options) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw Error(fmt::format(
        "database {} does not exist: check --db, or run `lmsweep train` / `lmsweep sweep` with "
        "--db {} first",
        path, path));
  }
  if (std::filesystem::is_directory(path, ec)) {
    throw Error(fmt::format("database path {} is a folder: pass the database file", path));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->connection = std::make_unique<Connection>(path, /*read_only=*/true, /*create=*/false,
                                                  options.busy_timeout_ms);
  Header h;
  try {
    h = impl->retry([&] { return read_header(impl->c()); });
  } catch (const Error&) {
    // A WAL file in a folder this user cannot write: SQLite cannot make the -shm index. With no
    // -wal file beside it nothing writes it (a writer keeps one), so it is read as immutable.
    if (!wal_file_in_unwritable_folder_at_rest(path)) throw;
    impl->connection = std::make_unique<Connection>(path, true, false, options.busy_timeout_ms,
                                                    /*immutable=*/true);
    h = impl->retry([&] { return read_header(impl->c()); });
  }
  Connection& c = impl->c();
  check_header(h, path);
  if (h.user_version == 0) {
    throw Error(fmt::format(
        "{} holds no lmsweep results (an empty SQLite file): check --db", path));
  }
  impl->version = h.user_version;
  const std::string mode = impl->retry([&] { return impl->journal_pragma(); });
  impl->journal = mode == "wal" ? JournalMode::Wal : JournalMode::Delete;
  return Store(std::move(impl));
}

const std::string& Store::path() const { return impl_->path(); }
bool Store::read_only() const { return impl_->connection->read_only(); }
JournalMode Store::journal_mode() const { return impl_->journal; }
int Store::schema_version() const { return impl_->version; }

Transaction Store::transaction() { return Transaction(impl_->c(), !read_only()); }

// ---------------------------------------------------------------- studies

StudyInfo Store::create_or_get_study(const StudySpec& spec) {
  impl_->require_writable();
  LMSWEEP_CHECK(!spec.name.empty(), "empty study name: give the study a name");
  LMSWEEP_CHECK(!spec.method.empty(), "study '{}': empty method", spec.name);
  LMSWEEP_CHECK(spec.gpus_per_trial >= 0, "study '{}': gpus_per_trial {} is negative", spec.name,
                spec.gpus_per_trial);
  objective_or_throw(spec.objective);
  const std::string space =
      canonical_json(spec.space_json, fmt::format("study '{}': search space", spec.name));
  const std::string config =
      canonical_json(spec.config_json, fmt::format("study '{}': config", spec.name));
  const std::string scheduler_json =
      canonical_json(spec.scheduler_json, fmt::format("study '{}': scheduler settings", spec.name));
  auto& impl = *impl_;
  return impl.retry([&] {
    Transaction tx(impl.c());
    if (auto existing = impl.study_by_name(spec.name)) {
      if (!same_json(existing->space_json, space)) {
        throw Error(fmt::format(
            "study {} exists in {} with another search space ({}): choose another name or use "
            "the space it was created with",
            spec.name, impl.path(), existing->space_json));
      }
      if (existing->method != spec.method) {
        throw Error(fmt::format(
            "study {} exists in {} with method {}, not {}: choose another name or use method {}",
            spec.name, impl.path(), existing->method, spec.method, existing->method));
      }
      if (existing->seed != spec.seed) {
        throw Error(fmt::format(
            "study {} exists in {} with seed {}, not {}: choose another name or use seed {}",
            spec.name, impl.path(), existing->seed, spec.seed, existing->seed));
      }
      tx.commit();
      return *existing;
    }
    Use s(impl.c().cached(
        "INSERT INTO studies(name, space_json, config_json, method, objective, seed, "
        "planned_trials, gpus_per_trial, scheduler, scheduler_json, created_at, lmsweep_version) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    s->bind_all(spec.name, space, config, spec.method, spec.objective, spec.seed,
                spec.planned_trials, spec.gpus_per_trial, spec.scheduler, scheduler_json,
                unix_now(), LMSWEEP_VERSION);
    s->run();
    const std::int64_t id = impl.c().last_insert_rowid();
    StudyInfo info = impl.study_by_id(id);
    tx.commit();
    return info;
  });
}

std::optional<StudyInfo> Store::find_study(const std::string& name) {
  return impl_->retry([&] { return impl_->study_by_name(name); });
}

StudyInfo Store::study(std::int64_t study_id) {
  return impl_->retry([&] { return impl_->study_by_id(study_id); });
}

std::vector<StudyInfo> Store::list_studies() {
  return impl_->retry([&] {
    Use s(impl_->c().cached(
        fmt::format("SELECT {} FROM studies ORDER BY created_at, id", kStudyColumns)));
    std::vector<StudyInfo> out;
    while (s->step()) out.push_back(read_study(*s));
    return out;
  });
}

void Store::set_planned_trials(std::int64_t study_id, std::optional<std::int64_t> planned) {
  impl_->require_writable();
  impl_->retry([&] {
    Use s(impl_->c().cached("UPDATE studies SET planned_trials = ? WHERE id = ?"));
    s->bind_all(planned, study_id);
    s->run();
    LMSWEEP_CHECK(impl_->c().changes() == 1, "{}: no study with id {}", path(), study_id);
  });
}

// ---------------------------------------------------------------- trials

TrialInfo Store::add_trial(std::int64_t study_id, std::int64_t number,
                           const std::string& params_json, std::int64_t seed) {
  impl_->require_writable();
  LMSWEEP_CHECK(number >= 0, "{}: trial number {} is negative", path(), number);
  const std::string params =
      canonical_json(params_json, fmt::format("parameters of trial {}", number));
  auto& impl = *impl_;
  return impl.retry([&] {
    Transaction tx(impl.c());
    const StudyInfo study = impl.study_by_id(study_id);
    if (auto existing = find_trial(study_id, number)) {
      if (!same_json(existing->params_json, params) || existing->seed != seed) {
        throw Error(fmt::format(
            "trial {} of study {} in {} exists with other parameters ({}, seed {}) than now "
            "({}, seed {}): the sweep's points changed; use another study name",
            number, study.name, impl.path(), existing->params_json, existing->seed, params,
            seed));
      }
      tx.commit();
      return *existing;
    }
    Use s(impl.c().cached(
        "INSERT INTO trials(study_id, number, params_json, seed, status, created_at) "
        "VALUES (?, ?, ?, ?, 'pending', ?)"));
    s->bind_all(study_id, number, params, seed, unix_now());
    s->run();
    TrialInfo info = impl.trial_by_id(impl.c().last_insert_rowid());
    tx.commit();
    return info;
  });
}

TrialInfo Store::trial(std::int64_t trial_id) {
  return impl_->retry([&] { return impl_->trial_by_id(trial_id); });
}

std::optional<TrialInfo> Store::find_trial(std::int64_t study_id, std::int64_t number) {
  return impl_->retry([&]() -> std::optional<TrialInfo> {
    Use s(impl_->c().cached(fmt::format(
        "SELECT {} FROM trials t WHERE t.study_id = ? AND t.number = ?", kTrialColumns)));
    s->bind_all(study_id, number);
    if (!s->step()) return std::nullopt;
    return read_trial(*s);
  });
}

std::vector<TrialInfo> Store::trials(std::int64_t study_id) {
  return impl_->retry([&] {
    Use s(impl_->c().cached(fmt::format(
        "SELECT {} FROM trials t WHERE t.study_id = ? ORDER BY t.number", kTrialColumns)));
    s->bind(1, study_id);
    std::vector<TrialInfo> out;
    while (s->step()) out.push_back(read_trial(*s));
    return out;
  });
}

std::vector<TrialInfo> Store::trials(std::int64_t study_id, TrialStatus status) {
  return impl_->retry([&] {
    Use s(impl_->c().cached(fmt::format(
        "SELECT {} FROM trials t WHERE t.study_id = ? AND t.status = ? ORDER BY t.number",
        kTrialColumns)));
    s->bind_all(study_id, to_string(status));
    std::vector<TrialInfo> out;
    while (s->step()) out.push_back(read_trial(*s));
    return out;
  });
}

// Time of the attempt that ends now, added to `seconds` only when the trial was running.
#define LMSWEEP_ADD_ATTEMPT_SECONDS                                                     \
  "seconds = CASE WHEN status = 'running' THEN COALESCE(seconds, 0) + "                 \
  "MAX(0, ?1 - COALESCE(started_at, ?1)) ELSE seconds END"

void Store::start_trial(std::int64_t trial_id, int rank_group, const std::string& host) {
  impl_->transition(trial_id, "start", "started", "pending or interrupted",
                    "UPDATE trials SET status = 'running', attempts = attempts + 1, "
                    "rank_group = ?1, host = ?2, started_at = ?3, finished_at = NULL, "
                    "error = NULL WHERE id = ?4 AND status IN ('pending', 'interrupted')",
                    rank_group, host, unix_now(), trial_id);
}

void Store::complete_trial(std::int64_t trial_id) {
  impl_->transition(trial_id, "complete", "completed", "running",
                    "UPDATE trials SET " LMSWEEP_ADD_ATTEMPT_SECONDS
                    ", status = 'completed', finished_at = ?1 WHERE id = ?2 AND status = 'running'",
                    unix_now(), trial_id);
}

void Store::fail_trial(std::int64_t trial_id, const std::string& error) {
  impl_->transition(trial_id, "fail", "marked failed", "pending or running",
                    "UPDATE trials SET " LMSWEEP_ADD_ATTEMPT_SECONDS
                    ", status = 'failed', finished_at = ?1, error = ?3 WHERE id = ?2 AND "
                    "status IN ('pending', 'running')",
                    unix_now(), trial_id, error);
}

void Store::prune_trial(std::int64_t trial_id) {
  impl_->transition(trial_id, "prune", "pruned", "running",
                    "UPDATE trials SET " LMSWEEP_ADD_ATTEMPT_SECONDS
                    ", status = 'pruned', finished_at = ?1 WHERE id = ?2 AND status = 'running'",
                    unix_now(), trial_id);
}

void Store::interrupt_trial(std::int64_t trial_id) {
  impl_->transition(trial_id, "interrupt", "interrupted", "running",
                    "UPDATE trials SET " LMSWEEP_ADD_ATTEMPT_SECONDS
                    ", status = 'interrupted', finished_at = ?1 WHERE id = ?2 AND "
                    "status = 'running'",
                    unix_now(), trial_id);
}

#undef LMSWEEP_ADD_ATTEMPT_SECONDS

std::int64_t Store::requeue(std::int64_t study_id, TrialStatus from) {
  impl_->require_writable();
  LMSWEEP_CHECK(from == TrialStatus::Running || from == TrialStatus::Interrupted ||
                    from == TrialStatus::Failed,
                "{}: cannot requeue {} trials (only running, interrupted or failed ones)",
                path(), to_string(from));
  return impl_->retry([&] {
    Use s(impl_->c().cached(
        "UPDATE trials SET status = 'pending', crashes = CASE WHEN ?2 = 'failed' THEN 0 ELSE "
        "crashes END WHERE study_id = ?1 AND status = ?2"));
    s->bind_all(study_id, to_string(from));
    s->run();
    return static_cast<std::int64_t>(impl_->c().changes());
  });
}

void Store::set_checkpoint(std::int64_t trial_id, const std::string& path) {
  impl_->require_writable();
  impl_->retry([&] {
    Use s(impl_->c().cached("UPDATE trials SET checkpoint = ? WHERE id = ?"));
    s->bind_all(path, trial_id);
    s->run();
    LMSWEEP_CHECK(impl_->c().changes() == 1, "{}: no trial with id {}", this->path(), trial_id);
  });
}

// ---------------------------------------------------------------- epochs

void Store::record_epoch(std::int64_t trial_id, const EpochRecord& r,
                         const std::vector<double>& class_ap) {
  impl_->require_writable();
  const std::string metrics =
      canonical_json(r.metrics_json,
                     fmt::format("metrics of trial id {} epoch {}", trial_id, r.epoch));
  auto& impl = *impl_;
  impl.retry([&] {
    Transaction tx(impl.c());
    const std::string objective = impl.study_objective_of_trial(trial_id);
    {
      Use s(impl.c().cached(
          "INSERT INTO epochs(trial_id, epoch, train_loss, lr, seconds, map, map_head, "
          "map_middle, map_tail, map_single, map_multi, centroid_ratio, metrics_json, "
          "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT(trial_id, epoch) DO UPDATE SET train_loss = excluded.train_loss, "
          "lr = excluded.lr, seconds = excluded.seconds, map = excluded.map, "
          "map_head = excluded.map_head, map_middle = excluded.map_middle, "
          "map_tail = excluded.map_tail, map_single = excluded.map_single, "
          "map_multi = excluded.map_multi, centroid_ratio = excluded.centroid_ratio, "
          "metrics_json = excluded.metrics_json, recorded_at = excluded.recorded_at"));
      s->bind_all(trial_id, r.epoch, finite_or_null(r.train_loss), finite_or_null(r.lr),
                  finite_or_null(r.seconds), finite_or_null(r.map), finite_or_null(r.map_head),
                  finite_or_null(r.map_middle), finite_or_null(r.map_tail),
                  finite_or_null(r.map_single), finite_or_null(r.map_multi),
                  finite_or_null(r.centroid_ratio), metrics, unix_now());
      s->run();
    }
    {
      // A rewritten epoch replaces its per-class AP entirely (the class count may differ).
      Use s(impl.c().cached("DELETE FROM class_ap WHERE trial_id = ? AND epoch = ?"));
      s->bind_all(trial_id, r.epoch);
      s->run();
    }
    if (!class_ap.empty()) {
      Use s(impl.c().cached(
          "INSERT INTO class_ap(trial_id, epoch, class_index, ap) VALUES (?, ?, ?, ?)"));
      for (std::size_t i = 0; i < class_ap.size(); ++i) {
        s->bind_all(trial_id, r.epoch, static_cast<std::int64_t>(i), class_ap[i]);
        s->run();
      }
    }
    impl.update_best_epoch(trial_id, objective);
    tx.commit();
  });
}

std::int64_t Store::truncate_epochs(std::int64_t trial_id, std::int64_t last_kept) {
  impl_->require_writable();
  auto& impl = *impl_;
  return impl.retry([&] {
    Transaction tx(impl.c());
    const std::string objective = impl.study_objective_of_trial(trial_id);
    {
      Use s(impl.c().cached("DELETE FROM class_ap WHERE trial_id = ? AND epoch > ?"));
      s->bind_all(trial_id, last_kept);
      s->run();
    }
    Use s(impl.c().cached("DELETE FROM epochs WHERE trial_id = ? AND epoch > ?"));
    s->bind_all(trial_id, last_kept);
    s->run();
    const auto removed = static_cast<std::int64_t>(impl.c().changes());
    impl.update_best_epoch(trial_id, objective);
    tx.commit();
    return removed;
  });
}

std::vector<EpochRecord> Store::epochs(std::int64_t trial_id) {
  return impl_->retry([&] {
    Use s(impl_->c().cached(fmt::format(
        "SELECT {} FROM epochs e WHERE e.trial_id = ? ORDER BY e.epoch", kEpochColumns)));
    s->bind(1, trial_id);
    std::vector<EpochRecord> out;
    while (s->step()) out.push_back(read_epoch(*s));
    return out;
  });
}

std::vector<double> Store::class_ap(std::int64_t trial_id, std::int64_t epoch) {
  return impl_->retry([&] {
    Use s(impl_->c().cached(
        "SELECT class_index, ap FROM class_ap WHERE trial_id = ? AND epoch = ? "
        "ORDER BY class_index"));
    s->bind_all(trial_id, epoch);
    std::vector<double> out;
    while (s->step()) {
      const auto index = static_cast<std::size_t>(s->get_int64(0));
      if (out.size() <= index) out.resize(index + 1, std::nan(""));
      out[index] = s->is_null(1) ? std::nan("") : s->get_double(1);
    }
    return out;
  });
}

// ---------------------------------------------------------------- queries

StatusCounts Store::status_counts(std::int64_t study_id) {
  auto& impl = *impl_;
  return impl.retry([&] {
    // One snapshot for the three queries.
    Transaction tx(impl.c(), /*write=*/false);
    StatusCounts counts;
    {
      Use s(impl.c().cached(
          "SELECT status, COUNT(*) FROM trials WHERE study_id = ? GROUP BY status"));
      s->bind(1, study_id);
      while (s->step()) {
        const std::int64_t n = s->get_int64(1);
        switch (parse_trial_status(s->get_text(0))) {
          case TrialStatus::Pending: counts.pending = n; break;
          case TrialStatus::Running: counts.running = n; break;
          case TrialStatus::Completed: counts.completed = n; break;
          case TrialStatus::Failed: counts.failed = n; break;
          case TrialStatus::Pruned: counts.pruned = n; break;
          case TrialStatus::Interrupted: counts.interrupted = n; break;
        }
      }
    }
    {
      Use s(impl.c().cached(
          "SELECT COUNT(*), AVG(e.seconds) FROM epochs e JOIN trials t ON t.id = e.trial_id "
          "WHERE t.study_id = ?"));
      s->bind(1, study_id);
      if (s->step()) {
        counts.epochs_recorded = s->get_int64(0);
        counts.mean_epoch_seconds = s->get_optional_double(1);
      }
    }
    {
      Use s(impl.c().cached(
          "SELECT AVG(seconds) FROM trials WHERE study_id = ? AND status = 'completed'"));
      s->bind(1, study_id);
      if (s->step()) counts.mean_completed_trial_seconds = s->get_optional_double(0);
    }
    tx.commit();
    return counts;
  });
}

std::vector<RunningTrial> Store::running_trials(std::int64_t study_id) {
  return impl_->retry([&] {
    Use s(impl_->c().cached(fmt::format(
        "SELECT {}, {} FROM trials t LEFT JOIN epochs e ON e.trial_id = t.id AND e.epoch = "
        "(SELECT MAX(x.epoch) FROM epochs x WHERE x.trial_id = t.id) "
        "WHERE t.study_id = ? AND t.status = 'running' ORDER BY t.number",
        kTrialColumns, kEpochColumns)));
    s->bind(1, study_id);
    std::vector<RunningTrial> out;
    while (s->step()) {
      RunningTrial r;
      r.trial = read_trial(*s);
      if (!s->is_null(kTrialColumnCount)) r.last_epoch = read_epoch(*s, kTrialColumnCount);
      out.push_back(std::move(r));
    }
    return out;
  });
}

std::vector<BestTrial> Store::best_trials(std::int64_t study_id, const BestQuery& query) {
  const ObjectiveRef o = objective_or_throw(query.objective);
  LMSWEEP_CHECK(query.top >= 0, "--top {} is negative: give a count, or 0 for every trial",
                query.top);
  const char* order = o.maximize ? "DESC" : "ASC";
  // Each trial's best epoch (ties to the lower epoch), then trials best first (ties to the
  // lower number). The objective's SQL is a column or a checked metric name (is_metric_name).
  const std::string sql = fmt::format(
      "WITH ranked AS (SELECT e.*, ROW_NUMBER() OVER (PARTITION BY e.trial_id "
      "ORDER BY {0} {1}, e.epoch ASC) AS rank_in_trial FROM epochs e "
      "JOIN trials t ON t.id = e.trial_id WHERE t.study_id = ?1 AND {0} IS NOT NULL{2}) "
      "SELECT {3}, {4} FROM ranked e JOIN trials t ON t.id = e.trial_id "
      "WHERE e.rank_in_trial = 1 ORDER BY {0} {1}, t.number ASC LIMIT ?2",
      o.sql("e"), order, query.completed_only ? " AND t.status = 'completed'" : "", kTrialColumns,
      kEpochColumns);
  return impl_->retry([&] {
    Use s(impl_->c().cached(sql));
    s->bind_all(study_id, query.top > 0 ? query.top : std::int64_t{-1});
    std::vector<BestTrial> out;
    while (s->step()) {
      BestTrial b;
      b.trial = read_trial(*s);
      b.epoch = read_epoch(*s, kTrialColumnCount);
      b.value = epoch_value(b.epoch, o.name).value_or(std::nan(""));
      out.push_back(std::move(b));
    }
    return out;
  });
}

// ---------------------------------------------------------------- lease and liveness

namespace {

LeaseInfo read_lease(Statement& s) {
  LeaseInfo l;
  l.holder = s.get_text(0);
  l.job = s.get_text(1);
  l.host = s.get_text(2);
  l.pid = s.get_int64(3);
  l.taken_at = s.get_double(4);
  l.heartbeat_at = s.get_double(5);
  l.stale_after = s.get_double(6);
  return l;
}

}  // namespace

std::string LeaseInfo::describe() const {
  return fmt::format("{}{} (pid {})", job.empty() ? "" : "SLURM job " + job + " on ", host, pid);
}

std::optional<LeaseInfo> Store::lease() {
  if (impl_->version < 2) return std::nullopt;
  return impl_->retry([&]() -> std::optional<LeaseInfo> {
    Use s(impl_->c().cached(
        "SELECT holder, job, host, pid, taken_at, heartbeat_at, stale_after FROM lease WHERE id = 1"));
    if (!s->step()) return std::nullopt;
    return read_lease(*s);
  });
}

std::optional<LeaseInfo> Store::take_lease(const LeaseInfo& me, double stale_seconds) {
  impl_->require_writable();
  auto& impl = *impl_;
  return impl.retry([&]() -> std::optional<LeaseInfo> {
    Transaction tx(impl.c());
    const double now = unix_now();
    std::optional<LeaseInfo> held = lease();
    if (held && held->holder != me.holder && now - held->heartbeat_at < stale_seconds) {
      throw Error(fmt::format(
          "{} is in use by another sweep: {} holds its lease (heard from {:.0f} s ago); wait for it "
          "to finish, or use another --db. A lease not renewed for {:.0f} s is taken over",
          impl.path(), held->describe(), std::max(0.0, now - held->heartbeat_at), stale_seconds));
    }
    Use s(impl.c().cached(
        "INSERT OR REPLACE INTO lease(id, holder, job, host, pid, taken_at, heartbeat_at, "
        "stale_after) VALUES (1, ?, ?, ?, ?, ?, ?, ?)"));
    s->bind_all(me.holder, me.job, me.host, me.pid, now, now, me.stale_after);
    s->run();
    tx.commit();
    if (held && held->holder == me.holder) return std::nullopt;
    return held;
  });
}

void Store::renew_lease(const LeaseInfo& me) {
  impl_->require_writable();
  impl_->retry([&] {
    Use s(impl_->c().cached("UPDATE lease SET heartbeat_at = ? WHERE id = 1 AND holder = ?"));
    s->bind_all(unix_now(), me.holder);
    s->run();
    if (impl_->c().changes() == 0) {
      const auto held = lease();
      throw Error(fmt::format("{}: this sweep lost its lease to {}: it stops writing the database",
                              impl_->path(), held ? held->describe() : std::string("nobody")));
    }
  });
}

void Store::release_lease(const LeaseInfo& me) {
  impl_->require_writable();
  impl_->retry([&] {
    Use s(impl_->c().cached("DELETE FROM lease WHERE id = 1 AND holder = ?"));
    s->bind(1, me.holder);
    s->run();
  });
}

void Store::set_trial_ranks(std::int64_t trial_id, const std::vector<RankInfo>& ranks) {
  impl_->require_writable();
  auto& impl = *impl_;
  impl.retry([&] {
    Transaction tx(impl.c());
    {
      Use s(impl.c().cached("DELETE FROM trial_ranks WHERE trial_id = ?"));
      s->bind(1, trial_id);
      s->run();
    }
    Use s(impl.c().cached(
        "INSERT INTO trial_ranks(trial_id, rank, host, pid, heard_at) VALUES (?, ?, ?, ?, ?)"));
    for (const auto& r : ranks) {
      s->bind_all(trial_id, r.rank, r.host, r.pid, unix_now());
      s->run();
    }
    tx.commit();
  });
}

void Store::heard_from(std::int64_t trial_id) {
  impl_->require_writable();
  impl_->retry([&] {
    Use s(impl_->c().cached("UPDATE trial_ranks SET heard_at = ? WHERE trial_id = ?"));
    s->bind_all(unix_now(), trial_id);
    s->run();
  });
}

std::vector<RankInfo> Store::trial_ranks(std::int64_t trial_id) {
  if (impl_->version < 2) return {};
  return impl_->retry([&] {
    Use s(impl_->c().cached(
        "SELECT rank, host, pid, heard_at FROM trial_ranks WHERE trial_id = ? ORDER BY rank"));
    s->bind(1, trial_id);
    std::vector<RankInfo> out;
    while (s->step()) out.push_back({s->get_int(0), s->get_text(1), s->get_int64(2), s->get_double(3)});
    return out;
  });
}

int Store::crashes(std::int64_t trial_id) {
  if (impl_->version < 2) return 0;
  return impl_->retry([&] {
    Use s(impl_->c().cached("SELECT crashes FROM trials WHERE id = ?"));
    s->bind(1, trial_id);
    LMSWEEP_CHECK(s->step(), "{}: no trial with id {}", path(), trial_id);
    return s->get_int(0);
  });
}

bool Store::requeue_crashed(std::int64_t trial_id, int max_attempts, const std::string& error) {
  impl_->require_writable();
  auto& impl = *impl_;
  return impl.retry([&] {
    Transaction tx(impl.c());
    {
      Use s(impl.c().cached(
          "UPDATE trials SET crashes = crashes + 1, status = CASE WHEN crashes + 1 >= ?1 THEN "
          "'failed' ELSE 'pending' END, error = CASE WHEN crashes + 1 >= ?1 THEN ?2 ELSE error "
          "END, finished_at = CASE WHEN crashes + 1 >= ?1 THEN ?3 ELSE finished_at END "
          "WHERE id = ?4 AND status = 'running'"));
      s->bind_all(max_attempts, error, unix_now(), trial_id);
      s->run();
    }
    const TrialInfo t = impl.trial_by_id(trial_id);
    tx.commit();
    return t.status == TrialStatus::Failed;
  });
}

void Store::set_suggestion(std::int64_t trial_id, const std::string& json) {
  impl_->require_writable();
  const std::string text = canonical_json(json, fmt::format("suggestion of trial id {}", trial_id));
  impl_->retry([&] {
    Use s(impl_->c().cached("UPDATE trials SET suggestion_json = ? WHERE id = ?"));
    s->bind_all(text, trial_id);
    s->run();
    LMSWEEP_CHECK(impl_->c().changes() == 1, "{}: no trial with id {}", path(), trial_id);
  });
}

std::string Store::suggestion(std::int64_t trial_id) {
  if (impl_->version < 2) return "";
  return impl_->retry([&] {
    Use s(impl_->c().cached("SELECT COALESCE(suggestion_json, '') FROM trials WHERE id = ?"));
    s->bind(1, trial_id);
    LMSWEEP_CHECK(s->step(), "{}: no trial with id {}", path(), trial_id);
    return s->get_text(0);
  });
}

}  // namespace lmsweep::db
