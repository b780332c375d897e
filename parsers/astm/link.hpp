#pragma once
// E1381 (CLSI LIS01-A) turn-taking: the data-link state machine of the computer (host) side.
//
// Pure: it never reads a clock and never does I/O. The caller feeds decoded events from
// frame_decoder (on_event), timer expiries (on_timeout) and requests to send a message
// (queue_message); every call returns the actions to perform, in order: bytes to send, timers to
// start or stop, a received message to deliver, an outgoing message that was given up.
// Both directions live in one machine because contention (both sides send ENQ) needs both:
// the instrument wins (LIS1-A 6.2.7.1).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/astm/frame_decoder.hpp"

namespace interfaced::astm {

enum class timer_id {
  receive,      // receiver: 30 s for a frame or EOT (LIS1-A 6.5.2)
  reply,        // sender: 15 s for a reply to ENQ or to a frame
  contention,   // computer after contention: 20 s for the instrument's ENQ
  busy,         // sender after NAK to ENQ: 10 s before the next ENQ
  interrupt,    // sender after receiver interrupt: 15 s before the next ENQ
};

struct link_options {
  std::size_t frame_text_size = 63993;      // 240 for E1381-95 analysers, 63,993 LIS01-A
  std::size_t max_message_bytes = 4u << 20;  // received message text; over it: discard + NAK
  int max_attempts = 6;                     // per frame (LIS1-A 6.5.1.2)
  std::chrono::milliseconds receive_timeout{30000};
  std::chrono::milliseconds reply_timeout{15000};
  std::chrono::milliseconds contention_timeout{20000};
  std::chrono::milliseconds busy_wait{10000};
  std::chrono::milliseconds interrupt_wait{15000};
  // Leniency, off by default: treat a frame arriving on a neutral line as if ENQ had been
  // acknowledged (captures that logged only frames; analysers that skip establishment).
  bool accept_frames_without_enq = false;
};

enum class link_state { neutral, receiving, sending_enq, sending, waiting_after_nak, contention, interrupted };

struct link_action {
  enum class kind {
    send,            // bytes: control byte or an encoded frame
    start_timer,     // timer, duration
    stop_timer,      // timer
    deliver,         // message: a complete received message (ETB frames joined raw, then the ETX frame)
    discarded,       // reason: an incomplete received message was thrown away (timeout, EOT mid-message)
    sent,            // id: an outgoing message was fully acknowledged
    send_failed,     // id + reason: gave up (6 attempts, timeout); the message is kept queued
    frame_rejected,  // reason + frame number: a received frame was NAKed (for the device log)
    duplicate_frame, // frame number: ACKed and ignored (same FN as the last accepted)
  };
  kind what = kind::send;
  std::string bytes;
  timer_id timer = timer_id::receive;
  std::chrono::milliseconds duration{0};
  std::string message;
  std::uint64_t id = 0;
  std::string reason;
  int frame_number = -1;
};

using link_actions = std::vector<link_action>;

class link {
 public:
  explicit link(link_options options = {});

  // A decoded event from the peer.
  [[nodiscard]] link_actions on_event(const decode_event& ev);
  // A timer started by a start_timer action expired.
  [[nodiscard]] link_actions on_timeout(timer_id t);
  // Queue a message (records, each ending CR) to send to the instrument; returns its id.
  // Sending starts at once when the line is neutral, else when it next becomes neutral.
  std::uint64_t queue_message(std::string text, link_actions& out);
  // The caller cannot take more messages (outbox full): NAK every ENQ until cleared.
  void set_busy(bool busy) noexcept { busy_ = busy; }

  [[nodiscard]] link_state state() const noexcept { return state_; }
  [[nodiscard]] std::size_t queued() const noexcept { return outgoing_.size(); }

 private:
  struct outgoing {
    std::uint64_t id;
    std::string text;
  };
  link_options opt_;
  link_state state_ = link_state::neutral;
  bool busy_ = false;
  // receiving
  int last_fn_ = 0;
  bool any_frame_ = false;
  std::string message_;
  // sending
  std::deque<outgoing> outgoing_;
  std::uint64_t next_id_ = 1;
  std::size_t send_pos_ = 0;
  int send_fn_ = 1;
  int attempts_ = 0;
  std::string current_frame_;
  bool current_final_ = false;
};

}  // namespace interfaced::astm
