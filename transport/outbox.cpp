#include "transport/outbox.hpp"

#include "devices/file_report.hpp"
#include "transport/body_codec.hpp"
#include "transport/durable_file.hpp"
#include "transport/history_store.hpp"
#include "transport/sqlite_statement.hpp"
#include "transport/sqlite_wal_vfs.hpp"

#include <sqlite3.h>

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <exception>
#include <ctime>
#include <cstdint>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <stdexcept>
#include <set>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace interfaced::transport {

namespace {

// Enough of a refused message's answer for a person to see why; a backend that returns a whole
// HTML error page must not grow the file without bound.
constexpr std::size_t max_stored_response = 64 * 1024;

// Ops taken per transaction: bounds how long one commit holds the write lock and how long the
// first caller of a huge burst waits.
constexpr std::size_t max_ops_per_transaction = 4096;

// How long a delivered mark may wait in the open transaction for a durable commit to ride
// on (outbox::run): other connections (the CLI, the lab's view) see a delivery this much later.
constexpr std::chrono::milliseconds deferred_commit_after{100};

std::int64_t to_ms(outbox_time t) noexcept { return t.time_since_epoch().count(); }
outbox_time from_ms(std::int64_t ms) noexcept { return outbox_time(std::chrono::milliseconds(ms)); }

std::string new_uuid();

// Process-wide, before any connection opens (static initialisation of the library that opens
// them): SQLite's memory statistics put every sqlite3_malloc / sqlite3_free of every connection
// behind one global mutex, and the worker's connection and the loop's readers (state_store,
// history_store) then contend on it (issue #17: 12 % of the daemon's futex calls in
// throughput.sh). Nothing here reads those statistics or sets a soft heap limit.
[[maybe_unused]] const bool sqlite_memstatus_off = [] { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK; }();

}  // namespace

std::string new_message_id() { return new_uuid(); }

namespace {

std::string new_uuid() {
  // Version 7 UUID (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. Unique across
  // restarts and processes without coordination, like version 4, but ids made one after the
  // other sort together, so the outbox's unique index on id grows at its right edge: an append
  // dirties one index page instead of one random page per message (fewer bytes per fsync).
  thread_local std::mt19937_64 rng{[] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }()};
  std::array<unsigned char, 16> b{};
  for (std::size_t i = 0; i < b.size(); i += 8) {
    auto v = rng();
    for (std::size_t j = 0; j < 8; ++j) b[i + j] = static_cast<unsigned char>(v >> (8 * j));
  }
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  for (std::size_t i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (8 * (5 - i)));
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x70);
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);
  static constexpr char hex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(hex[b[i] >> 4]);
    s.push_back(hex[b[i] & 0x0F]);
  }
  return s;
}

message_state state_from(std::string_view s) {
  return message_state_from(s).value_or(message_state::pending);
}

std::string truncated(std::string s) {
  if (s.size() > max_stored_response) s.resize(max_stored_response);
  return s;
}

// Every statement of this file names itself "outbox" in its errors.
class statement : public sqlite::statement {
 public:
  statement(sqlite3* db, const char* sql) : sqlite::statement(db, sql, "outbox") {}
};
using sqlite::finish_on_exit;

// SELECT of the columns read_message reads, `body` in the body's place, then `rest` (FROM ...).
// The body lives in message_bodies since schema 12 (migrate_to_12): read with its message.
std::string select_message(const char* body, const char* rest) {
  return std::string("SELECT seq, id, kind, ordering_key, ") + body +
         ", internal, created_at, attempts, next_attempt_at, state, last_status, last_response, delivered_at,"
         " set_aside_by, set_aside_at, set_aside_reason, device " +
         rest;
}
constexpr const char* stored_body = "(SELECT b.body FROM message_bodies b WHERE b.seq = messages.seq)";

// The values a body gives a JSON member as text ("KEY":"VALUE", as the bodies are written:
// compact, dump()ed), in order, repeats included.
std::vector<std::string_view> members_named_in(std::string_view body, std::string_view key) {
  std::vector<std::string_view> out;
  for (auto at = body.find(key); at != std::string_view::npos; at = body.find(key, at)) {
    const auto start = at + key.size();
    const auto end = body.find('"', start);
    if (end == std::string_view::npos) break;
    if (end > start) out.push_back(body.substr(start, end - start));
    at = end;
  }
  return out;
}

// The device a body names ("device_id":"ID", as results bodies carry it); empty for one that
// names none (rerun values and requests name a lab report, not a device).
std::string device_named_in(std::string_view body) {
  const auto found = members_named_in(body, "\"device_id\":\"");
  return found.empty() ? std::string() : std::string(found.front());
}

// Every sample id a body names ("sample_id":"S", results, rerun values, QC corrections naming
// several patients' samples), each once: what a search by sample finds it under.
std::vector<std::string_view> samples_named_in(std::string_view body) {
  auto found = members_named_in(body, "\"sample_id\":\"");
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  return found;
}

stored_message read_message(const sqlite::statement& s) {
  stored_message m;
  m.seq = s.integer(0);
  m.id = s.text(1);
  m.kind = s.text(2);
  m.ordering_key = s.text(3);
  if (auto body = unpack_body(s.bytes(4))) m.body = std::move(*body);
  else m.body_error = damaged_body;
  m.internal_request = s.integer(5) != 0;
  m.created_at = from_ms(s.integer(6));
  m.attempts = static_cast<unsigned>(s.integer(7));
  m.next_attempt_at = from_ms(s.integer(8));
  m.state = state_from(s.text(9));
  m.last_status = static_cast<int>(s.integer(10));
  m.last_response = s.text(11);
  if (!s.is_null(12)) m.delivered_at = from_ms(s.integer(12));
  if (!s.is_null(13)) m.set_aside_by = s.text(13);
  if (!s.is_null(14)) m.set_aside_at = from_ms(s.integer(14));
  if (!s.is_null(15)) m.set_aside_reason = s.text(15);
  m.device = s.text(16);
  return m;
}

}  // namespace

const char* to_string(message_state s) noexcept {
  switch (s) {
    case message_state::pending: return "pending";
    case message_state::delivered: return "delivered";
    case message_state::dead: return "dead";
    case message_state::set_aside: return "set-aside";
  }
  return "pending";
}

std::optional<message_state> message_state_from(std::string_view s) noexcept {
  if (s == "pending") return message_state::pending;
  if (s == "delivered") return message_state::delivered;
  if (s == "dead") return message_state::dead;
  if (s == "set-aside") return message_state::set_aside;
  return std::nullopt;
}

namespace detail {

class outbox_db {
 public:
  explicit outbox_db(const std::filesystem::path& file) {
    if (file.has_parent_path()) {
      std::error_code ec;
      std::filesystem::create_directories(file.parent_path(), ec);  // open() reports the failure
    }
    // The batched-WAL VFS (sqlite_wal_vfs.hpp): a group commit's frames reach the WAL in one
    // write(2), not two per frame; safe here because every commit syncs (synchronous=FULL below).
    if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        sqlite::batched_wal_vfs()) != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw std::runtime_error("outbox: cannot open " + file.string() + ": " + msg);
    }
    // Patient data: owner only. Before the first write, so SQLite gives the -wal and -shm files
    // the same mode. A failure (a file another user owns) is ignored: the file is open already.
    std::error_code perm_ec;
    std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                                 std::filesystem::perm_options::replace, perm_ec);
    try {
      // The CLI writes while the daemon runs: wait for the lock rather than fail.
      sqlite3_busy_timeout(db_, 5000);
      // Bytes written per durable result (issue #17): a commit appends every page it touched to
      // the WAL, whole, and a group commit touches a dozen pages per message (the message, its
      // id and two pending indexes, the rerun history row and its two indexes, then the delivery
      // mark), most of them index leaves at random places. 1 KiB pages instead of 4 KiB: 21,510
      // -> 10,087 bytes written per result in throughput.sh (32 x 200 x 2); 512 bytes gained
      // nothing more (7,512 vs 7,704: the kernel counts and writes 4 KiB pages). Only a new,
      // empty file takes the size (it must precede WAL mode); an existing outbox keeps its own.
      exec("PRAGMA page_size=1024");
      exec("PRAGMA journal_mode=WAL");
      // A checkpoint copies each page the WAL holds once, however many commits rewrote it: the
      // WAL may grow to 32,000 pages (32 MiB at 1 KiB) instead of SQLite's 1,000 before one runs.
      // 8,000 pages: 10,087 -> 7,704 bytes per result; 8,000 -> 32,000 (schema 10): about
      // 10,300 -> 8,700 (the index leaves and summary rows every batch touches are copied once
      // per checkpoint, not once per 8 MiB). The price: a WAL file of up to 32 MiB beside the
      // outbox, and a longer (but 4 times rarer) checkpoint on the worker.
      exec("PRAGMA wal_autocheckpoint=32000");
      // FULL: in WAL mode NORMAL may lose the last commits on power loss, and a commit here is
      // the promise behind an ACK already sent to an analyser.
      // Every commit is FULL: delivery bookkeeping no longer commits on its own (it waits in the
      // worker's open transaction for the next durable commit, outbox::run), so a commit's sync
      // level is not known when its transaction begins.
      exec("PRAGMA synchronous=FULL");
      check_integrity(file);
      migrate();
      check_schema(file);
      prepare();
    } catch (...) {
      finalize();
      sqlite3_close(db_);
      throw;
    }
  }
  ~outbox_db() {
    finalize();  // every statement first: sqlite3_close refuses a connection with live ones
    sqlite3_close(db_);
  }
  outbox_db(const outbox_db&) = delete;
  outbox_db& operator=(const outbox_db&) = delete;

  void exec(const char* sql) { sqlite::exec(db_, sql, "outbox"); }
  // Transaction control for the worker's group transaction and its per-op savepoints.
  enum class tx { begin, commit, rollback, savepoint, release, rollback_to };
  void control(tx t) {
    statement& s = t == tx::begin      ? stmts_->begin
                   : t == tx::commit   ? stmts_->commit
                   : t == tx::rollback ? stmts_->rollback
                   : t == tx::savepoint ? stmts_->savepoint
                   : t == tx::release  ? stmts_->release
                                       : stmts_->rollback_to;
    // The state writer's staged results rows follow the transaction (state_writer::feed_to): an
    // op's go with its savepoint, all go with a rollback, and a commit publishes them before the
    // worker posts any completion (a caller then finds its rows fed).
    if (t == tx::rollback_to) state_->op_undone();
    if (t == tx::rollback) state_->rolled_back();
    sqlite::run_once(s);
    if (t == tx::savepoint) state_->op_begun();
    if (t == tx::commit) state_->committed();
  }
  [[nodiscard]] int changes() const noexcept { return sqlite3_changes(db_); }
  // For the state tables' writes (state_store.hpp), inside the worker's transaction.
  [[nodiscard]] sqlite3* handle() const noexcept { return db_; }
  void write_state(const state_changes& c) {
    state_->write(c);
    if (!c.events.empty()) history_->record(c.events, zone_);
    for (const auto& e : c.qc_audit)
      stmts_->insert_qc_audit.reset()
          .bind(1, e.id)
          .bind(2, e.kind)
          .bind(3, e.result_id)
          .bind(4, e.device)
          .bind(5, e.parameter)
          .bind(6, e.code)
          .bind(7, e.by)
          .bind(8, e.reason)
          .bind(9, e.at)
          .bind(10, e.ref)
          .bind(11, e.detail)
          .run();
    for (const auto& q : c.qc_patients)
      stmts_->insert_qc_patient.reset()
          .bind(1, q.device)
          .bind(2, q.sample_id)
          .bind(3, q.parameter)
          .bind(4, q.observed_at)
          .bind(5, static_cast<std::int64_t>(q.t.time_since_epoch().count()))
          .bind(6, q.message_id)
          .run();
    for (const auto& r : c.resends)
      stmts_->insert_resend.reset()
          .bind(1, r.message_id)
          .bind(2, to_ms(r.received_at == outbox_time{} ? outbox_now() : r.received_at))
          .bind(3, r.device)
          .bind(4, r.sample_id)
          .bind(5, r.parameter)
          .bind(6, r.value)
          .bind(7, r.observed_at)
          .run();
  }

  std::size_t count_undelivered() {
    auto& s = stmts_->count_undelivered.reset();
    finish_on_exit guard{s};
    s.step();
    return static_cast<std::size_t>(s.integer(0));
  }

  void insert(const new_message& m, outbox_time now) {
    // Bound without copies: every value lives until its statement's run() (the same expression).
    stmts_->insert.reset()
        .bind_static(1, m.id)
        .bind_static(2, m.kind)
        .bind_static(3, m.ordering_key)
        .bind(5, std::int64_t{m.internal_request ? 1 : 0})
        .bind(6, to_ms(now))
        .bind(7, to_ms(now))
        .bind_static(8, m.device.empty() ? device_named_in(m.body) : m.device)
        .run();
    const auto seq = sqlite3_last_insert_rowid(db_);
    stmts_->insert_body.reset()
        .bind(1, seq)
        .bind_blob_static(2, pack_body(m.body))
        .bind_static(3, samples_column(samples_named_in(m.body)))
        .run();
    if (fresh_bodies_.size() >= max_fresh_bodies) fresh_bodies_.erase(fresh_bodies_.begin());  // the oldest
    fresh_bodies_.emplace(seq, m.body);
    samples_.wrote = true;
    if (!pending_stale_) pending_[m.ordering_key].insert(seq);
  }

  due_batch claim_due(const std::vector<std::string>& busy_keys, std::size_t limit, outbox_time now) {
    const std::unordered_set<std::string> busy(busy_keys.begin(), busy_keys.end());
    due_batch out;
    std::vector<std::int64_t> seqs;
    {
      // Due heads, soonest first, until `limit` free ones: the walk stops early, so its cost
      // follows the messages taken, not the number of keys (one per sample: as many as messages).
      // A message with an older pending one in its key is not a head (pending_keys()).
      const auto& pending = pending_keys();
      auto& s = stmts_->due_pending.reset().bind(1, to_ms(now));
      finish_on_exit guard{s};
      while (seqs.size() < limit && s.step()) {
        const std::string key = s.text(1);
        if (busy.contains(key)) continue;
        const auto k = pending.find(key);
        if (k == pending.end() || k->second.empty() || *k->second.begin() != s.integer(0)) continue;
        seqs.push_back(s.integer(0));
      }
    }
    {
      auto& s = stmts_->next_due.reset().bind(1, to_ms(now));
      finish_on_exit guard{s};
      if (s.step() && !s.is_null(0)) out.next_due = from_ms(s.integer(0));
    }
    for (const auto seq : seqs) {
      // A body this process appended is taken from memory, not inflated again; copied, since
      // the loop and a runner may both claim a head before either has it (one drops its copy).
      const auto fresh = fresh_bodies_.find(seq);
      auto m = one_by(fresh == fresh_bodies_.end() ? stmts_->by_seq : stmts_->head_by_seq, seq);
      if (!m) continue;
      if (fresh != fresh_bodies_.end()) m->body = fresh->second;  // the row due_pending gave: same seq
      claimed_.insert(m->id);
      out.messages.push_back(std::move(*m));
    }
    return out;
  }

  // body_rewrite's guard: pending, never attempted, not handed to delivery, stored by this process.
  // Returns whether applied.
  bool rewrite_body(const body_rewrite& r) {
    if (claimed_.contains(r.message_id)) return false;
    const auto m = by_id(r.message_id);
    if (!m || m->state != message_state::pending || m->attempts != 0 || m->seq <= seq_at_open_ || !m->body_error.empty())
      return false;
    auto body = r.rewrite ? r.rewrite(m->body) : std::nullopt;
    if (!body) return false;
    stmts_->rewrite_body.reset().bind(1, r.message_id).bind_blob(2, pack_body(*body)).run();
    if (changes() != 1) return false;
    if (auto fresh = fresh_bodies_.find(m->seq); fresh != fresh_bodies_.end()) fresh->second = std::move(*body);
    return true;
  }
  void claimed(const std::string& id) { claimed_.insert(id); }

  // The pending messages' seqs by ordering key, for claim_due (worker only). Schema
  // 11 (issue #17) dropped the pending_by_key index that answered "the oldest pending message of
  // this key": its entries are keyed by report / sample, so every append and every delivered
  // mark rewrote a leaf at a random place (about 2 KiB of WAL per message in throughput.sh).
  // Rebuilt from the pending_due index when another connection committed since (the CLI's
  // retry or set-aside: PRAGMA data_version), and after a rolled-back op or commit.
  const std::unordered_map<std::string, std::set<std::int64_t>>& pending_keys() {
    if (sqlite::data_version_moved(stmts_->data_version, data_version_)) pending_stale_ = true;
    if (pending_stale_) {
      pending_.clear();
      auto& s = stmts_->all_pending.reset();
      finish_on_exit guard{s};
      while (s.step()) pending_[s.text(0)].insert(s.integer(1));
      pending_stale_ = false;
    }
    return pending_;
  }
  // Before each COMMIT of the worker's transaction (force: the last one before the outbox closes).
  void fold_history(bool force) { history_->fold_if_due(std::chrono::steady_clock::now(), force); }
  // After the worker's last transaction: a transaction of its own for what is still pending; a
  // failure leaves it pending (the next start folds it).
  void fold_history_at_close() noexcept {
    if (!history_->has_pending()) return;
    try {
      control(tx::begin);
      fold_history(true);
      control(tx::commit);
    } catch (...) {
      try {
        control(tx::rollback);
      } catch (...) {
      }
    }
  }
  // The state writer's results rows, to the feed once committed (state_writer::feed_to; control()
  // tells it where transactions and savepoints end).
  void feed_results_to(std::shared_ptr<result_feed> feed) { state_->feed_to(std::move(feed)); }
  void results_pruned() noexcept { state_->pruned(); }
  // After a rollback: the in-memory indexes (pending keys, message samples, history samples, fresh bodies) may
  // hold what the database no longer does.
  void forget_indexes() noexcept {
    pending_stale_ = true;
    fresh_bodies_.clear();  // a rolled-back append's seq is given again
    samples_.wrote = true;  // its next use counts the rows: fewer than its entries rebuilds it
    if (history_) history_->forget();
  }

  // The seqs of the messages whose body names `sample` (message_bodies.samples), or of a sample
  // whose hash it shares: candidates to check against that column. Schema 12 (issue #17) dropped
  // the (sample, seq) key of message_samples: with analysers sending interleaved samples every
  // append wrote a leaf at a random place (about 700 bytes of WAL per result in throughput.sh);
  // since 15 the samples are a column of the body's row (body_codec.hpp), searched here. Built by
  // one scan at the first search, then caught up with the rows after the last seq seen when
  // another connection (the daemon's worker, for the lab view's and the CLI's reader) or this one
  // wrote; rebuilt when messages went (a purge, a rolled-back append): one entry per sample a
  // kept message names, so bounded by the messages kept.
  std::vector<std::int64_t> samples_of(std::string_view sample) {
    auto& ix = samples_;
    // The version is read before the rows: a commit after it is caught up next time.
    if (sqlite::data_version_moved(stmts_->data_version, ix.version)) ix.wrote = true;
    if (ix.wrote) {
      ix.wrote = false;
      catch_up_samples();
      std::size_t rows = 0;
      {
        auto& c = stmts_->count_messages.reset();
        finish_on_exit guard{c};
        c.step();
        rows = static_cast<std::size_t>(c.integer(0));
      }
      if (rows != ix.rows) {  // messages went (a purge, a rolled-back append): from the start
        ix.by_sample.clear();
        ix.last_seq = 0;
        ix.rows = 0;
        catch_up_samples();
      }
    }
    const auto it = ix.by_sample.find(std::hash<std::string_view>{}(sample));
    return it == ix.by_sample.end() ? std::vector<std::int64_t>{} : it->second;
  }
  // samples_of's index: the samples of the messages after the last seq it holds.
  void catch_up_samples() {
    auto& ix = samples_;
    auto& s = stmts_->samples_since.reset().bind(1, ix.last_seq);
    finish_on_exit guard{s};
    while (s.step()) {
      ix.last_seq = s.integer(0);
      for (const auto sample : samples_in_column(s.bytes(1)))
        ix.by_sample[std::hash<std::string_view>{}(sample)].push_back(ix.last_seq);
      ++ix.rows;
    }
  }
  // A message of `key` moved from `was` to `now`.
  void note_state(const std::string& key, std::int64_t seq, message_state was, message_state now) {
    if (pending_stale_ || was == now) return;
    if (was == message_state::pending) {
      if (auto k = pending_.find(key); k != pending_.end()) {
        k->second.erase(seq);
        if (k->second.empty()) pending_.erase(k);
      }
    } else if (now == message_state::pending) {
      pending_[key].insert(seq);
    }
  }

  std::optional<stored_message> by_id(const std::string& id) { return one_by(stmts_->by_id, std::string_view(id)); }
  // The message a statement of select_message finds by its ?1 (an id, or a seq).
  template <class Key>
  static std::optional<stored_message> one_by(statement& s, Key key) {
    s.reset().bind(1, key);
    finish_on_exit guard{s};
    if (!s.step()) return std::nullopt;
    return read_message(s);
  }

  // Returns whether the message was undelivered before (so the caller can count it out).
  bool mark(const std::string& id, message_state st, const attempt_outcome& o, outbox_time next,
            outbox_time now) {
    claimed_.erase(id);
    struct row {
      std::int64_t seq = 0;
      std::string ordering_key;
      message_state state = message_state::pending;
      std::string device;
      std::string kind;
    };
    std::optional<row> before;
    {
      auto& h = stmts_->mark_head.reset().bind_static(1, id);
      finish_on_exit guard{h};
      if (h.step()) before = row{h.integer(0), h.text(1), state_from(h.text(2)), h.text(3), h.text(4)};
    }
    if (!before) return false;
    fresh_bodies_.erase(before->seq);  // an attempt ended: a retry, if any, reads the table
    auto& s = stmts_->mark.reset()
                  .bind(1, to_string(st))
                  .bind(2, std::int64_t{o.status})
                  .bind(3, truncated(o.response))
                  .bind(4, to_ms(next))
                  .bind(5, before->seq);
    if (st == message_state::delivered) s.bind(6, to_ms(now));
    s.run();
    // As the statement's CASE: a set-aside message stays set aside unless it was delivered.
    if (changes() > 0)
      note_state(before->ordering_key, before->seq, before->state,
                 before->state == message_state::set_aside && st != message_state::delivered ? before->state : st);
    // history.md: device_dead_letter (device, endpoint), on the day it died, with the change.
    if (st == message_state::dead && before->state != message_state::dead && changes() > 0) {
      rerun::history_event e;
      e.event_type = std::string(rerun::history_events::device_dead_letter);
      e.dimension_a = before->device.empty() ? "unknown" : before->device;
      e.dimension_b = before->kind;
      e.at = now;
      history_->record({e}, zone_);
    }
    return before->state != message_state::delivered;
  }

  std::size_t retry(const std::string& id, outbox_time now) {
    pending_stale_ = true;  // dead -> pending: rare, a rebuild is simplest
    if (id.empty()) {
      stmts_->retry_all.reset().bind(1, to_ms(now)).run();
    } else {
      stmts_->retry_one.reset().bind(1, to_ms(now)).bind(2, id).run();
    }
    return static_cast<std::size_t>(changes());
  }

  std::vector<message_summary> list(const list_filter& f, outbox_time now) {
    std::vector<message_summary> out;
    // A sample's messages are named by the in-memory index (samples_of), each checked against its
    // body row's samples (a seek by seq: the index may hold a hash twin or a purged message);
    // the rest filters the messages found. Prepared per call (an admin / lab-view read, not the
    // worker's hot path).
    std::string seqs;
    if (!f.sample.empty()) {
      for (const auto seq : samples_of(f.sample)) seqs += (seqs.empty() ? "" : ",") + std::to_string(seq);
      if (seqs.empty()) return out;
    }
    std::string sql =
        "SELECT id, kind, ordering_key, state, attempts, created_at, next_attempt_at, last_status,"
        " (SELECT COUNT(*) FROM resends r WHERE r.message_id = messages.id),"
        " (SELECT f.path FROM file_jobs f WHERE f.message_id = messages.id"
        "  AND f.stage IN ('uploaded', 'reconciled'))";
    sql += f.sample.empty() ? " FROM messages WHERE 1"
                            : " FROM messages WHERE messages.seq IN (" + seqs +
                                  ") AND EXISTS (SELECT 1 FROM message_bodies b WHERE b.seq = messages.seq AND " +
                                  names_sample_sql("b.samples", "?3") + ")";
    sql +=
        " AND (?2 IS NULL OR state = ?2) AND (?2 IS NOT NULL OR ?1 = 1 OR state <> 'delivered')"
        " AND (?4 IS NULL OR created_at >= ?4)"
        // --orphans: dead file reports whose object was stored (file-reports.md stage 4).
        " AND (?5 IS NULL OR (state = 'dead' AND kind = 'file_report' AND EXISTS (SELECT 1 FROM file_jobs f"
        "  WHERE f.message_id = messages.id AND f.stage IN ('uploaded', 'reconciled'))))"
        " AND (?6 IS NULL OR device = ?6) AND (?7 IS NULL OR created_at < ?7)";
    sql += f.newest_first ? " ORDER BY messages.seq DESC" : " ORDER BY messages.seq";
    if (f.limit > 0) sql += " LIMIT ?8";
    statement s(db_, sql.c_str());
    s.bind(1, std::int64_t{f.include_delivered ? 1 : 0});
    if (f.state) s.bind(2, to_string(*f.state));
    if (!f.sample.empty()) s.bind(3, f.sample);
    if (f.since) s.bind(4, to_ms(*f.since));
    if (f.orphans) s.bind(5, std::int64_t{1});
    if (!f.device.empty()) s.bind(6, f.device);
    if (f.until) s.bind(7, to_ms(*f.until));
    if (f.limit > 0) s.bind(8, static_cast<std::int64_t>(f.limit));
    while (s.step()) {
      message_summary m;
      m.id = s.text(0);
      m.kind = s.text(1);
      m.ordering_key = s.text(2);
      m.state = state_from(s.text(3));
      m.attempts = static_cast<unsigned>(s.integer(4));
      m.created_at = from_ms(s.integer(5));
      m.age = now - m.created_at;
      m.next_attempt_at = from_ms(s.integer(6));
      m.last_status = static_cast<int>(s.integer(7));
      m.resends = static_cast<std::size_t>(s.integer(8));
      if (m.state == message_state::dead) m.orphan_path = s.text(9);
      out.push_back(std::move(m));
    }
    return out;
  }

  std::size_t set_aside(const std::string& id, const std::string& by, const std::string& reason, outbox_time now) {
    stmts_->set_aside.reset().bind(1, id).bind(2, by).bind(3, to_ms(now)).bind(4, reason).run();
    return static_cast<std::size_t>(changes());
  }

  outbox_census census(outbox_time stuck_before, std::size_t limit) {
    outbox_census c;
    {
      auto& s = stmts_->count_dead.reset();
      finish_on_exit guard{s};
      s.step();
      c.dead = static_cast<std::size_t>(s.integer(0));
    }
    {
      auto& s = stmts_->count_stuck.reset().bind(1, to_ms(stuck_before));
      finish_on_exit guard{s};
      s.step();
      c.stuck = static_cast<std::size_t>(s.integer(0));
    }
    auto& s = stmts_->oldest_stuck.reset().bind(1, to_ms(stuck_before)).bind(2, static_cast<std::int64_t>(limit));
    finish_on_exit guard{s};
    while (s.step()) {
      auto m = read_message(s);
      m.body.clear();
      c.oldest_stuck.push_back(std::move(m));
    }
    return c;
  }

  std::vector<resend> resends_of(const std::string& id) {
    std::vector<resend> out;
    auto& s = stmts_->resends_of.reset().bind(1, id);
    finish_on_exit guard{s};
    while (s.step())
      out.push_back({s.text(0), from_ms(s.integer(1)), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6)});
    return out;
  }

  std::size_t purge_delivered_before(outbox_time before) {
    // Schema 10 has no index on delivered_at (its right-edge leaf was rewritten by every delivery
    // commit: 843 of 11,198 bytes written per result in throughput.sh); a message delivered
    // before `before` was created before it, and seq follows creation: purge looks only at the
    // seqs up to the last message created before it.
    const auto last = sqlite::last_rowid_before(stmts_->first_from_seq, to_ms(before));
    if (last == 0) return 0;
    stmts_->purge.reset().bind(1, to_ms(before)).bind(2, last).run();
    const auto n = static_cast<std::size_t>(changes());
    if (n > 0) stmts_->purge_resends.reset().run();  // the copies of a message that is gone
    if (n > 0) samples_.wrote = true;                 // their samples went with their bodies
    return n;
  }

  // A damaged file is refused at start, never taken for an empty one (README "Recovering a
  // damaged outbox").
  void check_integrity(const std::filesystem::path& file) {
    std::string first;
    int problems = 0;
    try {
      statement q(db_, "PRAGMA quick_check");
      while (q.step()) {
        const std::string line = q.text(0);
        if (line == "ok") continue;
        if (problems++ == 0) first = line;
      }
      q.finish();
    } catch (const std::exception& e) {  // SQLITE_CORRUPT / NOTADB: too damaged to even check
      if (problems++ == 0) first = e.what();
    }
    if (problems > 0)
      throw std::runtime_error(file.string() + " is damaged (PRAGMA quick_check: " + first +
                               (problems > 1 ? " and " + std::to_string(problems - 1) + " more" : std::string()) +
                               "); " + recovery_hint(file));
  }

  std::optional<file_job> load_file_job(const std::string& id) {
    auto& s = stmts_->get_file_job.reset().bind(1, id);
    finish_on_exit guard{s};
    if (!s.step()) return std::nullopt;
    file_job j;
    j.message_id = id;
    j.stage = s.text(0);
    j.size = static_cast<std::uint64_t>(s.integer(1));
    j.sha256 = s.text(2);
    j.url = s.text(3);
    j.fields = s.text(4);
    j.path = s.text(5);
    j.presigns = static_cast<unsigned>(s.integer(6));
    j.uploads = static_cast<unsigned>(s.integer(7));
    return j;
  }

  void save_file_job(const file_job& j) {
    stmts_->put_file_job.reset()
        .bind(1, j.message_id)
        .bind(2, j.stage)
        .bind(3, static_cast<std::int64_t>(j.size))
        .bind(4, j.sha256)
        .bind(5, j.url)
        .bind(6, j.fields)
        .bind(7, j.path)
        .bind(8, std::int64_t{j.presigns})
        .bind(9, std::int64_t{j.uploads})
        .bind(10, to_ms(outbox_now()))
        .run();
  }

  void check_schema(const std::filesystem::path& file) {
    statement t(db_,
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('messages', 'kv', 'results',"
                " 'file_jobs', 'history_events', 'history_month', 'history_samples', 'qc_audit',"
                " 'qc_patients', 'message_bodies')");
    t.step();
    const auto tables = t.integer(0);
    t.finish();
    if (tables != 10)
      throw std::runtime_error("outbox: " + file.string() + " says it is an outbox but lacks its tables (" +
                               std::to_string(tables) +
                               " of messages, kv, results, file_jobs, history_events, history_month, history_samples, qc_audit,"
                               " qc_patients, message_bodies); " +
                               recovery_hint(file));
  }

  // Ties the file to a marker beside it ("<outbox>.id"): a file that existed (with messages) and
  // is now empty, truncated or replaced by another is noticed at start, not started afresh.
  void check_identity(const std::filesystem::path& file) {
    const std::filesystem::path marker = file.string() + ".id";
    std::string stored;
    {
      statement g(db_, "SELECT value FROM kv WHERE key = 'outbox_id'");
      if (g.step()) stored = g.text(0);
      g.finish();
    }
    std::string expected;
    if (std::ifstream in(marker); in) std::getline(in, expected);
    if (!expected.empty() && stored != expected)
      throw std::runtime_error("outbox: " + file.string() + " is not the outbox last used here (" + marker.string() +
                               " names " + expected + ", the file " + (stored.empty() ? "none" : stored) +
                               "): it was emptied, truncated or replaced. Restore it from a backup, or recover it: " +
                               recovery_hint(file) + "; to start with an empty outbox on purpose, delete " +
                               marker.string());
    if (stored.empty()) {
      std::random_device rd;
      char id[33];
      std::snprintf(id, sizeof id, "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
      stored = id;
      statement put(db_, "INSERT OR REPLACE INTO kv (key, value) VALUES ('outbox_id', ?1)");
      put.bind(1, stored);
      put.step();
      put.finish();
    }
    if (expected != stored) {
      const std::filesystem::path tmp = marker.string() + ".tmp";
      { std::ofstream(tmp) << stored << '\n'; }
      std::error_code ec;
      std::filesystem::rename(tmp, marker, ec);  // a marker that cannot be written only weakens the check
    }
  }

 private:
  static std::string recovery_hint(const std::filesystem::path& file) {
    return "see README \"Recovering a damaged outbox\" (in short: sqlite3 -readonly " + file.string() +
           " .dump | sed 's/^ROLLBACK; -- due to errors$/COMMIT;/' | sqlite3 " + file.string() +
           ".recovered, check it with `interfaced outbox --file " + file.string() +
           ".recovered list`, then point outbox.path at it)";
  }

  void migrate() {
    statement v(db_, "PRAGMA user_version");
    v.step();
    const auto version = v.integer(0);
    v.finish();
    if (version > schema_version) {
      throw std::runtime_error("outbox: the file's schema (version " + std::to_string(version) +
                               ") is newer than this program's");
    }
    if (version >= 3) {
      if (version < 5) migrate_file_tables();
      if (version < 6) migrate_to_6();
      if (version < 7) migrate_qc_tables();
      if (version < 8) migrate_to_8();
      if (version < 9) migrate_to_9();
      if (version < 10) migrate_to_10();
      if (version < 11) migrate_to_11();
      if (version < 12) migrate_to_12();
      if (version < 13) migrate_to_13();
      if (version < 14) migrate_to_14();
      if (version < 15) migrate_to_15();
      if (version < 16) migrate_to_16();
      if (version < 17) migrate_to_17();
      return;
    }
    if (version == 1) {
      // Version 2 adds the rerun state tables (state_store.hpp): they commit with the messages.
      exec("BEGIN IMMEDIATE");
      create_state_tables(db_);
      exec("PRAGMA user_version = 2; COMMIT;");
    }
    if (version == 1 || version == 2) {
      migrate_to_3();
      migrate_file_tables();
      migrate_to_6();
      migrate_qc_tables();
      migrate_to_8();
      migrate_to_9();
      migrate_to_10();
      migrate_to_11();
      migrate_to_12();
      migrate_to_13();
      migrate_to_14();
      migrate_to_15();
      migrate_to_16();
      migrate_to_17();
      return;
    }
    // seq (the rowid) is the append order; AUTOINCREMENT so a purge never lets a new message
    // reuse an old number and jump ahead of older messages of its key.
    exec(
        "BEGIN IMMEDIATE;"
        "CREATE TABLE IF NOT EXISTS messages ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " id TEXT NOT NULL UNIQUE,"
        " kind TEXT NOT NULL,"
        " ordering_key TEXT NOT NULL,"
        " body BLOB NOT NULL,"
        " internal INTEGER NOT NULL DEFAULT 0,"
        " created_at INTEGER NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0,"
        " next_attempt_at INTEGER NOT NULL,"
        " state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','delivered','dead')),"
        " last_status INTEGER NOT NULL DEFAULT 0,"
        " last_response BLOB,"
        " delivered_at INTEGER);");
    create_state_tables(db_);
    exec("PRAGMA user_version = 2; COMMIT;");
    migrate_to_3();
    migrate_file_tables();
    migrate_to_6();
    migrate_qc_tables();
    migrate_to_8();
    migrate_to_9();
    migrate_to_10();
    migrate_to_11();
    migrate_to_12();
    migrate_to_13();
    migrate_to_14();
    migrate_to_15();
    migrate_to_16();
    migrate_to_17();
  }

  // Version 8 (issue #16): what the lab's view searches and counts by, written at append so a
  // search is an index seek, not a scan of every body -- messages.device (the appender's device,
  // else the one the body names) and message_samples (every sample id a body names; a trigger
  // drops them with their message) -- backfilled from the stored bodies; and the historical
  // summary as one row per month holding its days (history_store.hpp).
  void migrate_to_8() {
    exec(
        "BEGIN IMMEDIATE;"
        "ALTER TABLE messages ADD COLUMN device TEXT NOT NULL DEFAULT '';"
        "CREATE TABLE message_samples ("
        " sample TEXT NOT NULL,"
        " seq INTEGER NOT NULL,"
        " PRIMARY KEY (sample, seq)) WITHOUT ROWID;"
        "CREATE INDEX message_samples_by_seq ON message_samples(seq);"
        "CREATE TRIGGER message_samples_gone AFTER DELETE ON messages"
        " BEGIN DELETE FROM message_samples WHERE seq = old.seq; END;");
    {
      statement rows(db_, "SELECT seq, body FROM messages");
      statement device(db_, "UPDATE messages SET device = ?1 WHERE seq = ?2");
      statement sample(db_, "INSERT OR IGNORE INTO message_samples (sample, seq) VALUES (?1, ?2)");
      while (rows.step()) {
        const auto seq = rows.integer(0);
        const std::string body = rows.text(1);
        if (auto d = device_named_in(body); !d.empty()) device.reset().bind(1, d).bind(2, seq).run();
        for (const auto s : samples_named_in(body)) sample.reset().bind(1, s).bind(2, seq).run();
      }
    }
    migrate_history_to_months(db_);
    exec("PRAGMA user_version = 8; COMMIT;");
  }

  // Version 7 (issue #14): the QC audit (qc.md "Resolutions": every resolution, proposal,
  // approval, undo and limit change with who, when and why; never deleted), written in the
  // transaction of the posts it causes.
  void migrate_qc_tables() {
    exec(
        "BEGIN IMMEDIATE;"
        "CREATE TABLE IF NOT EXISTS qc_audit ("
        " id INTEGER PRIMARY KEY,"
        " kind TEXT NOT NULL CHECK (kind IN ('resolution','proposal','approval','undo','limits')),"
        " result_id TEXT NOT NULL DEFAULT '',"
        " device TEXT NOT NULL DEFAULT '',"
        " parameter TEXT NOT NULL DEFAULT '',"
        " code TEXT NOT NULL DEFAULT '',"
        " by_whom TEXT NOT NULL,"
        " reason TEXT NOT NULL DEFAULT '',"
        " at TEXT NOT NULL,"
        " ref INTEGER NOT NULL DEFAULT 0,"
        " detail TEXT NOT NULL DEFAULT '');"
        "PRAGMA user_version = 7; COMMIT;");
  }

  // Version 9 (issue #14): the patient results of QC runs (state_store.hpp qc_patient_row), written
  // with the post that carries them, so a re-evaluation after a restart still names them; their
  // message id gives exported_at (that message's delivered_at).
  void migrate_to_9() {
    exec(
        "BEGIN IMMEDIATE;"
        "CREATE TABLE IF NOT EXISTS qc_patients ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " device TEXT NOT NULL,"
        " sample_id TEXT NOT NULL,"
        " parameter TEXT NOT NULL,"
        " observed_at TEXT NOT NULL,"
        " t INTEGER NOT NULL,"
        " message_id TEXT NOT NULL DEFAULT '');"
        "CREATE INDEX IF NOT EXISTS qc_patients_result ON qc_patients (device, sample_id, parameter);"
        "CREATE INDEX IF NOT EXISTS qc_patients_t ON qc_patients (t);"
        "PRAGMA user_version = 9; COMMIT;");
  }

  // Version 10 (issue #17, bytes written per durable result): two indexes no hot read uses, each
  // a leaf rewritten by nearly every commit. delivered_at served only the hourly purge, which
  // now bounds its scan by seq (sqlite::last_rowid_before); history_events_day served only
  // `stats prune`, an admin command that may scan the log.
  void migrate_to_10() {
    exec(
        "BEGIN IMMEDIATE;"
        "DROP INDEX IF EXISTS delivered_at;"
        "DROP INDEX IF EXISTS history_events_day;"
        "PRAGMA user_version = 10; COMMIT;");
  }

  // Version 11 (issue #17, bytes written per durable result): no pending_by_key and results_age
  // indexes. Keyed by
  // report / sample, its entry was written at a random leaf by every append and again by every
  // delivered mark; the worker keeps the pending messages per key in memory instead
  // (outbox_db::pending_keys), rebuilt from pending_due.
  void migrate_to_11() {
    exec(
        "BEGIN IMMEDIATE;"
        "DROP INDEX IF EXISTS pending_by_key;"
        // results_age (state_store.cpp) too: an entry per result, read only by the prune, which
        // bisects the rowid instead (prune_results).
        "DROP INDEX IF EXISTS results_age;"
        "PRAGMA user_version = 11; COMMIT;");
  }

  // Version 12 (issue #17, bytes written per durable result): no b-tree keyed by sample. With
  // analysers sending interleaved samples, every such tree cost a leaf at a random place per
  // message: results_sp was about 1 KiB of WAL per result in throughput.sh. The sample lookups
  // are served from memory (state_store's result index), and the rows go to their table's last
  // page, which a whole group commit shares.
  // message_samples is rebuilt keyed by (seq, sample) (outbox_db::samples_of searches it; its
  // trigger deletes by seq, now the key's prefix, so message_samples_by_seq goes too), and
  // history_samples is keyed by its day's number, then insertion order (history_store.hpp).
  // A message's body moves to message_bodies (seq, body): the delivered mark rewrites the
  // message's row, and with a ~640-byte body beside it that was a whole 1 KiB page per message
  // (the mark of each message its own page); without it a page holds a few dozen rows, so the
  // marks of one commit share pages. Rows are copied; AUTOINCREMENT seqs are untouched.
  void migrate_to_12() {
    exec(
        "BEGIN IMMEDIATE;"
        "DROP INDEX IF EXISTS results_sp;"
        "DROP TRIGGER IF EXISTS message_samples_gone;"
        "CREATE TABLE message_samples_v12 ("
        " seq INTEGER NOT NULL,"
        " sample TEXT NOT NULL,"
        " PRIMARY KEY (seq, sample)) WITHOUT ROWID;"
        "INSERT INTO message_samples_v12 (seq, sample) SELECT seq, sample FROM message_samples;"
        "DROP TABLE message_samples;"
        "ALTER TABLE message_samples_v12 RENAME TO message_samples;"
        "CREATE TRIGGER message_samples_gone AFTER DELETE ON messages"
        " BEGIN DELETE FROM message_samples WHERE seq = old.seq; END;"
        "CREATE TABLE message_bodies (seq INTEGER PRIMARY KEY, body BLOB NOT NULL);"
        "INSERT INTO message_bodies (seq, body) SELECT seq, body FROM messages;"
        "ALTER TABLE messages DROP COLUMN body;"
        "CREATE TRIGGER message_bodies_gone AFTER DELETE ON messages"
        " BEGIN DELETE FROM message_bodies WHERE seq = old.seq; END;");
    migrate_history_samples_to_days(db_);
    exec("PRAGMA user_version = 12; COMMIT;");
  }

  // Version 13 (issue #17, bytes written per durable result): bodies are stored deflated
  // (body_codec.hpp), ~640 -> ~280 bytes for a two-result results body; the bodies were the
  // largest share of the WAL per result (about 700 of 2,500 bytes). Every body not packed yet is
  // packed, in one transaction (a NUL-led body an older program stored is packed too, unless
  // it happens to be a whole packed form of exactly its recorded size); a body deflate does not shrink stays as it is, as pack_body
  // leaves it. An interfaced before 13 would read packed bodies as text: it refuses the file.
  void migrate_to_13() {
    exec("BEGIN IMMEDIATE");
    {
      // The seqs first: the table is not updated under its own scan.
      std::vector<std::int64_t> seqs;
      statement all(db_, "SELECT seq, body FROM message_bodies");
      // Not packed: a body that does not start with the marker -- or one that does (older
      // programs stored any bytes) but is no packed form (it does not unpack).
      while (all.step())
        if (const auto b = all.bytes(1); !is_packed_body(b) || !unpack_body(b)) seqs.push_back(all.integer(0));
      all.finish();
      statement get(db_, "SELECT body FROM message_bodies WHERE seq = ?1");
      statement put(db_, "UPDATE message_bodies SET body = ?2 WHERE seq = ?1");
      for (const auto seq : seqs) {
        get.reset().bind(1, seq);
        if (!get.step()) continue;
        const std::string packed = pack_body(get.bytes(0));
        get.finish();
        put.reset().bind(1, seq).bind_blob(2, packed).run();
      }
    }
    exec("PRAGMA user_version = 13; COMMIT;");
  }

  // Version 14 (issue #17, CPU and bytes per durable result): history events are folded into
  // their month rows in batches, not each as it comes (history_store.hpp "Folding"): the events
  // gain their pending mark. Existing events are all in their rows already (pending 0).
  void migrate_to_14() {
    exec("BEGIN IMMEDIATE");
    migrate_history_to_deferred(db_);
    exec("PRAGMA user_version = 14; COMMIT;");
  }

  // Version 15 (issue #17, bytes and CPU per durable result): the samples a body names move from
  // message_samples (a row each, its own b-tree: a leaf and its splits in every commit, 2.4 of
  // 25.4 WAL pages per commit in throughput.sh, and a statement per sample) into a column of the
  // body's row (body_codec.hpp samples_column), which the purge's trigger already deletes.
  void migrate_to_15() {
    exec(
        "BEGIN IMMEDIATE;"
        "ALTER TABLE message_bodies ADD COLUMN samples TEXT NOT NULL DEFAULT '';");
    {
      statement rows(db_, "SELECT seq, sample FROM message_samples ORDER BY seq, sample");
      statement put(db_, "UPDATE message_bodies SET samples = ?2 WHERE seq = ?1");
      std::int64_t seq = 0;
      std::vector<std::string> names;
      const auto flush = [&] {
        if (names.empty()) return;
        put.reset().bind(1, seq).bind(2, samples_column(std::vector<std::string_view>(names.begin(), names.end()))).run();
        names.clear();
      };
      while (rows.step()) {
        if (rows.integer(0) != seq) flush();
        seq = rows.integer(0);
        names.push_back(rows.text(1));
      }
      flush();
    }
    exec(
        "DROP TRIGGER IF EXISTS message_samples_gone;"
        "DROP TABLE message_samples;"
        "PRAGMA user_version = 15; COMMIT;");
  }

  // Version 16 (issue #17): the messages' CHECK on state as comparisons instead of an IN list.
  // SQLite codes `state IN ('pending', ...)` in a CHECK with an ephemeral table -- a b-tree and
  // its pager opened, filled and freed -- at every INSERT and every UPDATE of state: ~35,000
  // instructions each, twice per message (its append and its delivered mark), 12 % of a message's
  // work (callgrind). The rule is the same, so every row satisfies it: the table's SQL is
  // rewritten in place, SQLite's documented procedure for changing a CHECK constraint
  // (sqlite.org/lang_altertable.html, writable_schema and a new schema_version).
  void migrate_to_16() {
    exec("BEGIN IMMEDIATE; SAVEPOINT check_rewrite;");
    try {
      std::int64_t cookie = 0;
      {
        statement v(db_, "PRAGMA schema_version");
        v.step();
        cookie = v.integer(0);
        v.finish();
      }
      exec(
          "PRAGMA writable_schema = ON;"
          "UPDATE sqlite_master SET sql = replace(sql,"
          " 'CHECK (state IN (''pending'',''delivered'',''dead'',''set-aside''))',"
          " 'CHECK (state = ''pending'' OR state = ''delivered'' OR state = ''dead'' OR state = ''set-aside'')')"
          " WHERE type = 'table' AND name = 'messages';");
      exec(("PRAGMA schema_version = " + std::to_string(cookie + 1) + ";").c_str());
      exec("PRAGMA writable_schema = OFF; RELEASE check_rewrite;");
    } catch (const std::exception&) {
      // A SQLite built or configured defensive (SQLITE_DBCONFIG_DEFENSIVE) refuses writable_schema:
      // the IN list stays. The same rule, only slower; the file still opens.
      sqlite3_exec(db_, "PRAGMA writable_schema = OFF; ROLLBACK TO check_rewrite; RELEASE check_rewrite;", nullptr,
                   nullptr, nullptr);
    }
    exec("PRAGMA user_version = 16; COMMIT;");
  }

  // Version 17 (issue #17): bodies are now stored deflated against a preset dictionary (stored
  // form 0x01, body_codec.hpp). Nothing to rewrite (0x00 bodies still read); the number moves so
  // that a program from before refuses the file instead of sending a 0x01 body as it is.
  void migrate_to_17() { exec("BEGIN IMMEDIATE; PRAGMA user_version = 17; COMMIT;"); }

  // Version 6: the historical summary's tables (history_store.hpp), in their own step so other
  // additions chain before or after it.
  void migrate_to_6() {
    exec("BEGIN IMMEDIATE");
    migrate_history_tables(db_);
    exec("PRAGMA user_version = 6; COMMIT;");
  }

  // Version 5 (issue #15): the stage each file-type report reached (file-reports.md "The
  // stages"), one row per file_report message, written in its own committed transaction before
  // the next stage starts. Separate from the other migrations so they can be chained in any order.
  // 5: file_jobs, 6: history, 7: qc_audit, 8: message device and samples, history by month,
  // 9: qc_patients, 10: no delivered_at and history_events_day indexes, 11: no pending_by_key and results_age indexes,
  // 12: no sample-keyed b-trees (results_sp, message_samples by sample, history_samples by day, device, sample),
  // 13: message bodies stored deflated (body_codec.hpp), 14: history events folded into their months in batches,
  // 15: a body's sample ids in its row, history_samples written in batches,
  // 16: the messages' state CHECK without an IN list, 17: bodies deflated against a preset dictionary
  static constexpr std::int64_t schema_version = 17;
  void migrate_file_tables() {
    exec(
        "BEGIN IMMEDIATE;"
        "CREATE TABLE IF NOT EXISTS file_jobs ("
        " message_id TEXT PRIMARY KEY,"
        " stage TEXT NOT NULL,"
        " size INTEGER NOT NULL DEFAULT 0,"
        " sha256 TEXT NOT NULL DEFAULT '',"
        " url TEXT NOT NULL DEFAULT '',"
        " fields TEXT NOT NULL DEFAULT '',"
        " path TEXT NOT NULL DEFAULT '',"
        " presigns INTEGER NOT NULL DEFAULT 0,"
        " uploads INTEGER NOT NULL DEFAULT 0,"
        " updated_at INTEGER NOT NULL DEFAULT 0);"
        "PRAGMA user_version = 5; COMMIT;");
  }


  // Version 3: the `set-aside` state with its audit (who, when, why) and the resends table. A
  // CHECK constraint cannot be altered in SQLite: the table is rebuilt (seq values kept, so the
  // order per key is unchanged) in one transaction.
  void migrate_to_3() {
    exec(
        "BEGIN IMMEDIATE;"
        "CREATE TABLE messages_v3 ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " id TEXT NOT NULL UNIQUE,"
        " kind TEXT NOT NULL,"
        " ordering_key TEXT NOT NULL,"
        " body BLOB NOT NULL,"
        " internal INTEGER NOT NULL DEFAULT 0,"
        " created_at INTEGER NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0,"
        " next_attempt_at INTEGER NOT NULL,"
        " state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','delivered','dead','set-aside')),"
        " last_status INTEGER NOT NULL DEFAULT 0,"
        " last_response BLOB,"
        " delivered_at INTEGER,"
        " set_aside_by TEXT,"
        " set_aside_at INTEGER,"
        " set_aside_reason TEXT);"
        "INSERT INTO messages_v3 (seq, id, kind, ordering_key, body, internal, created_at, attempts,"
        " next_attempt_at, state, last_status, last_response, delivered_at)"
        " SELECT seq, id, kind, ordering_key, body, internal, created_at, attempts, next_attempt_at, state,"
        " last_status, last_response, delivered_at FROM messages;"
        // AUTOINCREMENT's high-water mark survives the rebuild: a purged message's number is never reused.
        "CREATE TEMP TABLE old_seq AS SELECT seq FROM sqlite_sequence WHERE name = 'messages';"
        "DROP TABLE messages;"
        "ALTER TABLE messages_v3 RENAME TO messages;"
        "UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE((SELECT MAX(seq) FROM temp.old_seq), 0))"
        " WHERE name = 'messages';"
        "DROP TABLE temp.old_seq;"
        "CREATE INDEX pending_by_key ON messages(ordering_key, seq) WHERE state = 'pending';"
        "CREATE INDEX delivered_at ON messages(delivered_at) WHERE state = 'delivered';"
        "CREATE TABLE resends ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " message_id TEXT NOT NULL,"
        " received_at INTEGER NOT NULL,"
        " device TEXT NOT NULL DEFAULT '',"
        " sample_id TEXT NOT NULL DEFAULT '',"
        " parameter TEXT NOT NULL DEFAULT '',"
        " value TEXT NOT NULL DEFAULT '',"
        " observed_at TEXT NOT NULL DEFAULT '');"
        "CREATE INDEX resends_by_message ON resends(message_id, seq);"
        "CREATE INDEX dead_messages ON messages(seq) WHERE state = 'dead';"
        // claim_due walks due messages in due order: with a key per sample there are as many
        // keys as messages, and a walk over the keys (heads) would cost O(keys) per claim.
        "CREATE INDEX pending_due ON messages(next_attempt_at, seq) WHERE state = 'pending';"
        "PRAGMA user_version = 3; COMMIT;");
  }

  struct statements {
    explicit statements(sqlite3* db)
        : count_undelivered(db, "SELECT COUNT(*) FROM messages WHERE state <> 'delivered'"),
          insert(db,
                 "INSERT INTO messages (id, kind, ordering_key, internal, created_at, next_attempt_at, device)"
                 " VALUES (?1, ?2, ?3, ?5, ?6, ?7, ?8)"),
          insert_body(db, "INSERT INTO message_bodies (seq, body, samples) VALUES (?1, ?2, ?3)"),
          samples_since(db, "SELECT seq, samples FROM message_bodies WHERE seq > ?1 ORDER BY seq"),
          // One body row per message: the smallest index counts them, not the bodies' pages.
          count_messages(db, "SELECT count(*) FROM messages"),
          // Due pending messages in due order, through the pending_due index; claim_due keeps the
          // heads of their keys.
          due_pending(db,
                      "SELECT seq, ordering_key FROM messages WHERE state = 'pending' AND next_attempt_at <= ?1"
                      " ORDER BY next_attempt_at, seq"),
          all_pending(db, "SELECT ordering_key, seq FROM messages WHERE state = 'pending'"),
          data_version(db, "PRAGMA data_version"),
          // When the next pending message becomes due (heads or not: an early wake costs a claim).
          next_due(db, "SELECT MIN(next_attempt_at) FROM messages WHERE state = 'pending' AND next_attempt_at > ?1"),
          by_id(db, select_message(stored_body, "FROM messages WHERE id = ?1").c_str()),
          // The same by seq, for claim_due (a rowid seek instead of the id index's, then it); and
          // without the body (left empty), for a message whose body claim_due has in memory.
          by_seq(db, select_message(stored_body, "FROM messages WHERE seq = ?1").c_str()),
          head_by_seq(db, select_message("''", "FROM messages WHERE seq = ?1").c_str()),
          // What a mark needs of the row before it: the columns note_state and the dead-letter
          // event read, not the whole row (issue #17: a mark per delivered message).
          mark_head(db, "SELECT seq, ordering_key, state, device, kind FROM messages WHERE id = ?1"),
          // A person may set the message aside while its attempt is in flight: a retry then
          // leaves it set aside (a delivery still counts: the backend has it).
          mark(db,
               "UPDATE messages SET state = CASE WHEN state = 'set-aside' AND ?1 <> 'delivered' THEN state"
               " ELSE ?1 END, attempts = attempts + 1, last_status = ?2,"
               " last_response = ?3, next_attempt_at = ?4, delivered_at = ?6 WHERE seq = ?5"),
          // Only the worker's guard (rewrite_body) decides; the WHERE repeats it for the file.
          rewrite_body(db,
                       "UPDATE message_bodies SET body = ?2"
                       " WHERE seq = (SELECT seq FROM messages WHERE id = ?1 AND state = 'pending' AND attempts = 0)"),
          retry_all(db, "UPDATE messages SET state = 'pending', next_attempt_at = ?1 WHERE state = 'dead'"),
          retry_one(db,
                    "UPDATE messages SET state = 'pending', next_attempt_at = ?1"
                    " WHERE id = ?2 AND state <> 'delivered'"),
          get_file_job(db, "SELECT stage, size, sha256, url, fields, path, presigns, uploads FROM file_jobs"
                           " WHERE message_id = ?1"),
          put_file_job(db, "INSERT OR REPLACE INTO file_jobs (message_id, stage, size, sha256, url, fields, path,"
                           " presigns, uploads, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
          set_aside(db,
                    "UPDATE messages SET state = 'set-aside', set_aside_by = ?2, set_aside_at = ?3,"
                    " set_aside_reason = ?4 WHERE id = ?1 AND state IN ('pending', 'dead')"),
          count_dead(db, "SELECT COUNT(*) FROM messages WHERE state = 'dead'"),
          count_stuck(db, "SELECT COUNT(*) FROM messages WHERE state = 'pending' AND created_at < ?1"),
          oldest_stuck(db, select_message(stored_body,
                                          "FROM messages WHERE state = 'pending' AND created_at < ?1 ORDER BY seq LIMIT ?2")
                               .c_str()),
          insert_resend(db,
                        "INSERT INTO resends (message_id, received_at, device, sample_id, parameter, value, observed_at)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
          resends_of(db,
                     "SELECT message_id, received_at, device, sample_id, parameter, value, observed_at"
                     " FROM resends WHERE message_id = ?1 ORDER BY seq"),
          purge(db, "DELETE FROM messages WHERE seq <= ?2 AND state = 'delivered' AND delivered_at < ?1"),
          first_from_seq(db, "SELECT seq, created_at FROM messages WHERE seq >= ?1 ORDER BY seq LIMIT 1"),
          purge_resends(db, "DELETE FROM resends WHERE message_id NOT IN (SELECT id FROM messages)"),
          insert_qc_audit(db,
                          "INSERT INTO qc_audit (id, kind, result_id, device, parameter, code, by_whom, reason, at, ref, detail)"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
          insert_qc_patient(db,
                            "INSERT INTO qc_patients (device, sample_id, parameter, observed_at, t, message_id)"
                            " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
          begin(db, "BEGIN IMMEDIATE"),
          commit(db, "COMMIT"),
          rollback(db, "ROLLBACK"),
          savepoint(db, "SAVEPOINT op"),
          release(db, "RELEASE op"),
          rollback_to(db, "ROLLBACK TO op") {}
    statement count_undelivered, insert, insert_body, samples_since, count_messages, due_pending, all_pending, data_version, next_due, by_id, by_seq, head_by_seq, mark_head, mark, rewrite_body, retry_all, retry_one, get_file_job, put_file_job, set_aside,
        count_dead, count_stuck, oldest_stuck, insert_resend, resends_of, purge, first_from_seq, purge_resends, insert_qc_audit,
        insert_qc_patient;
    // The worker's transaction control, several times per message: prepared once, not parsed
    // by sqlite3_exec on every use.
    statement begin, commit, rollback, savepoint, release, rollback_to;
  };

  void prepare() {
    {
      statement last(db_, "SELECT COALESCE(MAX(seq), 0) FROM messages");
      last.step();
      seq_at_open_ = last.integer(0);
    }
    stmts_ = std::make_unique<statements>(db_);
    state_ = std::make_unique<state_writer>(db_);
    history_ = std::make_unique<history_writer>(db_, /*defer=*/true);
  }
  void finalize() noexcept {
    history_.reset();
    state_.reset();
    stmts_.reset();
  }

  sqlite3* db_ = nullptr;
  std::unique_ptr<statements> stmts_;
  std::unique_ptr<state_writer> state_;
  std::unique_ptr<history_writer> history_;
  // Messages claim_due handed to delivery whose attempt has not been marked yet
  // (worker only; not durable: after a restart nothing is in flight).
  std::unordered_set<std::string> claimed_;
  // The bodies this process appended, by seq, until their first attempt is marked: a claim then
  // takes the body from here instead of inflating what insert() deflated a moment before (an
  // inflate was ~34k instructions, about a twentieth of a message's work; issue #17). Kept until
  // the mark, not the claim: the loop and a runner can claim one head twice, and a second claim
  // that found nothing here inflated it (593 of 3,200 claims in throughput.sh, 8 x 400). Bounded:
  // past max_fresh_bodies the oldest goes (its claim reads the table). Cleared after a rollback,
  // whose appends' seqs are given again.
  static constexpr std::size_t max_fresh_bodies = 4096;
  std::map<std::int64_t, std::string> fresh_bodies_;
  // samples_of(): hash of a sample -> the seqs of the messages naming it.
  struct sample_index {
    std::unordered_map<std::size_t, std::vector<std::int64_t>> by_sample;
    std::int64_t last_seq = 0;  // the samples of every message up to it are in by_sample
    std::size_t rows = 0;       // messages read
    std::int64_t version = -1;  // PRAGMA data_version when last caught up
    bool wrote = true;          // this connection wrote (or rolled back) since
  } samples_;
  // pending_keys(): ordering key -> its pending messages' seqs; stale: rebuild before use.
  std::unordered_map<std::string, std::set<std::int64_t>> pending_;
  bool pending_stale_ = true;
  std::int64_t data_version_ = -1;
  // The last message stored before this process opened the file. An earlier one may have been
  // sent by a process that died before marking its attempt (attempts still 0): only messages
  // this process stored are provably unsent when never claimed.
  std::int64_t seq_at_open_ = 0;

 public:
  rerun::lab_zone zone_;  // the historical summary's days; set on the worker (outbox::set_lab_zone)
};

}  // namespace detail

// One queued unit of work: exec runs inside the group transaction (throws on failure, which
// rolls back only this op's savepoint); complete runs after the commit with its fate.
struct outbox::op {
  std::function<void(detail::outbox_db&)> exec;
  std::function<void(bool ok, const std::string& error)> complete;
  std::size_t appends = 0;
  std::chrono::steady_clock::time_point queued_at{};  // set by enqueue (detail::gather_until)
  std::ptrdiff_t delivered = 0;  // set by exec: messages that left the undelivered count
  // The completion promises the change survives power loss (an ACK hangs on it): it runs after
  // the group commits, with an fsync. Delivery bookkeeping does not: it completes once run in
  // the worker's open transaction and is committed later (outbox::run); a lost "delivered" mark
  // means one more POST under the same Idempotency-Key, which at-least-once allows.
  bool durable = false;
  // A delivered mark: may wait in the worker's open transaction (outbox::run). Every other
  // write closes the transaction it runs in.
  bool deferrable = false;
  bool writes = true;  // false: a read (claim, census); the write fault hook lets it pass
  // Runs on the worker before the group transaction begins (spool files: written and fsynced
  // before the commit that names them); sets `dropped` for appends it had to leave out.
  std::function<void()> prepare;
  std::size_t dropped = 0;
  // Set by exec: appends counted in `appends` it did not need (body_rewrite::otherwise of a
  // rewrite that applied).
  std::size_t spared = 0;
  // Runs on the worker once the group transaction committed (and only then): deletions that
  // must never precede the commit that made them safe.
  std::function<void()> after;
};

namespace {
// Before SQLite opens (and would create) it: a file that had an identity marker and is now
// missing or empty lost its messages.
const std::filesystem::path& existing_or_new(const std::filesystem::path& file) {
  const std::filesystem::path marker = file.string() + ".id";
  std::error_code ec;
  if (std::filesystem::exists(marker, ec) &&
      (!std::filesystem::exists(file, ec) || std::filesystem::file_size(file, ec) == 0))
    throw std::runtime_error("outbox: " + file.string() + (std::filesystem::exists(file, ec) ? " is empty" : " is missing") +
                             " but " + marker.string() + " says an outbox was kept there: its messages are gone. "
                             "Restore it from a backup; to start with an empty outbox on purpose, delete " +
                             marker.string());
  return file;
}
}  // namespace

outbox::outbox(const outbox_options& cfg, poster post)
    : db_(std::make_unique<detail::outbox_db>(existing_or_new(cfg.path))),
      post_(std::move(post)),
      max_messages_(cfg.max_messages),
      write_fault_file_(cfg.write_fault_file),
      spool_dir_(cfg.path.parent_path() / "files") {
  db_->check_identity(cfg.path);
  db_->feed_results_to(results_feed_);  // before the worker: every committed row goes there
  undelivered_ = db_->count_undelivered();
  alarm_ = undelivered_ >= max_messages_;
  worker_ = std::thread([this] {
    // Named, so top -H, perf and /proc/PID/task tell the worker's CPU and system calls from the
    // event loop's (at most 15 characters).
    pthread_setname_np(pthread_self(), "outbox-worker");
    run();
  });
}

outbox::~outbox() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_worker();
  if (worker_.joinable()) worker_.join();
}

void outbox::finish(std::function<void()> f) {
  if (!f) return;
  if (post_) {
    post_(std::move(f));
  } else {
    f();
  }
}

namespace {
// The operations together() is collecting on this thread, and for which outbox.
thread_local std::vector<std::unique_ptr<outbox::op>>* held_ops = nullptr;
thread_local const outbox* held_for = nullptr;
}  // namespace

void outbox::enqueue(std::unique_ptr<op> o, std::size_t new_messages) {
  if (new_messages > 0) {
    // Counted when queued, so accepting() already refuses the transfer that would overflow.
    undelivered_ += new_messages;
    update_alarm();
  }
  o->queued_at = std::chrono::steady_clock::now();
  if (held_for == this) {
    held_ops->push_back(std::move(o));
    return;
  }
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(o));
    // Only a waiting worker is signalled, and once until it runs (issue #17: a signal per
    // queued op was a futex call per op; the worker takes the whole queue when it wakes).
    wake = waiting_;
    waiting_ = false;
  }
  if (wake) wake_worker();
}

void outbox::together(const std::function<void()>& calls) {
  if (held_for != nullptr) {  // nested, or another outbox's: queued as they come
    calls();
    return;
  }
  std::vector<std::unique_ptr<op>> ops;
  held_ops = &ops;
  held_for = this;
  std::exception_ptr thrown;
  try {
    calls();
  } catch (...) {
    thrown = std::current_exception();  // what it queued before still runs: each op completes
  }
  held_ops = nullptr;
  held_for = nullptr;
  if (!ops.empty()) {
    bool wake = false;
    {
      std::lock_guard lock(mutex_);
      for (auto& o : ops) queue_.push_back(std::move(o));
      wake = waiting_;
      waiting_ = false;
    }
    if (wake) wake_worker();
  }
  if (thrown) std::rethrow_exception(thrown);
}

// The worker sleeps on a futex word, not a condition variable (issue #17): glibc's condvar wait
// takes the mutex back marked contended, so every wake-up cost the worker one more futex call
// when it let go of mutex_ -- a quarter of the daemon's futex calls in throughput.sh.
// wake_worker() bumps the word and wakes the worker; wait_for_work() sleeps while the word still
// holds what it read under the lock, so a wake that comes between unlock and sleep is not lost.
static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) && std::atomic<std::uint32_t>::is_always_lock_free,
              "the futex word must be a plain 32-bit word");

void outbox::wake_worker() noexcept {
  wake_word_.fetch_add(1, std::memory_order_release);
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&wake_word_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

void outbox::wait_for_work(std::unique_lock<std::mutex>& lock, const std::chrono::steady_clock::time_point* until,
                           bool by_ops) {
  waiting_ = by_ops;  // enqueue() wakes the worker only while this is set
  const std::uint32_t seen = wake_word_.load(std::memory_order_acquire);
  lock.unlock();
  timespec at{};
  if (until != nullptr) {
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time: steady_clock's clock on Linux.
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(until->time_since_epoch()).count();
    at.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    at.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  }
  // Returns at a wake, a timeout, a signal, or at once when the word moved on (EAGAIN): the
  // caller looks at its condition again in every case.
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&wake_word_), FUTEX_WAIT_BITSET_PRIVATE, seen,
            until != nullptr ? &at : nullptr, nullptr, FUTEX_BITSET_MATCH_ANY);
  lock.lock();
  waiting_ = false;
}

void outbox::update_alarm() {
  const bool now_alarm = undelivered_.load() >= max_messages_;
  const bool was = alarm_.exchange(now_alarm);
  if (was != now_alarm) {
    std::function<void(bool)> f;
    {
      std::lock_guard lock(mutex_);
      f = on_alarm_;
    }
    if (f) finish([f, now_alarm] { f(now_alarm); });
  }
}

bool outbox::accepting() const noexcept { return undelivered_.load() < max_messages_; }
bool outbox::alarm() const noexcept { return alarm_.load(); }

outbox_stats outbox::stats() const {
  outbox_stats s;
  s.undelivered = undelivered_.load();
  s.transactions = transactions_.load();
  s.appended = appended_.load();
  s.accepting = accepting();
  s.alarm = alarm();
  std::lock_guard lock(mutex_);
  s.commit_latency = commit_latency_;
  return s;
}

void outbox::on_appended(std::function<void()> f) {
  std::lock_guard lock(mutex_);
  on_appended_ = std::move(f);
}

void outbox::on_alarm(std::function<void(bool)> f) {
  std::lock_guard lock(mutex_);
  on_alarm_ = std::move(f);
}

void outbox::append(new_message message, append_callback done) {
  std::vector<new_message> v;
  v.push_back(std::move(message));
  append(std::move(v), std::move(done));
}

void outbox::append(std::vector<new_message> messages, append_callback done) {
  append(std::move(messages), state_changes{}, std::move(done));
}

void outbox::append(std::vector<new_message> messages, state_changes state, append_callback done) {
  append(std::move(messages), std::move(state), {}, std::move(done));
}

void outbox::rewrite_pending(std::string id, std::function<std::optional<std::string>(const std::string&)> rewrite,
                             std::function<void(bool)> done) {
  std::vector<body_rewrite> r;
  r.push_back({std::move(id), std::move(rewrite), false, {}});
  append({}, {}, std::move(r), [done = std::move(done)](append_result a) {
    if (done) done(a.durable && !a.rewritten.empty() && a.rewritten.front());
  });
}

void outbox::append(std::vector<new_message> messages, state_changes state, std::vector<body_rewrite> rewrites,
                    append_callback done) {
  auto result = std::make_shared<append_result>();
  bool files = false;
  for (auto& m : messages) {
    if (m.id.empty()) m.id = new_uuid();
    result->ids.push_back(m.id);
    files = files || m.file.has_value();
  }
  // A rewrite's `otherwise` messages count as appends until exec knows whether they are needed
  // (the undelivered bound errs high for a moment, never low).
  std::size_t n = messages.size();
  for (auto& r : rewrites)
    for (auto& m : r.otherwise) {
      if (m.id.empty()) m.id = new_uuid();
      ++n;
    }
  auto msgs = std::make_shared<std::vector<new_message>>(std::move(messages));
  auto o = std::make_unique<op>();
  o->appends = n;
  o->durable = true;
  if (files) {
    // On the worker, before BEGIN: the files are on disk before the messages naming them.
    o->prepare = [msgs, result, raw = o.get()] {
      std::erase_if(*msgs, [&](new_message& m) {
        if (!m.file) return false;
        const auto ec = write_file_durably(m.file->path, m.file->bytes);
        m.file->bytes.clear();
        m.file->bytes.shrink_to_fit();
        if (!ec) return false;
        result->unwritten.emplace_back(m.id, m.file->path.string() + ": " + ec.message());
        ++raw->dropped;
        return true;
      });
    };
  }
  o->exec = [msgs, state = std::move(state), rewrites = std::move(rewrites), result,
             raw = o.get()](detail::outbox_db& db) {
    // A retried group transaction runs this again: the answers are the last run's.
    result->rewritten.assign(rewrites.size(), false);
    result->otherwise_ids.clear();
    raw->spared = 0;
    const auto now = outbox_now();
    for (std::size_t i = 0; i < rewrites.size(); ++i) {
      result->rewritten[i] = db.rewrite_body(rewrites[i]);
      if (!result->rewritten[i] && rewrites[i].required)
        throw std::runtime_error("message " + rewrites[i].message_id +
                                 " is no longer pending and unattempted: its body cannot change");
      if (result->rewritten[i]) raw->spared += rewrites[i].otherwise.size();
    }
    for (const auto& m : *msgs) db.insert(m, now);
    // After the batch's own messages: a correction follows what it corrects in its key.
    for (std::size_t i = 0; i < rewrites.size(); ++i)
      if (!result->rewritten[i])
        for (const auto& m : rewrites[i].otherwise) {
          db.insert(m, now);
          result->otherwise_ids.push_back(m.id);
        }
    if (state.settle) {
      state_changes settled = state;  // a retried transaction settles the original again
      settled.settle(settled, result->rewritten);
      if (!settled.empty()) db.write_state(settled);
    } else if (!state.empty()) {
      db.write_state(state);
    }
  };
  o->complete = [result, done = std::move(done)](bool ok, const std::string& error) {
    result->durable = ok;
    if (!ok) {
      result->rewritten.assign(result->rewritten.size(), false);
      result->otherwise_ids.clear();
    }
    result->error = error;
    if (done) done(std::move(*result));
  };
  enqueue(std::move(o), n);
}

void outbox::claim_due(std::vector<std::string> busy_keys, std::size_t limit, outbox_time now,
                       std::function<void(due_batch)> done) {
  auto out = std::make_shared<due_batch>();
  auto o = std::make_unique<op>();
  o->exec = [out, busy = std::move(busy_keys), limit, now](detail::outbox_db& db) {
    *out = db.claim_due(busy, limit, now);
  };
  o->writes = false;
  o->complete = [out, done = std::move(done)](bool ok, const std::string& error) {
    // A failed read is said, never taken for an empty outbox (a damaged file would look idle).
    if (!ok) {
      *out = due_batch{};
      out->read_error = error.empty() ? "the outbox could not be read" : error;
    }
    if (done) done(std::move(*out));
  };
  enqueue(std::move(o), 0);
}

namespace {

std::function<void(bool, const std::string&)> bool_completion(std::function<void(bool)> done) {
  return [done = std::move(done)](bool ok, const std::string&) {
    if (done) done(ok);
  };
}

}  // namespace

void outbox::mark_delivered(std::string id, attempt_outcome o, std::function<void(bool)> done) {
  auto p = std::make_unique<op>();
  auto* raw = p.get();
  p->deferrable = true;
  p->exec = [raw, id = std::move(id), o = std::move(o)](detail::outbox_db& db) {
    const auto now = outbox_now();
    if (db.mark(id, message_state::delivered, o, now, now)) raw->delivered = 1;
  };
  p->complete = bool_completion(std::move(done));
  enqueue(std::move(p), 0);
}

void outbox::mark_retry(std::string id, attempt_outcome o, outbox_time next_attempt,
                        std::function<void(bool)> done) {
  auto p = std::make_unique<op>();
  // Not deferrable (committed at once): the QC re-tag asks another connection whether a results
  // post was attempted yet (state_store::qc_patient_unsent_message); a failed attempt must read
  // as attempted there, or a correction meant for the re-tag is split off into a second post.
  p->exec = [id = std::move(id), o = std::move(o), next_attempt](detail::outbox_db& db) {
    db.mark(id, message_state::pending, o, next_attempt, outbox_now());
  };
  p->complete = bool_completion(std::move(done));
  enqueue(std::move(p), 0);
}

void outbox::mark_dead(std::string id, attempt_outcome o, std::function<void(bool)> done) {
  auto p = std::make_unique<op>();
  // Not deferrable like the other marks (committed at once): a dead letter is what a person acts
  // on, and the CLI (another connection) must list it as soon as DELIVERY-002 is raised. Rare.
  p->exec = [id = std::move(id), o = std::move(o)](detail::outbox_db& db) {
    const auto now = outbox_now();
    db.mark(id, message_state::dead, o, now, now);
  };
  p->complete = bool_completion(std::move(done));
  enqueue(std::move(p), 0);
}

void outbox::census(outbox_time stuck_before, std::size_t limit,
                    std::function<void(std::optional<outbox_census>)> done) {
  auto out = std::make_shared<outbox_census>();
  auto p = std::make_unique<op>();
  p->writes = false;
  p->exec = [out, stuck_before, limit](detail::outbox_db& db) { *out = db.census(stuck_before, limit); };
  p->complete = [out, done = std::move(done)](bool ok, const std::string&) {
    if (done) done(ok ? std::optional<outbox_census>(std::move(*out)) : std::nullopt);
  };
  enqueue(std::move(p), 0);
}

void outbox::purge_delivered_before(outbox_time before, std::function<void(std::size_t)> done) {
  auto n = std::make_shared<std::size_t>(0);
  auto p = std::make_unique<op>();
  p->exec = [n, before](detail::outbox_db& db) { *n = db.purge_delivered_before(before); };
  p->complete = [n, done = std::move(done)](bool ok, const std::string&) {
    if (done) done(ok ? *n : 0);
  };
  enqueue(std::move(p), 0);
}

void outbox::write(state_changes state, std::function<void(bool)> done) {
  auto p = std::make_unique<op>();
  p->durable = true;
  p->exec = [state = std::move(state)](detail::outbox_db& db) { db.write_state(state); };
  p->complete = bool_completion(std::move(done));
  enqueue(std::move(p), 0);
}

void outbox::prune_history(rerun::timestamp cutoff, std::function<void(std::size_t)> done) {
  auto n = std::make_shared<std::size_t>(0);
  auto p = std::make_unique<op>();
  p->exec = [n, cutoff](detail::outbox_db& db) {
    *n = prune_results(db.handle(), cutoff);
    db.results_pruned();
    // The patient results of QC runs age with the result history (a run that old is not re-evaluated).
    statement del(db.handle(), "DELETE FROM qc_patients WHERE t < ?1");
    del.bind(1, static_cast<std::int64_t>(cutoff.time_since_epoch().count()));
    del.step();
    del.finish();
  };
  p->complete = [n, done = std::move(done)](bool ok, const std::string&) {
    if (done) done(ok ? *n : 0);
  };
  enqueue(std::move(p), 0);
}

void outbox::set_lab_zone(rerun::lab_zone zone) {
  auto p = std::make_unique<op>();
  p->writes = false;
  p->exec = [zone](detail::outbox_db& db) { db.zone_ = zone; };
  enqueue(std::move(p), 0);
}

void outbox::retry(std::string id, std::function<void(std::size_t)> done) {
  auto n = std::make_shared<std::size_t>(0);
  auto p = std::make_unique<op>();
  p->durable = true;  // somebody asked for it; it must not quietly fall back to dead
  p->exec = [n, id = std::move(id)](detail::outbox_db& db) { *n = db.retry(id, outbox_now()); };
  p->complete = [n, done = std::move(done)](bool ok, const std::string&) {
    if (done) done(ok ? *n : 0);
  };
  enqueue(std::move(p), 0);
}

void outbox::load_file_job(std::string message_id, std::function<void(std::optional<file_job>, bool)> done) {
  auto out = std::make_shared<std::optional<file_job>>();
  auto p = std::make_unique<op>();
  p->writes = false;
  p->exec = [out, id = std::move(message_id)](detail::outbox_db& db) { *out = db.load_file_job(id); };
  p->complete = [out, done = std::move(done)](bool ok, const std::string&) {
    if (done) done(ok ? std::move(*out) : std::nullopt, ok);
  };
  enqueue(std::move(p), 0);
}

void outbox::save_file_job(file_job job, std::function<void(bool)> done) {
  auto p = std::make_unique<op>();
  // A stage commits before the next starts (file-reports.md): after a power loss the daemon
  // must not believe an upload is still to do when the store has the object, nor the reverse.
  p->durable = true;
  p->exec = [job = std::move(job)](detail::outbox_db& db) { db.save_file_job(job); };
  p->complete = bool_completion(std::move(done));
  enqueue(std::move(p), 0);
}

namespace {

// `file` relative to `dir` when it lies inside it (lexically, after normalisation); else empty.
std::filesystem::path inside(const std::filesystem::path& dir, const std::filesystem::path& file) {
  if (dir.empty()) return {};
  const auto rel = file.lexically_normal().lexically_relative(dir.lexically_normal());
  if (rel.empty() || rel.is_absolute() || *rel.begin() == "..") return {};
  return rel;
}

}  // namespace

void outbox::remove_spool_file(std::filesystem::path file, std::function<void(bool)> done) {
  auto removed = std::make_shared<bool>(false);
  auto p = std::make_unique<op>();
  p->writes = false;
  // Queued after the commit that made the file unneeded (a finalized stage, a delivered mark):
  // durable, so the group this lands in is fsynced before `after` deletes anything.
  p->durable = true;
  p->exec = [](detail::outbox_db&) {};
  p->after = [removed, dir = spool_dir_, file = std::move(file)] {
    const auto rel = inside(dir, file);
    if (rel.empty()) return;  // not ours: an analyser's file or a folder device's, never deleted
    std::error_code ec;
    std::filesystem::remove(file, ec);
    if (ec) return;
    *removed = true;
    // Its per-file and per-batch folders (<device>/<batch>/<n>/name) when emptied; never the
    // device's folder, which a concurrent spool write may be creating a batch folder in.
    auto at = file.parent_path();
    for (auto depth = std::distance(rel.begin(), rel.end()); depth > 2; --depth, at = at.parent_path())
      if (!std::filesystem::remove(at, ec)) break;  // not empty (or gone): stop there
  };
  p->complete = [removed, done = std::move(done)](bool ok, const std::string&) {
    if (done) done(ok && *removed);
  };
  enqueue(std::move(p), 0);
}

void outbox::sweep_spool(std::function<void(std::size_t)> done) {
  auto n = std::make_shared<std::size_t>(0);
  auto p = std::make_unique<op>();
  p->writes = false;
  p->exec = [n, dir = spool_dir_](detail::outbox_db& db) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) return;
    std::unordered_set<std::string> needed;
    statement q(db.handle(),
                "SELECT b.body FROM messages m JOIN message_bodies b ON b.seq = m.seq"
                " LEFT JOIN file_jobs f ON f.message_id = m.id"
                " WHERE m.kind = 'file_report' AND m.state <> 'delivered'"
                " AND (f.stage IS NULL OR f.stage <> 'finalized')");
    // Every live report's file, flagged spool or not: bodies stored before the flag existed name
    // spool files too.
    while (q.step())
      if (const auto r = devices::parse_file_report_body(unpack_body_or_throw(q.bytes(0), "outbox")))
        needed.insert(std::filesystem::path(r->file).lexically_normal().string());
    std::vector<std::filesystem::path> files, folders;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory(ec)) folders.push_back(it->path());
      else if (!needed.contains(it->path().lexically_normal().string())) files.push_back(it->path());
    }
    for (const auto& f : files)
      if (std::filesystem::remove(f, ec)) ++*n;
    // Deepest first, so a folder emptied by its children goes too; non-empty ones stay.
    std::sort(folders.begin(), folders.end(), [](const auto& a, const auto& b) { return a.native().size() > b.native().size(); });
    for (const auto& f : folders) std::filesystem::remove(f, ec);
  };
  p->complete = [n, done = std::move(done)](bool ok, const std::string&) {
    if (done) done(ok ? *n : 0);
  };
  enqueue(std::move(p), 0);
}

bool outbox::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  ++flushing_;  // an open transaction of delivery bookkeeping commits now, not after its linger
  wake_worker();
  const bool idle = idle_.wait_for(lock, timeout, [this] { return queue_.empty() && !busy_ && !open_; });
  --flushing_;
  return idle;
}

void outbox::run() {
  // The open group transaction (issue #17): delivered marks (op::deferrable) run in it and
  // complete at once, but are committed only with
  // the next durable op (an ingest, whose fsync then covers it), or when the transaction has
  // been open `deferred_commit_after`, or on flush / stop. One mark used to be one commit: 5,354
  // mark commits against 689 ingest commits in one throughput.sh run, each appending the pending
  // indexes' leaves and the message's page to the WAL again. Every later op of this worker sees
  // the marks (same connection, same transaction): claim_due never hands out a
  // message marked delivered. A crash before the commit loses the marks: the messages are sent
  // again under the same Idempotency-Key, which at-least-once allows (the marks were never
  // fsynced, so a power loss could lose them before too; a SIGKILL now can as well: 14 kills of
  // `crash_test.sh 200 --messages 5000` re-sent 101 messages, all answered {duplicate:true};
  // 12 kills of the version before re-sent 8).
  std::vector<std::unique_ptr<op>> deferred;  // executed fine in the open transaction, not committed
  auto commit_by = std::chrono::steady_clock::time_point{};
  // For detail::gather_until: the appends the last durable commit stored, and a moving average
  // (1/8 of each new one) of how long a COMMIT takes.
  std::size_t last_appends = 0;
  std::chrono::microseconds commit_time{0};
  for (;;) {
    std::vector<std::unique_ptr<op>> batch;
    bool close_now = false;
    {
      std::unique_lock lock(mutex_);
      if (open_) {
        while (!(stopping_ || flushing_ > 0 || !queue_.empty()) && std::chrono::steady_clock::now() < commit_by)
          wait_for_work(lock, &commit_by);
        close_now = stopping_ || flushing_ > 0 || std::chrono::steady_clock::now() >= commit_by;
      } else {
        while (!(stopping_ || !queue_.empty())) wait_for_work(lock, nullptr);
        if (queue_.empty()) break;  // stopping, everything flushed
      }
      // Appends queued while analysers send at once: let more join them for about one commit's
      // time (detail::gather_until). Ops queued meanwhile do not wake the worker; stop and flush do.
      if (last_appends >= detail::gather_siblings && !stopping_ && flushing_ == 0) {
        const auto oldest = std::find_if(queue_.begin(), queue_.end(), [](const auto& o) { return o->appends > 0; });
        if (oldest != queue_.end()) {
          const auto until =
              detail::gather_until(last_appends, commit_time, (*oldest)->queued_at, std::chrono::steady_clock::now());
          while (!stopping_ && flushing_ == 0 && queue_.size() < max_ops_per_transaction &&
                 std::chrono::steady_clock::now() < until)
            wait_for_work(lock, &until, /*by_ops=*/false);
        }
      }
      // Whatever queued up while the previous commit ran goes into this one transaction.
      while (!queue_.empty() && deferred.size() + batch.size() < max_ops_per_transaction) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      if (deferred.size() + batch.size() >= max_ops_per_transaction) close_now = true;
      busy_ = true;
    }

    std::vector<char> ok(batch.size(), 0);
    std::vector<std::string> errors(batch.size());
    // An op that promises durability, deletes something once committed, or writes anything but
    // a delivery mark closes the transaction.
    const bool durable = std::any_of(batch.begin(), batch.end(), [](const auto& o) {
      return o->durable || o->after || (o->writes && !o->deferrable);
    });
    // The test hook of outbox_options::write_fault_file: a stat per batch, only when set.
    std::error_code fault_ec;
    bool write_fault = !write_fault_file_.empty() && std::filesystem::exists(write_fault_file_, fault_ec);
    // A fault file that says "unreadable" fails the reads too (a damaged page under a running daemon).
    // One that says "pause" fails nothing: the transaction waits before its COMMIT while the file
    // exists (a crash test kills the process in the middle of a transaction).
    bool read_fault = false, pause = false;
    if (write_fault) {
      std::string said;
      std::getline(std::ifstream(write_fault_file_), said);
      read_fault = said.find("unreadable") != std::string::npos;
      pause = said.find("pause") != std::string::npos;
      write_fault = !pause;
    }
    for (auto& o : batch)
      if (o->prepare) o->prepare();  // never throws: a file that fails drops its message
    const auto began = std::chrono::steady_clock::now();
    bool wrote = false;  // this batch changed something (an op that writes ran without error)
    bool failed = false;
    std::string commit_error;
    try {
      if (!open_ && !batch.empty()) {
        db_->control(detail::outbox_db::tx::begin);
        std::lock_guard lock(mutex_);
        open_ = true;
        commit_by = began + deferred_commit_after;
      }
      for (std::size_t i = 0; i < batch.size(); ++i) {
        // A savepoint per op: one bad op (a duplicate id...) fails alone, not the whole group. A
        // read (a claim, every delivered message) changes nothing one could undo: two statements
        // fewer per message (issue #17).
        const bool guarded = batch[i]->writes;
        if (guarded) db_->control(detail::outbox_db::tx::savepoint);
        try {
          if (write_fault && batch[i]->writes)
            throw std::runtime_error("outbox: attempt to write a readonly database (write_fault_file " +
                                     write_fault_file_.string() + " exists)");
          if (read_fault && !batch[i]->writes)
            throw std::runtime_error("outbox: database disk image is malformed (write_fault_file " +
                                     write_fault_file_.string() + " says unreadable)");
          batch[i]->exec(*db_);
          if (guarded) db_->control(detail::outbox_db::tx::release);
          ok[i] = 1;
          wrote = wrote || batch[i]->writes;
        } catch (const std::exception& e) {
          errors[i] = e.what();
          batch[i]->delivered = 0;
          db_->forget_indexes();
          if (guarded) {
            db_->control(detail::outbox_db::tx::rollback_to);
            db_->control(detail::outbox_db::tx::release);
          }
        }
      }
    } catch (const std::exception& e) {  // BEGIN or a savepoint failed: the transaction is gone
      failed = true;
      commit_error = e.what();
    }
    // Keep the transaction open for more bookkeeping, or commit it (durable: fsynced, since
    // synchronous=FULL; a transaction that wrote nothing writes nothing).
    const bool keep = !failed && !durable && !close_now && (wrote || !deferred.empty());
    bool committed = false;
    if (!keep && open_) {
      if (!failed) {
        try {
          while (pause && std::filesystem::exists(write_fault_file_, fault_ec))
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          if (wrote) db_->fold_history(stopping_);
          const auto commit_began = std::chrono::steady_clock::now();
          db_->control(detail::outbox_db::tx::commit);
          committed = true;
          const auto commit_took =
              std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - commit_began);
          commit_time += (commit_took - commit_time) / 8;
        } catch (const std::exception& e) {
          commit_error = e.what();
        }
      }
      if (!committed) {
        db_->forget_indexes();
        try {
          db_->control(detail::outbox_db::tx::rollback);
        } catch (...) {
        }
      }
      ++transactions_;
      std::lock_guard lock(mutex_);
      open_ = false;
    }
    const auto took = std::chrono::steady_clock::now() - began;
    // Settled: committed (or rolled back) now, or run in the transaction kept open.
    const bool settled = keep || committed;
    for (std::size_t i = 0; i < batch.size(); ++i)
      if (committed && ok[i] != 0 && batch[i]->after) batch[i]->after();

    std::size_t stored = 0;
    std::size_t failed_appends = 0;
    std::size_t delivered = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const bool fine = settled && ok[i] != 0;
      const std::size_t kept = batch[i]->appends - batch[i]->dropped - batch[i]->spared;
      if (kept > 0) (fine ? stored : failed_appends) += kept;
      failed_appends += batch[i]->dropped + batch[i]->spared;
      if (committed && ok[i] != 0) delivered += static_cast<std::size_t>(batch[i]->delivered);
    }
    if (committed)
      for (const auto& o : deferred) delivered += static_cast<std::size_t>(o->delivered);
    appended_ += stored;
    if (committed) last_appends = stored;
    if (failed_appends + delivered > 0) {
      undelivered_ -= failed_appends + delivered;
      update_alarm();
    }
    if (stored + failed_appends > 0) {
      // The ones an ACK waits for. Observed before any completion is posted: a caller woken by
      // its completion reads the histogram with this transaction in it.
      std::lock_guard lock(mutex_);
      commit_latency_.observe(took);
    }

    // The batch's completions (and the delivery wake-up) reach the caller's loop as ONE posted
    // function, in queue order (issue #17): a post per op cost a lock of the loop's queue and
    // often a wake-up of the loop each, hundreds per second.
    std::vector<std::function<void()>> completions;
    completions.reserve(batch.size() + 1);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const bool fine = settled && ok[i] != 0;
      std::string error = settled ? errors[i] : commit_error;
      if (auto& c = batch[i]->complete) {
        completions.emplace_back([c = std::move(c), fine, error = std::move(error)] { c(fine, error); });
      }
    }
    if (keep) {
      // Their undelivered count changes when they are committed.
      for (std::size_t i = 0; i < batch.size(); ++i)
        if (ok[i] != 0 && batch[i]->writes) deferred.push_back(std::move(batch[i]));
    } else {
      deferred.clear();
    }
    if (stored > 0) {
      std::function<void()> f;
      {
        std::lock_guard lock(mutex_);
        f = on_appended_;
      }
      if (f) completions.push_back(std::move(f));
    }
    if (completions.size() == 1) {
      finish(std::move(completions.front()));
    } else if (!completions.empty()) {
      finish([completions = std::move(completions)] {
        for (const auto& c : completions) c();
      });
    }

    {
      std::lock_guard lock(mutex_);
      busy_ = false;
    }
    idle_.notify_all();
  }
  // Stopping: the history events still pending go into their month rows, so a file closed
  // cleanly holds whole rows (readers would add the pending events anyway; this only spares them).
  db_->fold_history_at_close();
}

// ---- outbox_admin ----

outbox_admin::outbox_admin(const std::filesystem::path& file)
    : db_(std::make_unique<detail::outbox_db>(file)) {}
outbox_admin::~outbox_admin() = default;

std::vector<message_summary> outbox_admin::list(bool include_delivered, outbox_time now) {
  list_filter f;
  f.include_delivered = include_delivered;
  return db_->list(f, now);
}

std::vector<message_summary> outbox_admin::list(const list_filter& f, outbox_time now) { return db_->list(f, now); }

std::vector<resend> outbox_admin::resends_of(const std::string& id) { return db_->resends_of(id); }

std::size_t outbox_admin::set_aside(const std::string& id, const std::string& by, const std::string& reason,
                                    outbox_time now) {
  if (id.empty()) return 0;
  return db_->set_aside(id, by, reason, now);
}

std::optional<stored_message> outbox_admin::show(const std::string& id) { return db_->by_id(id); }

std::optional<file_job> outbox_admin::file_job_of(const std::string& id) { return db_->load_file_job(id); }

std::size_t outbox_admin::retry(const std::string& id) {
  if (id.empty()) return 0;  // "all" is retry_all_dead(), never an accident of an empty argument
  return db_->retry(id, outbox_now());
}

std::size_t outbox_admin::retry_all_dead() { return db_->retry({}, outbox_now()); }

std::size_t outbox_admin::purge_delivered_before(outbox_time before) {
  return db_->purge_delivered_before(before);
}

}  // namespace interfaced::transport
