#include <catch2/catch.hpp>

#include "parsers/hl7/message.hpp"
#include "parsers/hl7/mllp.hpp"
#include "parsers/hl7/normalise.hpp"

using namespace interfaced::hl7;

TEST_CASE("hl7 basic: mllp -> message -> normalise", "[hl7]") {
  const std::string msg =
      "MSH|^~\\&|BA400|Biosystems|Host|Host "
      "provider|20230513111804||OUL^R22^OUL_R22|abc|P|2.5.1|||ER|AL||UNICODE UTF-8|||LAB-29^IHE\r"
      "SPM|1|S1||SER|||||||P\r"
      "OBR||\"\"||GLU^Glucose^A400\r"
      "OBX|1|NM|GLU^Glucose^A400||5.5|mmol/L^mmol/"
      "L^A400||H~N|||F|||||||A400^B~1^B|20230513164804\r";
  const std::string wire = mllp_wrap(msg);
  mllp_decoder d;
  const auto r = d.put(wire);
  REQUIRE(r.event.kind == mllp_event_kind::message);
  REQUIRE(r.consumed == wire.size());
  REQUIRE(r.event.message == msg);
  const hl7_batch b = normalise(r.event.message, hl7_options{}, "dev");
  REQUIRE(!b.error);
  REQUIRE(b.results.size() == 1);
  CHECK(b.results[0].sample_id == "S1");
  CHECK(b.results[0].code == "GLU");
  CHECK(b.results[0].name == "Glucose");
  CHECK(b.results[0].value == "5.5");
  CHECK(b.results[0].numeric == 5.5);
  CHECK(b.results[0].unit == "mmol/L");
  CHECK(b.results[0].flags == std::vector<std::string>{"H", "N"});
  CHECK(b.results[0].instrument == "A400");
  CHECK(b.results[0].observed_at == "20230513164804");
  CHECK(!b.results[0].qc);
}
