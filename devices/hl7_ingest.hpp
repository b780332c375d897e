#pragma once
// The HL7 receive path as the daemon runs it and replay replays it:
// bytes -> MLLP decoder -> message view -> normalise (results, queries) -> ACK to send back.
// No I/O, no clock: the caller gives the time for ACK timestamps and sends the returned bytes.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "devices/astm_ingest.hpp"
#include "devices/profile.hpp"
#include "parsers/hl7/normalise.hpp"
#include "parsers/model.hpp"

namespace interfaced::devices {

// Who sends a message of a given MSH-9 in an analyser session, for captures that hold both sides
// (captures/hl7/SOURCES.md: the Mindray query session, the hosts' ACK files):
//  - the host: its acknowledgements of what the analyser sent (ACK^R01, ACK^R22, ACK^U01 ...),
//    query answers (QCK^Q02, RSP^K11) and downloads (DSR^Q03, OML^O33, ORM^O01);
//  - the analyser: everything else, including its own acknowledgements of the host's downloads
//    (ACK^Q03 for a DSR^Q03, Mindray manual §1.3.2; ORL^O34 / ACK^O33 for a LAB-28 work order).
// `reply`: the message answers another (ACK, QCK, RSP, ORL), as opposed to one that starts an
// exchange (a result, a query, a download).
struct hl7_role {
  bool from_host = false;
  bool reply = false;
};
[[nodiscard]] hl7_role role_of(std::string_view message_code, std::string_view trigger) noexcept;
// The same from a message's text (MSH-9 read with its own delimiters); an analyser's message when
// the text has no readable MSH-9.
[[nodiscard]] hl7_role role_of(std::string_view message_text);

// The stable log code of an HL7 warning: `HL7-1NN`, NN the hl7::normalise_error value (HL7-106 no
// sample id, HL7-107 an OBX naming no test, HL7-109 a result message that gave no result).
[[nodiscard]] std::string warning_code(const std::error_code& e);

// A reply or host message seen in a capture (ACK, RSP, QCK, DSR...): checked, not forwarded.
struct hl7_reply_info {
  std::string message_type;
  std::string control_id;
  std::string ack_code;         // MSA-1
  std::string acknowledged_id;  // MSA-2
  std::string error_code;
  std::string query_status;     // QAK-2
  // Orders the analyser refused (ORC-1 UA, UC, UX...), each as "ORC-2 (ORC-1)", even under MSA-1 AA.
  std::vector<std::string> refused_orders;
  std::vector<std::string> findings;  // non-conformities, each naming its place
  bool usable = true;
  hl7_role role;  // who sent it; a host download (DSR^Q03) is not a reply
};

struct hl7_message_out {
  std::vector<result> results;
  std::vector<query> queries;
  std::vector<order> orders;
  std::string control_id;    // MSH-10
  std::string message_type;  // MSH-9, e.g. OUL^R22
  std::uint64_t offset = 0;
  std::string ack;           // the ACK to return (MLLP-wrapped), empty when none is due
  std::optional<hl7_reply_info> reply;  // the message was a host reply
  std::string note;          // a message type that carries no results (equipment status...)
  const devices::device_profile* profile = nullptr;  // nullptr: the LAW / 2.3.1 defaults
};

class hl7_ingest {
 public:
  hl7_ingest(const devices::profile_catalog* catalog, const devices::device_profile* forced,
             std::string device);

  // A whole MLLP byte stream (replay); the daemon's session keeps its decoder across reads.
  void feed(std::string_view bytes);
  // Bare segments (CR / LF / CRLF), messages starting at each MSH.
  void feed_segments(std::string_view text, std::uint64_t base_offset = 0);
  // One message (the bytes between 0x0B and 0x1C) for a session that keeps its own MLLP decoder
  // across reads. Output goes to take_messages() / take_problems() as with feed(); the fatal
  // normalise error is returned too (error empty: accepted or an ignored type) so the session can
  // answer AE naming the segment and field.
  hl7::hl7_diagnostic feed_message(std::string_view bytes, std::uint64_t offset);

  [[nodiscard]] std::vector<hl7_message_out> take_messages();
  [[nodiscard]] std::vector<ingest_problem> take_problems();

 private:
  hl7::hl7_diagnostic handle_message(std::string_view bytes, std::uint64_t offset);
  // "; profile \"mindray-cl\" reads 1 result(s): configure ..." when the message gave no result or
  // results without a sample id and another known HL7 profile reads them; empty otherwise.
  [[nodiscard]] std::string suggest_profile(std::string_view bytes, const device_profile* used,
                                            const hl7::hl7_batch& batch) const;

  const devices::profile_catalog* catalog_;
  const devices::device_profile* forced_;
  std::string device_;
  std::vector<hl7_message_out> messages_;
  std::vector<ingest_problem> problems_;
};

}  // namespace interfaced::devices
