#pragma once
// HL7 v2 acknowledgements, both directions.
//
// build_ack(): the original-mode ACK our daemon returns for a received message (LAW: ACK^R22^ACK
// with MSA-2 = the received MSH-10). Pure: the new control id and the timestamp come from the
// caller (no clock here). Sending / receiving application and facility are swapped; version,
// processing id and (by default) MSH-18 are echoed; the ACK uses the received message's
// delimiters so echoed fields are copied byte for byte. Segments end with CR. AE / AR carry an
// ERR segment with the caller's code / text. Vendor variations (Mindray's
// `MSA|AA|<id>|Message accepted|||0|`) are data in ack_options, filled from the device profile.
//
// check_response(): reads an ACK / RSP / QCK / ORL the *host side* sent and reports what is wrong
// with it as error codes (response_category()) with the segment and field, so the daemon can log
// exactly which part of a host reply is malformed. Views in response_report point into the text.

#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "parsers/hl7/message.hpp"
#include "parsers/hl7/normalise.hpp"

namespace interfaced::hl7 {

enum class ack_code { aa, ae, ar };
[[nodiscard]] std::string_view to_string(ack_code c) noexcept;  // "AA" "AE" "AR"

// MSH-9.3 message structure (`ACK^R22^ACK`): HL7 added it in 2.5 (2.3.1 analysers reject it).
enum class structure_mode { by_version, always, never };

struct ack_options {
  std::string accept_text;     // MSA-3 on AA (Mindray: "Message accepted")
  std::string accept_code;     // MSA-6 on AA (Mindray: "0")
  bool code_in_msa_6 = false;  // AE/AR: the caller's error code in MSA-6 (Mindray, e.g. 206)
  bool err_segment = true;     // AE/AR: add ERR
  bool text_in_msa_3 = true;   // AE/AR: the caller's error text in MSA-3
  structure_mode structure = structure_mode::by_version;
  std::string trigger;               // MSH-9.2 override; empty: the received trigger (R01, R22...)
  bool echo_charset = true;          // MSH-18
  bool echo_profile = false;         // MSH-21
  bool echo_msh_16 = false;          // Mindray echoes its MSH-16 (sample / calibration / QC kind)
  std::string accept_ack_type;       // MSH-15 of the ACK; LAW: responses leave it empty
  std::string application_ack_type;  // MSH-16 of the ACK (ignored with echo_msh_16)
  std::string sending_application;   // empty: the received MSH-5
  std::string sending_facility;      // empty: the received MSH-6
  std::size_t msh_min_fields = 0;    // pad MSH with empty fields (Mindray manual: 21)
  std::size_t msa_min_fields = 0;    // pad MSA (Mindray manual: 7)
};

struct ack_request {
  ack_code code = ack_code::aa;
  std::string_view control_id{};  // MSH-10 of the ACK (caller's counter / GUID)
  std::string_view timestamp{};   // MSH-7 (caller's clock, e.g. "20230513111838+0530")
  std::string_view error_code{};  // AE/AR: HL7 table 0357 (e.g. "207") or the vendor's code
  std::string_view error_text{};  // AE/AR
  // AE/AR: where the problem is (normalise's hl7_diagnostic): 1-based segment index in the
  // received message and field; 0 = not known.
  std::size_t error_segment = 0;
  std::size_t error_field = 0;
};

// The ACK for a parsed message (parse_message succeeded).
[[nodiscard]] std::string build_ack(const message& received, const ack_request& request,
                                    const ack_options& options = {});
// The ACK for raw message text; when it cannot be parsed (no MSH, bad delimiters) the ACK uses
// `|^~\&`, an empty MSA-2 and MSH-9 `ACK`, so the peer still gets an answer (normally AR).
[[nodiscard]] std::string build_ack(std::string_view received_text, const ack_request& request,
                                    const ack_options& options = {});

// What to answer for a normalised message (Roche / LAW: AR when the message cannot be read or its
// type is not supported, AE for other processing problems, else AA). HL7 table 0357 codes:
// 100 segment sequence error (no MSH / bad delimiters), 101 required field missing (MSH-9,
// MSH-10), 200 unsupported message type, 207 application internal error. Warnings do not
// change the answer. The daemon still answers AE/AR itself when storing fails.
struct ack_decision {
  ack_code code = ack_code::aa;
  std::string error_code;  // empty for AA
  std::string error_text;
  std::size_t error_segment = 0;
  std::size_t error_field = 0;
  // An ack_request over this decision's strings (which must outlive it).
  [[nodiscard]] ack_request request(std::string_view control_id,
                                    std::string_view timestamp) const noexcept {
    return {code, control_id, timestamp, error_code, error_text, error_segment, error_field};
  }
};
[[nodiscard]] ack_decision decide_ack(const hl7_batch& batch);

// ---- host replies ----

enum class response_error {
  ok = 0,
  unparsable = 1,           // no MSH / bad delimiters                              (fatal)
  not_a_response,           // MSH-9 not ACK / RSP / QCK / ORL / DSR                 (fatal)
  fields_shifted,           // MSH-9 holds what belongs in MSH-10 and MSH-8 the type: a
                            // field is missing before it; later MSH fields read one back (fatal)
  missing_msa,              // no MSA segment                                       (fatal)
  bad_ack_code,             // MSA-1 not AA AE AR CA CE CR                          (fatal)
  missing_acknowledged_id,  // MSA-2 empty                                          (fatal)
  id_mismatch,              // MSA-2 is not the MSH-10 we sent                      (fatal)
  wrong_trigger,            // MSH-9.2 is not the trigger of the message we sent
  missing_timestamp,        // MSH-7 empty
  missing_control_id,       // MSH-10 empty
  lf_segment_separators,    // segments end with LF, not CR
  unterminated_segment,     // the last segment has no CR
  stray_delimiters,         // an MSH field made only of separators (`||^`)
  ack_type_on_response,     // MSH-15/16 set on a response (LAW: left empty)
  wrong_receiver,           // MSH-5 is not the application we are (our MSH-3)
  wrong_profile,            // MSH-21 is not the expected profile (`LAB27^IHE`)
  missing_qak,              // RSP without QAK
  bad_query_status,         // QAK-2 not OK NF AE AR
  tag_mismatch,             // QAK-1 / QPD-2 is not the query tag we sent
  qpd_mismatch,             // QPD-3 is not what we asked for
};
const std::error_category& response_category() noexcept;
std::error_code make_error_code(response_error e) noexcept;

struct response_problem {
  std::error_code error;
  std::size_t segment_index = 0;  // 1-based; 0 = the message as a whole
  std::size_t field = 0;
  bool fatal = false;  // the reply cannot be taken as an answer to our message
  std::string detail;
};

// What we sent, to compare against; empty members are not checked.
struct response_expectation {
  std::string_view control_id{};   // our MSH-10 -> MSA-2
  std::string_view trigger{};      // our MSH-9.2 -> MSH-9.2 (R22, K11 for a QBP^Q11...)
  std::string_view application{};  // our MSH-3 -> MSH-5
  std::string_view profile{};      // expected MSH-21.1^21.2 (e.g. "LAB-27^IHE")
  std::string_view query_tag{};    // our QPD-2 -> QAK-1 and QPD-2
  std::string_view qpd_3{};        // our QPD-3 -> QPD-3 echoed
};

// One ORC of a response (ORL^O22 / ORL^O34 to our work orders, LAB-28): what the analyser did
// with that order, whatever MSA-1 says about the message as a whole.
struct order_reply {
  std::string_view control{};  // ORC-1: OK accepted, UA unable to accept, UC unable to cancel...
  std::string_view placer{};   // ORC-2: our order id (the AWOS id we sent)
  // HL7 table 0119 "unable to ..." codes (UA, UC, UD, UF, UH, UM, UR, UX): the order was refused.
  [[nodiscard]] bool refused() const noexcept;
};

struct response_report {
  std::string_view message_type{};     // MSH-9 raw
  std::string_view control_id{};       // MSH-10 raw
  std::string_view ack_code{};         // MSA-1
  std::string_view acknowledged_id{};  // MSA-2
  std::string_view text{};             // MSA-3
  std::string_view error_code{};       // MSA-6, else ERR-3.1, else ERR-1.4.1
  std::string_view query_status{};     // QAK-2
  std::vector<order_reply> orders;     // every ORC, in order
  std::vector<response_problem> problems;
  [[nodiscard]] bool usable() const noexcept;  // no fatal problem
  [[nodiscard]] bool conformant() const noexcept { return problems.empty(); }
  [[nodiscard]] bool accepted() const noexcept;  // usable and MSA-1 AA / CA
};

[[nodiscard]] response_report check_response(std::string_view text,
                                             const response_expectation& expect = {});

}  // namespace interfaced::hl7

template <>
struct std::is_error_code_enum<interfaced::hl7::response_error> : std::true_type {};
