// Issue #19: the result key (parsers/model.hpp) in process_reports_for_rerun -- no sample id is
// nobody's duplicate or rerun; the sub-id and the result type are part of the key.
#include <catch2/catch.hpp>

#include "rerun/result_key.hpp"
#include "rerun_fixture.hpp"

using namespace interfaced;
using namespace interfaced::rerun;
using namespace interfaced::rerun::test;

TEST_CASE("identity: results without a sample id are forwarded once each, flagged, never a rerun or duplicate", "[identity]") {
  world w;
  w.refresh("DEV", {entry("", "R-0", 2, {"IGA"}, {"IGA"})});  // a waiting list can never claim them
  std::vector<result> rs;
  for (int i = 0; i < 5; ++i) rs.push_back(make_result("", "IGA", "1.0"));  // same value and time
  batch b;
  const auto out = w.run("DEV", rs, &b);
  CHECK(out.counts.forwarded == 5);
  CHECK(out.counts.duplicates == 0);
  CHECK(out.counts.instrument_triggered == 0);
  CHECK(out.counts.sample_id_missing == 5);
  CHECK(out.counts.unmatched == 5);
  for (const auto& r : b.results) {
    CHECK(r.sample_id_missing());
    CHECK_FALSE(r.is_rerun);
    CHECK(r.rerun_number == 0);
    CHECK_FALSE(r.duplicate);
  }
  for (const auto& t : out.tags) CHECK(t.lab_report_id.empty());
  CHECK(w.history.size() == 0);  // never the seen of another
  const auto* m = find_message(out, endpoint::results);
  REQUIRE(m != nullptr);
  REQUIRE(m->results.results.size() == 5);
  CHECK(m->results.results[0].sample_id_missing());
  // ...and a later result with a sample id is a first result, not a rerun of them.
  batch b2;
  (void)w.run("DEV", {make_result("S-1", "IGA", "1.0")}, &b2);
  CHECK(b2.results[0].rerun_number == 0);
}

TEST_CASE("identity: the result type and the sub-id are part of the key, the same type again is a rerun", "[identity]") {
  world w;
  result f = make_result("S-1", "16", "2.154", "20260301092500");
  f.result_type = "F";
  result i = make_result("S-1", "16", "Normal", "20260301092500");
  i.result_type = "I";
  batch b;
  (void)w.run("DEV", {f, i}, &b);
  CHECK(b.results[0].rerun_number == 0);
  CHECK(b.results[1].rerun_number == 0);  // an interpretation is not a rerun of the value
  result f2 = make_result("S-1", "16", "2.301", "20260301105500");
  f2.result_type = "F";
  batch b2;
  (void)w.run("DEV", {f2}, &b2);
  CHECK(b2.results[0].rerun_number == instrument_triggered_rerun);  // a real repeat still is

  result s1 = make_result("S-2", "ORG", "E. coli");
  s1.sub_id = "1";
  result s2 = make_result("S-2", "ORG", "K. pneumoniae");
  s2.sub_id = "2";
  batch b3;
  (void)w.run("DEV", {s1, s2}, &b3);
  CHECK(b3.results[1].rerun_number == 0);
  CHECK(result_key("ORG", s1) != result_key("ORG", s2));
}

TEST_CASE("identity: a requested rerun is fulfilled by the final value, its companions ride with it", "[identity]") {
  world w;
  w.refresh("DEV", {entry("S-1", "R-1", 1, {"16"}, {"16"})});
  result f = make_result("S-1", "16", "2.3");
  f.result_type = "F";
  f.companions.push_back({"P", "raw_signal", "54002", "RLU", {}});
  batch b;
  const auto out = w.run("DEV", {f}, &b);
  CHECK(b.results[0].rerun_number == 1);
  const auto* m = find_message(out, endpoint::rerun_values, "R-1");
  REQUIRE(m != nullptr);
  REQUIRE(m->rerun_values.values.size() == 1);
  CHECK(m->rerun_values.values[0].companions.size() == 1);
}
