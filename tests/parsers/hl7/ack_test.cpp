#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <tuple>

#include "hl7_test_helpers.hpp"
#include "parsers/hl7/ack.hpp"
#include "parsers/hl7/builders.hpp"
#include "parsers/hl7/normalise.hpp"
#include "support/files.hpp"

using namespace interfaced::hl7;

namespace {

const std::string ba400_oul =
    "MSH|^~\\&|BA400|Biosystems|Host|Host provider|20230513111804||OUL^R22^OUL_R22|"
    "d601358d-e7f2-4660-88fc-18ae60380614|P|2.5.1|||ER|AL||UNICODE UTF-8|||LAB-29^IHE\r"
    "SPM|1|CHECK||SER|||||||P|||||||\r"
    "OBR||\"\"||CHOLESTEROL^CHOLESTEROL^A400|||||||||||||||||||||||||\r"
    "ORC|OK||||CM||||20230513111804\r"
    "OBX|1|NM|CHOLESTEROL^CHOLESTEROL^A400||297.032776|mg/dL^mg/dL^A400||NONE|||F|||||ADMIN||"
    "A400^Biosystems~834002355^Biosystems|20230513164804\r";

const std::string mindray_oru =
    "MSH|^~\\&|||||20120508094822||ORU^R01|1|P|2.3.1||||0||ASCII|||\r"
    "OBR|1|12345678|10|^|Y\rOBX|1|NM|2|TBil|100| umol/L |-|N|||F||100|20120405194245||yishen|0|\r";

message parsed(std::string_view text) {
  message m;
  REQUIRE(!parse_message(text, m));
  return m;
}

ack_options mindray_ack() {
  // Mindray CL host interface manual: `MSA|AA|<id>|Message accepted|||0|`, AR code in MSA-6,
  // MSH-16 echoed, no ERR, the manual's trailing empty fields.
  ack_options o;
  o.accept_text = "Message accepted";
  o.accept_code = "0";
  o.code_in_msa_6 = true;
  o.err_segment = false;
  o.echo_msh_16 = true;
  o.msh_min_fields = 21;
  o.msa_min_fields = 7;
  return o;
}

using problem_key = std::tuple<response_error, std::size_t, std::size_t>;
std::set<problem_key> keys(const response_report& r) {
  std::set<problem_key> out;
  for (const auto& p : r.problems) {
    out.emplace(static_cast<response_error>(p.error.value()), p.segment_index, p.field);
    CHECK(p.error.category() == response_category());
  }
  return out;
}

}  // namespace

TEST_CASE("ack: AA for a LAW OUL^R22", "[hl7][ack]") {
  const message m = parsed(ba400_oul);
  const std::string ack =
      build_ack(m, {.code = ack_code::aa, .control_id = "45801", .timestamp = "20230513111838"});
  CHECK(ack ==
        "MSH|^~\\&|Host|Host provider|BA400|Biosystems|20230513111838||ACK^R22^ACK|45801|P|2.5.1"
        "||||||UNICODE UTF-8\r"
        "MSA|AA|d601358d-e7f2-4660-88fc-18ae60380614\r");
  // And it reads back as a good answer to that message.
  const response_report r =
      check_response(ack, {.control_id = "d601358d-e7f2-4660-88fc-18ae60380614",
                           .trigger = "R22",
                           .application = "BA400"});
  CHECK(r.conformant());
  CHECK(r.accepted());
}

TEST_CASE("ack capture: we produce what the BA400's LIS sent", "[hl7][ack][capture]") {
  const auto in = interfaced::test::capture("hl7/biosystems-ba400-oul-r22-single-result.hl7");
  const auto expected = interfaced::test::capture("hl7/hmis-lims-ack-r22-to-ba400.hl7");
  if (!in || !expected) return;
  ack_options o;
  o.echo_charset = false;  // that LIS did not echo MSH-18
  const std::string ack = build_ack(
      *in, {.code = ack_code::aa, .control_id = "45801", .timestamp = "20230513111838.607+0530"},
      o);
  CHECK(ack == *expected);
}

TEST_CASE("ack capture: Mindray manual ACK^R01 AA and AR 206", "[hl7][ack][capture]") {
  const auto aa = interfaced::test::capture("hl7/mindray-cl1000i-ack-r01-aa-manual.txt");
  const auto ar = interfaced::test::capture("hl7/mindray-cl1000i-ack-r01-ar-error206-manual.txt");
  if (!aa || !ar) return;
  const auto aa_msgs = test::messages_of(test::decode_all(test::manual_to_stream(*aa)));
  const auto ar_msgs = test::messages_of(test::decode_all(test::manual_to_stream(*ar)));
  REQUIRE(aa_msgs.size() == 1);
  REQUIRE(ar_msgs.size() == 1);
  const message m = parsed(mindray_oru);
  CHECK(build_ack(m, {.code = ack_code::aa, .control_id = "1", .timestamp = "20120508094823"},
                  mindray_ack()) == aa_msgs[0]);
  CHECK(build_ack(m,
                  {.code = ack_code::ar,
                   .control_id = "1",
                   .timestamp = "20120508094823",
                   .error_code = "206",
                   .error_text = "Application query error"},
                  mindray_ack()) == ar_msgs[0]);
  // As a host reply, the manual's ACKs are usable; MSH-16 carries Mindray's sample kind.
  const response_report ra = check_response(aa_msgs[0], {.control_id = "1", .trigger = "R01"});
  CHECK(ra.accepted());
  CHECK(ra.text == "Message accepted");
  CHECK(ra.error_code == "0");
  CHECK(keys(ra) == std::set<problem_key>{{response_error::ack_type_on_response, 1, 16}});
  const response_report rr = check_response(ar_msgs[0], {.control_id = "1"});
  CHECK(rr.usable());
  CHECK(!rr.accepted());
  CHECK(rr.ack_code == "AR");
  CHECK(rr.error_code == "206");
  CHECK(rr.text == "Application query error");
}

TEST_CASE("ack: AE / AR carry ERR (2.5 layout and 2.3.1 layout)", "[hl7][ack]") {
  const message m = parsed(ba400_oul);
  const std::string ae = build_ack(m, {.code = ack_code::ae,
                                       .control_id = "46",
                                       .timestamp = "2023",
                                       .error_code = "207",
                                       .error_text = "Application internal error",
                                       .error_segment = 5,
                                       .error_field = 5});
  CHECK(ae ==
        "MSH|^~\\&|Host|Host provider|BA400|Biosystems|2023||ACK^R22^ACK|46|P|2.5.1||||||"
        "UNICODE UTF-8\r"
        "MSA|AE|d601358d-e7f2-4660-88fc-18ae60380614|Application internal error\r"
        "ERR||OBX^1^5|207^Application internal error^HL70357|E\r");
  const response_report r =
      check_response(ae, {.control_id = "d601358d-e7f2-4660-88fc-18ae60380614"});
  CHECK(r.usable());
  CHECK(!r.accepted());
  CHECK(r.error_code == "207");

  const message old = parsed(mindray_oru);
  const std::string ar = build_ack(old, {.code = ack_code::ar,
                                         .control_id = "2",
                                         .timestamp = "2012",
                                         .error_code = "101",
                                         .error_text = "Required field | missing",
                                         .error_segment = 3,
                                         .error_field = 3});
  CHECK(ar ==
        "MSH|^~\\&|||||2012||ACK^R01|2|P|2.3.1||||||ASCII\r"
        "MSA|AR|1|Required field \\F\\ missing\r"
        "ERR|OBX^1^3^101&Required field \\F\\ missing&HL70357\r");
  CHECK(check_response(ar).error_code == "101");
  const std::string unlocated = build_ack(old, {.code = ack_code::ae,
                                                .control_id = "3",
                                                .timestamp = "2012",
                                                .error_code = "207",
                                                .error_text = "x"});
  CHECK(unlocated.find("\rERR|^^^207&x&HL70357\r") != std::string::npos);
}

TEST_CASE("ack: options: structure, trigger, profile, own application", "[hl7][ack]") {
  const message m = parsed(ba400_oul);
  ack_options o;
  o.structure = structure_mode::never;
  o.echo_profile = true;
  o.echo_charset = false;
  o.sending_application = "interfaced";
  o.trigger = "R22";
  const std::string ack = build_ack(m, {.control_id = "1", .timestamp = "2023"}, o);
  CHECK(ack.substr(0, ack.find('\r')) ==
        "MSH|^~\\&|interfaced|Host provider|BA400|Biosystems|2023||ACK^R22|1|P|2.5.1"
        "|||||||||LAB-29^IHE");
  o = {};
  o.structure = structure_mode::always;
  const std::string always =
      build_ack(parsed(mindray_oru), {.control_id = "1", .timestamp = "2"}, o);
  CHECK(always.find("|ACK^R01^ACK|") != std::string::npos);
}

TEST_CASE("ack: non-standard delimiters are kept so echoed fields stay valid", "[hl7][ack]") {
  const message m = parsed("MSH#*@!%#AN*X#FAC#HOST#H#2023##ORU*R01#ID!F!1#P#2.3.1\r");
  const std::string ack = build_ack(m, {.code = ack_code::ae,
                                        .control_id = "9",
                                        .timestamp = "2",
                                        .error_code = "207",
                                        .error_text = "a#b"});
  CHECK(ack ==
        "MSH#*@!%#HOST#H#AN*X#FAC#2##ACK*R01#9#P#2.3.1\r"
        "MSA#AE#ID!F!1#a!F!b\r"
        "ERR#***207%a!F!b%HL70357\r");
  message back;
  REQUIRE(!parse_message(ack, back));
  CHECK(back.segment(1).field(2).decode() == "ID#1");
}

TEST_CASE("ack: an unparsable message still gets an answer", "[hl7][ack]") {
  const std::string ack = build_ack(std::string_view("garbage\rPID|1\r"), {.code = ack_code::ar,
                                                                           .control_id = "7",
                                                                           .timestamp = "2023",
                                                                           .error_code = "100",
                                                                           .error_text = "no MSH"});
  CHECK(ack == "MSH|^~\\&|||||2023||ACK|7|P\rMSA|AR||no MSH\rERR|^^^100&no MSH&HL70357\r");
  const response_report r = check_response(ack);
  CHECK(!r.usable());  // MSA-2 empty: it names no message
}

TEST_CASE("check_response: malformed replies are named", "[hl7][ack]") {
  CHECK(keys(check_response("hello")) == std::set<problem_key>{{response_error::unparsable, 0, 0}});
  CHECK(!check_response("hello").usable());
  const auto not_ack = check_response("MSH|^~\\&|A||B||2023||ORU^R01|1|P|2.3.1\rMSA|AA|1\r");
  CHECK(keys(not_ack) == std::set<problem_key>{{response_error::not_a_response, 1, 9}});
  CHECK(keys(check_response("MSH|^~\\&|A||B||2023||ACK|1|P|2.5.1\r")) ==
        std::set<problem_key>{{response_error::missing_msa, 0, 0}});
  CHECK(keys(check_response("MSH|^~\\&|A||B||2023||ACK|1|P|2.5.1\rMSA|OK|5\r")) ==
        std::set<problem_key>{{response_error::bad_ack_code, 2, 1}});
  CHECK(keys(check_response("MSH|^~\\&|A||B||2023||ACK|1|P|2.5.1\rMSA|AA\r")) ==
        std::set<problem_key>{{response_error::missing_acknowledged_id, 2, 2}});
  const auto other =
      check_response("MSH|^~\\&|A||B||2023||ACK|1|P|2.5.1\rMSA|AA|6\r", {.control_id = "5"});
  CHECK(keys(other) == std::set<problem_key>{{response_error::id_mismatch, 2, 2}});
  CHECK(!other.usable());
  for (int e = 0; e <= static_cast<int>(response_error::qpd_mismatch); ++e) {
    CHECK(!make_error_code(static_cast<response_error>(e)).message().empty());
  }
}

TEST_CASE("check_response capture: the LIS's ACK^R22 to the BA400 is fine", "[hl7][ack][capture]") {
  const auto bytes = interfaced::test::capture("hl7/hmis-lims-ack-r22-to-ba400.hl7");
  if (!bytes) return;
  const response_report r =
      check_response(*bytes, {.control_id = "d601358d-e7f2-4660-88fc-18ae60380614",
                              .trigger = "R22",
                              .application = "BA400"});
  CHECK(r.conformant());
  CHECK(r.accepted());
  CHECK(r.message_type == "ACK^R22^ACK");
  CHECK(r.control_id == "45801");
}

TEST_CASE("check_response capture: the LIS's RSP^K11 to the BA400 is non-conformant",
          "[hl7][ack][capture]") {
  const auto text = interfaced::test::capture("hl7/hmis-lims-rsp-k11-to-ba400.txt");
  const auto qbp = interfaced::test::capture("hl7/biosystems-ba400-qbp-q11-lab27.hl7");
  if (!text || !qbp) return;
  // The .txt is the JSON "result" string as text: the message itself, LF between segments.
  const message query = parsed(*qbp);
  const response_report r = check_response(*text, {.control_id = query.msh().field(10).raw(),
                                                   .trigger = "K11",
                                                   .application = query.msh().field(3).raw(),
                                                   .profile = "LAB-27^IHE",
                                                   .query_tag = query.segment(1).field(2).raw(),
                                                   .qpd_3 = query.segment(1).field(3).raw()});
  // MSH is one field short: `|sample id||RSP^K11^RSP_K11|` puts the type in MSH-8, so a
  // conforming analyser reads MSH-9 = the control id. That alone makes the reply unusable.
  CHECK(!r.usable());
  CHECK(r.message_type == "RSP^K11^RSP_K11");                          // read one place back
  CHECK(r.acknowledged_id == "7e3fe271-b7af-415b-996e-a9e142014521");  // MSA-2 is right
  CHECK(r.ack_code == "AA");
  CHECK(r.query_status == "OK");
  CHECK(keys(r) == std::set<problem_key>{
                       {response_error::fields_shifted, 1, 9},         // type in MSH-8
                       {response_error::missing_timestamp, 1, 7},      // empty MSH-7
                       {response_error::lf_segment_separators, 0, 0},  // LF separators
                       {response_error::unterminated_segment, 4, 0},   // nothing after QPD
                       {response_error::ack_type_on_response, 1, 15},  // ER
                       {response_error::ack_type_on_response, 1, 16},  // NE
                       {response_error::wrong_receiver, 1, 5},         // facility name
                       {response_error::wrong_profile, 1, 21},         // LAB27 without dash
                       {response_error::tag_mismatch, 3, 1},           // QAK-1 tag:timestamp
                       {response_error::tag_mismatch, 4, 2},           // QPD-2 likewise
                       {response_error::qpd_mismatch, 4, 3},           // SPM01
                   });
}

TEST_CASE("check_response capture: cobas pure host ACKs", "[hl7][ack][capture]") {
  const auto r22 = interfaced::test::capture("hl7/roche-cobaspure-host-ack-to-oul-r22-mllp.hl7");
  const auto u01 = interfaced::test::capture("hl7/roche-cobaspure-host-ack-u01-mllp.hl7");
  if (!r22 || !u01) return;
  const std::string r22_text = test::unframe(*r22);
  const std::string u01_text = test::unframe(*u01);
  const response_report a = check_response(r22_text, {.control_id = "3", .trigger = "R22"});
  CHECK(a.usable());  // the analyser carried on
  CHECK(a.accepted());
  CHECK(keys(a) == std::set<problem_key>{
                       {response_error::wrong_trigger, 1, 9},          // ACK^U05 for an OUL^R22
                       {response_error::unterminated_segment, 2, 0},   // no CR before 0x1C
                       {response_error::stray_delimiters, 1, 23},      // trailing `||^`
                       {response_error::ack_type_on_response, 1, 15},  // AL
                   });
  const response_report b = check_response(u01_text, {.control_id = "4", .trigger = "U01"});
  CHECK(b.accepted());
  CHECK(keys(b) == std::set<problem_key>{{response_error::unterminated_segment, 2, 0},
                                         {response_error::stray_delimiters, 1, 23},
                                         {response_error::ack_type_on_response, 1, 15}});
}

TEST_CASE("check_response capture: Mindray QCK^Q02 OK and NF", "[hl7][ack][capture]") {
  const auto text =
      interfaced::test::capture("hl7/mindray-cl1000i-query-by-barcode-session-manual.txt");
  if (!text) return;
  const auto msgs = test::messages_of(test::decode_all(test::manual_to_stream(*text)));
  REQUIRE(msgs.size() == 5);
  const response_report ok = check_response(msgs[1], {.control_id = "4", .trigger = "Q02"});
  CHECK(ok.conformant());
  CHECK(ok.query_status == "OK");
  CHECK(check_response(msgs[2]).query_status == "NF");
  CHECK(check_response(msgs[3], {.control_id = "4"}).accepted());  // DSR^Q03 carries MSA too
  CHECK(check_response(msgs[4], {.control_id = "4"}).accepted());  // ACK^Q03
}

TEST_CASE("ack capture: the BA400 resend log's LIS ACKs are accepted", "[hl7][ack][capture]") {
  const auto log = interfaced::test::capture("hl7/biosystems-ba400-limsmw-resend-session-log.txt");
  if (!log) return;
  const auto acks = test::after_marker(*log, "Encoded Message Received from LIMS = ");
  REQUIRE(acks.size() == 3);
  for (const auto& a : acks) {
    const std::string bytes = test::base64_decode(a);  // the report's views point into it
    const response_report r = check_response(
        bytes, {.control_id = "11b511e6-4655-4643-9bce-e5bfff81aa3a", .trigger = "R22"});
    CHECK(r.conformant());
    CHECK(r.accepted());
  }
}

TEST_CASE("builders: RSP^K11 answers the BA400 QBP^Q11", "[hl7][builders][capture]") {
  const auto qbp = interfaced::test::capture("hl7/biosystems-ba400-qbp-q11-lab27.hl7");
  if (!qbp) return;
  const message q = parsed(*qbp);
  const std::string rsp = build_rsp_k11(q, {.control_id = "R1", .timestamp = "20230513092459"});
  CHECK(rsp ==
        "MSH|^~\\&|Host|Host provider|BA400|Biosystems|20230513092459||RSP^K11^RSP_K11|R1|P|2.5.1"
        "||||||UNICODE UTF-8|||LAB-27^IHE\r"
        "MSA|AA|7e3fe271-b7af-415b-996e-a9e142014521\r"
        "QAK|7e3fe271b7af415b996ea9e142014521|OK|WOS^Work Order Step^IHE_LABTF\r"
        "QPD|WOS^Work Order Step^IHE_LABTF|7e3fe271b7af415b996ea9e142014521|33032646\r");
  // Everything the hmis RSP got wrong, this one gets right.
  const response_report r =
      check_response(rsp, {.control_id = "7e3fe271-b7af-415b-996e-a9e142014521",
                           .trigger = "K11",
                           .application = "BA400",
                           .profile = "LAB-27^IHE",
                           .query_tag = "7e3fe271b7af415b996ea9e142014521",
                           .qpd_3 = "33032646"});
  CHECK(r.conformant());
  CHECK(r.accepted());
  const std::string nf = build_rsp_k11(
      q, {.control_id = "R2", .timestamp = "2023", .status = query_status::not_found});
  CHECK(check_response(nf).query_status == "NF");
}

TEST_CASE("builders: OML^O33 round-trips through the parser", "[hl7][builders]") {
  interfaced::order o;
  o.sample_id = "S|1&2";  // delimiters in data must survive
  o.patient_id = "PAT9";
  o.patient_name = "Doe^Jane";
  o.tests = {{"GLU", "Glucose"}, {"NA", "Sodium ^ plasma"}};
  o.priority = "S";
  o.action_code = "NW";
  const std::string oml = build_oml_o33(o, {.sending_application = "interfaced",
                                            .receiving_application = "BA400",
                                            .timestamp = "20230513100000",
                                            .control_id = "O1",
                                            .specimen_type = "SER",
                                            .coding_system = "A400"});
  CHECK(oml.substr(0, oml.find('\r')) ==
        "MSH|^~\\&|interfaced||BA400||20230513100000||OML^O33^OML_O33|O1|P|2.5.1|||NE|AL||"
        "UNICODE UTF-8|||LAB-28^IHE");
  CHECK(oml.find("\rPID|||PAT9||Doe^Jane\r") != std::string::npos);
  CHECK(oml.find("\rSPM|1|S\\F\\1\\T\\2||SER|||||||P\r") != std::string::npos);
  CHECK(oml.find(
            "\rORC|NW|S\\F\\1\\T\\2.1\rTQ1|||||||||S\rOBR|1|S\\F\\1\\T\\2.1||GLU^Glucose^A400\r") !=
        std::string::npos);

  // Through MLLP and back.
  const auto events = test::decode_all(mllp_wrap(oml));
  REQUIRE(events.size() == 1);
  const hl7_batch b = normalise(events[0].message, {}, "ba400");
  REQUIRE(!b.error);
  CHECK(b.message_type == "OML^O33");
  CHECK(b.control_id == "O1");
  REQUIRE(b.orders.size() == 1);
  const interfaced::order& back = b.orders[0];
  CHECK(back.sample_id == o.sample_id);
  CHECK(back.patient_id == o.patient_id);
  CHECK(back.patient_name == o.patient_name);
  CHECK(back.priority == o.priority);
  CHECK(back.action_code == o.action_code);
  REQUIRE(back.tests.size() == 2);
  CHECK(back.tests[0].code == "GLU");
  CHECK(back.tests[1].name == "Sodium ^ plasma");

  // A cancel without patient or priority.
  interfaced::order c;
  c.sample_id = "S2";
  c.action_code = "CA";
  c.tests = {{"K", ""}};
  const std::string cancel = build_oml_o33(c, {.timestamp = "2023", .control_id = "O2"});
  CHECK(cancel.find("PID") == std::string::npos);
  CHECK(cancel.find("TQ1") == std::string::npos);
  const hl7_batch cb = normalise(cancel, {}, "x");
  REQUIRE(cb.orders.size() == 1);
  CHECK(cb.orders[0].action_code == "CA");
  CHECK(cb.orders[0].tests.at(0).code == "K");
}

TEST_CASE("decide_ack: AR for unreadable or unsupported, AA otherwise", "[hl7][ack]") {
  {
    const hl7_batch b = normalise(ba400_oul, {}, "dev");
    const ack_decision d = decide_ack(b);
    CHECK(d.code == ack_code::aa);
    CHECK(d.error_code.empty());
  }
  {
    const std::string adt = "MSH|^~\\&|A||B||2023||ADT^A01|77|P|2.5.1\rPID|1\r";
    const hl7_batch b = normalise(adt, {}, "dev");
    const ack_decision d = decide_ack(b);
    CHECK(d.code == ack_code::ar);
    CHECK(d.error_code == "200");
    CHECK(d.error_segment == 1);
    CHECK(d.error_field == 9);
    const std::string ack = build_ack(std::string_view(adt), d.request("A1", "2024"));
    CHECK(ack ==
          "MSH|^~\\&|B||A||2024||ACK^A01^ACK|A1|P|2.5.1\r"
          "MSA|AR|77|unsupported HL7 message type\r"
          "ERR||MSH^1^9|200^unsupported HL7 message type^HL70357|E\r");
  }
  {
    const hl7_batch b = normalise(std::string_view("OBX|1\r"), {}, "dev");
    CHECK(decide_ack(b).code == ack_code::ar);
    CHECK(decide_ack(b).error_code == "100");
  }
  {
    const hl7_batch b =
        normalise(std::string_view("MSH|^~\\&|A||B||2023||ORU^R01||P|2.3.1\r"), {}, "dev");
    CHECK(decide_ack(b).error_code == "101");
    CHECK(decide_ack(b).error_field == 10);
  }
}
