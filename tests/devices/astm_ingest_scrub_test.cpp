// devices/astm_ingest: control characters in a result's sample id, value or unit are removed and
// said [DATA-001] (astm_ingest.hpp), whether the byte came raw or out of an escape sequence
// (LIS02-A2 5.4.5: &Xhh& is any byte), and a message of plain printable ASCII gives no warning.
#include <catch2/catch.hpp>

#include <string>

#include "devices/astm_ingest.hpp"

using namespace interfaced;

namespace {

struct ingested {
  std::vector<devices::astm_message_out> messages;
  std::vector<devices::ingest_problem> problems;
};

ingested ingest(const std::string& records) {
  devices::astm_ingest in(nullptr, nullptr, "T", {});
  in.feed_records(records);
  return {in.take_messages(), in.take_problems()};
}

std::size_t data_001(const ingested& r) {
  std::size_t n = 0;
  for (const auto& p : r.problems) n += p.what.find("[DATA-001]") != std::string::npos ? 1U : 0U;
  return n;
}

}  // namespace

TEST_CASE("astm ingest: a plain ASCII message keeps its values and says nothing", "[astm_ingest]") {
  const auto r = ingest("H|\\^&|||AN\rP|1\rO|1|S-1||^^^GLU\rR|1|^^^GLU|5.0|mmol/L||N||F\rL|1|N\r");
  REQUIRE(r.messages.size() == 1);
  REQUIRE(r.messages[0].batch.results.size() == 1);
  const auto& res = r.messages[0].batch.results[0];
  CHECK(res.sample_id == "S-1");
  CHECK(res.value == "5.0");
  CHECK(res.unit == "mmol/L");
  CHECK(data_001(r) == 0);
}

TEST_CASE("astm ingest: a control character out of an escape sequence is removed and said", "[astm_ingest]") {
  // &X01& in the value, &X09& (TAB) in the sample id, &X7F& (DEL) in the unit: every byte is
  // printable ASCII on the wire.
  const auto r = ingest("H|\\^&|||AN\rP|1\rO|1|S&X09&2||^^^GLU\rR|1|^^^GLU|5&X01&.0|mmol&X7F&/L||N||F\rL|1|N\r");
  REQUIRE(r.messages.size() == 1);
  REQUIRE(r.messages[0].batch.results.size() == 1);
  const auto& res = r.messages[0].batch.results[0];
  CHECK(res.sample_id == "S2");
  CHECK(res.value == "5.0");
  REQUIRE(res.numeric);
  CHECK(*res.numeric == 5.0);
  CHECK(res.unit == "mmol/L");
  CHECK(data_001(r) == 3);
}

TEST_CASE("astm ingest: a raw TAB inside a value is removed and said", "[astm_ingest]") {
  const auto r = ingest("H|\\^&|||AN\rP|1\rO|1|S-3||^^^GLU\rR|1|^^^GLU|5\t.0|mmol/L||N||F\rL|1|N\r");
  REQUIRE(r.messages.size() == 1);
  REQUIRE(r.messages[0].batch.results.size() == 1);
  CHECK(r.messages[0].batch.results[0].value == "5.0");
  CHECK(data_001(r) == 1);
}
