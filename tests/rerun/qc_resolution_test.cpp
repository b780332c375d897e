// qc.md "Resolutions": the resolution book (one-step, two-step, undo, conflicts 5.5) and the
// tracker's exclusion with the re-evaluation it triggers.
#include <catch2/catch.hpp>

#include "rerun/qc.hpp"
#include "rerun/qc_resolution.hpp"

namespace qc = interfaced::rerun::qc;

namespace {

const std::vector<qc::resolution_code> codes = {{"BAD_VIAL", true, false, false},
                                                {"TECH_REVIEW", true, false, true},
                                                {"SKIP", false, true, false}};

qc::request req(const std::string& id, const std::string& code, const std::string& by, bool propose = false) {
  return {id, "chem", "GLU", code, by, "why", "2026-12-06T10:00:00.000+00:00", propose};
}

}  // namespace

TEST_CASE("qc resolution: a one-step code takes effect, unknown codes and a second resolution are refused") {
  qc::resolution_book b;
  auto d = b.resolve(req("r1", "NOPE", "ana"), codes, {});
  CHECK(d.error.find("unknown resolution code") != std::string::npos);
  d = b.resolve(req("r1", "BAD_VIAL", "ana"), codes, {});
  REQUIRE(d.error.empty());
  CHECK(d.takes_effect);
  b.apply(d);
  REQUIRE(b.active_of("r1") != nullptr);
  CHECK(b.active_of("r1")->id == 1);
  d = b.resolve(req("r1", "BAD_VIAL", "ben"), codes, {});
  CHECK(d.error.find("already has resolution 1") != std::string::npos);
}

TEST_CASE("qc resolution: two-step is proposed, refused for the proposer, approved by another person") {
  qc::resolution_book b;
  CHECK(b.resolve(req("r1", "TECH_REVIEW", "ana"), codes, {}).error.find("two-step") != std::string::npos);
  auto d = b.resolve(req("r1", "TECH_REVIEW", "ana", true), codes, {});
  REQUIRE(d.error.empty());
  CHECK_FALSE(d.takes_effect);
  b.apply(d);
  CHECK(b.active_of("r1") == nullptr);
  auto a = b.approve(1, "ana", "t", codes);
  CHECK(a.error.find("different person") != std::string::npos);
  a = b.approve(1, "ben", "t", codes);
  REQUIRE(a.error.empty());
  CHECK(a.takes_effect);
  b.apply(a);
  REQUIRE(b.active_of("r1") != nullptr);
  CHECK(b.active_of("r1")->approved_by == "ben");
}

TEST_CASE("qc resolution: undo keeps every entry and marks the resolution undone, a restore gives the same state") {
  qc::resolution_book b;
  b.apply(b.resolve(req("r1", "BAD_VIAL", "ana"), codes, {}));
  auto u = b.undo(1, "ben", "fine after all", "t", codes);
  REQUIRE(u.error.empty());
  CHECK(u.takes_effect);
  b.apply(u);
  CHECK(b.active_of("r1") == nullptr);
  CHECK(b.entries().size() == 2);
  CHECK(b.undo(1, "ben", "", "t", codes).error.find("in effect") != std::string::npos);
  qc::resolution_book again;
  again.restore(b.entries());
  CHECK(again.resolutions().size() == 1);
  CHECK(again.resolutions()[0].st == qc::resolution::state::undone);
}

TEST_CASE("qc resolution 5.5: a resolution touching patient results of another control's pending proposal is refused") {
  qc::resolution_book b;
  // r1 and r2: two levels of one QC event, the same run's patient results.
  auto affected = [](const std::string& id) {
    if (id == "r1" || id == "r2") return std::vector<std::string>{"S-2 GLU", "S-3 GLU"};
    return std::vector<std::string>{"S-9 GLU"};
  };
  b.apply(b.resolve(req("r1", "TECH_REVIEW", "ana", true), codes, affected));
  auto d = b.resolve(req("r2", "BAD_VIAL", "ben"), codes, affected);
  INFO(d.error);
  CHECK(d.error.find("conflict: control result r1") != std::string::npos);
  CHECK(d.error.find("S-2 GLU, S-3 GLU") != std::string::npos);
  // Another run's control is not in conflict.
  CHECK(b.resolve(req("r3", "BAD_VIAL", "ben"), codes, affected).error.empty());
}

TEST_CASE("qc tracker: excluding a rejecting control re-evaluates its run (error cleared) and stops at the end") {
  qc::qc_config cfg;
  cfg.enabled = true;
  cfg.configured.push_back({{"GLU", "", "", "1"}, 5.0, 0.2, "mmol/L"});
  qc::qc_tracker t(cfg);
  auto ctl = [&](const std::string& at, double v) {
    qc::control_result c;
    c.device = "chem";
    c.series = {"GLU", "M", "L", "1"};
    c.value = v;
    c.observed_at = at;
    c.t = *interfaced::rerun::parse_wall_time(at);
    c.result_id = "chem|GLU|" + at;
    return t.add(c);
  };
  CHECK(ctl("2026-12-06T08:00:00", 5.0).eval.result == qc::outcome::accept);
  CHECK(ctl("2026-12-06T10:00:00", 5.9).eval.result == qc::outcome::reject);
  CHECK(ctl("2026-12-06T12:00:00", 5.1).eval.result == qc::outcome::accept);
  t.record_patient("chem", {"S-2", "GLU", "2026-12-06T10:30:00", *interfaced::rerun::parse_wall_time("2026-12-06T10:30:00")});
  t.set_resolution("chem|GLU|2026-12-06T10:00:00", {true, false});
  const auto rep = t.reevaluate_from("chem", "GLU", *interfaced::rerun::parse_wall_time("2026-12-06T10:00:00"), 8,
                                     "chem|GLU|2026-12-06T10:00:00");
  CHECK(rep.runs_reevaluated == 2);
  CHECK(rep.runs_changed == 1);
  CHECK_FALSE(rep.stopped_early);
  REQUIRE(rep.runs.size() == 2);
  CHECK(rep.runs[0].what == qc::change::error_cleared);
  CHECK(rep.runs[0].status == "Reanalysis required (Westgard)");
  REQUIRE(rep.runs[0].patients.size() == 1);
  CHECK(rep.runs[0].patients[0].sample_id == "S-2");
  CHECK(rep.runs[1].what == qc::change::no_change);
  const auto eff = t.effective_outcomes("chem", "GLU");
  CHECK(eff.at("chem|GLU|2026-12-06T10:00:00").first == qc::outcome::accept);
  // Undo: the run was judged without the control, now with it again: a new error.
  t.clear_resolution("chem|GLU|2026-12-06T10:00:00");
  const auto back = t.reevaluate_from("chem", "GLU", *interfaced::rerun::parse_wall_time("2026-12-06T10:00:00"), 8,
                                      "chem|GLU|2026-12-06T10:00:00");
  REQUIRE(back.runs.size() == 2);
  CHECK(back.runs[0].what == qc::change::new_error);
  CHECK(back.runs_changed == 1);
}
