// Issue #14 point 1, "control results are never patient results", in process: the hand-written
// fixtures of tests/fixtures/qc (README there: written from the vendors' descriptions, not
// captures) normalised with the defaults a device without a profile gets, then qualified.
//  - a Mindray BC-5380-style QC message: MSH-11 `Q`, three levels as three OBR groups sharing
//    OBR-3 `6`: every result a control, none a patient result, none a rerun of the level before;
//  - the same message as a patient one (MSH-11 `P`) shows what the sharing would otherwise do:
//    the second and third groups are instrument-triggered reruns (rerun_number -1).
// The Hitachi 7600-style ASTM fixture (no QC marker: qc.controls) is played over the wire in
// tests/e2e/qc_e2e_test.cpp.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "parsers/hl7/normalise.hpp"
#include "rerun_fixture.hpp"

using namespace interfaced;
using namespace interfaced::rerun;
using namespace interfaced::rerun::test;

namespace {

std::string fixture(const char* name) {
  std::ifstream in(std::string(INTERFACED_FIXTURE_DIR) + "/qc/" + name, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::size_t count(const batch_outcome& o, endpoint e) {
  std::size_t n = 0;
  for (const auto& m : o.messages) n += m.kind == e ? 1u : 0u;
  return n;
}

}  // namespace

TEST_CASE("qc detection: HL7 MSH-11 Q marks every result a control, whatever the device's profile", "[qc][hl7]") {
  const std::string text = fixture("mindray-bc5380-qc-three-levels.hl7");
  REQUIRE(!text.empty());
  const hl7::hl7_batch b = hl7::normalise(text, hl7::hl7_options{}, "bc");
  REQUIRE(!b.error);
  // Three levels of four parameters, every one of sample (QC file) 6.
  REQUIRE(b.results.size() == 12);
  for (const auto& r : b.results) {
    CHECK(r.qc);
    CHECK(r.sample_id == "6");
  }
}

TEST_CASE("qc detection: three control levels sharing OBR-3 are controls, never instrument-triggered reruns", "[qc][rerun]") {
  const std::string text = fixture("mindray-bc5380-qc-three-levels.hl7");
  world w;
  w.now = at("2026-12-06T08:20:00");
  batch kept;
  const auto out = w.run("bc", hl7::normalise(text, hl7::hl7_options{}, "bc").results, &kept);
  REQUIRE(out.tags.size() == 12);
  for (std::size_t i = 0; i < out.tags.size(); ++i) {
    INFO("result " << i << " " << kept.results[i].code);
    CHECK(out.tags[i].control);
    CHECK(kept.results[i].rerun_number != -1);
    CHECK_FALSE(kept.results[i].is_rerun);
  }
  CHECK(out.counts.controls == 12);
  CHECK(out.counts.forwarded == 0);
  CHECK(count(out, endpoint::results) == 0);
  CHECK(count(out, endpoint::qc_results) == 1);
}

TEST_CASE("qc detection: the same three groups sent as patient results would be reruns (what MSH-11 Q prevents)", "[qc][rerun]") {
  std::string text = fixture("mindray-bc5380-qc-three-levels.hl7");
  const auto at_q = text.find("|Q|2.3.1|");
  REQUIRE(at_q != std::string::npos);
  text.replace(at_q, 3, "|P|");
  world w;
  w.now = at("2026-12-06T08:20:00");
  batch kept;
  const auto out = w.run("bc", hl7::normalise(text, hl7::hl7_options{}, "bc").results, &kept);
  REQUIRE(kept.results.size() == 12);
  CHECK(out.counts.controls == 0);
  // The first group's four are first results; the later groups repeat (6, parameter).
  for (std::size_t i = 0; i < 4; ++i) CHECK(kept.results[i].rerun_number == 0);
  for (std::size_t i = 4; i < 12; ++i) CHECK(kept.results[i].rerun_number == -1);
}
