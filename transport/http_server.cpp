#include "transport/http_server.hpp"

#include <exception>
#include <map>
#include <optional>
#include <type_traits>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace interfaced::transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

std::string_view http_request_view::header(std::string_view name) const noexcept {
  for (const auto& h : headers) {
    if (beast::iequals(h.name, name)) return h.value;
  }
  return {};
}

struct http_responder::state {
  bool answered = false;
  http_reply reply;
  std::function<void()> wake;  // set while the connection waits for this reply
};

void http_responder::operator()(http_reply reply) const {
  if (!state_ || state_->answered) return;
  state_->answered = true;
  state_->reply = std::move(reply);
  if (state_->wake) state_->wake();
}

namespace {

using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// What stop() needs to end a connection wherever its session is: in a read or write (the socket
// is closed) or waiting for a deferred reply (the wait is cancelled).
struct connection {
  explicit connection(const asio::any_io_executor& ex) : reply_wait(ex) {}
  asio::steady_timer reply_wait;
  std::function<void()> close_socket;
  std::shared_ptr<ssl::context> tls;  // outlives the connection's ssl_stream
  bool closed = false;

  void close() {
    closed = true;
    if (close_socket) close_socket();
    reply_wait.cancel();
  }
};

template <class Stream>
void close_lowest_layer(Stream& s) {
  error_code ignored;
  auto& socket = beast::get_lowest_layer(s).socket();
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

}  // namespace

struct http_server::impl : std::enable_shared_from_this<impl> {
  impl(asio::any_io_executor e, http_server_options o, http_deferred_handler h)
      : ex(std::move(e)), opt(std::move(o)), handler(std::move(h)), acceptor(ex) {}

  asio::any_io_executor ex;
  http_server_options opt;
  http_deferred_handler handler;
  tcp::acceptor acceptor;
  std::shared_ptr<ssl::context> tls;
  // Bumped by start() and stop(): an accept loop from an earlier start() ends instead of serving.
  std::uint64_t generation = 0;
  std::uint64_t next_id = 1;
  std::map<std::uint64_t, std::shared_ptr<connection>> connections;

  error_code start() {
    error_code ec;
    std::shared_ptr<ssl::context> ctx;
    if (!opt.tls_cert.empty() || !opt.tls_key.empty()) {
      ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
      ctx->use_certificate_chain_file(opt.tls_cert.string(), ec);
      if (!ec) ctx->use_private_key_file(opt.tls_key.string(), ssl::context::pem, ec);
      if (ec) return ec;
    }
    const auto address = asio::ip::make_address(opt.bind, ec);
    if (ec) return ec;
    const tcp::endpoint ep(address, opt.port);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      error_code ignored;
      acceptor.close(ignored);
      return ec;
    }
    tls = std::move(ctx);
    const std::uint64_t gen = ++generation;
    asio::co_spawn(ex, accept_loop(gen), asio::detached);
    return {};
  }

  void stop() {
    ++generation;
    error_code ignored;
    acceptor.close(ignored);
    auto open = std::move(connections);
    connections.clear();
    for (auto& [id, c] : open) c->close();
  }

  asio::awaitable<void> accept_loop(std::uint64_t gen) {
    auto self = shared_from_this();
    while (co_await accept_one(gen)) {
    }
  }

  // One accepted connection; false when this loop is done. Kept out of accept_loop()'s body: GCC 12
  // mis-destroys locals of a loop body that spans co_await.
  asio::awaitable<bool> accept_one(std::uint64_t gen) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (gen != generation) co_return false;
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return false;
      emit(opt.log, opt.log_name + ": accept failed: " + ec.message() + " [HEALTH-002]");
      co_return true;
    }
    auto c = std::make_shared<connection>(ex);
    const std::uint64_t id = next_id++;
    connections.emplace(id, c);
    if (tls) {
      c->tls = tls;
      auto stream = std::make_shared<tls_stream>(std::move(socket), *tls);
      c->close_socket = [w = std::weak_ptr<tls_stream>(stream)] {
        if (auto s = w.lock()) close_lowest_layer(*s);
      };
      asio::co_spawn(ex, session(stream, c, id), asio::detached);
    } else {
      auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
      c->close_socket = [w = std::weak_ptr<beast::tcp_stream>(stream)] {
        if (auto s = w.lock()) close_lowest_layer(*s);
      };
      asio::co_spawn(ex, session(stream, c, id), asio::detached);
    }
    co_return true;
  }

  template <class Stream>
  asio::awaitable<void> session(std::shared_ptr<Stream> stream, std::shared_ptr<connection> c, std::uint64_t id) {
    auto self = shared_from_this();
    bool ready = true;
    if constexpr (std::is_same_v<Stream, tls_stream>) ready = co_await handshake(*stream);
    if (ready) {
      beast::flat_buffer buffer;
      while (co_await serve_one(*stream, buffer, c)) {
      }
    }
    close_lowest_layer(*stream);
    connections.erase(id);
  }

  asio::awaitable<bool> handshake(tls_stream& stream) {
    beast::get_lowest_layer(stream).expires_after(opt.handshake_timeout);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, asio::as_tuple(asio::use_awaitable));
    if (ec) emit(opt.log, opt.log_name + ": TLS handshake failed: " + ec.message() + " [HEALTH-002]");
    co_return !ec;
  }

  // The handler's reply to one request: at once, or when its responder is called. A connection
  // closed meanwhile (stop()) gets close_without_reply.
  asio::awaitable<http_reply> answer(const http_request_view& request, const std::shared_ptr<connection>& c) {
    auto st = std::make_shared<http_responder::state>();
    const http_responder respond(st);
    try {
      handler(request, respond);
    } catch (const std::exception& e) {
      respond({500, "text/plain", std::string("internal error: ") + e.what() + "\n"});
    }
    if (!st->answered) {
      st->wake = [w = std::weak_ptr<connection>(c)] {
        if (auto p = w.lock()) p->reply_wait.cancel();
      };
      while (!st->answered && !c->closed) {
        c->reply_wait.expires_at(asio::steady_timer::time_point::max());
        (void)co_await c->reply_wait.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      st->wake = nullptr;
    }
    if (c->closed || !st->answered) {
      http_reply gone;
      gone.close_without_reply = true;
      co_return gone;
    }
    co_return std::move(st->reply);
  }

  // One request and its answer; false when the connection is done. Kept out of session()'s loop:
  // GCC 12 mis-destroys locals of a loop body that spans co_await and break.
  template <class Stream>
  asio::awaitable<bool> serve_one(Stream& stream, beast::flat_buffer& buffer, const std::shared_ptr<connection>& c) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(opt.body_limit);
    beast::get_lowest_layer(stream).expires_after(opt.idle_timeout);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    (void)n;
    // After stop() a request that was already read is not handed to the handler.
    if (ec || c->closed) co_return false;
    http::request<http::string_body> req = parser.release();
    http_request_view view;
    view.method = std::string(req.method_string());
    view.target = std::string(req.target());
    for (const auto& h : req) view.headers.push_back({std::string(h.name_string()), std::string(h.value())});
    view.body = std::move(req.body());
    http_reply reply = co_await answer(view, c);
    if (reply.close_without_reply) co_return false;
    http::response<http::string_body> res{static_cast<http::status>(reply.status), req.version()};
    res.set(http::field::server, opt.server_header);
    res.set(http::field::content_type, reply.content_type);
    for (const auto& h : reply.headers) res.set(h.name, h.value);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(reply.body);
    res.prepare_payload();
    beast::get_lowest_layer(stream).expires_after(opt.idle_timeout);
    auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    (void)wn;
    co_return !wec && res.keep_alive();
  }
};

http_server::http_server(asio::any_io_executor ex, http_server_options options, http_deferred_handler handler)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(options), std::move(handler))) {}

http_server::http_server(asio::any_io_executor ex, http_server_options options, http_handler handler)
    : http_server(std::move(ex), std::move(options),
                  http_deferred_handler([h = std::move(handler)](const http_request_view& r, http_responder respond) {
                    respond(h(r));
                  })) {}

http_server::~http_server() { stop(); }

boost::system::error_code http_server::start() { return impl_->start(); }

std::uint16_t http_server::port() const noexcept {
  error_code ec;
  const auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void http_server::stop() { impl_->stop(); }

}  // namespace interfaced::transport
