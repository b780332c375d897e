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
