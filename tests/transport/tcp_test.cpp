// TCP server policy (allowed peers, one session per analyser) and the reconnecting client, on
// real loopback sockets.

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <optional>
#include <string>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "transport/tcp.hpp"
#include "transport_test_support.hpp"

using namespace interfaced::transport;
using namespace interfaced::transport::test;
using boost::asio::ip::tcp;

namespace {

// A session that only waits for the peer to close (or for cancellation).
asio::awaitable<void> idle_session(tcp::socket s, int& ended) {
  char c;
  auto [ec, n] = co_await s.async_read_some(asio::buffer(&c, 1), asio::as_tuple(asio::use_awaitable));
  (void)ec;
  (void)n;
  ++ended;
}

}  // namespace

TEST_CASE("backoff: exponential, capped, jitter within bounds", "[transport][tcp]") {
  backoff_policy p;
  p.initial = 1000ms;
  p.max = 60000ms;
  p.factor = 2.0;
  p.jitter = 0.2;
  CHECK(backoff_delay(p, 0, 0.5) == 1000ms);
  CHECK(backoff_delay(p, 1, 0.5) == 2000ms);
  CHECK(backoff_delay(p, 5, 0.5) == 32000ms);
  CHECK(backoff_delay(p, 6, 0.5) == 60000ms);    // capped
  CHECK(backoff_delay(p, 1000, 0.5) == 60000ms); // no overflow
  CHECK(backoff_delay(p, 0, 0.0) == 800ms);      // -20 %
  CHECK(backoff_delay(p, 0, 0.999999) >= 1199ms);
  CHECK(backoff_delay(p, 20, 0.999999) == 60000ms);  // jitter never exceeds the cap
}

TEST_CASE("tcp server: peers not allowed are refused and logged", "[transport][tcp]") {
  asio::io_context io;
  event_lines log;
  int sessions = 0;
  tcp_server_options o;
  o.bind_address = "127.0.0.1";
  o.allowed_peers = {"10.1.2.3"};
  tcp_server server(
      io.get_executor(), o, [&](tcp::socket s, std::string) { ++sessions; return idle_session(std::move(s), sessions); },
      log.logger());
  REQUIRE(!server.start());
  tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), server.port()});
  std::optional<char> got = 'x';
  bool done = false;
  // The coroutine lambda is a named local: a temporary one would be destroyed (with its
  // captures) while its coroutine still runs.
  auto reader = [&]() -> asio::awaitable<void> { got = co_await read_byte(s); };
  spawn(io, reader(), done);
  INFO(log.joined());
  REQUIRE(run_until(io, [&] { return done; }));
  CHECK(!got);  // closed by the server
  CHECK(sessions == 0);
  CHECK(log.contains("refused connection from 127.0.0.1"));

  tcp_server_options bad = o;
  bad.allowed_peers = {"not-an-address"};
  tcp_server s2(io.get_executor(), bad, [&](tcp::socket sk, std::string) { return idle_session(std::move(sk), sessions); },
                log.logger());
  CHECK(s2.start());
}

TEST_CASE("tcp server: a reconnect from the same analyser replaces its session, keep-alive on",
          "[transport][tcp]") {
  asio::io_context io;
  event_lines log;
  int ended = 0;
  int keepalive = -1;
  int idle = -1;
  tcp_server_options o;
  o.bind_address = "127.0.0.1";
  o.keepalive.idle = std::chrono::seconds(42);
  tcp_server server(
      io.get_executor(), o,
      [&](tcp::socket s, std::string) {
        asio::socket_base::keep_alive ka;
        s.get_option(ka);
        keepalive = ka.value() ? 1 : 0;
        asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPIDLE> ki;
        s.get_option(ki);
        idle = ki.value();
        return idle_session(std::move(s), ended);
      },
      log.logger());
  REQUIRE(!server.start());
  tcp::socket a(io);
  a.connect({asio::ip::make_address("127.0.0.1"), server.port()});
  REQUIRE(run_until(io, [&] { return server.sessions() == 1; }));
  CHECK(keepalive == 1);
  CHECK(idle == 42);
  tcp::socket b(io);
  b.connect({asio::ip::make_address("127.0.0.1"), server.port()});
  INFO(log.joined());
  REQUIRE(run_until(io, [&] { return ended == 1 && server.sessions() == 1; }));
  CHECK(log.contains("replaces"));
  server.close_sessions();
  REQUIRE(run_until(io, [&] { return server.sessions() == 0; }));
  CHECK(ended == 2);
}

TEST_CASE("tcp server: at max_sessions another analyser is refused (one line, counted), a reconnect still replaces",
          "[transport][tcp]") {
  asio::io_context io;
  event_lines log;
  int ended = 0;
  tcp_server_options o;
  o.bind_address = "127.0.0.1";
  o.max_sessions = 1;
  tcp_server server(
      io.get_executor(), o, [&](tcp::socket s, std::string) { return idle_session(std::move(s), ended); }, log.logger());
  REQUIRE(!server.start());
  CHECK(server.listening());
  tcp::socket a(io);
  a.connect({asio::ip::make_address("127.0.0.1"), server.port()});
  REQUIRE(run_until(io, [&] { return server.sessions() == 1; }));
  // Another address (the whole of 127/8 is loopback on Linux): over the limit.
  tcp::socket other(io);
  other.open(tcp::v4());
  other.bind({asio::ip::make_address("127.0.0.2"), 0});
  other.connect({asio::ip::make_address("127.0.0.1"), server.port()});
  std::optional<char> got = 'x';
  bool done = false;
  auto reader = [&]() -> asio::awaitable<void> { got = co_await read_byte(other); };
  spawn(io, reader(), done);
  INFO(log.joined());
  REQUIRE(run_until(io, [&] { return done; }));
  CHECK(!got);  // closed at once
  CHECK(server.refused() == 1);
  CHECK(server.sessions() == 1);
  CHECK(log.contains("refused connection from 127.0.0.2"));
  CHECK(log.contains("(max_sessions 1) [LINK-003]"));
  // The same analyser reconnecting is not refused: it replaces its own session.
  tcp::socket again(io);
  again.connect({asio::ip::make_address("127.0.0.1"), server.port()});
  REQUIRE(run_until(io, [&] { return ended == 1 && server.sessions() == 1; }));
  CHECK(server.replaced() == 1);
  CHECK(server.refused() == 1);
  server.stop();
  CHECK_FALSE(server.listening());
  server.close_sessions();
  REQUIRE(run_until(io, [&] { return server.sessions() == 0; }));
}

TEST_CASE("tcp client: reconnects with backoff after refusals and disconnects", "[transport][tcp]") {
  asio::io_context io;
  event_lines log;
  // Reserve a port, then close it: the first attempts are refused.
  tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acc.local_endpoint().port();
  acc.close();

  tcp_client_options o;
  o.host = "127.0.0.1";
  o.port = port;
  o.backoff.initial = 5ms;
  o.backoff.max = 40ms;
  o.connect_timeout = 1000ms;
  int sessions = 0;
  asio::cancellation_signal stop;
  bool client_done = false;
  asio::co_spawn(io,
                 run_tcp_client(o,
                                [&](tcp::socket s, std::string) -> asio::awaitable<void> {
                                  ++sessions;
                                  char c;
                                  co_await s.async_read_some(asio::buffer(&c, 1), asio::as_tuple(asio::use_awaitable));
                                },
                                log.logger()),
                 asio::bind_cancellation_slot(stop.slot(), [&](std::exception_ptr e) {
                   client_done = true;
                   if (e) std::rethrow_exception(e);
                 }));
  INFO(log.joined());
  REQUIRE(run_until(io, [&] { return log.contains("connect failed"); }));

  // Now listen; accept and drop each connection: the client comes back every time.
  tcp::acceptor listener(io, {asio::ip::make_address("127.0.0.1"), port});
  int accepted = 0;
  bool acceptor_done = false;
  auto acceptor = [&]() -> asio::awaitable<void> {  // named: it must outlive its coroutine
    while (accepted < 3) {
      auto [ec, s] = co_await listener.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      ++accepted;
      s.close();
    }
  };
  spawn(io, acceptor(), acceptor_done);
  REQUIRE(run_until(io, [&] { return acceptor_done && sessions == 3; }));
  CHECK(log.contains("reconnecting in"));

  stop.emit(asio::cancellation_type::terminal);
  REQUIRE(run_until(io, [&] { return client_done; }));
}
