// Reflex rules (issue #14 point 6, seed 003: additional tests ordered automatically from the
// result of an initial test): action "reflex" with add_tests, e.g. TSH > 4.5 -> add FT4. Posted to
// /interfacing/reflex {lab_report_id, sample_id, trigger:{parameter, value, rule}, add_parameters},
// once per sample and rule; the rules file's own test cases cover it.

#include <catch2/catch.hpp>

#include "rerun/rerun_json.hpp"
#include "rerun_fixture.hpp"

using namespace interfaced;
using namespace interfaced::rerun;
using namespace interfaced::rerun::test;

namespace {

const char* reflex_rules = R"({"rules": [
  {"id": "tsh-high", "parameters": ["TSH"], "condition": "value > 4.5", "action": "reflex", "add_tests": ["FT4"],
   "tests": [{"name": "high TSH orders FT4", "given": {"value": 6.2}, "expect": {"fired": true}},
             {"name": "4.5 exactly does not", "given": {"value": 4.5}, "expect": {"fired": false}}]}]})";

}  // namespace

TEST_CASE("reflex: TSH > 4.5 adds FT4, posted once per sample and rule") {
  rules_file f = load_rules_file(reflex_rules, "reflex.json");
  REQUIRE(f.errors.empty());
  REQUIRE(f.rules.rules().size() == 1);
  CHECK(f.rules.rules()[0].action == rule_action::reflex);
  CHECK(f.rules.rules()[0].add_tests == std::vector<std::string>{"FT4"});
  world w;
  w.rules = f.rules;
  w.state.waiting_lists["imm"] = {entry("S1", "REP-1", 0, {"TSH"})};
  auto out = w.run("imm", {make_result("S1", "TSH", "6.2")});
  const auto* m = find_message(out, endpoint::reflex);
  REQUIRE(m != nullptr);
  const auto body = body_json(*m);
  CHECK(body == nlohmann::json({{"lab_report_id", "REP-1"},
                                {"sample_id", "S1"},
                                {"trigger", {{"parameter", "TSH"}, {"value", "6.2"}, {"rule", "tsh-high"}}},
                                {"add_parameters", {"FT4"}}}));
  const action* a = find_action(out.actions, action_kind::queue_retest_order);
  REQUIRE(a != nullptr);
  CHECK(a->parameters == std::vector<std::string>{"FT4"});
  // No automatic rerun request: a reflex is not a rerun.
  CHECK(find_message(out, endpoint::rerun_request) == nullptr);
  // The same sample again (another TSH value, as a rerun would bring): not ordered twice.
  w.now += std::chrono::minutes(30);
  auto again = w.run("imm", {make_result("S1", "TSH", "7.0", "20240301103000")});
  CHECK(find_message(again, endpoint::reflex) == nullptr);
  // Another sample: its own reflex.
  auto other = w.run("imm", {make_result("S2", "TSH", "5.0")});
  CHECK(count_messages(other, endpoint::reflex) == 1);
  // Not above 4.5: nothing.
  auto normal = w.run("imm", {make_result("S3", "TSH", "4.5")});
  CHECK(find_message(normal, endpoint::reflex) == nullptr);
}

TEST_CASE("reflex: the rules file's test cases run, add_tests is required and belongs to reflex") {
  rules_file f = load_rules_file(reflex_rules, "reflex.json");
  REQUIRE(f.errors.empty());
  CHECK(f.tests.size() == 2);
  const auto report = run_rule_tests(f);
  CHECK(report.run == 2);
  CHECK(report.passed());
  CHECK_FALSE(load_rules_file(R"({"rules":[{"id":"r","condition":"value > 1","action":"reflex"}]})", "x").errors.empty());
  CHECK_FALSE(
      load_rules_file(R"({"rules":[{"id":"r","condition":"value > 1","add_tests":["FT4"]}]})", "x").errors.empty());
  const auto hs = load_rules_file(R"({"rules":[{"id":"r","condition":"value > 1","handles_skip":true}]})", "x");
  REQUIRE(hs.errors.empty());
  CHECK(hs.rules.rules()[0].handles_skip);
}
