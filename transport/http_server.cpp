#include "transport/http_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

namespace interfaced::transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct http_server::impl : std::enable_shared_from_this<impl> {
  impl(asio::any_io_executor ex, std::string b, std::uint16_t p, http_handler h, event_log l)
      : acceptor(ex), bind(std::move(b)), port(p), handler(std::move(h)), log(std::move(l)) {}

  asio::awaitable<void> session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      stream.expires_after(std::chrono::seconds(30));
      http::request_parser<http::string_body> parser;
      parser.body_limit(1 << 20);  // control requests are tiny; a flood is refused, not buffered
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      (void)n;
      if (ec) break;
      const auto& req = parser.get();
      http_request_view view{std::string(req.method_string()), std::string(req.target()), req.body()};
      http_reply reply;
      try {
        reply = handler(view);
      } catch (const std::exception& e) {
        reply = {500, "text/plain", std::string("internal error: ") + e.what() + "\n"};
      }
      http::response<http::string_body> res{static_cast<http::status>(reply.status), req.version()};
      res.set(http::field::server, "interfaced");
      res.set(http::field::content_type, reply.content_type);
      res.keep_alive(req.keep_alive());
      res.body() = std::move(reply.body);
      res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
      (void)wn;
      if (wec || !res.keep_alive()) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        emit(log, "health endpoint: accept failed: " + ec.message());
        continue;
      }
      asio::co_spawn(acceptor.get_executor(), self->session(std::move(socket)), asio::detached);
    }
  }

  tcp::acceptor acceptor;
  std::string bind;
  std::uint16_t port;
  http_handler handler;
  event_log log;
};

http_server::http_server(asio::any_io_executor ex, std::string bind, std::uint16_t port, http_handler handler,
                         event_log log)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(bind), port, std::move(handler), std::move(log))) {}

http_server::~http_server() { stop(); }

boost::system::error_code http_server::start() {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(impl_->bind, ec);
  if (ec) return ec;
  const tcp::endpoint ep(address, impl_->port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (ec) return ec;
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  impl_->acceptor.bind(ep, ec);
  if (ec) return ec;
  impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return ec;
  asio::co_spawn(impl_->acceptor.get_executor(), impl_->accept_loop(), asio::detached);
  return {};
}

std::uint16_t http_server::port() const noexcept {
  boost::system::error_code ec;
  const auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void http_server::stop() {
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
}

}  // namespace interfaced::transport
