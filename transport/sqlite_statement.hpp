#pragma once
// The SQLite helpers the outbox and the state store share (transport-internal; the public headers
// only forward-declare sqlite3). Errors throw std::runtime_error prefixed with the owner's name
// ("outbox", "state store"), so a log line says which file failed.

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace interfaced::transport::sqlite {

// Runs one or more statements without results.
inline void exec(sqlite3* db, const char* sql, const char* who) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    throw std::runtime_error(std::string(who) + ": " + msg);
  }
}

// One prepared statement, kept prepared across uses (SQLITE_PREPARE_PERSISTENT).
class statement {
 public:
  statement(sqlite3* db, const char* sql, const char* who) : db_(db), who_(who) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK) {
      throw std::runtime_error(std::string(who) + ": cannot prepare statement: " + sqlite3_errmsg(db));
    }
  }
  ~statement() { sqlite3_finalize(stmt_); }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  statement& reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    return *this;
  }
  statement& bind(int i, std::string_view v) {
    check(sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
    return *this;
  }
  statement& bind_blob(int i, std::string_view v) {
    // A blob, not text: the bytes come back as they were, whatever their encoding.
    check(sqlite3_bind_blob64(stmt_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_TRANSIENT));
    return *this;
  }
  // The same two without a copy (SQLITE_STATIC; issue #17: the copies were a malloc and a free
  // per value, and this SQLite is built without lookaside memory). The bytes must stay as they
  // are until the statement has run: a value bound and run in one expression qualifies, its
  // temporaries included. After that nothing reads them (reset() clears the bindings).
  statement& bind_static(int i, std::string_view v) {
    check(sqlite3_bind_text64(stmt_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8));
    return *this;
  }
  statement& bind_blob_static(int i, std::string_view v) {
    check(sqlite3_bind_blob64(stmt_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_STATIC));
    return *this;
  }
  statement& bind(int i, std::int64_t v) {
    check(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }
  statement& bind(int i, std::optional<double> v) {
    check(v ? sqlite3_bind_double(stmt_, i, *v) : sqlite3_bind_null(stmt_, i));
    return *this;
  }
  // true: a row is ready; false: done.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw std::runtime_error(std::string(who_) + ": " + sqlite3_errmsg(db_));
  }
  void run() {
    while (step()) {
    }
  }
  [[nodiscard]] std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  [[nodiscard]] double real(int col) const { return sqlite3_column_double(stmt_, col); }
  [[nodiscard]] std::string text(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    const int n = sqlite3_column_bytes(stmt_, col);
    if (p == nullptr || n <= 0) return {};
    return {static_cast<const char*>(p), static_cast<std::size_t>(n)};
  }
  // The column's bytes without a copy: valid until the next step, reset or column call.
  [[nodiscard]] std::string_view bytes(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    const int n = sqlite3_column_bytes(stmt_, col);
    if (p == nullptr || n <= 0) return {};
    return {static_cast<const char*>(p), static_cast<std::size_t>(n)};
  }
  [[nodiscard]] bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  // Ends the statement's read: a SELECT left mid-way keeps its snapshot open, and in WAL mode the
  // connection would then not see what other connections committed.
  void finish() noexcept { sqlite3_reset(stmt_); }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) throw std::runtime_error(std::string(who_) + ": bind: " + sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  const char* who_;
  sqlite3_stmt* stmt_ = nullptr;
};

// Finishes a statement when the reading scope ends, whatever way it ends.
struct finish_on_exit {
  statement& s;
  ~finish_on_exit() { s.finish(); }
};

// Runs a statement without results (BEGIN, COMMIT, a PRAGMA...) from the start, and leaves it
// reset whatever way it ends.
inline void run_once(statement& s) {
  finish_on_exit guard{s.reset()};
  s.run();
}

// Whether the file changed since `seen` was read (`version` is "PRAGMA data_version": it moves
// when another connection commits), and `seen` becomes the value now. A connection's in-memory
// index of the file's rows checks it before use: the outbox's pending keys and message samples,
// the history writer's days of samples.
inline bool data_version_moved(statement& version, std::int64_t& seen) {
  finish_on_exit guard{version.reset()};
  version.step();
  const auto now = version.integer(0);
  const bool moved = now != seen;
  seen = now;
  return moved;
}

// The last row created before `cut` in a table whose time column grows with its rowid (a
// creation time); 0: none. `first_from` is "SELECT rowid, time FROM t WHERE rowid >= ?1 ORDER BY
// rowid LIMIT 1". Bisects the rowid: a purge by age reads O(log n) rows, where an index on the
// time would be written by every insert (issue #17: bytes written per result). A clock stepped
// back may hide a few older rows from one purge; a later one takes them.
inline std::int64_t last_rowid_before(statement& first_from, std::int64_t cut) {
  auto row = [&](std::int64_t from) -> std::optional<std::pair<std::int64_t, std::int64_t>> {
    finish_on_exit guard{first_from.reset().bind(1, from)};
    if (!first_from.step()) return std::nullopt;
    return std::pair{first_from.integer(0), first_from.integer(1)};
  };
  const auto first = row(std::numeric_limits<std::int64_t>::min());
  if (!first || first->second >= cut) return 0;
  // lo: a row created before cut; the first row at or after hi: none, or one created at or after cut.
  std::int64_t lo = first->first;
  std::int64_t hi = std::numeric_limits<std::int64_t>::max();
  while (hi - lo > 1) {
    const auto mid = lo + (hi - lo) / 2;
    if (const auto r = row(mid); r && r->second < cut) {
      lo = r->first;
    } else {
      hi = mid;
    }
  }
  return lo;
}

}  // namespace interfaced::transport::sqlite
