#pragma once
// The HL7 MLLP session: one coroutine per connection, owning its stream. Bytes go through one
// hl7::mllp_decoder kept across reads (a message may arrive in many reads, several in one), each
// message through devices::hl7_ingest (normalise), then to the batch_sink; the ACK goes back in the
// order the messages came.
//
// Acknowledgements (original mode, built by parsers/hl7/ack.hpp from the received MSH):
//  - AA only after the sink said done(true) (persist, then acknowledge), or at once for types that
//    carry nothing to keep (ESU, ACK...: options.ignored_types);
//  - AE for a readable message that is wrong (no MSH-10, unsupported type) or that the outbox
//    could not store (done(false), no answer within sink_timeout): the analyser resends it;
//  - AR while the sink is not accepting (outbox full).
// A message the MLLP decoder rejects (too long, interrupted by a new 0x0B) gets no ACK: nothing of
// it was kept, not even its MSH-10; the decoder resyncs on the next 0x0B and the session goes on.
// Order download (config.push): a second coroutine of the session sends the host's OML^O33 work
// orders (LAB-28) and waits for each one's ACK; one writer at a time on the stream, and no push
// while a received message is being handled (see mllp_session_config::push).
// Failures are lines for the event_log; a disconnect ends the coroutine; nothing escapes it.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "devices/hl7_ingest.hpp"
#include "parsers/hl7/ack.hpp"
#include "parsers/hl7/builders.hpp"
#include "parsers/hl7/message.hpp"
#include "parsers/hl7/mllp.hpp"
#include "parsers/hl7/normalise.hpp"
#include "transport/buffer_budget.hpp"
#include "transport/event_log.hpp"
#include "transport/hl7_peer.hpp"
#include "transport/link_counters.hpp"
#include "transport/push_queue.hpp"
#include "transport/sink.hpp"
#include "transport/stream_util.hpp"

namespace interfaced::transport {

struct mllp_session_config {
  const devices::profile_catalog* catalog = nullptr;
  const devices::device_profile* forced = nullptr;
  std::string device;
  hl7::mllp_options mllp;
  hl7::ack_options ack;  // vendor variations, from the device profile
  std::chrono::milliseconds sink_timeout{20000};
  // No byte for this long inside a message (after its 0x0B, before its 0x1C): the partial message
  // is dropped and the connection closed, as the ASTM receive timeout ends a stalled transfer
  // (LIS1-A 6.5.2); the analyser, never acknowledged, resends. 0: no limit. Between messages a
  // connection may stay silent for as long as the analyser likes.
  std::chrono::milliseconds idle_timeout{30000};
  std::size_t read_size = 8192;
  // MSH-10 and MSH-7 of our ACKs; empty: a process-wide counter and the local clock.
  std::function<std::string()> next_control_id;
  std::function<std::string()> timestamp;
  // Host queries (QBP^Q11, LAB-27; Mindray QRY^Q02): called with the message text and its queries
  // once it was stored; returns the messages to send (HL7 text without MLLP framing, each framed
  // on its own): the first (RSP^K11, QCK^Q02) instead of the ACK, the others (OML^O33 work orders,
  // DSR^Q03 downloads) right after it; their ACKs from the analyser (ACK^Q03 ...) are replies,
  // logged and never acknowledged. Nothing returned: the usual ACK. Empty function: queries are
  // acknowledged like any message.
  std::function<std::vector<std::string>(std::string_view text, const std::vector<query>& queries)> answer_query;
  // Order download (worklist push): messages the host starts (OML^O33, unframed), taken from this
  // queue one at a time. Each is written when no received message is being handled, then its
  // reply is awaited (MSA-2 = its MSH-10): AA or CA: done; AE, AR, CE, CR, or no reply within
  // push_ack_timeout: kept and sent again after push_retry_wait, push_attempts sends in all, then
  // given up (its done(false) with the reason). Null: no pushes.
  std::shared_ptr<push_queue> push;
  std::chrono::milliseconds push_ack_timeout{10000};
  std::chrono::milliseconds push_retry_wait{30000};
  int push_attempts = 3;
  // Negative acknowledgements sent and received on this connection, for /metrics. Null: not counted.
  std::shared_ptr<link_counters> counters;
  // Updated from every message received; pushed orders with an empty MSH-5 / MSH-6 are addressed
  // from it when they are written. Null: pushed as built.
  std::shared_ptr<hl7_peer> peer;
  // Unfinished bytes (a message spanning reads), bounded per device and daemon-wide
  // (buffer_budget.hpp). Null: only mllp.max_message bounds them.
  std::shared_ptr<buffer_budget> device_buffers;
  std::shared_ptr<buffer_budget> total_buffers;
};

namespace detail {

inline std::string default_control_id() {
  // Unique per process run: start time in seconds + a counter (MSH-10 is at most 20 characters).
  static const std::string prefix = "IF" + std::to_string(static_cast<std::uint64_t>(std::time(nullptr)) % 100000000u) + "-";
  static std::atomic<std::uint64_t> counter{0};
  return prefix + std::to_string(++counter);
}

inline std::string default_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[32];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S%z", &tm);
  return std::string(buf, n);
}

// HL7 table 0357 code for a normalise error.
inline std::string_view error_code_for(const std::error_code& e) {
  if (e == hl7::normalise_error::missing_control_id || e == hl7::normalise_error::missing_message_type) {
    return "101";  // required field missing
  }
  if (e == hl7::normalise_error::unknown_message_type) return "200";  // unsupported message type
  return "207";  // application internal error (message could not be read)
}

struct done_wait {
  explicit done_wait(const boost::asio::any_io_executor& ex) : timer(ex) {}
  boost::asio::steady_timer timer;
  std::optional<bool> durable;
};

// What the session and its order pusher share. Single-threaded: flags, and timers to wait on
// (cancelled to wake the waiter).
struct mllp_push_state {
  explicit mllp_push_state(const boost::asio::any_io_executor& ex)
      : wake(ex), reply_wait(ex), retry(ex), turn_free(ex), finished(ex) {
    turn_free.expires_at(boost::asio::steady_timer::time_point::max());
  }

  // One writer at a time on the stream (the session's replies, the pusher's orders). The session
  // holds the turn from a received message until its reply is written, so nothing is pushed
  // while the analyser waits for our answer. False when the session closed meanwhile.
  boost::asio::awaitable<bool> acquire() {
    while (writing && !closed) {
      auto [ec] = co_await turn_free.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      (void)ec;  // cancelled by release() or close(): look again
    }
    if (closed) co_return false;
    writing = true;
    co_return true;
  }
  void release() {
    writing = false;
    turn_free.cancel();  // the expiry stays at max: a waiter that wakes and finds it taken waits again
  }
  void close() {
    closed = true;
    wake.cancel();
    reply_wait.cancel();
    retry.cancel();
    turn_free.cancel();
  }

  boost::asio::steady_timer wake;        // the pusher, idle: cancelled by a push
  boost::asio::steady_timer reply_wait;  // the ACK of the pushed message
  boost::asio::steady_timer retry;       // before sending a refused message again
  boost::asio::steady_timer turn_free;   // a writer waiting for the turn
  boost::asio::steady_timer finished;    // the session, waiting for the pusher to end
  bool writing = false;
  bool closed = false;
  bool running = false;                  // the pusher coroutine has not ended yet
  std::string awaiting;                  // MSH-10 of the pushed message whose reply is due
  struct push_reply {
    std::string code;                 // MSA-1
    std::string error;                // the error code, if any
    std::vector<std::string> refused;  // orders refused inside it (ORC-1 UA...), "ORC-2 (ORC-1)"
  };
  std::optional<push_reply> reply;
};

// Releases the write turn when the session's scope ends (a write that failed included).
struct turn_guard {
  mllp_push_state* st = nullptr;
  bool held = false;
  ~turn_guard() {
    if (st && held) st->release();
  }
};

// The order pusher of one session: takes messages from the queue while the session lives. Ends
// when the session closes (the message in hand goes back to the queue's front) and says so.
template <class Stream>
boost::asio::awaitable<void> run_mllp_pusher(Stream& stream, std::shared_ptr<mllp_push_state> st,
                                             std::shared_ptr<push_queue> queue, mllp_session_config config,
                                             event_log log, std::string prefix) {
  namespace asio = boost::asio;
  auto say = [&](std::string_view what) { emit(log, prefix + std::string(what)); };
  try {
    while (!st->closed) {
      std::optional<push_message> m = queue->take();
      if (!m) {
        st->wake.expires_at(asio::steady_timer::time_point::max());
        auto [ec] = co_await st->wake.async_wait(asio::as_tuple(asio::use_awaitable));
        (void)ec;  // a push, or the session closing
        continue;
      }
      hl7::message parsed;
      std::string id;
      if (!hl7::parse_message(m->text, parsed)) id = std::string(parsed.msh().field(10).raw());
      if (id.empty()) {
        say("bug: an order download without MSH-10 was given up [LINK-007]");
        if (m->done) m->done(false, "not an HL7 message with MSH-10");
        continue;
      }
      if (!co_await st->acquire()) {
        queue->put_back(std::move(*m));
        break;
      }
      st->awaiting = id;
      st->reply.reset();
      const std::string framed =
          hl7::mllp_wrap(config.peer ? hl7::address_to(m->text, config.peer->application, config.peer->facility)
                                     : m->text);
      auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(framed), asio::as_tuple(asio::use_awaitable));
      (void)wn;
      st->release();
      if (wec) {
        st->awaiting.clear();
        queue->put_back(std::move(*m));
        if (!st->closed) {
          say("write failed: " + wec.message());
          close_stream(stream);  // ends the session's read loop
        }
        break;
      }
      say("order download " + id + " sent, waiting for the analyser's ACK");
      if (!st->reply) {
        st->reply_wait.expires_after(config.push_ack_timeout);
        auto [ec] = co_await st->reply_wait.async_wait(asio::as_tuple(asio::use_awaitable));
        (void)ec;  // the reply came (cancelled), the time is up, or the session closed
      }
      st->awaiting.clear();
      if (!st->reply && st->closed) {
        queue->put_back(std::move(*m));
        break;
      }
      std::string reason;
      if (st->reply) {
        const auto& [code, error, refused] = *st->reply;
        if (code == "AA" || code == "CA") {
          if (refused.empty()) {
            if (m->done) m->done(true, {});
            continue;
          }
          // The message was taken, some orders in it were not: sending it again gets the same
          // answer, so this is final (the daemon sends it again once the order changes).
          std::string which;
          for (const auto& r : refused) which += (which.empty() ? "" : ", ") + r;
          reason = "MSA-1 " + code + " but the analyser refused order " + which;
          say("order download " + id + ": " + reason);
          if (m->done) m->done(false, reason);
          continue;
        }
        reason = "MSA-1 " + code + (error.empty() ? "" : ", error " + error);
      } else {
        reason = "no ACK within " + std::to_string(config.push_ack_timeout.count()) + " ms";
      }
      const int attempts = ++m->attempts;
      if (attempts >= config.push_attempts) {
        say("order download " + id + " given up after " + std::to_string(attempts) + " attempts: " + reason + " [ORDER-003]");
        if (m->done) m->done(false, reason + " (" + std::to_string(attempts) + " attempts)");
        continue;
      }
      say("order download " + id + " not accepted (" + reason + "): sent again in " +
          std::to_string(config.push_retry_wait.count()) + " ms (attempt " + std::to_string(attempts) + " of " +
          std::to_string(config.push_attempts) + ")");
      queue->put_back(std::move(*m));  // first in line; a connection that ends meanwhile hands it on
      st->retry.expires_after(config.push_retry_wait);
      auto [ec] = co_await st->retry.async_wait(asio::as_tuple(asio::use_awaitable));
      (void)ec;
    }
  } catch (const std::exception& e) {
    say(std::string("bug: order download ended by an exception: ") + e.what() + " [LINK-007]");
  } catch (...) {
    say("bug: order download ended by an unknown exception [LINK-007]");
  }
  st->running = false;
  st->finished.cancel();
}

}  // namespace detail

// Runs one MLLP connection until the peer disconnects, a read or write fails or the coroutine is
// cancelled. `sink` must outlive the coroutine.
template <class Stream>
boost::asio::awaitable<void> run_mllp_session(Stream stream, mllp_session_config config, batch_sink& sink,
                                              event_log log) {
  namespace asio = boost::asio;
  const std::string prefix = "hl7 " + (config.device.empty() ? std::string("session") : config.device) + ": ";
  auto say = [&](std::string_view what) { emit(log, prefix + std::string(what)); };
  // Cancellation ends the current wait as a value; the session then stops like on a disconnect.
  co_await asio::this_coro::throw_if_cancelled(false);
  std::shared_ptr<detail::mllp_push_state> pusher;
  std::uint64_t push_token = 0;
  try {
    devices::hl7_ingest ingest(config.catalog, config.forced, config.device);
    hl7::mllp_decoder decoder(config.mllp);
    std::vector<char> buf(config.read_size == 0 ? 8192 : config.read_size);
    auto ex = co_await asio::this_coro::executor;
    if (config.push) {
      pusher = std::make_shared<detail::mllp_push_state>(ex);
      pusher->running = true;
      push_token = config.push->attach([st = pusher] { st->wake.cancel(); });
      // Named locals moved in: GCC 12 double-frees temporaries passed to a coroutine's by-value
      // parameters (see daemon/run.cpp).
      std::shared_ptr<detail::mllp_push_state> st = pusher;
      std::shared_ptr<push_queue> queue = config.push;
      mllp_session_config policy = config;
      event_log pusher_log = log;
      std::string pusher_prefix = prefix;
      asio::co_spawn(ex,
                     detail::run_mllp_pusher(stream, std::move(st), std::move(queue), std::move(policy),
                                             std::move(pusher_log), std::move(pusher_prefix)),
                     [](const std::exception_ptr&) {});
    }

    auto make_ack = [&](std::string_view text, hl7::ack_code code, std::string_view err_code,
                        std::string_view err_text, std::size_t seg, std::size_t field) {
      const std::string id = config.next_control_id ? config.next_control_id() : detail::default_control_id();
      const std::string ts = config.timestamp ? config.timestamp() : detail::default_timestamp();
      hl7::ack_request req;
      req.code = code;
      req.control_id = id;
      req.timestamp = ts;
      req.error_code = err_code;
      req.error_text = err_text;
      req.error_segment = seg;
      req.error_field = field;
      if (config.counters && code != hl7::ack_code::aa) ++config.counters->naks_sent;
      return hl7::mllp_wrap(hl7::build_ack(text, req, config.ack));
    };

    // One received message -> the MLLP-wrapped ACK to send back.
    auto process = [&](std::string_view text, std::uint64_t offset) -> asio::awaitable<std::string> {
      if (config.peer) {
        if (const auto who = hl7::sender_of(text); !who.application.empty() || !who.facility.empty()) {
          config.peer->application = std::string(who.application);
          config.peer->facility = std::string(who.facility);
        }
      }
      if (!sink.accepting()) {
        say("byte " + std::to_string(offset) + ": outbox full: message refused (AR)");
        co_return make_ack(text, hl7::ack_code::ar, "207", "cannot accept messages now, retry later", 0, 0);
      }
      const hl7::hl7_diagnostic diag = ingest.feed_message(text, offset);
      for (const auto& p : ingest.take_problems()) {
        say("byte " + std::to_string(p.offset) + (p.warning ? ": warning: " : ": ") + p.what);
      }
      std::vector<devices::hl7_message_out> msgs = ingest.take_messages();
      if (diag.error) {
        co_return make_ack(text, hl7::ack_code::ae, detail::error_code_for(diag.error),
                           diag.detail.empty() ? diag.error.message() : diag.error.message() + ": " + diag.detail,
                           diag.segment_index, diag.field);
      }
      // An acknowledgement (or other reply) from the analyser is never acknowledged: ACKing an ACK
      // starts a loop some analysers never leave.
      if (!msgs.empty() && msgs.front().reply) {
        const devices::hl7_reply_info& reply = *msgs.front().reply;
        say("reply " + reply.message_type + " " + reply.ack_code + " for " + reply.acknowledged_id + " received");
        if (config.counters && reply.ack_code != "AA" && reply.ack_code != "CA") ++config.counters->naks_received;
        if (pusher && !pusher->awaiting.empty() && reply.acknowledged_id == pusher->awaiting) {
          pusher->reply = detail::mllp_push_state::push_reply{reply.ack_code, reply.error_code, reply.refused_orders};
          pusher->reply_wait.cancel();
        }
        co_return std::string{};
      }
      // Status, inventory and other messages without results: acknowledged, not forwarded.
      std::erase_if(msgs, [](const devices::hl7_message_out& m) { return !m.note.empty(); });
      if (msgs.empty()) co_return make_ack(text, hl7::ack_code::aa, {}, {}, 0, 0);

      auto wait = std::make_shared<detail::done_wait>(ex);
      wait->timer.expires_after(config.sink_timeout);
      std::string control_id = msgs.front().control_id;
      std::vector<query> queries;
      for (auto& m : msgs) {
        if (config.answer_query) queries.insert(queries.end(), m.queries.begin(), m.queries.end());
        delivery d;
        d.device = config.device;
        d.protocol = protocol::hl7;
        d.results = std::move(m.results);
        d.queries = std::move(m.queries);
        d.orders = std::move(m.orders);
        d.message_type = std::move(m.message_type);
        d.control_id = std::move(m.control_id);
        d.raw = std::string(text);
        d.offset = m.offset;
        d.profile = m.profile;
        std::weak_ptr<detail::done_wait> weak = wait;
        sink.hand_off(std::move(d), [weak](bool durable) {
          if (auto w = weak.lock(); w && !w->durable) {
            w->durable = durable;
            w->timer.cancel();
          }
        });
      }
      if (!wait->durable) co_await wait->timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (!wait->durable) {
        say("message " + control_id + ": the outbox did not answer in time (AE, the analyser resends) [OUTBOX-007]");
        co_return make_ack(text, hl7::ack_code::ae, "207", "not stored, retry later", 0, 0);
      }
      if (!*wait->durable) {
        say("message " + control_id + ": the outbox could not store it (AE, the analyser resends) [OUTBOX-006]");
        co_return make_ack(text, hl7::ack_code::ae, "207", "not stored, retry later", 0, 0);
      }
      if (!queries.empty()) {
        std::string replies;
        for (const auto& m : config.answer_query(text, queries)) replies += hl7::mllp_wrap(m);
        if (!replies.empty()) co_return replies;
      }
      co_return make_ack(text, hl7::ack_code::aa, {}, {}, 0, 0);
    };

    auto report = [&](const hl7::mllp_event& ev) {
      if (ev.kind == hl7::mllp_event_kind::skipped) {
        say("byte " + std::to_string(ev.offset) + ": " + std::to_string(ev.length) + " bytes outside a frame skipped [MLLP-001]");
      } else if (ev.kind == hl7::mllp_event_kind::error) {
        const bool refused = ev.error == hl7::mllp_error::message_too_long && !ev.message.empty();
        say("byte " + std::to_string(ev.offset) + ": MLLP: " + ev.error.message() + " (" +
            std::to_string(ev.length) + " bytes): message dropped, " + (refused ? "refused (AR)" : "no ACK"));
      }
    };

    asio::steady_timer idle(ex);
    buffer_share share(config.device_buffers, config.total_buffers);
    for (;;) {
      // A cancellation between two reads (the server replaced this session) would not end the
      // next one: look before each.
      const asio::cancellation_state cs = co_await asio::this_coro::cancellation_state;
      if (cs.cancelled() != asio::cancellation_type::none) {
        say("session stopped");
        break;
      }
      boost::system::error_code ec;
      std::size_t n = 0;
      if (config.idle_timeout.count() > 0 && decoder.in_message()) {
        using namespace asio::experimental::awaitable_operators;
        idle.expires_after(config.idle_timeout);
        auto r = co_await (stream.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable)) ||
                           idle.async_wait(asio::as_tuple(asio::use_awaitable)));
        if (r.index() == 1) {
          say("no byte for " + std::to_string(config.idle_timeout.count() / 1000) +
              " s inside a message: the incomplete message is dropped (no ACK, the analyser resends) and the "
              "connection closed [LINK-005]");
          break;
        }
        std::tie(ec, n) = std::get<0>(r);
      } else {
        std::tie(ec, n) = co_await stream.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      }
      if (ec) {
        for (hl7::mllp_event ev = decoder.finish(); ev.kind != hl7::mllp_event_kind::none; ev = decoder.finish()) {
          report(ev);
        }
        say(ec == asio::error::eof ? "peer closed the connection"
            : ec == asio::error::operation_aborted ? "session stopped"
                                                   : "read failed: " + ec.message());
        break;
      }
      std::string_view chunk(buf.data(), n);
      bool failed = false;
      while (!chunk.empty() && !failed) {
        const hl7::mllp_put_result r = decoder.put(chunk);
        chunk.remove_prefix(r.consumed);
        if (r.event.kind == hl7::mllp_event_kind::message) {
          // The view stays valid while we wait: nothing else touches buf or the decoder meanwhile.
          detail::turn_guard turn{pusher.get()};
          if (pusher) turn.held = co_await pusher->acquire();  // an order being written goes out whole first
          const std::string ack = co_await process(r.event.message, r.event.offset);
          if (ack.empty()) continue;  // nothing to answer (a reply from the analyser)
          auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(ack), asio::as_tuple(asio::use_awaitable));
          (void)wn;
          if (wec) {
            say("write failed: " + wec.message());
            failed = true;
          }
        } else {
          report(r.event);
          if (r.event.kind == hl7::mllp_event_kind::error && r.event.error == hl7::mllp_error::message_too_long &&
              !r.event.message.empty()) {
            // Refused by protocol, not by silence: AR (the analyser must not resend it as is),
            // answered now with the first segment's MSH-10; the rest of the message is discarded.
            detail::turn_guard turn{pusher.get()};
            if (pusher) turn.held = co_await pusher->acquire();
            const std::string ar =
                make_ack(r.event.message, hl7::ack_code::ar, "207",
                         "message longer than " + std::to_string(config.mllp.max_message) + " bytes: not accepted", 0, 0);
            auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(ar), asio::as_tuple(asio::use_awaitable));
            (void)wn;
            if (wec) {
              say("write failed: " + wec.message());
              failed = true;
            }
          }
          if (r.event.kind == hl7::mllp_event_kind::none && r.consumed == 0) break;
        }
      }
      if (failed) break;
      if (const buffer_budget* over = share.set(decoder.buffered_bytes())) {
        say(std::string("unfinished data over the ") + (share.is_device(over) ? "device's" : "daemon's") +
            " buffer limit (" + std::to_string(over->limit) +
            " bytes): connection closed, the incomplete message dropped (no ACK, the analyser resends it) [LINK-004]");
        break;
      }
    }
  } catch (const std::exception& e) {
    say(std::string("bug: session ended by an exception: ") + e.what() + " [LINK-007]");
  } catch (...) {
    say("bug: session ended by an unknown exception [LINK-007]");
  }
  if (pusher) {
    config.push->detach(push_token);
    pusher->close();
  }
  close_stream(stream);  // also ends a write of the pusher
  // The pusher refers to the stream: the session (which owns it) ends after it.
  while (pusher && pusher->running) {
    pusher->finished.expires_at(asio::steady_timer::time_point::max());
    auto [ec] = co_await pusher->finished.async_wait(asio::as_tuple(asio::use_awaitable));
    (void)ec;
  }
}

}  // namespace interfaced::transport
