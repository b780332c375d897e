// Issue #14 scenario through process_reports_for_rerun (the daemon's per-batch path, in process):
// 30 days of one control series (two levels) and patient runs, generated. A 2-2s reject on day 12
// -> the patient results of that run are posted qc_status "rejected" and those posted since the
// last accepted QC event are reported affected (one qc-runs post); excluding the day-12 level-1
// control re-evaluates the chart, clears the reject and stops after 8 unchanged runs; a late
// control for day 5 is reported against the runs after it. Control results never reach the
// results endpoint.

#include <catch2/catch.hpp>

#include <cstdio>

#include "rerun/qc_json.hpp"
#include "rerun/westgard.hpp"
#include "rerun_fixture.hpp"

using namespace interfaced;
using namespace interfaced::rerun;
using namespace interfaced::rerun::test;

namespace {

std::string ts(int day, int hour, int minute = 0) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "202611%02d%02d%02d00", day, hour, minute);
  return buf;
}

result control(int day, const std::string& level, double value) {
  result r = make_result("QC-" + level, "GLU", std::to_string(value), ts(day, 8));
  r.qc = true;
  r.qc_material = "Liquichek";
  r.qc_lot = "L7";
  r.qc_level = level;
  return r;
}

// Level 1: mean 100 sd 5; level 2: mean 200 sd 10. Quiet days alternate +-0.4 SD; day 12 has both
// levels at +2.2 SD (2-2s within the run) and day 11 level 1 at +2.4 SD (1-2s warning).
double l1(int day) { return day == 12 ? 111 : day == 11 ? 112 : (day % 2 ? 102 : 98); }
double l2(int day) { return day == 12 ? 222 : (day % 2 ? 196 : 204); }

const qc_results_body* qc_body(const batch_outcome& o) {
  const auto* m = find_message(o, endpoint::qc_results);
  return m ? &m->qc : nullptr;
}

}  // namespace

TEST_CASE("qc scenario: 30 days, a 2-2s reject on day 12, affected results, exclusion, late day-5 control") {
  world w;
  qc::qc_config cfg;
  cfg.enabled = true;
  cfg.configured = {{{"GLU", "", "", "1"}, 100, 5, ""}, {{"GLU", "", "", "2"}, 200, 10, ""}};
  qc::qc_tracker tracker(cfg);
  auto run = [&](std::vector<result> results) {
    batch b{"chem", "b" + std::to_string(++w.batches), std::move(results), {}};
    rerun_inputs in{w.codes, w.rules, w.history, w.state, w.now, false, w.zone, w.received_at, &tracker};
    return process_reports_for_rerun(b, in);
  };

  std::vector<std::string> day12_status, day11_status;
  const qc_run_body* affected = nullptr;
  batch_outcome day12_controls;
  for (int day = 1; day <= 30; ++day) {
    if (day == 5) continue;  // the analyser buffered day 5's control through an outage (sent late, below)
    auto qc_out = run({control(day, "1", l1(day)), control(day, "2", l2(day))});
    // Control results never reach the results endpoint.
    CHECK(find_message(qc_out, endpoint::results) == nullptr);
    REQUIRE(qc_body(qc_out) != nullptr);
    CHECK(qc_body(qc_out)->results.size() == 2);
    if (day == 12) day12_controls = qc_out;
    // Patient runs after the QC event: two samples at 10:00 and 14:00.
    auto p = run({make_result("P" + std::to_string(day) + "a", "GLU", "5.1", ts(day, 10)),
                  make_result("P" + std::to_string(day) + "b", "GLU", "6.3", ts(day, 14))});
    const auto* res = find_message(p, endpoint::results);
    REQUIRE(res != nullptr);
    for (const auto& v : res->results.results) {
      if (day == 12) day12_status.push_back(v.qc_status);
      if (day == 11) day11_status.push_back(v.qc_status);
      if (day == 6) CHECK(v.qc_status == "accepted");
    }
  }

  // Day 12: 2-2s within the run (both levels > +2 SD) -> its patient results are rejected.
  const auto& c12 = qc_body(day12_controls)->results;
  CHECK(c12[1].outcome == "reject");
  CHECK(std::find(c12[1].rules.begin(), c12[1].rules.end(), "2-2s") != c12[1].rules.end());
  CHECK(day12_status == std::vector<std::string>{"rejected", "rejected"});
  CHECK(day11_status == std::vector<std::string>{"accepted", "accepted"});
  // The results posted since the last accepted QC event (day 11's run) are reported affected, in
  // one post although both levels rejected.
  CHECK(count_messages(day12_controls, endpoint::qc_runs) == 1);
  if (const auto* m = find_message(day12_controls, endpoint::qc_runs)) affected = &m->qc_run;
  REQUIRE(affected != nullptr);
  CHECK(affected->status == qc::status_reanalysis_westgard);
  REQUIRE(affected->patient_results.size() == 2);
  CHECK(affected->patient_results[0].sample_id == "P11a");
  CHECK(affected->patient_results[1].sample_id == "P11b");

  SECTION("excluding the day-12 level-1 control clears the reject and stops after 8 unchanged runs") {
    // The chart as the tracker judged it, then re-evaluated with the exclusion (westgard.hpp).
    std::vector<qc::chart_point> pts;
    std::vector<qc::chart_result> before;
    for (const auto& [key, points] : tracker.charts())
      for (const auto& p : points) {
        pts.push_back({p.c.t, p.c.series.level, p.v.z, false});
        before.push_back({p.v.eval, 0});
      }
    REQUIRE(pts.size() == 58);
    std::size_t excluded = 0;
    for (std::size_t i = 0; i < pts.size(); ++i)
      if (pts[i].observed_at == at("2026-11-12T08:00:00") && pts[i].level == "1") excluded = i;
    pts[excluded].excluded = true;
    const auto r = qc::reevaluate(pts, before, at("2026-11-12T08:00:00"), {}, 8);
    // Day 12 (level 2 alone at +2.2 SD: a warning, no longer 2-2s) changed, then 8 unchanged days.
    CHECK(r.results[excluded + 1].eval.result == qc::outcome::warning);
    CHECK(r.runs_changed == 1);
    CHECK(r.runs_reevaluated == 9);
    CHECK(r.stopped_early);
  }

  SECTION("a late day-5 control marks the runs after it may be affected") {
    const auto late = run({control(5, "1", 101), control(5, "2", 201)});
    const auto* m = find_message(late, endpoint::qc_runs);
    REQUIRE(m != nullptr);
    CHECK(m->qc_run.status == qc::status_may_be_affected);
    // The patient runs from day 5 on (day 5 had none: its QC event was missing, so they were missed).
    CHECK(m->qc_run.patient_results.size() == 2 * 25);
    CHECK(m->qc_run.patient_results.front().sample_id == "P6a");
  }
}

TEST_CASE("qc state: the tracker's charts written and read back judge the next result alike") {
  qc::qc_config cfg;
  cfg.configured = {{{"GLU", "", "", "1"}, 100, 5, ""}};
  qc::qc_tracker a(cfg);
  qc::control_result c{"chem", {"GLU", "M", "L", "1"}, 111.5, "mg/dL", "2026-11-01T08:00:00+01:00",
                       at("2026-11-01T08:00:00"), "id-1", std::nullopt, std::nullopt};
  CHECK(a.add(c).eval.result == qc::outcome::warning);
  qc::qc_tracker b(cfg);
  qc::restore(b, nlohmann::json::parse(qc::to_json(a).dump()));
  c.t = at("2026-11-02T08:00:00");
  c.observed_at = "2026-11-02T08:00:00+01:00";
  c.result_id = "id-2";
  const auto v = b.add(c);
  CHECK(v.eval.result == qc::outcome::reject);  // 2-2s: the restored history holds day 1
  CHECK(b.chart_state().begin()->second.results.size() == 2);
}
