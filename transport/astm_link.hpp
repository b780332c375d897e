#pragma once
// The ASTM link driver: one coroutine per analyser link, owning its stream (TCP socket, pty, serial
// port) and one devices::astm_ingest. It reads bytes into the ingest, performs the link actions it
// returns (bytes to send, one steady_timer per astm::timer_id whose expiry is fed back as
// ingest.timeout()) and hands every complete E1394 message (H..L) to the batch_sink.
//
// Persist, then acknowledge: the link runs with defer_final_ack, so the ACK of the end frame that
// completes a message is sent only after the sink said done(true); done(false), or no answer
// within sink_timeout, NAKs that frame and the analyser resends it. While the sink is not
// accepting, ENQ is NAKed (the analyser retries after its busy wait).
//
// The host sends through the link's own sender side: answers to host queries and order downloads
// (config.push, a push_queue the daemon fills), each in its own ENQ..EOT session on a neutral line.
//
// Failures (disconnect, garbage, rejected frames, timeouts, a sink that failed) are lines for the
// event_log; nothing escapes the coroutine. A disconnect ends it cleanly; an incomplete transfer is
// dropped (the analyser resends a message whose last frame it did not see ACKed). An exception is
// a bug: logged as such, and the link ends like a disconnect so its owner can restart it.
//
// Header-only template so tests can drive it over a socket, a pty or a serial port; the daemon
// instantiates it in its own translation unit (transport's library itself never calls the daemon).

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "devices/astm_ingest.hpp"
#include "parsers/astm/control.hpp"
#include "transport/buffer_budget.hpp"
#include "transport/event_log.hpp"
#include "transport/link_counters.hpp"
#include "transport/push_queue.hpp"
#include "transport/sink.hpp"
#include "transport/stream_util.hpp"

namespace interfaced::transport {

struct astm_link_config {
  const devices::profile_catalog* catalog = nullptr;  // detect the profile from H.5
  const devices::device_profile* forced = nullptr;    // or use this one
  std::string device;                                 // configured device id (logs, deliveries)
  astm::link_options link;                            // defer_final_ack is forced on
  // The analyser waits 15 s for the reply to a frame (LIS1-A 6.5.2); answering NAK before that
  // keeps the link ours instead of letting the analyser time out.
  std::chrono::milliseconds sink_timeout{12000};
  std::size_t read_size = 4096;
  // Host queries (Q records) answered by the host: called with the queries of each received
  // message, returns the messages (E1394 records, each ending CR) to send back; each is queued on
  // the link's sender side and goes out once the line is neutral (after the analyser's EOT).
  // Empty: queries are only handed to the sink.
  std::function<std::vector<std::string>(const std::vector<query>&)> answer_queries;
  // Order download (worklist push): messages the host starts, taken from this queue as they
  // arrive and queued on the same sender side as query answers, so the link bids (ENQ) only on a
  // neutral line, yields to the analyser's ENQ on contention (LIS1-A 6.2.7.1) and sends after its
  // EOT, resends a NAKed frame up to link.max_attempts times. A message not accepted in a session
  // (frames refused, no reply, receiver interrupt before the end frame) is sent again after
  // link.retry_wait, push_attempts sessions in all; then it is given up (its done(false)).
  // Null: no pushes.
  std::shared_ptr<push_queue> push;
  int push_attempts = 3;
  // NAKs and checksum errors of this link, for /metrics. Null: not counted.
  std::shared_ptr<link_counters> counters;
  // Unfinished bytes, bounded per device and daemon-wide (buffer_budget.hpp). Null: unbounded
  // (but for the frame and message limits).
  std::shared_ptr<buffer_budget> device_buffers;
  std::shared_ptr<buffer_budget> total_buffers;
};

namespace detail {

template <class Stream>
class astm_link_driver : public std::enable_shared_from_this<astm_link_driver<Stream>> {
 public:
  astm_link_driver(Stream stream, const astm_link_config& cfg, batch_sink& sink, event_log log)
      : stream_(std::move(stream)),
        ingest_(cfg.catalog, cfg.forced, cfg.device, with_deferred_ack(cfg.link)),
        cfg_(cfg),
        sink_(sink),
        log_(std::move(log)),
        share_(cfg.device_buffers, cfg.total_buffers),
        sink_timer_(stream_.get_executor()) {
    timers_.reserve(timer_count);
    for (std::size_t i = 0; i < timer_count; ++i) timers_.emplace_back(stream_.get_executor());
  }

  ~astm_link_driver() { release_pushes(); }

  boost::asio::awaitable<void> run() {
    namespace asio = boost::asio;
    std::vector<char> buf(cfg_.read_size == 0 ? 4096 : cfg_.read_size);
    if (cfg_.push) {
      std::weak_ptr<astm_link_driver> weak = this->shared_from_this();
      auto ex = stream_.get_executor();
      // Posted: push() runs in the daemon's code, which must not re-enter the link.
      push_token_ = cfg_.push->attach([weak, ex] {
        boost::asio::post(ex, [weak] {
          if (auto self = weak.lock(); self && !self->closed_) self->guarded([&] { self->drain_pushes(); });
        });
      });
      guarded([&] { drain_pushes(); });  // what waited while the analyser was not connected
    }
    for (;;) {
      // A cancellation that came between two reads (the server replaced this session) would
      // not end the next one: look before each.
      const asio::cancellation_state cs = co_await asio::this_coro::cancellation_state;
      if (cs.cancelled() != asio::cancellation_type::none) {
        say(describe_end(asio::error::operation_aborted));
        break;
      }
      auto [ec, n] = co_await stream_.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      if (ec) {
        say(describe_end(ec));
        break;
      }
      const std::size_t got = n;
      if (!guarded([&] {
            // Outbox full: refuse the next transfer (NAK to ENQ) rather than take what cannot be kept.
            ingest_.link().set_busy(!sink_.accepting());
            handle(ingest_.feed(std::string_view(buf.data(), got)));
          }))
        break;
      if (const buffer_budget* over = share_.set(ingest_.buffered_bytes())) {
        say(std::string("unfinished data over the ") + (share_.is_device(over) ? "device's" : "daemon's") +
            " buffer limit (" + std::to_string(over->limit) +
            " bytes): connection closed, the incomplete message dropped (the analyser resends it) [LINK-004]");
        break;
      }
    }
    shutdown();
  }

 private:
  static constexpr std::size_t timer_count = 6;  // astm::timer_id values

  static astm::link_options with_deferred_ack(astm::link_options o) {
    o.defer_final_ack = true;
    return o;
  }

  void say(std::string_view what) const {
    std::string line = "astm " + (cfg_.device.empty() ? std::string("link") : cfg_.device) + ": ";
    line += what;
    emit(log_, line);
  }

  // Runs f; an exception is a bug: logged, and the link closed so its owner restarts it.
  template <class F>
  bool guarded(F&& f) {
    try {
      f();
      return true;
    } catch (const std::exception& e) {
      say(std::string("bug: exception in the link driver: ") + e.what() + " [LINK-007]");
    } catch (...) {
      say("bug: unknown exception in the link driver [LINK-007]");
    }
    close_stream(stream_);
    return false;
  }

  std::string describe_end(const boost::system::error_code& ec) {
    std::string what = ec == boost::asio::error::eof ? "peer closed the connection"
                       : ec == boost::asio::error::operation_aborted ? "link stopped"
                                                                     : "read failed: " + ec.message();
    // Only when something of a message is held: a peer that closes after its last message was
    // ACKed but before its EOT has lost nothing.
    if (ingest_.buffered_bytes() > 0) {
      what += "; mid-transfer: the incomplete message is dropped (the analyser resends it)";
    }
    if (epoch_ != 0) what += "; a message handed to the outbox was not acknowledged (it may arrive twice)";
    return what;
  }

  void handle(astm::link_actions acts) {
    perform(acts);
    for (const auto& a : acts) {
      if (a.what == astm::link_action::kind::duplicate_frame) {
        say("frame " + std::to_string(a.frame_number) + " received twice: ACKed and ignored");
      } else if (a.what == astm::link_action::kind::sent) {
        say("message " + std::to_string(a.id) + " sent to the analyser");
        finish_push(a.id);
      } else if (a.what == astm::link_action::kind::send_failed) {
        if (!give_up_push(a.id, a.reason))
          say("message " + std::to_string(a.id) + " not sent yet (kept queued): " + a.reason);
      }
    }
    for (const auto& p : ingest_.take_problems()) {
      say("byte " + std::to_string(p.offset) + (p.warning ? ": warning: " : ": ") + p.what);
    }
    if (epoch_ != 0 && !ingest_.link().awaiting_confirmation()) {
      // The analyser gave up waiting (EOT) while the outbox persisted: it will resend.
      say("analyser ended the transfer before its message was durable; it will resend it");
      epoch_ = 0;
      sink_timer_.cancel();
    }
    std::vector<devices::astm_message_out> msgs = ingest_.take_messages();
    if (msgs.empty()) return;
    const bool confirm = ingest_.link().awaiting_confirmation() && epoch_ == 0;
    std::uint64_t ep = 0;
    if (confirm) {
      ep = epoch_ = next_epoch_++;
      outstanding_ = msgs.size();
      all_durable_ = true;
      arm_sink_timer(ep);
    }
    for (auto& m : msgs) {
      if (!m.batch.queries.empty() && cfg_.answer_queries) {
        for (auto& text : cfg_.answer_queries(m.batch.queries)) {
          astm::link_actions out;
          const std::uint64_t id = ingest_.link().queue_message(std::move(text), out);
          say("answer to the host query queued as message " + std::to_string(id));
          perform(out);
        }
      }
      delivery d;
      d.device = cfg_.device;
      d.protocol = protocol::astm;
      d.results = std::move(m.batch.results);
      d.queries = std::move(m.batch.queries);
      d.orders = std::move(m.batch.orders);
      d.sender = std::move(m.batch.sender);
      d.raw = std::move(m.text);
      d.offset = m.offset;
      d.profile = m.profile;
      std::weak_ptr<astm_link_driver> weak = this->shared_from_this();
      auto ex = stream_.get_executor();
      // Posted, so a sink that answers inside hand_off() does not re-enter this function.
      sink_.hand_off(std::move(d), [weak, ex, ep](bool durable) {
        boost::asio::post(ex, [weak, ep, durable] {
          if (auto self = weak.lock()) self->on_done(ep, durable);
        });
      });
    }
  }

  // Pushed messages move onto the link's sender side at once: the link itself waits for a
  // neutral line.
  void drain_pushes() {
    while (auto m = cfg_.push->take()) {
      astm::link_actions out;
      const std::uint64_t id = ingest_.link().queue_message(m->text, out);
      pushed_.emplace(id, std::move(*m));
      say("order download queued as message " + std::to_string(id));
      handle(std::move(out));
    }
  }

  void finish_push(std::uint64_t id) {
    auto it = pushed_.find(id);
    if (it == pushed_.end()) return;
    push_message m = std::move(it->second);
    pushed_.erase(it);
    if (m.done) m.done(true, {});
  }

  // A pushed message failed a session: kept for the link's retry, or given up once it has had
  // push_attempts sessions. True when given up.
  bool give_up_push(std::uint64_t id, const std::string& reason) {
    auto it = pushed_.find(id);
    if (it == pushed_.end()) return false;
    const int attempts = ++it->second.attempts;
    if (attempts < cfg_.push_attempts || !ingest_.link().withdraw(id)) return false;
    push_message m = std::move(it->second);
    pushed_.erase(it);
    say("message " + std::to_string(id) + " given up after " + std::to_string(attempts) + " attempts: " + reason + " [ORDER-003]");
    if (m.done) m.done(false, reason + " (" + std::to_string(attempts) + " attempts)");
    return true;
  }

  // The connection ends: pushed messages not acknowledged go back, in order, for the next one.
  void release_pushes() noexcept {
    if (!cfg_.push) return;
    cfg_.push->detach(push_token_);
    try {
      for (auto it = pushed_.rbegin(); it != pushed_.rend(); ++it) cfg_.push->put_back(std::move(it->second));
    } catch (...) {
      // Out of memory while putting back: the daemon pushes what is still pending at its next
      // waiting-list refresh.
    }
    pushed_.clear();
  }

  void on_done(std::uint64_t ep, bool durable) {
    if (ep == 0 || ep != epoch_) {
      if (!durable) say("the outbox could not store a message whose transfer is already over; the analyser is not told [OUTBOX-006]");
      return;
    }
    if (!durable) all_durable_ = false;
    if (--outstanding_ > 0) return;
    epoch_ = 0;
    sink_timer_.cancel();
    if (!all_durable_) say("the outbox could not store the message: end frame NAKed, the analyser resends it [OUTBOX-006]");
    guarded([&] { handle(ingest_.confirm(all_durable_)); });
  }

  void arm_sink_timer(std::uint64_t ep) {
    sink_timer_.expires_after(cfg_.sink_timeout);
    std::weak_ptr<astm_link_driver> weak = this->shared_from_this();
    sink_timer_.async_wait([weak, ep](const boost::system::error_code& ec) {
      if (ec) return;
      auto self = weak.lock();
      if (!self || self->epoch_ != ep) return;
      self->epoch_ = 0;  // a late done() is ignored: the resend is handed again (at least once)
      self->say("the outbox did not answer in time: end frame NAKed, the analyser resends it [OUTBOX-007]");
      self->guarded([&] { self->handle(self->ingest_.confirm(false)); });
    });
  }

  void perform(const astm::link_actions& acts) {
    using kind = astm::link_action::kind;
    for (const auto& a : acts) {
      count(a);
      switch (a.what) {
        case kind::send:
          send(a.bytes);
          break;
        case kind::start_timer:
          arm(a.timer, a.duration);
          break;
        case kind::stop_timer:
          disarm(a.timer);
          break;
        default:
          break;
      }
    }
  }

  void count(const astm::link_action& a) noexcept {
    if (!cfg_.counters) return;
    using kind = astm::link_action::kind;
    if (a.what == kind::send && a.bytes.size() == 1 && a.bytes[0] == astm::control::nak) ++cfg_.counters->naks_sent;
    if (a.what == kind::refused) ++cfg_.counters->naks_received;
    if (a.what == kind::frame_rejected && (a.error == astm::frame_error::bad_checksum ||
                                           a.error == astm::frame_error::checksum_not_hex))
      ++cfg_.counters->checksum_errors;
  }

  static std::size_t index(astm::timer_id t) noexcept { return static_cast<std::size_t>(t); }

  void arm(astm::timer_id t, std::chrono::milliseconds d) {
    const std::size_t i = index(t);
    const std::uint64_t gen = ++gens_[i];  // a stale expiry of an earlier arm is told apart
    timers_[i].expires_after(d);
    std::weak_ptr<astm_link_driver> weak = this->shared_from_this();
    timers_[i].async_wait([weak, t, gen](const boost::system::error_code& ec) {
      if (ec) return;
      auto self = weak.lock();
      if (!self || self->closed_ || self->gens_[index(t)] != gen) return;
      self->guarded([&] {
        if (t == astm::timer_id::receive && self->ingest_.link().state() == astm::link_state::receiving) {
          // LIS1-A 6.5.2: nothing complete for the receive timeout. A frame trickled in slowly ends
          // here too, and the technician must see why the analyser will send it again.
          const std::size_t held = self->ingest_.buffered_bytes();
          self->say("no frame or EOT completed within " +
                    std::to_string(self->ingest_.link().options().receive_timeout.count() / 1000) + " s" +
                    (self->ingest_.in_frame() ? " (a frame was still arriving)" : "") + ": transfer ended" +
                    (held > 0 ? ", " + std::to_string(held) + " bytes of an incomplete message dropped" : "") +
                    ", the analyser resends [LINK-006]");
        }
        self->handle(self->ingest_.timeout(t));
      });
    });
  }

  void disarm(astm::timer_id t) {
    const std::size_t i = index(t);
    ++gens_[i];
    timers_[i].cancel();
  }

  void send(std::string bytes) {
    if (closed_) return;
    out_.push_back(std::move(bytes));
    if (!writing_) write_next();
  }

  void write_next() {
    writing_ = true;
    auto self = this->shared_from_this();
    boost::asio::async_write(stream_, boost::asio::buffer(out_.front()),
                             [self](const boost::system::error_code& ec, std::size_t) {
                               self->out_.pop_front();
                               if (ec) {
                                 self->writing_ = false;
                                 self->out_.clear();
                                 if (!self->closed_) {
                                   self->say("write failed: " + ec.message() + " [LINK-008]");
                                   close_stream(self->stream_);  // ends the read loop
                                 }
                                 return;
                               }
                               if (self->out_.empty()) {
                                 self->writing_ = false;
                               } else {
                                 self->write_next();
                               }
                             });
  }

  void shutdown() {
    closed_ = true;
    (void)share_.set(0);
    release_pushes();
    for (std::size_t i = 0; i < timer_count; ++i) disarm(static_cast<astm::timer_id>(i));
    sink_timer_.cancel();
    close_stream(stream_);
  }

  Stream stream_;
  devices::astm_ingest ingest_;
  astm_link_config cfg_;
  batch_sink& sink_;
  event_log log_;
  buffer_share share_;
  std::vector<boost::asio::steady_timer> timers_;
  std::array<std::uint64_t, timer_count> gens_{};
  boost::asio::steady_timer sink_timer_;
  std::deque<std::string> out_;
  bool writing_ = false;
  bool closed_ = false;
  std::uint64_t epoch_ = 0;  // the delivery awaiting the outbox (0: none)
  std::uint64_t next_epoch_ = 1;
  std::size_t outstanding_ = 0;
  bool all_durable_ = true;
  std::map<std::uint64_t, push_message> pushed_;  // by link message id: taken, not yet finished
  std::uint64_t push_token_ = 0;
};

}  // namespace detail

// Runs one ASTM link until the peer disconnects, a read fails or the coroutine is cancelled.
// `sink` must outlive the coroutine; `log` receives one line per event.
template <class Stream>
boost::asio::awaitable<void> run_astm_link(Stream stream, astm_link_config config, batch_sink& sink,
                                           event_log log) {
  // Cancellation (server shutdown, a replacing connection) ends the read as a value, like a disconnect.
  co_await boost::asio::this_coro::throw_if_cancelled(false);
  std::shared_ptr<detail::astm_link_driver<Stream>> driver;
  try {
    driver = std::make_shared<detail::astm_link_driver<Stream>>(std::move(stream), config, sink, log);
  } catch (const std::exception& e) {
    emit(log, std::string("astm ") + config.device + ": bug: could not start the link: " + e.what());
    co_return;
  }
  try {
    co_await driver->run();
  } catch (const std::exception& e) {
    emit(log, std::string("astm ") + config.device + ": bug: link ended by an exception: " + e.what());
  } catch (...) {
    emit(log, std::string("astm ") + config.device + ": bug: link ended by an unknown exception");
  }
}

}  // namespace interfaced::transport
