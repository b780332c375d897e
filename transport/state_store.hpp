#pragma once
// The daemon's durable rerun state: a key/value table for documents the daemon persists whole
// (rerun_state as JSON, the last parameter configuration per device from the backend) and the
// result history behind seen(S,P) (rerun.md, qualify_rerun), implementing rerun::result_store.
//
// The tables live in the OUTBOX's SQLite file, so that a batch's outgoing messages, its history
// rows and the rerun state commit in one transaction on the outbox worker (outbox::append with
// state_changes): a crash can never keep the messages without the history (the analyser's resend
// would be forwarded again under a new Idempotency-Key) nor the history without the messages
// (the resend would be taken for a duplicate and lost).
//
// Contract:
//  - Opening creates the tables when missing; failures throw std::runtime_error naming the file
//    (a start-up error). Later failures of record() / prune() throw std::runtime_error.
//  - Reads are cheap (prepared statements, reset after every use so the connection never holds a
//    WAL snapshot) and see everything the outbox worker has committed. The result history is
//    found by (sample, parameter) through an index held in memory (schema 12, issue #17: an
//    on-disk one cost a random 1 KiB leaf per message), built from the results table at the
//    first read and caught up with the rows added since before each read (or read_scope): from
//    the outbox worker's result_feed when it follows one, else from the table. One small entry
//    per stored result, so bounded by the rerun window's prune. A read_scope groups the reads of
//    one synchronous computation into one read transaction (one snapshot, one lock round instead
//    of one per query), begun at its first read of the file; never hold one across a co_await.
//  - The daemon writes through the outbox worker (off its event loop): outbox::append with
//    state_changes, outbox::write, outbox::prune_history. record() / prune() here are the
//    synchronous result_store writes, for tools and tests.
//  - No clock: received_at and prune cutoffs are passed in.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rerun/history.hpp"
#include "rerun/qc_resolution.hpp"
#include "rerun/result_store.hpp"

struct sqlite3;

namespace interfaced::transport {

// One result for the history.
struct history_row {
  std::string sample;
  std::string parameter;
  rerun::observation o;
};

// A later copy of a dead letter's result, sent again by the analyser: not a new message (the dead
// letter, once retried, carries the result) but recorded against it, so whoever retries sees both.
// Written by the outbox (its resends table, schema 3) with the batch's other state changes.
struct resend {
  std::string message_id;  // the dead letter
  std::chrono::time_point<std::chrono::system_clock, std::chrono::milliseconds> received_at{};  // unset: when stored
  std::string device;
  std::string sample_id;
  std::string parameter;
  std::string value;
  std::string observed_at;
};

// A patient result posted with a qc_status (qc.md "run"), kept so that a re-evaluation after a
// restart still names the patient results of each run (table qc_patients, schema 9), and with
// the outbox message that carried it: its delivered_at is when the result was exported.
struct qc_patient_row {
  std::string device;
  std::string sample_id;
  std::string parameter;
  std::string observed_at;  // ISO-8601 with offset, as posted
  rerun::timestamp t{};     // its wall-clock reading (rerun::qc::patient_ref::t)
  std::string message_id;   // the outbox message that posts it
};

// Writes that must commit together with a batch's outgoing messages.
struct state_changes {
  std::vector<history_row> history;
  std::vector<std::pair<std::string, std::string>> documents;  // key -> value, replaced whole
  std::vector<resend> resends;  // only the outbox's writer stores these (write_state() ignores them)
  // Historical summary counts (rerun/history.hpp), committed with the batch: only the outbox's
  // writer stores these, with its lab zone (outbox::set_lab_zone).
  std::vector<rerun::history_event> events;
  // QC resolutions, proposals, approvals, undos and limit changes (qc.md: who, when, why; never
  // deleted): appended to the qc_audit table (schema 7) in the transaction of the posts they cause.
  std::vector<rerun::qc::audit_entry> qc_audit;
  // Patient results of QC runs (qc_patient_row), with the batch that posts them.
  std::vector<qc_patient_row> qc_patients;
  // Set: runs inside the transaction of outbox::append once its body rewrites are decided
  // (`rewritten` as append_result::rewritten), on a copy of these changes, before they are
  // written: a QC change's audit entries then count the re-tags that became corrections.
  std::function<void(state_changes&, const std::vector<bool>& rewritten)> settle{};
  [[nodiscard]] bool empty() const noexcept {
    return history.empty() && documents.empty() && resends.empty() && events.empty() && qc_audit.empty() &&
           qc_patients.empty();
  }
};

// The state tables (idempotent); throws std::runtime_error. The outbox's schema migration and
// state_store's constructor both call it.
void create_state_tables(sqlite3* db);
// Applies `c` inside the caller's open transaction; throws std::runtime_error.
void write_state(sqlite3* db, const state_changes& c);

// The results rows this process's outbox worker committed, in seq order, handed to a
// state_store's in-memory index (issue #17): it catches up from here instead of reading the
// table, so a message whose samples it has never seen needs no read transaction at all (one
// and ~6 page reads per message on the event loop before). Thread-safe: the worker publishes after
// each COMMIT, before it posts the completions; the event loop takes. The table stays the truth:
// a prune, an overflow, or a seq that does not follow the last one read sends the reader back to it.
class result_feed {
 public:
  struct row {
    std::int64_t seq = 0;
    std::string sample;
    std::string parameter;
  };
  // Worker: the rows of one committed transaction, in seq order. Never throws: rows it cannot
  // keep (no memory) send the reader to the table.
  void publish(std::vector<row> rows) noexcept;
  // Worker: results rows were deleted (a prune committed): the reader reads the table next.
  void invalidate() noexcept;
  // Reader: everything published since the last take. `whole` false: the reader must read the
  // table instead (the rows are then of no use: the table has them).
  struct taken {
    std::vector<row> rows;
    bool whole = true;
  };
  taken take();

 private:
  static constexpr std::size_t max_rows = 1 << 14;  // not taken: past it the reader reads the table
  std::mutex m_;
  std::vector<row> rows_;
  bool whole_ = true;
};

// The same, with its statements prepared once: for a connection that writes state changes with
// every batch (the outbox worker). Lives no longer than the connection.
class state_writer {
 public:
  explicit state_writer(sqlite3* db);  // the tables must exist; throws std::runtime_error
  ~state_writer();
  state_writer(const state_writer&) = delete;
  state_writer& operator=(const state_writer&) = delete;
  void write(const state_changes& c);

  // The results rows written go to `feed` once their transaction commits; the caller (the outbox
  // worker's transaction control) says where its transactions and their savepoints end.
  void feed_to(std::shared_ptr<result_feed> feed) { feed_ = std::move(feed); }
  void op_begun() noexcept;          // a savepoint: what follows may be undone alone
  void op_undone() noexcept;         // rolled back to it
  void pruned() noexcept;            // this op deleted results rows
  void committed() noexcept;         // the transaction is durable: publish
  void rolled_back() noexcept;       // the transaction is gone

 private:
  struct statements;
  std::unique_ptr<statements> stmts_;
  sqlite3* db_;
  std::shared_ptr<result_feed> feed_;
  std::vector<result_feed::row> staged_;  // written in the open transaction
  std::size_t op_mark_ = 0;               // staged_ when the current op began
  bool prune_staged_ = false;             // a prune in the open transaction
  bool prune_before_op_ = false;
};
// Deletes history rows received before `cutoff`; returns how many. Throws std::runtime_error.
std::size_t prune_results(sqlite3* db, rerun::timestamp cutoff);

class state_store final : public rerun::result_store {
 public:
  explicit state_store(const std::filesystem::path& file);
  ~state_store() override;
  state_store(const state_store&) = delete;
  state_store& operator=(const state_store&) = delete;

  // Reads made while a read_scope lives share one read transaction, begun by the first read
  // that needs the file (none when the index answers alone). Nests (only the outermost scope
  // ends it). A read throws std::runtime_error when BEGIN fails.
  class read_scope {
   public:
    explicit read_scope(const state_store& s);
    ~read_scope();
    read_scope(const read_scope&) = delete;
    read_scope& operator=(const read_scope&) = delete;

   private:
    const state_store& s_;
  };

  // A key/value document (written with state_changes::documents).
  [[nodiscard]] std::optional<std::string> get(std::string_view key) const;
  // The QC audit entries (qc_audit, schema 7) in id order; empty when the table does not exist.
  [[nodiscard]] std::vector<rerun::qc::audit_entry> qc_audit() const;
  // The patient results of QC runs (qc_patients, schema 9), in the order recorded; empty when
  // the table does not exist.
  [[nodiscard]] std::vector<qc_patient_row> qc_patients() const;
  // When the outbox delivered the message that posted this patient result (its delivered_at, ms
  // since the epoch); nullopt: not delivered (yet), or not known.
  // The results message that carries this patient result while it is still pending and was never
  // attempted (the outbox's body_rewrite may still re-tag it); nullopt otherwise.
  [[nodiscard]] std::optional<std::string> qc_patient_unsent_message(std::string_view device, std::string_view sample_id,
                                                                     std::string_view parameter,
                                                                     std::string_view observed_at) const;
  // The body of the message that posted this patient result (results or rerun values, in any
  // state), as stored: what the rules engine runs on again when QC changes its status (qc.md
  // 5.2.1); nullopt: not known, or the message was purged.
  [[nodiscard]] std::optional<std::string> qc_patient_body(std::string_view device, std::string_view sample_id,
                                                           std::string_view parameter,
                                                           std::string_view observed_at) const;
  [[nodiscard]] std::optional<std::int64_t> qc_patient_delivered_at(std::string_view device, std::string_view sample_id,
                                                                    std::string_view parameter,
                                                                    std::string_view observed_at) const;

  // rerun::result_store
  [[nodiscard]] bool has(std::string_view sample, std::string_view parameter) const override;
  [[nodiscard]] bool has_observation(std::string_view sample, std::string_view parameter,
                                     std::string_view value, std::string_view observed_at) const override;
  [[nodiscard]] std::optional<rerun::observation> latest(std::string_view sample,
                                                         std::string_view parameter) const override;
  [[nodiscard]] std::optional<rerun::observation> latest_of_parameter(std::string_view sample,
                                                                      std::string_view parameter) const override;
  void record(std::string_view sample, std::string_view parameter, rerun::observation o) override;
  std::size_t prune(rerun::timestamp cutoff) override;

  [[nodiscard]] const std::filesystem::path& file() const noexcept { return file_; }

  // The result index catches up from `feed` (the outbox worker's committed rows, outbox::results_feed)
  // instead of reading the table, once it has read the table at least once.
  void follow(std::shared_ptr<result_feed> feed) { feed_ = std::move(feed); }

  // Builds the in-memory result index now and returns how many stored results it names. It is
  // otherwise built at the first lookup, which then waits for one read of every kept result
  // (about a third of a second for a million rows): the daemon calls this at start-up, before
  // any analyser is served. Throws std::runtime_error when the table cannot be read.
  std::size_t load_index() const;

  // The dead letters (id, body) whose body names `sample` (as "sample_id":"S"), newest first: a
  // duplicate of a result they carry is a resend to record against them, not one to drop. Empty
  // when the file has no outbox tables.
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> dead_letters_naming(std::string_view sample) const;

  struct reads;  // the prepared read statements (state_store.cpp)

 private:
  std::filesystem::path file_;
  sqlite3* db_ = nullptr;
  std::unique_ptr<reads> reads_;
  mutable int read_depth_ = 0;  // open read_scopes
  mutable std::uint64_t scopes_ = 0;  // outermost read_scopes begun: each is one snapshot
  // A read_scope's transaction begins at its first read of the file, not with the scope: a
  // message whose samples the index has never seen reads nothing.
  mutable bool reading_ = false;
  void begin_reads() const;
  std::shared_ptr<result_feed> feed_;
  mutable bool table_changed_ = false;  // this connection wrote results (record, prune): read the table
  void catch_up() const;
  struct result_index;  // (sample, parameter) -> results seqs (state_store.cpp)
  mutable std::unique_ptr<result_index> index_;
  // Runs fn(row) on each stored result of `sample` whose parameter satisfies `match`, newest first,
  // until fn returns true; row columns: value, numeric, observed_at, received_at.
  template <typename Match, typename Fn>
  void each_result(std::string_view sample, Match match, Fn fn) const;
  struct dead_letter_reads;
  mutable std::unique_ptr<dead_letter_reads> dead_reads_;  // prepared on first use: the messages table is the outbox's
};

}  // namespace interfaced::transport
