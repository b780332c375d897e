#include "daemon/sim/player.hpp"

#include <algorithm>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "parsers/hl7/ack.hpp"
#include "parsers/hl7/mllp.hpp"

namespace interfaced::sim::detail {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

template <class Stream>
asio::awaitable<player::outcome> player::play_hl7(Stream& s) {
  hl7::mllp_decoder decoder;
  asio::steady_timer timer(io_);
  std::vector<char> buf(8192);
  std::string pending;  // bytes read but not yet given to the decoder
  while (next_ < total_) {
    if (opt_.frame_delay.count() > 0) co_await sleep(opt_.frame_delay);
    if (!co_await write(s, hl7::mllp_wrap(message(next_)))) {
      err_ << label(next_) << ": connection lost; resending it from its start\n";
      co_return outcome::lost;
    }
    timer.expires_after(opt_.reply_timeout);
    std::string reply;  // the daemon's acknowledgement
    bool got_reply = false;
    while (!got_reply) {
      // Replies already buffered first.
      std::string_view rest(pending);
      while (!rest.empty() && !got_reply) {
        const hl7::mllp_put_result pr = decoder.put(rest);
        rest.remove_prefix(pr.consumed);
        if (pr.event.kind == hl7::mllp_event_kind::message) {
          got_reply = true;
          reply = pr.event.message;
        } else if (pr.event.kind == hl7::mllp_event_kind::none && pr.consumed == 0) {
          break;
        }
      }
      pending.erase(0, pending.size() - rest.size());
      if (got_reply) break;
      auto r = co_await (s.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable)) ||
                         timer.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (r.index() == 1) {
        err_ << label(next_) << ": no acknowledgement within " << opt_.reply_timeout.count() << " ms\n";
        any_failed_ = true;
        co_return outcome::failed;
      }
      auto [ec, n] = std::get<0>(r);
      if (ec) {
        err_ << label(next_) << ": connection lost (" << ec.message() << "); resending it from its start\n";
        co_return outcome::lost;
      }
      pending.append(buf.data(), n);
    }
    // Read as the daemon reads a host's reply; only MSA-1 decides (AA / CA acknowledged, anything
    // else not), whatever else check_response() finds to criticise.
    const hl7::response_report ack = hl7::check_response(reply);
    if (ack.ack_code == "AA" || ack.ack_code == "CA") {
      out_ << label(next_) << " acknowledged (" << ack.ack_code << ")" << std::endl;
    } else {
      const bool has_msa = std::none_of(ack.problems.begin(), ack.problems.end(), [](const hl7::response_problem& p) {
        return p.error == hl7::response_error::unparsable || p.error == hl7::response_error::missing_msa;
      });
      err_ << label(next_) << " not acknowledged: ";
      if (has_msa) {
        err_ << "MSA-1 " << ack.ack_code;
        if (!ack.text.empty()) err_ << " (" << ack.text << ")";
      } else {
        err_ << "reply without MSA";
      }
      err_ << '\n';
      any_failed_ = true;
    }
    ++next_;
  }
  co_return outcome::done;
}

template asio::awaitable<player::outcome> player::play_hl7(tcp::socket&);
template asio::awaitable<player::outcome> player::play_hl7(asio::posix::stream_descriptor&);

}  // namespace interfaced::sim::detail
