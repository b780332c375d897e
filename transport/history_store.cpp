#include "transport/history_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <stdexcept>
#include <tuple>
#include <unordered_set>
#include <utility>

#include "transport/sqlite_statement.hpp"
#include "transport/state_store.hpp"

namespace interfaced::transport {

using sqlite::statement;
using sqlite::finish_on_exit;

void migrate_history_tables(sqlite3* db) {
  sqlite::exec(db,
               "CREATE TABLE IF NOT EXISTS history_events ("
               " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
               " day TEXT NOT NULL,"  // as counted (lab-local); rebuild recomputes it
               " event_type TEXT NOT NULL,"
               " dimension_a TEXT NOT NULL,"
               " dimension_b TEXT NOT NULL DEFAULT '',"
               " sample TEXT NOT NULL DEFAULT '',"
               " observed_at TEXT NOT NULL DEFAULT '',"
               " at_ms INTEGER NOT NULL,"
               " delta INTEGER NOT NULL);"
               "CREATE INDEX IF NOT EXISTS history_events_day ON history_events(day);"
               "CREATE TABLE IF NOT EXISTS history_summary ("
               " day TEXT NOT NULL,"
               " event_type TEXT NOT NULL,"
               " dimension_a TEXT NOT NULL,"
               " dimension_b TEXT NOT NULL DEFAULT '',"
               " event_value INTEGER NOT NULL,"
               " PRIMARY KEY (day, event_type, dimension_a, dimension_b)) WITHOUT ROWID;"
               "CREATE TABLE IF NOT EXISTS history_samples ("
               " day TEXT NOT NULL, device TEXT NOT NULL, sample TEXT NOT NULL,"
               " PRIMARY KEY (day, device, sample)) WITHOUT ROWID;",
               "history");
}

namespace {

// A month row's days: bit i of `present` says day i (0 = the 1st) was counted at least once (a
// count back at zero is still a row, as a day row was), counts[i] its count.
//
// Stored compact (schema 10, issue #17): the mask as an unsigned LEB128 varint, then the count of
// each present day, in day order, as a zigzag LEB128 varint -- a few dozen bytes where the fixed
// form of schema 8 took 128 (a 4-byte mask and 31 int32 counts). Every batch rewrites the rows of
// the devices and parameters it counts, and each rewritten page is a WAL frame: twice the rows
// per 1 KiB page, about half the pages (620 bytes per result in throughput.sh before). The fixed
// form is still read (exactly 128 bytes; a compact cell is never that long: see encode_cell), and
// a row is rewritten compact the next time it counts, so no migration rewrites them all.
constexpr std::size_t month_days = 31;
constexpr std::size_t fixed_cell_bytes = 4 + 4 * month_days;

struct month_cell {
  std::uint32_t present = 0;
  std::array<std::int64_t, month_days> counts{};
  // Day i (0 = the 1st, < month_days) counted, delta added: what every writer of a cell does.
  void add(std::size_t i, std::int64_t delta) {
    present |= std::uint32_t{1} << i;
    counts[i] += delta;
  }
};

month_cell decode_fixed_cell(std::string_view b) {
  month_cell c;
  const auto* p = reinterpret_cast<const unsigned char*>(b.data());
  for (int k = 0; k < 4; ++k) c.present |= std::uint32_t{p[k]} << (8 * k);
  for (std::size_t i = 0; i < month_days; ++i) {
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) v |= std::uint32_t{p[4 + 4 * i + static_cast<std::size_t>(k)]} << (8 * k);
    c.counts[i] = static_cast<std::int32_t>(v);
  }
  return c;
}

// One LEB128 varint from b at `at` (advanced past it); nullopt when b ends inside it or it is
// longer than 64 bits.
std::optional<std::uint64_t> read_varint(std::string_view b, std::size_t& at) {
  std::uint64_t v = 0;
  for (unsigned shift = 0; shift < 64 && at < b.size(); shift += 7) {
    const auto byte = static_cast<unsigned char>(b[at++]);
    v |= std::uint64_t{byte & 0x7Fu} << shift;
    if ((byte & 0x80u) == 0) return v;
  }
  return std::nullopt;
}

void write_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// A damaged cell reads as the days decoded before the damage (a hand-edited row, never written so).
month_cell decode_cell(std::string_view b) {
  if (b.size() == fixed_cell_bytes) return decode_fixed_cell(b);
  month_cell c;
  std::size_t at = 0;
  const auto mask = read_varint(b, at);
  if (!mask) return c;
  const auto present = static_cast<std::uint32_t>(*mask & ((std::uint64_t{1} << month_days) - 1));
  for (std::size_t i = 0; i < month_days; ++i) {
    if ((present & (std::uint32_t{1} << i)) == 0) continue;
    const auto z = read_varint(b, at);
    if (!z) break;
    c.present |= std::uint32_t{1} << i;
    c.counts[i] = static_cast<std::int64_t>(*z >> 1) ^ -static_cast<std::int64_t>(*z & 1);
  }
  return c;
}

std::string encode_cell(const month_cell& c) {
  std::string b;
  b.reserve(16);
  write_varint(b, c.present);
  for (std::size_t i = 0; i < month_days; ++i) {
    if ((c.present & (std::uint32_t{1} << i)) == 0) continue;
    const auto v = c.counts[i];
    write_varint(b, (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
  }
  // Never the fixed form's length: a trailing zero byte is past the last present day's count,
  // which decode_cell never reads.
  if (b.size() == fixed_cell_bytes) b.push_back('\0');
  return b;
}

// history_add(days, i, delta): the cell `days` (NULL: an empty one) with delta added to day i.
void history_add(sqlite3_context* ctx, int, sqlite3_value** argv) {
  month_cell c;
  if (sqlite3_value_type(argv[0]) == SQLITE_BLOB) {
    const void* p = sqlite3_value_blob(argv[0]);
    c = decode_cell({static_cast<const char*>(p), static_cast<std::size_t>(sqlite3_value_bytes(argv[0]))});
  }
  const auto i = sqlite3_value_int64(argv[1]);
  if (i < 0 || i >= static_cast<std::int64_t>(month_days)) {
    sqlite3_result_error(ctx, "history_add: day of month out of range", -1);
    return;
  }
  c.add(static_cast<std::size_t>(i), sqlite3_value_int64(argv[2]));
  const auto b = encode_cell(c);
  sqlite3_result_blob(ctx, b.data(), static_cast<int>(b.size()), SQLITE_TRANSIENT);
}

void register_history_functions(sqlite3* db) {
  if (sqlite3_create_function_v2(db, "history_add", 3, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, nullptr,
                                 &history_add, nullptr, nullptr, nullptr) != SQLITE_OK)
    throw std::runtime_error(std::string("history: cannot register history_add: ") + sqlite3_errmsg(db));
}

constexpr const char* add_sql =
    "INSERT INTO history_month (month, event_type, dimension_a, dimension_b, days)"
    " VALUES (?1, ?2, ?3, ?4, history_add(NULL, ?5, ?6))"
    " ON CONFLICT (month, event_type, dimension_a, dimension_b) DO UPDATE SET days = history_add(days, ?5, ?6)";

std::chrono::sys_days month_of(std::chrono::sys_days d) { return rerun::bucket_start(d, rerun::granularity::month); }

// The last day of the month starting at m.
std::chrono::sys_days month_end(std::chrono::sys_days m) {
  const std::chrono::year_month_day ymd{m};
  return std::chrono::sys_days{(ymd.year() / ymd.month() + std::chrono::months{1}) / std::chrono::day{1}} -
         std::chrono::days{1};
}

// Adds `delta` to `day` through a prepared add_sql statement.
void add_day(statement& add, std::chrono::sys_days day, std::string_view type, std::string_view a, std::string_view b,
             std::int64_t delta) {
  const auto m = month_of(day);
  add.reset()
      .bind(1, rerun::format_day(m))
      .bind(2, type)
      .bind(3, a)
      .bind(4, b.empty() ? std::string_view("") : b)  // not a null view: that would bind NULL
      .bind(5, std::int64_t{(day - m).count()})
      .bind(6, delta)
      .run();
}

}  // namespace

void migrate_history_to_months(sqlite3* db) {
  sqlite::exec(db,
               "CREATE TABLE IF NOT EXISTS history_month ("
               " month TEXT NOT NULL,"  // its first lab-local day, 2026-12-01
               " event_type TEXT NOT NULL,"
               " dimension_a TEXT NOT NULL,"
               " dimension_b TEXT NOT NULL DEFAULT '',"
               " days BLOB NOT NULL,"
               " PRIMARY KEY (month, event_type, dimension_a, dimension_b)) WITHOUT ROWID;",
               "history");
  bool old_table = false;
  {
    statement t(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'history_summary'", "history");
    t.step();
    old_table = t.integer(0) == 1;
  }
  if (!old_table) return;
  register_history_functions(db);
  {
    statement add(db, add_sql, "history");
    statement rows(db, "SELECT day, event_type, dimension_a, dimension_b, event_value FROM history_summary", "history");
    while (rows.step()) {
      const auto day = rerun::parse_day(rows.text(0));
      if (!day) continue;  // never written so: a hand-edited row has no day to land on
      add_day(add, *day, rows.text(1), rows.text(2), rows.text(3), rows.integer(4));
    }
  }
  sqlite::exec(db, "DROP TABLE history_summary", "history");
}

void migrate_history_samples_to_days(sqlite3* db) {
  {
    statement t(db, "SELECT count(*) FROM pragma_table_info('history_samples') WHERE name = 'id'", "history");
    t.step();
    if (t.integer(0) == 1) return;
  }
  // id = the day's number (days since 1970-01-01) * 2^32 + the row's number within its day.
  sqlite::exec(db,
               "CREATE TABLE history_samples_v12 (id INTEGER PRIMARY KEY, day TEXT NOT NULL, device TEXT NOT NULL,"
               " sample TEXT NOT NULL);"
               "INSERT INTO history_samples_v12 (id, day, device, sample)"
               " SELECT CAST(round(julianday(day) - 2440587.5) AS INTEGER) * 4294967296"
               " + row_number() OVER (PARTITION BY day ORDER BY device, sample) - 1, day, device, sample"
               " FROM history_samples WHERE julianday(day) IS NOT NULL;"
               "DROP TABLE history_samples;"
               "ALTER TABLE history_samples_v12 RENAME TO history_samples;",
               "history");
}

void migrate_history_to_deferred(sqlite3* db) {
  statement t(db, "SELECT count(*) FROM pragma_table_info('history_events') WHERE name = 'pending'", "history");
  t.step();
  if (t.integer(0) == 1) return;
  t.finish();
  sqlite::exec(db, "ALTER TABLE history_events ADD COLUMN pending INTEGER NOT NULL DEFAULT 0", "history");
}

namespace {

// The history_events row up to which history_month holds every count (kv; 0 when never folded).
constexpr const char* through_key = "history_month_through";

// The last history_events row (0: none).
std::int64_t last_event(sqlite3* db) {
  statement s(db, "SELECT COALESCE(MAX(seq), 0) FROM history_events", "history");
  s.step();
  return s.integer(0);
}

std::int64_t month_through(sqlite3* db) {
  statement s(db, "SELECT value FROM kv WHERE key = ?1", "history");
  s.bind(1, std::string_view(through_key));
  if (!s.step()) return 0;
  const auto text = s.bytes(0);
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec == std::errc() && end == text.data() + text.size()) return v;
  // Never written so (a hand-edited file). Taken as "every event is folded": the summary then
  // misses at most the events of one fold (4,096) until `stats rebuild`, where 0 would count
  // every event ever deferred twice -- and a throw here would fail every commit of the worker.
  return last_event(db);
}

// (month, event_type, dimension_a, dimension_b): history_month's key, in its order.
using month_key = std::tuple<std::string, std::string, std::string, std::string>;

// The counts of the events history_month does not hold yet (pending > 0, after the fold mark),
// by month row: what a reader adds to the stored rows, and what a fold writes into them. Read in
// the caller's transaction; `want` filters by (event_type, dimension_a) before anything is kept.
template <class Want>
std::map<month_key, month_cell> pending_cells(sqlite3* db, Want&& want) {
  std::map<month_key, month_cell> cells;
  statement s(db,
              "SELECT day, event_type, dimension_a, dimension_b, delta, pending FROM history_events"
              " WHERE seq > ?1 AND pending > 0",
              "history");
  s.bind(1, month_through(db));
  auto add = [&](std::chrono::sys_days d, std::string_view type, std::string_view a, std::string_view b, std::int64_t delta) {
    if (!want(type, a)) return;
    const auto m = month_of(d);
    cells[month_key{rerun::format_day(m), std::string(type), std::string(a), std::string(b)}].add(
        static_cast<std::size_t>((d - m).count()), delta);
  };
  while (s.step()) {
    const auto d = rerun::parse_day(s.bytes(0));
    if (!d) continue;  // never written so
    add(*d, s.bytes(1), s.bytes(2), s.bytes(3), s.integer(4));
    if (s.integer(5) == 2) add(*d, rerun::history_events::device_sample, s.bytes(2), "", 1);
  }
  return cells;
}

// history_samples' ids of day d: [first, last].
std::int64_t first_sample_id(std::chrono::sys_days d) { return std::int64_t{d.time_since_epoch().count()} * (std::int64_t{1} << 32); }
std::int64_t last_sample_id(std::chrono::sys_days d) { return first_sample_id(d) + ((std::int64_t{1} << 32) - 1); }

// A (device, sample) pair as one key, unambiguous for any device and sample text.
std::string sample_key(std::string_view device, std::string_view sample) {
  return std::to_string(device.size()).append(":").append(device).append(sample);
}

// The samples counted on day d, by sample_key: the table's rows, plus -- when `pending` is given
// (SELECT dimension_a, sample of the first results still waiting for their fold, ?1 the fold
// mark, ?2 the day) -- the first results a deferring writer has not written there yet.
using day_samples = std::unordered_set<std::string>;
day_samples load_day_samples(statement& rows, statement* pending, std::int64_t through, std::chrono::sys_days d) {
  day_samples out;
  rows.reset().bind(1, first_sample_id(d)).bind(2, last_sample_id(d));
  {
    finish_on_exit guard{rows};
    while (rows.step()) out.insert(sample_key(rows.bytes(0), rows.bytes(1)));
  }
  if (pending) {
    pending->reset().bind(1, through).bind(2, rerun::format_day(d));
    finish_on_exit guard{*pending};
    while (pending->step()) out.insert(sample_key(pending->bytes(0), pending->bytes(1)));
  }
  return out;
}

constexpr const char* day_samples_sql = "SELECT device, sample FROM history_samples WHERE id BETWEEN ?1 AND ?2";
constexpr const char* day_pending_firsts_sql =
    "SELECT dimension_a, sample FROM history_events WHERE seq > ?1 AND pending = 2 AND day = ?2";
// A history_samples row of day ?3 (ids ?1 to ?2), its id the day's next, found at the insert (the
// table's last rows of the day, one seek): every writer of the table -- the live one, its batches,
// a fold, a rebuild -- takes it the same way, whatever another wrote since it loaded the day.
constexpr const char* insert_sample_sql =
    "INSERT INTO history_samples (id, day, device, sample) VALUES ((SELECT COALESCE(MAX(id) + 1, ?1)"
    " FROM history_samples WHERE id BETWEEN ?1 AND ?2), ?3, ?4, ?5)";
void insert_sample(statement& put, std::chrono::sys_days d, std::string_view day, std::string_view device,
                   std::string_view sample) {
  put.reset().bind(1, first_sample_id(d)).bind(2, last_sample_id(d)).bind(3, day).bind(4, device).bind(5, sample).run();
}

// The history_samples rows of the first results waiting for their fold (pending 2, after the
// mark `through`), in event order, for a fold that does not know which of them a deferring writer
// has written already (schema 15: in batches, history_writer::sample_rows; a schema-14 writer
// wrote them all with their events): a row the table holds is not written again.
void fold_pending_samples(sqlite3* db, std::int64_t through) {
  statement firsts(db, "SELECT day, dimension_a, sample FROM history_events WHERE seq > ?1 AND pending = 2 ORDER BY seq",
                   "history");
  statement rows(db, day_samples_sql, "history");
  statement put(db, insert_sample_sql, "history");
  std::map<std::chrono::sys_days, day_samples> days;
  firsts.bind(1, through);
  while (firsts.step()) {
    const auto d = rerun::parse_day(firsts.bytes(0));
    if (!d) continue;  // never written so
    auto it = days.find(*d);
    if (it == days.end()) it = days.emplace(*d, load_day_samples(rows, nullptr, 0, *d)).first;
    if (it->second.insert(sample_key(firsts.bytes(1), firsts.bytes(2))).second)
      insert_sample(put, *d, firsts.bytes(0), firsts.bytes(1), firsts.bytes(2));
  }
}

}  // namespace

void fold_pending_history(sqlite3* db, bool with_samples) {
  const auto cells = pending_cells(db, [](std::string_view, std::string_view) { return true; });
  if (cells.empty()) return;  // nothing pending: nothing written
  if (with_samples) fold_pending_samples(db, month_through(db));
  register_history_functions(db);
  statement add(db, add_sql, "history");
  for (const auto& [key, c] : cells) {
    const auto m = rerun::parse_day(std::get<0>(key));
    if (!m) continue;
    for (std::size_t i = 0; i < month_days; ++i)
      if (c.present & (std::uint32_t{1} << i))
        add_day(add, *m + std::chrono::days{static_cast<std::int64_t>(i)}, std::get<1>(key), std::get<2>(key),
                std::get<3>(key), c.counts[i]);
  }
  state_changes mark;
  mark.documents.emplace_back(through_key, std::to_string(last_event(db)));
  write_state(db, mark);
}

struct history_writer::statements {
  explicit statements(sqlite3* db)
      : db_((register_history_functions(db), db)),
        log(db,
            "INSERT INTO history_events (day, event_type, dimension_a, dimension_b, sample, observed_at, at_ms, delta,"
            " pending) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            "history"),
        add(db, add_sql, "history"),
        sample(db, insert_sample_sql, "history"),
        day_samples(db, day_samples_sql, "history"),
        day_pending_firsts(db, day_pending_firsts_sql, "history"),
        data_version(db, "PRAGMA data_version", "history") {}
  sqlite3* db_;
  statement log, add, sample, day_samples, day_pending_firsts, data_version;
};

// The samples counted on a few days, in memory: "was this sample counted on this device that
// day" is answered here, so history_samples needs no (day, device, sample) key (schema 12). A
// day is loaded whole at its first use: its history_samples rows (a range of ids: the table is
// clustered by day, and today's rows go to its end without an index to keep) and the first
// results still waiting for their fold, whose history_samples rows a deferring writer may not have
// written yet (schema 15: a batch every few commits, not a row in every commit). Results come in for today
// and the days just before it, so a handful of days serve every lookup, and memory is that
// handful of days' samples. Dropped whole when what it holds may differ from the table: another
// connection committed (stats rebuild / prune), or the caller rolled back (forget()).
struct history_writer::sample_days {
  static constexpr std::size_t max_days = 8;
  struct day {
    std::chrono::sys_days d;
    day_samples seen;  // sample_key(device, sample)
    std::uint64_t used = 0;
  };
  std::vector<day> days;
  std::uint64_t clock = 0;
  std::int64_t version = -1;

  day& of(statements& st, std::chrono::sys_days when) {
    ++clock;
    for (auto& d : days)
      if (d.d == when) {
        d.used = clock;
        return d;
      }
    if (days.size() >= max_days)
      days.erase(std::min_element(days.begin(), days.end(), [](const day& a, const day& b) { return a.used < b.used; }));
    return days.emplace_back(day{when, load_day_samples(st.day_samples, &st.day_pending_firsts, month_through(st.db_), when), clock});
  }
};

history_writer::history_writer(sqlite3* db, bool defer)
    : stmts_(std::make_unique<statements>(db)), days_(std::make_unique<sample_days>()), defer_(defer) {}
history_writer::~history_writer() = default;

void history_writer::forget() noexcept {
  days_->days.clear();
  unwritten_.clear();
  unknown_ = true;  // what the rollback left pending is not known here: fold at the next chance
}

void history_writer::notice_others() {
  if (!sqlite::data_version_moved(stmts_->data_version, days_->version)) return;
  // A rebuild or prune: its fold may have written rows this writer holds as unwritten.
  days_->days.clear();
  if (!unwritten_.empty()) {
    unwritten_.clear();
    unknown_ = true;
  }
}

void history_writer::write_sample_rows() {
  for (const auto& r : unwritten_) insert_sample(stmts_->sample, r.day, rerun::format_day(r.day), r.device, r.sample);
  unwritten_.clear();
}

void history_writer::fold_if_due(std::chrono::steady_clock::time_point now, bool force) {
  if (!defer_ || (pending_ == 0 && !unknown_)) return;
  notice_others();
  if (pending_ > 0 && first_pending_ == std::chrono::steady_clock::time_point{}) first_pending_ = now;
  if (!force && !unknown_ && pending_ < fold_events && now - first_pending_ < fold_after) {
    if (unwritten_.size() >= sample_rows) write_sample_rows();
    return;
  }
  // Known: exactly the rows in unwritten_ are missing. Unknown (a start, a rollback, another
  // connection's fold): the fold checks every first result against its day's rows.
  const bool known = !unknown_;
  if (known) write_sample_rows();
  unwritten_.clear();
  fold_pending_history(stmts_->db_, /*with_samples=*/!known);
  pending_ = 0;
  unknown_ = false;
  first_pending_ = {};
}

void history_writer::record(const std::vector<rerun::history_event>& events, const rerun::lab_zone& zone, bool log) {
  // Another connection's commit (a rebuild, a prune) may have changed history_samples. (What it
  // did to the pending events needs nothing more here: a fold reads them from the table.)
  notice_others();
  const bool defer = defer_ && log;
  for (const auto& e : events) {
    const auto d = rerun::history_day(zone, e);
    const std::string day = rerun::format_day(d);
    // device_sample: the first result of a sample on its device that day (derived, never logged
    // as an event of its own, so rebuild derives it the same way; a deferred event says so in
    // its pending mark, 2).
    bool first = false;
    if (e.event_type == rerun::history_events::device_result && e.delta > 0 && !e.sample.empty()) {
      if (days_->of(*stmts_, d).seen.insert(sample_key(e.dimension_a, e.sample)).second) {
        // Deferred: its row is written a few commits later (fold_if_due); its event says so until then.
        if (defer)
          unwritten_.push_back({d, e.dimension_a, e.sample});
        else
          insert_sample(stmts_->sample, d, day, e.dimension_a, e.sample);
        first = true;
      }
    }
    if (log)  // bound without copies: every value outlives the run
      stmts_->log.reset()
          .bind_static(1, day)
          .bind_static(2, e.event_type)
          .bind_static(3, e.dimension_a)
          .bind_static(4, e.dimension_b)
          .bind_static(5, e.sample)
          .bind_static(6, e.observed_at)
          .bind(7, std::int64_t{e.at.time_since_epoch().count()})
          .bind(8, e.delta)
          .bind(9, std::int64_t{defer ? (first ? 2 : 1) : 0})
          .run();
    if (defer) {
      ++pending_;
      continue;
    }
    add_day(stmts_->add, d, e.event_type, e.dimension_a, e.dimension_b, e.delta);
    if (first) add_day(stmts_->add, d, rerun::history_events::device_sample, e.dimension_a, "", 1);
  }
}

void record_history_events(sqlite3* db, const std::vector<rerun::history_event>& events, const rerun::lab_zone& zone) {
  history_writer(db).record(events, zone);
}

history_store::history_store(const std::filesystem::path& outbox_file) {
  if (sqlite3_open_v2(outbox_file.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error("history: cannot open " + outbox_file.string() + ": " + msg);
  }
  sqlite3_busy_timeout(db_, 5000);
  try {
    // Reads map the file rather than copy it page by page through read(2): a 6-month answer
    // touches a few MB of month rows, most of its cost was the copying.
    sqlite::exec(db_, "PRAGMA mmap_size = 268435456", "history");
    statement t(db_, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'history_month'", "history");
    t.step();
    if (t.integer(0) != 1)
      throw std::runtime_error("history: " + outbox_file.string() +
                               " has no historical summary (not an outbox, or one from before schema 8: start the "
                               "daemon once to migrate it)");
  } catch (...) {
    sqlite3_close(db_);
    throw;
  }
}

history_store::~history_store() { sqlite3_close(db_); }

namespace {

std::string in_list(const char* column, std::size_t n, int first) {
  if (n == 0) return {};
  std::string s = std::string(" AND ") + column + " IN (";
  for (std::size_t i = 0; i < n; ++i) s += (i ? ",?" : "?") + std::to_string(first + static_cast<int>(i));
  return s + ")";
}

}  // namespace

namespace {

// A read transaction around a reader's statements: the month rows and the events not folded into
// them yet are read from one snapshot, so a fold committing in between is counted once.
struct read_snapshot {
  sqlite3* db;
  explicit read_snapshot(sqlite3* d) : db(d) { sqlite::exec(db, "BEGIN", "history"); }
  ~read_snapshot() { sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); }
  read_snapshot(const read_snapshot&) = delete;
  read_snapshot& operator=(const read_snapshot&) = delete;
};

void add_cell(month_cell& to, const month_cell& delta) {
  to.present |= delta.present;
  for (std::size_t i = 0; i < month_days; ++i) to.counts[i] += delta.counts[i];
}

}  // namespace

std::vector<rerun::summary_span> history_store::read(std::chrono::sys_days from, std::chrono::sys_days to,
                                                     const std::vector<std::string>& events,
                                                     const std::vector<std::string>& devices) const {
  read_snapshot snapshot(db_);
  const auto first_month = rerun::format_day(month_of(from)), last_month = rerun::format_day(month_of(to));
  const std::unordered_set<std::string_view> event_set(events.begin(), events.end()), device_set(devices.begin(), devices.end());
  // The counts the writer has not folded into the month rows yet (history_writer::fold_if_due),
  // by row, in the rows' key order: merged into the scan below.
  auto pending = pending_cells(db_, [&](std::string_view type, std::string_view a) {
    return (event_set.empty() || event_set.contains(type)) && (device_set.empty() || device_set.contains(a));
  });
  for (auto it = pending.begin(); it != pending.end();)
    it = std::get<0>(it->first) < first_month || std::get<0>(it->first) > last_month ? pending.erase(it) : std::next(it);
  const std::string sql = "SELECT month, event_type, dimension_a, dimension_b, days FROM history_month"
                          " WHERE month BETWEEN ?1 AND ?2" +
                          in_list("event_type", events.size(), 3) +
                          in_list("dimension_a", devices.size(), 3 + static_cast<int>(events.size())) +
                          " ORDER BY month, event_type, dimension_a, dimension_b";
  statement s(db_, sql.c_str(), "history");
  s.bind(1, first_month).bind(2, last_month);
  int i = 3;
  for (const auto& e : events) s.bind(i++, e);
  for (const auto& d : devices) s.bind(i++, d);
  std::vector<rerun::summary_span> out;
  // Months repeat across rows: parse each distinct text once.
  std::string last_text;
  std::chrono::sys_days m{};
  std::size_t lo = 0, hi = 0;  // the range's days of month m, as indexes [lo, hi]
  auto emit = [&](std::string_view month, std::string_view type, std::string_view a, std::string_view b, const month_cell& c) {
    if (month != last_text) {
      last_text = std::string(month);
      m = rerun::parse_day(month).value_or(std::chrono::sys_days{});
      lo = static_cast<std::size_t>((std::max(from, m) - m).count());
      hi = static_cast<std::size_t>((std::min(to, month_end(m)) - m).count());
    }
    // Only a row that counted a day of the range names its entity (as a day row in range did).
    const std::uint32_t range_bits = static_cast<std::uint32_t>(((std::uint64_t{1} << (hi + 1)) - 1) & ~((std::uint64_t{1} << lo) - 1));
    if ((c.present & range_bits) == 0) return;
    rerun::summary_span span;
    span.first = m + std::chrono::days{static_cast<std::int64_t>(lo)};
    span.event_type = std::string(type);
    span.dimension_a = std::string(a);
    span.dimension_b = std::string(b);
    span.values.assign(c.counts.begin() + static_cast<std::ptrdiff_t>(lo), c.counts.begin() + static_cast<std::ptrdiff_t>(hi) + 1);
    out.push_back(std::move(span));
  };
  auto next_pending = pending.begin();
  auto emit_pending_before = [&](const month_key* key) {
    for (; next_pending != pending.end() && (!key || next_pending->first < *key); ++next_pending) {
      const auto& [month, type, a, b] = next_pending->first;
      emit(month, type, a, b, next_pending->second);
    }
  };
  while (s.step()) {
    auto c = decode_cell(s.bytes(4));
    if (pending.empty()) {
      emit(s.bytes(0), s.bytes(1), s.bytes(2), s.bytes(3), c);
      continue;
    }
    const month_key key{s.text(0), s.text(1), s.text(2), s.text(3)};
    emit_pending_before(&key);
    if (next_pending != pending.end() && next_pending->first == key) add_cell(c, (next_pending++)->second);
    emit(std::get<0>(key), std::get<1>(key), std::get<2>(key), std::get<3>(key), c);
  }
  emit_pending_before(nullptr);
  return out;
}

std::size_t history_store::rebuild(const rerun::lab_zone& zone, std::optional<std::chrono::sys_days> from) {
  sqlite::exec(db_, "BEGIN IMMEDIATE", "history");
  try {
    // The counts the daemon has not folded yet go into the rows first: a partial rebuild keeps
    // the days before `from` as they are, and afterwards every event is in the rows.
    fold_pending_history(db_);
    if (!from) {
      sqlite::exec(db_, "DELETE FROM history_month", "history");
    } else {
      // Whole months from `from` on go; the month holding it loses the days from it on.
      const auto m0 = month_of(*from);
      statement del(db_, "DELETE FROM history_month WHERE month >= ?1", "history");
      del.bind(1, rerun::format_day(*from == m0 ? m0 : month_end(m0) + std::chrono::days{1})).run();
      if (*from != m0) {
        const auto cut = static_cast<std::size_t>((*from - m0).count());
        std::vector<std::tuple<std::string, std::string, std::string, month_cell>> rows;
        {
          statement sel(db_, "SELECT event_type, dimension_a, dimension_b, days FROM history_month WHERE month = ?1",
                        "history");
          sel.bind(1, rerun::format_day(m0));
          while (sel.step()) rows.emplace_back(sel.text(0), sel.text(1), sel.text(2), decode_cell(sel.bytes(3)));
        }
        statement put(db_,
                      "UPDATE history_month SET days = ?5 WHERE month = ?1 AND event_type = ?2 AND dimension_a = ?3"
                      " AND dimension_b = ?4",
                      "history");
        statement drop(db_,
                       "DELETE FROM history_month WHERE month = ?1 AND event_type = ?2 AND dimension_a = ?3"
                       " AND dimension_b = ?4",
                       "history");
        for (auto& [type, a, b, c] : rows) {
          for (std::size_t i = cut; i < month_days; ++i) c.counts[i] = 0;
          c.present &= (std::uint32_t{1} << cut) - 1;
          auto& st = c.present ? put : drop;
          st.reset().bind(1, rerun::format_day(m0)).bind(2, type).bind(3, a).bind(4, std::string_view(b.c_str(), b.size()));
          if (c.present) {
            st.bind_blob(5, encode_cell(c));
          }
          st.run();
        }
      }
    }
    {
      statement del_s(db_, "DELETE FROM history_samples WHERE id >= ?1", "history");
      del_s.bind(1, from ? first_sample_id(*from) : std::numeric_limits<std::int64_t>::min()).run();
    }
    history_writer w(db_);
    statement s(db_,
                "SELECT seq, day, event_type, dimension_a, dimension_b, sample, observed_at, at_ms, delta"
                " FROM history_events ORDER BY seq",
                "history");
    std::size_t n = 0;
    std::vector<rerun::history_event> one(1);
    // The zone may have changed: an event's day follows it. Updated after the scan, not during it.
    std::vector<std::pair<std::int64_t, std::string>> moved;
    while (s.step()) {
      auto& e = one[0];
      e.event_type = s.text(2);
      e.dimension_a = s.text(3);
      e.dimension_b = s.text(4);
      e.sample = s.text(5);
      e.observed_at = s.text(6);
      e.at = std::chrono::sys_time<std::chrono::milliseconds>(std::chrono::milliseconds(s.integer(7)));
      e.delta = s.integer(8);
      const auto day = rerun::history_day(zone, e);
      std::string text = rerun::format_day(day);
      if (text != s.text(1)) moved.emplace_back(s.integer(0), text);
      if (from && day < *from) continue;
      w.record(one, zone, false);
      ++n;
    }
    s.finish();
    statement upd(db_, "UPDATE history_events SET day = ?1 WHERE seq = ?2", "history");
    for (const auto& [seq, text] : moved) upd.reset().bind(1, text).bind(2, seq).run();
    sqlite::exec(db_, "COMMIT", "history");
    return n;
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::size_t history_store::prune_before(int year) {
  char cut[16];
  std::snprintf(cut, sizeof cut, "%04d-01-01", year);
  sqlite::exec(db_, "BEGIN IMMEDIATE", "history");
  try {
    fold_pending_history(db_);  // so the days dropped are counted from complete rows
    std::size_t n = 0;
    {
      statement counted(db_, "SELECT days FROM history_month WHERE month < ?1", "history");
      counted.bind(1, std::string_view(cut));
      while (counted.step()) n += static_cast<std::size_t>(std::popcount(decode_cell(counted.bytes(0)).present));
    }
    statement a(db_, "DELETE FROM history_month WHERE month < ?1", "history");
    a.bind(1, std::string_view(cut)).run();
    statement b(db_, "DELETE FROM history_events WHERE day < ?1", "history");
    b.bind(1, std::string_view(cut)).run();
    statement c(db_, "DELETE FROM history_samples WHERE id < ?1", "history");
    c.bind(1, first_sample_id(std::chrono::sys_days{std::chrono::year{year} / 1 / 1})).run();
    sqlite::exec(db_, "COMMIT", "history");
    return n;
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::vector<rerun::summary_row> history_store::all() const {
  read_snapshot snapshot(db_);
  auto cells = pending_cells(db_, [](std::string_view, std::string_view) { return true; });
  statement s(db_, "SELECT month, event_type, dimension_a, dimension_b, days FROM history_month", "history");
  while (s.step()) add_cell(cells[month_key{s.text(0), s.text(1), s.text(2), s.text(3)}], decode_cell(s.bytes(4)));
  std::vector<rerun::summary_row> out;
  for (const auto& [key, c] : cells) {
    const auto m = rerun::parse_day(std::get<0>(key)).value_or(std::chrono::sys_days{});
    for (std::size_t i = 0; i < month_days; ++i)
      if (c.present & (std::uint32_t{1} << i))
        out.push_back({m + std::chrono::days{static_cast<std::int64_t>(i)}, std::get<1>(key), std::get<2>(key), std::get<3>(key), c.counts[i]});
  }
  std::sort(out.begin(), out.end(), [](const rerun::summary_row& x, const rerun::summary_row& y) {
    return std::tie(x.day, x.event_type, x.dimension_a, x.dimension_b) <
           std::tie(y.day, y.event_type, y.dimension_a, y.dimension_b);
  });
  return out;
}

}  // namespace interfaced::transport
