#include "transport/state_store.hpp"

#include "rerun/result_key.hpp"
#include "transport/sqlite_statement.hpp"

#include <stdexcept>

namespace interfaced::transport {
namespace {

constexpr const char* who = "state store";

// Every statement of this file names itself "state store" in its errors.
class statement : public sqlite::statement {
 public:
  statement(sqlite3* db, const char* sql) : sqlite::statement(db, sql, who) {}
};

constexpr const char* put_sql =
    "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value";
constexpr const char* record_sql =
    "INSERT INTO results (sample, parameter, value, numeric, observed_at, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

}  // namespace

void create_state_tables(sqlite3* db) {
  sqlite::exec(db,
               "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
               "CREATE TABLE IF NOT EXISTS results (seq INTEGER PRIMARY KEY AUTOINCREMENT, sample TEXT NOT NULL,"
               " parameter TEXT NOT NULL, value TEXT NOT NULL, numeric REAL, observed_at TEXT NOT NULL,"
               " received_at INTEGER NOT NULL);"
               "CREATE INDEX IF NOT EXISTS results_sp ON results (sample, parameter);",
               who);
}

struct state_writer::statements {
  explicit statements(sqlite3* db) : record(db, record_sql), put(db, put_sql) {}
  statement record, put;
};

state_writer::state_writer(sqlite3* db) : stmts_(std::make_unique<statements>(db)) {}
state_writer::~state_writer() = default;

void state_writer::write(const state_changes& c) {
  for (const auto& r : c.history) {
    auto& st = stmts_->record.reset();
    st.bind(1, r.sample).bind(2, r.parameter).bind(3, r.o.value).bind(4, r.o.numeric);
    st.bind(5, r.o.observed_at).bind(6, static_cast<std::int64_t>(r.o.received_at.time_since_epoch().count()));
    st.run();
  }
  for (const auto& [key, value] : c.documents) stmts_->put.reset().bind(1, key).bind(2, value).run();
}

void write_state(sqlite3* db, const state_changes& c) { state_writer(db).write(c); }

std::size_t prune_results(sqlite3* db, rerun::timestamp cutoff) {
  // No index on received_at (outbox schema 11: an entry written per result, read only here): the
  // results received before the cutoff are among the seqs up to the last one received before it.
  const auto cut = static_cast<std::int64_t>(cutoff.time_since_epoch().count());
  statement first_from(db, "SELECT seq, received_at FROM results WHERE seq >= ?1 ORDER BY seq LIMIT 1");
  const auto last = sqlite::last_rowid_before(first_from, cut);
  if (last == 0) return 0;
  statement st(db, "DELETE FROM results WHERE seq <= ?2 AND received_at < ?1");
  st.bind(1, cut).bind(2, last).run();
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
               " ORDER BY seq DESC LIMIT 1"),
        // The name alone, or the name followed by a key marker (rerun/result_key.hpp): the markers
        // are bound as ranges [name^sub=, name^sub>) so the (sample, parameter) index serves them.
        latest_of_parameter(db,
                            "SELECT value, numeric, observed_at, received_at FROM results WHERE sample = ?1 AND"
                            " (parameter = ?2 OR (parameter >= ?3 AND parameter < ?4) OR (parameter >= ?5 AND parameter < ?6))"
                            " ORDER BY seq DESC LIMIT 1"),
        begin(db, "BEGIN"),
        commit(db, "COMMIT") {}
  statement get, has, has_observation, latest, latest_of_parameter;
  statement begin, commit;  // read_scope's, once per message: prepared, not parsed each time
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
    sqlite::exec(db_, "PRAGMA journal_mode=WAL", who);
    sqlite::exec(db_, "PRAGMA synchronous=FULL", who);
    create_state_tables(db_);
    reads_ = std::make_unique<reads>(db_);
  } catch (const std::exception& e) {
    reads_.reset();
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error(file.string() + ": " + e.what());
  }
}

struct state_store::dead_letter_reads {
  // The sample's messages through message_samples (outbox schema 8: an index seek), the dead ones.
  explicit dead_letter_reads(sqlite3* db)
      : naming(db,
               "SELECT m.id, CAST(m.body AS TEXT) FROM message_samples s JOIN messages m ON m.seq = s.seq"
               " WHERE s.sample = ?1 AND m.state = 'dead' ORDER BY m.seq DESC") {}
  statement naming;
};

std::vector<std::pair<std::string, std::string>> state_store::dead_letters_naming(std::string_view sample) const {
  std::vector<std::pair<std::string, std::string>> out;
  if (sample.empty()) return out;
  if (!dead_reads_) {
    try {
      dead_reads_ = std::make_unique<dead_letter_reads>(db_);
    } catch (const std::exception&) {
      return out;  // no outbox tables in this file (a state store on its own)
    }
  }
  auto& st = dead_reads_->naming.reset().bind(1, sample);
  sqlite::finish_on_exit guard{st};
  while (st.step()) out.emplace_back(st.text(0), st.text(1));
  return out;
}

std::vector<rerun::qc::audit_entry> state_store::qc_audit() const {
  std::vector<rerun::qc::audit_entry> out;
  try {
    statement st(db_,
                 "SELECT id, kind, result_id, device, parameter, code, by_whom, reason, at, ref, detail"
                 " FROM qc_audit ORDER BY id");
    while (st.step())
      out.push_back({st.integer(0), st.text(1), st.text(2), st.text(3), st.text(4), st.text(5), st.text(6),
                     st.text(7), st.text(8), st.integer(9), st.text(10)});
    st.finish();
  } catch (const std::exception&) {
    // No qc_audit table in this file (a state store on its own, or an outbox before schema 7).
  }
  return out;
}

std::vector<qc_patient_row> state_store::qc_patients() const {
  std::vector<qc_patient_row> out;
  try {
    statement st(db_, "SELECT device, sample_id, parameter, observed_at, t, message_id FROM qc_patients ORDER BY seq");
    while (st.step())
      out.push_back({st.text(0), st.text(1), st.text(2), st.text(3), rerun::timestamp(std::chrono::seconds(st.integer(4))),
                     st.text(5)});
    st.finish();
  } catch (const std::exception&) {
    // No qc_patients table in this file (a state store on its own, or an outbox before schema 9).
  }
  return out;
}

namespace {

// The post that carried a QC run's patient result: the first one qc_patients recorded for it,
// joined with its outbox message. `column` is what is read of it, `where` further conditions on
// the message; nothing when there is none or no such tables (an outbox older than schema 9).
template <typename T, typename Read>
std::optional<T> qc_patient_post(sqlite3* db, const char* column, const char* where, std::string_view device,
                                 std::string_view sample_id, std::string_view parameter, std::string_view observed_at,
                                 Read read) {
  try {
    const std::string sql = std::string("SELECT ") + column +
                            " FROM qc_patients q JOIN messages m ON m.id = q.message_id"
                            " WHERE q.device = ?1 AND q.sample_id = ?2 AND q.parameter = ?3 AND q.observed_at = ?4" +
                            where + " ORDER BY q.seq LIMIT 1";
    statement st(db, sql.c_str());
    st.bind(1, std::string(device)).bind(2, std::string(sample_id)).bind(3, std::string(parameter)).bind(4, std::string(observed_at));
    std::optional<T> out;
    if (st.step()) out = read(st);
    st.finish();
    return out;
  } catch (const std::exception&) {
    return std::nullopt;  // no such tables: not known
  }
}

}  // namespace

std::optional<std::int64_t> state_store::qc_patient_delivered_at(std::string_view device, std::string_view sample_id,
                                                                 std::string_view parameter,
                                                                 std::string_view observed_at) const {
  return qc_patient_post<std::int64_t>(db_, "m.delivered_at", " AND m.state = 'delivered' AND m.delivered_at IS NOT NULL",
                                       device, sample_id, parameter, observed_at,
                                       [](statement& st) { return st.integer(0); });
}

std::optional<std::string> state_store::qc_patient_unsent_message(std::string_view device, std::string_view sample_id,
                                                                  std::string_view parameter,
                                                                  std::string_view observed_at) const {
  return qc_patient_post<std::string>(db_, "m.id", " AND m.state = 'pending' AND m.attempts = 0", device, sample_id,
                                      parameter, observed_at, [](statement& st) { return st.text(0); });
}

std::optional<std::string> state_store::qc_patient_body(std::string_view device, std::string_view sample_id,
                                                        std::string_view parameter, std::string_view observed_at) const {
  return qc_patient_post<std::string>(db_, "m.body", "", device, sample_id, parameter, observed_at,
                                      [](statement& st) { return st.text(0); });
}

state_store::~state_store() {
  dead_reads_.reset();
  reads_.reset();
  sqlite3_close(db_);
}

state_store::read_scope::read_scope(const state_store& s) : s_(s) {
  if (s_.read_depth_++ == 0) {
    try {
      sqlite::run_once(s_.reads_->begin);
    } catch (...) {
      --s_.read_depth_;
      throw;
    }
  }
}

state_store::read_scope::~read_scope() {
  if (--s_.read_depth_ != 0) return;
  try {
    // A read transaction: releases the snapshot, writes nothing.
    sqlite::run_once(s_.reads_->commit);
  } catch (...) {
    // Nothing to lose: the next read opens its own transaction (autocommit is back either way).
    sqlite3_exec(s_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

std::optional<std::string> state_store::get(std::string_view key) const {
  auto& st = reads_->get.reset().bind(1, key);
  sqlite::finish_on_exit guard{st};
  if (!st.step()) return std::nullopt;
  return st.text(0);
}

bool state_store::has(std::string_view sample, std::string_view parameter) const {
  auto& st = reads_->has.reset().bind(1, sample).bind(2, parameter);
  sqlite::finish_on_exit guard{st};
  return st.step();
}

bool state_store::has_observation(std::string_view sample, std::string_view parameter, std::string_view value,
                                  std::string_view observed_at) const {
  auto& st = reads_->has_observation.reset().bind(1, sample).bind(2, parameter).bind(3, value).bind(4, observed_at);
  sqlite::finish_on_exit guard{st};
  return st.step();
}

namespace {
rerun::observation observation_of(sqlite::statement& st) {
  rerun::observation o;
  o.value = st.text(0);
  if (!st.is_null(1)) o.numeric = st.real(1);
  o.observed_at = st.text(2);
  o.received_at = rerun::timestamp(std::chrono::seconds(st.integer(3)));
  return o;
}

// [marker start, the first string after every name+marker...): the marker's last character + 1.
std::pair<std::string, std::string> marker_range(std::string_view parameter, std::string_view marker) {
  std::string from = std::string(parameter).append(marker);
  std::string to = from;
  ++to.back();
  return {std::move(from), std::move(to)};
}
}  // namespace

std::optional<rerun::observation> state_store::latest(std::string_view sample, std::string_view parameter) const {
  auto& st = reads_->latest.reset().bind(1, sample).bind(2, parameter);
  sqlite::finish_on_exit guard{st};
  if (!st.step()) return std::nullopt;
  return observation_of(st);
}

std::optional<rerun::observation> state_store::latest_of_parameter(std::string_view sample,
                                                                   std::string_view parameter) const {
  const auto [sub_from, sub_to] = marker_range(parameter, rerun::key_sub_id);
  const auto [type_from, type_to] = marker_range(parameter, rerun::key_result_type);
  auto& st = reads_->latest_of_parameter.reset().bind(1, sample).bind(2, parameter).bind(3, sub_from).bind(4, sub_to)
                 .bind(5, type_from).bind(6, type_to);
  sqlite::finish_on_exit guard{st};
  if (!st.step()) return std::nullopt;
  return observation_of(st);
}

void state_store::record(std::string_view sample, std::string_view parameter, rerun::observation o) {
  write_state(db_, state_changes{{history_row{std::string(sample), std::string(parameter), std::move(o)}}, {}, {}, {}, {}, {}});
}

std::size_t state_store::prune(rerun::timestamp cutoff) { return prune_results(db_, cutoff); }

}  // namespace interfaced::transport
