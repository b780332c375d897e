#include "daemon/sim/player.hpp"

#include <poll.h>

#include <exception>
#include <filesystem>
#include <system_error>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "daemon/exit_codes.hpp"
#include "transport/pty.hpp"
#include "transport/stream_util.hpp"

namespace interfaced::sim::detail {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

std::string plural(std::size_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

int player::final_status() const { return any_failed_ ? exit_bad_input : exit_ok; }

void player::count_refused(const std::string& reason) {
  any_failed_ = true;
  for (auto& [r, n] : refused_)
    if (r == reason) {
      ++n;
      return;
    }
  refused_.emplace_back(reason, 1);
}

std::size_t player::refused() const noexcept {
  std::size_t n = 0;
  for (const auto& r : refused_) n += r.second;
  return n;
}

std::string player::refusals() const {
  std::string s;
  for (const auto& [reason, n] : refused_) s += (s.empty() ? "" : ", ") + reason + " " + std::to_string(n);
  return s;
}

// A TCP connection ended: the run's status, or nothing to connect again and resume.
std::optional<int> player::after_connection(outcome o, int connection) {
  if (o != outcome::lost || next_ >= total_) return o == outcome::failed ? exit_bad_input : final_status();
  if (connection >= 10) {
    err_ << "simulate: connection lost too often; giving up\n";
    return exit_bad_input;
  }
  return std::nullopt;
}

asio::awaitable<void> player::run() {
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

asio::awaitable<void> player::sleep(std::chrono::milliseconds d) {
  asio::steady_timer t(io_, d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<int> player::run_connect() {
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
    if (const auto status = after_connection(co_await play(sock), connection)) co_return *status;
  }
}

asio::awaitable<int> player::run_listen() {
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
    if (const auto status = after_connection(co_await play(sock), connection)) co_return *status;
  }
}

asio::awaitable<int> player::run_pty() {
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

// Writes bytes, cutting the connection once after opt_.drop_after bytes in all. False: the
// connection is gone (cut on purpose, or a write failed).
template <class Stream>
asio::awaitable<bool> player::write(Stream& s, std::string_view bytes) {
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
void player::finish_stream(Stream& s) {
  if constexpr (requires(boost::system::error_code& ec) { s.shutdown(tcp::socket::shutdown_send, ec); }) {
    boost::system::error_code ignored;
    s.shutdown(tcp::socket::shutdown_send, ignored);
  }
  transport::close_stream(s);
}

template <class Stream>
asio::awaitable<player::outcome> player::play(Stream& s) {
  outcome o = outcome::done;
  if (script_.protocol == sim_protocol::astm) {
    o = co_await play_astm(s);
  } else {
    o = co_await play_hl7(s);
  }
  if (o == outcome::done) finish_stream(s);
  co_return o;
}

template asio::awaitable<bool> player::write(tcp::socket&, std::string_view);
template asio::awaitable<bool> player::write(asio::posix::stream_descriptor&, std::string_view);

}  // namespace interfaced::sim::detail
