// The in-memory result store behind seen(S,P).
#include <catch2/catch.hpp>

#include "rerun/result_store.hpp"
#include "rerun_fixture.hpp"

namespace interfaced::rerun {
using namespace test;

TEST_CASE("memory_result_store: has, same observation, latest, prune", "[store]") {
  memory_result_store s;
  CHECK_FALSE(s.has("S1", "HGB"));
  s.record("S1", "HGB", {"13.1", 13.1, "20240301100000", at("2024-03-01T10:00:00")});
  s.record("S1", "HGB", {"13.4", 13.4, "20240301110000", at("2024-03-02T10:00:00")});
  CHECK(s.has("S1", "HGB"));
  CHECK_FALSE(s.has("S1", "WBC"));
  CHECK_FALSE(s.has("S11", "HGB"));
  CHECK(s.has_observation("S1", "HGB", "13.1", "20240301100000"));
  CHECK_FALSE(s.has_observation("S1", "HGB", "13.1", "20240301110000"));
  CHECK(s.latest("S1", "HGB")->value == "13.4");
  CHECK(s.prune(at("2024-03-02T00:00:00")) == 1);
  CHECK(s.size() == 1);
  CHECK(s.latest("S1", "HGB")->value == "13.4");
  CHECK(s.prune(at("2024-03-03T00:00:00")) == 1);
  CHECK_FALSE(s.has("S1", "HGB"));
}

TEST_CASE("wall times as analysers send them", "[store]") {
  CHECK(format_wall_time(*parse_wall_time("20240301100000")) == "2024-03-01T10:00:00");
  CHECK(format_wall_time(*parse_wall_time("202403011000")) == "2024-03-01T10:00:00");
  CHECK(format_wall_time(*parse_wall_time("20240301")) == "2024-03-01T00:00:00");
  CHECK(format_wall_time(*parse_wall_time("20240301100000.123+0100")) == "2024-03-01T10:00:00");
  CHECK(format_wall_time(*parse_wall_time("2024-03-01T10:00:00")) == "2024-03-01T10:00:00");
  CHECK_FALSE(parse_wall_time("").has_value());
  CHECK_FALSE(parse_wall_time("20241301").has_value());
  CHECK_FALSE(parse_wall_time("2024030125").has_value());
}

}  // namespace interfaced::rerun

namespace interfaced::rerun {

TEST_CASE("memory_result_store: a parameter's result under any of its keys", "[store]") {
  memory_result_store s;
  const auto t = [](int sec) { return timestamp(std::chrono::seconds(sec)); };
  s.record("S-1", "GLU^sub=1", {"5.0", 5.0, "20260101", t(10)});
  s.record("S-1", "HPV^AnalyteSCO", {"1.2", 1.2, "20260101", t(20)});
  s.record("S-1", "TSH^type=F", {"2.1", 2.1, "20260101", t(30)});
  s.record("S-1", "TSH^sub=2^type=F", {"2.2", 2.2, "20260101", t(40)});
  // A sub-id or a result type is still the parameter, as waiting lists count it...
  REQUIRE(s.latest_of_parameter("S-1", "GLU"));
  CHECK(s.latest_of_parameter("S-1", "GLU")->value == "5.0");
  CHECK(s.latest_of_parameter("S-1", "TSH")->value == "2.2");  // the most recent of its keys
  // ...but another test identity that merely starts with the same letters is not.
  CHECK_FALSE(s.latest_of_parameter("S-1", "HPV"));
  CHECK_FALSE(s.latest_of_parameter("S-1", "GL"));
  CHECK_FALSE(s.latest_of_parameter("S-2", "GLU"));
  // Exact-key lookups stay exact.
  CHECK_FALSE(s.has("S-1", "GLU"));
  CHECK(s.has("S-1", "GLU^sub=1"));
}

}  // namespace interfaced::rerun
