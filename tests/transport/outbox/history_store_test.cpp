// The historical summary in the outbox's file (spec/history.md "How it stays right"): counts
// commit in the batch's own transaction (a failed append leaves none), device_sample counts a
// sample's first result of the day, corrections land on the observed day, dead letters count,
// `stats rebuild` gives exactly the live rows (and follows a time-zone change), prune drops years.

#include <cstdio>
#include <future>
#include <map>
#include <random>

#include <sqlite3.h>

#include "outbox_support.hpp"
#include "transport/history_store.hpp"
#include "transport/outbox.hpp"

using namespace interfaced::transport;
using interfaced::test::append_wait;
using interfaced::test::config_at;
using interfaced::test::msg;
using interfaced::test::query_int;
using interfaced::test::scratch_dir;
using interfaced::rerun::history_event;
using namespace std::chrono_literals;

namespace {

history_event ev(std::string type, std::string device, std::string b, std::string observed_at, std::string sample = {},
                 std::int64_t delta = 1) {
  history_event e;
  e.event_type = std::move(type);
  e.dimension_a = std::move(device);
  e.dimension_b = std::move(b);
  e.observed_at = std::move(observed_at);
  e.sample = std::move(sample);
  e.delta = delta;
  return e;
}

interfaced::rerun::lab_zone zone(const char* name) {
  auto z = interfaced::rerun::lab_zone::find(name);
  REQUIRE(z);
  return *z;
}

// (day, type, a, b) -> value, for readable comparisons.
std::map<std::string, std::int64_t> as_map(const std::vector<interfaced::rerun::summary_row>& rows) {
  std::map<std::string, std::int64_t> m;
  for (const auto& r : rows)
    m[interfaced::rerun::format_day(r.day) + " " + r.event_type + " " + r.dimension_a + " " + r.dimension_b] = r.value;
  return m;
}

}  // namespace

TEST_CASE("history: counts commit with the batch's messages, per lab-local day, in the batch's transaction") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  {
    outbox box(config_at(file));
    box.set_lab_zone(zone("Asia/Kolkata"));
    state_changes s;
    s.events = {ev("device_result", "chem", "GLU", "2026-12-05T17:30:00Z", "S-1"),
                ev("device_result", "chem", "NA", "2026-12-05T17:30:00Z", "S-1"),  // same sample, same day
                ev("device_result", "chem", "GLU", "2026-12-05T18:30:00Z", "S-1"),  // next local day
                ev("device_result", "chem", "GLU", "2026-12-06T12:00:00Z", "S-2")};
    REQUIRE(append_wait(box, {msg("results", "R-1", "{}", "id-1")}, s).durable);
    // A failing op (the same message id again) takes its counts with it.
    state_changes t;
    t.events = {ev("device_result", "chem", "GLU", "2026-12-06T12:00:00Z", "S-3")};
    CHECK_FALSE(append_wait(box, {msg("results", "R-2", "{}", "id-1")}, t).durable);
    // A correction on Dec 7 of a result observed on Dec 5 (local): -1 on Dec 5.
    state_changes c;
    c.events = {ev("device_result", "chem", "NA", "2026-12-05T17:30:00Z", "S-1", -1)};
    REQUIRE(append_wait(box, {}, c).durable);
  }
  history_store store(file);
  const auto m = as_map(store.all());
  CHECK(m == std::map<std::string, std::int64_t>{
                 {"2026-12-05 device_result chem GLU", 1},
                 {"2026-12-05 device_result chem NA", 0},
                 {"2026-12-05 device_sample chem ", 1},
                 {"2026-12-06 device_result chem GLU", 2},
                 {"2026-12-06 device_sample chem ", 2},  // S-1 again on a new day, and S-2
             });
}

TEST_CASE("history: a message becoming a dead letter counts device_dead_letter by endpoint") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  {
    outbox box(config_at(file));
    REQUIRE(append_wait(box, {msg("results", "R-1", R"({"device_id":"chem","results":[{"sample_id":"S-1"}]})", "d-1")}).durable);
    std::promise<bool> done;
    box.mark_dead("d-1", {422, "bad"}, [&](bool ok) { done.set_value(ok); });
    REQUIRE(done.get_future().get());
    std::promise<bool> again;  // dead again after a retry would count again; dead -> dead does not
    box.mark_dead("d-1", {422, "bad"}, [&](bool ok) { again.set_value(ok); });
    REQUIRE(again.get_future().get());
  }
  history_store store(file);
  const auto rows = store.all();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].event_type == "device_dead_letter");
  CHECK(rows[0].dimension_a == "chem");
  CHECK(rows[0].dimension_b == "results");
  CHECK(rows[0].value == 1);
}

TEST_CASE("history: stats rebuild gives exactly the live rows, and follows a time-zone change") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  std::mt19937 rng(42);
  {
    outbox box(config_at(file));
    box.set_lab_zone(zone("Europe/London"));
    const char* devices[] = {"chem", "imm", "hema"};
    const char* params[] = {"GLU", "NA", "K", "TSH"};
    const char* types[] = {"device_result", "device_result", "device_result", "device_rerun_received",
                           "device_link_error"};
    for (int batch = 0; batch < 60; ++batch) {
      state_changes s;
      for (int i = 0; i < 20; ++i) {
        // Spread over the 2026-03-29 change (and around midnights).
        const auto t = std::chrono::sys_days{std::chrono::year{2026} / 3 / 27} + std::chrono::minutes(rng() % (5 * 1440));
        const auto ms = std::chrono::time_point_cast<std::chrono::milliseconds>(t);
        auto e = ev(types[rng() % 5], devices[rng() % 3], params[rng() % 4], {}, "S-" + std::to_string(rng() % 40));
        if (rng() % 2) e.observed_at = interfaced::rerun::lab_zone().format(t);  // with Z-equivalent +00:00
        e.at = ms;
        if (rng() % 10 == 0) e.delta = -1;
        s.events.push_back(std::move(e));
      }
      REQUIRE(append_wait(box, {msg("results", "R", "{}")}, std::move(s)).durable);
    }
  }
  history_store store(file);
  const auto live = as_map(store.all());
  REQUIRE(live.size() > 20);
  CHECK(store.rebuild(zone("Europe/London")) == 1200);
  CHECK(as_map(store.all()) == live);
  // Another zone moves events across midnight; going back gives the live rows again.
  store.rebuild(zone("Asia/Kolkata"));
  CHECK(as_map(store.all()) != live);
  store.rebuild(zone("Europe/London"));
  CHECK(as_map(store.all()) == live);
  // A partial rebuild from a day leaves the days before it alone and equals the live rows.
  store.rebuild(zone("Europe/London"), interfaced::rerun::parse_day("2026-03-29"));
  CHECK(as_map(store.all()) == live);
}

namespace {

// Events logged as pending after the fold mark: what a reader must add to the month rows itself.
std::int64_t unfolded(const std::filesystem::path& file) {
  return query_int(file, "SELECT count(*) FROM history_events WHERE pending > 0 AND seq >"
                         " COALESCE((SELECT CAST(value AS INTEGER) FROM kv WHERE key = 'history_month_through'), 0)");
}

// The days a history_store read() of [from, to] gives, as (day type a b) -> value; the days a
// span covers without a count (zeros) left out.
std::map<std::string, std::int64_t> read_map(const history_store& h, const char* from, const char* to) {
  std::map<std::string, std::int64_t> m;
  const auto f = *interfaced::rerun::parse_day(from);
  for (const auto& span : h.read(f, *interfaced::rerun::parse_day(to), {}, {}))
    for (std::size_t i = 0; i < span.values.size(); ++i)
      if (span.values[i] != 0)
        m[interfaced::rerun::format_day(span.first + std::chrono::days{static_cast<std::int64_t>(i)}) + " " +
        span.event_type + " " + span.dimension_a + " " + span.dimension_b] = span.values[i];
  return m;
}

}  // namespace

// Schema 14 (issue #17): the worker folds events into their month rows in batches; until then a
// reader adds them itself, a crash loses none, and each is counted once.
TEST_CASE("history: events not folded into their months yet are read at once, survive a crash, and count once") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  const auto copy = dir / "copy" / "outbox.sqlite";
  const std::map<std::string, std::int64_t> want{
      {"2026-11-30 device_result chem GLU", 1},  // the first batch: folded by the first commit
      {"2026-11-30 device_sample chem ", 1},
      {"2026-12-01 device_result chem GLU", 2},
      {"2026-12-01 device_result chem NA", 1},
      {"2026-12-01 device_result hema WBC", 1},
      {"2026-12-01 device_sample chem ", 2},  // S-2, S-3: first results of their samples that day
      {"2026-12-01 device_sample hema ", 1},
      {"2026-12-01 device_rerun_received chem GLU", 1},
  };
  {
    outbox box(config_at(file));
    state_changes first;
    first.events = {ev("device_result", "chem", "GLU", "2026-11-30T10:00:00Z", "S-1")};
    REQUIRE(append_wait(box, {}, first).durable);
    CHECK(unfolded(file) == 0);
    state_changes later;
    later.events = {ev("device_result", "chem", "GLU", "2026-12-01T10:00:00Z", "S-2"),
                    ev("device_result", "chem", "NA", "2026-12-01T10:00:00Z", "S-2"),
                    ev("device_result", "chem", "GLU", "2026-12-01T11:00:00Z", "S-3"),
                    ev("device_result", "hema", "WBC", "2026-12-01T11:00:00Z", "S-3"),
                    ev("device_rerun_received", "chem", "GLU", "2026-12-01T11:00:00Z")};
    REQUIRE(append_wait(box, {msg("results", "R-1", "{}")}, later).durable);
    REQUIRE(unfolded(file) == 5);  // these 5 events wait for a fold
    // Read by another connection while the daemon runs: every count is there.
    history_store reader(file);
    CHECK(as_map(reader.all()) == want);
    CHECK(read_map(reader, "2026-11-01", "2026-12-31") == want);
    // A range inside one month, cut as the stored rows are.
    CHECK(read_map(reader, "2026-12-01", "2026-12-01").size() == 6);
    // Filtered by event type and device, as `stats --event --device` asks.
    std::map<std::string, std::int64_t> chem_samples;
    for (const auto& span : reader.read(*interfaced::rerun::parse_day("2026-11-01"), *interfaced::rerun::parse_day("2026-12-31"),
                                        {"device_sample"}, {"chem"}))
      for (std::size_t i = 0; i < span.values.size(); ++i)
        if (span.values[i] != 0)
          chem_samples[interfaced::rerun::format_day(span.first + std::chrono::days{static_cast<std::int64_t>(i)}) + " " +
                       span.event_type + " " + span.dimension_a] = span.values[i];
    CHECK(chem_samples == std::map<std::string, std::int64_t>{{"2026-11-30 device_sample chem", 1},
                                                              {"2026-12-01 device_sample chem", 2}});
    // The file as a crash would leave it: copied while the daemon holds the events unfolded.
    std::filesystem::create_directories(copy.parent_path());
    std::filesystem::copy_file(file, copy);
    std::filesystem::copy_file(file.string() + "-wal", copy.string() + "-wal");
  }
  // A clean close folds what was pending.
  CHECK(unfolded(file) == 0);
  CHECK(as_map(history_store(file).all()) == want);
  // The crashed copy reads the same; its next start folds the events left, once.
  CHECK(unfolded(copy) == 5);
  CHECK(as_map(history_store(copy).all()) == want);
  // Schema 15: the first results waiting for their fold have no history_samples row yet (S-1 of
  // the first batch, folded, has). One is added by hand, as a schema-14 writer wrote them with
  // their events: the fold must not write it twice.
  CHECK(query_int(copy, "SELECT count(*) FROM history_samples") == 1);
  interfaced::test::exec_sql(copy,
                             "INSERT INTO history_samples (id, day, device, sample) VALUES"
                             " (CAST(round(julianday('2026-12-01') - 2440587.5) AS INTEGER) * 4294967296, '2026-12-01',"
                             " 'chem', 'S-2')");
  {
    outbox box(config_at(copy));
    state_changes more;
    more.events = {ev("device_result", "hema", "WBC", "2026-12-01T12:00:00Z", "S-3")};  // S-3 seen on hema already
    REQUIRE(append_wait(box, {}, more).durable);
    CHECK(unfolded(copy) == 0);
  }
  // Folded: one row per (day, device, sample) counted -- chem S-1 on Nov 30; chem S-2, chem S-3
  // and hema S-3 on Dec 1.
  CHECK(query_int(copy, "SELECT count(*) FROM history_samples") == 4);
  CHECK(query_int(copy, "SELECT count(DISTINCT day || ' ' || device || ' ' || sample) FROM history_samples") == 4);
  auto after = want;
  after["2026-12-01 device_result hema WBC"] = 2;
  history_store h(copy);
  CHECK(as_map(h.all()) == after);
  // The rows alone, without the events: rebuilt from the events, they are the same.
  CHECK(h.rebuild(interfaced::rerun::lab_zone()) == 7);  // every event logged, device_sample derived
  CHECK(as_map(h.all()) == after);
}

// Schema 15: between folds the worker writes the history_samples rows of its first results in
// batches (history_writer::sample_rows), each once; after a crash the next fold writes those a
// batch had not, checked against the rows already there.
TEST_CASE("history: first results' sample rows are written in batches between folds and each once across a crash") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  const auto copy = dir / "copy" / "outbox.sqlite";
  const auto firsts = [](int from, int n, const char* at) {
    state_changes s;
    for (int i = from; i < from + n; ++i)
      s.events.push_back(ev("device_result", "chem", "GLU", at, "S-" + std::to_string(i)));
    return s;
  };
  const auto batch = static_cast<int>(history_writer::sample_rows);
  {
    outbox box(config_at(file));
    REQUIRE(append_wait(box, {}, firsts(0, 1, "2026-12-01T09:00:00Z")).durable);  // the first commit folds
    REQUIRE(unfolded(file) == 0);
    REQUIRE(query_int(file, "SELECT count(*) FROM history_samples") == 1);
    REQUIRE(append_wait(box, {}, firsts(1, batch - 1, "2026-12-01T10:00:00Z")).durable);
    CHECK(query_int(file, "SELECT count(*) FROM history_samples") == 1);  // fewer than a batch: not yet
    REQUIRE(append_wait(box, {}, firsts(batch, 1, "2026-12-01T10:00:00Z")).durable);
    CHECK(query_int(file, "SELECT count(*) FROM history_samples") == 1 + batch);  // a batch: written
    CHECK(unfolded(file) == batch);                                              // the events still wait
    // S-0 again, and three new ones: no row for S-0, the three wait for the next batch.
    state_changes more = firsts(batch + 1, 3, "2026-12-01T11:00:00Z");
    more.events.push_back(ev("device_result", "chem", "NA", "2026-12-01T11:00:00Z", "S-0"));
    REQUIRE(append_wait(box, {}, more).durable);
    CHECK(query_int(file, "SELECT count(*) FROM history_samples") == 1 + batch);
    std::filesystem::create_directories(copy.parent_path());
    std::filesystem::copy_file(file, copy);
    std::filesystem::copy_file(file.string() + "-wal", copy.string() + "-wal");
  }
  // A clean close folds: the three rows written, none twice.
  const auto distinct = "SELECT count(DISTINCT day || ' ' || device || ' ' || sample) FROM history_samples";
  CHECK(query_int(file, "SELECT count(*) FROM history_samples") == batch + 4);
  CHECK(query_int(file, distinct) == batch + 4);
  CHECK(as_map(history_store(file).all())["2026-12-01 device_sample chem "] == batch + 4);
  // The crashed copy: its next start folds, checking each first result against the rows there.
  {
    outbox box(config_at(copy));
    REQUIRE(append_wait(box, {}, firsts(batch + 3, 2, "2026-12-01T12:00:00Z")).durable);  // one seen, one new
  }
  CHECK(query_int(copy, "SELECT count(*) FROM history_samples") == batch + 5);
  CHECK(query_int(copy, distinct) == batch + 5);
  CHECK(as_map(history_store(copy).all())["2026-12-01 device_sample chem "] == batch + 5);
}

TEST_CASE("history: a partial rebuild while events wait for their fold keeps the days before it and counts each once") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  outbox box(config_at(file));
  REQUIRE(append_wait(box, {msg("results", "R-0", "{}")}, state_changes{}).durable);  // the first commit folds (nothing yet)
  state_changes s;
  s.events = {ev("device_result", "chem", "GLU", "2026-12-01T10:00:00Z", "S-1"),
              ev("device_result", "chem", "GLU", "2026-12-02T10:00:00Z", "S-2"),
              ev("device_result", "chem", "GLU", "2026-12-03T10:00:00Z", "S-3")};
  REQUIRE(append_wait(box, {msg("results", "R-1", "{}")}, s).durable);
  REQUIRE(unfolded(file) == 3);
  history_store store(file);
  const auto live = as_map(store.all());
  CHECK(live.size() == 6);
  // `stats rebuild --from 2026-12-02` while the daemon runs: Dec 1 is only in the pending events.
  store.rebuild(interfaced::rerun::lab_zone(), interfaced::rerun::parse_day("2026-12-02"));
  CHECK(unfolded(file) == 0);
  CHECK(as_map(store.all()) == live);
  // The daemon goes on after it: the next events count once more, nothing twice.
  state_changes t;
  t.events = {ev("device_result", "chem", "GLU", "2026-12-03T11:00:00Z", "S-3")};
  REQUIRE(append_wait(box, {msg("results", "R-2", "{}")}, t).durable);
  auto after = live;
  after["2026-12-03 device_result chem GLU"] = 2;
  CHECK(as_map(store.all()) == after);
}

TEST_CASE("history: a damaged fold mark neither stops the worker's commits nor counts an event twice") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  outbox box(config_at(file));
  state_changes s;
  s.events = {ev("device_result", "chem", "GLU", "2026-12-01T10:00:00Z", "S-1")};
  REQUIRE(append_wait(box, {msg("results", "R-1", "{}")}, s).durable);  // folded by the first commit
  interfaced::test::exec_sql(file, "UPDATE kv SET value = 'garbage' WHERE key = 'history_month_through'");
  state_changes t;
  t.events = {ev("device_result", "chem", "GLU", "2026-12-01T11:00:00Z", "S-2")};
  CHECK(append_wait(box, {msg("results", "R-2", "{}")}, t).durable);
  // The damaged mark reads as "everything folded": the event after it is missing until a rebuild,
  // and none is counted twice.
  history_store store(file);
  CHECK(as_map(store.all())["2026-12-01 device_result chem GLU"] == 1);
  store.rebuild(interfaced::rerun::lab_zone());
  CHECK(as_map(store.all())["2026-12-01 device_result chem GLU"] == 2);
  CHECK(as_map(store.all())["2026-12-01 device_sample chem "] == 2);
}

TEST_CASE("history: prune --before YEAR drops whole years") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  {
    outbox box(config_at(file));
    state_changes s;
    s.events = {ev("device_result", "chem", "GLU", "2024-06-01T10:00:00Z", "S-1"),
                ev("device_result", "chem", "GLU", "2025-12-31T23:00:00Z", "S-2"),
                ev("device_result", "chem", "GLU", "2026-01-01T00:00:00Z", "S-3")};
    REQUIRE(append_wait(box, {}, s).durable);
  }
  history_store store(file);
  CHECK(store.prune_before(2026) == 4);  // two results and two samples before 2026
  const auto m = as_map(store.all());
  CHECK(m == std::map<std::string, std::int64_t>{{"2026-01-01 device_result chem GLU", 1},
                                                 {"2026-01-01 device_sample chem ", 1}});
  // A rebuild after a prune does not bring the dropped years back.
  store.rebuild(interfaced::rerun::lab_zone());
  CHECK(as_map(store.all()) == m);
}

TEST_CASE("history: a rerun post that becomes a dead letter counts under the device that sent it") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  {
    outbox box(config_at(file));
    // Rerun bodies name a lab report, not a device: the appender (ingest_hand_off) says which.
    auto m = msg("rerun_values", "R-1", R"({"lab_report_id":"R-1","values":[{"sample_id":"S-1","parameter":"GLU"}]})", "r-1");
    m.device = "chem";
    REQUIRE(append_wait(box, {m}).durable);
    std::promise<bool> done;
    box.mark_dead("r-1", {422, "no such report"}, [&](bool ok) { done.set_value(ok); });
    REQUIRE(done.get_future().get());
  }
  history_store store(file);
  const auto rows = store.all();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].event_type == "device_dead_letter");
  CHECK(rows[0].dimension_a == "chem");  // not "unknown"
  CHECK(rows[0].dimension_b == "rerun_values");
}

TEST_CASE("history: a 6-month read gives each month's days, cut to the range, only rows that counted one") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  {
    outbox box(config_at(file));
    state_changes s;
    s.events = {ev("device_result", "chem", "GLU", "2026-01-31T10:00:00Z"), ev("device_result", "chem", "GLU", "2026-02-01T10:00:00Z"),
                ev("device_result", "chem", "GLU", "2026-02-28T10:00:00Z"), ev("device_result", "chem", "NA", "2026-02-03T10:00:00Z"),
                ev("device_result", "imm", "TSH", "2026-06-30T10:00:00Z"), ev("device_result", "imm", "TSH", "2026-06-30T11:00:00Z")};
    REQUIRE(append_wait(box, {}, s).durable);
  }
  history_store store(file);
  using interfaced::rerun::parse_day;
  const auto spans = store.read(*parse_day("2026-02-10"), *parse_day("2026-06-30"), {}, {});
  // chem NA counted only on Feb 3, before the range: no row; chem GLU: Feb 10..28; imm TSH: June.
  REQUIRE(spans.size() == 2);
  CHECK(spans[0].dimension_b == "GLU");
  CHECK(spans[0].first == *parse_day("2026-02-10"));
  REQUIRE(spans[0].values.size() == 19);
  CHECK(spans[0].values.back() == 1);
  CHECK(spans[1].dimension_a == "imm");
  CHECK(spans[1].first == *parse_day("2026-06-01"));
  REQUIRE(spans[1].values.size() == 30);
  CHECK(spans[1].values.back() == 2);
  CHECK(store.read(*parse_day("2026-02-10"), *parse_day("2026-06-30"), {"device_sample"}, {}).empty());
  CHECK(store.read(*parse_day("2026-01-01"), *parse_day("2026-12-31"), {}, {"imm"}).size() == 1);
}

// Issue #17: month cells are written compact (varints); the fixed 128-byte form schema 8 wrote is
// still read, and a row counted again is rewritten compact with its old days kept.
TEST_CASE("history: a month row in the fixed 128-byte form reads the same and counts on in the compact form") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  {
    outbox box(config_at(file));
    state_changes s;
    s.events = {ev("device_result", "chem", "GLU", "2026-02-01T10:00:00Z"),
                ev("device_result", "chem", "NA", "2026-02-02T10:00:00Z", {}, 3'000'000'000),
                ev("device_result", "chem", "K", "2026-02-03T10:00:00Z", {}, -7)};
    REQUIRE(append_wait(box, {}, s).durable);
  }
  history_store store(file);
  CHECK(as_map(store.all()) == std::map<std::string, std::int64_t>{{"2026-02-01 device_result chem GLU", 1},
                                                                   {"2026-02-02 device_result chem NA", 3'000'000'000},
                                                                   {"2026-02-03 device_result chem K", -7}});
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  const auto blob_size = [&] {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT max(length(days)) FROM history_month", -1, &st, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    const int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
  };
  CHECK(blob_size() < 16);
  // chem GLU as schema 8 wrote it: mask with days 1 and 28 (bits 0 and 27), counts 5 and -2 as
  // little-endian int32.
  std::string fixed(128, '\0');
  const auto put32 = [&](std::size_t at, std::uint32_t v) {
    for (int k = 0; k < 4; ++k) fixed[at + static_cast<std::size_t>(k)] = static_cast<char>((v >> (8 * k)) & 0xFF);
  };
  put32(0, (1u << 0) | (1u << 27));
  put32(4 + 4 * 0, 5);
  put32(4 + 4 * 27, static_cast<std::uint32_t>(-2));
  sqlite3_stmt* up = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "UPDATE history_month SET days = ?1 WHERE dimension_b = 'GLU'", -1, &up, nullptr) ==
          SQLITE_OK);
  REQUIRE(sqlite3_bind_blob(up, 1, fixed.data(), static_cast<int>(fixed.size()), SQLITE_TRANSIENT) == SQLITE_OK);
  REQUIRE(sqlite3_step(up) == SQLITE_DONE);
  sqlite3_finalize(up);
  CHECK(blob_size() == 128);
  auto expected = std::map<std::string, std::int64_t>{{"2026-02-01 device_result chem GLU", 5},
                                                      {"2026-02-28 device_result chem GLU", -2},
                                                      {"2026-02-02 device_result chem NA", 3'000'000'000},
                                                      {"2026-02-03 device_result chem K", -7}};
  CHECK(as_map(store.all()) == expected);
  {
    outbox box(config_at(file));
    state_changes s;
    s.events = {ev("device_result", "chem", "GLU", "2026-02-28T10:00:00Z"),
                ev("device_result", "chem", "GLU", "2026-02-15T10:00:00Z")};
    REQUIRE(append_wait(box, {}, s).durable);
  }
  expected["2026-02-28 device_result chem GLU"] = -1;
  expected["2026-02-15 device_result chem GLU"] = 1;
  CHECK(as_map(store.all()) == expected);
  CHECK(blob_size() < 128);
  // A compact cell that would be exactly the fixed form's length (a 5-byte mask, 30 counts of 4
  // bytes, one of 3) is not taken for the fixed form.
  {
    outbox box(config_at(file));
    state_changes s;
    for (int d = 1; d <= 31; ++d) {
      char at[32];
      std::snprintf(at, sizeof at, "2026-03-%02dT10:00:00Z", d);
      s.events.push_back(ev("device_result", "imm", "TSH", at, {}, d == 31 ? 10'000 : 2'000'000));
      expected[std::string("2026-03-") + (d < 10 ? "0" : "") + std::to_string(d) + " device_result imm TSH"] =
          d == 31 ? 10'000 : 2'000'000;
    }
    REQUIRE(append_wait(box, {}, s).durable);
  }
  CHECK(as_map(store.all()) == expected);
  CHECK(blob_size() == 129);
  sqlite3_close(db);
}

TEST_CASE("schema 8: a version-7 file gets its messages' devices and samples, and its summary by month") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  std::vector<std::string> ids;
  {
    outbox box(config_at(file));
    ids = append_wait(box, {msg("results", "R-1", R"({"device_id":"chem","results":[{"sample_id":"S-1"}]})"),
                            msg("rerun_values", "R-2", R"({"values":[{"sample_id":"S-2"}]})")})
              .ids;
  }
  {
    // Back to version 7 as that release left it: no device column, no message_samples, the
    // summary as day rows (one at zero after a correction).
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
    const std::string v7 = std::string(interfaced::test::bodies_back_in_messages) +
        "DROP TRIGGER message_samples_gone; DROP TABLE message_samples; ALTER TABLE messages DROP COLUMN device;"
        "DROP TABLE history_month;"
        "CREATE TABLE history_summary (day TEXT NOT NULL, event_type TEXT NOT NULL, dimension_a TEXT NOT NULL,"
        " dimension_b TEXT NOT NULL DEFAULT '', event_value INTEGER NOT NULL,"
        " PRIMARY KEY (day, event_type, dimension_a, dimension_b)) WITHOUT ROWID;"
        "INSERT INTO history_summary VALUES ('2026-11-30', 'device_result', 'chem', 'GLU', 3),"
        " ('2026-12-05', 'device_result', 'chem', 'GLU', 2), ('2026-12-05', 'device_result', 'chem', 'NA', 0),"
        " ('2026-12-05', 'device_sample', 'chem', '', 1);"
        "PRAGMA user_version = 7;";
    REQUIRE(sqlite3_exec(db, v7.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  { outbox box(config_at(file)); }  // migrates
  outbox_admin admin(file);
  list_filter f;
  f.sample = "S-2";
  const auto found = admin.list(f);
  REQUIRE(found.size() == 1);
  CHECK(found[0].id == ids[1]);
  CHECK(admin.show(ids[0])->device == "chem");
  CHECK(admin.show(ids[1])->device.empty());  // named nowhere: counted as "unknown" if it dies
  history_store store(file);
  CHECK(as_map(store.all()) == std::map<std::string, std::int64_t>{{"2026-11-30 device_result chem GLU", 3},
                                                                   {"2026-12-05 device_result chem GLU", 2},
                                                                   {"2026-12-05 device_result chem NA", 0},
                                                                   {"2026-12-05 device_sample chem ", 1}});
  // A message deleted (purged) takes its body row, and the samples it names, with it.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "DELETE FROM messages", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT count(*) FROM message_bodies", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(sqlite3_column_int(st, 0) == 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
}
