#pragma once
// Messages the daemon sends to LAW analysers (hl7-facts.md §8): the RSP^K11 answer to a LAB-27
// query and the OML^O33 LAB-28 work order; and to Mindray 2.3.1 analysers (§9): the QCK^Q02 /
// DSR^Q03 answer to a QRY^Q02. Pure: control ids and timestamps come from the caller.
// Output uses `|^~\&`, CR segment ends, no MLLP framing (mllp_wrap() does that); text is written
// as given (UTF-8, declared in MSH-18).

#include <string>
#include <string_view>

#include "parsers/hl7/ack.hpp"
#include "parsers/hl7/message.hpp"
#include "parsers/model.hpp"

namespace interfaced::hl7 {

enum class query_status { ok, not_found, application_error, application_reject };
[[nodiscard]] std::string_view to_string(query_status s) noexcept;  // "OK" "NF" "AE" "AR"

struct rsp_k11_request {
  std::string_view control_id{};           // MSH-10
  std::string_view timestamp{};            // MSH-7
  ack_code code = ack_code::aa;            // MSA-1
  query_status status = query_status::ok;  // QAK-2
};

// RSP^K11^RSP_K11 for a parsed QBP^Q11: MSH with application / facility swapped, version, MSH-18
// and MSH-21 (`LAB-27^IHE`) echoed; `MSA|<code>|<QBP MSH-10>`; `QAK|<QPD-2>|<status>|<QPD-1>`;
// the QPD echoed byte for byte. Uses the query's delimiters.
[[nodiscard]] std::string build_rsp_k11(const message& qbp, const rsp_k11_request& request);

struct oml_o33_header {
  std::string_view sending_application{};    // MSH-3 (us)
  std::string_view sending_facility{};       // MSH-4
  std::string_view receiving_application{};  // MSH-5 (the analyser)
  std::string_view receiving_facility{};     // MSH-6
  std::string_view timestamp{};              // MSH-7
  std::string_view control_id{};             // MSH-10
  std::string_view processing_id = "P";      // MSH-11
  std::string_view specimen_type{};          // SPM-4 (e.g. "SER"); empty: not sent
  std::string_view coding_system{};          // OBR-4.3 (e.g. "99ROC"); empty: not sent
};

// OML^O33^OML_O33 (LAB-28): MSH (2.5.1, NE/AL, UNICODE UTF-8, LAB-28^IHE), PID when the order has
// a patient, `SPM|1|<sample id>||<type>|||||||P`, then per test ORC (ORC-1 = order.action_code,
// `NW` when empty; `CA` cancels), TQ1 with TQ1-9 = priority when given, OBR with OBR-2 = the
// AWOS id (order_test::awos_id, else `<sample>.<n>`, n = 1-based test number; ORC-2 the same) and
// OBR-4 = code^name[^coding system].
// order.patient_name is XPN text: '^' separates family / given names.
[[nodiscard]] std::string build_oml_o33(const order& o, const oml_o33_header& header);

// Mindray's 2.3.1 query dialect ("Chemiluminescence Immunoassay Analyzer Host Interface Manual",
// Mindray 2013-08, §1.2.3-1.2.4 and the session of §1.3.2; captures/hl7
// mindray-cl1000i-query-by-barcode-session-manual.txt): the analyser's QRY^Q02 is answered by
// QCK^Q02 (QAK-2 OK or NF), then, when orders were found, one DSR^Q03 per sample; the analyser
// answers each DSR with ACK^Q03. Both use the query's delimiters, MSH-3..6 swapped from the query,
// MSH-10 = the query's MSH-10 (as every answer in the manual's examples), MSH-11/12 echoed,
// MSH-18 `ASCII` and the manual's field counts (`...|ASCII|||`, `MSA|AA|<id>|Message
// accepted|||0|`, `ERR|0|`).
struct mindray_answer {
  std::string_view timestamp{};  // MSH-7
  std::string_view charset = "ASCII";  // MSH-18: the manual's only character set
};

// QCK^Q02: MSH, `MSA|AA|<QRY MSH-10>|Message accepted|||0|`, `ERR|0|`, `QAK|SR|<OK|NF>|`.
[[nodiscard]] std::string build_qck_q02(const message& qry, const mindray_answer& header, query_status status);

// One sample's DSR^Q03: MSH (MSH-15 empty: an answer, not an unsolicited download), MSA, ERR,
// `QAK|SR|OK|`, the query's QRD and QRF echoed (HL7 2.3.1 display response), then the manual's 28
// positional DSP lines (`DSP|<n>||<value>|||`, table "DSP-3 data line"): 1 patient id, 3 name,
// 4 birth date (YYYYMMDDHHmmSS), 5 sex (M/F/O), 21 barcode = order.sample_id, 24 STAT Y/N
// (order.priority S/STAT -> Y), the rest empty (22 the analyser's own sample number and 26 the
// sample type are not known to the host here); from DSP 29 on one line per test, `<code>^^^`
// (channel number; name, unit and range left blank as the manual allows). DSC-1 = `sequence` when
// more DSRs follow in this answer, empty for the last (manual §1.2.4 DSC and the group-query
// example).
[[nodiscard]] std::string build_dsr_q03(const message& qry, const mindray_answer& header, const order& o,
                                        std::size_t sequence, bool last);

// MSH-3 and MSH-4 of `msg` as they stand (raw, escapes kept): who sent it. Empty views when the
// text does not start with an MSH segment that far. Views into `msg`.
struct msh_sender {
  std::string_view application;  // MSH-3
  std::string_view facility;     // MSH-4
};
[[nodiscard]] msh_sender sender_of(std::string_view msg) noexcept;

// `msg` with MSH-5 / MSH-6 (receiving application / facility) set to `application` / `facility`
// where they are empty: a message built before its receiver was known (an order pushed to an
// analyser), addressed once the analyser has said who it is (its MSH-3 / MSH-4). Values holding
// the message's field separator or a segment end are not used; a field already set is kept.
[[nodiscard]] std::string address_to(std::string_view msg, std::string_view application, std::string_view facility);

}  // namespace interfaced::hl7
