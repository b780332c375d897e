#include <catch2/catch.hpp>

#include <string>

#include "hl7_test_helpers.hpp"
#include "parsers/hl7/stream.hpp"
#include "support/files.hpp"

using namespace interfaced::hl7;

TEST_CASE("normalise_stream: framed stream with junk and a cut end", "[hl7][stream]") {
  const std::string a =
      "MSH|^~\\&|A||H||2023||OUL^R22|1|P|2.5.1\rSPM|1|S1\rOBR|1\rOBX|1|NM|GLU||5\r";
  const std::string b = "MSH|^~\\&|A||H||2023||QBP^Q11|2|P|2.5.1\rQPD|WOS|t|S2\r";
  const std::string bytes = "xx" + mllp_wrap(a) + mllp_wrap(b) + "\x0B" + b + "\x1C";
  const auto items = normalise_stream(bytes, {}, "dev");
  REQUIRE(items.size() == 4);
  CHECK(items[0].framing == mllp_error::garbage_skipped);
  CHECK(items[0].offset == 0);
  CHECK(items[0].length == 2);
  CHECK(items[1].text == a);
  CHECK(items[1].offset == 2);
  REQUIRE(items[1].batch.results.size() == 1);
  CHECK(items[1].batch.results[0].sample_id == "S1");
  CHECK(items[1].batch.results[0].where.message_index == 0);
  CHECK(items[1].batch.results[0].where.byte_offset == 2);
  CHECK(items[2].batch.queries.at(0).sample_ids.at(0) == "S2");
  CHECK(items[2].batch.queries.at(0).where.message_index == 1);
  // 0x1C at the very end without 0x0D: delivered (lenient), text still a view into `bytes`.
  CHECK(items[3].text == b);
  CHECK(items[3].text.data() >= bytes.data());
  CHECK(items[3].batch.control_id == "2");
}

TEST_CASE("normalise_stream: unframed capture files", "[hl7][stream][capture]") {
  const auto a = interfaced::test::capture("hl7/biosystems-ba400-oul-r22-reexport-a.hl7");
  const auto b = interfaced::test::capture("hl7/biosystems-ba400-oul-r22-reexport-b.hl7");
  const auto roche = interfaced::test::capture("hl7/roche-cobaspure-oul-r22-lab29-mllp.hl7");
  if (!a || !b || !roche) return;
  const std::string both = *a + *b;
  const auto items = normalise_stream(both, {}, "ba400");
  REQUIRE(items.size() == 2);
  CHECK(items[0].batch.results.size() == 3);
  CHECK(items[1].batch.results.size() == 3);
  CHECK(items[1].offset == a->size());
  CHECK(items[1].batch.results[0].where.byte_offset == a->size());
  const auto framed = normalise_stream(*roche, {}, "cobas");
  REQUIRE(framed.size() == 1);
  CHECK(framed[0].batch.results.size() == 5);
}
