// Westgard multirules (qc.md "The rules"): each rule at its boundary, across runs, within a run
// across levels, with excluded results in the window; the SKIP and change-detection decision
// tables row by row; re-evaluation with the 8-run stop. Expected values come from qc.md's
// definitions, worked by hand in the comments.

#include <catch2/catch.hpp>

#include <vector>

#include "rerun/westgard.hpp"

using namespace interfaced::rerun;
using namespace interfaced::rerun::qc;

namespace {

rule_set only(std::initializer_list<rule> rs, bool gate = false) {
  rule_set s;
  for (rule r : rs) s.rules |= bit(r);
  s.gate_on_1_2s = gate;
  return s;
}

bool fired(const evaluation& e, rule r) { return (e.fired & bit(r)) != 0; }

evaluation eval(double z, std::vector<double> h = {}, std::vector<double> ev = {},
                rule_set rs = rule_set::defaults()) {
  return evaluate(z, h, ev, rs);
}

timestamp day(int d, int hour = 8) {
  return timestamp{std::chrono::sys_days{std::chrono::year{2026} / 11 / 1}} + std::chrono::days{d - 1} +
         std::chrono::hours{hour};
}

}  // namespace

TEST_CASE("westgard 1-2s: exactly 2.0 SD does not fire, just beyond is a warning") {
  // mean 100, sd 5: 110 is z = 2.0 exactly.
  const auto z = z_score(110.0, 100.0, 5.0);
  REQUIRE(z);
  CHECK(*z == 2.0);
  const evaluation at = eval(*z);
  CHECK(at.result == outcome::accept);
  CHECK_FALSE(fired(at, rule::r1_2s));
  const evaluation beyond = eval(2.01);
  CHECK(beyond.result == outcome::warning);
  CHECK(fired(beyond, rule::r1_2s));
  CHECK(eval(-2.01).result == outcome::warning);
}

TEST_CASE("westgard 1-3s: exactly 3.0 SD is a warning, beyond rejects") {
  const evaluation at = eval(3.0);
  CHECK(at.result == outcome::warning);
  CHECK_FALSE(fired(at, rule::r1_3s));
  const evaluation beyond = eval(-3.01);
  CHECK(beyond.result == outcome::reject);
  CHECK(fired(beyond, rule::r1_3s));
  CHECK(fired(beyond, rule::r1_2s));
}

TEST_CASE("westgard 2-2s across runs: the previous result of the series on the same side") {
  CHECK(fired(eval(2.5, {0.1, 2.2}), rule::r2_2s));
  CHECK(eval(2.5, {0.1, 2.2}).result == outcome::reject);
  // Opposite sides is not 2-2s; exactly 2.0 before is not beyond.
  CHECK_FALSE(fired(eval(2.5, {-2.2}), rule::r2_2s));
  CHECK_FALSE(fired(eval(2.5, {2.0}), rule::r2_2s));
  // Only the previous one counts, not one further back.
  CHECK_FALSE(fired(eval(2.5, {2.2, 0.0}), rule::r2_2s));
  CHECK(fired(eval(-2.5, {-2.1}), rule::r2_2s));
}

TEST_CASE("westgard 2-2s within run across levels: another level of the same QC event") {
  const evaluation e = eval(2.3, {}, {2.4});
  CHECK(fired(e, rule::r2_2s));
  CHECK(e.result == outcome::reject);
  CHECK_FALSE(fired(eval(2.3, {}, {1.9}), rule::r2_2s));
}

TEST_CASE("westgard R-4s: within one QC event, one level above +2 and another below -2") {
  const evaluation e = eval(-2.1, {}, {2.1});
  CHECK(fired(e, rule::r_4s));
  CHECK(e.result == outcome::reject);
  // Exactly 2.0 on one side: not beyond.
  CHECK_FALSE(fired(eval(-2.1, {}, {2.0}), rule::r_4s));
  // Across runs it is not R-4s (qc.md: within one QC event).
  CHECK_FALSE(fired(eval(-2.1, {2.5}, {}), rule::r_4s));
}

TEST_CASE("westgard 4-1s needs 4: three beyond 1 SD never fire, the fourth does") {
  CHECK_FALSE(fired(eval(1.5, {1.2, 1.3}), rule::r4_1s));        // 3 results: window not full
  CHECK(fired(eval(1.5, {1.2, 1.3, 1.1}), rule::r4_1s));         // 4 results all > 1
  CHECK(eval(1.5, {1.2, 1.3, 1.1}).result == outcome::reject);
  CHECK_FALSE(fired(eval(1.5, {1.2, 1.0, 1.1}), rule::r4_1s));   // exactly 1.0 is not beyond
  CHECK(fired(eval(-1.5, {0.0, -1.2, -1.3, -1.1}), rule::r4_1s)); // the last 4 only
  CHECK_FALSE(fired(eval(-1.5, {-1.2, 1.3, -1.1}), rule::r4_1s));
  // Across the levels of one event (four levels, in time order).
  CHECK(fired(eval(1.4, {}, {1.1, 1.2, 1.3}), rule::r4_1s));
}

TEST_CASE("westgard 10-x needs 10: nine on one side never fire, the tenth does") {
  const std::vector<double> eight(8, 0.4);
  CHECK_FALSE(fired(eval(0.3, eight), rule::r10_x));  // 9 results
  std::vector<double> nine(9, 0.4);
  CHECK(fired(eval(0.3, nine), rule::r10_x));
  CHECK(eval(0.3, nine).result == outcome::reject);
  nine[0] = -0.1;
  CHECK_FALSE(fired(eval(0.3, nine), rule::r10_x));
  nine[0] = 0.0;  // on the mean is on neither side
  CHECK_FALSE(fired(eval(0.3, nine), rule::r10_x));
  CHECK(fired(eval(-0.3, std::vector<double>(9, -0.2)), rule::r10_x));
}

TEST_CASE("westgard three-level rules: 2of3-2s, 3-1s, 8-x, 9-x, 12-x at their windows") {
  const rule_set rs = only({rule::r2of3_2s, rule::r3_1s, rule::r8_x, rule::r9_x, rule::r12_x});
  CHECK(fired(evaluate(2.2, std::vector<double>{2.1, 0.0}, {}, rs), rule::r2of3_2s));
  CHECK_FALSE(fired(evaluate(2.2, std::vector<double>{2.1}, {}, rs), rule::r2of3_2s));  // window 3
  CHECK(fired(evaluate(2.2, std::vector<double>{}, std::vector<double>{0.0, 2.5}, rs), rule::r2of3_2s));
  CHECK(fired(evaluate(1.2, std::vector<double>{1.1, 1.3}, {}, rs), rule::r3_1s));
  CHECK_FALSE(fired(evaluate(1.2, std::vector<double>{1.3}, {}, rs), rule::r3_1s));
  CHECK(fired(evaluate(0.1, std::vector<double>(7, 0.2), {}, rs), rule::r8_x));
  CHECK_FALSE(fired(evaluate(0.1, std::vector<double>(7, 0.2), {}, rs), rule::r9_x));
  CHECK(fired(evaluate(0.1, std::vector<double>(8, 0.2), {}, rs), rule::r9_x));
  CHECK_FALSE(fired(evaluate(0.1, std::vector<double>(10, 0.2), {}, rs), rule::r12_x));
  CHECK(fired(evaluate(0.1, std::vector<double>(11, 0.2), {}, rs), rule::r12_x));
}

TEST_CASE("westgard rule set per parameter: a rule not in the set never fires") {
  const rule_set rs = only({rule::r1_3s});
  const evaluation e = evaluate(2.5, std::vector<double>{2.5}, {}, rs);
  CHECK(e.fired == 0);
  CHECK(e.result == outcome::accept);
}

TEST_CASE("westgard gate_on_1_2s: other rules looked at only after a 1-2s warning") {
  rule_set gated = rule_set::defaults();
  gated.gate_on_1_2s = true;
  // 4-1s would fire, but |z| = 1.5 raises no 1-2s warning: the gate accepts.
  CHECK(evaluate(1.5, std::vector<double>{1.2, 1.3, 1.1}, {}, gated).result == outcome::accept);
  CHECK(evaluate(1.5, std::vector<double>{1.2, 1.3, 1.1}, {}, rule_set::defaults()).result == outcome::reject);
  // Past the gate the other rules are evaluated.
  CHECK(fired(evaluate(2.5, std::vector<double>{2.5}, {}, gated), rule::r2_2s));
}

TEST_CASE("westgard no_limits: no sd or no number is never a silent pass") {
  CHECK_FALSE(z_score(std::nullopt, 100, 5));
  CHECK_FALSE(z_score(101.0, 100, 0));
  std::vector<chart_point> pts{{day(1), "L1", std::nullopt}};
  const auto r = evaluate_chart(pts, {});
  CHECK(r[0].eval.result == outcome::no_limits);
  CHECK(worst(outcome::accept, outcome::no_limits) == outcome::no_limits);
  CHECK(worst(outcome::no_limits, outcome::reject) == outcome::reject);
}

TEST_CASE("westgard chart: ordered by observed_at, not by input order") {
  // Sent late: day 2 arrives after day 3. By observed_at day 2 (2.5) precedes day 3 (2.4): 2-2s
  // fires on day 3; by arrival it would fire on day 2.
  std::vector<chart_point> pts{{day(1), "L1", 0.0}, {day(3), "L1", 2.4}, {day(2), "L1", 2.5}};
  const auto r = evaluate_chart(pts, {});
  CHECK(r[2].eval.result == outcome::warning);
  CHECK(fired(r[1].eval, rule::r2_2s));
}

TEST_CASE("westgard chart: an excluded result leaves the window") {
  // Day 2 (2.5) is excluded: day 3 (2.4) then follows day 1 (0.0) and 2-2s does not fire.
  std::vector<chart_point> pts{{day(1), "L1", 0.0}, {day(2), "L1", 2.5, true}, {day(3), "L1", 2.4}};
  CHECK_FALSE(fired(evaluate_chart(pts, {})[2].eval, rule::r2_2s));
  pts[1].excluded = false;
  CHECK(fired(evaluate_chart(pts, {})[2].eval, rule::r2_2s));
  // 10-x with an excluded opposite-side result inside the window: 10 results on one side remain.
  std::vector<chart_point> ten;
  for (int d = 1; d <= 11; ++d) ten.push_back({day(d), "L1", d == 5 ? -0.5 : 0.5, d == 5});
  CHECK(fired(evaluate_chart(ten, {})[10].eval, rule::r10_x));
  ten[4].excluded = false;
  CHECK_FALSE(fired(evaluate_chart(ten, {})[10].eval, rule::r10_x));
}

TEST_CASE("westgard chart: one QC event is the levels within event_window_s, R-4s within it only") {
  std::vector<chart_point> pts{{day(1, 8), "L1", 2.2}, {day(1, 8) + std::chrono::minutes{5}, "L2", -2.3}};
  const auto r = evaluate_chart(pts, {});
  CHECK(fired(r[1].eval, rule::r_4s));
  CHECK(r[0].event == r[1].event);
  chart_options narrow;
  narrow.event_window_s = 60;
  const auto r2 = evaluate_chart(pts, narrow);
  CHECK_FALSE(fired(r2[1].eval, rule::r_4s));
  CHECK(r2[0].event != r2[1].event);
}

// --- SKIP decision table (qc.md 5.2.1), one test per row -------------------------------------

TEST_CASE("skip table row 1: SKIP, initial evaluation, no handles_skip rule ran -> SKIP") {
  CHECK(decide_skip(true, false, false) == skip_decision::skip);
}
TEST_CASE("skip table row 2: SKIP, initial evaluation, a handles_skip rule ran -> EXECUTE") {
  CHECK(decide_skip(true, false, true) == skip_decision::execute);
}
TEST_CASE("skip table row 3: SKIP, re-evaluation, handles_skip any -> EXECUTE") {
  CHECK(decide_skip(true, true, false) == skip_decision::execute);
  CHECK(decide_skip(true, true, true) == skip_decision::execute);
}
TEST_CASE("skip table row 4: no SKIP, any re-evaluation, any handles_skip -> EXECUTE") {
  for (bool re : {false, true})
    for (bool ran : {false, true}) CHECK(decide_skip(false, re, ran) == skip_decision::execute);
}
TEST_CASE("skip: a SKIP control bypasses Westgard at initial evaluation, not at re-evaluation") {
  std::vector<chart_point> pts{{day(1), "L1", 3.5, false, true}};
  CHECK(evaluate_chart(pts, {})[0].eval.result == outcome::accept);
  chart_options re;
  re.reevaluation = true;
  CHECK(evaluate_chart(pts, re)[0].eval.result == outcome::reject);
}

// --- change detection table (qc.md "Re-evaluation and propagation"), one test per row ---------

TEST_CASE("change table row 1: original 2-2s, analysed R-4s -> MARK (error changed)") {
  CHECK(detect_change(bit(rule::r2_2s), bit(rule::r_4s), false) == change::error_changed);
  CHECK(detect_change(bit(rule::r2_2s), bit(rule::r_4s), true) == change::error_changed);
}
TEST_CASE("change table row 2: original 1-3s, analysed none -> MARK (error cleared)") {
  CHECK(detect_change(bit(rule::r1_3s), 0, false) == change::error_cleared);
  CHECK(detect_change(bit(rule::r1_3s), 0, true) == change::error_cleared);
}
TEST_CASE("change table row 3: original none, analysed 1-3s -> MARK (new error)") {
  CHECK(detect_change(0, bit(rule::r1_3s), false) == change::new_error);
  CHECK(detect_change(0, bit(rule::r1_3s), true) == change::new_error);
}
TEST_CASE("change table row 4: 1-3s and 1-3s, not missed -> NO CHANGE") {
  CHECK(detect_change(bit(rule::r1_3s), bit(rule::r1_3s), false) == change::no_change);
}
TEST_CASE("change table row 5: 1-3s and 1-3s, WESTGARDS_MISSED -> MARK (missed Westgard)") {
  CHECK(detect_change(bit(rule::r1_3s), bit(rule::r1_3s), true) == change::missed_westgard);
}
TEST_CASE("change table row 6: none and none, not missed -> NO CHANGE") {
  CHECK(detect_change(0, 0, false) == change::no_change);
}
TEST_CASE("change table row 7: none and none, WESTGARDS_MISSED -> MARK (missed Westgard)") {
  CHECK(detect_change(0, 0, true) == change::missed_westgard);
}
TEST_CASE("change table: a 1-2s warning that appears or clears is a change") {
  CHECK(detect_change(0, bit(rule::r1_2s), false) == change::new_error);
  CHECK(detect_change(bit(rule::r1_2s), 0, false) == change::error_cleared);
}

// --- re-evaluation ------------------------------------------------------------------------------

TEST_CASE("reevaluate: excluding a 2-2s control clears the next run and stops after 8 unchanged") {
  // Day 11 +2.5, day 12 +2.4 (2-2s on day 12), then 20 quiet days. Excluding day 11 clears day 12.
  std::vector<chart_point> pts;
  for (int d = 1; d <= 32; ++d) pts.push_back({day(d), "L1", d == 11 ? 2.5 : d == 12 ? 2.4 : (d % 2 ? 0.3 : -0.3)});
  chart_options opt;
  const auto before = evaluate_chart(pts, opt);
  REQUIRE(before[11].eval.result == outcome::reject);
  REQUIRE(before[10].eval.result == outcome::warning);
  pts[10].excluded = true;
  const auto r = reevaluate(pts, before, day(11), opt, 8);
  CHECK(r.results[11].eval.result == outcome::warning);  // 1-2s alone
  // Day 11 (excluded: its 1-2s withdrawn, a change), day 12 changed, then 8 unchanged.
  CHECK(r.runs_changed == 2);
  CHECK(r.runs_reevaluated == 10);
  CHECK(r.stopped_early);
  const auto all = reevaluate(pts, before, day(11), opt, 0);
  CHECK(all.runs_reevaluated == 22);
  CHECK_FALSE(all.stopped_early);
}

TEST_CASE("reevaluate: the counter of unchanged runs resets at every MARK") {
  std::vector<chart_point> pts;
  for (int d = 1; d <= 30; ++d) pts.push_back({day(d), "L1", (d % 2 ? 0.3 : -0.3)});
  const auto before = evaluate_chart(pts, {});
  bool flags[30] = {};
  flags[5] = true;  // event 5: WESTGARDS_MISSED -> MARK
  flags[12] = true;
  const auto r = reevaluate(pts, before, day(1), {}, 8, std::span<const bool>(flags, 30));
  // 0..4 unchanged, 5 MARK, 6..11 unchanged (6), 12 MARK, 13..20 unchanged -> stop after 20.
  CHECK(r.runs_changed == 2);
  CHECK(r.runs_reevaluated == 21);
}
