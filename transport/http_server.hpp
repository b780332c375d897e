#pragma once
// A small HTTP/1.1 server on the caller's io_context: the daemon's loopback health, metrics and
// control endpoints, and the backend simulator (daemon/sim/backend_sim). The handler sees plain
// data and answers with plain data: no Asio or Beast type appears here, so the daemon includes
// this header without them.
//
// Contract:
//  - One request at a time per connection (no pipelining); a connection is kept alive as its client
//    asks (HTTP/1.1 default, `Connection: close`). Every read and write has the idle_timeout
//    deadline, a TLS handshake handshake_timeout. A body over body_limit ends the connection
//    without an answer.
//  - An http_handler answers at once. An http_deferred_handler answers through its http_responder
//    whenever it is ready (from a timer, after other I/O): the loop is never blocked while a reply
//    is pending; that connection reads nothing more until the reply is given.
//  - A reply with close_without_reply closes the connection instead of answering, as a peer that
//    went down mid-request would.
//  - A handler that throws answers 500 with the exception's text; the server keeps serving.
//  - HTTPS when tls_cert or tls_key is set (both PEM, loaded by start()).
//  - start() returns its errors (bad address, port in use, unreadable certificate or key). stop()
//    stops accepting and closes every connection; after it the handler is not called again and
//    responders do nothing. start() may be called again after stop().
//  - Single-threaded: the handler runs on the executor given at construction, and a responder must
//    be called there too.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/error_code.hpp>

#include "transport/event_log.hpp"
#include "transport/http_header.hpp"

namespace interfaced::transport {

struct http_request_view {
  std::string method;  // as sent: "GET", "POST", ...
  std::string target;  // path and query
  std::string body;
  std::vector<http_header> headers;  // as received, in order
  // The value of the first header called `name` (compared case-insensitively); empty when absent.
  [[nodiscard]] std::string_view header(std::string_view name) const noexcept;
};

struct http_reply {
  http_reply() = default;
  // The common answer in one expression (`return {404, "application/json", "..."};`).
  http_reply(unsigned s, std::string type, std::string b)
      : status(s), content_type(std::move(type)), body(std::move(b)) {}

  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<http_header> headers;  // added to the response (Retry-After, ...); replace defaults
  bool close_without_reply = false;  // close the connection instead; the members above are unused
};

// Gives a deferred handler's reply to its connection. Copyable; the first call counts, later ones
// do nothing, as does a call after the connection closed or the server stopped. A responder never
// called leaves its connection waiting until stop() or the client's hang-up is noticed at a write.
class http_responder {
 public:
  void operator()(http_reply reply) const;

  struct state;  // opaque: only the server makes responders
  explicit http_responder(std::shared_ptr<state> s) noexcept : state_(std::move(s)) {}

 private:
  std::shared_ptr<state> state_;
};

using http_handler = std::function<http_reply(const http_request_view&)>;
using http_deferred_handler = std::function<void(const http_request_view&, http_responder)>;

struct http_server_options {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 0;                     // 0: an ephemeral port, see http_server::port()
  std::string server_header = "interfaced";   // the Server header of every response
  std::string log_name = "http server";       // names this server in its log lines
  std::size_t body_limit = 1 << 20;           // control requests are small: a flood is refused
  std::chrono::seconds idle_timeout{30};
  std::chrono::seconds handshake_timeout{10};
  std::filesystem::path tls_cert;  // PEM certificate chain
  std::filesystem::path tls_key;   // PEM private key
  event_log log;                   // accept and TLS handshake failures
};

class http_server {
 public:
  http_server(boost::asio::any_io_executor ex, http_server_options options, http_handler handler);
  http_server(boost::asio::any_io_executor ex, http_server_options options, http_deferred_handler handler);
  ~http_server();  // stop()
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  [[nodiscard]] boost::system::error_code start();
  [[nodiscard]] std::uint16_t port() const noexcept;  // the bound port; 0 when not listening
  void stop();

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace interfaced::transport
