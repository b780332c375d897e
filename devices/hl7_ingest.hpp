#pragma once
// The HL7 receive path as the daemon runs it and replay replays it:
// bytes -> MLLP decoder -> message view -> normalise (results, queries) -> ACK to send back.
// No I/O, no clock: the caller gives the time for ACK timestamps and sends the returned bytes.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "devices/astm_ingest.hpp"
#include "devices/profile.hpp"
#include "parsers/hl7/normalise.hpp"
#include "parsers/model.hpp"

namespace interfaced::devices {

// A host-side reply seen in a capture (ACK, RSP, QCK, DSR...): checked, not forwarded.
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

  const devices::profile_catalog* catalog_;
  const devices::device_profile* forced_;
  std::string device_;
  std::vector<hl7_message_out> messages_;
  std::vector<ingest_problem> problems_;
};

}  // namespace interfaced::devices
