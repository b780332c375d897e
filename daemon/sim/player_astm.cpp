#include "daemon/sim/player.hpp"

#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "parsers/astm/control.hpp"

namespace interfaced::sim::detail {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

astm::link_options player::astm_options() const {
  astm::link_options lo;
  lo.role = astm::link_role::instrument;  // the analyser has priority on contention
  lo.frame_text_size = opt_.frame_text_size;
  lo.reply_timeout = opt_.reply_timeout;
  lo.retry_wait = opt_.retry_wait;
  return lo;
}

// Performs link actions; false: the connection is gone or the run failed (result in `o`).
template <class Stream>
asio::awaitable<bool> player::perform(Stream& s, astm_session& ss, astm::link_actions acts, outcome& o) {
  using kind = astm::link_action::kind;
  bool queue_next = false;
  for (auto& a : acts) {
    switch (a.what) {
      case kind::send: {
        std::string bytes = std::move(a.bytes);
        if (!bytes.empty() && bytes.front() == astm::control::stx) {
          const bool retransmission = !ss.last_reply_ack && bytes == ss.last_frame;
          ss.last_reply_ack = false;
          if (!retransmission) {
            ++ss.frames;
            ss.last_frame = bytes;
            ss.last_frame_index = ++frame_count_;
          }
          if (opt_.frame_delay.count() > 0) co_await sleep(opt_.frame_delay);
          if (!retransmission && ss.last_frame_index == opt_.corrupt_frame && bytes.size() >= 5) {
            // STX FN text ETB|ETX C1 C2 CR LF: change C2 so the checksum no longer matches.
            char& c2 = bytes[bytes.size() - 3];
            c2 = c2 == '0' ? '1' : '0';
            out_ << "frame " << ss.last_frame_index << " sent with a corrupted checksum (--corrupt-frame)\n";
          }
        } else if (!bytes.empty() && bytes.front() == astm::control::enq) {
          ss.last_frame.clear();  // a new transfer phase
          ss.last_reply_ack = true;
        }
        if (!co_await write(s, bytes)) {
          o = outcome::lost;
          co_return false;
        }
        break;
      }
      case kind::start_timer:
        ss.timer = a.timer;
        ss.timer_at = sim_clock::now() + a.duration;
        break;
      case kind::stop_timer:
        ss.timer.reset();
        ss.timer_at = sim_clock::time_point::max();
        break;
      case kind::sent:
        out_ << label(next_) << " acknowledged (" << plural(ss.frames, "frame") << ", " << plural(ss.naks, "NAK")
             << ")" << std::endl;
        ++acked_;
        ++next_;
        queue_next = true;
        break;
      case kind::send_failed:
        ++ss.failures;
        err_ << label(next_) << ": " << a.reason;
        if (ss.failures > opt_.retries) {
          err_ << "; given up after " << ss.failures << " tries\n";
          count_refused("given up");
          o = outcome::failed;
          co_return false;
        }
        err_ << "; trying again\n";
        ss.frames = 0;
        break;
      case kind::deliver:
        out_ << "the daemon sent a message (" << a.message.size() << " bytes); acknowledged\n";
        break;
      default:
        break;
    }
  }
  if (queue_next) {
    ss.frames = 0;
    ss.naks = 0;
    ss.failures = 0;
    if (next_ >= total_) {
      o = outcome::done;
      co_return false;
    }
    astm::link_actions more;
    (void)ss.link.queue_message(message(next_), more);
    co_return co_await perform(s, ss, std::move(more), o);
  }
  co_return true;
}

template <class Stream>
asio::awaitable<player::outcome> player::play_astm(Stream& s) {
  if (next_ >= total_) co_return outcome::done;
  astm_session ss(astm_options());
  outcome o = outcome::done;
  astm::link_actions first;
  (void)ss.link.queue_message(message(next_), first);
  if (!co_await perform(s, ss, std::move(first), o)) co_return o;
  asio::steady_timer timer(io_);
  std::vector<char> buf(4096);
  for (;;) {
    timer.expires_at(ss.timer_at);
    auto r = co_await (s.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable)) ||
                       timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (r.index() == 1) {
      if (!ss.timer || sim_clock::now() < ss.timer_at) continue;
      const astm::timer_id t = *ss.timer;
      ss.timer.reset();
      ss.timer_at = sim_clock::time_point::max();
      if (ss.holding_ack) ss.holding_ack = false;  // no reply to the duplicate: the link times out
      if (!co_await perform(s, ss, ss.link.on_timeout(t), o)) co_return o;
      continue;
    }
    auto [ec, n] = std::get<0>(r);
    if (ec) {
      if (next_ < total_) {
        err_ << label(next_) << ": connection lost (" << ec.message() << "); resending it from its start\n";
      }
      co_return outcome::lost;
    }
    std::string_view bytes(buf.data(), n);
    while (!bytes.empty()) {
      const astm::put_result pr = ss.decoder.put(bytes);
      bytes.remove_prefix(pr.consumed);
      const astm::decode_event& ev = pr.event;
      if (ev.kind == astm::event_kind::none) {
        if (pr.consumed == 0) break;
        continue;
      }
      const bool sending = ss.link.state() == astm::link_state::sending;
      if (sending && ss.holding_ack) {
        // The reply to the duplicate frame: LIS1-A 6.5.1.1 wants ACK (and the frame ignored).
        ss.holding_ack = false;
        if (ev.kind != astm::event_kind::ack) {
          err_ << "frame " << ss.last_frame_index << " sent twice: the duplicate was not ACKed\n";
          any_failed_ = true;
        }
        astm::decode_event ack;
        ack.kind = astm::event_kind::ack;
        ss.last_reply_ack = true;
        if (!co_await perform(s, ss, ss.link.on_event(ack), o)) co_return o;
        continue;
      }
      if (sending && ev.kind == astm::event_kind::ack && ss.last_frame_index == opt_.duplicate_frame &&
          !duplicated_) {
        // Hold this ACK back: send the same frame again first (--duplicate-frame).
        duplicated_ = true;
        ss.holding_ack = true;
        out_ << "frame " << ss.last_frame_index << " sent again after its ACK (--duplicate-frame)\n";
        if (!co_await write(s, ss.last_frame)) co_return outcome::lost;
        continue;
      }
      if (sending) {
        if (ev.kind == astm::event_kind::ack) {
          ss.last_reply_ack = true;
        } else if (ev.kind != astm::event_kind::eot) {
          ++ss.naks;  // LIS1-A 6.5.1.2: anything but ACK or EOT counts as NAK
          ++naks_;
        }
      }
      if (!co_await perform(s, ss, ss.link.on_event(ev), o)) co_return o;
    }
  }
}

template asio::awaitable<player::outcome> player::play_astm(tcp::socket&);
template asio::awaitable<player::outcome> player::play_astm(asio::posix::stream_descriptor&);

}  // namespace interfaced::sim::detail
