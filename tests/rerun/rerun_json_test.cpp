// JSON at the rerun domain's edges: backend-api.md field names for bodies and responses, the
// persisted state, and rules files with their test cases and load errors.
#include <catch2/catch.hpp>

#include <random>

#include "rerun/rerun_json.hpp"
#include "rerun_fixture.hpp"

namespace interfaced::rerun {
using namespace test;
using nlohmann::json;

TEST_CASE("waiting list response: backend-api.md fields", "[json]") {
  const auto j = json::parse(R"([
    {"sample_id": "S1", "lab_report_id": 1234, "sampleRedrawFlag": 3, "rerunNumber": 2,
     "parameters": ["HGB", "WBC"], "rerun_params": ["HGB"],
     "patient": {"id": 77, "name": "DOE^JANE", "sex": "F", "dob": "19800101"}, "priority": "R"},
    {"sample_id": "S2", "lab_report_id": "R2", "sampleRedrawFlag": 0, "rerunNumber": 0,
     "parameters": ["GLU"], "rerun_params": [], "patient": null, "priority": 1}
  ])");
  const auto list = waiting_list_from_json(j);
  REQUIRE(list.size() == 2);
  CHECK(list[0].lab_report_id == "1234");
  CHECK(list[0].sample_redraw_flag == 3);
  CHECK(list[0].rerun_number == 2);
  CHECK(list[0].rerun_params == std::vector<std::string>{"HGB"});
  CHECK(list[0].patient.id == "77");
  CHECK(list[0].rerun_active());
  CHECK(list[1].priority == "1");
  CHECK_FALSE(list[1].rerun_active());
  CHECK(to_json(list[0])["rerunNumber"] == 2);
  CHECK(to_json(list[0])["sampleRedrawFlag"] == 3);

  CHECK_THROWS_AS(waiting_list_from_json(json::object()), json_error);
  try {
    (void)waiting_list_from_json(json::parse(R"([{"sample_id": "S1", "lab_report_id": "R", "rerunNumber": "x"}])"));
    FAIL("no error");
  } catch (const json_error& e) {
    CHECK(e.pointer() == "/0/rerunNumber");
  }
}

TEST_CASE("parameter configuration response becomes rules", "[json]") {
  const auto params = parameters_from_json(json::parse(R"([
    {"machine_name": "HGB", "manual_rerun": true, "auto_rerun_allowed": true,
     "auto_rerun_parameter_condition": "value > 20 or value < 2", "range": {"low": 12, "high": "16"}, "unit": "g/dL"},
    {"machine_name": "WBC", "manual_rerun": 1, "auto_rerun_allowed": 0, "auto_rerun_parameter_condition": null},
    {"machine_name": "PLT", "auto_rerun_allowed": true, "auto_rerun_parameter_condition": "valeu > 1"}
  ])"));
  REQUIRE(params.size() == 3);
  CHECK(params[0].range_low == 12);
  CHECK(params[0].range_high == 16);
  CHECK(params[1].manual_rerun);
  CHECK_FALSE(params[1].auto_rerun_allowed);
  rule_set rules;
  const auto errors = rules.add_parameters(params);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].rule_id == "parameter:PLT");
  CHECK(errors[0].format() ==
        "backend parameter configuration: /2/auto_rerun_parameter_condition (rule \"parameter:PLT\"): "
        "1:1: unknown variable 'valeu'\n"
        "  valeu > 1\n"
        "  ^\n");
  REQUIRE(rules.rules().size() == 1);
  CHECK(rules.rules()[0].id == "parameter:HGB");
  CHECK(rules.parameter("HGB")->unit == "g/dL");
}

TEST_CASE("message bodies use backend-api.md field names", "[json]") {
  world w;
  parameter_config p;
  p.machine_name = "HGB";
  p.auto_rerun_allowed = true;
  p.auto_rerun_parameter_condition = "value > 20 and flag in [\"H\"]";
  REQUIRE(w.rules.add_parameters({p}).empty());
  (void)w.refresh("xn", {entry("S1", "R1", 0, {"HGB"}), entry("S2", "R2", 1, {"WBC"}, {"WBC", "PLT"})});
  auto hgb = make_result("S1", "HGB", "25");
  hgb.flags = {"H"};
  auto o = w.run("xn", {hgb, make_result("S2", "WBC", "6.2")});
  REQUIRE(o.messages.size() == 3);

  const json results = body_json(o.messages[0]);
  CHECK(results["device_id"] == "xn");
  CHECK(results["batch_id"] == "b1");
  CHECK(results["received_at"] == "2024-03-01T10:05:00+00:00");
  const json& r0 = results["results"][0];
  for (const char* key : {"sample_id", "lab_report_id", "parameter", "value", "unit", "flags", "reference_range",
                          "status", "observed_at", "is_rerun", "rerun_number", "machine_triggered_rerun",
                          "instrument_code", "raw"})
    CHECK(r0.contains(key));
  CHECK(r0["rerun_number"] == 0);
  CHECK(r0["is_rerun"] == false);

  const json values = body_json(o.messages[1]);
  CHECK(values["lab_report_id"] == "R2");
  CHECK(values["rerun_number"] == 1);
  CHECK(values["machine_triggered_rerun"] == false);
  CHECK(values["requested_parameters"] == json({"WBC", "PLT"}));
  CHECK(values["fulfilled_parameters"] == json({"WBC"}));
  CHECK(values["values"][0]["parameter"] == "WBC");
  CHECK(values["activity"] == 979);
  CHECK(extra_headers(o.messages[1]).empty());

  const json request = body_json(o.messages[2]);
  CHECK(request["lab_report_id"] == "R1");
  CHECK(request["requested_parameters"] == json({"HGB"}));
  CHECK(request["reason"]["rule"] == "parameter:HGB");
  CHECK(request["reason"]["values"]["value"] == 25.0);
  CHECK(request["reason"]["values"]["flags"] == json({"H"}));
  CHECK(request["activity"] == 981);
  const auto headers = extra_headers(o.messages[2]);
  REQUIRE(headers.size() == 1);
  CHECK(headers[0].first == "x-is-internal-request");
  CHECK(headers[0].second == "True");
}

namespace {
// A field value drawn from what analysers send and what must be escaped: empty, plain, JSON
// specials, every C0 control, DEL, valid UTF-8 (2, 3 and 4 bytes).
std::string field(std::mt19937& rng) {
  static const std::vector<std::string> pieces = {
      "", "S1", "HGB", "12.5", "mmol/L", "3.5-5.1", "F", "H", "\"quoted\"", "back\\slash", "a/b",
      std::string(1, '\0') + "nul", "\b\f\n\r\t", "\x01\x1f\x7f", "\x1b[0m", "R|1|^^^HGB|12.5|g/dL||N||F\r",
      "\xc3\xa9t\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\xa7\xaa", "2024-12-06T14:06:15+01:00", "2024-12-06"};
  std::string out;
  const auto n = std::uniform_int_distribution<int>(0, 3)(rng);
  for (int i = 0; i < n; ++i) out += pieces[std::uniform_int_distribution<std::size_t>(0, pieces.size() - 1)(rng)];
  return out;
}

std::vector<std::string> fields(std::mt19937& rng) {
  std::vector<std::string> v(std::uniform_int_distribution<std::size_t>(0, 3)(rng));
  for (auto& x : v) x = field(rng);
  return v;
}

result_value random_value(std::mt19937& rng) {
  auto coin = [&] { return std::uniform_int_distribution<int>(0, 1)(rng) == 1; };
  result_value v;
  v.sample_id = field(rng);
  v.lab_report_id = field(rng);
  v.parameter = field(rng);
  v.value = field(rng);
  v.unit = field(rng);
  v.flags = fields(rng);
  v.reference_range = field(rng);
  v.status = field(rng);
  v.observed_at = field(rng);
  v.is_rerun = coin();
  v.rerun_number = std::uniform_int_distribution<int>(-2, 12)(rng);
  v.machine_triggered_rerun = coin();
  v.instrument_code = field(rng);
  v.raw = field(rng);
  v.sub_id = field(rng);
  v.result_type = field(rng);
  for (auto n = std::uniform_int_distribution<int>(0, 3)(rng); n > 0; --n)
    v.companions.emplace_back(coin() ? "interpretation" : field(rng), field(rng));  // repeats too
  v.statuses = fields(rng);
  v.qc_status = coin() ? std::string() : field(rng);
  return v;
}
}  // namespace

TEST_CASE("results and rerun values bodies are written byte for byte as the JSON tree dumps them", "[json]") {
  // body_text writes the hot bodies straight into a string; the stored body is sent byte-identical
  // on every attempt, so it must equal what body_json().dump() wrote before it, byte for byte.
  std::mt19937 rng(17);
  for (int i = 0; i < 2000; ++i) {
    outgoing_message m;
    if (i % 2 == 0) {
      m.kind = endpoint::results;
      m.results.device_id = field(rng);
      m.results.batch_id = field(rng);
      m.results.received_at = field(rng);
      for (auto n = std::uniform_int_distribution<int>(0, 4)(rng); n > 0; --n) m.results.results.push_back(random_value(rng));
    } else {
      m.kind = endpoint::rerun_values;
      auto& b = m.rerun_values;
      b.lab_report_id = field(rng);
      b.rerun_number = std::uniform_int_distribution<int>(0, 5)(rng);
      b.machine_triggered_rerun = i % 3 == 0;
      b.requested_parameters = fields(rng);
      b.fulfilled_parameters = fields(rng);
      b.act = i % 4 == 1 ? activity::rerun_values_received : activity::rerun_requested;
      for (auto n = std::uniform_int_distribution<int>(0, 4)(rng); n > 0; --n) b.values.push_back(random_value(rng));
    }
    INFO("case " << i);
    REQUIRE(body_text(m) == body_json(m).dump());
  }
}

TEST_CASE("a body with bad UTF-8 is refused by the text writer as by the JSON tree", "[json]") {
  outgoing_message m;
  m.kind = endpoint::results;
  result_value v;
  v.sample_id = "S1";
  v.value = "\xff\xfe";
  m.results.results.push_back(v);
  CHECK_THROWS_AS(body_json(m).dump(), nlohmann::json::type_error);
  CHECK_THROWS_AS(body_text(m), nlohmann::json::type_error);
}

TEST_CASE("rerun state survives a JSON round trip", "[json]") {
  world w;
  (void)w.refresh("xn", {entry("S1", "R1", 2, {"HGB", "PLT"}, {"HGB", "PLT"})});
  (void)w.run("xn", {make_result("S1", "HGB", "13.1")});
  w.state.count_auto_rerun("S3", "GLU", w.now);
  const json j = to_json(w.state);
  const rerun_state back = rerun_state_from_json(json::parse(j.dump()));
  const auto& rr = back.reruns.at("R1");
  CHECK(rr.number == 2);
  CHECK(rr.requested == std::vector<std::string>{"HGB", "PLT"});
  CHECK(rr.fulfilled == std::vector<std::string>{"HGB"});
  CHECK(rr.status == rerun_status::requested);
  CHECK(rr.since == w.now);
  CHECK(back.waiting_lists.at("xn").at(0).rerun_params == std::vector<std::string>{"HGB", "PLT"});
  CHECK(back.auto_rerun_count("S3", "GLU") == 1);
  CHECK(to_json(back) == j);
  CHECK_THROWS_AS(rerun_state_from_json(json::parse(R"({"version": 2})")), json_error);
}

TEST_CASE("rules file: rules, test cases and the test runner", "[json][rules]") {
  const std::string text = R"({
  "rules": [
    {"id": "hgb-range", "parameters": ["HGB"], "condition": "value > 20 or value < 2",
     "action": "auto_rerun",
     "tests": [
       {"name": "high fires", "given": {"value": 25}, "expect": {"fired": true}},
       {"name": "normal", "given": {"value": "13.5"}, "expect": {"fired": false}},
       {"name": "a rerun never fires", "given": {"value": 25, "rerun_number": 1}, "expect": {"fired": false}},
       {"name": "capped", "given": {"value": 25, "auto_reruns_before": 1}, "expect": {"fired": false}},
       {"name": "wrong on purpose", "given": {"value": 13}, "expect": {"fired": true}}
     ]},
    {"id": "delta", "parameters": ["GLU"], "condition": "abs(value - previous.value) > 5 and hours_since(previous.observed_at) < 24",
     "max_per_sample": 2,
     "tests": [
       {"given": {"value": 12, "previous": {"value": 5, "observed_at": "20240301080000"}, "now": "2024-03-01T10:00:00"},
        "expect": {"fired": true}},
       {"given": {"value": 12}, "expect": {"fired": false}},
       {"given": {"value": 12, "previous": {"value": 5, "observed_at": "20240227080000"}, "now": "2024-03-01T10:00:00"},
        "expect": {"fired": false}},
       {"given": {"value": 12, "auto_reruns_before": 1, "previous": {"value": 5, "observed_at": "20240301080000"},
                  "now": "2024-03-01T10:00:00"}, "expect": {"fired": true}}
     ]},
    {"id": "flags", "condition": "flag in [\"HH\",\"LL\"] or not is_numeric",
     "tests": [{"given": {"value": "5", "flags": ["LL"]}, "expect": {"fired": true}},
               {"given": {"value": "POS"}, "expect": {"fired": true}},
               {"given": {"value": "5", "flags": ["H"]}, "expect": {"fired": false}}]}
  ]
})";
  const rules_file f = load_rules_file(text, "rules.json");
  for (const auto& e : f.errors) INFO(e.format());
  REQUIRE(f.errors.empty());
  CHECK(f.rules.rules().size() == 3);
  CHECK(f.rules.find("delta")->max_per_sample == 2);
  CHECK(f.rules.find("flags")->parameters.empty());  // every parameter
  REQUIRE(f.tests.size() == 12);
  const auto report = run_rule_tests(f);
  CHECK(report.run == 12);
  REQUIRE(report.failures.size() == 1);
  CHECK(report.failures[0].rule_id == "hgb-range");
  CHECK(report.failures[0].name == "wrong on purpose");
  CHECK(report.failures[0].pointer == "/rules/0/tests/4");
  CHECK(report.failures[0].message == "expected fired, got not fired; the rule saw value=13");
}

TEST_CASE("rules file errors: positions, pointers, reserved actions", "[json][rules]") {
  SECTION("condition error with line, column and caret") {
    const auto f = load_rules_file(R"({"rules": [{"id": "a", "condition": "value > 20 or valu < 2"}]})", "rules.json");
    REQUIRE(f.errors.size() == 1);
    REQUIRE(f.errors[0].error.has_value());
    CHECK(f.errors[0].error->line == 1);
    CHECK(f.errors[0].error->column == 15);
    CHECK(f.errors[0].format() ==
          "rules.json: /rules/0/condition (rule \"a\"): 1:15: unknown variable 'valu'\n"
          "  value > 20 or valu < 2\n"
          "                ^\n");
    CHECK(f.rules.rules().empty());
  }
  SECTION("JSON syntax error with its line and column") {
    const auto f = load_rules_file("{\"rules\": [\n  {\"id\": \"a\",, }\n]}", "rules.json");
    REQUIRE(f.errors.size() == 1);
    CHECK(f.errors[0].format().rfind("rules.json: 2:14: not valid JSON", 0) == 0);
  }
  SECTION("reserved and unknown actions, unknown fields, duplicate ids") {
    const auto f = load_rules_file(R"({"rules": [
      {"id": "h", "condition": "qc", "action": "hold"},
      {"id": "x", "condition": "qc", "action": "explode"},
      {"id": "y", "condition": "qc", "paramters": ["HGB"]},
      {"id": "z", "condition": "qc"},
      {"id": "z", "condition": "qc"},
      {"id": "t", "condition": "qc", "tests": [{"given": {"value": 1, "colour": "red"}, "expect": {"fired": true}}]}
    ]})", "r.json");
    REQUIRE(f.errors.size() == 5);
    CHECK(f.errors[0].format() == "r.json: /rules/0/action (rule \"h\"): action \"hold\" is reserved but not implemented yet\n");
    CHECK(f.errors[1].pointer == "/rules/1/action");
    CHECK(f.errors[2].pointer == "/rules/2/paramters");
    CHECK(f.errors[3].pointer == "/rules/4/id");
    CHECK(f.errors[4].pointer == "/rules/5/tests/0/given/colour");
    CHECK(f.rules.rules().size() == 1);  // only the first "z"
  }
}


// qc.md "Results still in the outbox are re-tagged before delivery": only the named result of the
// stored body changes (a result is sample + parameter + observed_at: a rerun of the same sample is
// another result), the rest of the body means what it meant.
TEST_CASE("retag_qc_status: the named patient result of a stored post takes the new qc_status", "[json][qc]") {
  const json results = json::parse(R"({"device_id": "chem", "batch_id": "b7", "received_at": "2026-12-06T10:31:00+00:00",
    "results": [
      {"sample_id": "S-2", "parameter": "GLU", "value": "5.5", "observed_at": "2026-12-06T10:30:00+00:00", "qc_status": "rejected"},
      {"sample_id": "S-2", "parameter": "GLU", "value": "5.4", "observed_at": "2026-12-06T10:40:00+00:00", "qc_status": "rejected"},
      {"sample_id": "S-3", "parameter": "GLU", "value": "5.6", "observed_at": "2026-12-06T10:30:00+00:00", "qc_status": "rejected"}]})");
  const auto out = retag_qc_status(results.dump(), "S-2", "GLU", "2026-12-06T10:30:00+00:00", "accepted");
  REQUIRE(out.has_value());
  json want = results;
  want["results"][0]["qc_status"] = "accepted";
  CHECK(json::parse(*out) == want);

  // A rerun values post carries its results under "values".
  const json values = json::parse(R"({"lab_report_id": "R2", "rerun_number": 1,
    "values": [{"sample_id": "S-9", "parameter": "GLU", "observed_at": "2026-12-06T11:00:00+00:00", "qc_status": "accepted"}]})");
  const auto v = retag_qc_status(values.dump(), "S-9", "GLU", "2026-12-06T11:00:00+00:00", "missed");
  REQUIRE(v.has_value());
  CHECK(json::parse(*v)["values"][0]["qc_status"] == "missed");
  CHECK(json::parse(*v)["lab_report_id"] == "R2");

  // Nothing to re-tag: the caller must correct it another way, never believe it re-tagged.
  CHECK_FALSE(retag_qc_status(results.dump(), "S-2", "GLU", "2026-12-06T10:35:00+00:00", "accepted"));
  CHECK_FALSE(retag_qc_status(results.dump(), "S-2", "K", "2026-12-06T10:30:00+00:00", "accepted"));
  CHECK_FALSE(retag_qc_status(R"({"device_id": "chem", "results": "none"})", "S-2", "GLU", "2026-12-06T10:30:00+00:00", "accepted"));
  CHECK_FALSE(retag_qc_status("{\"results\": [", "S-2", "GLU", "2026-12-06T10:30:00+00:00", "accepted"));
}

}  // namespace interfaced::rerun
