#include "transport/history_store.hpp"

#include <sqlite3.h>

#include <cstdio>
#include <stdexcept>
#include <utility>

#include "transport/sqlite_statement.hpp"

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

struct history_writer::statements {
  explicit statements(sqlite3* db)
      : db_(db),
        log(db,
            "INSERT INTO history_events (day, event_type, dimension_a, dimension_b, sample, observed_at, at_ms, delta)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            "history"),
        add(db,
            "INSERT INTO history_summary (day, event_type, dimension_a, dimension_b, event_value)"
            " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (day, event_type, dimension_a, dimension_b)"
            " DO UPDATE SET event_value = event_value + excluded.event_value",
            "history"),
        sample(db, "INSERT OR IGNORE INTO history_samples (day, device, sample) VALUES (?1, ?2, ?3)", "history") {}
  sqlite3* db_;
  statement log, add, sample;
};

history_writer::history_writer(sqlite3* db) : stmts_(std::make_unique<statements>(db)) {}
history_writer::~history_writer() = default;

void history_writer::record(const std::vector<rerun::history_event>& events, const rerun::lab_zone& zone, bool log) {
  for (const auto& e : events) {
    const std::string day = rerun::format_day(rerun::history_day(zone, e));
    if (log)
      stmts_->log.reset()
          .bind(1, day)
          .bind(2, e.event_type)
          .bind(3, e.dimension_a)
          .bind(4, e.dimension_b)
          .bind(5, e.sample)
          .bind(6, e.observed_at)
          .bind(7, std::int64_t{e.at.time_since_epoch().count()})
          .bind(8, e.delta)
          .run();
    stmts_->add.reset().bind(1, day).bind(2, e.event_type).bind(3, e.dimension_a).bind(4, e.dimension_b).bind(5, e.delta).run();
    // device_sample: the first result of a sample on its device that day (derived, never logged,
    // so rebuild derives it the same way).
    if (e.event_type == rerun::history_events::device_result && e.delta > 0 && !e.sample.empty()) {
      stmts_->sample.reset().bind(1, day).bind(2, e.dimension_a).bind(3, e.sample).run();
      if (sqlite3_changes(stmts_->db_) > 0)
        stmts_->add.reset()
            .bind(1, day)
            .bind(2, rerun::history_events::device_sample)
            .bind(3, e.dimension_a)
            .bind(4, std::string_view(""))  // not a null view: that would bind NULL
            .bind(5, std::int64_t{1})
            .run();
    }
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
    statement t(db_, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'history_summary'", "history");
    t.step();
    if (t.integer(0) != 1)
      throw std::runtime_error("history: " + outbox_file.string() +
                               " has no historical summary (not an outbox, or one from before schema 6: start the "
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

std::vector<rerun::summary_row> run_read(sqlite3* db, const std::string& sql, std::chrono::sys_days from,
                                         std::chrono::sys_days to, const std::vector<std::string>& events,
                                         const std::vector<std::string>& devices) {
  statement s(db, sql.c_str(), "history");
  s.bind(1, rerun::format_day(from)).bind(2, rerun::format_day(to));
  int i = 3;
  for (const auto& e : events) s.bind(i++, e);
  for (const auto& d : devices) s.bind(i++, d);
  std::vector<rerun::summary_row> out;
  // Days repeat across rows: parse each distinct text once.
  std::string last_text;
  std::chrono::sys_days last_day{};
  while (s.step()) {
    rerun::summary_row r;
    std::string d = s.text(0);
    if (d != last_text) {
      last_day = rerun::parse_day(d).value_or(std::chrono::sys_days{});
      last_text = std::move(d);
    }
    r.day = last_day;
    r.event_type = s.text(1);
    r.dimension_a = s.text(2);
    r.dimension_b = s.text(3);
    r.value = s.integer(4);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

std::vector<rerun::summary_row> history_store::read(std::chrono::sys_days from, std::chrono::sys_days to,
                                                    const std::vector<std::string>& events,
                                                    const std::vector<std::string>& devices) const {
  const std::string sql = "SELECT day, event_type, dimension_a, dimension_b, event_value FROM history_summary"
                          " WHERE day BETWEEN ?1 AND ?2" +
                          in_list("event_type", events.size(), 3) +
                          in_list("dimension_a", devices.size(), 3 + static_cast<int>(events.size()));
  return run_read(db_, sql, from, to, events, devices);
}

std::vector<rerun::summary_row> history_store::read_by_device(std::chrono::sys_days from, std::chrono::sys_days to,
                                                              const std::vector<std::string>& events,
                                                              const std::vector<std::string>& devices) const {
  const std::string sql = "SELECT day, event_type, dimension_a, '', SUM(event_value) FROM history_summary"
                          " WHERE day BETWEEN ?1 AND ?2" +
                          in_list("event_type", events.size(), 3) +
                          in_list("dimension_a", devices.size(), 3 + static_cast<int>(events.size())) +
                          " GROUP BY day, event_type, dimension_a";
  return run_read(db_, sql, from, to, events, devices);
}

std::size_t history_store::rebuild(const rerun::lab_zone& zone, std::optional<std::chrono::sys_days> from) {
  sqlite::exec(db_, "BEGIN IMMEDIATE", "history");
  try {
    const std::string since = from ? rerun::format_day(*from) : std::string();
    {
      statement del(db_, "DELETE FROM history_summary WHERE day >= ?1", "history");
      del.bind(1, since).run();
      statement del_s(db_, "DELETE FROM history_samples WHERE day >= ?1", "history");
      del_s.bind(1, since).run();
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
    statement a(db_, "DELETE FROM history_summary WHERE day < ?1", "history");
    a.bind(1, std::string_view(cut)).run();
    const auto n = static_cast<std::size_t>(sqlite3_changes(db_));
    statement b(db_, "DELETE FROM history_events WHERE day < ?1", "history");
    b.bind(1, std::string_view(cut)).run();
    statement c(db_, "DELETE FROM history_samples WHERE day < ?1", "history");
    c.bind(1, std::string_view(cut)).run();
    sqlite::exec(db_, "COMMIT", "history");
    return n;
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::vector<rerun::summary_row> history_store::all() const {
  return run_read(db_,
                  "SELECT day, event_type, dimension_a, dimension_b, event_value FROM history_summary"
                  " WHERE day BETWEEN ?1 AND ?2 ORDER BY day, event_type, dimension_a, dimension_b",
                  std::chrono::sys_days{std::chrono::year{0} / 1 / 1}, std::chrono::sys_days{std::chrono::year{9999} / 12 / 31},
                  {}, {});
}

}  // namespace interfaced::transport
