// process_reports_for_rerun and the waiting-list refresh (rerun.md "process_reports_for_rerun",
// "Manual reruns and the waiting list", "Auto-rerun").
#include <catch2/catch.hpp>

#include "rerun_fixture.hpp"

namespace interfaced::rerun {
using namespace test;

TEST_CASE("two results for the same (S,P) in one batch: the second is seen", "[process]") {
  world w;
  (void)w.refresh("xn", {entry("S1", "R1", 0, {"HGB"})});
  auto o = w.run("xn", {make_result("S1", "HGB", "13.1", "20240301100000"),
                        make_result("S1", "HGB", "13.2", "20240301100100")});
  CHECK(o.tags[0].row == qualify_row::first_result);
  CHECK(o.tags[1].row == qualify_row::seen_no_rerun);
  // Routed: the first to results, the second to rerun values (machine triggered).
  REQUIRE(o.messages.size() == 2);
  CHECK(o.messages[0].kind == endpoint::results);
  CHECK(o.messages[1].kind == endpoint::rerun_values);
  CHECK(o.messages[1].rerun_values.machine_triggered_rerun);
}

TEST_CASE("duplicate delivery is never a rerun and is not forwarded twice", "[process]") {
  world w;
  (void)w.refresh("xn", {entry("S1", "R1", 0, {"HGB"})});
  batch kept;
  (void)w.run("xn", {make_result("S1", "HGB", "13.1", "20240301100000")});
  auto o = w.run("xn", {make_result("S1", "HGB", "13.1", "20240301100000")}, &kept);
  CHECK(o.tags[0].duplicate);
  CHECK(kept.results[0].duplicate);
  CHECK_FALSE(kept.results[0].is_rerun);
  CHECK(o.counts.duplicates == 1);
  CHECK(o.counts.forwarded == 0);
  CHECK(o.messages.empty());
  // Same value, new observation time: a new measurement, so an instrument-triggered rerun.
  auto o2 = w.run("xn", {make_result("S1", "HGB", "13.1", "20240301103000")});
  CHECK_FALSE(o2.tags[0].duplicate);
  CHECK(o2.tags[0].row == qualify_row::seen_no_rerun);
  // A duplicate inside one batch is caught too.
  auto o3 = w.run("xn", {make_result("S2", "HGB", "9.0"), make_result("S2", "HGB", "9.0")});
  CHECK_FALSE(o3.tags[0].duplicate);
  CHECK(o3.tags[1].duplicate);
  REQUIRE(o3.messages.size() == 1);
  CHECK(o3.messages[0].results.results.size() == 1);
}

TEST_CASE("a requested duplicate does not fulfil twice", "[process]") {
  world w;
  (void)w.refresh("xn", {entry("S1", "R1", 1, {"HGB", "PLT"}, {"HGB", "PLT"})});
  (void)w.run("xn", {make_result("S1", "HGB", "13.1")});
  auto o = w.run("xn", {make_result("S1", "HGB", "13.1")});
  CHECK(o.tags[0].duplicate);
  CHECK(o.messages.empty());
  CHECK(w.state.reruns.at("R1").fulfilled == std::vector<std::string>{"HGB"});
}

TEST_CASE("partial fulfilment across two messages and two analysers", "[process]") {
  world w;
  // R1 asks for HGB (haematology analyser xn) and GLU (chemistry analyser c311).
  (void)w.refresh("xn", {entry("S1", "R1", 3, {"HGB", "WBC"}, {"HGB", "GLU"})});
  (void)w.refresh("c311", {entry("S1", "R1", 3, {"GLU"}, {"HGB", "GLU"})});

  auto o1 = w.run("xn", {make_result("S1", "HGB", "13.1")});
  const auto* m1 = find_message(o1, endpoint::rerun_values, "R1");
  REQUIRE(m1 != nullptr);
  CHECK(m1->rerun_values.rerun_number == 3);
  CHECK(m1->rerun_values.requested_parameters == std::vector<std::string>{"HGB", "GLU"});
  CHECK(m1->rerun_values.fulfilled_parameters == std::vector<std::string>{"HGB"});
  CHECK(m1->act == activity::rerun_values_received);
  CHECK(w.state.reruns.at("R1").status == rerun_status::requested);  // GLU missing
  CHECK(find_action(o1.actions, action_kind::rerun_received) == nullptr);
  CHECK(w.state.waiting_lists.at("xn").size() == 1);

  auto o2 = w.run("c311", {make_result("S1", "GLU", "5.4")});
  const auto* m2 = find_message(o2, endpoint::rerun_values, "R1");
  REQUIRE(m2 != nullptr);
  CHECK(m2->rerun_values.rerun_number == 3);
  CHECK(m2->rerun_values.fulfilled_parameters == std::vector<std::string>{"HGB", "GLU"});
  CHECK(w.state.reruns.at("R1").status == rerun_status::received);
  const auto* a = find_action(o2.actions, action_kind::rerun_received);
  REQUIRE(a != nullptr);
  CHECK(a->lab_report_id == "R1");
  CHECK(a->act == activity::rerun_values_received);
  // Received: the report leaves every device's waiting list.
  CHECK(w.state.waiting_lists.at("xn").empty());
  CHECK(w.state.waiting_lists.at("c311").empty());
}

TEST_CASE("a rerun fulfilled in one batch is received at once", "[process]") {
  world w;
  (void)w.refresh("xn", {entry("S1", "R1", 1, {"HGB", "WBC"}, {"HGB", "WBC"})});
  auto o = w.run("xn", {make_result("S1", "HGB", "13.1"), make_result("S1", "WBC", "6.1")});
  REQUIRE(count_messages(o, endpoint::rerun_values) == 1);  // one message per report and rerun
  const auto* m = find_message(o, endpoint::rerun_values, "R1");
  CHECK(m->rerun_values.values.size() == 2);
  CHECK(m->rerun_values.fulfilled_parameters == std::vector<std::string>{"HGB", "WBC"});
  CHECK(w.state.reruns.at("R1").status == rerun_status::received);
  CHECK(o.counts.requested_reruns == 2);
}

TEST_CASE("after a rerun was received, a result nobody asked for goes to rerun values as -1 with its report", "[process]") {
  world w;
  (void)w.refresh("xn", {entry("S1", "R1", 1, {"HGB", "PLT", "WBC"}, {"HGB"})});
  (void)w.run("xn", {make_result("S1", "HGB", "13.1", "20240301100000")});
  REQUIRE(w.state.reruns.at("R1").status == rerun_status::received);
  REQUIRE(w.state.waiting_lists["xn"].empty());  // the received report left the list

  auto o = w.run("xn", {make_result("S1", "HGB", "13.4", "20240301101500")});
  CHECK(count_messages(o, endpoint::results) == 0);
  const auto* m = find_message(o, endpoint::rerun_values, "R1");
  REQUIRE(m != nullptr);
  CHECK(m->rerun_values.rerun_number == -1);
  CHECK(m->rerun_values.machine_triggered_rerun);
  CHECK(m->rerun_values.fulfilled_parameters == std::vector<std::string>{"HGB"});
  CHECK(o.counts.instrument_triggered == 1);
  CHECK(o.counts.unmatched == 0);
  // A sample with no report known at all still goes to the results endpoint.
  (void)w.run("xn", {make_result("S9", "HGB", "10.0", "20240301100000")});
  auto u = w.run("xn", {make_result("S9", "HGB", "10.2", "20240301101500")});
  CHECK(count_messages(u, endpoint::results) == 1);
  CHECK(count_messages(u, endpoint::rerun_values) == 0);
}

TEST_CASE("rerun_number_changed records the rerun and queues a re-test order", "[process][waiting]") {
  world w;
  auto a0 = w.refresh("xn", {entry("S1", "R1", 0, {"HGB", "WBC", "PLT"})});
  CHECK(a0.empty());
  CHECK(w.state.reruns.empty());

  auto a1 = w.refresh("xn", {entry("S1", "R1", 1, {"HGB", "WBC", "PLT"}, {"HGB", "PLT"})});
  const auto* order = find_action(a1, action_kind::queue_retest_order);
  REQUIRE(order != nullptr);
  CHECK(order->device == "xn");
  CHECK(order->sample_id == "S1");
  CHECK(order->lab_report_id == "R1");
  CHECK(order->rerun_number == 1);
  CHECK(order->parameters == std::vector<std::string>{"HGB", "PLT"});  // exactly the requested
  const auto& rr = w.state.reruns.at("R1");
  CHECK(rr.number == 1);
  CHECK(rr.requested == std::vector<std::string>{"HGB", "PLT"});
  CHECK(rr.fulfilled.empty());
  CHECK(rr.status == rerun_status::requested);

  // The same list again: nothing new, no second order.
  auto a2 = w.refresh("xn", {entry("S1", "R1", 1, {"HGB", "WBC", "PLT"}, {"HGB", "PLT"})});
  CHECK(a2.empty());

  // Partly fulfilled, then the backend shows rerun 2: a new rerun, nothing fulfilled yet.
  (void)w.run("xn", {make_result("S1", "HGB", "13.1")});
  CHECK(w.state.reruns.at("R1").fulfilled.size() == 1);
  auto a3 = w.refresh("xn", {entry("S1", "R1", 2, {"HGB", "WBC", "PLT"}, {"WBC"})});
  REQUIRE(find_action(a3, action_kind::queue_retest_order) != nullptr);
  CHECK(find_action(a3, action_kind::queue_retest_order)->parameters == std::vector<std::string>{"WBC"});
  CHECK(w.state.reruns.at("R1").number == 2);
  CHECK(w.state.reruns.at("R1").fulfilled.empty());
}

TEST_CASE("cancel: the entry disappears while requested -> local state dropped", "[process][waiting]") {
  world w;
  (void)w.refresh("xn", {entry("S1", "R1", 1, {"HGB"}, {"HGB", "PLT"})});
  auto a = w.refresh("xn", {});
  const auto* closed = find_action(a, action_kind::rerun_closed);
  REQUIRE(closed != nullptr);
  CHECK(closed->act == activity::rerun_cancelled);
  CHECK(w.state.reruns.empty());
  // Returning to rerunNumber 0 means the same.
  (void)w.refresh("xn", {entry("S2", "R2", 1, {"HGB"}, {"HGB", "PLT"})});
  auto b = w.refresh("xn", {entry("S2", "R2", 0, {"HGB"})});
  REQUIRE(find_action(b, action_kind::rerun_closed) != nullptr);
  CHECK(w.state.reruns.empty());
}

TEST_CASE("confirm: a received rerun is kept while unlisted, dropped at flag 0", "[process][waiting]") {
  world w;
  (void)w.refresh("xn", {entry("S1", "R1", 1, {"HGB"}, {"HGB"})});
  (void)w.run("xn", {make_result("S1", "HGB", "13.1")});
  REQUIRE(w.state.reruns.at("R1").status == rerun_status::received);
  // Flag 4 is not on the waiting list: awaiting confirmation, not cancelled.
  auto a = w.refresh("xn", {});
  CHECK(a.empty());
  CHECK(w.state.reruns.count("R1") == 1);
  // Confirmed: the report is back at flag 0.
  auto b = w.refresh("xn", {entry("S1", "R1", 0, {"HGB"})});
  const auto* closed = find_action(b, action_kind::rerun_closed);
  REQUIRE(closed != nullptr);
  CHECK(closed->act == activity::rerun_values_confirmed);
  CHECK(w.state.reruns.empty());
}

TEST_CASE("a received rerun still listed by the backend gets no new re-test order", "[process][waiting]") {
  world w;
  (void)w.refresh("xn", {entry("S1", "R1", 1, {"HGB"}, {"HGB"})});
  (void)w.run("xn", {make_result("S1", "HGB", "13.1")});
  REQUIRE(w.state.reruns.at("R1").status == rerun_status::received);
  // The next polls may still list the report with rerunNumber 1 before the backend sets flag 4.
  for (int poll = 0; poll < 2; ++poll) {
    auto a = w.refresh("xn", {entry("S1", "R1", 1, {"HGB"}, {"HGB"})});
    CHECK(find_action(a, action_kind::queue_retest_order) == nullptr);
    CHECK(w.state.reruns.at("R1").status == rerun_status::received);
  }
  // A new rerun number is a new request: ordered again.
  auto b = w.refresh("xn", {entry("S1", "R1", 2, {"HGB"}, {"HGB"})});
  CHECK(find_action(b, action_kind::queue_retest_order) != nullptr);
}

TEST_CASE("prune forgets old received reruns and auto-rerun counts", "[process][waiting]") {
  world w;
  (void)w.refresh("xn", {entry("S1", "R1", 1, {"HGB"}, {"HGB"})});
  (void)w.run("xn", {make_result("S1", "HGB", "13.1")});
  w.state.count_auto_rerun("S5", "HGB", w.now);
  CHECK(prune_state(w.state, w.now) == 0);
  CHECK(prune_state(w.state, w.now + std::chrono::hours(25)) == 2);
  CHECK(w.state.reruns.empty());
  CHECK(w.state.auto_rerun_count("S5", "HGB") == 0);
}

TEST_CASE("instrument codes map to machine names, identity when absent", "[process]") {
  world w;
  w.codes.add("8", "HGB");
  (void)w.refresh("xn", {entry("S1", "R1", 1, {"HGB", "WBC"}, {"HGB"})});
  auto o = w.run("xn", {make_result("S1", "8", "13.1"), make_result("S1", "WBC", "6.0")});
  CHECK(o.tags[0].parameter == "HGB");
  CHECK(o.tags[0].row == qualify_row::requested_rerun);
  CHECK(o.tags[1].parameter == "WBC");
  const auto* m = find_message(o, endpoint::rerun_values, "R1");
  REQUIRE(m != nullptr);
  CHECK(m->rerun_values.values[0].parameter == "HGB");
  CHECK(m->rerun_values.values[0].instrument_code == "8");
  CHECK(w.codes.instrument_code("HGB") == "8");
  CHECK(w.codes.machine_name("PLT") == "PLT");
}

TEST_CASE("results body carries the batch and every result field", "[process]") {
  world w;
  (void)w.refresh("xn", {entry("S1", "R1", 0, {"HGB"})});
  auto r = make_result("S1", "HGB", "13.1");
  r.unit = "g/dL";
  r.flags = {"N"};
  r.status = "F";
  r.reference_range = "12-16";
  auto o = w.run("xn", {r});
  const auto* m = find_message(o, endpoint::results);
  REQUIRE(m != nullptr);
  CHECK(m->results.device_id == "xn");
  CHECK(m->results.batch_id == "b1");
  CHECK(m->results.received_at == "2024-03-01T10:05:00+00:00");  // the fixture's zone: UTC
  const auto& v = m->results.results.at(0);
  CHECK(v.sample_id == "S1");
  CHECK(v.lab_report_id == "R1");
  CHECK(v.parameter == "HGB");
  CHECK(v.value == "13.1");
  CHECK(v.unit == "g/dL");
  CHECK(v.flags == std::vector<std::string>{"N"});
  CHECK(v.status == "F");
  CHECK(v.reference_range == "12-16");
  CHECK(v.observed_at == "2024-03-01T10:00:00+00:00");
  CHECK_FALSE(m->internal_request);
  CHECK_FALSE(m->act.has_value());
}

TEST_CASE("body times are ISO-8601 with offset: observed_at with the analyser's or the lab's, received_at as read",
          "[process][time]") {
  // backend-api.md: "times are ISO-8601 with their offset". Europe/Berlin is UTC+1 on 1 March.
  world w;
  w.zone = *lab_zone::find("Europe/Berlin");
  (void)w.refresh("xn", {entry("S1", "R1", 0, {"HGB", "WBC", "PLT"})});
  auto local = make_result("S1", "HGB", "13.1", "20240301100000");       // ASTM: local time, no offset
  auto own = make_result("S1", "WBC", "6.2", "20240301100000+0530");     // HL7 TS with its offset
  auto day = make_result("S1", "PLT", "250", "20240301");                // a date alone
  auto o = w.run("xn", {local, own, day});
  const auto* m = find_message(o, endpoint::results);
  REQUIRE(m != nullptr);
  CHECK(m->results.received_at == "2024-03-01T10:05:00+01:00");
  REQUIRE(m->results.results.size() == 3);
  CHECK(m->results.results[0].observed_at == "2024-03-01T10:00:00+01:00");
  CHECK(m->results.results[1].observed_at == "2024-03-01T10:00:00+05:30");
  CHECK(m->results.results[2].observed_at == "2024-03-01");
  // The caller's reading of the instant wins over `now` read back in the zone.
  w.received_at = "2024-03-01T10:05:00.250+01:00";
  auto o2 = w.run("xn", {make_result("S9", "HGB", "13.4", "20240301100500")});  // unmatched: a results body
  const auto* m2 = find_message(o2, endpoint::results);
  REQUIRE(m2 != nullptr);
  CHECK(m2->results.received_at == "2024-03-01T10:05:00.250+01:00");
}

// ---- auto-rerun --------------------------------------------------------------------------------

namespace {

void hgb_over_20(world& w) {
  parameter_config p;
  p.machine_name = "HGB";
  p.auto_rerun_allowed = true;
  p.auto_rerun_parameter_condition = "value > 20";
  REQUIRE(w.rules.add_parameters({p}).empty());
}

}  // namespace

TEST_CASE("auto-rerun value > 20 fires once on the first result, not on its rerun", "[process][auto]") {
  world w;
  hgb_over_20(w);
  (void)w.refresh("xn", {entry("S1", "R1", 0, {"HGB"})});
  auto o1 = w.run("xn", {make_result("S1", "HGB", "25")});
  REQUIRE(o1.messages.size() == 2);
  CHECK(o1.messages[0].kind == endpoint::results);
  const auto& req = o1.messages[1];
  CHECK(req.kind == endpoint::rerun_request);
  CHECK(req.internal_request);
  CHECK(req.act == activity::rerun_requested);
  CHECK(req.lab_report_id == "R1");
  CHECK(req.request.lab_report_id == "R1");
  CHECK(req.request.requested_parameters == std::vector<std::string>{"HGB"});
  CHECK(req.request.rule == "parameter:HGB");
  REQUIRE(req.request.values.size() == 1);
  CHECK(req.request.values[0].first == "value");
  CHECK(req.request.values[0].second.n == 25);
  CHECK(o1.counts.auto_rerun_requests == 1);
  CHECK(w.state.auto_rerun_count("S1", "HGB") == 1);

  // The backend creates rerun 1; the analyser re-runs HGB: 26 is still > 20 but a rerun never
  // triggers another automatically.
  (void)w.refresh("xn", {entry("S1", "R1", 1, {"HGB"}, {"HGB"})});
  auto o2 = w.run("xn", {make_result("S1", "HGB", "26", "20240301110000")});
  CHECK(o2.tags[0].row == qualify_row::requested_rerun);
  CHECK(count_messages(o2, endpoint::rerun_request) == 0);
  REQUIRE(o2.explain.size() == 1);
  REQUIRE(o2.explain[0].rules.size() == 1);
  CHECK(o2.explain[0].rules[0].outcome == rule_outcome::skipped_rerun);

  // A low value does not fire.
  (void)w.refresh("xn", {entry("S2", "R2", 0, {"HGB"})});
  auto o3 = w.run("xn", {make_result("S2", "HGB", "14")});
  CHECK(count_messages(o3, endpoint::rerun_request) == 0);
}

TEST_CASE("auto-rerun cap per sample and parameter is respected", "[process][auto]") {
  world w;
  hgb_over_20(w);
  (void)w.refresh("xn", {entry("S1", "R1", 0, {"HGB"})});
  auto o1 = w.run("xn", {make_result("S1", "HGB", "25")});
  CHECK(count_messages(o1, endpoint::rerun_request) == 1);
  // The history is lost (a new store: pruned, or another daemon's), so the same sample's next
  // result is a first result again -- the persisted count still caps it at 1.
  memory_result_store fresh;
  batch b{"xn", "b9", {make_result("S1", "HGB", "27", "20240301120000")}, {}};
  auto o2 = process_reports_for_rerun(b, {w.codes, w.rules, fresh, w.state, w.now, true, w.zone, {}});
  CHECK(o2.tags[0].row == qualify_row::first_result);
  CHECK(count_messages(o2, endpoint::rerun_request) == 0);
  CHECK(o2.explain.at(0).rules.at(0).outcome == rule_outcome::capped);
  CHECK(w.state.auto_rerun_count("S1", "HGB") == 1);
  // Another sample has its own cap.
  (void)w.refresh("xn", {entry("S2", "R2", 0, {"HGB"})});
  CHECK(count_messages(w.run("xn", {make_result("S2", "HGB", "30")}), endpoint::rerun_request) == 1);
}

TEST_CASE("auto-rerun for an unmatched sample requests nothing and says why", "[process][auto]") {
  world w;
  hgb_over_20(w);
  auto o = w.run("xn", {make_result("S7", "HGB", "25")});
  CHECK(count_messages(o, endpoint::rerun_request) == 0);
  const auto* a = find_action(o.actions, action_kind::rerun_failed);
  REQUIRE(a != nullptr);
  CHECK(a->act == activity::rerun_failed);
  CHECK(w.state.auto_rerun_count("S7", "HGB") == 0);
}

TEST_CASE("explain trace: which rules evaluated, with which values, what fired", "[process][auto]") {
  world w;
  hgb_over_20(w);
  auto delta = condition::compile("abs(value - previous.value) > 5");
  REQUIRE(delta);
  w.rules.add(rule{"delta", {"HGB"}, *delta.program, rule_action::auto_rerun, 1, "test"});
  (void)w.refresh("xn", {entry("S1", "R1", 0, {"HGB", "WBC"})});
  auto o = w.run("xn", {make_result("S1", "HGB", "25"), make_result("S1", "WBC", "6")});
  REQUIRE(o.explain.size() == 2);
  const auto& e = o.explain[0];
  CHECK(e.parameter == "HGB");
  CHECK(e.decision == "first result");
  REQUIRE(e.rules.size() == 2);
  CHECK(e.rules[0].rule_id == "parameter:HGB");
  CHECK(e.rules[0].outcome == rule_outcome::fired);
  CHECK(describe(e.rules[0].values) == "value=25");
  CHECK(e.rules[1].rule_id == "delta");
  CHECK(e.rules[1].outcome == rule_outcome::not_fired);
  CHECK(describe(e.rules[1].values) == "value=25, previous.value=null");
  CHECK(o.explain[1].rules.empty());  // no rule applies to WBC
  CHECK(count_messages(o, endpoint::rerun_request) == 1);
}

}  // namespace interfaced::rerun
