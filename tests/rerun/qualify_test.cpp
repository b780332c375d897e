// rerun.md's qualify_rerun decision table, one named test per row: first the pure table, then the
// same row end to end through process_reports_for_rerun (facts gathered from the waiting list,
// the local rerun state and the result history).
#include <catch2/catch.hpp>

#include "rerun/qualify.hpp"
#include "rerun_fixture.hpp"

namespace interfaced::rerun {
using namespace test;

namespace {

qualification q(bool matched, int n, bool requested, bool fulfilled, bool seen) {
  return qualify_rerun({matched, n, requested, fulfilled, seen});
}

void check_instrument_triggered(const qualification& r) {
  CHECK(r.is_rerun);
  CHECK(r.rerun_number == -1);
  CHECK(r.machine_triggered_rerun);
  CHECK_FALSE(r.fulfils);
}

}  // namespace

TEST_CASE("row 1: N>0, P requested, not fulfilled -> rerun N, P fulfilled", "[qualify][table]") {
  for (bool seen : {false, true}) {
    const auto r = q(true, 2, true, false, seen);
    CHECK(r.is_rerun);
    CHECK(r.rerun_number == 2);
    CHECK_FALSE(r.machine_triggered_rerun);
    CHECK(r.fulfils);
    CHECK(r.row == qualify_row::requested_rerun);
  }
}

TEST_CASE("row 2: N>0, P requested, already fulfilled -> -1 machine triggered", "[qualify][table]") {
  for (bool seen : {false, true}) {
    const auto r = q(true, 2, true, true, seen);
    check_instrument_triggered(r);
    CHECK(r.row == qualify_row::already_fulfilled);
  }
}

TEST_CASE("row 3: N>0, P not requested, seen -> -1 machine triggered", "[qualify][table]") {
  const auto r = q(true, 2, false, false, true);
  check_instrument_triggered(r);
  CHECK(r.row == qualify_row::unrequested_seen);
}

TEST_CASE("row 4: any N, P not requested, not seen -> first result", "[qualify][table]") {
  for (int n : {0, 1, 3, -1}) {
    const auto r = q(true, n, false, false, false);
    CHECK_FALSE(r.is_rerun);
    CHECK(r.rerun_number == 0);
    CHECK_FALSE(r.machine_triggered_rerun);
    CHECK(r.row == qualify_row::first_result);
  }
}

TEST_CASE("row 5: N=0, seen -> -1 machine triggered", "[qualify][table]") {
  const auto r = q(true, 0, false, false, true);
  check_instrument_triggered(r);
  CHECK(r.row == qualify_row::seen_no_rerun);
  // rerunNumber -1 on an entry is no requested rerun either (badge rule): same row.
  CHECK(q(true, -1, false, false, true).row == qualify_row::seen_no_rerun);
}

TEST_CASE("unmatched sample: tagged by seen(S,P) alone", "[qualify][table]") {
  const auto first = q(false, 0, false, false, false);
  CHECK(first.rerun_number == 0);
  CHECK(first.row == qualify_row::unmatched_first);
  const auto seen = q(false, 0, false, false, true);
  check_instrument_triggered(seen);
  CHECK(seen.row == qualify_row::unmatched_seen);
}

// ---- the same rows end to end ------------------------------------------------------------------

TEST_CASE("row 1 end to end: a requested parameter arrives", "[qualify][process]") {
  world w;
  (void)w.refresh("xn", {entry("S1", "R1", 2, {"HGB", "WBC"}, {"HGB"})});
  auto o = w.run("xn", {make_result("S1", "HGB", "13.1")});
  REQUIRE(o.tags.size() == 1);
  CHECK(o.tags[0].row == qualify_row::requested_rerun);
  CHECK(o.tags[0].lab_report_id == "R1");
  REQUIRE(o.messages.size() == 1);
  const auto& m = o.messages[0];
  CHECK(m.kind == endpoint::rerun_values);
  CHECK(m.rerun_values.rerun_number == 2);
  CHECK_FALSE(m.rerun_values.machine_triggered_rerun);
  CHECK(m.rerun_values.fulfilled_parameters == std::vector<std::string>{"HGB"});
  CHECK(w.state.reruns.at("R1").is_fulfilled("HGB"));
}

TEST_CASE("row 2 end to end: a requested parameter arrives again", "[qualify][process]") {
  world w;
  (void)w.refresh("xn", {entry("S1", "R1", 2, {"HGB", "PLT"}, {"HGB", "PLT"})});
  (void)w.run("xn", {make_result("S1", "HGB", "13.1", "20240301100000")});
  auto o = w.run("xn", {make_result("S1", "HGB", "13.4", "20240301101500")});
  CHECK(o.tags[0].row == qualify_row::already_fulfilled);
  CHECK(o.tags[0].machine_triggered_rerun);
  const auto* m = find_message(o, endpoint::rerun_values, "R1");
  REQUIRE(m != nullptr);
  CHECK(m->rerun_values.rerun_number == -1);
  CHECK(m->rerun_values.machine_triggered_rerun);
  CHECK(w.state.reruns.at("R1").fulfilled == std::vector<std::string>{"HGB"});  // unchanged
}

TEST_CASE("row 3 end to end: a seen parameter the rerun did not request", "[qualify][process]") {
  world w;
  (void)w.refresh("xn", {entry("S1", "R1", 0, {"HGB", "WBC"})});
  (void)w.run("xn", {make_result("S1", "WBC", "6.1", "20240301080000")});
  (void)w.refresh("xn", {entry("S1", "R1", 1, {"HGB", "WBC"}, {"HGB"})});
  auto o = w.run("xn", {make_result("S1", "WBC", "6.3", "20240301100000")});
  CHECK(o.tags[0].row == qualify_row::unrequested_seen);
  CHECK(o.counts.instrument_triggered == 1);
  const auto* m = find_message(o, endpoint::rerun_values, "R1");
  REQUIRE(m != nullptr);
  CHECK(m->rerun_values.machine_triggered_rerun);
  CHECK(m->rerun_values.rerun_number == -1);
  CHECK(m->rerun_values.requested_parameters.empty());  // immediately fulfilled, no request
  CHECK(m->rerun_values.fulfilled_parameters == std::vector<std::string>{"WBC"});
  CHECK(w.state.reruns.at("R1").status == rerun_status::requested);  // HGB still missing
}

TEST_CASE("row 4 end to end: a first result, even during a rerun", "[qualify][process]") {
  world w;
  (void)w.refresh("xn", {entry("S1", "R1", 2, {"HGB", "WBC"}, {"HGB"})});
  auto o = w.run("xn", {make_result("S1", "WBC", "6.1")});
  CHECK(o.tags[0].row == qualify_row::first_result);
  CHECK(o.counts.first_results == 1);
  const auto* m = find_message(o, endpoint::results);
  REQUIRE(m != nullptr);
  REQUIRE(m->results.results.size() == 1);
  CHECK(m->results.results[0].lab_report_id == "R1");
  CHECK(m->results.results[0].rerun_number == 0);
  CHECK_FALSE(m->results.results[0].is_rerun);
  CHECK(count_messages(o, endpoint::rerun_values) == 0);
}

TEST_CASE("row 5 end to end: seen, no rerun requested", "[qualify][process]") {
  world w;
  (void)w.refresh("xn", {entry("S1", "R1", 0, {"HGB"})});
  auto o1 = w.run("xn", {make_result("S1", "HGB", "13.1", "20240301100000")});
  CHECK(o1.tags[0].row == qualify_row::first_result);
  auto o2 = w.run("xn", {make_result("S1", "HGB", "13.3", "20240301103000")});
  CHECK(o2.tags[0].row == qualify_row::seen_no_rerun);
  const auto* m = find_message(o2, endpoint::rerun_values, "R1");
  REQUIRE(m != nullptr);
  CHECK(m->rerun_values.machine_triggered_rerun);
  CHECK(m->rerun_values.values.at(0).rerun_number == -1);
  CHECK(m->rerun_values.values.at(0).machine_triggered_rerun);
}

TEST_CASE("seen also comes from the rerun indicator and the waiting list", "[qualify][process]") {
  world w;
  auto e = entry("S1", "R1", 0, {"HGB", "WBC"});
  e.valued_parameters = {"WBC"};
  (void)w.refresh("xn", {e});
  auto r = make_result("S1", "HGB", "13.1");
  r.rerun_indicator = true;  // e.g. an ASTM status meaning "previously transmitted"
  auto o = w.run("xn", {r, make_result("S1", "WBC", "6.0")});
  CHECK(o.tags[0].row == qualify_row::seen_no_rerun);
  CHECK(o.tags[1].row == qualify_row::seen_no_rerun);
}

TEST_CASE("unmatched samples are forwarded, tagged by seen alone, and counted", "[qualify][process]") {
  world w;
  (void)w.refresh("xn", {entry("S1", "R1", 0, {"HGB"})});
  auto o = w.run("xn", {make_result("S9", "HGB", "13.1", "20240301100000")});
  CHECK(o.tags[0].row == qualify_row::unmatched_first);
  CHECK(o.counts.unmatched == 1);
  CHECK(o.counts.forwarded == 1);
  auto o2 = w.run("xn", {make_result("S9", "HGB", "12.0", "20240301110000")});
  CHECK(o2.tags[0].row == qualify_row::unmatched_seen);
  CHECK(o2.counts.unmatched == 1);
  // Without a lab report the -1 result goes to the results endpoint, tagged.
  const auto* m = find_message(o2, endpoint::results);
  REQUIRE(m != nullptr);
  CHECK(m->results.results.at(0).lab_report_id.empty());
  CHECK(m->results.results.at(0).rerun_number == -1);
  CHECK(m->results.results.at(0).machine_triggered_rerun);
  CHECK(m->results.results.at(0).is_rerun);
}

}  // namespace interfaced::rerun
