// The small HTTP server (transport/http_server): real loopback connections from a Beast client on
// the same io_context, bounded runs. What the handler sees, immediate and deferred replies, a
// connection closed without a reply, stop(), and HTTPS.

#include <catch2/catch.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "support/certificates.hpp"
#include "support/scratch_dir.hpp"
#include "transport/http_client.hpp"
#include "transport/http_server.hpp"
#include "transport_test_support.hpp"

using namespace interfaced::transport;
using namespace interfaced::transport::test;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// One keep-alive client connection: send() starts an exchange, run the loop until done(); then
// response holds the answer, or nothing when the server closed the connection without one.
class test_client {
 public:
  test_client(asio::io_context& io, std::uint16_t port) : io_(io), socket_(connect_loopback(io, port)) {}

  void send(const std::string& method, const std::string& target, const std::string& body = {},
            const std::vector<http_header>& headers = {}, bool keep_alive = true) {
    request_ = {};
    request_.method_string(method);
    request_.target(target);
    request_.version(11);
    request_.set(http::field::host, "127.0.0.1");
    for (const auto& h : headers) request_.insert(h.name, h.value);
    request_.body() = body;
    request_.keep_alive(keep_alive);
    request_.prepare_payload();
    response.reset();
    spawn(io_, exchange(), finished_);
  }
  [[nodiscard]] bool done() const noexcept { return finished_; }

  std::optional<http::response<http::string_body>> response;

 private:
  asio::awaitable<void> exchange() {
    auto [wec, wn] = co_await http::async_write(socket_, request_, asio::as_tuple(asio::use_awaitable));
    (void)wn;
    if (wec) co_return;
    http::response<http::string_body> res;
    auto [rec, rn] = co_await http::async_read(socket_, buffer_, res, asio::as_tuple(asio::use_awaitable));
    (void)rn;
    if (!rec) response = std::move(res);
  }

  asio::io_context& io_;
  asio::ip::tcp::socket socket_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  bool finished_ = true;
};

// Sends one request and runs the loop until its exchange ended (REQUIREd within the bound).
void exchange(asio::io_context& io, test_client& c, const std::string& method, const std::string& target,
              const std::string& body = {}, const std::vector<http_header>& headers = {}) {
  c.send(method, target, body, headers);
  REQUIRE(run_until(io, [&] { return c.done(); }));
}

// A POST through the backend client (which speaks HTTPS) carrying an Idempotency-Key.
asio::awaitable<void> post_with_key(http_client& client, std::string key, std::optional<http_result>& out) {
  std::string body = "{}";
  std::vector<http_header> headers{{"Idempotency-Key", std::move(key)}};
  out = co_await client.request(http_method::post, "/x", std::move(body), std::move(headers));
}

}  // namespace

TEST_CASE("http_server: the handler sees method, target, body and headers, reply headers are sent, kept alive") {
  asio::io_context io;
  std::vector<http_request_view> seen;
  http_server_options o;
  o.server_header = "test-server";
  http_server server(io.get_executor(), o, [&](const http_request_view& r) {
    seen.push_back(r);
    http_reply reply{201, "text/plain", "made " + r.body};
    reply.headers.push_back({"Retry-After", "7"});
    reply.headers.push_back({"X-Seen", std::string(r.header("x-request-id"))});
    return reply;
  });
  REQUIRE_FALSE(server.start());
  REQUIRE(server.port() != 0);

  test_client c(io, server.port());
  exchange(io, c, "POST", "/things?x=1", "{\"a\":1}", {{"X-Request-ID", "abc"}, {"Idempotency-Key", "k1"}});
  REQUIRE(c.response);
  CHECK(c.response->result_int() == 201);
  CHECK(c.response->body() == "made {\"a\":1}");
  CHECK((*c.response)[http::field::server] == "test-server");
  CHECK((*c.response)[http::field::content_type] == "text/plain");
  CHECK((*c.response)[http::field::retry_after] == "7");
  CHECK((*c.response)["X-Seen"] == "abc");

  REQUIRE(seen.size() == 1);
  CHECK(seen[0].method == "POST");
  CHECK(seen[0].target == "/things?x=1");
  CHECK(seen[0].body == "{\"a\":1}");
  // Names as the client spelled them, in order; lookups ignore case.
  bool request_id_as_sent = false;
  for (const auto& h : seen[0].headers) request_id_as_sent |= h.name == "X-Request-ID" && h.value == "abc";
  CHECK(request_id_as_sent);
  CHECK(seen[0].header("idempotency-key") == "k1");
  CHECK(seen[0].header("IDEMPOTENCY-KEY") == "k1");
  CHECK(seen[0].header("Host") == "127.0.0.1");
  CHECK(seen[0].header("Authorization").empty());

  // The same connection serves the next request (HTTP/1.1 keep-alive).
  exchange(io, c, "GET", "/again");
  REQUIRE(c.response);
  CHECK(c.response->result_int() == 201);
  REQUIRE(seen.size() == 2);
  CHECK(seen[1].method == "GET");
  CHECK(seen[1].target == "/again");
}

TEST_CASE("http_server: a handler that throws answers 500 and the server keeps serving") {
  asio::io_context io;
  http_server server(io.get_executor(), {}, [](const http_request_view& r) -> http_reply {
    if (r.target == "/boom") throw std::runtime_error("boom");
    return {200, "application/json", "{}"};
  });
  REQUIRE_FALSE(server.start());
  test_client c(io, server.port());
  exchange(io, c, "GET", "/boom");
  REQUIRE(c.response);
  CHECK(c.response->result_int() == 500);
  CHECK(c.response->body().find("boom") != std::string::npos);
  exchange(io, c, "GET", "/fine");
  REQUIRE(c.response);
  CHECK(c.response->result_int() == 200);
}

TEST_CASE("http_server: a deferred reply is sent when the responder is called, other connections are served meanwhile") {
  asio::io_context io;
  std::optional<http_responder> held;
  http_server server(io.get_executor(), {}, [&](const http_request_view& r, http_responder respond) {
    if (r.target == "/slow") {
      held = respond;
      return;
    }
    respond({200, "application/json", "\"fast\""});
  });
  REQUIRE_FALSE(server.start());

  test_client slow(io, server.port());
  slow.send("GET", "/slow");
  REQUIRE(run_until(io, [&] { return held.has_value(); }));

  // The slow request holds up neither the loop nor another connection.
  test_client fast(io, server.port());
  exchange(io, fast, "GET", "/fast");
  REQUIRE(fast.response);
  CHECK(fast.response->body() == "\"fast\"");
  run_for(io, 50ms);
  CHECK_FALSE(slow.done());

  (*held)({202, "application/json", "\"late\""});
  (*held)({500, "application/json", "\"second call ignored\""});
  REQUIRE(run_until(io, [&] { return slow.done(); }));
  REQUIRE(slow.response);
  CHECK(slow.response->result_int() == 202);
  CHECK(slow.response->body() == "\"late\"");

  // The connection is kept alive after a deferred reply.
  held.reset();
  slow.send("GET", "/slow");
  REQUIRE(run_until(io, [&] { return held.has_value(); }));
  (*held)({200, "application/json", "\"again\""});
  REQUIRE(run_until(io, [&] { return slow.done(); }));
  REQUIRE(slow.response);
  CHECK(slow.response->body() == "\"again\"");
}

TEST_CASE("http_server: close_without_reply closes the connection and sends nothing, at once or deferred") {
  asio::io_context io;
  std::optional<http_responder> held;
  int calls = 0;
  http_server server(io.get_executor(), {}, [&](const http_request_view& r, http_responder respond) {
    ++calls;
    http_reply drop;
    drop.close_without_reply = true;
    if (r.target == "/later") {
      held = respond;
    } else {
      respond(drop);
    }
  });
  REQUIRE_FALSE(server.start());

  test_client now(io, server.port());
  exchange(io, now, "POST", "/now", "{}");
  CHECK_FALSE(now.response);
  CHECK(calls == 1);

  test_client later(io, server.port());
  later.send("POST", "/later", "{}");
  REQUIRE(run_until(io, [&] { return held.has_value(); }));
  http_reply drop;
  drop.close_without_reply = true;
  (*held)(drop);
  REQUIRE(run_until(io, [&] { return later.done(); }));
  CHECK_FALSE(later.response);
  CHECK(calls == 2);

  // The server itself is still up.
  test_client next(io, server.port());
  held.reset();
  exchange(io, next, "POST", "/now", "{}");
  CHECK(calls == 3);
}

TEST_CASE("http_server: a body over body_limit ends the connection without calling the handler") {
  asio::io_context io;
  int calls = 0;
  http_server_options o;
  o.body_limit = 16;
  http_server server(io.get_executor(), o, [&](const http_request_view&) {
    ++calls;
    return http_reply{};
  });
  REQUIRE_FALSE(server.start());
  test_client c(io, server.port());
  exchange(io, c, "POST", "/x", std::string(17, 'a'));
  CHECK_FALSE(c.response);
  CHECK(calls == 0);
}

TEST_CASE("http_server: stop() closes open connections, a pending responder then does nothing, start() again serves") {
  asio::io_context io;
  std::optional<http_responder> held;
  int calls = 0;
  http_server server(io.get_executor(), {}, [&](const http_request_view&, http_responder respond) {
    ++calls;
    held = respond;
  });
  REQUIRE_FALSE(server.start());
  const std::uint16_t port = server.port();

  test_client waiting(io, port);
  waiting.send("GET", "/pending");
  REQUIRE(run_until(io, [&] { return held.has_value(); }));

  server.stop();
  REQUIRE(run_until(io, [&] { return waiting.done(); }));
  CHECK_FALSE(waiting.response);
  (*held)({200, "application/json", "{}"});  // nothing left to answer: no effect, no crash
  run_for(io, 20ms);
  CHECK(server.port() == 0);
  CHECK(calls == 1);

  // A backend coming back on the same port.
  http_server_options o;
  o.port = port;
  http_server again(io.get_executor(), o, [](const http_request_view&) { return http_reply{200, "text/plain", "back"}; });
  REQUIRE_FALSE(again.start());
  test_client c(io, port);
  exchange(io, c, "GET", "/");
  REQUIRE(c.response);
  CHECK(c.response->body() == "back");
  CHECK(calls == 1);
}

TEST_CASE("http_server: HTTPS with tls_cert and tls_key, a bad key is a start() error") {
  interfaced::test::scratch_dir certs;
  interfaced::test::write_test_certificates(certs.path());

  asio::io_context io;
  event_lines log;
  std::vector<std::string> headers_seen;
  http_server_options o;
  o.tls_cert = certs / "server.pem";
  o.tls_key = certs / "server.key";
  o.log_name = "tls test";
  o.log = log.logger();
  http_server server(io.get_executor(), o, [&](const http_request_view& r) {
    headers_seen.emplace_back(r.header("Idempotency-Key"));
    return http_reply{200, "application/json", "{\"secure\":true}"};
  });
  REQUIRE_FALSE(server.start());

  http_client_options co;
  co.base_url = "https://127.0.0.1:" + std::to_string(server.port());
  co.ca_file = (certs / "ca.pem").string();
  co.connect_timeout = 2000ms;
  http_client client(io.get_executor(), co);
  std::optional<http_result> result;
  bool finished = false;
  spawn(io, post_with_key(client, "tls-1", result), finished);
  REQUIRE(run_until(io, [&] { return finished; }));
  REQUIRE(result);
  INFO(result->ec.message());
  REQUIRE_FALSE(result->ec);
  CHECK(result->status == 200);
  CHECK(result->body == "{\"secure\":true}");
  CHECK(headers_seen == std::vector<std::string>{"tls-1"});

  // A plain-text client fails the handshake, which is logged.
  test_client plain(io, server.port());
  exchange(io, plain, "GET", "/");
  CHECK_FALSE(plain.response);
  REQUIRE(run_until(io, [&] { return log.contains("tls test: TLS handshake failed"); }));
  CHECK(headers_seen.size() == 1);

  http_server_options bad = o;
  bad.tls_key = certs / "missing.key";
  http_server broken(io.get_executor(), bad, [](const http_request_view&) { return http_reply{}; });
  CHECK(broken.start());
  CHECK(broken.port() == 0);
}
