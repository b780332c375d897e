#include <catch2/catch.hpp>

#include <string>

#include "parsers/hl7/normalise.hpp"

using namespace interfaced::hl7;

namespace {

const std::string msh_251 =
    "MSH|^~\\&|AN|LAB|HOST|H|20230101120000||OUL^R22^OUL_R22|C1|P|2.5.1|||NE|AL||UNICODE UTF-8\r";

hl7_batch run(const std::string& text, const hl7_options& o = {}) {
  return normalise(text, o, "dev", {.message_index = 7, .record_index = 0, .byte_offset = 1234});
}

}  // namespace

TEST_CASE("normalise: fatal errors name the place", "[hl7][normalise]") {
  {
    const hl7_batch b = run("PID|1\rOBX|1\r");
    CHECK(b.error == message_error::no_msh);
    REQUIRE(!b.diagnostics.empty());
    CHECK(b.diagnostics[0].segment_index == 1);
  }
  {
    const hl7_batch b = run("MSH|^~\\&|A|B|C|D|2023||ORU^R01||P|2.3.1\rOBX|1|NM|X||1\r");
    CHECK(b.error == normalise_error::missing_control_id);
    REQUIRE(!b.diagnostics.empty());
    CHECK(b.diagnostics[0].segment_index == 1);
    CHECK(b.diagnostics[0].field == 10);
    CHECK(b.results.empty());
  }
  {
    const hl7_batch b = run("MSH|^~\\&|A|B|C|D|2023||ADT^A01|9|P|2.3.1\rPID|1\r");
    CHECK(b.error == normalise_error::unknown_message_type);
    CHECK(b.message_type == "ADT^A01");
    CHECK(b.control_id == "9");  // still there, so the daemon can send AR
    REQUIRE(!b.diagnostics.empty());
    CHECK(b.diagnostics[0].field == 9);
    CHECK(b.diagnostics[0].detail == "ADT^A01");
  }
  {
    const hl7_batch b = run("MSH|^~\\&|A|B|C|D|2023|||9|P|2.3.1\r");
    CHECK(b.error == normalise_error::missing_message_type);
  }
  CHECK(make_error_code(normalise_error::unknown_message_type).category() == normalise_category());
  for (int e = 0; e <= static_cast<int>(normalise_error::obx_outside_order); ++e) {
    CHECK(!make_error_code(static_cast<normalise_error>(e)).message().empty());
  }
}

TEST_CASE("normalise: sample id order SPM-2, OBR-3, OBR-2", "[hl7][normalise]") {
  auto sample_of = [](const std::string& segs, const hl7_options& o = {}) {
    const hl7_batch b = run(msh_251 + segs + "OBX|1|NM|GLU||5\r", o);
    REQUIRE(b.results.size() == 1);
    return b.results[0].sample_id;
  };
  CHECK(sample_of("SPM|1|S1&BARCODE\rOBR|1|P2|F3|GLU\r") == "S1");
  CHECK(sample_of("SPM|1|^S9&ROCHE\rOBR|1|P2|F3|GLU\r") == "S9");  // EIP filler component
  CHECK(sample_of("SPM|1|\"\"\rOBR|1|P2|F3|GLU\r") == "F3");       // null is absent
  CHECK(sample_of("OBR|1|P2|F3|GLU\r") == "F3");
  CHECK(sample_of("OBR|1|P2|\"\"|GLU\r") == "P2");
  CHECK(sample_of("OBR|1|P2^X||GLU\r") == "P2");
  hl7_options o;
  o.sample_id_from = {{"OBR", 2, 1, 0}};
  CHECK(sample_of("SPM|1|S1\rOBR|1|P2|F3|GLU\r", o) == "P2");
  o.sample_id_from = {{"PID", 3, 1, 0}};
  CHECK(sample_of("PID|||PAT1^^^^MR\rOBR|1|P2|F3|GLU\r", o) == "PAT1");
  // Nothing anywhere: a warning, the result is kept.
  const hl7_batch b = run(msh_251 + "OBR|1\rOBX|1|NM|GLU||5\r");
  REQUIRE(b.results.size() == 1);
  CHECK(b.results[0].sample_id.empty());
  REQUIRE(b.diagnostics.size() == 1);
  CHECK(b.diagnostics[0].error == normalise_error::missing_sample_id);
  CHECK(b.diagnostics[0].segment_index == 3);
}

TEST_CASE("normalise: a new SPM group never reads the previous group's OBR", "[hl7][normalise]") {
  const hl7_batch b = run(msh_251 +
                          "SPM|1|S1\rOBR|1|\"\"|F1|A\rOBX|1|NM|A||1\r"
                          "SPM|2|\rOBR|1|\"\"|F2|B\rOBX|1|NM|B||2\r");
  REQUIRE(b.results.size() == 2);
  CHECK(b.results[0].sample_id == "S1");
  CHECK(b.results[1].sample_id == "F2");
  CHECK(b.results[1].where.record_index == 7);
  CHECK(b.results[1].where.message_index == 7);
  CHECK(b.results[1].where.byte_offset == 1234);
}

TEST_CASE("normalise: values as sent, numeric when plainly numeric", "[hl7][normalise]") {
  const hl7_batch b = run(msh_251 +
                          "SPM|1|S\rOBR|1\r"
                          "OBX|1|NM|A||***.**\r"
                          "OBX|2|ST|B||<0.01\r"
                          "OBX|3|ST|C||ValueNotSet\r"
                          "OBX|4|NM|D|| -1.50 \r"
                          "OBX|5|NM|E||+3\r"
                          "OBX|6|ST|F||a\\F\\b\\S\\c\r"
                          "OBX|7|NM|G||1e3\r"
                          "OBX|8|NM|H||7,41\r"
                          "OBX|9|CWE|I||POS^Positive^L\r"
                          "OBX|10|NM|J||.5\r");
  REQUIRE(b.results.size() == 10);
  CHECK(b.results[0].value == "***.**");
  CHECK(!b.results[0].numeric);
  CHECK(b.results[1].value == "<0.01");
  CHECK(!b.results[1].numeric);
  CHECK(b.results[2].value == "ValueNotSet");
  CHECK(!b.results[2].numeric);
  CHECK(b.results[3].value == "-1.50");
  CHECK(b.results[3].numeric == -1.5);
  CHECK(b.results[4].numeric == 3);
  CHECK(b.results[5].value == "a|b^c");
  CHECK(!b.results[6].numeric);  // exponent: not "plainly" a number
  CHECK(!b.results[7].numeric);  // HL7 NM uses '.'
  CHECK(b.results[8].value == "POS");
  CHECK(b.results[9].numeric == 0.5);
}

TEST_CASE("normalise: unit, range, flags, status, instrument, times", "[hl7][normalise]") {
  const hl7_batch b = run(msh_251 +
                          "SPM|1|S\rOBR|1||||||20230101080000\r"
                          "OBX|1|NM|GLU^Glucose^L||5.5| mmol/L ^^UCUM|3.9-6.1|H^^HL70078~~\"\"~A|||"
                          "F|||20230101090000||||c303^ROCHE~2272^ROCHE|20230101100000\r"
                          "OBX|2|NM|K||4||||||F|||20230101090000\r"
                          "OBX|3|NM|NA||140||||||F\r"
                          "OBX|4|NM|UREA||5|mg\\Z01\\dL\r");
  REQUIRE(b.results.size() == 4);
  const auto& r = b.results[0];
  CHECK(r.code == "GLU");
  CHECK(r.name == "Glucose");
  CHECK(r.unit == "mmol/L");
  CHECK(r.reference_range == "3.9-6.1");
  CHECK(r.flags == std::vector<std::string>{"H", "A"});
  CHECK(r.status == "F");
  CHECK(r.instrument == "c303");
  CHECK(r.observed_at == "20230101100000");             // OBX-19
  CHECK(b.results[1].observed_at == "20230101090000");  // OBX-14
  CHECK(b.results[2].observed_at == "20230101080000");  // OBR-7
  CHECK(b.results[3].unit == "mg\\Z01\\dL");            // vendor escape passed through
}

TEST_CASE("normalise: QC from MSH-11, SPM-11, options", "[hl7][normalise]") {
  const std::string body = "SPM|1|S||SER|||||||P^^HL70369\rOBR|1\rOBX|1|NM|A||1\r";
  CHECK(!run(msh_251 + body).results.at(0).qc);
  std::string qc_spm = body;
  qc_spm.replace(qc_spm.find("|P^^"), 4, "|Q^^");
  CHECK(run(msh_251 + qc_spm).results.at(0).qc);
  const std::string msh_q = "MSH|^~\\&|BC|M|||20230101||ORU^R01|5|Q|2.3.1||||||UNICODE\r";
  CHECK(run(msh_q + "OBR|1||S1\rOBX|1|NM|WBC||5.1\r").results.at(0).qc);
  hl7_options all;
  all.all_qc = true;
  CHECK(run(msh_251 + body, all).results.at(0).qc);
  // Mindray MSH-16 = 2 by profile rule.
  const std::string mindray = "MSH|^~\\&|||||2012||ORU^R01|1|P|2.3.1||||2||ASCII\r";
  hl7_options m;
  m.qc_when.push_back({{"MSH", 16, 1, 0}, "2"});
  CHECK(run(mindray + "OBR|1||S1\rOBX|1|NM|1|AST|5\r", m).results.at(0).qc);
  CHECK(!run(mindray + "OBR|1||S1\rOBX|1|NM|1|AST|5\r").results.at(0).qc);
}

TEST_CASE("normalise: rerun indicators OBX-11 C and TCD-8 R/D", "[hl7][normalise]") {
  const hl7_batch b =
      run(msh_251 +
          "SPM|1|S\r"
          "OBR|1||||||||||G\rOBX|1|NM|A||1||||||C\r"
          "OBR|2\rOBX|1|NM|B||2||||||F\rTCD|B|^1^:^1||||||R\rOBX|2|NM|B2||3||||||F\r"
          "OBR|3\rOBX|1|NM|C||4||||||F\rTCD|C|^1^:^5||||||D\r"
          "OBR|4\rOBX|1|NM|D||5||||||F\rTCD|D|^1^:^1||||||O\r"
          "OBR|5\rOBX|1|NM|E||6||||||F\rTCD|E|^1^:^1||||||F\r");
  REQUIRE(b.results.size() == 6);
  CHECK(b.results[0].rerun_indicator);   // C corrected = rerun (Roche)
  CHECK(b.results[1].rerun_indicator);   // TCD-8 R
  CHECK(b.results[2].rerun_indicator);   // later OBX of the same OBR group
  CHECK(b.results[3].rerun_indicator);   // TCD-8 D
  CHECK(!b.results[4].rerun_indicator);  // O original
  CHECK(!b.results[5].rerun_indicator);  // F reflex is not a repeat
  hl7_options off;
  off.rerun_on_obx_11_c = false;
  off.rerun_on_tcd_8 = false;
  for (const auto& r :
       run(msh_251 + "SPM|1|S\rOBR|1\rOBX|1|NM|A||1||||||C\rTCD|A||||||R\r", off).results) {
    CHECK(!r.rerun_indicator);
  }
}

TEST_CASE("normalise: empty values, status X, missing code", "[hl7][normalise]") {
  const hl7_batch b = run(msh_251 +
                          "SPM|1|S\rOBR|1\r"
                          "OBX|1|CE|A||^^99ROC||||||F\r"
                          "OBX|2|NM|B||||||||X\r"
                          "OBX|3|NM|||5\r"
                          "OBX|4|NM|C||\"\"||||||F\r");
  REQUIRE(b.results.size() == 1);
  CHECK(b.results[0].code == "B");
  CHECK(b.results[0].status == "X");
  REQUIRE(b.diagnostics.size() == 1);
  CHECK(b.diagnostics[0].error == normalise_error::missing_code);
  CHECK(b.diagnostics[0].segment_index == 6);
  CHECK(b.diagnostics[0].field == 3);
}

TEST_CASE("normalise: OBX before any OBR/SPM is kept with a warning", "[hl7][normalise]") {
  const hl7_batch b = run("MSH|^~\\&|||||2012||ORU^R01|1|P|2.3.1\rOBX|1|NM|A||1\r");
  REQUIRE(b.results.size() == 1);
  REQUIRE(b.diagnostics.size() == 2);
  CHECK(b.diagnostics[0].error == normalise_error::obx_outside_order);
  CHECK(b.diagnostics[1].error == normalise_error::missing_sample_id);
}

TEST_CASE("normalise: character sets from options and MSH-18", "[hl7][normalise]") {
  const std::string latin_body = "SPM|1|M\xFCller\rOBR|1\rOBX|1|ST|A||\xE9t\xE9\r";
  // No MSH-18: the profile's default.
  const std::string msh_none = "MSH|^~\\&|||||2012||OUL^R22|1|P|2.5.1\r";
  const hl7_batch a = run(msh_none + latin_body);
  REQUIRE(a.results.size() == 1);
  CHECK(a.results[0].value == "\xC3\xA9t\xC3\xA9");  // "été" in UTF-8
  CHECK(a.results[0].sample_id == "M\xC3\xBCller");
  // MSH-18 8859/1 overrides a UTF-8 default.
  hl7_options utf8;
  utf8.encoding = interfaced::text_encoding::utf8;
  const std::string msh_8859 = "MSH|^~\\&|||||2012||OUL^R22|1|P|2.5.1||||||8859/1\r";
  CHECK(run(msh_8859 + latin_body, utf8).results.at(0).value == "\xC3\xA9t\xC3\xA9");
  CHECK(run(msh_8859 + latin_body, utf8).encoding == interfaced::text_encoding::latin1);
  // UNICODE UTF-8 with UTF-8 text.
  const std::string msh_utf8 = "MSH|^~\\&|||||2012||OUL^R22|1|P|2.5.1||||||UNICODE UTF-8\r";
  CHECK(run(msh_utf8 + "SPM|1|S\rOBR|1\rOBX|1|ST|A||\xC3\xA9\r").results.at(0).value == "\xC3\xA9");
  // ... but Latin-1 bytes in a UTF-8 message: replaced, with a warning.
  const hl7_batch lossy = run(msh_utf8 + latin_body);
  REQUIRE(lossy.results.size() == 1);
  CHECK(lossy.results[0].value.find("\xEF\xBF\xBD") != std::string::npos);
  REQUIRE(!lossy.diagnostics.empty());
  CHECK(lossy.diagnostics[0].error == normalise_error::lossy_text);
  // Not honouring MSH-18.
  hl7_options ignore;
  ignore.honour_msh_18 = false;
  CHECK(run(msh_utf8 + latin_body, ignore).results.at(0).value == "\xC3\xA9t\xC3\xA9");
  // Unknown charset: warning, default used.
  const std::string msh_odd = "MSH|^~\\&|||||2012||OUL^R22|1|P|2.5.1||||||ISO IR87\r";
  const hl7_batch odd = run(msh_odd + latin_body);
  REQUIRE(!odd.diagnostics.empty());
  CHECK(odd.diagnostics[0].error == normalise_error::unknown_charset);
  CHECK(odd.diagnostics[0].field == 18);
  CHECK(odd.results.at(0).value == "\xC3\xA9t\xC3\xA9");
}

TEST_CASE("charset_encoding: HL7 table 0211 names", "[hl7][normalise]") {
  using interfaced::text_encoding;
  CHECK(charset_encoding("ASCII") == text_encoding::latin1);
  CHECK(charset_encoding("8859/1") == text_encoding::latin1);
  CHECK(charset_encoding("UNICODE UTF-8") == text_encoding::utf8);
  CHECK(charset_encoding("unicode utf-8") == text_encoding::utf8);
  CHECK(charset_encoding("UNICODE") == text_encoding::utf8);
  CHECK(!charset_encoding("ISO IR87"));
}

TEST_CASE("normalise: ORM^O01 orders", "[hl7][normalise]") {
  const hl7_batch b =
      run("MSH|^~\\&|LIS||AN||2012||ORM^O01|5|P|2.3.1\r"
          "PID|1||PAT7||Doe^Jane\r"
          "ORC|NW\rOBR|1|B100|S100|GLU^Glucose|||||||||||||||||||||||^^^^^R\r"
          "ORC|NW\rOBR|2|B100|S100|NA^Sodium\r"
          "ORC|NW\rOBR|3|B200|S200|K^Potassium\r");
  REQUIRE(!b.error);
  REQUIRE(b.orders.size() == 2);
  CHECK(b.orders[0].sample_id == "S100");
  CHECK(b.orders[0].patient_id == "PAT7");
  CHECK(b.orders[0].patient_name == "Doe^Jane");
  CHECK(b.orders[0].action_code == "NW");
  CHECK(b.orders[0].priority == "R");
  REQUIRE(b.orders[0].tests.size() == 2);
  CHECK(b.orders[0].tests[1].code == "NA");
  CHECK(b.orders[0].tests[1].name == "Sodium");
  CHECK(b.orders[1].sample_id == "S200");
  REQUIRE(b.orders[1].tests.size() == 1);
}

TEST_CASE("normalise: OML^O33 with a cancel splits orders by action", "[hl7][normalise]") {
  const hl7_batch b =
      run("MSH|^~\\&|LIS||AN||2012||OML^O33^OML_O33|5|P|2.5.1|||NE|AL||UNICODE UTF-8|||LAB-28^IHE\r"
          "SPM|1|S1||SER|||||||P\r"
          "ORC|NW\rTQ1|||||||||S\rOBR|1|S1.1||GLU^Glucose\r"
          "ORC|CA\rOBR|2|S1.2||NA^Sodium\r"
          "SPM|2|S2||SER\rORC|NW\rOBR|1|S2.1||K\r");
  REQUIRE(!b.error);
  REQUIRE(b.orders.size() == 3);
  CHECK(b.orders[0].sample_id == "S1");
  CHECK(b.orders[0].action_code == "NW");
  CHECK(b.orders[0].priority == "S");
  CHECK(b.orders[1].sample_id == "S1");
  CHECK(b.orders[1].action_code == "CA");
  REQUIRE(b.orders[1].tests.size() == 1);
  CHECK(b.orders[1].tests[0].code == "NA");
  CHECK(b.orders[2].sample_id == "S2");
  CHECK(b.orders[2].patient_id.empty());
}

TEST_CASE("normalise: QBP with several containers and Roche RRRBAR", "[hl7][normalise]") {
  const hl7_batch b =
      run("MSH|^~\\&|cobas||Host||2023||QBP^Q11^QBP_Q11|7|P|2.5.1|||NE|AL||UNICODE UTF-8|||"
          "LAB-27R^ROCHE\r"
          "QPD|RRRBAR^^99ROC|tag1|S1~S2|50016|2\rRCP|I||R\r");
  REQUIRE(b.queries.size() == 1);
  CHECK(b.queries[0].status_code == "RRRBAR");
  CHECK(b.queries[0].tag == "tag1");
  CHECK(b.queries[0].sample_ids == std::vector<std::string>{"S1", "S2"});
}

TEST_CASE("normalise: ignored types and a custom list", "[hl7][normalise]") {
  const std::string ack = "MSH|^~\\&|H||A||2023||ACK^R22^ACK|1|P|2.5.1\rMSA|AA|9\r";
  CHECK(run(ack).ignored);
  hl7_options o;
  o.ignored_types.clear();
  CHECK(run(ack, o).error == normalise_error::unknown_message_type);
  o.ignored_types = {"ACK^R22"};
  CHECK(run(ack, o).ignored);
}

TEST_CASE("normalise: ED (histogram) OBX are not results by default", "[hl7][normalise]") {
  const std::string msg =
      "MSH|^~\\&|BC|M|||2023||ORU^R01|5|P|2.3.1||||||UNICODE\r"
      "OBR|1||S1|00001^Automated Count^99MRC\r"
      "OBX|1|NM|6690-2^WBC^LN||5.1|10*3/uL|4.0-10.0|N|||F\r"
      "OBX|2|ED|15000^WBC Histogram^99MRC||^Image^BMP^Base64^Qk02AAAA||||||F\r";
  const hl7_batch b = run(msg);
  REQUIRE(b.results.size() == 1);
  CHECK(b.results[0].code == "6690-2");
  CHECK(b.results[0].name == "WBC");
  CHECK(b.results[0].sample_id == "S1");
  CHECK(b.results[0].reference_range == "4.0-10.0");
  hl7_options keep;
  keep.skip_value_types.clear();
  CHECK(run(msg, keep).results.size() == 2);
}

TEST_CASE("normalise: OBX fields read the same whatever the OBX's length and padding", "[hl7][normalise]") {
  // Fields are split eight bytes at a time up to 256 bytes of segment and field by field past
  // that: a short OBX, one padded past 256 bytes in OBX-5's neighbour OBX-4... and one with more
  // fields than are held (OBX-19 read from the segment) must give the same result.
  const std::string head = "MSH|^~\\&|A|B|C|D|2023||ORU^R01|1|P|2.3.1\rOBR|1||S1|||20230101090000\r";
  const std::string tail = "|7.41|mmol/L|3.5-5.0|H~LL|||F|||20230101100000||||INST1|20230101101010";
  const auto check = [](const hl7_batch& b, const std::string& sub_id) {
    REQUIRE(b.results.size() == 1);
    const auto& r = b.results[0];
    CHECK(r.code == "GLU");
    CHECK(r.sub_id == sub_id);
    CHECK(r.value == "7.41");
    CHECK(r.unit == "mmol/L");
    CHECK(r.reference_range == "3.5-5.0");
    CHECK(r.flags == std::vector<std::string>{"H", "LL"});
    CHECK(r.status == "F");
    CHECK(r.instrument == "INST1");
    CHECK(r.observed_at == "20230101101010");  // OBX-19
    CHECK(r.sample_id == "S1");
  };
  check(run(head + "OBX|1|NM|GLU^Glucose|" + tail + "\r"), "");
  const std::string long_sub(300, 'x');
  check(run(head + "OBX|1|NM|GLU^Glucose|" + long_sub + tail + "\r"), long_sub);
  // Past the fields held: 40 more empty fields after OBX-19 do not move it.
  check(run(head + "OBX|1|NM|GLU^Glucose|" + tail + std::string(40, '|') + "\r"), "");
  // A separator in every position of an eight-byte word, and high bytes beside them.
  for (std::size_t pad = 0; pad < 9; ++pad)
    check(run(head + "OBX|1|NM|GLU^Glucose|" + std::string(pad, ' ') + tail + "\r"), "");
}

// An OBX whose bytes are all plain ASCII has its values copied as they are, without testing each
// (segment_fields::plain()); one escape or byte >= 0x80 anywhere in the segment must still have
// every value read as sent: decoded and transcoded. Each read field in turn carries the odd bytes,
// the others stay plain; a long OBX (over 256 bytes, never tested whole) and ones just at the
// bound read the same.
TEST_CASE("normalise: an odd byte in any OBX field is decoded in its value", "[hl7][normalise]") {
  const std::string head = "MSH|^~\\&|||||2012||OUL^R22|1|P|2.5.1\rSPM|1|S1\rOBR|1\r";
  const auto member = [](const interfaced::result& r, int f) -> std::string {
    switch (f) {
      case 3: return r.code;
      case 4: return r.sub_id;
      case 5: return r.value;
      case 6: return r.unit;
      case 7: return r.reference_range;
      case 8: return r.flags.empty() ? std::string("(none)") : r.flags[0];
      case 11: return r.status;
      case 18: return r.instrument;
      case 19: return r.observed_at;
    }
    return {};
  };
  const std::string plain[20] = {"OBX", "1", "ST", "C1^Name", "S", "v", "u", "r", "H", "", "",
                                 "F",   "",  "",   "20230101", "", "",  "",  "I1", "20230102"};
  for (const int f : {3, 4, 5, 6, 7, 8, 11, 18, 19}) {
    for (const auto& [odd, want] : {std::pair<std::string, std::string>{"a\\T\\b", "a&b"},
                                    {"a\xE9", "a\xC3\xA9"},
                                    {"\\E\\", "\\"}}) {
      for (const std::size_t pad : {std::size_t{0}, std::size_t{200}, std::size_t{300}}) {
        std::string obx;
        for (int k = 0; k < 20; ++k) {
          if (k > 0) obx += '|';
          obx += k == f ? odd : plain[k];
        }
        // OBX-20 pads the segment (read by nobody) to around and past the 256-byte bound.
        obx += '|' + std::string(pad, 'x');
        CAPTURE(f, odd, obx.size());
        const hl7_batch b = run(head + obx + "\r");
        REQUIRE(b.results.size() == 1);
        const interfaced::result& r = b.results[0];
        CHECK(member(r, f) == want);
        for (const int g : {3, 4, 5, 6, 7, 8, 11, 18, 19}) {
          if (g == f) continue;
          const std::string expect = g == 3 ? "C1" : g == 8 ? "H" : plain[g];
          CHECK(member(r, g) == expect);
        }
      }
    }
  }
}

// Segments of 240 to 270 bytes with an escape as their last byte (OBX-20, read by nobody) and in
// OBX-5: the value is decoded, the others read as sent, whatever the segment's length.
TEST_CASE("normalise: an escape at the end of a segment near 256 bytes", "[hl7][normalise]") {
  const std::string head = "MSH|^~\\&|||||2012||OUL^R22|1|P|2.5.1\rSPM|1|S1\rOBR|1\r";
  for (std::size_t len = 240; len <= 270; ++len) {
    const std::string start = "OBX|1|ST|C1||a\\T\\b|u|r||||F|||||||||";
    std::string obx = start + std::string(len - start.size() - 1, 'x') + "\\";
    REQUIRE(obx.size() == len);
    CAPTURE(len);
    const hl7_batch b = run(head + obx + "\r");
    REQUIRE(b.results.size() == 1);
    CHECK(b.results[0].value == "a&b");
    CHECK(b.results[0].unit == "u");
    CHECK(b.results[0].reference_range == "r");
    CHECK(b.results[0].status == "F");
  }
}

// MSH-9, -10, -12 and -18 come from one walk of the MSH: fields at and past its end, a trailing
// separator, components and repetitions read as segment_view::field reads them.
TEST_CASE("normalise: MSH fields read from one walk", "[hl7][normalise]") {
  const std::string body = "SPM|1|S1\rOBR|1\rOBX|1|ST|A||v\r";
  {
    const hl7_batch b = run("MSH|^~\\&|A|B|C|D|2023||OUL^R22^OUL_R22|C9|P|2.5.1^X^Y|||||8859/1~UNICODE UTF-8\r" + body);
    CHECK(b.message_type == "OUL^R22");
    CHECK(b.control_id == "C9");
    CHECK(b.version == "2.5.1");
    CHECK(b.encoding == interfaced::text_encoding::latin1);
    CHECK(b.results.size() == 1);
  }
  {
    hl7_options utf8;
    utf8.encoding = interfaced::text_encoding::utf8;
    const hl7_batch b = run("MSH|^~\\&|||||2012||OUL^R22|1|P|2.5.1|\r" + body, utf8);
    CHECK(b.control_id == "1");
    CHECK(b.version == "2.5.1");
    CHECK(b.encoding == interfaced::text_encoding::utf8);
  }
  {
    const hl7_batch b = run("MSH|^~\\&|||||2012||OUL|7\r" + body);
    CHECK(b.message_type == "OUL");
    CHECK(b.control_id == "7");
    CHECK(b.version.empty());
    CHECK(b.results.size() == 1);
  }
  {
    // 19 fields and more: MSH-18 still the 17th piece after the name.
    const hl7_batch b = run("MSH|^~\\&|||||2012||OUL^R22|1|P|2.5.1||||||8859/1|x|y|z\r" + body);
    CHECK(b.encoding == interfaced::text_encoding::latin1);
  }
}

// MSH-2 declaring the component separator only (no repetition, escape or subcomponent): OBX
// fields are still read as their first component (the test of both separators is made once per
// OBX, not per field).
TEST_CASE("normalise: an OBX under MSH-2 with a component separator only", "[hl7][normalise]") {
  const hl7_batch b = run("MSH|^|||||2012||OUL^R22|1|P|2.5.1\rSPM|1|S1\rOBR|1\r"
                          "OBX|1|CWE^x|C1^Name||v1^v2|u1^u2|r|H^h|||F^f|||20230101^t||||I1^i\r");
  REQUIRE(b.results.size() == 1);
  const interfaced::result& r = b.results[0];
  CHECK(r.code == "C1");
  CHECK(r.value == "v1");
  CHECK(r.unit == "u1");
  CHECK(r.reference_range == "r");
  REQUIRE(r.flags.size() == 1);
  CHECK(r.flags[0] == "H");
  CHECK(r.status == "F");
  CHECK(r.observed_at == "20230101");
  CHECK(r.instrument == "I1");
}
