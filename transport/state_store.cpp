#include "transport/state_store.hpp"

#include <sqlite3.h>

#include <stdexcept>

namespace interfaced::transport {
namespace {

// One prepared statement. Kept prepared across calls (the hot reads run per result); reset() on
// every use and on scope exit, so a read never leaves a WAL snapshot open behind it.
class statement {
 public:
  statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st_, nullptr) != SQLITE_OK) fail("prepare");
  }
  ~statement() { sqlite3_finalize(st_); }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  statement& reset() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
    return *this;
  }
  statement& bind(int i, std::string_view v) {
    if (sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT) != SQLITE_OK) fail("bind");
    return *this;
  }
  statement& bind(int i, long long v) {
    if (sqlite3_bind_int64(st_, i, v) != SQLITE_OK) fail("bind");
    return *this;
  }
  statement& bind(int i, std::optional<double> v) {
    const int rc = v ? sqlite3_bind_double(st_, i, *v) : sqlite3_bind_null(st_, i);
    if (rc != SQLITE_OK) fail("bind");
    return *this;
  }
  // True while a row is available.
  bool step() {
    const int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) fail("step");
    return false;
  }
  [[nodiscard]] std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st_, col))) : std::string();
  }
  [[nodiscard]] bool is_null(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }
  [[nodiscard]] double real(int col) const { return sqlite3_column_double(st_, col); }
  [[nodiscard]] long long integer(int col) const { return sqlite3_column_int64(st_, col); }

 private:
  [[noreturn]] void fail(const char* what) const {
    throw std::runtime_error(std::string("state store: ") + what + ": " + sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
};

void exec_on(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string why = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    throw std::runtime_error(std::string("state store: ") + why);
  }
}

constexpr const char* put_sql =
    "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value";
constexpr const char* record_sql =
    "INSERT INTO results (sample, parameter, value, numeric, observed_at, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

void bind_row(statement& st, std::string_view sample, std::string_view parameter, const rerun::observation& o) {
  st.bind(1, sample).bind(2, parameter).bind(3, o.value).bind(4, o.numeric).bind(5, o.observed_at);
  st.bind(6, static_cast<long long>(o.received_at.time_since_epoch().count()));
}

}  // namespace

void create_state_tables(sqlite3* db) {
  exec_on(db,
          "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
          "CREATE TABLE IF NOT EXISTS results (seq INTEGER PRIMARY KEY AUTOINCREMENT, sample TEXT NOT NULL,"
          " parameter TEXT NOT NULL, value TEXT NOT NULL, numeric REAL, observed_at TEXT NOT NULL,"
          " received_at INTEGER NOT NULL);"
          "CREATE INDEX IF NOT EXISTS results_sp ON results (sample, parameter);"
          "CREATE INDEX IF NOT EXISTS results_age ON results (received_at);");
}

void write_state(sqlite3* db, const state_changes& c) {
  if (!c.history.empty()) {
    statement st(db, record_sql);
    for (const auto& r : c.history) {
      bind_row(st.reset(), r.sample, r.parameter, r.o);
      st.step();
    }
  }
  if (!c.documents.empty()) {
    statement st(db, put_sql);
    for (const auto& [key, value] : c.documents) {
      st.reset().bind(1, key).bind(2, value);
      st.step();
    }
  }
}

std::size_t prune_results(sqlite3* db, rerun::timestamp cutoff) {
  statement st(db, "DELETE FROM results WHERE received_at < ?1");
  st.bind(1, static_cast<long long>(cutoff.time_since_epoch().count()));
  st.step();
  return static_cast<std::size_t>(sqlite3_changes(db));
}

struct state_store::reads {
  explicit reads(sqlite3* db)
      : get(db, "SELECT value FROM kv WHERE key = ?1"),
        has(db, "SELECT 1 FROM results WHERE sample = ?1 AND parameter = ?2 LIMIT 1"),
        has_observation(db,
                        "SELECT 1 FROM results WHERE sample = ?1 AND parameter = ?2 AND value = ?3 AND observed_at = ?4"
                        " LIMIT 1"),
        latest(db,
               "SELECT value, numeric, observed_at, received_at FROM results WHERE sample = ?1 AND parameter = ?2"
               " ORDER BY seq DESC LIMIT 1") {}
  statement get, has, has_observation, latest;
};

state_store::state_store(const std::filesystem::path& file) : file_(file) {
  if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error(file.string() + ": " + why);
  }
  try {
    sqlite3_busy_timeout(db_, 2000);
    // WAL + FULL, as the outbox (the same file): a committed batch survives a power cut.
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    create_state_tables(db_);
    reads_ = std::make_unique<reads>(db_);
  } catch (const std::exception& e) {
    reads_.reset();
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error(file.string() + ": " + e.what());
  }
}

state_store::~state_store() {
  if (in_tx_) rollback();
  reads_.reset();
  sqlite3_close(db_);
}

void state_store::exec(const char* sql) const { exec_on(db_, sql); }

std::optional<std::string> state_store::get(std::string_view key) const {
  auto& st = reads_->get.reset().bind(1, key);
  if (!st.step()) {
    st.reset();
    return std::nullopt;
  }
  auto v = st.text(0);
  st.reset();
  return v;
}

void state_store::put(std::string_view key, std::string_view value) {
  write_state(db_, state_changes{{}, {{std::string(key), std::string(value)}}});
}

void state_store::begin() {
  if (in_tx_) return;
  exec("BEGIN IMMEDIATE");
  in_tx_ = true;
}

void state_store::commit() {
  if (!in_tx_) return;
  exec("COMMIT");
  in_tx_ = false;
}

void state_store::rollback() noexcept {
  if (!in_tx_) return;
  sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  in_tx_ = false;
}

bool state_store::has(std::string_view sample, std::string_view parameter) const {
  auto& st = reads_->has.reset().bind(1, sample).bind(2, parameter);
  const bool found = st.step();
  st.reset();
  return found;
}

bool state_store::has_observation(std::string_view sample, std::string_view parameter, std::string_view value,
                                  std::string_view observed_at) const {
  auto& st = reads_->has_observation.reset().bind(1, sample).bind(2, parameter).bind(3, value).bind(4, observed_at);
  const bool found = st.step();
  st.reset();
  return found;
}

std::optional<rerun::observation> state_store::latest(std::string_view sample, std::string_view parameter) const {
  auto& st = reads_->latest.reset().bind(1, sample).bind(2, parameter);
  if (!st.step()) {
    st.reset();
    return std::nullopt;
  }
  rerun::observation o;
  o.value = st.text(0);
  if (!st.is_null(1)) o.numeric = st.real(1);
  o.observed_at = st.text(2);
  o.received_at = rerun::timestamp(std::chrono::seconds(st.integer(3)));
  st.reset();
  return o;
}

void state_store::record(std::string_view sample, std::string_view parameter, rerun::observation o) {
  write_state(db_, state_changes{{history_row{std::string(sample), std::string(parameter), std::move(o)}}, {}});
}

std::size_t state_store::prune(rerun::timestamp cutoff) { return prune_results(db_, cutoff); }

}  // namespace interfaced::transport
