// The rerun state in the outbox's file: a batch's messages, result history and state documents
// commit in one transaction (all or nothing), an empty append is an ordering barrier, the history
// is pruned on the worker, and a file of the previous schema is migrated in place.

#include <sqlite3.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <vector>

#include "outbox_support.hpp"
#include "transport/outbox.hpp"
#include "transport/state_store.hpp"

using namespace interfaced::transport;
using interfaced::test::append_wait;
using interfaced::test::config_at;
using interfaced::test::msg;
using interfaced::test::scratch_dir;
using namespace std::chrono_literals;

namespace {

history_row row(std::string sample, std::string parameter, std::string value, std::string observed_at,
                long long received_s = 1'800'000'000) {
  history_row r{std::move(sample), std::move(parameter), {}};
  r.o.value = std::move(value);
  r.o.observed_at = std::move(observed_at);
  r.o.received_at = interfaced::rerun::timestamp(std::chrono::seconds(received_s));
  return r;
}

}  // namespace

TEST_CASE("a batch's messages, history rows and state documents are durable together or not at all") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  {
    outbox box(config_at(file));
    state_changes s;
    s.history = {row("S-1", "HGB", "13.5", "20260101120000"), row("S-1", "PLT", "250", "20260101120000")};
    s.documents = {{"rerun_state", "{\"v\":1}"}};
    REQUIRE(append_wait(box, {msg("results", "R-1", "{}", "fixed-id-1")}, s).durable);

    // The same id again violates the messages' UNIQUE id: the whole op fails, and its history
    // rows and document must not be kept either (the analyser is NAKed and resends).
    state_changes t;
    t.history = {row("S-2", "HGB", "9.1", "20260101130000")};
    t.documents = {{"rerun_state", "{\"v\":2}"}};
    const auto failed = append_wait(box, {msg("results", "R-2", "{}", "fixed-id-1")}, t);
    CHECK_FALSE(failed.durable);
    CHECK_FALSE(failed.error.empty());
  }
  state_store store(file);  // the daemon's reader, after a restart
  CHECK(store.has_observation("S-1", "HGB", "13.5", "20260101120000"));
  CHECK(store.has("S-1", "PLT"));
  CHECK_FALSE(store.has("S-2", "HGB"));
  CHECK(store.get("rerun_state") == std::optional<std::string>("{\"v\":1}"));
  const auto latest = store.latest("S-1", "PLT");
  REQUIRE(latest);
  CHECK(latest->value == "250");
  outbox_admin admin(file);
  CHECK(admin.list().size() == 1);
}

// Issue #14: a QC re-evaluation is ONE transaction (not resumable steps): the resolution's audit
// entry, the qc-runs posts it causes and the re-evaluated charts are all found after a restart,
// or none of them (a crash before the commit, here a failing op: the resolution was never made).
TEST_CASE("a QC resolution's audit entry, its qc-runs posts and the charts commit together or not at all") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  {
    outbox box(config_at(file));
    state_changes s;
    s.qc_audit = {{1, "resolution", "chem|GLU|t1", "chem", "GLU", "BAD_VIAL", "ana", "vial open", "2026-12-06T10:00:00.000+00:00", 0,
                   "re-evaluated 2 run(s)"}};
    s.documents = {{"qc_state", "{\"v\":1}"}};
    REQUIRE(append_wait(box, {msg("qc_runs", "device:chem", "{\"run_id\":\"chem@t1\"}", "run-1"),
                              msg("qc_runs", "device:chem", "{\"run_id\":\"chem@t2\"}", "run-2")}, s).durable);
    // The undo's transaction fails (the same message id again): its audit entry and charts are
    // not kept either.
    state_changes t;
    t.qc_audit = {{2, "undo", "chem|GLU|t1", "chem", "GLU", "BAD_VIAL", "ben", "", "2026-12-06T11:00:00.000+00:00", 1, ""}};
    t.documents = {{"qc_state", "{\"v\":2}"}};
    CHECK_FALSE(append_wait(box, {msg("qc_runs", "device:chem", "{}", "run-1")}, t).durable);
  }
  state_store store(file);  // after a restart
  const auto audit = store.qc_audit();
  REQUIRE(audit.size() == 1);
  CHECK(audit[0].kind == "resolution");
  CHECK(audit[0].by == "ana");
  CHECK(audit[0].reason == "vial open");
  CHECK(audit[0].detail == "re-evaluated 2 run(s)");
  CHECK(store.get("qc_state") == std::optional<std::string>("{\"v\":1}"));
  outbox_admin admin(file);
  CHECK(admin.list().size() == 2);
}

TEST_CASE("an empty append completes only after everything queued before it was committed") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  boost::asio::io_context ioc;
  outbox box(config_at(file), interfaced::test::poster_for(ioc));
  state_store store(file);
  std::vector<std::string> order;
  bool barrier_saw_rows = false;
  for (int i = 0; i < 50; ++i) {
    state_changes s;
    s.history = {row("S-" + std::to_string(i), "HGB", "1", "t")};
    box.append({msg("results", "R", "{}")}, std::move(s), [&order, i](append_result r) {
      CHECK(r.durable);
      order.push_back("append " + std::to_string(i));
    });
  }
  box.append({}, state_changes{}, [&](append_result r) {
    CHECK(r.durable);
    order.push_back("barrier");
    // What the barrier waited for is visible to the daemon's reader when it completes.
    barrier_saw_rows = store.has("S-49", "HGB") && store.has("S-0", "HGB");
  });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return order.size() == 51; }));
  CHECK(order.back() == "barrier");
  CHECK(barrier_saw_rows);
}

// The rerun decision's result index (outbox schema 12) is loaded at start-up
// (state_store::load_index), so the first analyser message after a restart does not wait for a
// read of every kept result; it names every kept result, before and after a prune.
TEST_CASE("the result history is pruned by age on the outbox worker, state writes go the same way") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  boost::asio::io_context ioc;
  outbox box(config_at(file), interfaced::test::poster_for(ioc));
  state_changes s;
  s.history = {row("OLD", "HGB", "1", "t", 1'000), row("NEW", "HGB", "2", "t", 2'000), row("NEW", "PLT", "250", "t", 2'000)};
  s.documents = {{"parameters:xn-1", "[]"}};
  std::optional<bool> written;
  box.write(std::move(s), [&](bool ok) { written = ok; });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return written.has_value(); }));
  CHECK(*written);
  state_store loaded_before(file);
  CHECK(loaded_before.load_index() == 3);
  std::optional<std::size_t> removed;
  box.prune_history(interfaced::rerun::timestamp(std::chrono::seconds(1'500)), [&](std::size_t n) { removed = n; });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return removed.has_value(); }));
  CHECK(*removed == 1);
  CHECK(loaded_before.load_index() == 2);  // the pruned result's entry went
  CHECK_FALSE(loaded_before.has("OLD", "HGB"));
  CHECK(loaded_before.has("NEW", "PLT"));
  state_store store(file);
  CHECK(store.load_index() == 2);
  CHECK_FALSE(store.has("OLD", "HGB"));
  CHECK(store.has("NEW", "HGB"));
  CHECK(store.get("parameters:xn-1") == std::optional<std::string>("[]"));
}

TEST_CASE("an outbox file of schema version 1 is migrated in place, its messages kept") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  {
    // The version 1 schema as the first release wrote it, with one pending message.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
    const char* v1 =
        "CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,"
        " ordering_key TEXT NOT NULL, body BLOB NOT NULL, internal INTEGER NOT NULL DEFAULT 0,"
        " created_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,"
        " state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','delivered','dead')),"
        " last_status INTEGER NOT NULL DEFAULT 0, last_response BLOB, delivered_at INTEGER);"
        "INSERT INTO messages (id, kind, ordering_key, body, created_at, next_attempt_at)"
        " VALUES ('old-1', 'results', 'R-9', '{}', 1, 1);"
        "PRAGMA user_version = 1;";
    REQUIRE(sqlite3_exec(db, v1, nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  {
    outbox box(config_at(file));
    CHECK(box.stats().undelivered == 1);
    state_changes s;
    s.history = {row("S-1", "HGB", "13.5", "t")};
    REQUIRE(append_wait(box, {msg("results", "R-1", "{}")}, s).durable);
  }
  state_store store(file);
  CHECK(store.has("S-1", "HGB"));
  outbox_admin admin(file);
  const auto list = admin.list();
  REQUIRE(list.size() == 2);
  CHECK(list[0].id == "old-1");
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  // version 3: set-aside and resends (outbox.cpp migrate_to_3); 5: the file-report stages
  // (migrate_file_tables); 6: the historical summary (migrate_to_6); 7: the QC audit
  // (migrate_qc_tables); 8: message device and samples, the summary by month (migrate_to_8);
  // 9: the patient results of QC runs (migrate_to_9); 10: no delivered_at and history_events_day
  // indexes (migrate_to_10); 11: no pending_by_key index (migrate_to_11); 12: no b-tree keyed
  // by sample (migrate_to_12); 13: bodies deflated (migrate_to_13); 14: the summary folded in
  // batches (migrate_to_14); 15: a body's samples in its row (migrate_to_15); 16: the state
  // CHECK without an IN list (migrate_to_16); 17: bodies deflated against a dictionary (migrate_to_17)
  CHECK(sqlite3_column_int(st, 0) == 17);
  sqlite3_finalize(st);
  REQUIRE(sqlite3_prepare_v2(db, "SELECT count(*) FROM file_jobs", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(sqlite3_column_int(st, 0) == 0);
  sqlite3_finalize(st);
  REQUIRE(sqlite3_prepare_v2(db, "SELECT count(*) FROM qc_audit", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(sqlite3_column_int(st, 0) == 0);
  sqlite3_finalize(st);
  REQUIRE(sqlite3_prepare_v2(db, "SELECT count(*) FROM qc_patients", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(sqlite3_column_int(st, 0) == 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

// Issue #14: the patient results of QC runs commit with the post that carries them, come back
// after a restart, give exported_at once that post is delivered, and age with the history. A
// version 7 file (before qc_patients) is migrated, its rows kept.
TEST_CASE("QC runs' patient results: stored with their post, read back, delivered_at, pruned and version 8 migrated") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  const auto at = [](long long s) { return interfaced::rerun::timestamp(std::chrono::seconds(s)); };
  {
    outbox box(config_at(file));
    state_changes s;
    s.history = {row("S-1", "GLU", "5.4", "20261206083000")};
    REQUIRE(append_wait(box, {msg("results", "R-1", "{}", "keep-1")}, s).durable);
  }
  {
    // Back to version 8 as an older daemon left it (messages' device and samples, the summary by
    // month): no qc_patients table.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
    const std::string v8 =
        std::string(interfaced::test::bodies_back_in_messages) + "DROP TABLE qc_patients; PRAGMA user_version = 8;";
    REQUIRE(sqlite3_exec(db, v8.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    CHECK(state_store(file).qc_patients().empty());  // no table: nothing, not an error
  }
  boost::asio::io_context ioc;
  {
    outbox box(config_at(file), interfaced::test::poster_for(ioc));
    state_changes s;
    s.qc_patients = {{"chem", "S-2", "GLU", "2026-12-06T10:30:00+00:00", at(1'800'000'000), "post-2"},
                     {"chem", "S-3", "GLU", "2026-12-06T10:45:00+00:00", at(1'800'000'900), "post-3"}};
    std::optional<append_result> r;
    box.append({msg("results", "S-2", "{}", "post-2"), msg("results", "S-3", "{}", "post-3")}, s,
               [&](append_result a) { r = std::move(a); });
    REQUIRE(interfaced::test::run_until(ioc, [&] { return r.has_value(); }));
    REQUIRE(r->durable);
    // A failed append keeps no row either (the same message id again).
    state_changes t;
    t.qc_patients = {{"chem", "S-9", "GLU", "2026-12-06T11:00:00+00:00", at(1'800'001'000), "post-2"}};
    r.reset();
    box.append({msg("results", "S-9", "{}", "post-2")}, t, [&](append_result a) { r = std::move(a); });
    REQUIRE(interfaced::test::run_until(ioc, [&] { return r.has_value(); }));
    CHECK_FALSE(r->durable);

    state_store store(file);
    CHECK_FALSE(store.qc_patient_delivered_at("chem", "S-2", "GLU", "2026-12-06T10:30:00+00:00").has_value());
    std::optional<bool> marked;
    box.mark_delivered("post-2", attempt_outcome{200, "{}"}, [&](bool ok) { marked = ok; });
    REQUIRE(interfaced::test::run_until(ioc, [&] { return marked.has_value(); }));
    REQUIRE(*marked);
    // A delivered mark is committed with the next durable commit or within 100 ms (outbox.hpp);
    // this reader is another connection: it sees the mark once committed.
    REQUIRE(box.flush(std::chrono::seconds(5)));
    const auto delivered = store.qc_patient_delivered_at("chem", "S-2", "GLU", "2026-12-06T10:30:00+00:00");
    REQUIRE(delivered.has_value());
    CHECK(*delivered > 0);
    CHECK_FALSE(store.qc_patient_delivered_at("chem", "S-3", "GLU", "2026-12-06T10:45:00+00:00").has_value());
    CHECK_FALSE(store.qc_patient_delivered_at("chem", "S-2", "GLU", "2026-12-06T10:31:00+00:00").has_value());

    std::optional<std::size_t> pruned;
    box.prune_history(at(1'800'000'500), [&](std::size_t n) { pruned = n; });  // S-2 is older
    REQUIRE(interfaced::test::run_until(ioc, [&] { return pruned.has_value(); }));
  }
  state_store store(file);  // after a restart
  const auto rows = store.qc_patients();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].device == "chem");
  CHECK(rows[0].sample_id == "S-3");
  CHECK(rows[0].parameter == "GLU");
  CHECK(rows[0].observed_at == "2026-12-06T10:45:00+00:00");
  CHECK(rows[0].t == at(1'800'000'900));
  CHECK(rows[0].message_id == "post-3");
}

TEST_CASE("reads inside a read_scope share one snapshot, and see new commits once it ends") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  outbox box(config_at(file));
  state_store store(file);
  state_changes first;
  first.history = {row("S-1", "HGB", "13.5", "20260101120000")};
  REQUIRE(append_wait(box, {msg("results", "R-1", "{}")}, first).durable);
  {
    const state_store::read_scope outer(store);
    CHECK(store.has("S-1", "HGB"));  // the snapshot starts here
    state_changes second;
    second.history = {row("S-2", "PLT", "250", "20260101120500")};
    REQUIRE(append_wait(box, {msg("results", "R-2", "{}")}, second).durable);
    {
      const state_store::read_scope inner(store);  // nested: still the outer snapshot
      CHECK_FALSE(store.has("S-2", "PLT"));
    }
    CHECK_FALSE(store.has("S-2", "PLT"));
  }
  // The scope is over: the commit made meanwhile is visible, and nothing was written by reading.
  CHECK(store.has("S-2", "PLT"));
  CHECK(store.has("S-1", "HGB"));
}

// The daemon's state store follows the outbox worker's result_feed (outbox::results_feed): its
// index catches up from the rows the worker committed, not from the table. A row staged by an op
// that was then rolled back (here: its audit entry's id is taken) must not stand for the row of
// the next op, which SQLite gives the same seq.
TEST_CASE("a store following the outbox's feed sees each committed result and none of a rolled-back op") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  outbox box(config_at(file));
  state_store store(file);
  store.follow(box.results_feed());
  CHECK(store.load_index() == 0);  // the table, read once
  const auto audit = [](std::int64_t id) {
    return interfaced::rerun::qc::audit_entry{id, "resolution", "chem|GLU|t1", "chem", "GLU", "BAD_VIAL", "ana", "", "2026-12-06T10:00:00.000+00:00", 0, ""};
  };
  state_changes a;
  a.history = {row("S-A", "HGB", "13.5", "t")};
  a.qc_audit = {audit(1)};
  REQUIRE(append_wait(box, {msg("results", "R-A", "{}")}, a).durable);
  CHECK(store.has("S-A", "HGB"));
  state_changes b;  // fails after its result row was written: audit id 1 again
  b.history = {row("S-B", "HGB", "14.0", "t")};
  b.qc_audit = {audit(1)};
  CHECK_FALSE(append_wait(box, {msg("results", "R-B", "{}")}, b).durable);
  state_changes c;
  c.history = {row("S-C", "HGB", "12.1", "t"), row("S-C", "PLT", "250", "t")};
  REQUIRE(append_wait(box, {msg("results", "R-C", "{}")}, c).durable);
  CHECK_FALSE(store.has("S-B", "HGB"));
  CHECK(store.has("S-C", "HGB"));
  CHECK(store.has("S-C", "PLT"));
  CHECK(store.has_observation("S-C", "HGB", "12.1", "t"));
  CHECK(store.load_index() == 3);
  state_store fresh(file);  // the table agrees
  CHECK(fresh.load_index() == 3);
  CHECK(fresh.has("S-C", "PLT"));
}

TEST_CASE("a store following the outbox's feed reads the table after a prune and after its own writes") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  boost::asio::io_context ioc;
  outbox box(config_at(file), interfaced::test::poster_for(ioc));
  state_store store(file);
  store.follow(box.results_feed());
  CHECK(store.load_index() == 0);
  state_changes s;
  s.history = {row("OLD", "HGB", "1", "t", 1'000), row("NEW", "HGB", "2", "t", 2'000), row("NEW", "PLT", "250", "t", 2'000)};
  std::optional<bool> written;
  box.write(std::move(s), [&](bool ok) { written = ok; });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return written.has_value(); }));
  REQUIRE(*written);
  CHECK(store.load_index() == 3);
  std::optional<std::size_t> removed;
  box.prune_history(interfaced::rerun::timestamp(std::chrono::seconds(1'500)), [&](std::size_t n) { removed = n; });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return removed.has_value(); }));
  CHECK(*removed == 1);
  CHECK(store.load_index() == 2);  // the pruned row's entry went: the feed said "read the table"
  CHECK_FALSE(store.has("OLD", "HGB"));
  // A result the store writes itself (a tool's result_store write) is not in the feed.
  interfaced::rerun::observation o;
  o.value = "7";
  o.observed_at = "t";
  o.received_at = interfaced::rerun::timestamp(std::chrono::seconds(3'000));
  store.record("OWN", "WBC", o);
  CHECK(store.has("OWN", "WBC"));
  CHECK(store.load_index() == 3);
}
