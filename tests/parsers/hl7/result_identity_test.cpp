// Issue #19 in the HL7 normaliser: a test sent by its text only (Radiometer ABL, HL7 2.2 OBX-3
// `^pH^M`) or named in OBX-4 (Mindray BS 2.3.1) is a test; OBX-4 is otherwise the sub-id; a
// result message that yields no result says why.
#include <catch2/catch.hpp>

#include "parsers/hl7/normalise.hpp"

using namespace interfaced;

namespace {
const char* const msh = "MSH|^~\\&|ABL800|ICU|LIS|LAB|20260304081500||ORU^R01|1|P|2.2\r";
}

TEST_CASE("identity: OBX-3 with only its text identifies the test", "[identity]") {
  const std::string m = std::string(msh) + "OBR|1||S-1\rOBX|1|NM|^pH^M||7.412\rOBX|2|NM|^pCO2^M||5.21|kPa\r";
  const auto b = hl7::normalise(m, {}, "T");
  REQUIRE_FALSE(b.error);
  REQUIRE(b.results.size() == 2);
  CHECK(b.results[0].code == "pH");
  CHECK(b.results[1].code == "pCO2");
  CHECK(b.results[0].sample_id == "S-1");
}

TEST_CASE("identity: OBX-3 empty and the test in OBX-4 (Mindray BS)", "[identity]") {
  const std::string m = std::string(msh) + "OBR|1|BC|S-2\rOBX|1|NM||Glucose (GOD-POD Method)|415.738623|umol/L\r";
  const auto b = hl7::normalise(m, {}, "T");
  REQUIRE(b.results.size() == 1);
  CHECK(b.results[0].code == "Glucose (GOD-POD Method)");
  CHECK(b.results[0].sub_id.empty());
  hl7::hl7_options mindray;  // the mindray-cl profile: OBX-4 is the name
  mindray.name = {"OBX", 4, 1, 0};
  const auto p = hl7::normalise(m, mindray, "T");
  REQUIRE(p.results.size() == 1);
  CHECK(p.results[0].code == "Glucose (GOD-POD Method)");
}

TEST_CASE("identity: OBX-4 is the sub-id beside an identifier", "[identity]") {
  const std::string m = std::string(msh) + "OBR|1||S-3\rOBX|1|ST|ORG^Organism|1|E. coli\rOBX|2|ST|ORG^Organism|2|K. pneumoniae\r";
  const auto b = hl7::normalise(m, {}, "T");
  REQUIRE(b.results.size() == 2);
  CHECK(b.results[0].sub_id == "1");
  CHECK(b.results[1].sub_id == "2");
}

TEST_CASE("identity: a result message whose OBX give no result is a warning with the reason", "[identity]") {
  const std::string m = std::string(msh) + "OBR|1||S-4\rOBX|1|NM|||7.4\r";
  const auto b = hl7::normalise(m, {}, "T");
  REQUIRE_FALSE(b.error);
  CHECK(b.results.empty());
  bool warned = false;
  for (const auto& d : b.diagnostics)
    if (d.error == hl7::normalise_error::no_results) {
      warned = true;
      CHECK_THAT(d.detail, Catch::Contains("name no test"));
    }
  CHECK(warned);
}
