#pragma once
// The durable outbox: every message for the backend is stored here before the analyser gets the
// acknowledgement that completes it (style.md "persist, then acknowledge"), and stays until the
// backend took it (delivered) or refused it for good (dead, with the response kept).
//
// Contract:
//  - One SQLite file in WAL mode, synchronous=FULL: a commit is on disk when it returns.
//  - All database work runs on one worker thread owned by the outbox. Callers queue operations
//    (append, claim, mark...) and get a completion callback; the worker commits everything that
//    queued up while the previous commit ran in ONE transaction (group commit), so 32 analysers
//    finishing at once cost one fsync, not 32, and the caller's event loop never waits for a disk.
//  - A delivered mark (mark_delivered; not mark_retry / mark_dead, committed at once: the CLI and
//    the QC re-tag read them through other connections) is not durable: it
//    completes once run in the worker's open transaction (every later operation sees it) and is
//    committed with the next durable operation's commit or within 100 ms (flush() and the
//    destructor commit it at once); other connections see it then. A crash before that loses
//    only marks: those messages are sent again under the same Idempotency-Key.
//  - Completions run through `poster` (the daemon posts them to its io_context); without a poster
//    they run on the worker thread. A completion must not call the outbox synchronously back into
//    the worker (it may queue more operations).
//  - Bounded: undelivered (pending + dead + queued) >= max_messages makes accepting() false and
//    raises alarm(); the caller then refuses new transfers. An append is NEVER dropped, even past
//    the limit (a transfer accepted just before the limit must still be stored).
//  - Order: messages with the same ordering_key are delivered in append order (seq). A dead
//    message does not block its key; retrying it puts it back at its original place. A message a
//    person set aside (`set-aside`, with who, when and why) does not block its key either and is
//    sent again only after `retry` of that very message.
//  - A result sent again by the analyser whose earlier copy is a dead letter is recorded against
//    that dead letter (resends, record_resends()), so whoever retries it sees both.
//  - Survives restarts: reopening the file finds the pending messages again.
//  - Bodies are stored deflated (schema 13, body_codec.hpp); every read gives back the bytes
//    appended (or last rewritten), so a retry still sends them byte-identical.
//  - The same file holds the rerun state tables (state_store.hpp, schema version 2); the worker
//    writes them in the appends' transactions, state_store reads them on the caller's thread.
// No Asio here on purpose: the daemon's wiring and the CLI include this header.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "transport/outbox_options.hpp"
#include "transport/latency_histogram.hpp"
#include "transport/state_store.hpp"

namespace interfaced::transport {

namespace detail {
class outbox_db;  // the SQLite connection and its statements (outbox.cpp)

// Group-commit gathering (issue #17), after PostgreSQL's commit_delay / commit_siblings: until
// when the worker lets appends gather before it begins the next group. `last_appends`: how many
// appends the last durable commit stored; `commit_time`: the worker's moving average of its
// COMMITs (the disk's fsync, mostly); `oldest`: when the oldest append now queued was queued.
// No wait (`now`) below gather_siblings appends, so an analyser sending alone never waits.
// Otherwise one commit's time (at most gather_cap), and never past two commits' time after the
// oldest was queued: appends that already waited out a slow commit (an fsync spike) go at once,
// so the gathering does not lengthen the ACK's tail. A group then carries about twice the
// appends per fsync (fewer WAL pages, fsyncs and wake-ups per result).
inline constexpr std::size_t gather_siblings = 4;
inline constexpr std::chrono::microseconds gather_cap{2000};
[[nodiscard]] constexpr std::chrono::steady_clock::time_point gather_until(
    std::size_t last_appends, std::chrono::microseconds commit_time, std::chrono::steady_clock::time_point oldest,
    std::chrono::steady_clock::time_point now) noexcept {
  if (last_appends < gather_siblings || commit_time.count() <= 0) return now;
  const auto d = commit_time < gather_cap ? commit_time : gather_cap;
  const auto until = now + d;
  const auto latest = oldest + 2 * d;
  return until < latest ? until : latest;
}
}  // namespace detail

enum class message_state { pending, delivered, dead, set_aside };

[[nodiscard]] const char* to_string(message_state s) noexcept;
// "pending" | "delivered" | "dead" | "set-aside" -> state; nullopt otherwise (CLI filters).
[[nodiscard]] std::optional<message_state> message_state_from(std::string_view s) noexcept;

using outbox_clock = std::chrono::system_clock;
using outbox_time = std::chrono::time_point<outbox_clock, std::chrono::milliseconds>;

[[nodiscard]] inline outbox_time outbox_now() noexcept {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(outbox_clock::now());
}

// A file the daemon makes for a file-type report (a histogram drawn as SVG, HL7 ED data): written
// under the outbox's spool folder by the outbox worker, off the caller's event loop, to a
// temporary name, fsynced and renamed into place (the folder fsynced) BEFORE the transaction that
// stores the message naming it, so a stored message never names a file that is not on disk.
struct spool_file {
  std::filesystem::path path;  // under outbox::spool_dir()
  std::string bytes;
};

// What the daemon hands over. kind names the endpoint: results | rerun_values | rerun_request |
// auto_check | storage_presign | storage_reconcile | file_report (delivery maps it to a path).
struct new_message {
  std::string kind;
  std::string ordering_key;  // lab_report_id (or sample / device): per-key order is kept
  std::string body;          // JSON text, sent byte-identical on every attempt
  bool internal_request = false;  // x-is-internal-request: True (rerun requests are always sent so)
  std::string id;            // empty: a random UUID is assigned (the Idempotency-Key)
  // The device the message comes from (stored, never sent; history and the lab's view count
  // and search by it). Empty: the "device_id" the body names, if any (rerun bodies name a
  // report, not a device: their appender sets it).
  std::string device;
  // Set: the file is written first; if it cannot be, this message is left out of the append
  // (append_result::unwritten) and the others are stored.
  std::optional<spool_file> file;
};

// A fresh message id, as append() gives a message without one (a version 7 UUID): for a caller
// that names the message in the state it commits with it (state_changes::qc_patients).
[[nodiscard]] std::string new_message_id();

// One stored message, as the CLI and delivery see it.
struct stored_message {
  std::int64_t seq = 0;  // append order (SQLite rowid)
  std::string id;
  std::string kind;
  std::string ordering_key;
  std::string body;
  // Set: the stored body is damaged (its deflated form, schema 13, does not inflate to its
  // recorded size) and `body` is empty. Read anyway, so one bad row never stops a claim, a list
  // or `outbox show`; delivery moves such a message to the dead letters (DELIVERY-002).
  std::string body_error;
  bool internal_request = false;
  outbox_time created_at{};
  unsigned attempts = 0;
  outbox_time next_attempt_at{};
  message_state state = message_state::pending;
  int last_status = 0;         // last HTTP status, 0: none (connection error / not tried)
  std::string last_response;   // last response body (truncated), or the connection error
  std::optional<outbox_time> delivered_at;
  // Set aside by a person (`outbox set-aside`): who, when, why. Kept after a retry, for the audit.
  std::string set_aside_by;
  std::optional<outbox_time> set_aside_at;
  std::string set_aside_reason;
  std::string device;  // as stored at append (new_message::device); empty: unknown
};

// The stage a file-type report reached (file-reports.md "The stages"), stored beside its
// `file_report` message (table file_jobs, schema version 5); written by transport/file_upload.
struct file_job {
  std::string message_id;
  std::string stage;           // devices::file_stage name: prepared | presigned | uploaded | reconciled | finalized
  std::uint64_t size = 0;      // taken before presign
  std::string sha256;          // hex, taken before presign
  std::string url;             // the presigned POST url (stage presigned)
  std::string fields;          // its fields, a JSON object text, in order
  std::string path;            // the object's path in the store (canonical after finalize)
  unsigned presigns = 0;       // presign answers received (an expired policy asks again)
  unsigned uploads = 0;        // upload requests sent to the store
};

struct append_result {
  bool durable = false;          // committed to disk
  std::vector<std::string> ids;  // in the order given
  std::string error;             // when not durable
  // Messages left out because their spool file could not be written: {id, why}.
  std::vector<std::pair<std::string, std::string>> unwritten;
  // One per body_rewrite given, in order: whether it applied (false: durable false, or refused).
  std::vector<bool> rewritten;
  // The ids of the body_rewrite::otherwise messages that were stored, in order (durable only).
  std::vector<std::string> otherwise_ids;
};
using append_callback = std::function<void(append_result)>;

// A change to the stored body of a message no delivery attempt has started for (qc.md "Results
// still in the outbox are re-tagged before delivery"). A body is sent byte-identical on every
// attempt under one Idempotency-Key, so it may change only while the message is pending, has
// attempts = 0 and is not claimed by delivery (in flight: claim_due handed it out
// and no mark_* has come back yet). `rewrite` gets the stored body and returns the new one
// (nullopt: leave it). `required`: a refusal fails the whole batch it came with (nothing of it is
// stored), so a caller that built the rest of the batch on the rewrite never commits half of it.
// `otherwise`: appended in the same transaction when (and only when) the rewrite is refused or
// returns nullopt -- the guard decides on the worker, inside the transaction, so a caller cannot
// lose the race with delivery between asking and committing (qc.md: a qc_status correction post
// instead of the re-tag). Their ids are in append_result::otherwise_ids.
struct body_rewrite {
  std::string message_id;
  std::function<std::optional<std::string>(const std::string& body)> rewrite;
  bool required = false;
  std::vector<new_message> otherwise;
};

// What delivery gets from claim_due(): the head (oldest pending) message of every key not in
// `busy_keys` whose next_attempt_at has come; plus when the next not-yet-due head becomes due.
struct due_batch {
  std::vector<stored_message> messages;
  std::optional<outbox_time> next_due;  // earliest future next_attempt_at among skipped heads
  std::string read_error;               // set: the outbox could not be read (SQLite's message)
};

// How a delivery attempt ended, as recorded.
struct attempt_outcome {
  int status = 0;            // HTTP status, 0: no response (connection error, timeout)
  std::string response;      // body or error text (truncated when stored)
};

// What delivery looks at now and then to raise or clear its alarms (dead letters present, a
// message pending too long).
struct outbox_census {
  std::size_t dead = 0;
  std::size_t stuck = 0;                  // pending messages created before the cut-off
  std::vector<stored_message> oldest_stuck;  // the oldest of them (bodies left empty), at most `limit`
};

struct outbox_stats {
  std::size_t undelivered = 0;   // pending + dead + queued appends
  std::uint64_t transactions = 0;  // commits made by the worker since open
  std::uint64_t appended = 0;      // messages appended since open
  bool accepting = true;
  bool alarm = false;
  latency_histogram commit_latency;  // each group transaction: BEGIN to durable COMMIT (fsync included)
};

// Runs f on the caller's event loop; std::function so no Asio type leaks here.
using poster = std::function<void(std::function<void()>)>;

class outbox {
 public:
  // Opens (creating when missing) the file, switches to WAL, starts the worker. Throws
  // std::runtime_error when the file cannot be opened or its schema is not ours (start-up error).
  explicit outbox(const outbox_options& cfg, poster post = {});
  ~outbox();  // flushes queued operations, then stops the worker
  outbox(const outbox&) = delete;
  outbox& operator=(const outbox&) = delete;

  // Stores messages in one transaction: all durable, or none (done.durable false, error set).
  // Thread-safe; never blocks on disk.
  void append(std::vector<new_message> messages, append_callback done);
  void append(new_message message, append_callback done);
  // The same, with the rerun state writes of the batch (history rows, documents) in the same
  // transaction: messages and state are durable together or not at all. Empty messages and state
  // is a barrier: done runs once everything queued before it has been committed (or failed).
  void append(std::vector<new_message> messages, state_changes state, append_callback done);
  // The same, with body rewrites (body_rewrite) applied first in the same transaction;
  // done.rewritten says which applied.
  void append(std::vector<new_message> messages, state_changes state, std::vector<body_rewrite> rewrites,
              append_callback done);
  // One guarded body rewrite on its own: done(true) when it applied and is durable; false when
  // the message is not pending, was attempted, is in flight, is unknown, or the commit failed.
  void rewrite_pending(std::string id, std::function<std::optional<std::string>(const std::string&)> rewrite,
                       std::function<void(bool)> done);
  // Rerun state writes alone (a waiting-list refresh, a parameter configuration), off the caller's
  // thread, in queue order with the appends.
  void write(state_changes state, std::function<void(bool)> done = {});
  // Forgets history rows received before `cutoff`; done gets how many.
  void prune_history(rerun::timestamp cutoff, std::function<void(std::size_t)> done = {});

  // The lab's zone for the historical summary's days (state_changes::events, dead letters);
  // applies to everything queued after it. Default UTC.
  void set_lab_zone(rerun::lab_zone zone);
  // The results rows the worker commits (state_changes::history), for a state_store to follow
  // (state_store::follow): its index then catches up without reading the table.
  [[nodiscard]] std::shared_ptr<result_feed> results_feed() const { return results_feed_; }

  [[nodiscard]] bool accepting() const noexcept;
  [[nodiscard]] bool alarm() const noexcept;
  [[nodiscard]] outbox_stats stats() const;

  // Called (through the poster) after every commit that stored new messages: delivery wakes up.
  void on_appended(std::function<void()> f);
  // Called (through the poster) when the alarm rises (true) or clears (false).
  void on_alarm(std::function<void(bool)> f);

  // --- for delivery (asynchronous, completions through the poster) ---
  void claim_due(std::vector<std::string> busy_keys, std::size_t limit, outbox_time now,
                 std::function<void(due_batch)> done);
  void mark_delivered(std::string id, attempt_outcome o, std::function<void(bool)> done = {});
  void mark_retry(std::string id, attempt_outcome o, outbox_time next_attempt,
                  std::function<void(bool)> done = {});
  void mark_dead(std::string id, attempt_outcome o, std::function<void(bool)> done = {});
  // How many are dead, and the pending ones created before `stuck_before` (the oldest `limit`).
  // A failed read is reported as nullopt, never as "nothing".
  void census(outbox_time stuck_before, std::size_t limit, std::function<void(std::optional<outbox_census>)> done);
  // Deletes delivered messages delivered before `before` (outbox.keep_delivered_days); done gets
  // how many.
  void purge_delivered_before(outbox_time before, std::function<void(std::size_t)> done = {});

  // --- for the daemon's control socket (the CLI can also use outbox_admin on the file) ---
  // Dead (or pending in backoff) -> pending, due now. id empty: every dead message. done gets
  // how many moved.
  void retry(std::string id, std::function<void(std::size_t)> done);

  // --- for file-type reports (transport/file_upload) ---
  // The job row of a file_report message; ok false when the outbox could not be read.
  void load_file_job(std::string message_id, std::function<void(std::optional<file_job>, bool ok)> done);
  // Insert or replace, committed with an fsync before done(true).
  void save_file_job(file_job job, std::function<void(bool)> done);

  // --- spool files (new_message::file): `<outbox dir>/files` ---
  [[nodiscard]] const std::filesystem::path& spool_dir() const noexcept { return spool_dir_; }
  // Deletes a spool file whose report is finalized (queued after the commit that said so, so a
  // crash in between leaves the file to sweep_spool), and its emptied per-batch folders. Files
  // outside spool_dir() are never touched (an analyser's own file, a folder device's file).
  void remove_spool_file(std::filesystem::path file, std::function<void(bool)> done = {});
  // At start, before anything is appended: deletes every spool file no file report still needs,
  // i.e. not named by a pending, dead or set-aside file_report message whose stage is not
  // finalized (a dead letter keeps its file: `outbox retry` sends it again), and half-written
  // `.part` files. done gets how many files went.
  void sweep_spool(std::function<void(std::size_t)> done = {});

  // Runs `calls` (outbox operations, queued on this thread) and hands what they queued to the
  // worker at once, under one lock and with at most one wake-up: the worker never takes the
  // first without the rest (delivery's mark and next claim share one transaction and one
  // completion hand-off). An exception from `calls` is rethrown once what it queued is queued.
  void together(const std::function<void()>& calls);

  // Waits (blocking, bounded) until every operation queued so far has been committed; for
  // shutdown ("flush the outbox") and tests. False on timeout.
  bool flush(std::chrono::milliseconds timeout);

  struct op;

 private:
  void enqueue(std::unique_ptr<op> o, std::size_t new_messages);
  void run();
  void finish(std::function<void()> f);
  void wake_worker() noexcept;
  // On the worker, mutex_ held through `lock`: sleeps until woken, or until *until (none: no limit).
  // by_ops false: a queued op does not wake it (stop and flush still do).
  void wait_for_work(std::unique_lock<std::mutex>& lock, const std::chrono::steady_clock::time_point* until,
                     bool by_ops = true);
  void update_alarm();

  std::unique_ptr<detail::outbox_db> db_;
  std::shared_ptr<result_feed> results_feed_ = std::make_shared<result_feed>();
  poster post_;
  std::size_t max_messages_;
  std::filesystem::path write_fault_file_;
  std::filesystem::path spool_dir_;

  mutable std::mutex mutex_;
  // Bumped by wake_worker(); the worker sleeps on it (a futex word, outbox.cpp says why).
  std::atomic<std::uint32_t> wake_word_{0};
  std::condition_variable idle_;
  std::deque<std::unique_ptr<op>> queue_;
  bool stopping_ = false;
  bool busy_ = false;
  bool waiting_ = false;  // the worker sleeps on wake_word_ (enqueue wakes it only then)
  bool open_ = false;     // the worker holds a transaction with uncommitted delivery bookkeeping
  int flushing_ = 0;      // flush() callers waiting: the open transaction commits now
  std::function<void()> on_appended_;
  std::function<void(bool)> on_alarm_;

  std::atomic<std::size_t> undelivered_{0};
  std::atomic<std::uint64_t> transactions_{0};
  latency_histogram commit_latency_;  // written by the worker, read by stats(); under mutex_
  std::atomic<std::uint64_t> appended_{0};
  std::atomic<bool> alarm_{false};
  std::thread worker_;
};

// Synchronous access to an outbox file for the CLI (`interfaced outbox ...`), usable while the
// daemon runs (WAL: readers do not block the writer; writes wait up to busy_timeout).
struct message_summary {
  std::string id;
  std::string kind;
  std::string ordering_key;
  outbox_time created_at{};
  message_state state = message_state::pending;
  unsigned attempts = 0;
  std::chrono::milliseconds age{0};  // now - created_at
  outbox_time next_attempt_at{};
  int last_status = 0;
  std::size_t resends = 0;  // later copies recorded against this (dead) message
  std::string orphan_path;  // a dead file report whose object was stored: the object's path
};

// `outbox list` filters; every one set must hold.
struct list_filter {
  bool include_delivered = false;          // without a state filter: delivered ones too
  std::optional<message_state> state;      // only this state
  std::string sample;                      // only messages whose body names this sample id
  std::optional<outbox_time> since;        // only messages created at or after
  bool orphans = false;                    // only dead file reports whose object is stored
  std::string device;                      // only messages of this device (stored_message::device)
  std::optional<outbox_time> until;        // only messages created before
  std::size_t limit = 0;                   // at most this many (0: all)
  bool newest_first = false;               // newest first (with limit: the newest ones)
};

class outbox_admin {
 public:
  explicit outbox_admin(const std::filesystem::path& file);  // throws std::runtime_error
  ~outbox_admin();
  outbox_admin(const outbox_admin&) = delete;
  outbox_admin& operator=(const outbox_admin&) = delete;

  // Pending and dead messages (delivered ones only with include_delivered), oldest first. A
  // sample filter is answered from the samples each body names (schema 8; a column of the
  // body's row since 15) through an in-memory index built at its first use; no body is
  // inflated or parsed for it.
  [[nodiscard]] std::vector<message_summary> list(bool include_delivered = false,
                                                  outbox_time now = outbox_now());
  [[nodiscard]] std::vector<message_summary> list(const list_filter& f, outbox_time now = outbox_now());
  // The later copies recorded against a dead letter, oldest first.
  [[nodiscard]] std::vector<resend> resends_of(const std::string& id);
  // Pending or dead -> set-aside, audited (by, reason, now). Returns how many moved (0: no such
  // message, or delivered / already set aside).
  std::size_t set_aside(const std::string& id, const std::string& by, const std::string& reason,
                        outbox_time now = outbox_now());
  [[nodiscard]] std::optional<stored_message> show(const std::string& id);
  // The stage row of a file_report message, if any.
  [[nodiscard]] std::optional<file_job> file_job_of(const std::string& id);
  // Dead (or pending in backoff) -> pending, due now. Returns how many moved (0: no such message).
  std::size_t retry(const std::string& id);
  std::size_t retry_all_dead();
  // Deletes delivered messages delivered before `before`; returns how many.
  std::size_t purge_delivered_before(outbox_time before);

 private:
  std::unique_ptr<detail::outbox_db> db_;
};

}  // namespace interfaced::transport
