// Every HL7 capture in ../shared/captures/hl7 through `interfaced replay`: analyser messages give
// their results (sample ids, codes, values, units, flags, QC); host replies are checked, the
// malformed one named precisely; session logs replay what the analyser sent. Expectations were
// written by reading the captures against ../shared/spec/hl7-facts.md and SOURCES.md.

#include <catch2/catch.hpp>

#include "replay_support.hpp"

using interfaced::test::replay;
using interfaced::test::replay_capture;
using json = nlohmann::json;

namespace {

json find(const std::vector<json>& results, const std::string& sample, const std::string& code) {
  return interfaced::test::find_result(results, sample, code);
}

void check(const json& r, const std::string& value, const std::string& unit,
           const std::vector<std::string>& flags, bool qc = false) {
  interfaced::test::check_result(r, "hl7", value, unit, flags);
  CHECK(r.at("qc") == qc);
}

}  // namespace

TEST_CASE("replay hl7: BA400 single result, NONE is no flag") {
  auto run = replay_capture("hl7/biosystems-ba400-oul-r22-single-result.hl7");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto res = run->of_type("result");
  REQUIRE(res.size() == 1);
  const json r = find(res, "CHECK", "CHOLESTEROL");
  check(r, "297.032776", "mg/dL", {});
  CHECK(r.at("observed_at") == "2023-05-13T16:48:04");
  CHECK(r.at("status") == "F");
  CHECK(r.at("device") == "biosystems-ba400");
}

TEST_CASE("replay hl7: BA400 three tests, remark code 025 kept as a flag") {
  auto run = replay_capture("hl7/biosystems-ba400-oul-r22-three-tests-flag025.hl7");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto res = run->of_type("result");
  REQUIRE(res.size() == 3);
  check(find(res, "DAYAWATHI32988998", "CHOL HDL DIRECT"), "60.9779778", "mg/dL", {"025"});
  check(find(res, "DAYAWATHI32988998", "CHOLESTEROL"), "177.710159", "mg/dL", {});
  check(find(res, "DAYAWATHI32988998", "TRIGLYCERIDES"), "52.4089546", "mg/dL", {});
}

TEST_CASE("replay hl7: BA400 re-export under a new MSH-10 is a duplicate, not a rerun") {
  auto a = interfaced::test::capture("hl7/biosystems-ba400-oul-r22-reexport-a.hl7");
  if (!a) return;
  auto run = replay({interfaced::test::capture_path("hl7/biosystems-ba400-oul-r22-reexport-a.hl7"),
                     interfaced::test::capture_path("hl7/biosystems-ba400-oul-r22-reexport-b.hl7")});
  REQUIRE(run.status == 0);
  auto res = run.of_type("result");
  REQUIRE(res.size() == 3);  // b's three results are the same observations: reported once
  for (const auto& r : res) CHECK(r.at("rerun_number") == 0);
  check(find(res, "SUGATH 33002946", "CHOLESTEROL"), "263.449738", "mg/dL", {});
  CHECK(run.err.find("duplicate") != std::string::npos);
}

TEST_CASE("replay hl7: BA400 repeat run of the same test is an instrument-triggered rerun") {
  auto a = interfaced::test::capture("hl7/biosystems-ba400-oul-r22-repeat-run-a.hl7");
  if (!a) return;
  auto run = replay({interfaced::test::capture_path("hl7/biosystems-ba400-oul-r22-repeat-run-a.hl7"),
                     interfaced::test::capture_path("hl7/biosystems-ba400-oul-r22-repeat-run-b.hl7")});
  REQUIRE(run.status == 0);
  auto res = run.of_type("result");
  REQUIRE(res.size() == 2);
  CHECK(res[0].at("value") == "323.308502");
  CHECK(res[0].at("rerun_number") == 0);
  CHECK(res[1].at("value") == "325.980804");
  CHECK(res[1].at("is_rerun") == true);
  CHECK(res[1].at("rerun_number") == -1);
}

TEST_CASE("replay hl7: BA400 LAB-27 query") {
  auto run = replay_capture("hl7/biosystems-ba400-qbp-q11-lab27.hl7");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto q = run->of_type("query");
  REQUIRE(q.size() == 1);
  CHECK(q[0].at("sample_ids") == json::array({"33032646"}));
  CHECK(q[0].at("tag") == "7e3fe271b7af415b996ea9e142014521");
  CHECK(q[0].at("protocol") == "hl7");
}

TEST_CASE("replay hl7: cobas pure OUL^R22, supplemental OBX not results") {
  auto run = replay_capture("hl7/roche-cobaspure-oul-r22-lab29-mllp.hl7");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto res = run->of_type("result");
  REQUIRE(res.size() == 5);  // five OBR groups, one result OBX each (SOURCES.md)
  const json r = find(res, "130578", "20130");
  check(r, "29.9", "U/L", {"N"});
  CHECK(r.at("observed_at") == "2023-02-15T14:53:46");
  CHECK(r.at("instrument") == "c303");
  check(find(res, "130578", "20411"), "214", "mg/dL", {"N"});
  check(find(res, "130578", "21130"), "117", "mg/dL", {"N"});
}

TEST_CASE("replay hl7: cobas pure session log gives the same results as the rebuilt message") {
  auto run = replay_capture("hl7/roche-cobaspure-comm-session-log.txt");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto res = run->of_type("result");
  REQUIRE(res.size() == 5);
  check(find(res, "130578", "20630"), "84.8", "mg/dL", {"N"});
  // The ESU^U01 equipment status in the same log is seen, not forwarded.
  auto notes = run->of_type("message");
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].at("message_type") == "ESU^U01");
}

TEST_CASE("replay hl7: BA400 middleware log, the same message sent three times") {
  auto run = replay_capture("hl7/biosystems-ba400-limsmw-resend-session-log.txt");
  if (!run) return;
  REQUIRE(run->status == 0);
  // The log cut each OUL^R22 at 1024 bytes (SOURCES.md): the cut is reported, the partial last
  // segment is not replayed, the complete results are -- once, the resends are duplicates.
  CHECK(run->err.find("cut at 1024 bytes") != std::string::npos);
  auto res = run->of_type("result");
  REQUIRE(res.size() == 3);
  check(find(res, "MANORI32983187", "ALT-GPT"), "38.4902458", "U/L", {});
  CHECK(run->of_type("query").size() == 2);
}

TEST_CASE("replay hl7: Mindray CL patient ORU^R01 (manual text, 2.3.1 dialect)") {
  auto run = replay_capture("hl7/mindray-cl1000i-oru-r01-patient-manual.txt", "mindray-cl");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto res = run->of_type("result");
  REQUIRE(res.size() == 3);
  const json r = find(res, "10", "2");  // OBR-3 sample id 10, OBX-3 test number 2
  check(r, "100", "umol/L", {"N"});
  CHECK(r.at("name") == "TBil");
  check(find(res, "10", "5"), "98.2", "umol/L", {"N"});
  check(find(res, "10", "6"), "26.4", "umol/L", {"N"});
}

TEST_CASE("replay hl7: Mindray CL QC carried in OBR fields") {
  auto run = replay_capture("hl7/mindray-cl1000i-oru-r01-qc-manual.txt", "mindray-cl");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto res = run->of_type("result");
  REQUIRE(res.size() == 1);
  check(find(res, "QUAL2", "AST"), "0.137470", "nkat/L", {}, /*qc=*/true);
}

TEST_CASE("replay hl7: Mindray query session: the query, and the host's messages checked") {
  auto run = replay_capture("hl7/mindray-cl1000i-query-by-barcode-session-manual.txt", "mindray-cl");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto q = run->of_type("query");
  REQUIRE(q.size() == 1);
  CHECK(q[0].at("sample_ids") == json::array({"0019"}));
  // Mindray manual §1.3.2: the host answers QCK^Q02 (the OK and NF examples) and downloads the
  // sample in a DSR^Q03, which the analyser acknowledges with ACK^Q03.
  const auto replies = run->of_type("reply");
  REQUIRE(replies.size() == 3);
  CHECK(replies[0].at("message_type") == "QCK^Q02");
  CHECK(replies[0].at("host") == true);
  CHECK(replies[0].at("query_status") == "OK");
  CHECK(replies[1].at("message_type") == "QCK^Q02");
  CHECK(replies[1].at("host") == true);
  CHECK(replies[1].at("query_status") == "NF");
  CHECK(replies[2].at("message_type") == "ACK^Q03");
  CHECK(replies[2].at("host") == false);  // the analyser's acknowledgement of the DSR
  const auto downloads = run->of_type("download");
  REQUIRE(downloads.size() == 1);
  CHECK(downloads[0].at("message_type") == "DSR^Q03");
  CHECK(downloads[0].at("host") == true);
}

TEST_CASE("replay hl7: conformant host ACKs are read as replies") {
  auto ack = replay_capture("hl7/hmis-lims-ack-r22-to-ba400.hl7");
  if (!ack) return;
  REQUIRE(ack->status == 0);
  auto r = ack->of_type("reply");
  REQUIRE(r.size() == 1);
  CHECK(r[0].at("ack_code") == "AA");
  CHECK(r[0].at("acknowledged_id") == "d601358d-e7f2-4660-88fc-18ae60380614");
  CHECK(r[0].at("host") == true);  // ACK^R22: the host's acknowledgement of a result message

  auto ar = replay_capture("hl7/mindray-cl1000i-ack-r01-ar-error206-manual.txt");
  REQUIRE(ar->status == 0);
  auto rr = ar->of_type("reply");
  REQUIRE(rr.size() == 1);
  CHECK(rr[0].at("ack_code") == "AR");
  CHECK(rr[0].at("error_code") == "206");
}

TEST_CASE("replay hl7: the cobas pure host ACKs are usable but their defects are named") {
  auto run = replay_capture("hl7/roche-cobaspure-host-ack-to-oul-r22-mllp.hl7");
  if (!run) return;
  CHECK(run->status == 0);  // usable: the analyser accepted it
  auto r = run->of_type("reply");
  REQUIRE(r.size() == 1);
  CHECK(r[0].at("ack_code") == "AA");
  CHECK(r[0].at("usable") == true);
  CHECK_FALSE(r[0].at("findings").empty());
  CHECK(run->err.find("not terminated by CR") != std::string::npos);
}

TEST_CASE("replay hl7: the malformed RSP^K11 is a clear error naming its defects, not a crash") {
  auto run = replay_capture("hl7/hmis-lims-rsp-k11-to-ba400.txt");
  if (!run) return;
  CHECK(run->status == 1);
  auto r = run->of_type("reply");
  REQUIRE(r.size() == 1);
  CHECK(r[0].at("usable") == false);
  CHECK(run->err.find("MSH fields shifted") != std::string::npos);
}

TEST_CASE("replay hl7: equipment status is seen, not forwarded") {
  auto run = replay_capture("hl7/roche-cobaspure-esu-u01-status-mllp.hl7");
  if (!run) return;
  REQUIRE(run->status == 0);
  CHECK(run->of_type("result").empty());
  REQUIRE(run->of_type("message").size() == 1);
}

TEST_CASE("replay hl7: no sample id where the profile looks -- the warning names the profiles that read one") {
  // Issue #19 (as ASTM does for EUROIMMUN P.4): a BA400 LAW message read with the Mindray profile,
  // which looks for the sample id in OBR-3 / OBR-2 only (BA400 leaves them `""`; the id is SPM-2).
  auto run = replay_capture("hl7/biosystems-ba400-oul-r22-single-result.hl7", "mindray-cl");
  if (!run) return;
  const auto res = run->of_type("result");
  REQUIRE(res.size() == 1);
  CHECK(res[0].value("sample_id_missing", false));
  CHECK(run->err.find("profile \"biosystems-ba400\" reads the sample id from SPM-2") != std::string::npos);
  CHECK(run->err.find("configure the analyser's profile on the device [HL7-106]") != std::string::npos);
}

TEST_CASE("replay hl7: Mindray CL QC without the profile -- a warning with its code names mindray-cl") {
  auto run = replay_capture("hl7/mindray-cl1000i-oru-r01-qc-manual.txt");
  if (!run) return;
  CHECK(run->of_type("result").empty());
  CHECK(run->err.find("OBR segment(s) with no OBX carry values (OBR-5,6,7,8,11,12,13,14,15,16,17,18,19,20,21,30)") !=
        std::string::npos);
  CHECK(run->err.find("profile \"mindray-cl\" reads 1 result(s): configure the analyser's profile on the device "
                      "[HL7-109]") != std::string::npos);
}
