// The outbox on a real SQLite file: durability across reopening, group commit, the bound, and the
// CLI's view (list / show / retry / purge).

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include <sqlite3.h>

#include "outbox_support.hpp"
#include "transport/body_codec.hpp"
#include "transport/history_store.hpp"
#include "transport/outbox.hpp"
#include "transport/state_store.hpp"

using namespace interfaced::transport;
using interfaced::test::append_wait;
using interfaced::test::config_at;
using interfaced::test::exec_sql;
using interfaced::test::query_int;
using interfaced::test::msg;
using interfaced::test::scratch_dir;
using namespace std::chrono_literals;


TEST_CASE("appended messages survive closing and reopening the file, bytes intact") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  // Non-ASCII, a NUL and CRLF: the body must come back byte for byte (it is re-sent on retry).
  const std::string tricky = std::string("{\"v\":\"Grüße \xE2\x80\x94 ") + '\0' + "\r\n\"}";
  std::vector<std::string> ids;
  {
    outbox box(config_at(file));
    auto r = append_wait(box, {msg("results", "R-1", "{\"n\":1}"), msg("rerun_values", "R-1", tricky),
                               msg("rerun_request", "R-2", "{\"n\":3}")});
    REQUIRE(r.durable);
    REQUIRE(r.ids.size() == 3);
    ids = r.ids;
    CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == 3);
    for (const auto& id : ids) CHECK(id.size() == 36);  // a UUID
    CHECK(box.stats().undelivered == 3);
  }
  {
    outbox_admin admin(file);
    auto list = admin.list();
    REQUIRE(list.size() == 3);
    CHECK(list[0].id == ids[0]);
    CHECK(list[1].kind == "rerun_values");
    CHECK(list[2].ordering_key == "R-2");
    for (const auto& m : list) CHECK(m.state == message_state::pending);
    auto shown = admin.show(ids[1]);
    REQUIRE(shown);
    CHECK(shown->body == tricky);
    CHECK(shown->attempts == 0);
    CHECK_FALSE(admin.show("no-such-id"));
  }
  {
    // The daemon restarting: the count comes back from the file, and the messages are due.
    boost::asio::io_context ioc;
    outbox box(config_at(file), interfaced::test::poster_for(ioc));
    CHECK(box.stats().undelivered == 3);
    std::optional<due_batch> due;
    box.claim_due({}, 10, outbox_now(), [&](due_batch b) { due = std::move(b); });
    REQUIRE(interfaced::test::run_until(ioc, [&] { return due.has_value(); }));
    // One head per key, oldest first.
    REQUIRE(due->messages.size() == 2);
    CHECK(due->messages[0].id == ids[0]);
    CHECK(due->messages[1].id == ids[2]);
  }
}

TEST_CASE("group commit gathering: only when analysers send at once, for one commit's time, never after a slow commit") {
  using detail::gather_until;
  using std::chrono::microseconds;
  const auto now = std::chrono::steady_clock::now();
  // An analyser sending alone (the last commit carried fewer than 4 appends): no wait.
  CHECK(gather_until(1, microseconds{800}, now, now) == now);
  CHECK(gather_until(detail::gather_siblings - 1, microseconds{800}, now, now) == now);
  // Nothing measured yet: no wait.
  CHECK(gather_until(32, microseconds{0}, now, now) == now);
  // Busy: one commit's time from now, the first append having waited less than one.
  CHECK(gather_until(8, microseconds{800}, now - microseconds{300}, now) == now + microseconds{800});
  // A slow disk: at most 2 ms.
  CHECK(gather_until(8, microseconds{9000}, now, now) == now + detail::gather_cap);
  // Never past two commits' time after the oldest append was queued...
  CHECK(gather_until(8, microseconds{800}, now - microseconds{1000}, now) == now + microseconds{600});
  // ...so appends that waited through a slow commit (an fsync spike) go at once.
  CHECK(gather_until(8, microseconds{800}, now - microseconds{6000}, now) <= now);
}

TEST_CASE("group commit: appends from many threads share transactions, all durable") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  constexpr int threads = 8;
  constexpr int per_thread = 250;
  constexpr int total = threads * per_thread;
  std::atomic<int> durable{0};
  std::atomic<int> failed{0};
  std::uint64_t transactions = 0;
  {
    outbox box(config_at(file, 100000));
    std::vector<std::thread> analysers;
    for (int t = 0; t < threads; ++t) {
      analysers.emplace_back([&, t] {
        for (int i = 0; i < per_thread; ++i) {
          box.append(msg("results", "dev-" + std::to_string(t), "{\"i\":" + std::to_string(i) + "}"),
                     [&](append_result r) { (r.durable ? durable : failed)++; });
        }
      });
    }
    for (auto& a : analysers) a.join();
    REQUIRE(box.flush(30s));
    transactions = box.stats().transactions;
    CHECK(box.stats().appended == static_cast<std::uint64_t>(total));
  }
  CHECK(durable == total);
  CHECK(failed == 0);
  INFO("transactions: " << transactions << " for " << total << " appends");
  CHECK(transactions >= 1);
  CHECK(transactions * 10 <= static_cast<std::uint64_t>(total));

  outbox_admin admin(file);
  auto list = admin.list();
  REQUIRE(list.size() == static_cast<std::size_t>(total));
  // Per-key append order is the order each thread appended in.
  std::map<std::string, int> next;
  for (const auto& m : list) {
    auto shown = admin.show(m.id);
    REQUIRE(shown);
    CHECK(shown->body == "{\"i\":" + std::to_string(next[m.ordering_key]++) + "}");
  }
}

TEST_CASE("message ids are version-7 UUIDs: creation time first, so they sort in creation order") {
  scratch_dir dir;
  outbox box(config_at(dir / "outbox.sqlite"));
  const auto before = std::chrono::system_clock::now();
  const auto a = append_wait(box, {msg("results", "R-1", "{}")});
  std::this_thread::sleep_for(3ms);
  const auto b = append_wait(box, {msg("results", "R-1", "{}")});
  const auto after = std::chrono::system_clock::now();
  REQUIRE(a.ids.size() == 1);
  REQUIRE(b.ids.size() == 1);
  for (const auto& id : {a.ids[0], b.ids[0]}) {
    REQUIRE(id.size() == 36);
    CHECK(id[8] == '-');
    CHECK(id[14] == '7');                                     // version
    CHECK(std::string("89ab").find(id[19]) != std::string::npos);  // RFC 9562 variant
    // The first 48 bits are the Unix time in milliseconds at creation.
    const auto ms = std::stoull(id.substr(0, 8) + id.substr(9, 4), nullptr, 16);
    const auto to_ms = [](auto t) {
      return static_cast<unsigned long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
    };
    CHECK(ms >= to_ms(before));
    CHECK(ms <= to_ms(after));
  }
  CHECK(a.ids[0] < b.ids[0]);
}

TEST_CASE("the commit histogram counts the transactions an ACK waits for, not delivery bookkeeping") {
  scratch_dir dir;
  boost::asio::io_context ioc;
  outbox box(config_at(dir / "outbox.sqlite"), interfaced::test::poster_for(ioc));
  std::optional<append_result> appended;
  box.append({msg("results", "R-1", "{}")}, [&](append_result r) { appended = std::move(r); });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return appended.has_value(); }));
  REQUIRE(appended->durable);
  CHECK(box.stats().commit_latency.count() == 1);

  std::optional<bool> marked;
  box.mark_delivered(appended->ids[0], attempt_outcome{200, "{}"}, [&](bool ok) { marked = ok; });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return marked.has_value(); }));
  CHECK(*marked);
  REQUIRE(box.flush(5s));  // the mark waits in the open transaction; flush commits it
  const auto s = box.stats();
  CHECK(s.transactions == 2);
  CHECK(s.commit_latency.count() == 1);  // the "delivered" mark released no ACK
  CHECK(s.undelivered == 0);
}

TEST_CASE("delivered marks ride on the next ingest commit: one transaction for marks and append") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  boost::asio::io_context ioc;
  outbox box(config_at(file), interfaced::test::poster_for(ioc));
  std::optional<append_result> first;
  box.append({msg("results", "R-1", "{}"), msg("results", "R-2", "{}"), msg("results", "R-3", "{}")},
             [&](append_result r) { first = std::move(r); });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return first.has_value(); }));
  REQUIRE(first->durable);
  const auto before = box.stats().transactions;

  // Three marks, one after the other as three connections finish: each completes at once ...
  for (const auto& id : first->ids) {
    std::optional<bool> marked;
    box.mark_delivered(id, attempt_outcome{200, "{}"}, [&](bool ok) { marked = ok; });
    REQUIRE(interfaced::test::run_until(ioc, [&] { return marked.has_value(); }));
    CHECK(*marked);
    // ... and no later claim of this worker hands the message out again.
    std::optional<due_batch> due;
    box.claim_due({}, 10, outbox_now(), [&](due_batch b) { due = std::move(b); });
    REQUIRE(interfaced::test::run_until(ioc, [&] { return due.has_value(); }));
    for (const auto& m : due->messages) CHECK(m.id != id);
  }
  // ... and the next append's durable commit carries them: one transaction for all four.
  std::optional<append_result> second;
  box.append({msg("results", "R-4", "{}")}, [&](append_result r) { second = std::move(r); });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return second.has_value(); }));
  REQUIRE(second->durable);
  CHECK(box.stats().transactions == before + 1);
  CHECK(box.stats().undelivered == 1);

  // Committed: another connection (the CLI) sees the three delivered, the fourth pending.
  outbox_admin admin(file);
  for (const auto& id : first->ids) {
    const auto m = admin.show(id);
    REQUIRE(m);
    CHECK(m->state == message_state::delivered);
    CHECK(m->delivered_at.has_value());
  }
  const auto last = admin.show(second->ids[0]);
  REQUIRE(last);
  CHECK(last->state == message_state::pending);
}

TEST_CASE("a mark with no ingest after it is committed on its own within the linger") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  outbox box(config_at(file));  // completions on the worker
  const auto r = append_wait(box, {msg("results", "R-1", "{}")});
  REQUIRE(r.durable);
  std::promise<bool> marked;
  box.mark_dead(r.ids[0], attempt_outcome{422, "no such test"}, [&](bool ok) { marked.set_value(ok); });
  CHECK(marked.get_future().get());
  // No flush and nothing else queued: the worker commits the open transaction by itself.
  outbox_admin admin(file);
  std::optional<stored_message> seen;
  for (int i = 0; i < 500; ++i) {
    seen = admin.show(r.ids[0]);
    if (seen && seen->state == message_state::dead) break;
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(seen);
  CHECK(seen->state == message_state::dead);
  CHECK(seen->last_status == 422);
}

TEST_CASE("claim_due: the oldest pending message of each free key, due ones first, busy keys skipped") {
  scratch_dir dir;
  boost::asio::io_context ioc;
  outbox box(config_at(dir / "outbox.sqlite", 100000), interfaced::test::poster_for(ioc));
  // 300 keys x 5 messages, appended round-robin so that no key's messages are adjacent.
  std::map<std::string, std::string> first_of;  // key -> id of its first message
  for (int round = 0; round < 5; ++round) {
    std::vector<new_message> batch;
    for (int k = 0; k < 300; ++k) batch.push_back(msg("results", "key-" + std::to_string(1000 + k), "{}"));
    std::optional<append_result> r;
    box.append(std::move(batch), [&](append_result a) { r = std::move(a); });
    REQUIRE(interfaced::test::run_until(ioc, [&] { return r.has_value(); }));
    REQUIRE(r->durable);
    if (round == 0)
      for (int k = 0; k < 300; ++k) first_of["key-" + std::to_string(1000 + k)] = r->ids[static_cast<std::size_t>(k)];
  }
  // key-1000's head is delivered: its second message becomes the head. key-1001's head waits for
  // a retry in an hour: not due, but it sets next_due.
  const auto claim = [&](std::vector<std::string> busy, std::size_t limit) {
    std::optional<due_batch> due;
    box.claim_due(std::move(busy), limit, outbox_now(), [&](due_batch b) { due = std::move(b); });
    REQUIRE(interfaced::test::run_until(ioc, [&] { return due.has_value(); }));
    return std::move(*due);
  };
  std::optional<bool> marked, retried;
  box.mark_delivered(first_of["key-1000"], attempt_outcome{200, "{}"}, [&](bool ok) { marked = ok; });
  const auto later = outbox_now() + std::chrono::hours(1);
  box.mark_retry(first_of["key-1001"], attempt_outcome{503, ""}, later, [&](bool ok) { retried = ok; });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return marked && retried; }));

  const auto all = claim({"key-1002"}, 1000);
  std::set<std::string> keys;
  for (const auto& m : all.messages) {
    CHECK(keys.insert(m.ordering_key).second);  // one message per key
    if (m.ordering_key != "key-1000") CHECK(m.id == first_of[m.ordering_key]);
  }
  CHECK(keys.size() == 298);  // 300 - busy key-1002 - key-1001 (not due)
  CHECK_FALSE(keys.contains("key-1001"));
  CHECK_FALSE(keys.contains("key-1002"));
  REQUIRE(keys.contains("key-1000"));
  REQUIRE(all.next_due);
  CHECK(*all.next_due == later);
  // Oldest first: key-1000's head is now a second-round message, so it comes after every first-round head.
  CHECK(all.messages.back().ordering_key == "key-1000");
  // The limit takes the oldest.
  const auto two = claim({}, 2);
  REQUIRE(two.messages.size() == 2);
  CHECK(two.messages[0].ordering_key == "key-1002");
  CHECK(two.messages[1].ordering_key == "key-1003");
}

TEST_CASE("ops queued together run in order in one batch: a claim queued after a delivered mark sees it") {
  scratch_dir dir;
  boost::asio::io_context ioc;
  std::atomic<int> posts{0};
  auto post = interfaced::test::poster_for(ioc);
  outbox box(config_at(dir / "outbox.sqlite"), [&](std::function<void()> f) {
    ++posts;
    post(std::move(f));
  });
  std::optional<append_result> r;
  box.append({msg("results", "K", "{\"n\":1}"), msg("results", "K", "{\"n\":2}")}, [&](append_result a) { r = std::move(a); });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return r.has_value(); }));
  REQUIRE(r->durable);
  std::optional<due_batch> first;
  box.claim_due({}, 1, outbox_now(), [&](due_batch b) { first = std::move(b); });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return first.has_value(); }));
  REQUIRE(first->messages.size() == 1);
  CHECK(first->messages[0].id == r->ids[0]);

  std::vector<std::string> order;
  std::optional<due_batch> next;
  posts = 0;
  box.together([&] {
    box.mark_delivered(r->ids[0], attempt_outcome{200, "{}"}, [&](bool ok) { order.push_back(ok ? "marked" : "failed"); });
    box.claim_due({}, 1, outbox_now(), [&](due_batch b) {
      order.push_back("claimed");
      next = std::move(b);
    });
  });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return next.has_value(); }));
  CHECK(order == std::vector<std::string>{"marked", "claimed"});
  CHECK(posts == 1);  // both completions reached the loop as one hand-off
  // The key's second message is its head only once the first is marked: the claim saw the mark.
  REQUIRE(next->messages.size() == 1);
  CHECK(next->messages[0].id == r->ids[1]);

  // An exception from the calls still queues (and completes) what was queued before it.
  std::optional<bool> marked;
  CHECK_THROWS_AS(box.together([&] {
    box.mark_delivered(r->ids[1], attempt_outcome{200, "{}"}, [&](bool ok) { marked = ok; });
    throw std::runtime_error("caller bug");
  }),
                  std::runtime_error);
  REQUIRE(interfaced::test::run_until(ioc, [&] { return marked.has_value(); }));
  CHECK(*marked);
}

TEST_CASE("bounded: at max_messages the outbox refuses and raises the alarm, but never drops") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  outbox box(config_at(file, 5));  // no poster: completions on the worker (or appending) thread
  std::mutex alarm_mutex;
  std::vector<bool> alarms;
  box.on_alarm([&](bool on) {
    std::lock_guard l(alarm_mutex);
    alarms.push_back(on);
  });

  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(append_wait(box, {msg("results", "K", "{}")}).ids.at(0));
  CHECK(box.accepting());
  CHECK_FALSE(box.alarm());
  ids.push_back(append_wait(box, {msg("results", "K", "{}")}).ids.at(0));
  CHECK_FALSE(box.accepting());
  CHECK(box.alarm());

  // A transfer accepted just before the limit still arrives: it is stored, not dropped.
  auto late = append_wait(box, {msg("results", "K", "{\"late\":1}"), msg("results", "K", "{\"late\":2}")});
  REQUIRE(late.durable);
  CHECK(box.stats().undelivered == 7);
  CHECK(outbox_admin(file).list().size() == 7);

  // Delivering makes room again.
  for (int i = 0; i < 3; ++i) box.mark_delivered(ids[static_cast<std::size_t>(i)], {200, "{}"});
  REQUIRE(box.flush(10s));
  CHECK(box.stats().undelivered == 4);
  CHECK(box.accepting());
  CHECK_FALSE(box.alarm());
  std::lock_guard l(alarm_mutex);
  CHECK(alarms == std::vector<bool>{true, false});
}

TEST_CASE("dead letters keep the response, retry re-queues, purge removes old delivered messages") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  outbox box(config_at(file));
  auto ids = append_wait(box, {msg("results", "A", "{\"a\":1}"), msg("results", "B", "{\"b\":1}"),
                               msg("results", "C", "{\"c\":1}")})
                 .ids;
  box.mark_dead(ids[0], {422, "{\"error\":\"unknown parameter XYZ\"}"});
  box.mark_delivered(ids[1], {201, "{}"});
  box.mark_dead(ids[2], {400, "bad"});
  REQUIRE(box.flush(10s));
  CHECK(box.stats().undelivered == 2);  // dead letters still count: they are not delivered

  outbox_admin admin(file);
  auto list = admin.list();
  REQUIRE(list.size() == 2);
  CHECK(list[0].state == message_state::dead);
  CHECK(list[0].last_status == 422);
  CHECK(list[0].attempts == 1);
  CHECK(list[0].age >= 0ms);
  auto shown = admin.show(ids[0]);
  REQUIRE(shown);
  CHECK(shown->last_response == "{\"error\":\"unknown parameter XYZ\"}");
  CHECK(admin.list(true).size() == 3);

  CHECK(admin.retry(ids[0]) == 1);
  CHECK(admin.show(ids[0])->state == message_state::pending);
  CHECK(admin.retry(ids[1]) == 0);  // delivered: nothing to retry
  CHECK(admin.retry("") == 0);
  CHECK(admin.retry_all_dead() == 1);
  CHECK(admin.show(ids[2])->state == message_state::pending);

  CHECK(admin.purge_delivered_before(outbox_now() - 1h) == 0);
  CHECK(admin.purge_delivered_before(outbox_now() + 1s) == 1);
  CHECK_FALSE(admin.show(ids[1]));
  CHECK(admin.list(true).size() == 2);
}

namespace {

// A new outbox file at `file` holding `ms` (appended durably), closed again; their ids in order.
std::vector<std::string> file_holding(const std::filesystem::path& file, std::vector<new_message> ms) {
  outbox box(config_at(file));
  const auto n = ms.size();
  auto ids = append_wait(box, std::move(ms)).ids;
  REQUIRE(ids.size() == n);
  return ids;
}

}  // namespace

// Issue #17: schema 10 drops the delivered_at and history_events_day indexes (a leaf rewritten by
// nearly every commit, read by no hot path); purge finds its rows by bisecting seq on created_at.
TEST_CASE("schema 10: a version-9 file loses two write-only indexes, keeps its messages, and purge still finds them") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  std::vector<new_message> forty;
  for (int i = 0; i < 40; ++i) forty.push_back(msg("results", "K-" + std::to_string(i), "{\"i\":" + std::to_string(i) + "}"));
  const auto ids = file_holding(file, std::move(forty));
  CHECK(query_int(file, "PRAGMA user_version") == 17);  // schemas 11 to 17 followed
  CHECK(query_int(file, "SELECT count(*) FROM sqlite_master WHERE name IN ('delivered_at', 'history_events_day')") == 0);
  // Back to version 9 as that release left it, with its indexes; message i created at i * 100 ms
  // (seq order), the even ones delivered 50 ms later, the odd ones pending.
  exec_sql(file,
           std::string(interfaced::test::bodies_back_in_messages) +
               "CREATE INDEX delivered_at ON messages(delivered_at) WHERE state = 'delivered';"
           "CREATE INDEX history_events_day ON history_events(day);"
           "UPDATE messages SET created_at = (seq - (SELECT min(seq) FROM messages)) * 100;"
           "UPDATE messages SET state = 'delivered', delivered_at = created_at + 50"
           " WHERE (seq - (SELECT min(seq) FROM messages)) % 2 = 0;"
           "PRAGMA user_version = 9;");
  outbox_admin admin(file);  // migrates
  CHECK(query_int(file, "PRAGMA user_version") == 17);
  CHECK(query_int(file, "SELECT count(*) FROM sqlite_master WHERE name IN ('delivered_at', 'history_events_day')") == 0);
  CHECK(admin.list(true).size() == 40);
  using ms = std::chrono::milliseconds;
  CHECK(admin.purge_delivered_before(outbox_time(ms(0))) == 0);
  CHECK(admin.purge_delivered_before(outbox_time(ms(50))) == 0);   // message 0 delivered at 50
  CHECK(admin.purge_delivered_before(outbox_time(ms(51))) == 1);
  CHECK_FALSE(admin.show(ids[0]));
  CHECK(admin.purge_delivered_before(outbox_time(ms(2000))) == 9);  // 2, 4, ... 18 (1850 < 2000)
  CHECK(admin.show(ids[20]));                                        // delivered at 2050
  CHECK(admin.show(ids[19]));                                        // pending
  CHECK(admin.purge_delivered_before(outbox_time(ms(100000))) == 10);  // the rest of the even ones
  CHECK(admin.list(true).size() == 20);
  for (const auto& m : admin.list(true)) CHECK(m.state == message_state::pending);
}

// Issue #17: schema 11 drops pending_by_key (a random leaf written at append and again at the
// delivered mark); the worker keeps each key's pending messages in memory.
TEST_CASE("schema 11: a version-10 file loses pending_by_key and keeps per-key order and heads") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  std::vector<new_message> ms;
  // Keys A and B interleaved: A-0 B-0 A-1 B-1 A-2 B-2.
  for (int i = 0; i < 3; ++i) {
    ms.push_back(msg("results", "A", "{\"a\":" + std::to_string(i) + "}"));
    ms.push_back(msg("results", "B", "{\"b\":" + std::to_string(i) + "}"));
  }
  const auto ids = file_holding(file, std::move(ms));
  // Back to version 10 as that release left it: the index, and A-0 delivered already.
  exec_sql(file,
           std::string(interfaced::test::bodies_back_in_messages) +
               "CREATE INDEX pending_by_key ON messages(ordering_key, seq) WHERE state = 'pending';"
           "CREATE INDEX results_age ON results (received_at);"
           "UPDATE messages SET state = 'delivered', delivered_at = created_at WHERE id = '" + ids[0] + "';"
           "PRAGMA user_version = 10;");
  boost::asio::io_context ioc;
  outbox box(config_at(file), interfaced::test::poster_for(ioc));  // migrates
  CHECK(query_int(file, "PRAGMA user_version") == 17);
  CHECK(query_int(file, "SELECT count(*) FROM sqlite_master WHERE name IN ('pending_by_key', 'results_age')") == 0);
  CHECK(box.stats().undelivered == 5);
  // The heads are A-1 and B-0; delivering them makes A-2 and B-1 the heads, in append order.
  auto claim = [&] {
    std::optional<due_batch> due;
    box.claim_due({}, 10, outbox_now(), [&](due_batch b) { due = std::move(b); });
    REQUIRE(interfaced::test::run_until(ioc, [&] { return due.has_value(); }));
    std::set<std::string> out;
    for (const auto& m : due->messages) out.insert(m.id);
    return out;
  };
  CHECK(claim() == std::set<std::string>{ids[1], ids[2]});
  for (const auto& id : {ids[1], ids[2]}) {
    std::optional<bool> marked;
    box.mark_delivered(id, attempt_outcome{200, "{}"}, [&](bool ok) { marked = ok; });
    REQUIRE(interfaced::test::run_until(ioc, [&] { return marked.has_value(); }));
    REQUIRE(*marked);
  }
  CHECK(claim() == std::set<std::string>{ids[3], ids[4]});  // A-2 and B-1
}

namespace {

interfaced::rerun::history_event sample_result(std::string device, std::string sample, std::string observed_at) {
  interfaced::rerun::history_event e;
  e.event_type = "device_result";
  e.dimension_a = std::move(device);
  e.dimension_b = "GLU";
  e.sample = std::move(sample);
  e.observed_at = std::move(observed_at);
  e.delta = 1;
  return e;
}

history_row result_row(std::string sample, std::string parameter, std::string value, long long received_s) {
  history_row r{std::move(sample), std::move(parameter), {}};
  r.o.value = std::move(value);
  r.o.observed_at = "20261205120000";
  r.o.received_at = interfaced::rerun::timestamp(std::chrono::seconds(received_s));
  return r;
}

std::string body_naming(const std::string& sample) {
  return R"({"device_id":"chem","results":[{"sample_id":")" + sample + R"(","parameter":"GLU"}]})";
}

std::set<std::string> ids_of(const std::vector<message_summary>& ms) {
  std::set<std::string> out;
  for (const auto& m : ms) out.insert(m.id);
  return out;
}

std::vector<message_summary> listed_for(outbox_admin& admin, const std::string& sample) {
  list_filter f;
  f.include_delivered = true;
  f.sample = sample;
  return admin.list(f);
}

// device_sample counted on 2026-12-05 for `device` (0: none).
std::int64_t samples_counted(const std::filesystem::path& file, const std::string& device) {
  history_store h(file);
  for (const auto& r : h.all())
    if (r.event_type == "device_sample" && r.dimension_a == device && interfaced::rerun::format_day(r.day) == "2026-12-05")
      return r.value;
  return 0;
}

}  // namespace

// Issue #17: schema 12 keeps no b-tree keyed by sample (results_sp, message_samples by sample,
// history_samples by day/device/sample: each a random leaf per message); the sample lookups
// are answered from memory. A version-11 file keeps its rows and answers them the same.
TEST_CASE("schema 12: a version-11 file keeps its results, message samples and history samples, found by sample") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  std::vector<std::string> ids;
  {
    outbox box(config_at(file));
    state_changes s;
    s.history = {result_row("S-1", "HGB", "13.5", 1'000), result_row("S-2", "PLT", "250", 1'000),
                 result_row("S-2", "PLT", "260", 1'001)};
    s.events = {sample_result("chem", "S-1", "2026-12-05T10:00:00Z"), sample_result("chem", "S-2", "2026-12-05T10:00:00Z")};
    ids = append_wait(box, {msg("results", "S-1", body_naming("S-1")), msg("results", "S-2", body_naming("S-2"))}, s).ids;
    REQUIRE(ids.size() == 2);
  }
  REQUIRE(samples_counted(file, "chem") == 2);
  // Back to version 11 as that release left it: its index on results, message_samples keyed by
  // (sample, seq) with an index on seq, history_samples keyed by (day, device, sample).
  exec_sql(file,
           std::string(interfaced::test::bodies_back_in_messages) +
               "CREATE INDEX results_sp ON results (sample, parameter);"
           "DROP TRIGGER message_samples_gone;"
           "CREATE TABLE ms11 (sample TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (sample, seq)) WITHOUT ROWID;"
           "INSERT INTO ms11 SELECT sample, seq FROM message_samples;"
           "DROP TABLE message_samples;"
           "ALTER TABLE ms11 RENAME TO message_samples;"
           "CREATE INDEX message_samples_by_seq ON message_samples(seq);"
           "CREATE TRIGGER message_samples_gone AFTER DELETE ON messages"
           " BEGIN DELETE FROM message_samples WHERE seq = old.seq; END;"
           "CREATE TABLE hs11 (day TEXT NOT NULL, device TEXT NOT NULL, sample TEXT NOT NULL,"
           " PRIMARY KEY (day, device, sample)) WITHOUT ROWID;"
           "INSERT INTO hs11 SELECT day, device, sample FROM history_samples;"
           "DROP TABLE history_samples;"
           "ALTER TABLE hs11 RENAME TO history_samples;"
           "PRAGMA user_version = 11;");
  REQUIRE(query_int(file, "SELECT count(*) FROM message_samples") == 2);
  {
    outbox box(config_at(file));  // migrates
    CHECK(query_int(file, "PRAGMA user_version") == 17);
    CHECK(query_int(file, "SELECT count(*) FROM sqlite_master WHERE name IN ('results_sp', 'message_samples_by_seq')") == 0);
    CHECK(query_int(file, "SELECT count(*) FROM sqlite_master WHERE name = 'message_samples'") == 0);
    CHECK(query_int(file, "SELECT count(*) FROM message_bodies WHERE samples IN (char(10) || 'S-1' || char(10),"
                          " char(10) || 'S-2' || char(10))") == 2);
    CHECK(query_int(file, "SELECT count(*) FROM history_samples") == 2);
    // S-1 again on the same day is not a new sample for chem; S-3 is.
    state_changes s;
    s.events = {sample_result("chem", "S-1", "2026-12-05T11:00:00Z"), sample_result("chem", "S-3", "2026-12-05T11:00:00Z")};
    REQUIRE(append_wait(box, {msg("results", "S-3", body_naming("S-3"))}, s).durable);
  }
  CHECK(samples_counted(file, "chem") == 3);
  state_store store(file);
  CHECK(store.has("S-1", "HGB"));
  CHECK_FALSE(store.has("S-1", "PLT"));
  CHECK(store.has_observation("S-2", "PLT", "250", "20261205120000"));
  CHECK_FALSE(store.has_observation("S-2", "PLT", "251", "20261205120000"));
  REQUIRE(store.latest("S-2", "PLT"));
  CHECK(store.latest("S-2", "PLT")->value == "260");
  outbox_admin admin(file);
  CHECK(ids_of(listed_for(admin, "S-1")) == std::set<std::string>{ids[0]});
  CHECK(ids_of(listed_for(admin, "S-2")) == std::set<std::string>{ids[1]});
  CHECK(listed_for(admin, "S-3").size() == 1);
  CHECK(listed_for(admin, "S-4").empty());
  // The bodies moved out of messages (message_bodies) come back with their messages.
  CHECK(query_int(file, "SELECT count(*) FROM pragma_table_info('messages') WHERE name = 'body'") == 0);
  REQUIRE(admin.show(ids[0]));
  CHECK(admin.show(ids[0])->body == body_naming("S-1"));
  CHECK(admin.show(ids[1])->body == body_naming("S-2"));
}

// Issue #17: schema 13 stores bodies deflated (body_codec.hpp). A version-12 file (bodies as the
// program gave them) is packed in one transaction at open, and every reader gets the same bytes.
TEST_CASE("schema 13: a version-12 file's bodies are packed at open and read back byte for byte") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  std::string big = R"({"device_id":"chem","results":[)";
  for (int i = 0; i < 6; ++i)
    big += std::string(i ? "," : "") + R"({"sample_id":"S-9","parameter":"P)" + std::to_string(i) +
           R"(","unit":"mmol/L","observed_at":"2026-12-05T10:00:00+00:00","value":")" + std::to_string(i) + R"("})";
  big += "]}";
  const std::vector<std::string> bodies = {big, "{}", body_naming("S-1"), std::string("\0x", 2)};
  std::vector<new_message> ms;
  for (std::size_t i = 0; i < bodies.size(); ++i) ms.push_back(msg("results", "K-" + std::to_string(i), bodies[i]));
  const auto ids = file_holding(file, std::move(ms));
  CHECK(query_int(file, "PRAGMA user_version") == 17);
  // The results body stored packed: the marker byte (0x01: against the dictionary, schema 17),
  // then less than half its bytes.
  const std::string packed_sql =
      "SELECT substr(b.body, 1, 1) = x'01' AND length(b.body) * 2 < " + std::to_string(big.size()) +
      " FROM messages m JOIN message_bodies b ON b.seq = m.seq WHERE m.id = '" + ids[0] + "'";
  CHECK(query_int(file, packed_sql.c_str()) == 1);
  // Back to version 12 as that release left it: every body stored as the program gave it.
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* get = nullptr;
    sqlite3_stmt* put = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT seq, body FROM message_bodies ORDER BY seq", -1, &get, nullptr) == SQLITE_OK);
    std::vector<std::pair<std::int64_t, std::string>> raw;
    while (sqlite3_step(get) == SQLITE_ROW) {
      const auto* p = static_cast<const char*>(sqlite3_column_blob(get, 1));
      const auto n = static_cast<std::size_t>(sqlite3_column_bytes(get, 1));
      const auto body = unpack_body(std::string_view(p ? p : "", n));
      REQUIRE(body);
      raw.emplace_back(sqlite3_column_int64(get, 0), *body);
    }
    sqlite3_finalize(get);
    REQUIRE(raw.size() == bodies.size());
    REQUIRE(sqlite3_prepare_v2(db, "UPDATE message_bodies SET body = ?2 WHERE seq = ?1", -1, &put, nullptr) == SQLITE_OK);
    for (std::size_t i = 0; i < raw.size(); ++i) {
      CHECK(raw[i].second == bodies[i]);
      sqlite3_reset(put);
      sqlite3_bind_int64(put, 1, raw[i].first);
      sqlite3_bind_blob64(put, 2, raw[i].second.data(), raw[i].second.size(), SQLITE_TRANSIENT);
      REQUIRE(sqlite3_step(put) == SQLITE_DONE);
    }
    sqlite3_finalize(put);
    const std::string v12 = interfaced::test::samples_back_in_table + "PRAGMA user_version = 12;";
    REQUIRE(sqlite3_exec(db, v12.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  // Nothing packed now but the NUL-led body (a version-12 program stored that one bare).
  REQUIRE(query_int(file, "SELECT count(*) FROM message_bodies WHERE substr(body, 1, 1) = x'00'") == 1);
  {
    outbox_admin admin(file);  // migrates
    CHECK(query_int(file, "PRAGMA user_version") == 17);
    CHECK(query_int(file, packed_sql.c_str()) == 1);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const auto m = admin.show(ids[i]);
      REQUIRE(m);
      CHECK(m->body == bodies[i]);
    }
    CHECK(ids_of(listed_for(admin, "S-9")) == std::set<std::string>{ids[0]});
    CHECK(ids_of(listed_for(admin, "S-1")) == std::set<std::string>{ids[2]});
  }
  // What delivery is handed: the same bytes.
  boost::asio::io_context ioc;
  outbox box(config_at(file), interfaced::test::poster_for(ioc));
  std::optional<due_batch> due;
  box.claim_due({}, 10, outbox_now(), [&](due_batch b) { due = std::move(b); });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return due.has_value(); }));
  REQUIRE(due->messages.size() == bodies.size());
  std::map<std::string, std::string> claimed;
  for (const auto& m : due->messages) claimed[m.id] = m.body;
  for (std::size_t i = 0; i < ids.size(); ++i) CHECK(claimed[ids[i]] == bodies[i]);
}

// Issue #17: schema 15 keeps the samples a body names in the body's row (message_bodies.samples),
// not in message_samples (a b-tree leaf and its splits in every commit). A version-14 file's rows
// move there at open; a search by sample, the dead-letter match and the purge answer as before.
TEST_CASE("schema 15: a version-14 file's message samples move into their bodies' rows and answer the same") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  const auto ids = file_holding(
      file, {msg("results", "K-0",
                 R"({"device_id":"chem","results":[{"sample_id":"S-2","value":"1"},{"sample_id":"S-1","value":"2"}]})"),
             msg("results", "K-1", body_naming("S-2")), msg("results", "K-2", body_naming("S-10")),
             msg("results", "K-3", "{}")});
  // Back to version 14 as that release left it: a message_samples row per (message, sample).
  exec_sql(file, interfaced::test::samples_back_in_table + "UPDATE messages SET state = 'dead' WHERE id = '" + ids[0] +
                     "'; UPDATE messages SET state = 'delivered', delivered_at = created_at WHERE id = '" + ids[1] +
                     "'; PRAGMA user_version = 14;");
  REQUIRE(query_int(file, "SELECT count(*) FROM message_samples") == 4);
  outbox_admin admin(file);  // migrates
  CHECK(query_int(file, "PRAGMA user_version") == 17);
  CHECK(query_int(file, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'message_samples%'") == 0);
  const std::string first_row = "SELECT count(*) FROM messages m JOIN message_bodies b ON b.seq = m.seq WHERE m.id = '" +
                                ids[0] + "' AND b.samples = char(10) || 'S-1' || char(10) || 'S-2' || char(10)";
  CHECK(query_int(file, first_row.c_str()) == 1);
  CHECK(ids_of(listed_for(admin, "S-1")) == std::set<std::string>{ids[0]});
  CHECK(ids_of(listed_for(admin, "S-2")) == std::set<std::string>{ids[0], ids[1]});
  CHECK(ids_of(listed_for(admin, "S-10")) == std::set<std::string>{ids[2]});
  CHECK(listed_for(admin, "S-").empty());
  CHECK(listed_for(admin, "S-1\nS-2").empty());  // two samples of one body are not one sample
  state_store store(file);
  const auto dead = store.dead_letters_naming("S-1");
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].first == ids[0]);
  CHECK(dead[0].second.find(R"("value":"2")") != std::string::npos);
  CHECK(store.dead_letters_naming("S-1\nS-2").empty());
  CHECK(store.dead_letters_naming("S-10").empty());  // not dead
  // The delivered message purged: its body row, and the samples it names, go with it.
  CHECK(admin.purge_delivered_before(outbox_now() + std::chrono::hours(1)) == 1);
  CHECK(query_int(file, "SELECT count(*) FROM message_bodies") == 3);
  CHECK(ids_of(listed_for(admin, "S-2")) == std::set<std::string>{ids[0]});
}

// The lab view's reader and the rerun check's reader stay open while the worker writes: what
// they find by sample follows every append, prune and purge made since.
TEST_CASE("readers opened before the writes find by sample what was appended, pruned and purged since") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  outbox box(config_at(file));  // completions on the worker: waited for with promises
  state_store store(file);
  outbox_admin admin(file);
  CHECK_FALSE(store.has("S-1", "HGB"));
  CHECK(listed_for(admin, "S-1").empty());
  state_changes s;
  s.history = {result_row("S-1", "HGB", "13.5", 1'000), result_row("S-1", "HGB^sub=2", "13.7", 1'000)};
  const auto first = append_wait(box, {msg("results", "S-1", body_naming("S-1"))}, s).ids;
  REQUIRE(first.size() == 1);
  CHECK(store.has("S-1", "HGB"));
  REQUIRE(store.latest_of_parameter("S-1", "HGB"));
  CHECK(store.latest_of_parameter("S-1", "HGB")->value == "13.7");
  CHECK_FALSE(store.latest_of_parameter("S-1", "HG"));
  CHECK(ids_of(listed_for(admin, "S-1")) == std::set<std::string>{first[0]});
  // A later result of S-1, and a failed append naming S-1 (the same id again): only the first counts.
  state_changes later;
  later.history = {result_row("S-1", "HGB", "14.0", 2'000)};
  const auto second = append_wait(box, {msg("results", "S-1", body_naming("S-1"))}, later).ids;
  REQUIRE(second.size() == 1);
  state_changes lost;
  lost.history = {result_row("S-1", "HGB", "99", 2'000)};
  CHECK_FALSE(append_wait(box, {msg("results", "S-1", body_naming("S-1"), second[0])}, lost).durable);
  CHECK(store.latest("S-1", "HGB")->value == "14.0");
  CHECK_FALSE(store.has_observation("S-1", "HGB", "99", "20261205120000"));
  CHECK(ids_of(listed_for(admin, "S-1")) == std::set<std::string>{first[0], second[0]});
  // The rerun window moves past the first results: they are no longer seen.
  std::promise<std::size_t> removed;
  box.prune_history(interfaced::rerun::timestamp(std::chrono::seconds(1'500)), [&](std::size_t n) { removed.set_value(n); });
  CHECK(removed.get_future().get() == 2);
  CHECK_FALSE(store.has_observation("S-1", "HGB", "13.5", "20261205120000"));
  CHECK(store.latest_of_parameter("S-1", "HGB")->value == "14.0");
  CHECK(store.has("S-1", "HGB"));
  CHECK_FALSE(store.has("S-1", "HGB^sub=2"));
  // The first message delivered and purged: the sample names only the second.
  std::promise<bool> marked;
  box.mark_delivered(first[0], attempt_outcome{200, "{}"}, [&](bool ok) { marked.set_value(ok); });
  REQUIRE(marked.get_future().get());
  std::promise<std::size_t> purged;
  box.purge_delivered_before(outbox_now() + 1h, [&](std::size_t n) { purged.set_value(n); });
  CHECK(purged.get_future().get() == 1);
  CHECK(ids_of(listed_for(admin, "S-1")) == std::set<std::string>{second[0]});
  CHECK(query_int(file, "SELECT count(*) FROM message_bodies") == 1);  // the purged one's body went with it
}

// history_samples' days are held in memory by the worker: a rolled-back op must not leave its
// samples there, and another connection's rebuild must be noticed.
TEST_CASE("device_sample: a sample of a failed append counts when it comes again, and a rebuild is followed") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  outbox box(config_at(file));
  state_changes a;
  a.events = {sample_result("chem", "S-1", "2026-12-05T10:00:00Z")};
  const auto ids = append_wait(box, {msg("results", "S-1", body_naming("S-1"))}, a).ids;
  REQUIRE(ids.size() == 1);
  state_changes failed;
  failed.events = {sample_result("chem", "S-2", "2026-12-05T10:00:00Z")};
  CHECK_FALSE(append_wait(box, {msg("results", "S-2", body_naming("S-2"), ids[0])}, failed).durable);
  state_changes again;
  again.events = {sample_result("chem", "S-2", "2026-12-05T10:05:00Z"), sample_result("chem", "S-1", "2026-12-05T10:05:00Z")};
  REQUIRE(append_wait(box, {msg("results", "S-2", body_naming("S-2"))}, again).durable);
  CHECK(samples_counted(file, "chem") == 2);
  {
    history_store h(file);
    h.rebuild(interfaced::rerun::lab_zone{});
  }
  CHECK(samples_counted(file, "chem") == 2);
  state_changes more;
  more.events = {sample_result("chem", "S-2", "2026-12-05T11:00:00Z"), sample_result("chem", "S-3", "2026-12-05T11:00:00Z")};
  REQUIRE(append_wait(box, {msg("results", "S-3", body_naming("S-3"))}, more).durable);
  CHECK(samples_counted(file, "chem") == 3);
}

TEST_CASE("a set-aside and a retry made by the CLI on the file change which message delivery claims") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  boost::asio::io_context ioc;
  outbox box(config_at(file), interfaced::test::poster_for(ioc));
  std::optional<append_result> r;
  box.append({msg("results", "K", "{}"), msg("results", "K", "{}")}, [&](append_result a) { r = std::move(a); });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return r.has_value(); }));
  REQUIRE(r->durable);
  auto claim = [&] {
    std::optional<due_batch> due;
    box.claim_due({}, 10, outbox_now(), [&](due_batch b) { due = std::move(b); });
    REQUIRE(interfaced::test::run_until(ioc, [&] { return due.has_value(); }));
    std::vector<std::string> out;
    for (const auto& m : due->messages) out.push_back(m.id);
    return out;
  };
  CHECK(claim() == std::vector<std::string>{r->ids[0]});
  outbox_admin admin(file);  // another connection, as `interfaced outbox set-aside` is
  REQUIRE(admin.set_aside(r->ids[0], "A. Person", "wrong patient") == 1);
  CHECK(claim() == std::vector<std::string>{r->ids[1]});
  REQUIRE(admin.retry(r->ids[0]) == 1);
  CHECK(claim() == std::vector<std::string>{r->ids[0]});
}

TEST_CASE("set aside: audited, skipped by delivery's claims, its key moves on, only retry of that message sends it") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  outbox box(config_at(file));
  auto ids = append_wait(box, {msg("results", "K", R"({"sample_id":"S-1"})"), msg("results", "K", R"({"sample_id":"S-2"})")}).ids;
  outbox_admin admin(file);
  CHECK(admin.set_aside(ids[0], "A. Person", "the backend refuses it, ticket 7", outbox_now()) == 1);
  CHECK(admin.set_aside(ids[0], "B", "again") == 0);  // already set aside
  CHECK(admin.set_aside("no-such-id", "B", "x") == 0);
  auto m = admin.show(ids[0]);
  REQUIRE(m);
  CHECK(m->state == message_state::set_aside);
  CHECK(m->set_aside_by == "A. Person");
  CHECK(m->set_aside_reason == "the backend refuses it, ticket 7");
  REQUIRE(m->set_aside_at);
  CHECK(std::string(to_string(m->state)) == "set-aside");

  // Delivery's view: the key's head is now the second message.
  std::optional<due_batch> batch;
  box.claim_due({}, 10, outbox_now() + 1s, [&](due_batch b) { batch = std::move(b); });
  REQUIRE(box.flush(10s));
  REQUIRE(batch);
  REQUIRE(batch->messages.size() == 1);
  CHECK(batch->messages[0].id == ids[1]);
  // An attempt that was in flight when it was set aside does not put it back.
  box.mark_retry(ids[0], {503, "busy"}, outbox_now());
  REQUIRE(box.flush(10s));
  CHECK(admin.show(ids[0])->state == message_state::set_aside);

  CHECK(admin.retry_all_dead() == 0);  // "every dead letter" is not the set-aside one
  CHECK(admin.retry(ids[0]) == 1);
  CHECK(admin.show(ids[0])->state == message_state::pending);
  CHECK(admin.show(ids[0])->set_aside_by == "A. Person");  // the audit stays
}

TEST_CASE("outbox list filters: --state, --sample, --since, and the census of dead and stuck messages") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  outbox box(config_at(file));
  const auto t0 = outbox_now();
  auto ids = append_wait(box, {msg("results", "R-1", R"({"results":[{"sample_id":"S-1","value":"1"}]})"),
                               msg("results", "R-2", R"({"results":[{"sample_id":"S-10","value":"2"}]})"),
                               msg("results", "R-3", R"({"results":[{"sample_id":"S-3","value":"3"}]})")})
                 .ids;
  box.mark_dead(ids[1], {422, "no"});
  box.mark_delivered(ids[2], {200, "{}"});
  REQUIRE(box.flush(10s));
  outbox_admin admin(file);

  list_filter f;
  f.state = message_state::dead;
  auto rows = admin.list(f);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].id == ids[1]);
  f.state = message_state::delivered;  // a state filter names delivered ones without --all
  REQUIRE(admin.list(f).size() == 1);
  CHECK(admin.list(f)[0].id == ids[2]);

  list_filter by_sample;
  by_sample.sample = "S-1";  // not S-10
  rows = admin.list(by_sample);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].id == ids[0]);

  list_filter since;
  since.include_delivered = true;
  since.since = t0 - 1h;
  CHECK(admin.list(since).size() == 3);
  since.since = outbox_now() + 1h;
  CHECK(admin.list(since).empty());
  CHECK(message_state_from("set-aside") == message_state::set_aside);
  CHECK_FALSE(message_state_from("gone"));

  std::optional<outbox_census> c;
  box.census(outbox_now() + 1s, 10, [&](std::optional<outbox_census> x) { c = std::move(x); });
  REQUIRE(box.flush(10s));
  REQUIRE(c);
  CHECK(c->dead == 1);
  CHECK(c->stuck == 1);  // the pending one; delivered and dead ones are not "stuck"
  REQUIRE(c->oldest_stuck.size() == 1);
  CHECK(c->oldest_stuck[0].id == ids[0]);
  box.census(t0 - 1h, 10, [&](std::optional<outbox_census> x) { c = std::move(x); });
  REQUIRE(box.flush(10s));
  REQUIRE(c);
  CHECK(c->stuck == 0);
}

TEST_CASE("the write fault hook fails every write as a read-only file would, reads still work") {
  scratch_dir dir;
  auto cfg = config_at(dir / "outbox.sqlite");
  cfg.write_fault_file = dir / "readonly";
  outbox box(cfg);
  auto ids = append_wait(box, {msg("results", "K", "{}")}).ids;
  { std::ofstream(cfg.write_fault_file) << "x"; }
  std::optional<bool> marked;
  box.mark_delivered(ids[0], {200, "{}"}, [&](bool ok) { marked = ok; });
  std::optional<due_batch> batch;
  box.claim_due({}, 10, outbox_now() + 1s, [&](due_batch b) { batch = std::move(b); });
  REQUIRE(box.flush(10s));
  REQUIRE(marked);
  CHECK_FALSE(*marked);
  REQUIRE(batch);
  CHECK(batch->messages.size() == 1);
  CHECK_FALSE(append_wait(box, {msg("results", "K", "{}")}).durable);
  std::filesystem::remove(cfg.write_fault_file);
  CHECK(append_wait(box, {msg("results", "K", "{}")}).durable);
}

TEST_CASE("resends: a dead letter's later copies are found by sample, stored with the batch, listed with it") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  outbox box(config_at(file));
  auto ids = append_wait(box, {msg("results", "R-1", R"({"results":[{"parameter":"GLU","sample_id":"S-7","value":"5.1"}]})"),
                               msg("results", "R-2", R"({"results":[{"parameter":"GLU","sample_id":"S-77","value":"5.1"}]})")})
                 .ids;
  box.mark_dead(ids[0], {422, "no"});
  box.mark_dead(ids[1], {422, "no"});
  REQUIRE(box.flush(10s));
  state_store store(file);
  const auto found = store.dead_letters_naming("S-7");  // not S-77
  REQUIRE(found.size() == 1);
  CHECK(found[0].first == ids[0]);
  CHECK(found[0].second.find("\"value\":\"5.1\"") != std::string::npos);
  CHECK(store.dead_letters_naming("S-8").empty());

  state_changes sc;
  sc.resends.push_back({ids[0], {}, "CHEM-1", "S-7", "GLU", "5.1", "20260101120000"});
  REQUIRE(append_wait(box, {}, sc).durable);
  outbox_admin admin(file);
  const auto copies = admin.resends_of(ids[0]);
  REQUIRE(copies.size() == 1);
  CHECK(copies[0].device == "CHEM-1");
  CHECK(copies[0].value == "5.1");
  CHECK(copies[0].received_at > outbox_time{});  // stamped when stored
  const auto rows = admin.list();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].resends == 1);
  CHECK(rows[1].resends == 0);
  // Retried and delivered, it is no longer a dead letter to match against.
  CHECK(admin.retry(ids[0]) == 1);
  CHECK(store.dead_letters_naming("S-7").empty());
}

TEST_CASE("list by sample: exact ids, every sample a body names, by device, newest first within a limit") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  std::vector<std::string> ids;
  {
    outbox box(config_at(file));
    auto rerun_post = msg("rerun_values", "R-2", R"({"lab_report_id":"R-2","values":[{"sample_id":"S-7","parameter":"K"}]})");
    rerun_post.device = "imm";  // the body names a report, not a device: the appender says which
    ids = append_wait(box, {msg("results", "R-1", R"({"device_id":"chem","results":[{"sample_id":"S-7"},{"sample_id":"S-7"}]})"),
                            msg("results", "R-3", R"({"device_id":"chem","results":[{"sample_id":"S-77"}]})"),
                            rerun_post,
                            // A QC correction names several patients' samples.
                            msg("qc_results", "device:chem", R"({"device_id":"chem","patient_results":[{"sample_id":"S-1"},{"sample_id":"S-7"}]})")})
              .ids;
    REQUIRE(ids.size() == 4);
  }
  outbox_admin admin(file);
  auto ids_of = [&](const list_filter& f) {
    std::vector<std::string> out;
    for (const auto& m : admin.list(f)) out.push_back(m.id);
    return out;
  };
  list_filter f;
  f.sample = "S-7";  // not S-77
  CHECK(ids_of(f) == std::vector<std::string>{ids[0], ids[2], ids[3]});
  f.sample = "S-1";
  CHECK(ids_of(f) == std::vector<std::string>{ids[3]});
  f.sample = "S-";
  CHECK(ids_of(f).empty());
  f.sample = "S-7";
  f.device = "imm";
  CHECK(ids_of(f) == std::vector<std::string>{ids[2]});
  CHECK(admin.show(ids[2])->device == "imm");
  CHECK(admin.show(ids[0])->device == "chem");  // named by the body
  f.device = "chem";
  f.newest_first = true;
  f.limit = 1;
  CHECK(ids_of(f) == std::vector<std::string>{ids[3]});
  list_filter all;
  all.newest_first = true;
  all.limit = 2;
  CHECK(ids_of(all) == std::vector<std::string>{ids[3], ids[2]});
}

// Issue #17: schema 16 writes the messages' CHECK on state as comparisons. The IN list it
// replaces made SQLite build and free an ephemeral table at every append and every state change
// (~35,000 instructions each). A version-15 file as that release left it is rewritten at open;
// the rule still holds, for new rows and changed ones, and the file stays whole.
TEST_CASE("schema 16: a version-15 file's state CHECK becomes comparisons and still refuses an unknown state") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  const auto ids = file_holding(file, {msg("results", "K-0", "{}"), msg("results", "K-1", "{}")});
  const std::string in_list = "CHECK (state IN (''pending'',''delivered'',''dead'',''set-aside''))";
  const std::string compared =
      "CHECK (state = ''pending'' OR state = ''delivered'' OR state = ''dead'' OR state = ''set-aside'')";
  const auto cookie = query_int(file, "PRAGMA schema_version");
  exec_sql(file, "PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = replace(sql, '" + compared + "', '" +
                     in_list + "') WHERE name = 'messages'; PRAGMA schema_version = " + std::to_string(cookie + 1) +
                     "; PRAGMA writable_schema = OFF; PRAGMA user_version = 15;");
  REQUIRE(query_int(file, "SELECT count(*) FROM sqlite_master WHERE name = 'messages' AND sql LIKE '%state IN (%'") == 1);
  {
    outbox_admin admin(file);  // migrates
    CHECK(admin.list().size() == 2);
  }
  CHECK(query_int(file, "PRAGMA user_version") == 17);
  CHECK(query_int(file, "SELECT count(*) FROM sqlite_master WHERE name = 'messages' AND sql LIKE '%state IN (%'") == 0);
  CHECK(query_int(file, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'") == 1);
  // The rule, through another connection: an unknown state is refused on insert and on update.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db, "INSERT INTO messages (id, kind, ordering_key, created_at, next_attempt_at, state)"
                         " VALUES ('x', 'results', 'K', 1, 1, 'sent')", nullptr, nullptr, nullptr) == SQLITE_CONSTRAINT);
  CHECK(sqlite3_exec(db, ("UPDATE messages SET state = 'lost' WHERE id = '" + ids[0] + "'").c_str(), nullptr, nullptr,
                     nullptr) == SQLITE_CONSTRAINT);
  CHECK(sqlite3_exec(db, ("UPDATE messages SET state = 'set-aside' WHERE id = '" + ids[0] + "'").c_str(), nullptr,
                     nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  outbox box(config_at(file));  // and the outbox appends as before
  CHECK(append_wait(box, {msg("results", "K-2", "{}")}).durable);
}
