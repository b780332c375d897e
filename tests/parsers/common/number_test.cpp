// parsers/number.hpp: one rule for "plainly a number", used by the ASTM and HL7 normalisers and
// the rules engine. Cases from what analysers send in value fields (LIS02-A2 R.4, HL7 OBX-5 NM).
#include <catch2/catch.hpp>

#include "parsers/number.hpp"

using interfaced::parse_number;

TEST_CASE("number: signed decimals, padding ignored") {
  CHECK(parse_number("5.5") == 5.5);
  CHECK(parse_number("  42 ") == 42);
  CHECK(parse_number("\t7\t") == 7);
  CHECK(parse_number("-0.2") == -0.2);
  CHECK(parse_number("+3") == 3);
  CHECK(parse_number(".5") == 0.5);
  CHECK(parse_number("5.") == 5);
  CHECK(parse_number("-.5") == -0.5);
  CHECK(parse_number("007.10") == 7.1);
}

TEST_CASE("number: anything else stays text") {
  CHECK(!parse_number(""));
  CHECK(!parse_number("   "));
  CHECK(!parse_number("-"));
  CHECK(!parse_number("+"));
  CHECK(!parse_number("."));
  CHECK(!parse_number("1.2.3"));
  CHECK(!parse_number("1-2"));
  CHECK(!parse_number("--1"));
  CHECK(!parse_number("+-1"));
  CHECK(!parse_number("12a"));
  CHECK(!parse_number("1 2"));
  CHECK(!parse_number("1e3"));        // exponents are not how analysers write results
  CHECK(!parse_number("inf"));
  CHECK(!parse_number("nan"));
  CHECK(!parse_number("***.**"));
  CHECK(!parse_number("ValueNotSet"));
  CHECK(!parse_number(std::string(65, '1')));  // longer than any result field holds
  CHECK(parse_number(std::string(64, '1')));
}

TEST_CASE("number: censored and qualified values are not numbers") {
  CHECK(!parse_number("<15"));
  CHECK(!parse_number(">1000"));
  CHECK(!parse_number("<0.01"));
  CHECK(!parse_number("3+"));
  CHECK(!parse_number("+++"));
  CHECK(!parse_number("-----"));
  CHECK(!parse_number("POS"));
}

TEST_CASE("number: comma decimals only where a profile says so") {
  CHECK(!parse_number("7,41"));
  CHECK(parse_number("7,41", true) == 7.41);
  CHECK(parse_number("7.41", true) == 7.41);   // the point still reads
  CHECK(!parse_number("1,234.5", true));       // one separator at most: no thousands
  CHECK(!parse_number("1,2,3", true));
}
