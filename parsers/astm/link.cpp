#include "parsers/astm/link.hpp"

#include <algorithm>
#include <utility>

#include "parsers/astm/control.hpp"

namespace interfaced::astm {

namespace {

// LIS1-A 6.3.1: 64,000 characters per frame including the 7 overhead characters.
constexpr std::size_t max_frame_text = 63993;

// A new action at the end of out, built in place: a link_action is three strings and more, and
// building one then moving it into the list cost a move and a destruction per action (~0.14 M
// of 3.77 M instructions per pass of bench_astm, for the ACK and timer of every frame).
link_action& add(link_actions& out, link_action::kind k) {
  link_action& a = out.emplace_back();
  a.what = k;
  return a;
}

void send(link_actions& out, std::string bytes) { add(out, link_action::kind::send).bytes = std::move(bytes); }

void send(link_actions& out, char c) { add(out, link_action::kind::send).bytes.assign(1, c); }

}  // namespace

link::link(link_options options) : opt_(std::move(options)) {
  opt_.frame_text_size = std::clamp<std::size_t>(opt_.frame_text_size, 1, max_frame_text);
  opt_.max_attempts = std::max(opt_.max_attempts, 1);
}

bool link::line_idle() const noexcept {
  switch (state_) {
    case link_state::neutral:
    case link_state::contention:
    case link_state::waiting_after_nak:
    case link_state::interrupted:
    case link_state::waiting_retry:
      return true;
    case link_state::receiving:
    case link_state::sending_enq:
    case link_state::sending:
      return false;
  }
  return false;
}

void link::arm(link_actions& out, timer_id t) {
  if (timer_ && *timer_ != t) disarm(out);
  timer_ = t;
  link_action& a = add(out, link_action::kind::start_timer);
  a.timer = t;
  switch (t) {
    case timer_id::receive:
      a.duration = opt_.receive_timeout;
      break;
    case timer_id::reply:
      a.duration = opt_.reply_timeout;
      break;
    case timer_id::contention:
      a.duration = opt_.role == link_role::instrument ? opt_.instrument_contention_wait : opt_.contention_timeout;
      break;
    case timer_id::busy:
      a.duration = opt_.busy_wait;
      break;
    case timer_id::interrupt:
      a.duration = opt_.interrupt_wait;
      break;
    case timer_id::retry:
      a.duration = opt_.retry_wait;
      break;
  }
}

void link::disarm(link_actions& out) {
  if (!timer_) return;
  link_action& a = add(out, link_action::kind::stop_timer);
  a.timer = *timer_;
  timer_.reset();
}

void link::to_neutral(link_actions& out) {
  disarm(out);
  state_ = link_state::neutral;
  try_send(out);
}

void link::try_send(link_actions& out) {
  if (state_ != link_state::neutral || outgoing_.empty()) return;
  // LIS1-A 6.2.4: ENQ only on a neutral line. FN starts at 1 in every transfer phase (6.3.2), and
  // a message given up earlier is sent again from its first frame (the receiver discarded it).
  send_pos_ = 0;
  current_len_ = 0;
  current_final_ = false;
  send_fn_ = 1;
  attempts_ = 0;
  state_ = link_state::sending_enq;
  send(out, control::enq);
  arm(out, timer_id::reply);
}

void link::begin_receive() {
  state_ = link_state::receiving;
  last_fn_ = 0;
  any_frame_ = false;
  overflow_ = false;
  pending_confirm_ = false;
  message_.clear();
}

void link::on_enq_when_idle(link_actions& out) {
  if (busy_) {
    // LIS1-A 6.2.6: a system that cannot receive NAKs the ENQ. After contention that NAK is our
    // reply to "the next ENQ" (6.2.7.1), so the line is neutral again and we may send.
    send(out, control::nak);
    if (state_ == link_state::contention || state_ == link_state::neutral) to_neutral(out);
    return;
  }
  disarm(out);  // contention / busy / interrupt / retry wait: the instrument has priority
  begin_receive();
  send(out, control::ack);
  arm(out, timer_id::receive);
}

void link::end_receive(link_actions& out, std::string_view why) {
  if (!message_.empty()) {
    link_action& a = add(out, link_action::kind::discarded);
    a.reason = std::string(why);
  }
  message_.clear();
  pending_confirm_ = false;
  overflow_ = false;
  to_neutral(out);
}

void link::reject(link_actions& out, std::string reason, int fn, std::error_code error) {
  send(out, control::nak);
  link_action& a = add(out, link_action::kind::frame_rejected);
  a.reason = std::move(reason);
  a.frame_number = fn;
  a.error = error;
  if (state_ == link_state::receiving) arm(out, timer_id::receive);  // 6.5.2: after each reply
}

void link::on_frame(link_actions& out, const frame& f) {
  if (overflow_) {
    reject(out, "message exceeds max_message_bytes", f.number);
    return;
  }
  // LIS1-A 6.5.1.1: reject an FN that is neither the last accepted nor last + 1 (mod 8); the
  // same FN as the last accepted is a retransmission whose ACK we lost: ACK it, keep nothing.
  if (any_frame_ && f.number == last_fn_ && !opt_.ignore_frame_numbers) {
    send(out, control::ack);
    link_action& a = add(out, link_action::kind::duplicate_frame);
    a.frame_number = f.number;
    arm(out, timer_id::receive);
    return;
  }
  const int expected = any_frame_ ? (last_fn_ + 1) % 8 : 1;  // 6.3.2: FN starts at 1
  if (f.number != expected && !opt_.ignore_frame_numbers) {
    reject(out,
           "unexpected frame number " + std::to_string(f.number) + ", expected " +
               std::to_string(expected),
           f.number);
    return;
  }
  if (message_.size() + f.text.size() > opt_.max_message_bytes) {
    // Never grow without bound. NAK this and every later frame of the session: the sender gives
    // up after 6 attempts (EOT) and keeps the message; accepting a resend would deliver a
    // message that lacks its start.
    link_action& a = add(out, link_action::kind::discarded);
    a.reason = "message exceeds max_message_bytes";
    message_.clear();
    overflow_ = true;
    reject(out, "message exceeds max_message_bytes", f.number);
    return;
  }
  const std::size_t prev_len = message_.size();
  const int prev_fn = last_fn_;
  const bool prev_any = any_frame_;
  // Room made for at least 1 KB at the first growth: from empty, the doublings (each a
  // reallocation and copy) of a session's first messages were ~1 % of bench_astm.
  if (const std::size_t need = message_.size() + f.text.size(); need > message_.capacity())
    message_.reserve(std::max({need, 2 * message_.capacity(), std::size_t{1024}}));
  message_.append(f.text);  // ETB splits may fall inside a field: join raw
  last_fn_ = f.number;
  any_frame_ = true;
  if (!f.final) {
    send(out, control::ack);
    arm(out, timer_id::receive);
    return;
  }
  if (opt_.defer_final_ack) {
    // Persist, then acknowledge: the caller answers with confirm_delivery(). The receive timer
    // is stopped because the next reply is the caller's to give.
    disarm(out);
    pending_confirm_ = true;
    pending_prev_len_ = prev_len;
    pending_prev_fn_ = prev_fn;
    pending_prev_any_ = prev_any;
    add(out, link_action::kind::deliver).message = message_;  // kept: a NAK makes the instrument resend only this end frame
    return;
  }
  send(out, control::ack);
  arm(out, timer_id::receive);
  // Copied, not moved out: message_ keeps its room for the next message of the session (moved
  // out, it grew again from nothing, a reallocation and copy per doubling: message_ growth was
  // two fifths of the string growth of bench_astm).
  add(out, link_action::kind::deliver).message = message_;
  message_.clear();
}

link_actions link::confirm_delivery(bool accepted) {
  link_actions out;
  confirm_delivery(accepted, out);
  return out;
}

void link::confirm_delivery(bool accepted, link_actions& out) {
  if (!pending_confirm_ || state_ != link_state::receiving) return;
  pending_confirm_ = false;
  if (accepted) {
    message_.clear();
    send(out, control::ack);
    arm(out, timer_id::receive);
    return;
  }
  const int fn = last_fn_;
  message_.resize(pending_prev_len_);
  last_fn_ = pending_prev_fn_;
  any_frame_ = pending_prev_any_;
  reject(out, "delivery not confirmed: end frame NAKed for resend", fn);
}

void link::send_current_frame(link_actions& out) {
  const std::string& text = outgoing_.front().text;
  current_len_ = std::min(text.size() - send_pos_, opt_.frame_text_size);
  current_final_ = send_pos_ + current_len_ >= text.size();
  ++attempts_;
  send(out, encode_frame(send_fn_, std::string_view(text).substr(send_pos_, current_len_),
                         current_final_));
  arm(out, timer_id::reply);  // 6.5.2: 15 s for a reply after the last character of a frame
}

void link::refused(link_actions& out, int fn) {
  link_action& a = add(out, link_action::kind::refused);
  a.frame_number = fn;
}

void link::give_up(link_actions& out, std::string reason) {
  // LIS1-A 6.5.1.2 / 6.5.2.3: abort with EOT; the message stays at the front to be repeated.
  send(out, control::eot);
  link_action& a = add(out, link_action::kind::send_failed);
  a.id = outgoing_.front().id;
  a.reason = std::move(reason);
  state_ = link_state::waiting_retry;
  arm(out, timer_id::retry);
}

void link::on_frame_reply(link_actions& out, const decode_event& ev) {
  switch (ev.kind) {
    case event_kind::none:
      return;
    case event_kind::ack:
      attempts_ = 0;
      if (current_final_) {
        send(out, control::eot);
        link_action& a = add(out, link_action::kind::sent);
        a.id = outgoing_.front().id;
        outgoing_.pop_front();
        to_neutral(out);
        return;
      }
      send_pos_ += current_len_;
      send_fn_ = (send_fn_ + 1) % 8;
      send_current_frame(out);
      return;
    case event_kind::eot: {
      // LIS1-A 6.3.5 receiver interrupt: honoured. The receiver discards an incomplete message
      // on EOT, so unless this frame was the last one the whole message is sent again later;
      // the frames it acknowledged do not count. No ENQ for 15 s unless the instrument sends.
      send(out, control::eot);
      if (current_final_) {
        link_action& a = add(out, link_action::kind::sent);
        a.id = outgoing_.front().id;
        outgoing_.pop_front();
      } else {
        link_action& a = add(out, link_action::kind::send_failed);
        a.id = outgoing_.front().id;
        a.reason = "receiver interrupt (EOT) before the end frame; message kept for resend";
      }
      state_ = link_state::interrupted;
      arm(out, timer_id::interrupt);
      return;
    }
    case event_kind::nak:
    case event_kind::enq:
    case event_kind::frame:
    case event_kind::error:
      // LIS1-A 6.5.1.2: any reply other than ACK or EOT counts as NAK: resend the same frame
      // with the same FN, at most max_attempts times in all.
      refused(out, send_fn_);
      if (attempts_ >= opt_.max_attempts) {
        give_up(out, "frame " + std::to_string(send_fn_) + " not accepted after " +
                         std::to_string(attempts_) + " attempts");
        return;
      }
      send_current_frame(out);
      return;
  }
}

link_actions link::on_event(const decode_event& ev) {
  link_actions out;
  on_event(ev, out);
  return out;
}

void link::on_event(const decode_event& ev, link_actions& out) {
  if (ev.kind == event_kind::none) return;
  if (line_idle()) {
    switch (ev.kind) {
      case event_kind::enq:
        // LIS1-A 6.2.7.1: the instrument has priority; the computer must not take the line while
        // the instrument waits to re-send its ENQ.
        if (opt_.role == link_role::instrument && state_ == link_state::contention) return;
        on_enq_when_idle(out);
        return;
      case event_kind::frame:
      case event_kind::error: {
        // LIS1-A 6.2: the receiver ignores everything except ENQ, unless the replay leniency
        // says a frame on a neutral line stands for an accepted ENQ.
        if (!opt_.accept_frames_without_enq) return;
        const int fn = ev.kind == event_kind::frame ? ev.f.number : ev.frame_number_hint;
        if (busy_) {
          reject(out, "busy: cannot take a message", fn);
          return;
        }
        disarm(out);
        begin_receive();
        if (ev.kind == event_kind::frame) {
          on_frame(out, ev.f);
        } else {
          reject(out, ev.error.message(), fn, ev.error);
        }
        return;
      }
      default:
        return;  // stray ACK / NAK / EOT on an idle line
    }
  }
  switch (state_) {
    case link_state::receiving:
      if (pending_confirm_) {
        // Only EOT matters while the caller persists: the sender waits for our reply.
        if (ev.kind == event_kind::eot) {
          message_.clear();  // it was delivered: nothing is discarded
          end_receive(out, "EOT before delivery was confirmed");
        }
        return;
      }
      switch (ev.kind) {
        case event_kind::frame:
          on_frame(out, ev.f);
          break;
        case event_kind::error:
          reject(out, ev.error.message(), ev.frame_number_hint, ev.error);
          break;
        case event_kind::eot:
          end_receive(out, "EOT before the end frame");
          break;
        case event_kind::enq:
          // The sender went back to establishment without EOT: it considers the line neutral.
          // Drop the incomplete message and answer this ENQ as on a neutral line.
          if (!message_.empty()) {
            link_action& a = add(out, link_action::kind::discarded);
            a.reason = "ENQ before the end frame";
          }
          message_.clear();
          overflow_ = false;
          disarm(out);
          state_ = link_state::neutral;
          on_enq_when_idle(out);
          break;
        default:
          break;  // ACK / NAK: the receiver ignores them
      }
      return;
    case link_state::sending_enq:
      switch (ev.kind) {
        case event_kind::ack:
          state_ = link_state::sending;
          send_current_frame(out);
          break;
        case event_kind::nak:
          // LIS1-A 6.2.6: busy; wait at least 10 s before the next ENQ.
          refused(out, -1);
          state_ = link_state::waiting_after_nak;
          arm(out, timer_id::busy);
          break;
        case event_kind::enq:
          // LIS1-A 6.2.7.1 contention: the instrument wins. A computer does not answer this ENQ;
          // it answers the next one, which comes within 20 s (the instrument waits at least 1 s
          // first). An instrument ignores it and sends ENQ again when the contention timer ends.
          state_ = link_state::contention;
          arm(out, timer_id::contention);
          break;
        default:
          break;  // 6.2.5: the sender ignores other replies
      }
      return;
    case link_state::sending:
      on_frame_reply(out, ev);
      return;
    default:
      return;
  }
}

link_actions link::on_timeout(timer_id t) {
  link_actions out;
  on_timeout(t, out);
  return out;
}

void link::on_timeout(timer_id t, link_actions& out) {
  if (!timer_ || *timer_ != t) return;  // stale expiry
  timer_.reset();
  switch (state_) {
    case link_state::receiving:
      // LIS1-A 6.5.2: 30 s without a frame or EOT: discard the incomplete message, neutral.
      end_receive(out, "receive timeout");
      break;
    case link_state::sending_enq:
      give_up(out, "no reply to ENQ");
      break;
    case link_state::sending:
      give_up(out, "no reply to frame " + std::to_string(send_fn_));
      break;
    case link_state::waiting_after_nak:
    case link_state::contention:
    case link_state::interrupted:
    case link_state::waiting_retry:
      to_neutral(out);  // try_send sends ENQ when something is queued
      break;
    case link_state::neutral:
      break;
  }
}

bool link::withdraw(std::uint64_t id) {
  const auto it = std::find_if(outgoing_.begin(), outgoing_.end(),
                               [id](const outgoing& o) { return o.id == id; });
  if (it == outgoing_.end()) return false;
  const bool in_transfer = state_ == link_state::sending_enq || state_ == link_state::sending;
  if (in_transfer && it == outgoing_.begin()) return false;
  outgoing_.erase(it);
  return true;
}

std::uint64_t link::queue_message(std::string text, link_actions& out) {
  const std::uint64_t id = next_id_++;
  outgoing_.push_back({id, std::move(text)});
  try_send(out);
  return id;
}

}  // namespace interfaced::astm
