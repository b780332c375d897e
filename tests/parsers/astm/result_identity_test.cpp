// Issue #19 in the E1394 normaliser: the whole R.3 manufacturer part is the test identity,
// R.9 repeats are a list, and result types of one test fold into one result (LIS02-A2 R.3/R.9;
// Abbott ARCHITECT ASI manual, Result Record).
#include <catch2/catch.hpp>

#include "parsers/astm/normalise.hpp"
#include "parsers/astm/records.hpp"

using namespace interfaced;

namespace {
astm::astm_batch run(const std::string& text, const astm::astm_options& o = {}) {
  static std::string keep;
  keep = text;
  return astm::normalise(astm::parse_message(keep), o, "T");
}
}  // namespace

TEST_CASE("identity: R.3 component 5 is part of the test identity, R.9 F-repeat-R is a list", "[identity]") {
  const auto b = run("H|\\^&\rP|1\rO|1|S-1||^^^HPV\rR|1|^^^HPV^ICRLU|412000|||||F\\R\r"
                     "R|2|^^^HPV^AnalyteSCO|0.21|||||F\\R\rL|1|N\r");
  REQUIRE(b.results.size() == 2);
  CHECK(b.results[0].code == "HPV^ICRLU");
  CHECK(b.results[1].code == "HPV^AnalyteSCO");
  CHECK(b.results[0].status == "F");
  CHECK(b.results[0].statuses == std::vector<std::string>{"F", "R"});
}

TEST_CASE("identity: a result without a sample id is flagged", "[identity]") {
  const auto b = run("H|\\^&\rP|1||PAT-1\rO|1\rR|1|^^^IGA|1,2\rL|1|N\r");
  REQUIRE(b.results.size() == 1);
  CHECK(b.results[0].sample_id.empty());
  CHECK(b.results[0].sample_id_missing());
}

TEST_CASE("identity: result types of one test fold into one result with companions", "[identity]") {
  astm::astm_options o;
  o.code_components = {4};
  o.result_type_component = 7;
  o.companion_types = {{"I", "interpretation"}, {"P", "raw_signal"}};
  const auto b = run("H|\\^&\rP|1\rO|1|S-1||^^^17^FT4^UNDILUTED\r"
                     "R|1|^^^17^FT4^UNDILUTED^I|Normal\r"            // before its final value
                     "R|2|^^^17^FT4^UNDILUTED^F|1.02|ng/dL\r"
                     "R|3|^^^17^FT4^UNDILUTED^P|20411|RLU\r"
                     "O|2|S-2||^^^17^FT4^UNDILUTED\r"
                     "R|1|^^^17^FT4^UNDILUTED^I|High\r"              // no final value: its own result
                     "R|2|^^^17^FT4^UNDILUTED^F|2.5|ng/dL\r"
                     "R|3|^^^17^FT4^UNDILUTED^F|2.6|ng/dL\r"        // a real repeat: a second result
                     "L|1|N\r",
                     o);
  REQUIRE(b.results.size() == 3);
  const auto& a = b.results[0];
  CHECK(a.code == "17");
  CHECK(a.result_type == "F");
  CHECK(a.value == "1.02");
  REQUIRE(a.companions.size() == 2);
  CHECK(a.companions[0].label == "interpretation");
  CHECK(a.companions[0].value == "Normal");
  CHECK(a.companions[1].label == "raw_signal");
  CHECK(a.companions[1].unit == "RLU");
  CHECK(b.results[1].value == "2.5");
  REQUIRE(b.results[1].companions.size() == 1);  // the I of S-2 joined the first F after it
  CHECK(b.results[2].value == "2.6");
  CHECK(b.results[2].companions.empty());
}

TEST_CASE("identity: without a result-type setting every R.3 component 4+ tells results apart", "[identity]") {
  const auto b = run("H|\\^&\rP|1\rO|1|S-1\rR|1|^^^16^TSH^UNDILUTED^F|2.1\rR|2|^^^16^TSH^UNDILUTED^P|51234\rL|1|N\r");
  REQUIRE(b.results.size() == 2);
  CHECK(b.results[0].code != b.results[1].code);
}

TEST_CASE("identity: a sample id read at component 0 is the first non-empty component of the first repeat",
          "[identity]") {
  // normalise.hpp: component 0 = the first non-empty component; LIS02-A2 5.4: a repeat delimiter
  // starts the next repetition, so components after it are not looked at; blanks are padding.
  const auto b = run("H|\\^&\rP|1\r"
                     "O|1|^  ^S-7^X||^^^GLU\rR|1|^^^GLU|5\r"          // S-7: empty and blank first
                     "O|2|S-8\rR|1|^^^GLU|6\r"                        // no components at all
                     "O|3|^ \\S-9|S-10|^^^GLU\rR|1|^^^GLU|7\r"        // S-9 only in the 2nd repeat: O.4
                     "O|4| ^^\rR|1|^^^GLU|8\r"                        // nothing anywhere
                     "L|1|N\r");
  REQUIRE(b.results.size() == 4);
  CHECK(b.results[0].sample_id == "S-7");
  CHECK(b.results[1].sample_id == "S-8");
  CHECK(b.results[2].sample_id == "S-10");
  CHECK(b.results[3].sample_id.empty());
}

TEST_CASE("identity: R fields are read right wherever their delimiters fall in the record", "[identity]") {
  // The fields of an R record are split sixteen and eight bytes at a time: a filler of every
  // length in R.2 moves every later delimiter through every position of a block. LIS02-A2 R
  // fields: 3 test, 4 value, 5 unit, 7 flags, 9 status, 13 completed, 14 instrument.
  for (std::size_t pad = 0; pad <= 40; ++pad) {
    const std::string r = "R|1" + std::string(pad, 'x') + "|^^^GLU|5.5|mmol/L||H||F||||20240101|M1";
    const auto b = run("H|\\^&\rP|1\rO|1|S-1\r" + r + "\rL|1|N\r");
    INFO("pad " << pad);
    REQUIRE(b.results.size() == 1);
    const auto& res = b.results[0];
    CHECK(res.code == "GLU");
    CHECK(res.value == "5.5");
    CHECK(res.unit == "mmol/L");
    CHECK(res.flags == std::vector<std::string>{"H"});
    CHECK(res.status == "F");
    CHECK(res.observed_at == "20240101");
    CHECK(res.instrument == "M1");
  }
  // A profile that reads past the twentieth field (split_fields holds twenty; the rest is read
  // from the record).
  astm::astm_options o;
  o.r.instrument = 23;
  std::string r = "R|1|^^^GLU|5.5";
  for (int f = 5; f <= 22; ++f) r += "|f" + std::to_string(f);
  r += "|MOD-23|f24";
  const auto b = run("H|\\^&\rP|1\rO|1|S-1\r" + r + "\rL|1|N\r", o);
  REQUIRE(b.results.size() == 1);
  CHECK(b.results[0].instrument == "MOD-23");
  CHECK(b.results[0].unit == "f5");
}
