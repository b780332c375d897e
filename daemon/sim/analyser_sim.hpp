#pragma once
// `interfaced simulate`: plays a capture as the analyser would, over a real link to the daemon.
//
//  - ASTM: the capture's E1394 messages (H..L) are re-sent with an instrument-role astm::link,
//    one ENQ..EOT session per message, framed with the simulator's own frame numbers and frame text
//    size; ACK / NAK / EOT / timers as LIS1-A says (retransmit on NAK, give up after 6 attempts,
//    real steady_timers for on_timeout). A message counts as acknowledged when its end frame was
//    ACKed: the daemon persists before that ACK, so "acknowledged" means "durable".
//  - HL7: only the analyser's side of the capture is played (host messages and replies skipped,
//    sim_script::skipped); each message MLLP-wrapped; the next one is sent once the ACK came back
//    (read with hl7::check_response, as the daemon reads host replies; MSA-1 AA / CA count as
//    acknowledged, AE / AR / CE / CR as refused). A download the daemon sends meanwhile (Mindray
//    DSR^Q03 after QCK^Q02 OK, an OML^O33) is acknowledged as the analyser would (ACK^Q03 in
//    Mindray's form, manual §1.3.2); after a QCK^Q02 OK the player waits for the last DSR^Q03
//    (DSC-1 empty) before it goes on.
//  - Links: TCP client (connect), TCP server (listen: the daemon is the tcp-client), or a pty whose
//    slave is symlinked to a path (the daemon's serial device).
//  - Faults on demand: a corrupted checksum, a dropped connection (reconnect, resend the
//    interrupted message from its start), a delay before every frame, a frame sent twice.
// The capture is decoded the way `interfaced replay` decodes it, so replay of the same file gives
// the results the daemon should have stored.
//
// The summary line counts acknowledged and refused messages apart (AE / AR / CE / CR replies, and
// ASTM messages given up): "1500 messages: 37 acknowledged, 1463 refused (AE 1463) in 812 ms".
// Exit statuses: 0 every message acknowledged; 1 a message was not acknowledged (refused, given
// up, connection lost for good, timeout; the reason on stderr); 64 usage; 66 the capture could not
// be read or holds no message; 69 the link could not be established.
//
// Asio lives in the .cpp; this header is included by the CLI only.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "devices/capture_input.hpp"

namespace interfaced::sim {

enum class sim_protocol { astm, hl7 };

// The messages to play, in order: ASTM H..L texts (records ending CR) or HL7 messages (the bytes
// between 0x0B and 0x1C).
struct sim_script {
  sim_protocol protocol = sim_protocol::astm;
  std::vector<std::string> messages;
  std::string description;  // what the capture was ("raw ASTM frames", ...)
  // HL7 messages of the capture not played, by MSH-9 in the order first seen, with their count:
  // the host's (ACK^R01, QCK^Q02, DSR^Q03 ...) and the analyser's replies to the host (ACK^Q03),
  // which the simulator sends itself when the daemon's download comes (devices::role_of).
  std::vector<std::pair<std::string, std::size_t>> skipped;
};

// "4 messages not played (the host's side and replies): QCK^Q02 x2, DSR^Q03, ACK^Q03"; empty when
// nothing was skipped.
[[nodiscard]] std::string describe_skipped(const sim_script& script);

// Builds the script from a decoded capture stream. ASTM frames go through a lenient
// frame_decoder + link (frames accepted without ENQ, as replay does) to recover the texts, which
// are then cut at every H record (astm::split_messages); records-only text is cut the same way,
// records re-joined with CR (LF is a restricted character inside a frame, LIS1-A 6.6). `forced`
// overrides the protocol the capture suggests; nullopt when nothing can be played.
[[nodiscard]] std::optional<sim_script> make_sim_script(devices::capture_kind kind, const std::string& bytes,
                                                        std::optional<sim_protocol> forced);

struct sim_options {
  // link: exactly one of these
  std::string connect;               // HOST:PORT
  std::optional<std::uint16_t> listen;  // PORT
  std::string pty_path;              // symlink to create, pointing at the pty slave

  std::size_t frame_text_size = 240;  // E1381-95 size, so most messages span several frames
  // Faults. Frames are counted over the whole run from 1, first transmissions only.
  int corrupt_frame = 0;                   // 0: none
  std::uint64_t drop_after = 0;            // bytes written before the connection is cut once; 0: none
  std::chrono::milliseconds frame_delay{0};
  int duplicate_frame = 0;  // 0: none
  int repeat = 1;

  std::chrono::milliseconds reply_timeout{15000};  // LIS1-A 6.5.2; HL7: wait for the ACK
  std::chrono::milliseconds retry_wait{1000};      // after the link gave up on a message
  int retries = 2;  // times a given-up message is tried again before the run fails
  std::chrono::milliseconds connect_timeout{10000};  // connect / accept / pty opened by the peer
  std::chrono::milliseconds timeout{300000};         // the whole run
};

// Plays the script; one line per message on `out`, reasons on `err`. Returns the exit status.
int run_analyser_sim(const sim_script& script, const sim_options& options, std::ostream& out,
                     std::ostream& err);

// Reads and decodes a capture file with devices::decode_capture, the decoder replay uses. nullopt
// (exit status 66, the reason in `why`) when it cannot be read or holds nothing to play.
[[nodiscard]] std::optional<sim_script> load_sim_script(const std::filesystem::path& file,
                                                        std::optional<sim_protocol> forced, std::string& why);

}  // namespace interfaced::sim
