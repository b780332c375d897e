#pragma once
// The historical summary's tables (spec/history.md) in the outbox's SQLite file, and the SQL that
// writes, rebuilds, prunes and reads them. What a count means and which day it lands on is
// rerun/history.hpp (pure); this is only where the rows live.
//
// Tables (migrate_history_tables, schema version 6 of the outbox file; history_month replaced
// history_summary in version 8, migrate_history_to_months):
//  - history_events:  every counted change as it happened (the summary's own source, kept per
//                     year like the summary): what `stats rebuild` recomputes the summary from.
//                     Schema 14: `pending` says whether the change is in history_month yet
//                     (0: it is, written with the event; 1: not until the next fold; 2: the same,
//                     and it was the first result of its sample on its device that day, so it
//                     also counts one device_sample).
//  - history_month:   one row per (lab-local month, event_type, dimension_a, dimension_b) holding
//                     the counts of its days (a blob: a varint mask of the days counted, then
//                     each counted day's count as a zigzag varint; schema 8 and 9 wrote a fixed
//                     128-byte form, still read), so a 6-month read is a few thousand rows, not
//                     hundreds of thousands.
//  - history_samples: (day, device, sample) seen, behind device_sample ("first result of the day"):
//                     clustered by day, in insertion order within it (schema 12: id = the
//                     day's number * 2^32 + its row's number, migrate_history_samples_to_days);
//                     the writer finds a day's samples in memory, loaded from the table at the
//                     day's first use (a few days kept). Schema 15: the deferring writer adds
//                     the rows of its first results (events pending 2) in batches a few
//                     commits later, not with each event; until then the events name them.
//
// Folding (schema 14, issue #17: CPU and bytes per durable result): the outbox worker's writer
// does not rewrite a month row per event (3 upserts a 2-result message, and each commit rewrote
// every month row page the batch touched). It marks its events pending and folds them into the
// month rows every so many events or seconds (history_writer::fold_if_due), in the worker's
// transaction, moving kv "history_month_through" to the last event folded. Readers add the
// pending events after that mark to the rows they read, in one snapshot, so every read counts
// every committed event exactly once, before and after a fold; a crash loses nothing (the events
// are committed, the next fold takes them). rebuild and prune fold first. The history_samples
// rows of the first results are written in batches too (schema 15, sample_rows), the rest at
// the fold: most commits write neither table, only the events.
//
// Contract:
//  - record_history_events() runs INSIDE the caller's open transaction -- the outbox worker's
//    group transaction, so counts commit with the outbox rows that carry the events (the QC and
//    file-report work calls it, or puts events in state_changes::events). Throws on failure, which
//    rolls back the caller's savepoint with everything else of the batch.
//  - rebuild gives exactly the rows the live path wrote (both apply the same events, in the same
//    order, through history_writer and rerun::history_day).
//  - Errors throw std::runtime_error (start-up / CLI paths; the worker turns them into failures).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rerun/history.hpp"
#include "rerun/lab_time.hpp"

struct sqlite3;

namespace interfaced::transport {

// Creates the version-6 tables and their indexes when missing (idempotent).
void migrate_history_tables(sqlite3* db);
// Version 8: creates history_month, moves history_summary's day rows into it and drops
// history_summary. Runs inside the caller's transaction; idempotent.
void migrate_history_to_months(sqlite3* db);

// Version 12 (issue #17): history_samples from a (day, device, sample) key -- with analysers
// sending interleaved samples, a random leaf per message (about 840 bytes of WAL per result in
// throughput.sh) -- to an integer key, the day's number * 2^32 + the row's number within its
// day: today's rows go to the table's end, and a day is still one range of keys.
// Runs inside the caller's transaction; idempotent.
void migrate_history_samples_to_days(sqlite3* db);

// Version 14 (issue #17): history_events.pending (see "Folding" above). Idempotent.
void migrate_history_to_deferred(sqlite3* db);

// Writes the pending events after the fold mark into history_month and moves the mark to the
// last event, in the caller's transaction. with_samples: also the history_samples rows of the
// first results among them, each checked against the day's rows (a caller that does not know
// which ones are written: rebuild, prune, a writer after a restart or a rollback).
void fold_pending_history(sqlite3* db, bool with_samples = true);

// Applies events to the summary within the caller's transaction, statements prepared once.
// defer: the outbox worker's writer, which logs events as pending and folds them (fold_if_due);
// otherwise every event is written into its month row at once (rebuild, one-shot callers).
class history_writer {
 public:
  explicit history_writer(sqlite3* db, bool defer = false);  // tables must exist
  ~history_writer();
  history_writer(const history_writer&) = delete;
  history_writer& operator=(const history_writer&) = delete;
  // log: also append to history_events (false when rebuilding from them).
  void record(const std::vector<rerun::history_event>& events, const rerun::lab_zone& zone, bool log = true);
  // Drops the days of history_samples held in memory and the rows not written yet: after a
  // rollback of what record() wrote. (Another connection's commit is noticed by record() and
  // fold_if_due themselves, through PRAGMA data_version.)
  void forget() noexcept;
  // A deferring writer folds its pending events (fold_pending_history) when `force`, when it
  // holds fold_events of them, when the first has waited fold_after, or when it does not know
  // what is pending (its first call, and after forget()). Between folds it writes the
  // history_samples rows of its first results once it holds sample_rows of them (a few pages
  // every few commits, not a page in every commit, nor thousands of rows in the fold's commit).
  // Runs in the caller's transaction (the worker calls it before each COMMIT).
  static constexpr std::size_t fold_events = 4096;
  static constexpr std::chrono::seconds fold_after{60};
  static constexpr std::size_t sample_rows = 64;
  void fold_if_due(std::chrono::steady_clock::time_point now, bool force);
  // Whether a fold may have something to do.
  [[nodiscard]] bool has_pending() const noexcept { return defer_ && (pending_ > 0 || unknown_); }

 private:
  struct statements;
  std::unique_ptr<statements> stmts_;
  struct sample_days;  // history_samples' days in memory (history_store.cpp)
  std::unique_ptr<sample_days> days_;
  bool defer_ = false;
  std::size_t pending_ = 0;  // events logged pending since the last fold (rolled-back ones too)
  bool unknown_ = true;      // pending events may exist that pending_ does not count
  std::chrono::steady_clock::time_point first_pending_{};
  // The first results this deferring writer logged whose history_samples rows it has not
  // written yet, in order. Exact while !unknown_.
  struct sample_row {
    std::chrono::sys_days day;
    std::string device, sample;
  };
  std::vector<sample_row> unwritten_;
  void write_sample_rows();
  void notice_others();  // another connection's commit: what is held in memory may be stale
};

// One-shot form of history_writer::record for a caller holding its own transaction.
void record_history_events(sqlite3* db, const std::vector<rerun::history_event>& events, const rerun::lab_zone& zone);

// Synchronous access for the CLI (`interfaced stats ...`) and the daemon's /api/stats reads.
class history_store {
 public:
  explicit history_store(const std::filesystem::path& outbox_file);  // throws std::runtime_error
  ~history_store();
  history_store(const history_store&) = delete;
  history_store& operator=(const history_store&) = delete;

  // The stored counts of the days from <= day <= to (event types / devices: empty = all), one
  // span per stored month row that counted a day of the range, cut to the range.
  [[nodiscard]] std::vector<rerun::summary_span> read(std::chrono::sys_days from, std::chrono::sys_days to,
                                                      const std::vector<std::string>& events,
                                                      const std::vector<std::string>& devices) const;
  // Recomputes the summary from history_events in `zone` (from: only days on or after it); one
  // transaction. Returns the events replayed.
  std::size_t rebuild(const rerun::lab_zone& zone, std::optional<std::chrono::sys_days> from = std::nullopt);
  // Drops every row (events, summary, samples) of years before `year`; returns the summary's day
  // counts dropped.
  std::size_t prune_before(int year);
  // Every day counted, as (day, event_type, dimension_a, dimension_b) rows in that key order
  // (tests compare live and rebuilt).
  [[nodiscard]] std::vector<rerun::summary_row> all() const;

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace interfaced::transport
