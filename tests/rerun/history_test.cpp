// The historical summary's pure part (spec/history.md "How it is read"): which lab-local day an
// event counts on, the buckets, the zero-filled matrix. Expectations come from the calendar and
// the tz database's rules (Asia/Kolkata UTC+05:30 all year; Europe/London and America/New_York
// change on 2026-03-29 / 2026-03-08 and 2026-10-25 / 2026-11-01), not from the code.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "rerun/history.hpp"

using namespace interfaced::rerun;
using std::chrono::sys_days;

namespace {

sys_days day(const char* s) {
  auto d = parse_day(s);
  REQUIRE(d);
  return *d;
}

lab_zone zone(const char* name) {
  auto z = lab_zone::find(name);
  REQUIRE(z);
  return *z;
}

history_event result_at(const std::string& observed_at, const std::string& device = "chem",
                        const std::string& parameter = "GLU") {
  history_event e;
  e.event_type = "device_result";
  e.dimension_a = device;
  e.dimension_b = parameter;
  e.observed_at = observed_at;
  return e;
}

// The stored rows a live path would have written for these events (one count each).
std::vector<summary_row> rows_of(const lab_zone& z, const std::vector<history_event>& events) {
  std::vector<summary_row> rows;
  for (const auto& e : events) rows.push_back({history_day(z, e), e.event_type, e.dimension_a, e.dimension_b, e.delta});
  return rows;
}

}  // namespace

TEST_CASE("history: Asia/Kolkata, 17:30Z and 18:30Z on Dec 5 and 12:00Z on Dec 6 count 1 on Dec 5, 2 on Dec 6") {
  const auto z = zone("Asia/Kolkata");
  const std::vector<history_event> ev = {result_at("2026-12-05T17:30:00Z"), result_at("2026-12-05T18:30:00Z"),
                                         result_at("2026-12-06T12:00:00Z")};
  CHECK(history_day(z, ev[0]) == day("2026-12-05"));  // 23:00 local
  CHECK(history_day(z, ev[1]) == day("2026-12-06"));  // 00:00 local
  CHECK(history_day(z, ev[2]) == day("2026-12-06"));  // 17:30 local
  stats_query q;
  q.from = day("2026-12-04");
  q.to = day("2026-12-07");
  const auto r = resolve(q, day("2026-12-07"));
  REQUIRE(r.error.empty());
  const auto t = aggregate(r, z.name(), rows_of(z, ev));
  REQUIRE(t.buckets.size() == 4);
  REQUIRE(t.rows.size() == 1);
  CHECK(t.rows[0].values == std::vector<std::int64_t>{0, 1, 2, 0});
  const auto j = to_json(t);
  CHECK(j["buckets"] == nlohmann::json::array({"2026-12-04", "2026-12-05", "2026-12-06", "2026-12-07"}));
  CHECK(j["timezone"] == "Asia/Kolkata");
  CHECK(j["granularity"] == "day");
  CHECK(j["from"] == "2026-12-04");
  CHECK(j["to"] == "2026-12-07");
  CHECK(j["rows"][0]["event_type"] == "device_result");
  CHECK(j["rows"][0]["dimension_a"] == "chem");
  CHECK(j["rows"][0]["dimension_b"] == "GLU");
  CHECK(j["rows"][0]["values"] == nlohmann::json::array({0, 1, 2, 0}));
}

TEST_CASE("history: an analyser time without an offset is the lab's wall clock, its own date") {
  const auto z = zone("Asia/Kolkata");
  CHECK(history_day(z, result_at("20261205230000")) == day("2026-12-05"));
  CHECK(history_day(z, result_at("20261206000000")) == day("2026-12-06"));
  CHECK(history_day(z, result_at("2026-12-05T23:59:59")) == day("2026-12-05"));
  // With its own offset, the instant it names, seen in Kolkata: 20:00-05:00 is 06:30 next day.
  CHECK(history_day(z, result_at("20261205200000-0500")) == day("2026-12-06"));
  // Unreadable: the daemon's receipt instant, in the lab's zone (2026-12-05T20:00Z = Dec 6 01:30).
  auto e = result_at("garbage");
  e.at = std::chrono::sys_days{day("2026-12-05")} + std::chrono::hours{20};
  CHECK(history_day(z, e) == day("2026-12-06"));
}

TEST_CASE("history: DST days in Europe/London and America/New_York are single buckets") {
  {
    const auto z = zone("Europe/London");  // 2026-03-29 01:00 GMT -> 02:00 BST: 23 hours
    const std::vector<history_event> ev = {result_at("2026-03-28T23:59:00Z"),  // Mar 28 23:59 GMT
                                           result_at("2026-03-29T00:30:00Z"),  // Mar 29 00:30 GMT
                                           result_at("2026-03-29T22:30:00Z"),  // Mar 29 23:30 BST
                                           result_at("2026-03-29T23:30:00Z")}; // Mar 30 00:30 BST
    stats_query q;
    q.from = day("2026-03-28");
    q.to = day("2026-03-30");
    const auto t = aggregate(resolve(q, day("2026-03-30")), z.name(), rows_of(z, ev));
    REQUIRE(t.buckets.size() == 3);
    REQUIRE(t.rows.size() == 1);
    CHECK(t.rows[0].values == std::vector<std::int64_t>{1, 2, 1});
  }
  {
    const auto z = zone("America/New_York");  // 2026-11-01 02:00 EDT -> 01:00 EST: 25 hours
    const std::vector<history_event> ev = {result_at("2026-11-01T04:30:00Z"),  // Nov 1 00:30 EDT
                                           result_at("2026-11-01T05:30:00Z"),  // Nov 1 01:30 EDT
                                           result_at("2026-11-01T06:30:00Z"),  // Nov 1 01:30 EST (again)
                                           result_at("2026-11-02T04:30:00Z"),  // Nov 1 23:30 EST
                                           result_at("2026-11-02T05:30:00Z")}; // Nov 2 00:30 EST
    stats_query q;
    q.from = day("2026-11-01");
    q.to = day("2026-11-02");
    const auto t = aggregate(resolve(q, day("2026-11-02")), z.name(), rows_of(z, ev));
    REQUIRE(t.buckets.size() == 2);
    CHECK(t.rows.at(0).values == std::vector<std::int64_t>{4, 1});
    // Spring (2026-03-08, 23 hours) too.
    CHECK(history_day(z, result_at("2026-03-08T05:00:00Z")) == day("2026-03-08"));  // 00:00 EST
    CHECK(history_day(z, result_at("2026-03-09T03:59:00Z")) == day("2026-03-08"));  // 23:59 EDT
  }
}

TEST_CASE("history: weeks start on Monday, months on the 1st, labelled by their first day") {
  // 2026-12-06 is a Sunday, 2026-12-07 a Monday.
  CHECK(bucket_start(day("2026-12-06"), granularity::week) == day("2026-11-30"));
  CHECK(bucket_start(day("2026-12-07"), granularity::week) == day("2026-12-07"));
  CHECK(bucket_start(day("2026-12-31"), granularity::month) == day("2026-12-01"));
  CHECK(bucket_starts(day("2026-12-01"), day("2026-12-14"), granularity::week) ==
        std::vector<sys_days>{day("2026-11-30"), day("2026-12-07"), day("2026-12-14")});
  CHECK(bucket_starts(day("2026-01-15"), day("2026-03-02"), granularity::month) ==
        std::vector<sys_days>{day("2026-01-01"), day("2026-02-01"), day("2026-03-01")});
  // Week buckets sum their days; a row outside [from, to] is not counted even in a shared bucket.
  const std::vector<summary_row> rows = {{day("2026-11-30"), "device_result", "chem", "GLU", 5},
                                         {day("2026-12-06"), "device_result", "chem", "GLU", 1},
                                         {day("2026-12-07"), "device_result", "chem", "GLU", 2}};
  stats_query q;
  q.from = day("2026-12-01");
  q.to = day("2026-12-14");
  q.gran = granularity::week;
  const auto t = aggregate(resolve(q, day("2026-12-14")), "UTC", rows);
  CHECK(t.rows.at(0).values == std::vector<std::int64_t>{1, 2, 0});
}

TEST_CASE("history: every entity a row, zeros included, by device sums parameters with dimension_b null") {
  const std::vector<summary_row> rows = {{day("2026-12-05"), "device_result", "chem", "GLU", 3},
                                         {day("2026-12-05"), "device_result", "chem", "NA", 2},
                                         {day("2026-12-06"), "device_result", "imm", "TSH", 1},
                                         {day("2026-12-06"), "device_link_error", "chem", "nak", 1}};
  stats_query q;
  q.from = day("2026-12-05");
  q.to = day("2026-12-06");
  auto t = aggregate(resolve(q, day("2026-12-06")), "UTC", rows);
  REQUIRE(t.rows.size() == 4);
  CHECK(t.rows[0].dimension_b == std::optional<std::string>("GLU"));
  CHECK(t.rows[2].values == std::vector<std::int64_t>{0, 1});  // imm TSH: zero on Dec 5
  CHECK(t.rows[3].event_type == "device_link_error");          // table order, not alphabetical

  q.by = stats_by::device;
  q.events = {"device_result"};
  q.devices = {"chem", "hema"};  // hema sent nothing: still a row
  t = aggregate(resolve(q, day("2026-12-06")), "UTC", rows);
  REQUIRE(t.rows.size() == 2);
  CHECK(t.rows[0].dimension_a == "chem");
  CHECK(t.rows[0].values == std::vector<std::int64_t>{5, 0});
  CHECK(t.rows[1].dimension_a == "hema");
  CHECK(t.rows[1].values == std::vector<std::int64_t>{0, 0});
  CHECK(to_json(t)["rows"][0]["dimension_b"].is_null());
  // The text the CLI and /api/stats write is the same JSON, keys in the contract's order.
  const std::string text = to_json_text(t);
  CHECK(nlohmann::json::parse(text) == to_json(t));
  CHECK(text.rfind(R"({"from":"2026-12-05","to":"2026-12-06","granularity":"day","timezone":"UTC","buckets":["2026-12-05","2026-12-06"],"rows":[{"event_type":"device_result","dimension_a":"chem","dimension_b":null,"values":[5,0]})", 0) == 0);
  CHECK(to_csv(t) == "event_type,dimension_a,dimension_b,2026-12-05,2026-12-06\r\n"
                     "device_result,chem,,5,0\r\ndevice_result,hema,,0,0\r\n");
}

TEST_CASE("history: query parameters as the CLI and /api/stats name them") {
  auto p = parse_stats_params({{"from", "2026-12-01"}, {"to", "2026-12-31"}, {"granularity", "week"}, {"by", "device"},
                               {"event", "device_result"}, {"event", "device_sample"}, {"device", "chem"},
                               {"format", "csv"}},
                              "json");
  CHECK(p.error.empty());
  CHECK(p.q.gran == granularity::week);
  CHECK(p.q.by == stats_by::device);
  CHECK(p.q.events.size() == 2);
  CHECK(p.format == "csv");
  CHECK_FALSE(parse_stats_params({{"from", "2026-13-01"}}, "json").error.empty());
  CHECK_FALSE(parse_stats_params({{"event", "device_everything"}}, "json").error.empty());
  CHECK_FALSE(parse_stats_params({{"granularity", "year"}}, "json").error.empty());
  // Defaults: the last 7 lab-local days up to today; from after to is an error.
  const auto r = resolve({}, day("2026-12-06"));
  CHECK(r.from == day("2026-11-30"));
  CHECK(r.to == day("2026-12-06"));
  stats_query bad;
  bad.from = day("2026-12-07");
  CHECK_FALSE(resolve(bad, day("2026-12-06")).error.empty());
}

TEST_CASE("history: control results count as device_qc_accepted or device_qc_rejected on their observed day, never as results") {
  // history.md: a control result's outcome is device_qc_accepted / device_qc_rejected; qc.md: a
  // 1-2s warning does not reject the run; no_limits was not judged at all.
  batch b;
  b.device = "hema";
  batch_outcome out;
  auto control = [&](const char* parameter, const char* outcome, const char* observed_at) {
    interfaced::result r;
    r.qc = true;
    r.sample_id = "QC-1";
    r.observed_at = observed_at;
    b.results.push_back(r);
    out.tags.emplace_back();
    qc_result_value q;
    q.parameter = parameter;
    q.outcome = outcome;
    q.observed_at = observed_at;
    out.controls.emplace_back(b.results.size() - 1, q);
  };
  control("HGB", "accept", "2026-12-05T23:50:00+05:30");
  control("PLT", "warning", "2026-12-06T08:00:00+05:30");
  control("WBC", "reject", "2026-12-06T08:00:00+05:30");
  control("RBC", "no_limits", "2026-12-06T08:00:00+05:30");
  const auto events = batch_history_events(b, out, {});
  std::vector<std::string> seen;
  for (const auto& e : events) seen.push_back(e.event_type + " " + e.dimension_a + " " + e.dimension_b);
  CHECK(seen == std::vector<std::string>{"device_qc_accepted hema HGB", "device_qc_accepted hema PLT",
                                         "device_qc_rejected hema WBC"});
  const auto z = zone("Asia/Kolkata");
  REQUIRE(events.size() == 3);
  CHECK(format_day(history_day(z, events[0])) == "2026-12-05");
  CHECK(format_day(history_day(z, events[2])) == "2026-12-06");
}
