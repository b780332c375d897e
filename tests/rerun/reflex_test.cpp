// Reflex rules (issue #14 point 6, seed 003: additional tests ordered automatically from the
// result of an initial test): action "reflex" with add_tests, e.g. TSH > 4.5 -> add FT4. Posted to
// /interfacing/reflex {lab_report_id, sample_id, trigger:{parameter, value, rule}, add_parameters},
// once per sample and rule; the rules file's own test cases cover it.

#include <catch2/catch.hpp>

#include "rerun/host_query.hpp"
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

TEST_CASE("reflex: TSH > 4.5 adds FT4 posted once per sample and rule") {
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

TEST_CASE("reflex: the rules file test cases run and add_tests is required and belongs to reflex") {
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

namespace {

std::string same_code(const std::string& name) { return name; }

query ask_for(std::string sample) {
  query q;
  q.sample_ids = {std::move(sample)};
  return q;
}

}  // namespace

TEST_CASE("reflex: the added tests are pending for the analyser until their result arrives") {
  rules_file f = load_rules_file(reflex_rules, "reflex.json");
  REQUIRE(f.errors.empty());
  world w;
  w.rules = f.rules;
  w.state.waiting_lists["imm"] = {entry("S1", "REP-1", 0, {"TSH"})};
  w.state.waiting_lists["imm"][0].patient = {"PAT-1", "DOE^JANE", "F", "19800101"};
  // Before: TSH pending, a new specimen (N).
  auto before = answer_astm_queries(w.state, w.history, "imm", {ask_for("S1")}, same_code, w.now);
  REQUIRE(before.messages.size() == 1);
  CHECK(before.messages[0].find("O|1|S1||^^^TSH|R||||||N|") != std::string::npos);

  (void)w.run("imm", {make_result("S1", "TSH", "6.2")});
  // The next host query for S1 orders FT4, added to the known specimen (O.12 A), with its patient.
  auto q = answer_astm_queries(w.state, w.history, "imm", {ask_for("S1")}, same_code, w.now);
  INFO(q.messages[0]);
  CHECK(q.messages[0].find("P|1|PAT-1") != std::string::npos);
  CHECK(q.messages[0].find("O|1|S1||^^^FT4|R||||||A|") != std::string::npos);
  CHECK(q.log[0].find("S1 reflex: FT4") != std::string::npos);
  // Durable like rerun orders: the state round-trips through its JSON with the reflex order.
  const rerun_state loaded = rerun_state_from_json(to_json(w.state));
  CHECK(loaded == w.state);
  REQUIRE(loaded.reflex_orders.at("imm").size() == 1);
  CHECK(loaded.reflex_orders.at("imm")[0].tests == std::vector<std::string>{"FT4"});

  // Order download: FT4 as tests added to the specimen, once.
  download_state sent;
  auto plan = plan_device_downloads(w.state, w.history, "imm", sent, same_code, w.now);
  REQUIRE(plan.size() == 1);
  CHECK(plan[0].action == download_action::add_tests);
  CHECK(plan[0].parameters == std::vector<std::string>{"FT4"});
  CHECK(plan_device_downloads(w.state, w.history, "imm", sent, same_code, w.now).empty());

  // Another device does not get S1's reflex.
  CHECK(answer_astm_queries(w.state, w.history, "chem", {ask_for("S1")}, same_code, w.now).messages[0].find("FT4") ==
        std::string::npos);

  // FT4 arrives: nothing pending any more, the reflex order is done, and the download is not cancelled.
  w.now += std::chrono::minutes(10);
  (void)w.run("imm", {make_result("S1", "FT4", "9.1", "20240301101500")});
  CHECK(w.state.reflex_orders.empty());
  auto after = answer_astm_queries(w.state, w.history, "imm", {ask_for("S1")}, same_code, w.now);
  CHECK(after.messages[0].find("FT4") == std::string::npos);
  CHECK(plan_device_downloads(w.state, w.history, "imm", sent, same_code, w.now).empty());
}

TEST_CASE("reflex: a sample no waiting list names still gets its added tests and they are pruned after a day") {
  rules_file f = load_rules_file(reflex_rules, "reflex.json");
  REQUIRE(f.errors.empty());
  world w;
  w.rules = f.rules;
  (void)w.run("imm", {make_result("U9", "TSH", "8.0")});
  auto q = answer_astm_queries(w.state, w.history, "imm", {ask_for("U9")}, same_code, w.now);
  CHECK(q.messages[0].find("O|1|U9||^^^FT4|") != std::string::npos);
  const auto* e = order_entry(w.state, "imm", "U9");
  REQUIRE(e != nullptr);
  CHECK(e->lab_report_id.empty());
  CHECK(rerun_state_from_json(to_json(w.state)) == w.state);
  // Pruned with the received reruns (and the rule's once-per-sample count with it).
  CHECK(prune_state(w.state, w.now + std::chrono::hours(25)) == 2);
  CHECK(w.state.reflex_orders.empty());
}

TEST_CASE("reflex: an FT4 received before the rule fired does not fulfil the added test") {
  rules_file f = load_rules_file(reflex_rules, "reflex.json");
  REQUIRE(f.errors.empty());
  world w;
  w.rules = f.rules;
  (void)w.run("imm", {make_result("S7", "FT4", "9.0", "20240301090000")});
  w.now += std::chrono::minutes(5);
  (void)w.run("imm", {make_result("S7", "TSH", "5.0")});
  auto q = answer_astm_queries(w.state, w.history, "imm", {ask_for("S7")}, same_code, w.now);
  CHECK(q.messages[0].find("O|1|S7||^^^FT4|") != std::string::npos);
}

TEST_CASE("reflex: an HL7 QBP^Q11 for the sample is answered OK with an OML^O33 ordering FT4") {
  rules_file f = load_rules_file(reflex_rules, "reflex.json");
  REQUIRE(f.errors.empty());
  world w;
  w.rules = f.rules;
  w.state.waiting_lists["imm"] = {entry("S1", "REP-1", 0, {"TSH"})};
  (void)w.run("imm", {make_result("S1", "TSH", "6.2")});
  const std::string qbp =
      "MSH|^~\\&|AN|LAB|LIS|HOSP|20240301100459||QBP^Q11^QBP_Q11|Q-1|P|2.5.1\r"
      "QPD|WOS^Work Order Step^IHE_LABTF|T-1|S1\r"
      "RCP|I||R\r";
  int n = 0;
  const id_source ids = [&n] { return "ID-" + std::to_string(++n); };
  const auto a = answer_hl7_query(w.state, w.history, "imm", qbp, {ask_for("S1")}, same_code, w.now, ids);
  REQUIRE(a.messages.size() == 2);
  CHECK(a.messages[0].find("QAK|T-1|OK") != std::string::npos);
  INFO(a.messages[1]);
  CHECK(a.messages[1].find("OML^O33") != std::string::npos);
  CHECK(a.messages[1].find("\rSPM|1|S1") != std::string::npos);
  CHECK(a.messages[1].find("FT4") != std::string::npos);
  CHECK(a.messages[1].find("TSH") == std::string::npos);  // TSH has its result
}
