// ASTM order messages (LIS02-A2 H, P, O, L): the records written from the standard's field
// positions, then read back by our own record parser.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "parsers/astm/builders.hpp"
#include "parsers/astm/records.hpp"

using namespace interfaced;
using interfaced::astm::build_order_message;
using interfaced::astm::order_message_header;

namespace {

std::vector<std::string> records_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t cr = text.find('\r'); cr != std::string::npos; cr = text.find('\r', start)) {
    out.push_back(text.substr(start, cr - start));
    start = cr + 1;
  }
  CHECK(start == text.size());  // every record ends CR
  return out;
}

order rerun_order() {
  order o;
  o.sample_id = "S-RR-1";
  o.patient_id = "PAT-1";
  o.patient_name = "DOE^JANE";
  o.patient_birth_date = "19800101";
  o.patient_sex = "F";
  o.tests = {{"HGB", ""}, {"PLT", ""}};
  o.priority = "R";
  o.action_code = "A";
  return o;
}

}  // namespace

TEST_CASE(
    "builders: an order download is H, P, O with the instrument's codes as ^^^CODE repeats, L",
    "[astm][builders]") {
  order_message_header h;
  h.timestamp = "20260101120000";
  const auto recs = records_of(build_order_message({rerun_order()}, h));
  REQUIRE(recs.size() == 4);
  // H.5 sender, H.12 processing id, H.13 version, H.14 time.
  CHECK(recs[0] == "H|\\^&|||interfaced|||||||P|LIS2-A2|20260101120000");
  // P.2 sequence, P.3 patient id, P.6 name (components), P.8 birth date, P.9 sex.
  CHECK(recs[1] == "P|1|PAT-1|||DOE^JANE||19800101|F");
  // O.2 sequence, O.3 specimen, O.5 universal test ids (repeat '\'), O.6 priority, O.12 action
  // code, O.26 report type O.
  CHECK(recs[2] == "O|1|S-RR-1||^^^HGB\\^^^PLT|R||||||A||||||||||||||O");
  CHECK(recs[3] == "L|1|N");
}

TEST_CASE("builders: a cancel and an add for one specimen share the P record", "[astm][builders]") {
  order cancel = rerun_order();
  cancel.tests = {{"NA", ""}};
  cancel.action_code = "C";
  order add = rerun_order();
  add.tests = {{"K", "Potassium"}};
  add.priority = "S";
  order other;
  other.sample_id = "S-2";
  other.tests = {{"GLU", ""}};
  order_message_header h;
  h.timestamp = "20260101120000";
  const std::string text = build_order_message({cancel, add, other}, h);
  const auto recs = records_of(text);
  REQUIRE(recs.size() == 7);
  CHECK(recs[1].starts_with("P|1|PAT-1|"));
  CHECK(recs[2] == "O|1|S-RR-1||^^^NA|R||||||C||||||||||||||O");
  CHECK(recs[3] == "O|2|S-RR-1||^^^K^Potassium|S||||||A||||||||||||||O");
  CHECK(recs[4] == "P|2");
  // No action code given: N (new specimen); no priority: R (routine).
  CHECK(recs[5] == "O|1|S-2||^^^GLU|R||||||N||||||||||||||O");
  CHECK(recs[6] == "L|1|N");

  // Read back: the parser sees the orders the builder meant.
  const auto m = astm::parse_message(text);
  CHECK(m.diagnostics.empty());
  CHECK(m.has_terminator);
  std::size_t orders = 0;
  for (const auto& r : m.records)
    if (r.type() == 'O') ++orders;
  CHECK(orders == 3);
}

TEST_CASE("builders: the answer to a query with nothing pending is H and L|1|I",
          "[astm][builders]") {
  order_message_header h;
  h.timestamp = "20260101120000";
  h.termination_code = "I";
  CHECK(build_order_message({}, h) ==
        "H|\\^&|||interfaced|||||||P|LIS2-A2|20260101120000\rL|1|I\r");
}

TEST_CASE("builders: delimiters in the data are escaped, the device's delimiters are used",
          "[astm][builders]") {
  order o;
  o.sample_id = "S|1";
  o.tests = {{"A^B", ""}};
  o.patient_name = "O'NEIL&SONS";
  order_message_header h;
  h.timestamp = "20260101120000";
  const auto recs = records_of(build_order_message({o}, h));
  REQUIRE(recs.size() == 4);
  CHECK(recs[1] == "P|1||||O'NEIL&E&SONS");  // P.6, after the empty P.3 to P.5
  CHECK(recs[2] == "O|1|S&F&1||^^^A&S&B|R||||||N||||||||||||||O");

  // Beckman DxH delimiters (|\!~, astm-facts.md): component '!', escape '~'.
  const astm::delimiters dxh{'|', '\\', '!', '~'};
  const auto d = records_of(build_order_message({rerun_order()}, h, dxh));
  CHECK(d[0] == "H|\\!~|||interfaced|||||||P|LIS2-A2|20260101120000");
  CHECK(d[2] == "O|1|S-RR-1||!!!HGB\\!!!PLT|R||||||A||||||||||||||O");
}
