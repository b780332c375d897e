// qc.md 5.2.1 (SKIP) for the rules engine: a patient result resolved with the SKIP code bypasses
// auto-rerun and reflex rules at its initial evaluation, not at a re-evaluation; a rule declaring
// handles_skip applies the SKIP outcome and, once it has run, the later rules run. One named test
// per row of the decision table, on the rules as a rules file declares them, then the wiring: a
// SKIP resolution held by the QC tracker (as the QC API makes it) reaches process_reports_for_rerun.

#include <catch2/catch.hpp>

#include "rerun/qc.hpp"
#include "rerun/rerun_json.hpp"
#include "rerun_fixture.hpp"

using namespace interfaced;
using namespace interfaced::rerun;
using namespace interfaced::rerun::test;

namespace {

// GLU > 20 asks for an automatic rerun; "skip-handler" (declared handles_skip) comes first or
// not at all.
rule_set load(bool with_handler) {
  const std::string handler =
      R"({"id": "skip-handler", "parameters": ["GLU"], "condition": "value > 1000", "handles_skip": true},)";
  const std::string text = std::string(R"({"rules": [)") + (with_handler ? handler : "") +
                           R"({"id": "glu-high", "parameters": ["GLU"], "condition": "value > 20"}]})";
  rules_file f = load_rules_file(text, "skip.json");
  REQUIRE(f.errors.empty());
  return f.rules;
}

rules_verdict run(const rule_set& rules, skip_context c) {
  const result r = make_result("S1", "GLU", "25");
  const bindings b = bind_result(r, "GLU", std::nullopt, nullptr, at("2024-03-01T10:05:00"));
  return evaluate_rules(rules, "GLU", b, 0, 0, true, c);
}

rule_outcome outcome_of(const rules_verdict& v, const std::string& id) {
  for (const auto& t : v.trace)
    if (t.rule_id == id) return t.outcome;
  FAIL("no trace for rule " << id);
  return rule_outcome::not_fired;
}

}  // namespace

TEST_CASE("rules SKIP row 1: SKIP at the initial evaluation before any handles_skip rule ran: the rule is bypassed") {
  const rule_set rules = load(false);
  const auto v = run(rules, {true, false});
  CHECK(v.fired == nullptr);
  CHECK(outcome_of(v, "glu-high") == rule_outcome::skipped_resolution);
}

TEST_CASE("rules SKIP row 2: SKIP at the initial evaluation after a handles_skip rule ran: the later rules execute") {
  const auto rules = load(true);
  const auto d = skip_decisions(rules, "GLU", {true, false});
  REQUIRE(d.size() == 2);
  CHECK(d[0] == qc::skip_decision::execute);  // the handler itself applies the SKIP outcome
  CHECK(d[1] == qc::skip_decision::execute);
  const auto v = run(rules, {true, false});
  REQUIRE(v.fired != nullptr);
  CHECK(v.fired->id == "glu-high");
  CHECK(outcome_of(v, "skip-handler") == rule_outcome::not_fired);
  // A handler that comes after a rule does not reach back: the earlier rule stays bypassed.
  rules_file later = load_rules_file(
      R"({"rules": [{"id": "glu-high", "parameters": ["GLU"], "condition": "value > 20"},
                    {"id": "skip-handler", "parameters": ["GLU"], "condition": "value > 1000", "handles_skip": true}]})",
      "skip.json");
  REQUIRE(later.errors.empty());
  const auto dl = skip_decisions(later.rules, "GLU", {true, false});
  CHECK(dl[0] == qc::skip_decision::skip);
  CHECK(dl[1] == qc::skip_decision::execute);
  // A handler of another parameter does not count for GLU.
  rules_file other = load_rules_file(
      R"({"rules": [{"id": "na-handler", "parameters": ["NA"], "condition": "value > 1000", "handles_skip": true},
                    {"id": "glu-high", "parameters": ["GLU"], "condition": "value > 20"}]})",
      "skip.json");
  REQUIRE(other.errors.empty());
  CHECK(skip_decisions(other.rules, "GLU", {true, false})[1] == qc::skip_decision::skip);
}

TEST_CASE("rules SKIP row 3: SKIP at a re-evaluation: the rules execute whether a handler ran or not") {
  for (bool with_handler : {false, true}) {
    const rule_set rules = load(with_handler);  // v.fired points into it
    const auto v = run(rules, {true, true});
    REQUIRE(v.fired != nullptr);
    CHECK(v.fired->id == "glu-high");
  }
}

TEST_CASE("rules SKIP row 4: no SKIP: the rules execute") {
  for (bool reevaluation : {false, true})
    for (bool with_handler : {false, true}) {
      const rule_set rules = load(with_handler);
      const auto v = run(rules, {false, reevaluation});
      REQUIRE(v.fired != nullptr);
      CHECK(v.fired->id == "glu-high");
    }
}

TEST_CASE("rules SKIP: a SKIP resolution of a patient result held by the QC tracker bypasses auto-rerun and reflex") {
  rules_file f = load_rules_file(
      R"({"rules": [{"id": "glu-high", "parameters": ["GLU"], "condition": "value > 20"},
                    {"id": "tsh-high", "parameters": ["TSH"], "condition": "value > 4.5", "action": "reflex", "add_tests": ["FT4"]}]})",
      "skip.json");
  REQUIRE(f.errors.empty());
  qc::qc_config cfg;
  cfg.resolution_codes = {{"SKIP", false, true, false}};
  qc::qc_tracker tracker(cfg);
  world w;
  w.rules = f.rules;
  w.state.waiting_lists["chem"] = {entry("S1", "R-1", 0, {"GLU", "TSH"}), entry("S2", "R-2", 0, {"GLU", "TSH"})};
  // What qc_admin does for POST /api/qc/resolve {"result_id": "patient:chem|S1|GLU", "code": "SKIP"}.
  tracker.set_resolution(patient_result_id("chem", "S1", "GLU"), {false, true});
  tracker.set_resolution(patient_result_id("chem", "S1", "TSH"), {false, true});
  auto run_with_qc = [&](std::vector<result> results) {
    batch b{"chem", "b", std::move(results), {}};
    rerun_inputs in{w.codes, w.rules, w.history, w.state, w.now, true, w.zone, {}, &tracker};
    return process_reports_for_rerun(b, in);
  };
  const auto skipped = run_with_qc({make_result("S1", "GLU", "25"), make_result("S1", "TSH", "6.0")});
  CHECK(find_message(skipped, endpoint::rerun_request) == nullptr);
  CHECK(find_message(skipped, endpoint::reflex) == nullptr);
  CHECK(w.state.reflex_orders.empty());
  // Forwarded all the same: SKIP bypasses rules, not delivery.
  REQUIRE(find_message(skipped, endpoint::results) != nullptr);
  CHECK(find_message(skipped, endpoint::results)->results.results.size() == 2);
  REQUIRE(skipped.explain.size() == 2);
  CHECK(skipped.explain[0].rules.at(0).outcome == rule_outcome::skipped_resolution);
  // The same values for a sample without the resolution: the rules fire.
  const auto other = run_with_qc({make_result("S2", "GLU", "25"), make_result("S2", "TSH", "6.0")});
  CHECK(count_messages(other, endpoint::rerun_request) == 1);
  CHECK(count_messages(other, endpoint::reflex) == 1);
}
