#include "daemon/sim/player.hpp"

#include <algorithm>
#include <ctime>
#include <string>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "devices/hl7_ingest.hpp"
#include "parsers/hl7/ack.hpp"
#include "parsers/hl7/message.hpp"
#include "parsers/hl7/mllp.hpp"

namespace interfaced::sim::detail {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

// MSH-7 of the simulator's own acknowledgements.
std::string now_stamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char b[16];
  return std::string(b, std::strftime(b, sizeof b, "%Y%m%d%H%M%S", &tm));
}

std::string control_id_of(std::string_view text) {
  hl7::message m;
  if (hl7::parse_message(text, m)) return {};
  return m.msh().field(10).decode();
}

// A DSR^Q03 is the last of its answer when its DSC-1 is empty (Mindray manual §1.2.4 DSC).
bool last_download(const hl7::message& m) {
  const auto dsc = m.find("DSC");
  return !dsc || m.segment(*dsc).field(1).empty();
}

}  // namespace

template <class Stream>
asio::awaitable<player::outcome> player::play_hl7(Stream& s) {
  hl7::mllp_decoder decoder;
  asio::steady_timer timer(io_);
  std::vector<char> buf(8192);
  std::string pending;  // bytes read but not yet given to the decoder
  std::uint64_t acks_sent = 0;
  while (next_ < total_) {
    if (opt_.frame_delay.count() > 0) co_await sleep(opt_.frame_delay);
    if (!co_await write(s, hl7::mllp_wrap(message(next_)))) {
      err_ << label(next_) << ": connection lost; resending it from its start\n";
      co_return outcome::lost;
    }
    timer.expires_after(opt_.reply_timeout);
    bool replied = false;            // the daemon's answer to this message came
    bool awaiting_download = false;  // a QCK^Q02 OK announced DSR^Q03 downloads not all here yet
    while (!replied || awaiting_download) {
      std::string incoming;  // the next message the daemon sent
      bool got = false;
      while (!got) {
        // Messages already buffered first.
        std::string_view rest(pending);
        while (!rest.empty() && !got) {
          const hl7::mllp_put_result pr = decoder.put(rest);
          rest.remove_prefix(pr.consumed);
          if (pr.event.kind == hl7::mllp_event_kind::message) {
            got = true;
            incoming = pr.event.message;
          } else if (pr.event.kind == hl7::mllp_event_kind::none && pr.consumed == 0) {
            break;
          }
        }
        pending.erase(0, pending.size() - rest.size());
        if (got) break;
        auto r = co_await (s.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable)) ||
                           timer.async_wait(asio::as_tuple(asio::use_awaitable)));
        if (r.index() == 1) {
          if (!replied) {
            err_ << label(next_) << ": no acknowledgement within " << opt_.reply_timeout.count() << " ms\n";
            count_refused("no reply");
          } else {
            err_ << label(next_) << ": QCK^Q02 said OK but the last DSR^Q03 did not come within "
                 << opt_.reply_timeout.count() << " ms\n";
            any_failed_ = true;
          }
          co_return outcome::failed;
        }
        auto [ec, n] = std::get<0>(r);
        if (ec) {
          err_ << label(next_) << ": connection lost (" << ec.message() << "); resending it from its start\n";
          co_return outcome::lost;
        }
        pending.append(buf.data(), n);
      }
      const devices::hl7_role role = devices::role_of(incoming);
      if (role.from_host && !role.reply) {
        // A download (DSR^Q03, OML^O33): the analyser acknowledges it; Mindray's form for a DSR
        // (`MSA|AA|<id>|Message accepted|||0|`, manual §1.3.2), the plain one otherwise.
        hl7::message m;
        const bool parsed = !hl7::parse_message(incoming, m);
        const std::string type = parsed ? std::string(m.msh().field(9).raw()) : std::string("?");
        hl7::ack_options ao;
        const bool dsr = parsed && m.msh().field(9).component(1).decode() == "DSR";
        if (dsr) {
          ao.accept_text = "Message accepted";
          ao.accept_code = "0";
          ao.msh_min_fields = 21;
          ao.msa_min_fields = 7;
        }
        const std::string id = "SIM" + std::to_string(++acks_sent);
        const std::string stamp = now_stamp();
        hl7::ack_request req;
        req.control_id = id;
        req.timestamp = stamp;
        if (!co_await write(s, hl7::mllp_wrap(hl7::build_ack(incoming, req, ao)))) co_return outcome::lost;
        out_ << "the daemon sent " << type << " " << control_id_of(incoming) << "; acknowledged (AA)" << std::endl;
        if (dsr && last_download(m)) awaiting_download = false;
        timer.expires_after(opt_.reply_timeout);
        continue;
      }
      if (replied) {
        err_ << label(next_) << ": a second reply to it ignored\n";
        continue;
      }
      replied = true;
      // Read as the daemon reads a host's reply; only MSA-1 decides (AA / CA acknowledged, anything
      // else refused), whatever else check_response() finds to criticise.
      const hl7::response_report ack = hl7::check_response(incoming);
      if (ack.ack_code == "AA" || ack.ack_code == "CA") {
        ++acked_;
        out_ << label(next_) << " acknowledged (" << ack.ack_code << ")" << std::endl;
        // Mindray: QCK^Q02 with QAK-2 OK announces the DSR^Q03 downloads (manual §1.3.2).
        if (std::string_view(ack.message_type).starts_with("QCK") && ack.query_status == "OK") awaiting_download = true;
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
        count_refused(has_msa ? std::string(ack.ack_code) : std::string("no MSA"));
      }
    }
    ++next_;
  }
  co_return outcome::done;
}

template asio::awaitable<player::outcome> player::play_hl7(tcp::socket&);
template asio::awaitable<player::outcome> player::play_hl7(asio::posix::stream_descriptor&);

}  // namespace interfaced::sim::detail
