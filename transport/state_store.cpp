#include "transport/state_store.hpp"

#include "rerun/result_key.hpp"
#include "transport/body_codec.hpp"
#include "transport/sqlite_statement.hpp"

#include <algorithm>
#include <deque>
#include <functional>
#include <new>
#include <stdexcept>
#include <unordered_map>

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
               " received_at INTEGER NOT NULL);",
               who);
  // No index on (sample, parameter) since outbox schema 12 (state_store::result_index).
}

struct state_writer::statements {
  explicit statements(sqlite3* db) : record(db, record_sql), put(db, put_sql) {}
  statement record, put;
};

state_writer::state_writer(sqlite3* db) : stmts_(std::make_unique<statements>(db)), db_(db) {}
state_writer::~state_writer() = default;

void state_writer::write(const state_changes& c) {
  for (const auto& r : c.history) {
    // Bound without copies: `c` outlives the run.
    auto& st = stmts_->record.reset();
    st.bind_static(1, r.sample).bind_static(2, r.parameter).bind_static(3, r.o.value).bind(4, r.o.numeric);
    st.bind_static(5, r.o.observed_at).bind(6, static_cast<std::int64_t>(r.o.received_at.time_since_epoch().count()));
    st.run();
    if (feed_) staged_.push_back({sqlite3_last_insert_rowid(db_), r.sample, r.parameter});
  }
  for (const auto& [key, value] : c.documents) stmts_->put.reset().bind(1, key).bind(2, value).run();
}

void state_writer::op_begun() noexcept {
  op_mark_ = staged_.size();
  prune_before_op_ = prune_staged_;
}

void state_writer::op_undone() noexcept {
  // The op's rows were rolled back; their seqs are given again to the rows written next.
  staged_.resize(op_mark_);
  prune_staged_ = prune_before_op_;
}

void state_writer::pruned() noexcept { prune_staged_ = true; }

void state_writer::committed() noexcept {
  if (feed_) {
    if (!staged_.empty()) feed_->publish(std::move(staged_));
    if (prune_staged_) feed_->invalidate();
  }
  rolled_back();
}

void state_writer::rolled_back() noexcept {
  staged_.clear();
  op_mark_ = 0;
  prune_staged_ = prune_before_op_ = false;
}

void result_feed::publish(std::vector<row> rows) noexcept {
  const std::lock_guard lock(m_);
  if (!whole_) return;  // the reader reads the table anyway
  if (rows_.size() + rows.size() > max_rows) {
    rows_.clear();
    whole_ = false;
    return;
  }
  try {
    if (rows_.empty()) rows_ = std::move(rows);
    else rows_.insert(rows_.end(), std::make_move_iterator(rows.begin()), std::make_move_iterator(rows.end()));
  } catch (const std::bad_alloc&) {  // no memory to keep them: the reader reads the table
    rows_.clear();
    whole_ = false;
  }
}

void result_feed::invalidate() noexcept {
  const std::lock_guard lock(m_);
  rows_.clear();
  whole_ = false;
}

result_feed::taken result_feed::take() {
  const std::lock_guard lock(m_);
  taken t{std::move(rows_), whole_};
  rows_.clear();
  whole_ = true;
  return t;
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
        begin(db, "BEGIN"),
        commit(db, "COMMIT") {}
  statement get;
  statement begin, commit;  // read_scope's, once per message: prepared, not parsed each time
};

// The results by (sample, parameter), in memory (outbox schema 12, issue #17). The results_sp
// index it replaces was keyed by sample: with analysers sending interleaved samples every
// message rewrote a leaf at a random place (about 1 KiB of WAL per message in throughput.sh),
// while the rows themselves go to the table's last page, which a whole group commit shares.
//
// It is an index, not a copy: it names candidate rows (by seq), and every answer is read from
// the row itself, so an entry whose row was pruned, or whose sample only shares its hash, never
// changes an answer. It may hold more than the table, never less: rows are only ever added with
// a seq above every committed one (AUTOINCREMENT, one writer at a time), so catching up is "the
// rows after the last seq seen" (a seek at the table's end), run before each read -- once per
// read_scope, whose snapshot does not move. Pruned rows' entries go when the table's first seq
// passes them, or when a read finds their row gone.
struct state_store::result_index {
  explicit result_index(sqlite3* db)
      : since(db, "SELECT seq, sample, parameter FROM results WHERE seq > ?1 ORDER BY seq"),
        first(db, "SELECT MIN(seq) FROM results"),
        row(db, "SELECT sample, parameter, value, numeric, observed_at, received_at FROM results WHERE seq = ?1") {}
  statement since, first, row;

  struct entry {
    std::uint32_t parameter;  // into parameters
    std::int64_t seq;
  };
  // Hash of the sample -> its rows' entries, in seq order. A hash, not the text: a collision only
  // adds candidates, which the row read rejects.
  std::unordered_map<std::size_t, std::vector<entry>> by_sample;
  // Parameter names, interned: a few hundred at most (the analysers' codes), one entry each.
  std::deque<std::string> parameters;  // a deque: the map's views stay valid as it grows
  std::unordered_map<std::string_view, std::uint32_t> parameter_ids;
  std::int64_t last_seq = 0;      // every row up to it is in the index
  std::int64_t first_seq = 0;     // the table's first seq when last caught up
  std::uint64_t caught_in = 0;    // the read_scope (state_store::scopes_) it last caught up in
  bool read_once = false;         // caught up from the table at least once (the feed starts there)

  std::uint32_t parameter_id(std::string_view p) {
    if (auto it = parameter_ids.find(p); it != parameter_ids.end()) return it->second;
    const auto id = static_cast<std::uint32_t>(parameters.size());
    parameter_ids.emplace(parameters.emplace_back(p), id);
    return id;
  }

  // The feed's rows after last_seq, when they follow it without a gap (AUTOINCREMENT, one
  // writer: a gap means rows came from elsewhere, or the highest ones were deleted). False: none
  // added, read the table.
  bool add_following(const std::vector<result_feed::row>& rows) {
    std::int64_t next = last_seq + 1;
    for (const auto& r : rows) {
      if (r.seq < next) continue;  // the table gave it already
      if (r.seq != next) return false;
      ++next;
    }
    for (const auto& r : rows) {
      if (r.seq <= last_seq) continue;
      by_sample[std::hash<std::string_view>{}(r.sample)].push_back({parameter_id(r.parameter), r.seq});
      last_seq = r.seq;
    }
    return true;
  }

  void catch_up() {
    read_once = true;
    {
      auto& f = first.reset();
      sqlite::finish_on_exit guard{f};
      const auto head = f.step() && !f.is_null(0) ? f.integer(0) : last_seq + 1;
      if (head > first_seq) {
        // A prune took the oldest rows: their entries go (one walk per prune that moved the head).
        for (auto it = by_sample.begin(); it != by_sample.end();) {
          auto& v = it->second;
          v.erase(v.begin(), std::find_if(v.begin(), v.end(), [&](const entry& e) { return e.seq >= head; }));
          it = v.empty() ? by_sample.erase(it) : std::next(it);
        }
        first_seq = head;
      }
    }
    auto& s = since.reset().bind(1, last_seq);
    sqlite::finish_on_exit guard{s};
    while (s.step()) {
      last_seq = s.integer(0);
      by_sample[std::hash<std::string_view>{}(s.bytes(1))].push_back({parameter_id(s.bytes(2)), last_seq});
    }
  }
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
    index_ = std::make_unique<result_index>(db_);
  } catch (const std::exception& e) {
    index_.reset();
    reads_.reset();
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error(file.string() + ": " + e.what());
  }
}

struct state_store::dead_letter_reads {
  // The dead letters newest first (the dead_messages index), each checked for its body row's
  // samples naming the sample (outbox schema 15, body_codec.hpp samples_column). Read only for a
  // duplicate result, and dead letters are few, where a (sample, seq) key cost a random leaf per
  // append.
  explicit dead_letter_reads(sqlite3* db)
      : naming(db, ("SELECT m.id, b.body FROM messages m JOIN message_bodies b ON b.seq = m.seq"
                    " WHERE m.state = 'dead' AND " +
                    names_sample_sql("b.samples", "?1") + " ORDER BY m.seq DESC")
                       .c_str()) {}
  statement naming;
};

std::vector<std::pair<std::string, std::string>> state_store::dead_letters_naming(std::string_view sample) const {
  std::vector<std::pair<std::string, std::string>> out;
  if (sample.empty()) return out;
  begin_reads();
  if (!dead_reads_) {
    try {
      dead_reads_ = std::make_unique<dead_letter_reads>(db_);
    } catch (const std::exception&) {
      return out;  // no outbox tables in this file (a state store on its own)
    }
  }
  auto& st = dead_reads_->naming.reset().bind(1, sample);
  sqlite::finish_on_exit guard{st};
  // A damaged body (it does not inflate) still names its dead letter, with no body: this read
  // answers a duplicate check on the ingest path, which must not fail for it.
  while (st.step()) out.emplace_back(st.text(0), unpack_body(st.bytes(1)).value_or(std::string()));
  return out;
}

std::vector<rerun::qc::audit_entry> state_store::qc_audit() const {
  std::vector<rerun::qc::audit_entry> out;
  begin_reads();
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
  begin_reads();
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
  begin_reads();
  return qc_patient_post<std::int64_t>(db_, "m.delivered_at", " AND m.state = 'delivered' AND m.delivered_at IS NOT NULL",
                                       device, sample_id, parameter, observed_at,
                                       [](statement& st) { return st.integer(0); });
}

std::optional<std::string> state_store::qc_patient_unsent_message(std::string_view device, std::string_view sample_id,
                                                                  std::string_view parameter,
                                                                  std::string_view observed_at) const {
  begin_reads();
  return qc_patient_post<std::string>(db_, "m.id", " AND m.state = 'pending' AND m.attempts = 0", device, sample_id,
                                      parameter, observed_at, [](statement& st) { return st.text(0); });
}

std::optional<std::string> state_store::qc_patient_body(std::string_view device, std::string_view sample_id,
                                                        std::string_view parameter, std::string_view observed_at) const {
  begin_reads();
  return qc_patient_post<std::string>(db_, "(SELECT b.body FROM message_bodies b WHERE b.seq = m.seq)", "", device, sample_id, parameter, observed_at,
                                      [](statement& st) { return unpack_body_or_throw(st.bytes(0), "state store"); });
}

state_store::~state_store() {
  index_.reset();
  dead_reads_.reset();
  reads_.reset();
  sqlite3_close(db_);
}

state_store::read_scope::read_scope(const state_store& s) : s_(s) {
  if (s_.read_depth_++ == 0) ++s_.scopes_;
}

void state_store::begin_reads() const {
  if (read_depth_ == 0 || reading_) return;
  sqlite::run_once(reads_->begin);
  reading_ = true;
}

state_store::read_scope::~read_scope() {
  if (--s_.read_depth_ != 0 || !s_.reading_) return;
  s_.reading_ = false;
  try {
    // A read transaction: releases the snapshot, writes nothing.
    sqlite::run_once(s_.reads_->commit);
  } catch (...) {
    // Nothing to lose: the next read opens its own transaction (autocommit is back either way).
    sqlite3_exec(s_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

std::optional<std::string> state_store::get(std::string_view key) const {
  begin_reads();
  auto& st = reads_->get.reset().bind(1, key);
  sqlite::finish_on_exit guard{st};
  if (!st.step()) return std::nullopt;
  return st.text(0);
}

// Once per read_scope (each read outside one). From the feed when the table was read once and
// nothing else wrote it since -- but never into a snapshot this scope already took: a row the
// index names must be in the snapshot that reads it (a row a read does not find is taken for
// pruned, its entry dropped). From the table otherwise, in the scope's snapshot, begun after the
// feed was taken, so that it holds every row the feed had.
void state_store::catch_up() const {
  auto& ix = *index_;
  if (read_depth_ > 0 && ix.caught_in == scopes_) return;
  ix.caught_in = read_depth_ == 0 ? 0 : scopes_;
  if (feed_ && ix.read_once && !table_changed_ && !reading_) {
    const auto t = feed_->take();
    if (t.whole && ix.add_following(t.rows)) return;
  }
  table_changed_ = false;
  begin_reads();
  ix.catch_up();
}

std::size_t state_store::load_index() const {
  auto& ix = *index_;
  ix.caught_in = 0;
  catch_up();
  std::size_t n = 0;
  for (const auto& [hash, entries] : ix.by_sample) n += entries.size();
  return n;
}

template <typename Match, typename Fn>
void state_store::each_result(std::string_view sample, Match match, Fn fn) const {
  auto& ix = *index_;
  catch_up();
  const auto it = ix.by_sample.find(std::hash<std::string_view>{}(sample));
  if (it == ix.by_sample.end()) return;
  begin_reads();
  // Copied: fn may read further, and a row found gone is dropped from the entries.
  std::vector<std::int64_t> seqs;
  for (const auto& e : it->second)
    if (match(std::string_view(ix.parameters[e.parameter]))) seqs.push_back(e.seq);
  std::vector<std::int64_t> gone;
  for (auto k = seqs.rbegin(); k != seqs.rend(); ++k) {
    auto& st = ix.row.reset().bind(1, *k);
    sqlite::finish_on_exit guard{st};
    if (!st.step()) {
      gone.push_back(*k);  // pruned
      continue;
    }
    if (st.bytes(0) != sample || !match(st.bytes(1))) continue;  // another sample with the same hash
    if (fn(st)) break;
  }
  if (!gone.empty()) {
    std::erase_if(it->second,
                  [&](const result_index::entry& e) { return std::find(gone.begin(), gone.end(), e.seq) != gone.end(); });
    if (it->second.empty()) ix.by_sample.erase(it);
  }
}

namespace {
// The row columns each_result hands over, from its "SELECT sample, parameter, value, numeric,
// observed_at, received_at".
rerun::observation observation_of(sqlite::statement& st) {
  rerun::observation o;
  o.value = st.text(2);
  if (!st.is_null(3)) o.numeric = st.real(3);
  o.observed_at = st.text(4);
  o.received_at = rerun::timestamp(std::chrono::seconds(st.integer(5)));
  return o;
}
}  // namespace

bool state_store::has(std::string_view sample, std::string_view parameter) const {
  bool found = false;
  each_result(sample, [&](std::string_view p) { return p == parameter; }, [&](sqlite::statement&) { return found = true; });
  return found;
}

bool state_store::has_observation(std::string_view sample, std::string_view parameter, std::string_view value,
                                  std::string_view observed_at) const {
  bool found = false;
  each_result(sample, [&](std::string_view p) { return p == parameter; }, [&](sqlite::statement& st) {
    return found = st.bytes(2) == value && st.bytes(4) == observed_at;
  });
  return found;
}

std::optional<rerun::observation> state_store::latest(std::string_view sample, std::string_view parameter) const {
  std::optional<rerun::observation> out;
  each_result(sample, [&](std::string_view p) { return p == parameter; }, [&](sqlite::statement& st) {
    out = observation_of(st);
    return true;
  });
  return out;
}

std::optional<rerun::observation> state_store::latest_of_parameter(std::string_view sample,
                                                                   std::string_view parameter) const {
  // The name alone, or the name followed by a key marker (rerun/result_key.hpp).
  const auto named = [&](std::string_view p) {
    if (!p.starts_with(parameter)) return false;
    const auto rest = p.substr(parameter.size());
    return rest.empty() || rest.starts_with(rerun::key_sub_id) || rest.starts_with(rerun::key_result_type);
  };
  std::optional<rerun::observation> out;
  each_result(sample, named, [&](sqlite::statement& st) {
    out = observation_of(st);
    return true;
  });
  return out;
}

void state_store::record(std::string_view sample, std::string_view parameter, rerun::observation o) {
  index_->caught_in = 0;
  table_changed_ = true;
  write_state(db_, state_changes{{history_row{std::string(sample), std::string(parameter), std::move(o)}}, {}, {}, {}, {}, {}});
}

std::size_t state_store::prune(rerun::timestamp cutoff) {
  index_->caught_in = 0;
  table_changed_ = true;
  return prune_results(db_, cutoff);
}

}  // namespace interfaced::transport
