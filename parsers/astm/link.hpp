#pragma once
// E1381 (CLSI LIS01-A) turn-taking: the data-link state machine of the computer (host) side.
//
// Pure: it never reads a clock and never does I/O. The caller feeds decoded events from
// frame_decoder (on_event), timer expiries (on_timeout) and requests to send a message
// (queue_message); every call returns the actions to perform, in order: bytes to send, timers to
// start or stop, a received message to deliver, an outgoing message that was given up.
// Both directions live in one machine because contention (both sides send ENQ) needs both:
// the instrument wins (LIS1-A 6.2.7.1).
//
// Timers: at most one runs at a time (active_timer()). start_timer of a timer that is already
// running re-arms it; stop_timer is emitted only for the running timer. A timeout for a timer that
// is not running (a stale expiry the driver could not cancel) is ignored.
// Messages: received text is delivered once per end (ETX) frame, ETB frame texts joined raw; an
// analyser that ends every record with ETX yields one delivery per record, so E1394 reassembly
// (H..L) belongs to the layer above. An outgoing message is sent in its own ENQ..EOT session; a
// message that could not be sent stays at the front of the queue and is retried after retry_wait
// (or as soon as the line becomes neutral after the instrument has sent), until the caller
// withdraws it (bounded retries are the caller's policy: withdraw()).
// Receiver interrupt (EOT in reply to a frame, LIS1-A 6.3.5) is honoured: we send EOT and wait
// interrupt_wait. EOT after the end frame counts as sent; after an intermediate frame the whole
// message is kept and resent later from frame 1 (the acknowledged frames do not count, because a
// receiver discards an incomplete message at EOT).
// Receiving: frame FN rules of LIS1-A 6.5.1.1 (duplicate of the last accepted FN: ACK, ignore).
// ENQ in the middle of a receive session means the sender restarted: the incomplete message is
// discarded and the ENQ answered as on a neutral line.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/astm/frame_decoder.hpp"

namespace interfaced::astm {

enum class timer_id {
  receive,     // receiver: 30 s for a frame or EOT (LIS1-A 6.5.2)
  reply,       // sender: 15 s for a reply to ENQ or to a frame
  contention,  // after contention: computer 20 s for the instrument's ENQ; instrument 1 s wait
  busy,        // sender after NAK to ENQ: 10 s before the next ENQ
  interrupt,   // sender after receiver interrupt: 15 s before the next ENQ
  retry,       // sender after giving up on a message: wait before trying it again (our choice)
};

// Which side of the link this machine plays. Only contention depends on it (LIS1-A 6.2.7.1).
enum class link_role {
  computer,    // the host (the daemon): yields to the instrument's ENQ
  instrument,  // the analyser (the simulator): keeps priority, re-sends ENQ after 1 s
};

struct link_options {
  // computer: on contention stop, wait contention_timeout (20 s) for the instrument's ENQ.
  // instrument: on contention ignore the computer's ENQ and send ENQ again after
  // instrument_contention_wait (LIS1-A 6.2.7.1: "at least 1 s").
  link_role role = link_role::computer;
  std::chrono::milliseconds instrument_contention_wait{1000};
  std::size_t frame_text_size = 63993;       // 240 for E1381-95 analysers, 63,993 LIS01-A
  std::size_t max_message_bytes = 4u << 20;  // received message text; over it: discard + NAK
  int max_attempts = 6;                      // per frame (LIS1-A 6.5.1.2)
  std::chrono::milliseconds receive_timeout{30000};
  std::chrono::milliseconds reply_timeout{15000};
  std::chrono::milliseconds contention_timeout{20000};
  std::chrono::milliseconds busy_wait{10000};
  std::chrono::milliseconds interrupt_wait{15000};
  // LIS1-A only says an aborted message must be kept to be repeated later; how much later is ours.
  std::chrono::milliseconds retry_wait{30000};
  // Leniency, off by default: treat a frame arriving on a neutral line as if ENQ had been
  // acknowledged (captures that logged only frames; analysers that skip establishment).
  bool accept_frames_without_enq = false;
  // Replay-only leniency, off by default and never set by the daemon: take every frame in order
  // whatever its FN. Tools that store captures after their own re-assembly rewrite frame
  // numbers (senaite forces FN=1 on re-joined ETB chunks: captures/astm/SOURCES.md note 1), so
  // the numbers in such a file say nothing about what the analyser sent.
  bool ignore_frame_numbers = false;
  // Persist, then acknowledge: the ACK that completes a message (the one for its ETX frame) is
  // held back until confirm_delivery(true); the deliver action comes first.
  bool defer_final_ack = false;
};

enum class link_state {
  neutral,
  receiving,          // also while a delivered message awaits confirm_delivery()
  sending_enq,        // ENQ sent, waiting for ACK / NAK / ENQ
  sending,            // frames
  waiting_after_nak,  // busy timer: the instrument NAKed our ENQ
  contention,         // both sent ENQ: computer waits for the instrument's ENQ (20 s),
                      // instrument waits to re-send its own (1 s)
  interrupted,        // interrupt timer: the instrument answered a frame with EOT
  waiting_retry,      // retry timer: a message was given up (6 attempts, timeout)
};

struct link_action {
  enum class kind {
    send,         // bytes: control byte or an encoded frame
    start_timer,  // timer, duration
    stop_timer,   // timer
    deliver,    // message: a complete received message (ETB frames joined raw, then the ETX frame)
    discarded,  // reason: an incomplete received message was thrown away (timeout, EOT mid-message)
    sent,       // id: an outgoing message was fully acknowledged
    send_failed,      // id + reason: gave up (6 attempts, timeout); the message is kept queued
    frame_rejected,   // reason + frame number (+ error when the frame was malformed): a received
                      // frame was NAKed (for the device log and its counters)
    duplicate_frame,  // frame number: ACKed and ignored (same FN as the last accepted)
    refused,          // frame number (-1: our ENQ): the peer answered NAK, or anything but ACK /
                      // EOT, which LIS1-A 6.5.1.2 counts as NAK (for the counters)
  };
  kind what = kind::send;
  std::string bytes;
  timer_id timer = timer_id::receive;
  std::chrono::milliseconds duration{0};
  std::string message;
  std::uint64_t id = 0;
  std::string reason;
  int frame_number = -1;
  std::error_code error;  // frame_rejected: the frame decoder's error (astm::frame_error), if any
};

using link_actions = std::vector<link_action>;

class link {
 public:
  explicit link(link_options options = {});

  // A decoded event from the peer.
  [[nodiscard]] link_actions on_event(const decode_event& ev);
  // The same, appending the actions to `out` (whose earlier contents are kept): a caller that
  // reuses one list allocates nothing per event (a vector per event, then moving its actions
  // into the caller's, was ~0.8 M of 4.6 M instructions per pass of bench_astm).
  void on_event(const decode_event& ev, link_actions& out);
  // A timer started by a start_timer action expired.
  [[nodiscard]] link_actions on_timeout(timer_id t);
  void on_timeout(timer_id t, link_actions& out);  // appending to out, as on_event
  // Queue a message (records, each ending CR) to send to the instrument; returns its id.
  // Sending starts at once when the line is neutral, else when it next becomes neutral.
  std::uint64_t queue_message(std::string text, link_actions& out);
  // Takes a queued message back (the caller gave up on it: its retries are bounded, or it is
  // stale). Refused (false) while that message is being sent (ENQ or frames out): a transfer is
  // finished or aborted by the protocol, never cut mid-way. No actions: a running retry or
  // interrupt wait simply ends on a neutral line with one message fewer.
  bool withdraw(std::uint64_t id);
  // The caller cannot take more messages (outbox full): NAK every ENQ until cleared.
  void set_busy(bool busy) noexcept { busy_ = busy; }
  // With link_options::defer_final_ack: the message of the last deliver action was persisted
  // (true: ACK the end frame) or not (false: NAK it, forget it; the instrument resends that frame
  // and the message is delivered again, earlier ETB parts included). No-op (no actions) when
  // nothing awaits confirmation, e.g. the instrument gave up with EOT meanwhile: it will resend
  // the whole message later, so a message already persisted may arrive twice (at least once).
  [[nodiscard]] link_actions confirm_delivery(bool accepted);
  void confirm_delivery(bool accepted, link_actions& out);  // appending to out, as on_event

  [[nodiscard]] link_state state() const noexcept { return state_; }
  [[nodiscard]] std::size_t queued() const noexcept { return outgoing_.size(); }
  [[nodiscard]] bool awaiting_confirmation() const noexcept { return pending_confirm_; }
  [[nodiscard]] std::optional<timer_id> active_timer() const noexcept { return timer_; }
  // Bytes of the incomplete received message held (never above max_message_bytes).
  [[nodiscard]] std::size_t buffered_bytes() const noexcept { return message_.size(); }
  [[nodiscard]] const link_options& options() const noexcept { return opt_; }

 private:
  struct outgoing {
    std::uint64_t id;
    std::string text;
  };
  [[nodiscard]] bool line_idle() const noexcept;
  void arm(link_actions& out, timer_id t);
  void disarm(link_actions& out);
  void to_neutral(link_actions& out);
  void try_send(link_actions& out);
  void on_enq_when_idle(link_actions& out);
  void begin_receive();
  void end_receive(link_actions& out, std::string_view why);
  void on_frame(link_actions& out, const frame& f);
  void reject(link_actions& out, std::string reason, int fn, std::error_code error = {});
  void refused(link_actions& out, int fn);
  void send_current_frame(link_actions& out);
  void on_frame_reply(link_actions& out, const decode_event& ev);
  void give_up(link_actions& out, std::string reason);

  link_options opt_;
  link_state state_ = link_state::neutral;
  std::optional<timer_id> timer_;
  bool busy_ = false;
  // receiving
  int last_fn_ = 0;         // FN of the last accepted frame; the first expected is 1
  bool any_frame_ = false;  // a frame was accepted in this transfer phase
  bool overflow_ = false;   // max_message_bytes hit: NAK every frame until EOT / timeout
  std::string message_;     // ETB texts so far (raw join)
  bool pending_confirm_ = false;
  std::size_t pending_prev_len_ = 0;  // message_ before the unconfirmed end frame
  int pending_prev_fn_ = 0;
  bool pending_prev_any_ = false;
  // sending
  std::deque<outgoing> outgoing_;
  std::uint64_t next_id_ = 1;
  std::size_t send_pos_ = 0;     // offset of the current frame's text in the front message
  std::size_t current_len_ = 0;  // text bytes in the current frame
  bool current_final_ = false;
  int send_fn_ = 1;
  int attempts_ = 0;  // times the current frame has been sent
};

}  // namespace interfaced::astm
