// Orders pushed to an HL7 analyser: addressing one built before the analyser was known (sender_of
// reads who sent a message, address_to fills the empty MSH-5 / MSH-6 of ours with it), and reading
// the analyser's per-order answer (ORC-1 in its ORL).

#include <catch2/catch.hpp>

#include <string>

#include "parsers/hl7/ack.hpp"
#include "parsers/hl7/builders.hpp"

using namespace interfaced::hl7;

namespace {

// As build_oml_o33 writes it before the analyser has spoken: MSH-5 and MSH-6 empty.
const std::string unaddressed =
    "MSH|^~\\&|interfaced||||20260101120000||OML^O33^OML_O33|IFO-1|P|2.5.1\rSPM|1|S-1||SER\r";

}  // namespace

TEST_CASE("sender_of: MSH-3 and MSH-4 as sent, components and escapes kept") {
  const auto s = sender_of("MSH|^~\\&|BA400^A400|Bio\\T\\systems|interfaced||20230513||OUL^R22|1|P|2.5.1\rPID|1\r");
  CHECK(s.application == "BA400^A400");
  CHECK(s.facility == "Bio\\T\\systems");
  // Another field separator is read from MSH-1.
  CHECK(sender_of("MSH#^~\\&#XN#LAB#HOST\r").application == "XN");
  CHECK(sender_of("MSH|^~\\&|XN\r").facility.empty());  // the segment ends first
  CHECK(sender_of("PID|1|X\r").application.empty());
  CHECK(sender_of("MSH").application.empty());
  CHECK(sender_of("").facility.empty());
}

TEST_CASE("address_to: empty MSH-5 / MSH-6 take the analyser's application and facility, the rest is untouched") {
  const std::string addressed = address_to(unaddressed, "BA400", "Biosystems");
  CHECK(addressed ==
        "MSH|^~\\&|interfaced||BA400|Biosystems|20260101120000||OML^O33^OML_O33|IFO-1|P|2.5.1\rSPM|1|S-1||SER\r");
  // Only what is empty is filled: a facility known but no application, and the other way round.
  CHECK(address_to(unaddressed, "", "LAB") ==
        "MSH|^~\\&|interfaced|||LAB|20260101120000||OML^O33^OML_O33|IFO-1|P|2.5.1\rSPM|1|S-1||SER\r");
  CHECK(address_to(addressed, "OTHER", "ELSEWHERE") == addressed);  // already addressed: kept
  // Components of an HD value go in as they are.
  CHECK(address_to(unaddressed, "XN^1.2.3^ISO", "").find("|interfaced||XN^1.2.3^ISO||") != std::string::npos);
}

TEST_CASE("address_to: values that would break the segment, and messages without MSH-6, are left alone") {
  CHECK(address_to(unaddressed, "BA|400", "Bio") ==
        "MSH|^~\\&|interfaced|||Bio|20260101120000||OML^O33^OML_O33|IFO-1|P|2.5.1\rSPM|1|S-1||SER\r");
  CHECK(address_to(unaddressed, "BA400\rPID|1", "") == unaddressed);
  CHECK(address_to("MSH|^~\\&|interfaced|\r", "BA400", "Bio") == "MSH|^~\\&|interfaced|\r");
  CHECK(address_to("PID|1||||\r", "BA400", "Bio") == "PID|1||||\r");
  CHECK(address_to("", "BA400", "Bio").empty());
  // MSH-6 as the segment's last field is still filled.
  CHECK(address_to("MSH|^~\\&|interfaced|||\rPID|1\r", "BA400", "Bio") == "MSH|^~\\&|interfaced||BA400|Bio\rPID|1\r");
}

TEST_CASE("check_response reads each ORC of an ORL: which orders the analyser refused under MSA-1 AA") {
  const std::string orl =
      "MSH|^~\\&|BA400|Biosystems|interfaced||20260101120001||ORL^O34^ORL_O42|A-1|P|2.5.1\r"
      "MSA|AA|IFO-1\r"
      "PID|1\r"
      "SPM|1|S-1||SER\r"
      "ORC|OK|S-1.GLU\r"
      "ORC|UA|S-1.K^BA400\r"
      "ORC|UX|S-1.NA\r";
  const auto r = check_response(orl);
  CHECK(r.ack_code == "AA");
  REQUIRE(r.orders.size() == 3);
  CHECK(r.orders[0].placer == "S-1.GLU");
  CHECK_FALSE(r.orders[0].refused());
  CHECK(r.orders[1].placer == "S-1.K");  // ORC-2.1: the entity identifier we sent
  CHECK(r.orders[1].refused());
  CHECK(r.orders[2].refused());
  CHECK(check_response("MSH|^~\\&|A||B||20260101||ACK|1|P|2.5.1\rMSA|AA|X\r").orders.empty());
}
