// Capture-driven expectations: every value below was read off the capture text against
// hl7-facts.md (field positions), not taken from the program's output.
#include <catch2/catch.hpp>

#include <string>

#include "hl7_test_helpers.hpp"
#include "parsers/hl7/normalise.hpp"
#include "support/files.hpp"

using namespace interfaced::hl7;
using interfaced::result;

namespace {

std::optional<hl7_batch> from_capture(const char* file, const hl7_options& o = {}) {
  const auto bytes = interfaced::test::capture(std::string("hl7/") + file);
  if (!bytes) return std::nullopt;
  const std::string text = test::unframe(*bytes);
  // The batch owns its strings; the text may go.
  return normalise(text, o, "dev");
}

struct row {
  const char* sample;
  const char* code;
  const char* name;
  const char* value;
  double numeric;
  const char* unit;
  std::vector<std::string> flags;
  const char* observed_at;
};

void check_rows(const hl7_batch& b, const std::vector<row>& rows) {
  REQUIRE(!b.error);
  REQUIRE(b.results.size() == rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const result& r = b.results[i];
    INFO("result " << i << " " << r.code);
    CHECK(r.protocol == interfaced::protocol::hl7);
    CHECK(r.device == "dev");
    CHECK(r.sample_id == rows[i].sample);
    CHECK(r.code == rows[i].code);
    CHECK(r.name == rows[i].name);
    CHECK(r.value == rows[i].value);
    REQUIRE(r.numeric.has_value());
    CHECK(*r.numeric == Approx(rows[i].numeric));
    CHECK(r.unit == rows[i].unit);
    CHECK(r.flags == rows[i].flags);
    CHECK(r.observed_at == rows[i].observed_at);
    CHECK(r.status == "F");
    CHECK(!r.qc);
    CHECK(!r.rerun_indicator);
  }
}

}  // namespace

TEST_CASE("normalise capture: BA400 single result", "[hl7][normalise][capture]") {
  const auto b = from_capture("biosystems-ba400-oul-r22-single-result.hl7");
  if (!b) return;
  check_rows(*b, {{"CHECK",
                   "CHOLESTEROL",
                   "CHOLESTEROL",
                   "297.032776",
                   297.032776,
                   "mg/dL",
                   {"NONE"},
                   "20230513164804"}});
  const result& r = b->results[0];
  CHECK(r.instrument == "A400");
  CHECK(r.reference_range.empty());
  CHECK(r.where.record_index == 5);
  CHECK(b->message_type == "OUL^R22");
  CHECK(b->control_id == "d601358d-e7f2-4660-88fc-18ae60380614");
  CHECK(b->version == "2.5.1");
  CHECK(b->encoding == interfaced::text_encoding::utf8);  // MSH-18 UNICODE UTF-8
  CHECK(b->diagnostics.empty());
}

TEST_CASE("normalise capture: BA400 three tests with remark 025", "[hl7][normalise][capture]") {
  const auto b = from_capture("biosystems-ba400-oul-r22-three-tests-flag025.hl7");
  if (!b) return;
  const char* s = "DAYAWATHI32988998";
  check_rows(*b, {{s,
                   "CHOL HDL DIRECT",
                   "CHOL HDL DIRECT",
                   "60.9779778",
                   60.9779778,
                   "mg/dL",
                   {"025"},
                   "20230511222533"},
                  {s,
                   "CHOLESTEROL",
                   "CHOLESTEROL",
                   "177.710159",
                   177.710159,
                   "mg/dL",
                   {"NONE"},
                   "20230511222036"},
                  {s,
                   "TRIGLYCERIDES",
                   "TRIGLYCERIDES",
                   "52.4089546",
                   52.4089546,
                   "mg/dL",
                   {"NONE"},
                   "20230511222036"}});
  // A profile can say `NONE` means no flag.
  hl7_options o;
  o.drop_flags = {"NONE"};
  const auto d = from_capture("biosystems-ba400-oul-r22-three-tests-flag025.hl7", o);
  REQUIRE(d->results.size() == 3);
  CHECK(d->results[0].flags == std::vector<std::string>{"025"});
  CHECK(d->results[1].flags.empty());
}

TEST_CASE("normalise capture: BA400 re-export: same results, new MSH-10",
          "[hl7][normalise][capture]") {
  const auto a = from_capture("biosystems-ba400-oul-r22-reexport-a.hl7");
  const auto b = from_capture("biosystems-ba400-oul-r22-reexport-b.hl7");
  if (!a || !b) return;
  const char* s = "SUGATH 33002946";
  const std::vector<row> rows{{s,
                               "CHOL HDL DIRECT",
                               "CHOL HDL DIRECT",
                               "45.4445686",
                               45.4445686,
                               "mg/dL",
                               {"025"},
                               "20230512133811"},
                              {s,
                               "CHOLESTEROL",
                               "CHOLESTEROL",
                               "263.449738",
                               263.449738,
                               "mg/dL",
                               {"NONE"},
                               "20230512133314"},
                              {s,
                               "TRIGLYCERIDES",
                               "TRIGLYCERIDES",
                               "141.562149",
                               141.562149,
                               "mg/dL",
                               {"NONE"},
                               "20230512133314"}};
  check_rows(*a, rows);
  check_rows(*b, rows);
  CHECK(a->control_id == "26629c58-6dcd-45d8-a9b9-ece1b3f00b60");
  CHECK(b->control_id == "ebb9d356-8b39-415f-b7b2-261bea1b8005");
}

TEST_CASE("normalise capture: BA400 repeat run: same test, new value and time",
          "[hl7][normalise][capture]") {
  const auto a = from_capture("biosystems-ba400-oul-r22-repeat-run-a.hl7");
  const auto b = from_capture("biosystems-ba400-oul-r22-repeat-run-b.hl7");
  if (!a || !b) return;
  check_rows(*a, {{"MALANI 33012553",
                   "GLUCOSE",
                   "GLUCOSE",
                   "323.308502",
                   323.308502,
                   "mg/dL",
                   {"NONE"},
                   "20230512184112"}});
  check_rows(*b, {{"MALANI 33012553",
                   "GLUCOSE",
                   "GLUCOSE",
                   "325.980804",
                   325.980804,
                   "mg/dL",
                   {"NONE"},
                   "20230512190105"}});
  CHECK(a->control_id == "461d94b4-091b-49d7-a961-fe4ee83e8c65");
  CHECK(b->control_id == "bd551baf-dfe7-4ab5-bb45-71e97465732f");
}

TEST_CASE("normalise capture: BA400 QBP^Q11 is a query", "[hl7][normalise][capture]") {
  const auto b = from_capture("biosystems-ba400-qbp-q11-lab27.hl7");
  if (!b) return;
  REQUIRE(!b->error);
  CHECK(b->message_type == "QBP^Q11");
  CHECK(b->results.empty());
  REQUIRE(b->queries.size() == 1);
  const interfaced::query& q = b->queries[0];
  CHECK(q.protocol == interfaced::protocol::hl7);
  CHECK(q.sample_ids == std::vector<std::string>{"33032646"});
  CHECK(q.tag == "7e3fe271b7af415b996ea9e142014521");
  CHECK(q.status_code == "WOS");
  CHECK(!q.all_samples);
  CHECK(q.where.record_index == 2);
}

TEST_CASE("normalise capture: cobas pure OUL^R22", "[hl7][normalise][capture]") {
  const auto b = from_capture("roche-cobaspure-oul-r22-lab29-mllp.hl7");
  if (!b) return;
  // The main NM OBX of each of the five OBR groups; CE companions (`^^99ROC`, no text) and the
  // IHELAW supplemental OBX 3-9 are left out by default.
  const char* s = "130578";
  check_rows(*b, {{s, "20130", "20130", "29.9", 29.9, "U/L", {"N"}, "20230215145346"},
                  {s, "20220", "20220", "20.9", 20.9, "U/L", {"N"}, "20230215145354"},
                  {s, "20411", "20411", "214", 214, "mg/dL", {"N"}, "20230215145402"},
                  {s, "20630", "20630", "84.8", 84.8, "mg/dL", {"N"}, "20230215145410"},
                  {s, "21130", "21130", "117", 117, "mg/dL", {"N"}, "20230215145418"}});
  for (const result& r : b->results) {
    CHECK(r.instrument == "c303");
  }
  CHECK(b->results[0].where.record_index == 8);  // MSH PID SPM SAC OBR ORC TQ1 OBX
  CHECK(b->control_id == "3");

  hl7_options all;
  all.include_supplemental = true;
  all.skip_empty_values = false;
  const auto full = from_capture("roche-cobaspure-oul-r22-lab29-mllp.hl7", all);
  REQUIRE(full->results.size() == 45);     // 5 x OBX 1..9
  const result& qctid = full->results[4];  // OBX|5|EI|QCTID^QC Test ID...
  CHECK(qctid.code == "QCTID");
  CHECK(qctid.name == "QC Test ID");
  CHECK(qctid.value == "3555~3541");  // as sent
  CHECK(!qctid.numeric);
  const result& qcstate = full->results[5];  // OBX|6|CE|QCSTATE...|1^^99ROC
  CHECK(qcstate.value == "1");
  CHECK(!qcstate.numeric);  // coded, not a measurement
  const result& limit = full->results[6];
  CHECK(limit.value == "5.00 - 700");
  CHECK(!limit.numeric);
  CHECK(full->results[1].value.empty());  // CE `^^99ROC`
}

TEST_CASE("normalise capture: cobas pure ESU^U01 is accepted and ignored",
          "[hl7][normalise][capture]") {
  const auto b = from_capture("roche-cobaspure-esu-u01-status-mllp.hl7");
  if (!b) return;
  CHECK(!b->error);
  CHECK(b->ignored);
  CHECK(b->message_type == "ESU^U01");
  CHECK(b->results.empty());
}

TEST_CASE("normalise capture: Mindray CL ORU^R01 from the manual", "[hl7][normalise][capture]") {
  const auto text = interfaced::test::capture("hl7/mindray-cl1000i-oru-r01-patient-manual.txt");
  if (!text) return;
  const auto msgs = test::messages_of(test::decode_all(test::manual_to_stream(*text)));
  REQUIRE(msgs.size() == 1);
  // Mindray 2.3.1: OBX-3 test number, OBX-4 test name, OBR-3 sample id (facts §9).
  hl7_options o;
  o.name = {"OBX", 4, 1, 0};
  o.qc_when.push_back({{"MSH", 16, 1, 0}, "2"});
  const hl7_batch b = normalise(msgs[0], o, "dev");
  check_rows(b, {{"10", "2", "TBil", "100", 100, "umol/L", {"N"}, "20120405194245"},
                 {"10", "5", "ALT", "98.2", 98.2, "umol/L", {"N"}, "20120405194403"},
                 // OBX-14 empty: the order's OBR-7
                 {"10", "6", "AST", "26.4", 26.4, "umol/L", {"N"}, "20120405193914"}});
  CHECK(b.results[0].reference_range == "-");
  CHECK(b.encoding == interfaced::text_encoding::latin1);  // MSH-18 ASCII
  CHECK(b.control_id == "1");
  CHECK(b.version == "2.3.1");
}

TEST_CASE("normalise capture: Mindray CL QC ORU (MSH-16 = 2, no OBX)",
          "[hl7][normalise][capture]") {
  const auto text = interfaced::test::capture("hl7/mindray-cl1000i-oru-r01-qc-manual.txt");
  if (!text) return;
  const auto msgs = test::messages_of(test::decode_all(test::manual_to_stream(*text)));
  REQUIRE(msgs.size() == 1);
  hl7_options o;
  o.qc_when.push_back({{"MSH", 16, 1, 0}, "2"});
  const hl7_batch b = normalise(msgs[0], o, "dev");
  CHECK(!b.error);
  CHECK(b.results.empty());  // QC values sit in OBR fields: not read (see report)
  // ...but never silently: a warning names the OBR fields that held values (manual §1.2.4, QC
  // test results: OBR-20 the concentration, OBR-21 its unit).
  REQUIRE(b.diagnostics.size() == 1);
  CHECK(b.diagnostics[0].error == normalise_error::no_results);
  CHECK(b.diagnostics[0].segment_index == 2);  // the OBR
  CHECK(b.diagnostics[0].detail.find("OBR-5,6,7,8,11,12,13,14,15,16,17,18,19,20,21,30") != std::string::npos);
  message m;
  REQUIRE(!parse_message(msgs[0], m));
  // The PDF wrap inside OBR-13 was undone by the extraction: control name QUAL2, lot 2222.
  const auto obr = m.find("OBR");
  REQUIRE(obr);
  CHECK(m.segment(*obr).field(13).raw() == "QUAL2");
  CHECK(m.segment(*obr).field(14).raw() == "2222");
}

TEST_CASE("normalise capture: Mindray query session from the manual", "[hl7][normalise][capture]") {
  const auto text =
      interfaced::test::capture("hl7/mindray-cl1000i-query-by-barcode-session-manual.txt");
  if (!text) return;
  const auto msgs = test::messages_of(test::decode_all(test::manual_to_stream(*text)));
  REQUIRE(msgs.size() == 5);  // QRY^Q02, QCK^Q02 (OK), QCK^Q02 (NF), DSR^Q03, ACK^Q03
  const hl7_batch qry = normalise(msgs[0], {}, "dev");
  REQUIRE(!qry.error);
  REQUIRE(qry.queries.size() == 1);
  CHECK(qry.queries[0].sample_ids == std::vector<std::string>{"0019"});  // QRD-8
  CHECK(normalise(msgs[1], {}, "dev").ignored);
  CHECK(normalise(msgs[4], {}, "dev").ignored);
  // The DSR is the host's download: not something an analyser sends us.
  const hl7_batch dsr = normalise(msgs[3], {}, "dev");
  CHECK(dsr.error == normalise_error::unknown_message_type);
  REQUIRE(!dsr.diagnostics.empty());
  CHECK(dsr.diagnostics[0].segment_index == 1);
  CHECK(dsr.diagnostics[0].field == 9);
  message m;
  REQUIRE(!parse_message(msgs[3], m));
  CHECK(m.segment_count() == 38);  // MSH MSA ERR QAK QRD QRF, 31 DSP, DSC
  CHECK(m.segment(36).raw() == "DSP|31||5^^^|||");
}

TEST_CASE("normalise capture: BA400 resend log: same MSH-10 three times, LF segments",
          "[hl7][normalise][capture]") {
  const auto log = interfaced::test::capture("hl7/biosystems-ba400-limsmw-resend-session-log.txt");
  if (!log) return;
  const auto encoded = test::after_marker(*log, "Message Received from Analyzer Encoded = ");
  REQUIRE(encoded.size() == 5);  // 3 x the OUL^R22, 2 x a QBP^Q11
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    const std::string bytes = test::base64_decode(encoded[i]);
    INFO("message " << i);
    // The logged bytes use LF segment ends, and the OULs were cut at the middleware's 1024-byte
    // buffer: they must still parse as far as they go.
    CHECK(bytes.find('\r') == std::string::npos);
    const hl7_batch b = normalise(bytes, {}, "dev");
    REQUIRE(!b.error);
    if (i < 3) {
      CHECK(b.control_id == "11b511e6-4655-4643-9bce-e5bfff81aa3a");
      REQUIRE(b.results.size() >= 3);
      CHECK(b.results[0].sample_id == "MANORI32983187");
      CHECK(b.results[0].code == "ALT-GPT");
      CHECK(b.results[0].value == "38.4902458");
      CHECK(b.results[0].unit == "U/L");
      CHECK(b.results[0].observed_at == "20230511200409");
      CHECK(b.results[2].code == "CREATININE");
      CHECK(b.results[2].observed_at == "20230511200136");
    } else {
      REQUIRE(b.queries.size() == 1);
      CHECK(b.queries[0].sample_ids == std::vector<std::string>{"32971968"});
    }
  }
}

TEST_CASE("normalise capture: every incomplete prefix normalises without crashing",
          "[hl7][normalise][capture]") {
  for (const char* file :
       {"biosystems-ba400-oul-r22-three-tests-flag025.hl7", "biosystems-ba400-qbp-q11-lab27.hl7",
        "roche-cobaspure-oul-r22-lab29-mllp.hl7", "hmis-lims-ack-r22-to-ba400.hl7"}) {
    const auto bytes = interfaced::test::capture(std::string("hl7/") + file);
    if (!bytes) return;
    const std::string text = test::unframe(*bytes);
    const hl7_batch full = normalise(text, {}, "dev");
    const std::size_t step = text.size() > 2000 ? 3 : 1;
    std::size_t last_count = 0;
    for (std::size_t n = 0; n <= text.size(); n += step) {
      const std::string prefix = text.substr(0, n);
      const hl7_batch b = normalise(prefix, {}, "dev");
      INFO(file << " prefix " << n);
      // Results only ever grow as the text does, and never beyond the full message's.
      REQUIRE(b.results.size() >= last_count);
      REQUIRE(b.results.size() <= full.results.size() + 1);
      last_count = b.results.size();
    }
  }
}
