#pragma once
// Thin RAII layer over the SQLite C API, in the style of SQLiteCpp: a Connection owns a
// sqlite3*, a Statement owns a sqlite3_stmt*, a Transaction rolls back in its destructor
// unless committed. Every failure throws lmsweep::Error naming the database file and carrying
// SQLite's own message. sqlite3.h stays out of this header (the handles are forward-declared).
//
// Not thread-safe: one Connection per thread (connections are opened SQLITE_OPEN_NOMUTEX).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/error.h"

struct sqlite3;
struct sqlite3_stmt;

namespace lmsweep::db {

// An error reported by SQLite, with its (extended) result code.
class SqliteError : public Error {
 public:
  SqliteError(const std::string& message, int code) : Error(message), code_(code) {}
  int code() const { return code_; }            // extended result code
  int primary_code() const { return code_ & 0xff; }

 private:
  int code_;
};

// SQLite reported SQLITE_BUSY or SQLITE_LOCKED after its busy timeout: the operation may
// succeed when retried (the Store retries whole read queries and write transactions).
class BusyError : public SqliteError {
 public:
  using SqliteError::SqliteError;
};

class Statement;

class Connection {
 public:
  // Opens `path` read-write (creating it when `create`) or read-only. Throws Error naming
  // the path when it cannot be opened. busy_timeout_ms is SQLite's own wait on a lock.
  // immutable (read-only only): SQLite's immutable=1, no locks and no -shm file, for a file
  // that nothing writes (see Store::open_read_only).
  Connection(const std::string& path, bool read_only, bool create, int busy_timeout_ms,
             bool immutable = false);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }
  bool read_only() const { return read_only_; }

  // Runs one or more SQL statements that return no rows.
  void exec(std::string_view sql);
  // A prepared statement kept for the connection's lifetime (reset before it is returned).
  Statement& cached(const std::string& sql);

  bool in_transaction() const;
  std::int64_t last_insert_rowid() const;
  int changes() const;

  // Throws SqliteError (BusyError for SQLITE_BUSY / SQLITE_LOCKED):
  // "FILE: WHAT: sqlite message".
  [[noreturn]] void fail(int rc, std::string_view what) const;

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
  bool read_only_ = false;
  std::unordered_map<std::string, std::unique_ptr<Statement>> cache_;
};

class Statement {
 public:
  Statement(Connection& connection, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Parameters are 1-based, as in SQLite. A NaN double and an empty optional bind NULL.
  Statement& bind(int index, double value);
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Statement& bind(int index, std::string_view value);
  Statement& bind(int index, const std::string& value) {
    return bind(index, std::string_view(value));
  }
  Statement& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
  Statement& bind_null(int index);
  template <typename T>
  Statement& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind_null(index);
  }
  // Binds arguments to parameters 1, 2, ...
  template <typename... Args>
  Statement& bind_all(const Args&... args) {
    int index = 0;
    (bind(++index, args), ...);
    return *this;
  }

  // Steps once: true when a row is available, false when done.
  bool step();
  // Runs a statement that returns no rows (steps to the end), then resets it.
  void run();
  void reset();  // also clears bindings

  // Columns are 0-based, as in SQLite.
  bool is_null(int column) const;
  double get_double(int column) const;
  std::int64_t get_int64(int column) const;
  int get_int(int column) const { return static_cast<int>(get_int64(column)); }
  std::string get_text(int column) const;  // "" for NULL
  std::optional<double> get_optional_double(int column) const;
  std::optional<std::int64_t> get_optional_int64(int column) const;

 private:
  Connection* connection_;
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;
};

// BEGIN IMMEDIATE (write lock taken at once, so waiting happens in SQLite's busy handler and
// never as a deadlock on upgrade) or BEGIN DEFERRED (read-only connections) at the outermost
// level; a SAVEPOINT when a transaction is already open, so Store methods nest inside a
// caller's transaction. Rolls back in the destructor unless commit() was called.
class Transaction {
 public:
  // write = false: BEGIN DEFERRED (a consistent snapshot for several reads, no write lock).
  explicit Transaction(Connection& connection, bool write = true);
  ~Transaction();
  Transaction(Transaction&& other) noexcept;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Transaction& operator=(Transaction&&) = delete;

  void commit();
  bool nested() const { return !savepoint_.empty(); }

 private:
  Connection* connection_;
  std::string savepoint_;  // empty at the outermost level
  bool done_ = false;
};

}  // namespace lmsweep::db
