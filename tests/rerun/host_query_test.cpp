// Host queries answered from the local waiting list (rerun/host_query.hpp), with a fixed `now` and
// a fixed id source: what an analyser asking "what do you have for S-1?" gets back, and why.
// Expectations are read field by field as LIS02-A2 (O.12 action code, L.3 termination code,
// H.14 time) and IHE LAB-27/28 (RSP^K11 QAK-2, OML^O33 addressed to the query's sender) define them.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "rerun/host_query.hpp"
#include "rerun_fixture.hpp"

using namespace interfaced;
using namespace interfaced::rerun;
using interfaced::rerun::test::at;
using interfaced::rerun::test::entry;

namespace {

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t p = 0;
  for (;;) {
    const std::size_t e = s.find(sep, p);
    out.emplace_back(s.substr(p, e == std::string_view::npos ? std::string_view::npos : e - p));
    if (e == std::string_view::npos) return out;
    p = e + 1;
  }
}

// The records of a message (CR-terminated), each split into its fields.
std::vector<std::vector<std::string>> records(const std::string& msg) {
  std::vector<std::vector<std::string>> out;
  for (const auto& r : split(msg, '\r'))
    if (!r.empty()) out.push_back(split(r, '|'));
  return out;
}

const std::vector<std::string>* first(const std::vector<std::vector<std::string>>& recs, std::string_view type) {
  for (const auto& r : recs)
    if (r.front() == type) return &r;
  return nullptr;
}

query ask(std::vector<std::string> samples, std::vector<std::string> tests = {}) {
  query q;
  q.sample_ids = std::move(samples);
  q.tests = std::move(tests);
  return q;
}

// GLU orders as 1001 on this analyser; everything else by its machine name.
std::string codes(const std::string& name) { return name == "GLU" ? "1001" : name; }

struct lab {
  rerun_state state;
  memory_result_store history;
  const timestamp now = at("2026-11-23T08:00:01");
  lab() {
    state.waiting_lists["chem-1"] = {entry("S-1", "R-1", 0, {"GLU", "NA", "K"}),
                                     entry("S-2", "R-2", 0, {"CHOL"})};
    state.waiting_lists["chem-1"][0].valued_parameters = {"K"};  // the backend has K already
    history.record("S-1", "NA", {"140", 140.0, "20261123070000", at("2026-11-23T07:00:00")});
  }
};

}  // namespace

TEST_CASE("host query: pending is what the report lacks, in the analyser's codes") {
  lab l;
  const auto p = pending_orders(l.state, l.history, "chem-1", ask({"S-1"}), codes);
  REQUIRE(p.size() == 1);
  CHECK(p[0].entry->sample_id == "S-1");
  CHECK_FALSE(p[0].is_rerun);
  CHECK(p[0].names == std::vector<std::string>{"GLU"});   // NA has a result, K a value at the backend
  CHECK(p[0].codes == std::vector<std::string>{"1001"});
  CHECK(pending_orders(l.state, l.history, "chem-1", ask({"S-9"}), codes).empty());
  CHECK(pending_orders(l.state, l.history, "other", ask({"S-1"}), codes).empty());
  // A query naming tests gets only those (by instrument code); "ALL" is every test.
  CHECK(pending_orders(l.state, l.history, "chem-1", ask({"S-1"}, {"NA"}), codes).empty());
  CHECK(pending_orders(l.state, l.history, "chem-1", ask({"S-1"}, {"1001"}), codes).size() == 1);
  CHECK(pending_orders(l.state, l.history, "chem-1", ask({"S-1"}, {"ALL"}), codes).size() == 1);
}

TEST_CASE("host query: a requested rerun asks only its unfulfilled parameters") {
  lab l;
  l.state.waiting_lists["chem-1"] = {entry("S-1", "R-1", 2, {"GLU", "NA", "K"}, {"GLU", "NA"})};
  report_rerun r;
  r.lab_report_id = "R-1";
  r.number = 2;
  r.requested = {"GLU", "NA"};
  r.status = rerun_status::requested;
  l.state.reruns["R-1"] = r;
  auto p = pending_orders(l.state, l.history, "chem-1", ask({"S-1"}), codes);
  REQUIRE(p.size() == 1);
  CHECK(p[0].is_rerun);
  CHECK(p[0].names == std::vector<std::string>{"GLU", "NA"});  // a rerun asks again, history or not
  // Once received, nothing is pending for it.
  l.state.reruns["R-1"].status = rerun_status::received;
  CHECK(pending_orders(l.state, l.history, "chem-1", ask({"S-1"}), codes).empty());
}

TEST_CASE("host query (ASTM): an order message per query, N for a first run, L|1|I when nothing is pending") {
  lab l;
  query all;
  all.all_samples = true;
  query cancel = ask({"S-2"});
  cancel.cancel = true;
  const auto a = answer_astm_queries(l.state, l.history, "chem-1", {ask({"S-1"}), ask({"S-9"}), cancel, all}, codes, l.now);
  REQUIRE(a.messages.size() == 3);  // the cancel gets no answer
  REQUIRE(a.log.size() == 4);

  const auto s1 = records(a.messages[0]);
  REQUIRE(first(s1, "H") != nullptr);
  CHECK(first(s1, "H")->at(13) == "20261123080001");  // H.14: the time given, not the clock's
  const auto* o = first(s1, "O");
  REQUIRE(o != nullptr);
  CHECK(o->at(2) == "S-1");            // O.3 specimen id
  CHECK(o->at(4) == "^^^1001");        // O.5 universal test id, component 4: the analyser's code (trailing empty components left out)
  CHECK(o->at(11) == "N");             // O.12: new specimen
  CHECK(first(s1, "L")->at(2) == "N");  // L.3 normal
  CHECK(a.log[0] == "host query for S-1: order sent for S-1: 1001");

  const auto none = records(a.messages[1]);
  CHECK(first(none, "O") == nullptr);
  CHECK(first(none, "L")->at(2) == "I");  // L.3 I: no information
  CHECK(a.log[1] == "host query for S-9: nothing pending (L|1|I)");
  CHECK(a.log[2] == "host query for S-2 cancelled by the analyser: nothing sent");

  const auto every = records(a.messages[2]);
  int orders = 0;
  for (const auto& r : every) orders += r.front() == "O";
  CHECK(orders == 2);  // S-1 and S-2
  CHECK(a.log[3] == "host query for ALL: order sent for S-1: 1001; S-2: CHOL");
}

TEST_CASE("host query (ASTM): a rerun is ordered as tests added to a known specimen (O.12 A)") {
  lab l;
  l.state.waiting_lists["chem-1"] = {entry("S-1", "R-1", 1, {"GLU"}, {"GLU"})};
  report_rerun r;
  r.lab_report_id = "R-1";
  r.number = 1;
  r.requested = {"GLU"};
  l.state.reruns["R-1"] = r;
  const auto a = answer_astm_queries(l.state, l.history, "chem-1", {ask({"S-1"})}, codes, l.now);
  REQUIRE(a.messages.size() == 1);
  CHECK(first(records(a.messages[0]), "O")->at(11) == "A");
  CHECK(a.log[0] == "host query for S-1: order sent for S-1 rerun 1: 1001");
}

TEST_CASE("host query (HL7): RSP^K11 OK then one OML^O33 per sample, addressed to the sender") {
  lab l;
  const std::string qbp =
      "MSH|^~\\&|AN|LAB|LIS|HOSP|20261123075959||QBP^Q11^QBP_Q11|Q-7|P|2.5.1\r"
      "QPD|WOS^Work Order Step^IHE_LABTF|T-1|S-1\r"
      "RCP|I||R\r";
  int n = 0;
  const id_source ids = [&n] { return "ID-" + std::to_string(++n); };
  const auto a = answer_hl7_query(l.state, l.history, "chem-1", qbp, {ask({"S-1"})}, codes, l.now, ids);
  REQUIRE(a.messages.size() == 2);
  const auto rsp = records(a.messages[0]);
  CHECK(first(rsp, "MSH")->at(8) == "RSP^K11^RSP_K11");
  CHECK(first(rsp, "MSH")->at(9) == "ID-1");  // numbered before the order it announces
  CHECK(first(rsp, "MSA")->at(1) == "AA");
  CHECK(first(rsp, "MSA")->at(2) == "Q-7");
  CHECK(first(rsp, "QAK")->at(2) == "OK");
  const auto oml = records(a.messages[1]);
  const auto* msh = first(oml, "MSH");
  CHECK(msh->at(4) == "AN");                // MSH-5: the analyser's MSH-3
  CHECK(msh->at(5) == "LAB");               // MSH-6: its MSH-4
  CHECK(msh->at(6) == "20261123080001");    // MSH-7: `now`
  CHECK(msh->at(8) == "OML^O33^OML_O33");
  CHECK(msh->at(9) == "ID-2");
  CHECK(first(oml, "ORC")->at(1) == "NW");
  CHECK(a.log == std::vector<std::string>{"host query (QBP^Q11) for S-1: RSP^K11 OK, pending S-1: 1001"});

  const auto none = answer_hl7_query(l.state, l.history, "chem-1", qbp, {ask({"S-9"})}, codes, l.now, ids);
  REQUIRE(none.messages.size() == 1);
  CHECK(first(records(none.messages[0]), "QAK")->at(2) == "NF");
  CHECK(none.log == std::vector<std::string>{"host query (QBP^Q11) for S-9: RSP^K11 NF (nothing pending)"});
}

TEST_CASE("host query (HL7): Mindray QRY^Q02 gets QCK^Q02 OK then one DSR^Q03 per pending sample") {
  // Mindray CL host interface manual (2013-08) §1.3.2: QCK^Q02 `QAK|SR|OK`, then the DSR^Q03 with
  // the sample's DSP lines (21 = bar code, 29.. = test channel numbers `<n>^^^`); NF alone and no
  // DSR when nothing is found.
  lab l;
  l.state.waiting_lists["chem-1"][0].patient = {"P-77", "Doe^Jane", "F", "1980-02-03"};
  const id_source ids = [] { return std::string("X"); };
  const std::string qry =
      "MSH|^~\\&|Mindray|BS-480|||20261123075959||QRY^Q02|8|P|2.3.1||||||ASCII|||\r"
      "QRD|20261123075959|R|D|1|||RD|S-1|OTH|||T|\rQRF||||||RCT|COR|ALL||\r";
  const auto a = answer_hl7_query(l.state, l.history, "chem-1", qry, {ask({"S-1"})}, codes, l.now, ids);
  REQUIRE(a.messages.size() == 2);
  const auto qck = records(a.messages[0]);
  CHECK(first(qck, "MSH")->at(8) == "QCK^Q02");
  CHECK(first(qck, "MSH")->at(9) == "8");  // the query's MSH-10, as in every answer of the manual
  CHECK(first(qck, "MSH")->at(6) == "20261123080001");
  CHECK(first(qck, "MSA")->at(1) == "AA");
  CHECK(first(qck, "MSA")->at(2) == "8");
  CHECK(first(qck, "QAK")->at(1) == "SR");
  CHECK(first(qck, "QAK")->at(2) == "OK");
  const auto dsr = records(a.messages[1]);
  CHECK(first(dsr, "MSH")->at(8) == "DSR^Q03");
  std::vector<std::string> lines;
  for (const auto& r : dsr)
    if (r.front() == "DSP") lines.push_back(r.at(3));
  REQUIRE(lines.size() == 29);  // 28 positional lines + one test (GLU as 1001; NA and K are done)
  CHECK(lines[0] == "P-77");
  CHECK(lines[2] == "Doe Jane");  // a display string: XPN components spaced
  CHECK(lines[3] == "19800203000000");
  CHECK(lines[4] == "F");
  CHECK(lines[20] == "S-1");
  CHECK(lines[23] == "N");
  CHECK(lines[28] == "1001^^^");
  CHECK(first(dsr, "DSC")->at(1).empty());
  CHECK(a.log == std::vector<std::string>{"host query (QRY^Q02) for S-1: QCK^Q02 OK, DSR^Q03 x1 pending S-1: 1001"});

  const auto none = answer_hl7_query(l.state, l.history, "chem-1", qry, {ask({"S-9"})}, codes, l.now, ids);
  REQUIRE(none.messages.size() == 1);
  CHECK(first(records(none.messages[0]), "QAK")->at(2) == "NF");
  CHECK(none.log == std::vector<std::string>{"host query (QRY^Q02) for S-9: QCK^Q02 NF (nothing pending)"});

  // A group query (QRD-8 empty: all samples) answers every pending sample, DSC-1 counting to the last.
  query all;
  all.all_samples = true;
  const auto group = answer_hl7_query(l.state, l.history, "chem-1", qry, {all}, codes, l.now, ids);
  REQUIRE(group.messages.size() == 3);
  CHECK(first(records(group.messages[1]), "DSC")->at(1) == "1");
  CHECK(first(records(group.messages[2]), "DSC")->at(1).empty());
}

TEST_CASE("host query (HL7): anything but QBP^Q11 or QRY^Q02 gets nothing here (the session's ACK goes back)") {
  lab l;
  const id_source ids = [] { return std::string("X"); };
  const std::string oru = "MSH|^~\\&|AN|LAB|LIS|HOSP|20261123075959||ORU^R01|Q-8|P|2.3.1\rOBR|1|S-1\r";
  CHECK(answer_hl7_query(l.state, l.history, "chem-1", oru, {ask({"S-1"})}, codes, l.now, ids).messages.empty());
  CHECK(answer_hl7_query(l.state, l.history, "chem-1", "not hl7", {ask({"S-1"})}, codes, l.now, ids).messages.empty());
}

TEST_CASE("order download plan: every pending sample of the device, once") {
  lab l;
  download_state sent;
  auto first_plan = plan_device_downloads(l.state, l.history, "chem-1", sent, codes, l.now);
  REQUIRE(first_plan.size() == 2);
  CHECK(first_plan[0].sample_id == "S-1");
  CHECK(first_plan[0].codes == std::vector<std::string>{"1001"});
  CHECK(first_plan[0].action == download_action::new_order);
  CHECK(plan_device_downloads(l.state, l.history, "chem-1", sent, codes, l.now).empty());
  const auto* e = waiting_entry(l.state, "chem-1", "S-2");
  REQUIRE(e != nullptr);
  const order o = order_of(*e, {"CHOL"}, "N");
  CHECK(o.sample_id == "S-2");
  CHECK(o.tests.size() == 1);
  CHECK(waiting_entry(l.state, "chem-1", "S-9") == nullptr);
}

TEST_CASE("host query: a result stored under a sub-id or result type counts as the parameter's value") {
  lab l;
  l.state.waiting_lists["chem-1"] = {entry("S-3", "R-3", 0, {"TBIL", "ALT"})};
  // cobas pure and Mindray send OBX-4 sub-ids: the history keys them `ALT^sub=1` (rerun/result_key.hpp).
  l.history.record("S-3", "ALT^sub=1", {"31", 31.0, "20261123070000", at("2026-11-23T07:00:00")});
  const auto p = pending_orders(l.state, l.history, "chem-1", ask({"S-3"}), codes);
  REQUIRE(p.size() == 1);
  CHECK(p[0].names == std::vector<std::string>{"TBIL"});
}
