// The host's answers in Mindray's 2.3.1 query dialect (hl7/builders.hpp build_qck_q02,
// build_dsr_q03), checked against the Mindray "Chemiluminescence Immunoassay Analyzer Host
// Interface Manual" (2013-08): §1.2.4 (MSA, ERR, QAK, DSP data-line table, DSC) and the
// query-by-barcode session of §1.3.2, as extracted in
// ../shared/captures/hl7/mindray-cl1000i-query-by-barcode-session-manual.txt (SOURCES.md §3).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "hl7_test_helpers.hpp"
#include "parsers/hl7/builders.hpp"
#include "parsers/hl7/message.hpp"
#include "parsers/hl7/normalise.hpp"
#include "support/files.hpp"

using namespace interfaced::hl7;
using interfaced::order;

namespace {

// The manual's QRY^Q02 for bar code 0019 (§1.3.2 "Downloading Sample of Specified Bar Code").
const std::string manual_qry =
    "MSH|^~\\&|||||20120508104700||QRY^Q02|4|P|2.3.1||||||ASCII|||\r"
    "QRD|20120508104700|R|D|1|||RD|0019|OTH|||T|\r"
    "QRF||||||RCT|COR|ALL||\r";

// The manual's sample (§1.3.2): patient 1212 Tommy, born 24.08.62, male; bar code 0019; not STAT;
// tests 1, 2 and 5 (channel numbers).
order tommy() {
  order o;
  o.sample_id = "0019";
  o.patient_id = "1212";
  o.patient_name = "Tommy";
  o.patient_birth_date = "1962-08-24";
  o.patient_sex = "M";
  o.priority = "R";
  o.tests = {{"1", "", ""}, {"2", "", ""}, {"5", "", ""}};
  return o;
}

std::vector<std::string> segments(std::string_view msg) {
  std::vector<std::string> out;
  std::size_t p = 0;
  while (p < msg.size()) {
    const std::size_t e = msg.find('\r', p);
    if (e == std::string_view::npos) {
      out.emplace_back(msg.substr(p));
      break;
    }
    out.emplace_back(msg.substr(p, e - p));
    p = e + 1;
  }
  return out;
}

// The message's views point into `text`: callers keep it alive.
message parsed(const std::string& text) {
  message m;
  REQUIRE(!parse_message(text, m));
  return m;
}

}  // namespace

TEST_CASE("Mindray QCK^Q02: the manual's OK and NF answers, byte for byte",
          "[hl7][builders][mindray]") {
  const message qry = parsed(manual_qry);
  const mindray_answer h{"20120508104700"};
  // §1.3.2: "the LIS returns the QCK^Q02 message and replies as follows if the sample of the bar
  // code exists" / "does not exist".
  CHECK(build_qck_q02(qry, h, query_status::ok) ==
        "MSH|^~\\&|||||20120508104700||QCK^Q02|4|P|2.3.1||||||ASCII|||\r"
        "MSA|AA|4|Message accepted|||0|\r"
        "ERR|0|\r"
        "QAK|SR|OK|\r");
  CHECK(build_qck_q02(qry, h, query_status::not_found) ==
        "MSH|^~\\&|||||20120508104700||QCK^Q02|4|P|2.3.1||||||ASCII|||\r"
        "MSA|AA|4|Message accepted|||0|\r"
        "ERR|0|\r"
        "QAK|SR|NF|\r");
}

TEST_CASE("Mindray QCK^Q02: the analyser's application and facility become the receiver",
          "[hl7][builders][mindray]") {
  const std::string text =
      "MSH|^~\\&|Mindray|BS-480|LIS|LAB|20261123080000||QRY^Q02|77|P|2.3.1\r"
      "QRD|20261123080000|R|D|1|||RD|S-1|OTH|||T\r";
  const message qry = parsed(text);
  const auto seg = segments(build_qck_q02(qry, {"20261123080001"}, query_status::ok));
  CHECK(seg[0] ==
        "MSH|^~\\&|LIS|LAB|Mindray|BS-480|20261123080001||QCK^Q02|77|P|2.3.1||||||ASCII|||");
  CHECK(seg[1] == "MSA|AA|77|Message accepted|||0|");
}

TEST_CASE("Mindray DSR^Q03: the manual's download of sample 0019, line by line",
          "[hl7][builders][mindray]") {
  const message qry = parsed(manual_qry);
  const std::string dsr = build_dsr_q03(qry, {"20120508110131"}, tommy(), 1, true);
  const auto seg = segments(dsr);
  // MSH .. QAK as in the manual's DSR (§1.3.2).
  REQUIRE(seg.size() == 1 + 3 + 2 + 31 + 1);
  CHECK(seg[0] == "MSH|^~\\&|||||20120508110131||DSR^Q03|4|P|2.3.1||||||ASCII|||");
  CHECK(seg[1] == "MSA|AA|4|Message accepted|||0|");
  CHECK(seg[2] == "ERR|0|");
  CHECK(seg[3] == "QAK|SR|OK|");
  // QRD / QRF: the query's, echoed (the manual's DSR shows the same QRF and a QRD of another
  // query).
  CHECK(seg[4] == "QRD|20120508104700|R|D|1|||RD|0019|OTH|||T|");
  CHECK(seg[5] == "QRF||||||RCT|COR|ALL||");
  // DSP-3 data lines, the manual's table: what the host knows of the sample, positionally.
  const std::vector<std::string> manual_dsp = {
      "DSP|1||1212|||",  "DSP|2|||||",  // bed number: not known to the host
      "DSP|3||Tommy|||", "DSP|4||19620824000000|||",
      "DSP|5||M|||",
      "DSP|6|||||",  // blood type: not known to the host
      "DSP|7|||||",      "DSP|8|||||",
      "DSP|9|||||",      "DSP|10|||||",
      "DSP|11|||||",     "DSP|12|||||",
      "DSP|13|||||",     "DSP|14|||||",
      "DSP|15|||||",  // patient type: not known to the host
      "DSP|16|||||",
      "DSP|17|||||",  // charge type: not known to the host
      "DSP|18|||||",     "DSP|19|||||",
      "DSP|20|||||",
      "DSP|21||0019|||",                  // bar code (compulsory)
      "DSP|22|||||",                      // the analyser's sample number: not known to the host
      "DSP|23|||||",     "DSP|24||N|||",  // STAT: no
      "DSP|25|||||",     "DSP|26|||||",
      "DSP|27|||||",     "DSP|28|||||",
      "DSP|29||1^^^|||", "DSP|30||2^^^|||",
      "DSP|31||5^^^|||"};
  for (std::size_t i = 0; i < manual_dsp.size(); ++i) CHECK(seg[6 + i] == manual_dsp[i]);
  CHECK(seg.back() == "DSC||");  // one sample: DSC-1 empty, as in the manual
}

TEST_CASE("Mindray DSR^Q03: several samples, DSC-1 counts until the last",
          "[hl7][builders][mindray]") {
  const message qry = parsed(manual_qry);
  order stat = tommy();
  stat.priority = "S";
  stat.patient_sex = "female";
  stat.patient_name = "A|B";
  const auto first = segments(build_dsr_q03(qry, {"20120508110131"}, stat, 1, false));
  CHECK(first.back() == "DSC|1|");
  CHECK(first[6 + 23] == "DSP|24||Y|||");
  CHECK(first[6 + 4] == "DSP|5||F|||");
  CHECK(first[6 + 2] == "DSP|3||A\\F\\B|||");  // escaped, never a field break
  const auto last = segments(build_dsr_q03(qry, {"20120508110131"}, stat, 2, true));
  CHECK(last.back() == "DSC||");
}

TEST_CASE("Mindray answers against the manual's session capture",
          "[hl7][builders][mindray][capture]") {
  const auto text =
      interfaced::test::capture("hl7/mindray-cl1000i-query-by-barcode-session-manual.txt");
  if (!text) return;
  const auto msgs = test::messages_of(test::decode_all(test::manual_to_stream(*text)));
  REQUIRE(msgs.size() == 5);  // QRY^Q02, QCK^Q02 OK, QCK^Q02 NF, DSR^Q03, ACK^Q03
  const std::string qry_text = msgs[0];
  const message qry = parsed(qry_text);
  CHECK(build_qck_q02(qry, {"20120508104700"}, query_status::ok) == msgs[1]);
  CHECK(build_qck_q02(qry, {"20120508104700"}, query_status::not_found) == msgs[2]);
  // The manual's DSR, segment by segment, for the segments the host fills from an order.
  const auto ours = segments(build_dsr_q03(qry, {"20120508110131"}, tommy(), 1, true));
  const auto manual = segments(msgs[3]);
  REQUIRE(ours.size() == manual.size());
  for (std::size_t i : {0u, 1u, 2u, 3u, 5u}) CHECK(ours[i] == manual[i]);  // MSH MSA ERR QAK QRF
  for (std::size_t dsp : {1u, 3u, 4u, 5u, 21u, 24u, 29u, 30u, 31u})
    CHECK(ours[5 + dsp] == manual[5 + dsp]);
  CHECK(ours.back() == manual.back());  // DSC||
}

TEST_CASE("Mindray QRY^Q02: by bar code, by time (every sample), by sample-number range (warned)",
          "[hl7][normalise][mindray]") {
  // Manual §1.3.2: the three ways the analyser downloads samples.
  const hl7_batch by_code = normalise(manual_qry, {}, "dev");
  REQUIRE(by_code.queries.size() == 1);
  CHECK(by_code.queries[0].sample_ids == std::vector<std::string>{"0019"});
  CHECK_FALSE(by_code.queries[0].all_samples);

  const hl7_batch by_time = normalise(
      "MSH|^~\\&|||||20120508150259||QRY^Q02|7|P|2.3.1||||||ASCII|||\r"
      "QRD|20120508150259|R|D|4|||RD||OTH|||T|\r"
      "QRF||20120508100000|20120508150000|||RCT|COR|ALL||\r",
      {}, "dev");
  REQUIRE(by_time.queries.size() == 1);
  CHECK(by_time.queries[0].all_samples);
  CHECK(by_time.diagnostics.empty());

  const hl7_batch by_number = normalise(
      "MSH|^~\\&|||||20120508115221||QRY^Q02|6|P|2.3.1||||||ASCII|||\r"
      "QRD|20120508115221|R|D|3|||RD||OTH|||T|\r"
      "QRF||||1|9|RCT|COR|ALL||\r",
      {}, "dev");
  REQUIRE(by_number.queries.size() == 1);
  CHECK_FALSE(by_number.queries[0].all_samples);
  CHECK(by_number.queries[0].sample_ids.empty());
  REQUIRE(by_number.diagnostics.size() == 1);
  CHECK(by_number.diagnostics[0].error == normalise_error::missing_sample_id);
}
