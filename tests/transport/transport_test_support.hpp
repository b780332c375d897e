#pragma once
// Helpers for transport tests: an event-log recorder, byte-level peers (an MLLP message reader
// among them), the E1381 control characters, and a protocol session server on an ephemeral
// loopback port. The bounded io_context runs (run_until, run_for, spawn) are the test-support
// library's (support/asio_loop.hpp), named here for the tests of this folder.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "parsers/astm/control.hpp"
#include "parsers/hl7/mllp.hpp"
#include "support/asio_loop.hpp"
#include "transport/event_log.hpp"
#include "transport/sink.hpp"
#include "transport/tcp.hpp"

namespace interfaced::transport::test {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using interfaced::test::run_for;
using interfaced::test::run_until;
using interfaced::test::spawn;

// E1381 (LIS1-A) control characters, as an analyser-side peer sends and expects them.
using interfaced::astm::control::ack;
using interfaced::astm::control::enq;
using interfaced::astm::control::eot;
using interfaced::astm::control::nak;

struct event_lines {
  std::vector<std::string> lines;
  event_log logger() {
    return [this](std::string_view l) { lines.emplace_back(l); };
  }
  [[nodiscard]] bool contains(std::string_view s) const {
    for (const auto& l : lines) {
      if (l.find(s) != std::string::npos) return true;
    }
    return false;
  }
  [[nodiscard]] std::string joined() const {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
};

template <class Stream>
asio::awaitable<std::optional<char>> read_byte(Stream& s) {
  char c = 0;
  auto [ec, n] = co_await asio::async_read(s, asio::buffer(&c, 1), asio::as_tuple(asio::use_awaitable));
  if (ec || n != 1) co_return std::nullopt;
  co_return c;
}

template <class Stream>
asio::awaitable<bool> write_all(Stream& s, std::string_view bytes) {
  auto [ec, n] = co_await asio::async_write(s, asio::buffer(bytes.data(), bytes.size()),
                                            asio::as_tuple(asio::use_awaitable));
  (void)n;
  co_return !ec;
}

// Emplaces and starts (REQUIREd) a tcp_server on an ephemeral 127.0.0.1 port whose connections
// run `session`; server->port() is the port it got.
inline void start_loopback_server(std::optional<tcp_server>& server, asio::io_context& io, tcp_session session,
                                  event_log log) {
  tcp_server_options o;
  o.bind_address = "127.0.0.1";
  server.emplace(io.get_executor(), o, std::move(session), std::move(log));
  REQUIRE(!server->start());
}

// A client socket connected (blocking) to `port` on 127.0.0.1.
inline asio::ip::tcp::socket connect_loopback(asio::io_context& io, std::uint16_t port) {
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  return s;
}

// A protocol session server on an ephemeral loopback port: each connection runs
// Run(socket, cfg, *use, log) (run_astm_link<tcp::socket>, run_mllp_session<tcp::socket>); the
// deliveries go to `sink` unless `use` is pointed elsewhere. Set cfg, then start(); connect()
// opens a client socket to it.
template <class Config, auto Run>
struct session_fixture {
  asio::io_context io;
  memory_sink sink;
  batch_sink* use = &sink;
  event_lines log;
  Config cfg;
  std::optional<tcp_server> server;

  void start() {
    start_loopback_server(
        server, io,
        [this](asio::ip::tcp::socket s, std::string) { return Run(std::move(s), cfg, *use, log.logger()); },
        log.logger());
  }
  asio::ip::tcp::socket connect() { return connect_loopback(io, server->port()); }
};

// The peer end of an MLLP connection: the messages (between 0x0B and 0x1C) as they arrive.
template <class Stream>
class mllp_reader {
 public:
  explicit mllp_reader(Stream& s) : s_(s) {}
  // The next message; nullopt when the connection ended first.
  asio::awaitable<std::optional<std::string>> next() {
    for (;;) {
      while (!pending_.empty()) {
        const auto r = decoder_.put(pending_);
        std::string message(r.event.kind == hl7::mllp_event_kind::message ? r.event.message : std::string_view{});
        pending_.erase(0, r.consumed);
        if (r.event.kind == hl7::mllp_event_kind::message) co_return message;
        if (r.event.kind == hl7::mllp_event_kind::none && r.consumed == 0) pending_.clear();
      }
      char buf[2048];
      auto [ec, n] = co_await s_.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      if (ec) co_return std::nullopt;
      pending_.assign(buf, n);
    }
  }

 private:
  Stream& s_;
  hl7::mllp_decoder decoder_;
  std::string pending_;
};

}  // namespace interfaced::transport::test
