#pragma once
// The ASTM receive path, exactly as the daemon runs it and replay replays it:
// bytes -> frame_decoder -> link (turn-taking, ACK/NAK) -> records collected up to the L record
// -> E1394 message -> profile -> normalise.
// No I/O and no clock: the caller sends the returned link actions and drives the timers.

#include <cstdint>
#include <system_error>
#include <string>
#include <string_view>
#include <vector>

#include "devices/profile.hpp"
#include "parsers/astm/frame_decoder.hpp"
#include "parsers/astm/link.hpp"
#include "parsers/astm/normalise.hpp"

namespace interfaced::devices {

// The stable log codes of ASTM problems (`interfaced explain ASTM-012`): a frame the decoder
// refused or the link NAKed (astm::frame_error; ASTM-020 when the link refused it for another
// reason), and a record problem (astm::record_error). Values of those enums are never reused.
[[nodiscard]] const char* astm_frame_code(const std::error_code& e) noexcept;
[[nodiscard]] const char* astm_record_code(const std::error_code& e) noexcept;

struct ingest_problem {
  std::uint64_t offset = 0;  // byte offset in the stream
  std::string what;          // what was wrong and what was expected
  bool warning = false;      // accepted through a profile leniency: logged, not a failure
};

// Control characters inside a result's sample id, value or unit (a NUL in "5\0.0") are removed,
// each field said once as a warning naming the sample and test [DATA-001]: the result is
// forwarded, never with a byte its readers would choke on. Both protocols' ingest use it.
void scrub_control_characters(std::vector<result>& results, std::uint64_t offset, std::vector<ingest_problem>& problems);

struct astm_message_out {
  astm::astm_batch batch;
  const devices::device_profile* profile = nullptr;  // nullptr: LIS02-A2 defaults
  std::uint64_t offset = 0;
  std::string text;  // the E1394 message as received (H..L records), for the outbox's raw copy
};

class astm_ingest {
 public:
  // forced: use this profile for every message; otherwise detect from H.5 in `catalog`.
  astm_ingest(const devices::profile_catalog* catalog, const devices::device_profile* forced,
              std::string device, astm::link_options options);

  // E1381 stream bytes from the analyser; returns what to do on the wire.
  [[nodiscard]] astm::link_actions feed(std::string_view bytes);
  [[nodiscard]] astm::link_actions timeout(astm::timer_id t);
  // Persist, then acknowledge (link_options::defer_final_ack): only an end frame that completes
  // an E1394 message (its L record) waits for confirm(); other end frames are ACKed inside feed().
  // While link().awaiting_confirmation(), the messages from take_messages() are the ones to
  // persist: confirm(true) ACKs the frame; confirm(false) NAKs it and rolls the collected records
  // back so the instrument's resend completes the same message again. No-op when nothing waits.
  [[nodiscard]] astm::link_actions confirm(bool durable);
  // End of input (replay) or of the connection: a message without its L record is processed
  // with a problem reported, so records the analyser sent are not silently lost.
  void finish();
  // Records-only text (analysers that send no framing), records separated by CR / LF / CRLF.
  void feed_records(std::string_view text, std::uint64_t base_offset = 0);

  // Messages and problems produced since the last take.
  [[nodiscard]] std::vector<astm_message_out> take_messages();
  [[nodiscard]] std::vector<ingest_problem> take_problems();

  [[nodiscard]] astm::link& link() noexcept { return link_; }
  // Received bytes of a message not complete yet (a partial frame, ETB frames, records without
  // their L): zero once every message received so far was delivered. Bounded by the frame and
  // message limits.
  [[nodiscard]] std::size_t buffered_bytes() const noexcept {
    return decoder_.buffered_bytes() + link_.buffered_bytes() + pending_.size();
  }
  [[nodiscard]] bool in_frame() const noexcept { return decoder_.in_frame(); }
  [[nodiscard]] std::uint64_t frames() const noexcept { return frames_; }

 private:
  // Handles actions[first..]: the ones the last link call appended.
  void handle_actions(astm::link_actions& actions, std::size_t first, std::uint64_t offset);
  // h_starts: where astm::split_messages cuts text, when already known (end_of_terminator).
  void handle_message_text(std::string_view text, std::uint64_t offset,
                           const std::vector<std::size_t>* h_starts = nullptr);
  // E1381 messages (ETX frames) carry one record or a whole H..L; an E1394 message is H..L.
  void collect(std::string_view text, std::uint64_t offset);
  void drain(bool end_of_session);
  // pending_ changed other than by appending: its search for an L starts over.
  void restart_scan();
  void warn_missing_sample_ids(const astm::message& m, const astm_message_out& out);

  const devices::profile_catalog* catalog_;
  const devices::device_profile* forced_;
  std::string device_;
  astm::frame_decoder decoder_;
  astm::link link_;
  std::uint64_t frames_ = 0;
  std::uint64_t message_start_ = 0;
  bool in_message_ = false;
  std::size_t max_pending_;
  std::string pending_;  // records received so far of an E1394 message without its L yet
  std::uint64_t pending_offset_ = 0;
  std::size_t scanned_ = 0;  // pending_ holds no L record before this record start
  std::vector<std::size_t> h_starts_;  // the H record starts in pending_ up to scanned_
  std::string rollback_;  // pending_ before the unconfirmed end frame
  std::uint64_t rollback_offset_ = 0;
  std::vector<astm_message_out> messages_;
  std::vector<ingest_problem> problems_;
};

}  // namespace interfaced::devices
