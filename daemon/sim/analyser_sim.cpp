#include "daemon/sim/analyser_sim.hpp"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <fstream>
#include <iterator>
#include <ostream>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "daemon/exit_codes.hpp"
#include "parsers/astm/control.hpp"
#include "parsers/astm/frame_decoder.hpp"
#include "parsers/astm/link.hpp"
#include "parsers/astm/records.hpp"
#include "parsers/hl7/ack.hpp"
#include "parsers/hl7/mllp.hpp"
#include "transport/pty.hpp"
#include "transport/stream_util.hpp"

namespace interfaced::sim {

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
using sim_clock = std::chrono::steady_clock;

// Cut text at every H record (astm::split_messages); text before the first H is not part of a
// message, as in replay.
void cut_astm(std::string_view text, std::vector<std::string>& out) {
  const std::vector<std::size_t> starts = astm::split_messages(text);
  for (std::size_t i = 0; i < starts.size(); ++i) {
    const std::size_t end = i + 1 < starts.size() ? starts[i + 1] : text.size();
    std::string_view part = text.substr(starts[i], end - starts[i]);
    std::string msg;
    msg.reserve(part.size());
    // Records end with CR on the wire; LF may not appear in frame text (LIS1-A 6.6).
    for (std::size_t p = 0; p < part.size();) {
      const std::size_t e = part.find_first_of("\r\n", p);
      const std::string_view rec = part.substr(p, e == std::string_view::npos ? std::string_view::npos : e - p);
      if (!rec.empty()) {
        msg.append(rec);
        msg.push_back('\r');
      }
      if (e == std::string_view::npos) break;
      p = e + 1;
    }
    if (!msg.empty()) out.push_back(std::move(msg));
  }
}

// The texts the analyser sent, recovered the way replay reads a frame capture: a lenient link
// (frames without ENQ accepted) so NAKed and repeated frames count once.
std::string astm_texts_from_frames(std::string_view bytes) {
  astm::frame_decoder dec;
  astm::link_options lo;
  lo.accept_frames_without_enq = true;
  astm::link l(lo);
  std::string all;
  while (!bytes.empty()) {
    const astm::put_result r = dec.put(bytes);
    bytes.remove_prefix(r.consumed);
    if (r.event.kind == astm::event_kind::none) {
      if (r.consumed == 0) break;
      continue;
    }
    for (const auto& a : l.on_event(r.event))
      if (a.what == astm::link_action::kind::deliver) all += a.message;
  }
  return all;
}

std::string plural(std::size_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

enum class outcome { done, lost, failed };

class player {
 public:
  player(asio::io_context& io, const sim_script& script, const sim_options& opt, std::ostream& out,
         std::ostream& err)
      : io_(io), script_(script), opt_(opt), out_(out), err_(err),
        total_(script.messages.size() * static_cast<std::size_t>(std::max(opt.repeat, 1))) {}

  asio::awaitable<void> run() {
    try {
      if (!opt_.connect.empty()) {
        status_ = co_await run_connect();
      } else if (opt_.listen) {
        status_ = co_await run_listen();
      } else {
        status_ = co_await run_pty();
      }
    } catch (const std::exception& e) {
      err_ << "simulate: " << e.what() << '\n';
      status_ = exit_bad_input;
    }
    finished_ = true;
  }

  [[nodiscard]] bool finished() const noexcept { return finished_; }
  [[nodiscard]] int status() const noexcept { return status_; }
  [[nodiscard]] std::size_t acknowledged() const noexcept { return next_; }
  [[nodiscard]] std::size_t total() const noexcept { return total_; }
  [[nodiscard]] const std::string& symlink() const noexcept { return symlink_; }

 private:
  const std::string& message(std::size_t i) const { return script_.messages[i % script_.messages.size()]; }
  std::string label(std::size_t i) const { return "message " + std::to_string(i + 1) + "/" + std::to_string(total_); }

  int final_status() const { return any_failed_ ? exit_bad_input : exit_ok; }

  asio::awaitable<void> sleep(std::chrono::milliseconds d) {
    asio::steady_timer t(io_, d);
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  // ---- links ----

  asio::awaitable<int> run_connect() {
    const std::size_t colon = opt_.connect.rfind(':');
    if (colon == std::string::npos) {
      err_ << "simulate: --connect: expected HOST:PORT, got \"" << opt_.connect << "\"\n";
      co_return exit_usage;
    }
    const std::string host = opt_.connect.substr(0, colon);
    const std::string port = opt_.connect.substr(colon + 1);
    tcp::resolver resolver(io_);
    for (int connection = 0;; ++connection) {
      tcp::socket sock(io_);
      const auto deadline = sim_clock::now() + opt_.connect_timeout;
      boost::system::error_code last;
      // The daemon may still be starting: retry until connect_timeout.
      while (!sock.is_open()) {
        auto [rec, eps] = co_await resolver.async_resolve(host, port, asio::as_tuple(asio::use_awaitable));
        if (!rec) {
          for (const auto& ep : eps) {
            tcp::socket s(io_);
            auto [cec] = co_await s.async_connect(ep.endpoint(), asio::as_tuple(asio::use_awaitable));
            if (!cec) {
              sock = std::move(s);
              break;
            }
            last = cec;
          }
        } else {
          last = rec;
        }
        if (sock.is_open()) break;
        if (sim_clock::now() >= deadline) {
          err_ << "simulate: cannot connect to " << opt_.connect << ": " << last.message() << '\n';
          co_return next_ > 0 ? exit_bad_input : exit_unavailable;
        }
        co_await sleep(std::chrono::milliseconds(100));
      }
      boost::system::error_code ignored;
      sock.set_option(tcp::no_delay(true), ignored);
      if (connection > 0) out_ << "reconnected to " << opt_.connect << '\n';
      const outcome o = co_await play(sock);
      if (o != outcome::lost || next_ >= total_) co_return o == outcome::failed ? exit_bad_input : final_status();
      if (connection >= 10) {
        err_ << "simulate: connection lost too often; giving up\n";
        co_return exit_bad_input;
      }
    }
  }

  asio::awaitable<int> run_listen() {
    tcp::acceptor acceptor(io_);
    boost::system::error_code ec;
    const tcp::endpoint ep(tcp::v4(), *opt_.listen);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      err_ << "simulate: cannot listen on port " << *opt_.listen << ": " << ec.message() << '\n';
      co_return exit_unavailable;
    }
    out_ << "listening on port " << acceptor.local_endpoint().port() << std::endl;
    for (int connection = 0;; ++connection) {
      asio::steady_timer t(io_, opt_.connect_timeout);
      auto r = co_await (acceptor.async_accept(asio::as_tuple(asio::use_awaitable)) ||
                         t.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (r.index() == 1) {
        err_ << "simulate: nobody connected to port " << *opt_.listen << " within "
             << opt_.connect_timeout.count() << " ms\n";
        co_return next_ > 0 ? exit_bad_input : exit_unavailable;
      }
      auto [aec, sock] = std::move(std::get<0>(r));
      if (aec) {
        err_ << "simulate: accept failed: " << aec.message() << '\n';
        co_return exit_unavailable;
      }
      boost::system::error_code ignored;
      sock.set_option(tcp::no_delay(true), ignored);
      out_ << (connection > 0 ? "peer reconnected from " : "peer connected from ")
           << sock.remote_endpoint(ignored).address().to_string() << '\n';
      const outcome o = co_await play(sock);
      if (o != outcome::lost || next_ >= total_) co_return o == outcome::failed ? exit_bad_input : final_status();
      if (connection >= 10) {
        err_ << "simulate: connection lost too often; giving up\n";
        co_return exit_bad_input;
      }
    }
  }

  asio::awaitable<int> run_pty() {
    auto pair = transport::open_pty(io_.get_executor());
    if (!pair) {
      err_ << "simulate: cannot open a pty: " << pair.error().message() << '\n';
      co_return exit_unavailable;
    }
    std::error_code fec;
    const std::filesystem::path link_path(opt_.pty_path);
    if (std::filesystem::is_symlink(link_path, fec)) std::filesystem::remove(link_path, fec);
    if (std::filesystem::exists(link_path, fec)) {
      err_ << "simulate: --pty " << opt_.pty_path << " exists and is not a symlink; not replacing it\n";
      co_return exit_usage;
    }
    std::filesystem::create_symlink(pair->slave_path, link_path, fec);
    if (fec) {
      err_ << "simulate: cannot create " << opt_.pty_path << ": " << fec.message() << '\n';
      co_return exit_unavailable;
    }
    symlink_ = opt_.pty_path;
    out_ << opt_.pty_path << " -> " << pair->slave_path << std::endl;
    // Our slave descriptor is closed so the master reports POLLHUP until the daemon opens the
    // path: bytes written before that would sit in the tty until its open flushes them.
    boost::system::error_code ignored;
    pair->slave.close(ignored);
    auto& master = pair->master;
    const auto deadline = sim_clock::now() + opt_.connect_timeout;
    for (;;) {
      pollfd p{master.native_handle(), POLLIN, 0};
      if (::poll(&p, 1, 0) >= 0 && (p.revents & POLLHUP) == 0) break;
      if (sim_clock::now() >= deadline) {
        err_ << "simulate: nobody opened " << opt_.pty_path << " within " << opt_.connect_timeout.count() << " ms\n";
        co_return exit_unavailable;
      }
      co_await sleep(std::chrono::milliseconds(20));
    }
    // The opener configures the port right after open (LibSerial: termios, flush); give it that
    // moment so the first ENQ is not flushed away (it would cost a 15 s reply timeout).
    co_await sleep(std::chrono::milliseconds(300));
    out_ << "peer opened " << opt_.pty_path << '\n';
    const outcome o = co_await play(master);
    if (o == outcome::lost && next_ < total_) {
      err_ << "simulate: the serial peer closed the line\n";
      co_return exit_bad_input;
    }
    co_return o == outcome::failed ? exit_bad_input : final_status();
  }

  // ---- writing with fault injection ----

  // Writes bytes, cutting the connection once after opt_.drop_after bytes in all. False: the
  // connection is gone (cut on purpose, or a write failed).
  template <class Stream>
  asio::awaitable<bool> write(Stream& s, std::string_view bytes) {
    std::size_t n = bytes.size();
    bool cut = false;
    if (opt_.drop_after != 0 && !dropped_ && written_ + n >= opt_.drop_after) {
      n = static_cast<std::size_t>(opt_.drop_after - written_);
      cut = true;
    }
    if (n > 0) {
      auto [ec, w] = co_await asio::async_write(s, asio::buffer(bytes.data(), n), asio::as_tuple(asio::use_awaitable));
      written_ += w;
      if (ec) {
        err_ << "simulate: write failed: " << ec.message() << '\n';
        co_return false;
      }
    }
    if (cut) {
      dropped_ = true;
      out_ << "connection cut after " << written_ << " bytes (--drop-after)" << std::endl;
      transport::close_stream(s);
      co_return false;
    }
    co_return true;
  }

  template <class Stream>
  void finish_stream(Stream& s) {
    if constexpr (requires(boost::system::error_code& ec) { s.shutdown(tcp::socket::shutdown_send, ec); }) {
      boost::system::error_code ignored;
      s.shutdown(tcp::socket::shutdown_send, ignored);
    }
    transport::close_stream(s);
  }

  template <class Stream>
  asio::awaitable<outcome> play(Stream& s) {
    outcome o = outcome::done;
    if (script_.protocol == sim_protocol::astm) {
      o = co_await play_astm(s);
    } else {
      o = co_await play_hl7(s);
    }
    if (o == outcome::done) finish_stream(s);
    co_return o;
  }

  // ---- ASTM ----

  struct astm_session {
    astm::link link;
    astm::frame_decoder decoder;
    std::optional<astm::timer_id> timer;
    sim_clock::time_point timer_at = sim_clock::time_point::max();
    std::string last_frame;      // bytes of the frame awaiting a reply
    int last_frame_index = 0;    // its number over the run (first transmissions)
    bool last_reply_ack = true;  // the previous frame was ACKed: the next frame sent is new
    bool holding_ack = false;    // the duplicate of last_frame was sent; its reply is awaited
    std::size_t frames = 0;
    std::size_t naks = 0;
    int failures = 0;
    explicit astm_session(astm::link_options o) : link(std::move(o)) {}
  };

  astm::link_options astm_options() const {
    astm::link_options lo;
    lo.role = astm::link_role::instrument;  // the analyser has priority on contention
    lo.frame_text_size = opt_.frame_text_size;
    lo.reply_timeout = opt_.reply_timeout;
    lo.retry_wait = opt_.retry_wait;
    return lo;
  }

  // Performs link actions; false: the connection is gone or the run failed (result in `o`).
  template <class Stream>
  asio::awaitable<bool> perform(Stream& s, astm_session& ss, astm::link_actions acts, outcome& o) {
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
          ++next_;
          queue_next = true;
          break;
        case kind::send_failed:
          ++ss.failures;
          err_ << label(next_) << ": " << a.reason;
          if (ss.failures > opt_.retries) {
            err_ << "; given up after " << ss.failures << " tries\n";
            any_failed_ = true;
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
  asio::awaitable<outcome> play_astm(Stream& s) {
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
          }
        }
        if (!co_await perform(s, ss, ss.link.on_event(ev), o)) co_return o;
      }
    }
  }

  // ---- HL7 ----

  template <class Stream>
  asio::awaitable<outcome> play_hl7(Stream& s) {
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

  asio::io_context& io_;
  const sim_script& script_;
  const sim_options& opt_;
  std::ostream& out_;
  std::ostream& err_;
  std::size_t total_;
  std::size_t next_ = 0;  // the next message to play; all before it are acknowledged
  int frame_count_ = 0;
  std::uint64_t written_ = 0;
  bool dropped_ = false;
  bool duplicated_ = false;
  bool any_failed_ = false;
  bool finished_ = false;
  int status_ = exit_bad_input;
  std::string symlink_;
};

}  // namespace

std::optional<sim_script> make_sim_script(devices::capture_kind kind, const std::string& bytes,
                                          std::optional<sim_protocol> forced) {
  using devices::capture_kind;
  if (kind == capture_kind::unknown && forced) {
    kind = *forced == sim_protocol::astm ? capture_kind::astm_records : capture_kind::hl7_segments;
  }
  sim_script s;
  switch (kind) {
    case capture_kind::astm_frames:
      s.protocol = sim_protocol::astm;
      cut_astm(astm_texts_from_frames(bytes), s.messages);
      break;
    case capture_kind::astm_records:
      s.protocol = sim_protocol::astm;
      cut_astm(bytes, s.messages);
      break;
    case capture_kind::hl7_mllp: {
      s.protocol = sim_protocol::hl7;
      hl7::mllp_decoder dec;
      std::string_view rest(bytes);
      while (!rest.empty()) {
        const hl7::mllp_put_result r = dec.put(rest);
        rest.remove_prefix(r.consumed);
        if (r.event.kind == hl7::mllp_event_kind::message) s.messages.emplace_back(r.event.message);
        if (r.event.kind == hl7::mllp_event_kind::none && r.consumed == 0) break;
      }
      break;
    }
    case capture_kind::hl7_segments: {
      s.protocol = sim_protocol::hl7;
      // Messages start at each MSH segment; segments end with CR on the wire.
      std::string current;
      std::string_view text(bytes);
      for (std::size_t p = 0; p < text.size();) {
        const std::size_t e = text.find_first_of("\r\n", p);
        const std::string_view seg = text.substr(p, e == std::string_view::npos ? std::string_view::npos : e - p);
        if (!seg.empty()) {
          if (seg.starts_with("MSH") && !current.empty()) s.messages.push_back(std::exchange(current, {}));
          if (seg.starts_with("MSH") || !current.empty()) {
            current.append(seg);
            current.push_back('\r');
          }
        }
        if (e == std::string_view::npos) break;
        p = e + 1;
      }
      if (!current.empty()) s.messages.push_back(std::move(current));
      break;
    }
    case capture_kind::unknown:
      return std::nullopt;
  }
  if (forced && *forced != s.protocol) return std::nullopt;
  return s;
}

std::optional<sim_script> load_sim_script(const std::filesystem::path& file, std::optional<sim_protocol> forced,
                                          std::string& why) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    why = file.string() + ": cannot read the file";
    return std::nullopt;
  }
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const devices::capture_input cap = devices::decode_capture(bytes);
  auto script = make_sim_script(cap.kind, cap.bytes, forced);
  if (!script || script->messages.empty()) {
    why = file.string() + ": no message to play (" + cap.description + ")";
    return std::nullopt;
  }
  script->description = cap.description;
  return script;
}

int run_analyser_sim(const sim_script& script, const sim_options& options, std::ostream& out,
                     std::ostream& err) {
  const int links = (options.connect.empty() ? 0 : 1) + (options.listen ? 1 : 0) + (options.pty_path.empty() ? 0 : 1);
  if (links != 1) {
    err << "simulate: give exactly one of --connect HOST:PORT, --listen PORT, --pty PATH\n";
    return exit_usage;
  }
  if (script.protocol == sim_protocol::hl7 && (options.corrupt_frame != 0 || options.duplicate_frame != 0)) {
    err << "simulate: --corrupt-frame and --duplicate-frame apply to ASTM frames only\n";
    return exit_usage;
  }
  if (!options.pty_path.empty() && options.drop_after != 0) {
    err << "simulate: --drop-after needs a TCP link (a serial line cannot be reconnected)\n";
    return exit_usage;
  }
  if (script.messages.empty()) {
    err << "simulate: nothing to play\n";
    return exit_no_input;
  }
  asio::io_context io(1);
  player p(io, script, options, out, err);
  const auto started = sim_clock::now();
  asio::co_spawn(io, p.run(), asio::detached);
  io.run_for(options.timeout);
  int status = p.status();
  if (!p.finished()) {
    err << "simulate: timed out after " << options.timeout.count() << " ms with " << p.acknowledged() << "/"
        << p.total() << " messages acknowledged\n";
    status = exit_bad_input;
  }
  if (!p.symlink().empty()) {
    std::error_code ec;
    std::filesystem::remove(p.symlink(), ec);
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(sim_clock::now() - started).count();
  out << p.acknowledged() << "/" << p.total() << " messages acknowledged in " << ms << " ms" << std::endl;
  return status;
}

}  // namespace interfaced::sim
