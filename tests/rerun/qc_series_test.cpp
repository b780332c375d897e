// Issue #14 point 1: a control result's series (parameter, material, lot, level) from the message
// where the profile's hl7 qc_series says, completed (or, with `override`, replaced) by qc.controls.
// The message is the hand-written BC-5380-style QC fixture (tests/fixtures/qc/README.md: three
// levels as three OBR groups sharing OBR-3 `6`), read with the mapping of the mindray-bc profile
// written out here (rerun/ tests do not load devices/ profiles; tests/devices checks the profile
// file gives the same options).
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "parsers/hl7/normalise.hpp"
#include "rerun/qc_json.hpp"
#include "rerun_fixture.hpp"

using namespace interfaced;
using namespace interfaced::rerun;
using namespace interfaced::rerun::test;

namespace {

std::string fixture() {
  std::ifstream in(std::string(INTERFACED_FIXTURE_DIR) + "/qc/mindray-bc5380-qc-three-levels.hl7",
                   std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// material = OBR-4.2 and OBR-3 (the X-R QC file), level = the OBR group's position.
hl7::hl7_options bc_options() {
  hl7::hl7_options o;
  o.qc_series.material = {{{"OBR", 4, 2, 0}, false}, {{"OBR", 3, 1, 0}, false}};
  o.qc_series.level = {{{"OBR", 0, 1, 0}, true}};
  return o;
}

struct qc_world {
  world w;
  qc::qc_config cfg;
  qc::qc_tracker tracker{cfg};
  qc_world() {
    w.now = at("2026-12-06T08:20:00");
    cfg.enabled = true;
  }
  batch_outcome run(std::vector<result> results) {
    batch b{"bc", "b" + std::to_string(++w.batches), std::move(results), {}};
    rerun_inputs in{w.codes, w.rules, w.history,     w.state, w.now,
                    false,   w.zone,  w.received_at, &tracker};
    return process_reports_for_rerun(b, in);
  }
};

const qc_results_body& qc_body(const batch_outcome& o) {
  const auto* m = find_message(o, endpoint::qc_results);
  REQUIRE(m != nullptr);
  return m->qc;
}

// The BC-3D fixture's twelve controls, as qc.controls rule {"6", BC-3D Tri-level, L2611} fills or
// overrides them: its material and lot on every result, the level the message's OBR order gives
// (four parameters per level).
void check_bc3d_series(const qc_results_body& body) {
  REQUIRE(body.results.size() == 12);
  for (std::size_t i = 0; i < body.results.size(); ++i) {
    const auto& r = body.results[i];
    INFO(i);
    CHECK(r.material == "BC-3D Tri-level");
    CHECK(r.lot == "L2611");
    CHECK(r.level == std::to_string(i / 4 + 1));
  }
}

}  // namespace

TEST_CASE(
    "qc series: each OBR group of a BC-5380 QC message is its own level, judged against its own "
    "limits",
    "[qc][hl7]") {
  const std::string text = fixture();
  REQUIRE(!text.empty());
  const auto b = hl7::normalise(text, bc_options(), "bc");
  REQUIRE(b.results.size() == 12);
  qc_world q;
  // WBC (OBX-3.1 6690-2) limits per level: 3.10 against 3.00 +- 0.10 is z 1; 7.45 against
  // 7.50 +- 0.25 is z -0.2; 17.9 against 18.0 +- 0.5 is z -0.2. One series of all three would be
  // judged against one of these and give at least one |z| far above 3.
  q.cfg.configured = {{{"6690-2", "", "", "1"}, 3.0, 0.1, ""},
                      {{"6690-2", "", "", "2"}, 7.5, 0.25, ""},
                      {{"6690-2", "", "", "3"}, 18.0, 0.5, ""}};
  const auto out = q.run(b.results);
  CHECK(count_messages(out, endpoint::results) == 0);
  const auto& body = qc_body(out);
  REQUIRE(body.results.size() == 12);
  std::map<std::string, std::vector<std::string>> levels;  // parameter -> levels in order
  for (const auto& r : body.results) {
    INFO(r.parameter << " " << r.value);
    levels[r.parameter].push_back(r.level);
    CHECK(r.material == "X-R QC 6");
    CHECK(r.lot.empty());
  }
  for (const auto& [parameter, l] : levels) {
    INFO(parameter);
    CHECK(l == std::vector<std::string>{"1", "2", "3"});
  }
  std::vector<double> z;
  for (const auto& r : body.results)
    if (r.parameter == "6690-2") {
      REQUIRE(r.z.has_value());
      z.push_back(*r.z);
      CHECK(r.limits_source == "config");
      CHECK(r.outcome == "accept");
    }
  REQUIRE(z.size() == 3);
  CHECK(z[0] == Approx(1.0));
  CHECK(z[1] == Approx(-0.2));
  CHECK(z[2] == Approx(-0.2));
  // Three series, three result ids: a resolution names one level's result, not the file's.
  std::set<std::string> ids;
  for (const auto& r : body.results)
    if (r.parameter == "6690-2") ids.insert(r.result_id);
  CHECK(ids.size() == 3);
}

TEST_CASE("qc series: a message without the mapped field gets that key from qc.controls",
          "[qc][hl7]") {
  // OBR-4 without its text component: the material mapping (OBR-4.2 and OBR-3) is incomplete,
  // so the material is not "6" alone but what qc.controls says for sample (QC file) 6.
  std::string text = fixture();
  std::size_t n = 0;
  for (std::size_t p = text.find("|00006^X-R QC^99MRC|"); p != std::string::npos;
       p = text.find("|00006^X-R QC^99MRC|", p)) {
    text.replace(p, 20, "|00006|");
    ++n;
  }
  REQUIRE(n == 3);
  const auto b = hl7::normalise(text, bc_options(), "bc");
  REQUIRE(b.results.size() == 12);
  for (const auto& r : b.results) CHECK(r.qc_material.empty());
  qc_world q;
  q.cfg.controls = {{"6", "BC-3D Tri-level", "L2611", "9", false}};
  const auto outcome = q.run(b.results);  // kept: body refers into it
  // The message lacks the material, no field carries the lot, and the message's level wins
  // without override.
  check_bc3d_series(qc_body(outcome));
}

TEST_CASE("qc series: a qc.controls rule with override replaces what the message says",
          "[qc][hl7]") {
  const auto b = hl7::normalise(fixture(), bc_options(), "bc");
  REQUIRE(b.results.size() == 12);
  qc_world q;
  // The lab names its material itself; the rule leaves level empty, so the message's stays.
  q.cfg.controls = {{"6", "BC-3D Tri-level", "L2611", "", true}};
  const auto outcome = q.run(b.results);  // kept: body refers into it
  check_bc3d_series(qc_body(outcome));
}

TEST_CASE("qc series: qc.controls override must be true or false", "[qc]") {
  const auto ok = qc::qc_config_from_json(
      nlohmann::json::parse(
          R"({"controls":[{"sample_id":"6","material":"BC-3D","override":true}]})"),
      "/qc");
  REQUIRE(ok.controls.size() == 1);
  CHECK(ok.controls[0].override);
  CHECK_FALSE(
      qc::qc_config_from_json(nlohmann::json::parse(R"({"controls":[{"sample_id":"6"}]})"), "/qc")
          .controls[0]
          .override);
  try {
    (void)qc::qc_config_from_json(
        nlohmann::json::parse(R"({"controls":[{"sample_id":"6","override":"yes"}]})"), "/qc");
    FAIL("accepted \"override\": \"yes\"");
  } catch (const json_error& e) {
    CHECK(std::string(e.what()).find("/qc/controls/0/override") != std::string::npos);
  }
}
