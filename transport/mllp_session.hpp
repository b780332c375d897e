#pragma once
// The HL7 MLLP session: one coroutine per connection, owning its stream. Bytes go through one
// hl7::mllp_decoder kept across reads (a message may arrive in many reads, several in one), each
// message through daemon::hl7_ingest (normalise), then to the batch_sink; the ACK goes back in the
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
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "daemon/hl7_ingest.hpp"
#include "parsers/hl7/ack.hpp"
#include "parsers/hl7/mllp.hpp"
#include "parsers/hl7/normalise.hpp"
#include "transport/event_log.hpp"
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
  std::size_t read_size = 8192;
  // MSH-10 and MSH-7 of our ACKs; empty: a process-wide counter and the local clock.
  std::function<std::string()> next_control_id;
  std::function<std::string()> timestamp;
  // Host queries (QBP^Q11, LAB-27): called with the message text and its queries once it was
  // stored; returns the messages to send (HL7 text without MLLP framing, each framed on its
  // own): the first (RSP^K11) instead of the ACK, the others (OML^O33 work orders) right after
  // it; their ACKs from the analyser are replies, logged and never acknowledged. Nothing
  // returned: the usual ACK. Empty function: queries are acknowledged like any message.
  std::function<std::vector<std::string>(std::string_view text, const std::vector<query>& queries)> answer_query;
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
  try {
    daemon::hl7_ingest ingest(config.catalog, config.forced, config.device);
    hl7::mllp_decoder decoder(config.mllp);
    std::vector<char> buf(config.read_size == 0 ? 8192 : config.read_size);
    auto ex = co_await asio::this_coro::executor;

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
      return hl7::mllp_wrap(hl7::build_ack(text, req, config.ack));
    };

    // One received message -> the MLLP-wrapped ACK to send back.
    auto process = [&](std::string_view text, std::uint64_t offset) -> asio::awaitable<std::string> {
      if (!sink.accepting()) {
        say("byte " + std::to_string(offset) + ": outbox full: message refused (AR)");
        co_return make_ack(text, hl7::ack_code::ar, "207", "cannot accept messages now, retry later", 0, 0);
      }
      const hl7::hl7_diagnostic diag = ingest.feed_message(text, offset);
      for (const auto& p : ingest.take_problems()) {
        say("byte " + std::to_string(p.offset) + (p.warning ? ": warning: " : ": ") + p.what);
      }
      std::vector<daemon::hl7_message_out> msgs = ingest.take_messages();
      if (diag.error) {
        co_return make_ack(text, hl7::ack_code::ae, detail::error_code_for(diag.error),
                           diag.detail.empty() ? diag.error.message() : diag.error.message() + ": " + diag.detail,
                           diag.segment_index, diag.field);
      }
      // An acknowledgement (or other reply) from the analyser is never acknowledged: ACKing an ACK
      // starts a loop some analysers never leave.
      if (!msgs.empty() && msgs.front().reply) {
        say("reply " + msgs.front().reply->message_type + " " + msgs.front().reply->ack_code + " for " +
            msgs.front().reply->acknowledged_id + " received");
        co_return std::string{};
      }
      // Status, inventory and other messages without results: acknowledged, not forwarded.
      std::erase_if(msgs, [](const daemon::hl7_message_out& m) { return !m.note.empty(); });
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
        say("message " + control_id + ": the outbox did not answer in time (AE, the analyser resends)");
        co_return make_ack(text, hl7::ack_code::ae, "207", "not stored, retry later", 0, 0);
      }
      if (!*wait->durable) {
        say("message " + control_id + ": the outbox could not store it (AE, the analyser resends)");
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
        say("byte " + std::to_string(ev.offset) + ": " + std::to_string(ev.length) + " bytes outside a frame skipped");
      } else if (ev.kind == hl7::mllp_event_kind::error) {
        say("byte " + std::to_string(ev.offset) + ": MLLP: " + ev.error.message() + " (" +
            std::to_string(ev.length) + " bytes): message dropped, no ACK");
      }
    };

    for (;;) {
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
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
          if (r.event.kind == hl7::mllp_event_kind::none && r.consumed == 0) break;
        }
      }
      if (failed) break;
    }
  } catch (const std::exception& e) {
    say(std::string("bug: session ended by an exception: ") + e.what());
  } catch (...) {
    say("bug: session ended by an unknown exception");
  }
  close_stream(stream);
}

}  // namespace interfaced::transport
