#include "db/sqlite.h"

#include <cctype>
#include <cmath>
#include <cstring>
#include <utility>

#include <sqlite3.h>

namespace lmsweep::db {

namespace {

bool is_busy(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

}  // namespace

namespace {

// file: URI of a path (RFC 3986 percent-encoding of what a URI path cannot hold).
std::string file_uri(const std::string& path, const std::string& query) {
  std::string uri = "file:";
  for (unsigned char c : path) {
    if (std::isalnum(c) || std::strchr("/-._~", c)) uri += static_cast<char>(c);
    else uri += fmt::format("%{:02X}", c);
  }
  return uri + "?" + query;
}

}  // namespace

Connection::Connection(const std::string& path, bool read_only, bool create, int busy_timeout_ms,
                       bool immutable)
    : path_(path), read_only_(read_only) {
  int flags = SQLITE_OPEN_NOMUTEX;
  if (immutable) flags |= SQLITE_OPEN_URI;
  if (read_only) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE;
    if (create) flags |= SQLITE_OPEN_CREATE;
  }
  const std::string name = immutable ? file_uri(path, "immutable=1") : path;
  const int rc = sqlite3_open_v2(name.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    if (read_only) {
      throw Error(fmt::format("cannot open database {} for reading ({}): check the path", path,
                              message));
    }
    throw Error(fmt::format(
        "cannot open database {} for writing ({}): check that its folder exists and is "
        "writable, or pass another --db",
        path, message));
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, busy_timeout_ms);
}

Connection::~Connection() {
  cache_.clear();  // finalize statements before closing
  if (db_) sqlite3_close_v2(db_);
}

void Connection::exec(std::string_view sql) {
  std::string text(sql);
  char* error = nullptr;
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string message = error ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    const std::string what = fmt::format("{}: '{}' failed: {}", path_, text.substr(0, 60), message);
    if (is_busy(rc)) throw BusyError(what, rc);
    throw SqliteError(what, rc);
  }
}

Statement& Connection::cached(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    it = cache_.emplace(sql, std::make_unique<Statement>(*this, sql)).first;
  }
  it->second->reset();
  return *it->second;
}

bool Connection::in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

std::int64_t Connection::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

int Connection::changes() const { return sqlite3_changes(db_); }

void Connection::fail(int rc, std::string_view what) const {
  // sqlite3_errmsg describes the most recent failure on this connection; fall back to the
  // generic text of the code when it has been overwritten.
  std::string message = sqlite3_errmsg(db_);
  if (message.empty() || message == "not an error") message = sqlite3_errstr(rc);
  std::string text = fmt::format("{}: {}: {}", path_, what, message);
  if (is_busy(rc)) throw BusyError(text, rc);
  throw SqliteError(text, rc);
}

Statement::Statement(Connection& connection, std::string_view sql)
    : connection_(&connection), sql_(sql) {
  const int rc = sqlite3_prepare_v2(connection.handle(), sql_.data(),
                                    static_cast<int>(sql_.size()), &stmt_, nullptr);
  if (rc != SQLITE_OK) connection.fail(rc, fmt::format("preparing '{}'", sql_.substr(0, 80)));
}

Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Statement& Statement::bind(int index, double value) {
  if (std::isnan(value)) return bind_null(index);
  const int rc = sqlite3_bind_double(stmt_, index, value);
  if (rc != SQLITE_OK) connection_->fail(rc, "binding a parameter");
  return *this;
}

Statement& Statement::bind(int index, std::int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, static_cast<sqlite3_int64>(value));
  if (rc != SQLITE_OK) connection_->fail(rc, "binding a parameter");
  return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
  const int rc = sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                                   SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) connection_->fail(rc, "binding a parameter");
  return *this;
}

Statement& Statement::bind_null(int index) {
  const int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) connection_->fail(rc, "binding a parameter");
  return *this;
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  // Leave the statement reusable (and release its read lock) before reporting.
  sqlite3_reset(stmt_);
  connection_->fail(rc, fmt::format("running '{}'", sql_.substr(0, 80)));
}

void Statement::run() {
  while (step()) {
  }
  reset();
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

double Statement::get_double(int column) const { return sqlite3_column_double(stmt_, column); }

std::int64_t Statement::get_int64(int column) const {
  return static_cast<std::int64_t>(sqlite3_column_int64(stmt_, column));
}

std::string Statement::get_text(int column) const {
  const auto* text = sqlite3_column_text(stmt_, column);
  if (!text) return {};
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

std::optional<double> Statement::get_optional_double(int column) const {
  if (is_null(column)) return std::nullopt;
  return get_double(column);
}

std::optional<std::int64_t> Statement::get_optional_int64(int column) const {
  if (is_null(column)) return std::nullopt;
  return get_int64(column);
}

Transaction::Transaction(Connection& connection, bool write) : connection_(&connection) {
  if (connection.in_transaction()) {
    // Savepoints nest strictly, so one name serves every level: ROLLBACK TO / RELEASE act on
    // the most recent savepoint of that name.
    savepoint_ = "lmsweep_savepoint";
    connection.exec("SAVEPOINT lmsweep_savepoint");
  } else {
    connection.exec(write && !connection.read_only() ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
  }
}

Transaction::Transaction(Transaction&& other) noexcept
    : connection_(other.connection_),
      savepoint_(std::move(other.savepoint_)),
      done_(other.done_) {
  other.done_ = true;
}

Transaction::~Transaction() {
  if (done_) return;
  // Never throw from a destructor. An I/O error may already have rolled SQLite back, in which
  // case these statements fail harmlessly.
  if (savepoint_.empty()) {
    if (connection_->in_transaction()) {
      sqlite3_exec(connection_->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
  } else {
    sqlite3_exec(connection_->handle(),
                 "ROLLBACK TO lmsweep_savepoint; RELEASE lmsweep_savepoint", nullptr, nullptr,
                 nullptr);
  }
}

void Transaction::commit() {
  LMSWEEP_CHECK(!done_, "{}: transaction committed twice", connection_->path());
  if (savepoint_.empty()) {
    connection_->exec("COMMIT");
  } else {
    connection_->exec("RELEASE lmsweep_savepoint");
  }
  done_ = true;
}

}  // namespace lmsweep::db
