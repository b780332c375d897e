#include "transport/tcp.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <map>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace interfaced::transport {

namespace asio = boost::asio;
using asio::ip::tcp;

boost::system::error_code set_keepalive(tcp::socket& socket, const keepalive_settings& k) {
  boost::system::error_code ec;
  socket.set_option(asio::socket_base::keep_alive(k.enabled), ec);
  if (ec || !k.enabled) return ec;
  using idle = asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPIDLE>;
  using interval = asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPINTVL>;
  using count = asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPCNT>;
  socket.set_option(idle(static_cast<int>(k.idle.count())), ec);
  if (!ec) socket.set_option(interval(static_cast<int>(k.interval.count())), ec);
  if (!ec) socket.set_option(count(k.count), ec);
  return ec;
}

std::chrono::milliseconds backoff_delay(const backoff_policy& p, unsigned attempt, double unit_random) noexcept {
  const double cap = static_cast<double>(p.max.count());
  // Capped before the power overflows: attempts beyond ~60 would give inf.
  double base = static_cast<double>(p.initial.count()) * std::pow(p.factor, std::min(attempt, 60u));
  base = std::min(base, cap);
  const double u = std::clamp(unit_random, 0.0, 1.0);
  const double spread = base * p.jitter * (2.0 * u - 1.0);
  const double d = std::clamp(base + spread, 0.0, cap);
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(d));
}

namespace {

// IPv4 peers of a dual-stack ("::") listener arrive as ::ffff:a.b.c.d.
asio::ip::address plain(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  return a;
}

}  // namespace

struct tcp_server::impl : std::enable_shared_from_this<tcp_server::impl> {
  impl(asio::any_io_executor e, tcp_server_options o, tcp_session s, event_log l)
      : ex(std::move(e)), opt(std::move(o)), session(std::move(s)), log(std::move(l)), acceptor(ex) {}

  struct running {
    asio::ip::address address;
    std::shared_ptr<asio::cancellation_signal> signal;
    std::string peer;
    bool replaced = false;  // cancelled by a newer connection; ends soon, never counted again
  };

  asio::any_io_executor ex;
  tcp_server_options opt;
  tcp_session session;
  event_log log;
  tcp::acceptor acceptor;
  std::vector<asio::ip::address> allowed;
  std::map<std::uint64_t, running> sessions;
  std::uint64_t next_id = 1;
  std::uint16_t bound_port = 0;
  std::uint64_t refused = 0;
  std::uint64_t replaced = 0;

  void say(const std::string& what) const {
    emit(log, "tcp " + opt.bind_address + ":" + std::to_string(bound_port) + ": " + what);
  }

  bool allowed_peer(const asio::ip::address& a) const {
    return allowed.empty() || std::find(allowed.begin(), allowed.end(), a) != allowed.end();
  }

  void start_session(tcp::socket socket) {
    boost::system::error_code ec;
    const tcp::endpoint ep = socket.remote_endpoint(ec);
    if (ec) {
      say("accepted connection vanished: " + ec.message());
      return;
    }
    const asio::ip::address address = plain(ep.address());
    const std::string peer = address.to_string() + ":" + std::to_string(ep.port());
    if (!allowed_peer(address)) {
      say("refused connection from " + peer + ": not an allowed peer");
      socket.close(ec);
      return;
    }
    // Sessions already replaced are on their way out: neither counted nor replaced again, so a
    // burst of reconnects costs one line each, not one per earlier session.
    std::string previous;
    std::size_t live = 0;
    for (auto& [id, r] : sessions) {
      if (r.replaced) continue;
      if (r.address == address) {
        r.replaced = true;
        ++replaced;
        previous += (previous.empty() ? "" : ", ") + r.peer;
        r.signal->emit(asio::cancellation_type::terminal);
      } else {
        ++live;
      }
    }
    if (opt.max_sessions != 0 && live >= opt.max_sessions) {
      ++refused;
      say("refused connection from " + peer + ": " + std::to_string(live) + " session" + (live == 1 ? "" : "s") +
          " already, the device's limit (max_sessions " + std::to_string(opt.max_sessions) + ") [LINK-003]");
      socket.close(ec);
      return;
    }
    if (const auto kec = set_keepalive(socket, opt.keepalive)) say("keep-alive on " + peer + ": " + kec.message());
    say("connection from " + peer + (previous.empty() ? "" : " replaces that analyser's previous session " + previous));
    const std::uint64_t id = next_id++;
    auto signal = std::make_shared<asio::cancellation_signal>();
    sessions.emplace(id, running{address, signal, peer});
    auto self = shared_from_this();
    asio::co_spawn(ex, run_one(self, std::move(socket), peer),
                   asio::bind_cancellation_slot(signal->slot(), [self, id, signal, peer](std::exception_ptr e) {
                     if (e) self->say("bug: session " + peer + " ended by an exception [LINK-007]");
                     self->sessions.erase(id);
                   }));
  }

  static asio::awaitable<void> run_one(std::shared_ptr<impl> self, tcp::socket socket, std::string peer) {
    try {
      co_await self->session(std::move(socket), peer);
    } catch (const std::exception& e) {
      self->say("bug: session " + peer + " ended by an exception: " + e.what() + " [LINK-007]");
    }
    self->say("session " + peer + " ended");
  }

  static asio::awaitable<void> accept_loop(std::shared_ptr<impl> self) {
    asio::steady_timer pause(self->ex);
    for (;;) {
      auto [ec, socket] = co_await self->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (!self->acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
      if (ec) {
        // Out of descriptors and the like: wait a little instead of spinning on the error.
        self->say("accept failed: " + ec.message());
        pause.expires_after(std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      try {
        self->start_session(std::move(socket));
      } catch (const std::exception& e) {
        self->say(std::string("bug: could not start a session: ") + e.what() + " [LINK-007]");
      }
    }
  }
};

tcp_server::tcp_server(asio::any_io_executor ex, tcp_server_options options, tcp_session session, event_log log)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(options), std::move(session), std::move(log))) {}

tcp_server::~tcp_server() {
  stop();
  close_sessions();
}

boost::system::error_code tcp_server::start() {
  boost::system::error_code ec;
  impl_->allowed.clear();
  for (const auto& a : impl_->opt.allowed_peers) {
    const auto address = asio::ip::make_address(a, ec);
    if (ec) return ec;
    impl_->allowed.push_back(plain(address));
  }
  const auto address = asio::ip::make_address(impl_->opt.bind_address, ec);
  if (ec) return ec;
  const tcp::endpoint ep(address, impl_->opt.port);
  auto& acc = impl_->acceptor;
  acc.open(ep.protocol(), ec);
  if (ec) return ec;
  acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    boost::system::error_code ignored;
    acc.close(ignored);
    return ec;
  }
  impl_->bound_port = acc.local_endpoint(ec).port();
  asio::co_spawn(impl_->ex, impl::accept_loop(impl_), [self = impl_](std::exception_ptr e) {
    if (e) self->say("bug: accept loop ended by an exception [LINK-007]");
  });
  return {};
}

std::uint16_t tcp_server::port() const noexcept { return impl_->bound_port; }

void tcp_server::stop() {
  boost::system::error_code ignored;
  if (impl_->acceptor.is_open()) impl_->acceptor.close(ignored);
}

void tcp_server::close_sessions() {
  std::vector<std::shared_ptr<asio::cancellation_signal>> signals;
  for (auto& [id, r] : impl_->sessions) signals.push_back(r.signal);
  for (auto& s : signals) s->emit(asio::cancellation_type::terminal);
}

std::size_t tcp_server::sessions() const noexcept { return impl_->sessions.size(); }
bool tcp_server::listening() const noexcept { return impl_->acceptor.is_open(); }
std::uint64_t tcp_server::refused() const noexcept { return impl_->refused; }
std::uint64_t tcp_server::replaced() const noexcept { return impl_->replaced; }

asio::awaitable<void> run_tcp_client(tcp_client_options options, tcp_session session, event_log log) {
  using namespace asio::experimental::awaitable_operators;
  const std::string where = options.host + ":" + std::to_string(options.port);
  auto say = [&](const std::string& what) { emit(log, "tcp client " + where + ": " + what); };
  co_await asio::this_coro::throw_if_cancelled(false);
  auto cancelled = [&]() -> asio::awaitable<bool> {
    co_return (co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none;
  };
  auto ex = co_await asio::this_coro::executor;
  std::minstd_rand rng(std::random_device{}());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  tcp::resolver resolver(ex);
  asio::steady_timer timer(ex);
  unsigned attempt = 0;
  for (;;) {
    if (co_await cancelled()) co_return;
    tcp::socket socket(ex);
    auto connect = [&]() -> asio::awaitable<boost::system::error_code> {
      auto [rec, results] = co_await resolver.async_resolve(options.host, std::to_string(options.port),
                                                            asio::as_tuple(asio::use_awaitable));
      if (rec) co_return rec;
      auto [cec, ep] = co_await asio::async_connect(socket, results, asio::as_tuple(asio::use_awaitable));
      (void)ep;
      co_return cec;
    };
    timer.expires_after(options.connect_timeout);
    boost::system::error_code ec;
    std::string failure;
    try {
      auto r = co_await (connect() || timer.async_wait(asio::use_awaitable));
      ec = r.index() == 0 ? std::get<0>(r) : asio::error::timed_out;
    } catch (const std::exception& e) {
      // Cancelled while connecting (shutdown) or a bug: either way, not a reason to crash.
      failure = e.what();
      ec = asio::error::fault;
    }
    if (co_await cancelled()) co_return;
    if (!failure.empty()) say("connect: unexpected exception: " + failure);
    const auto started = std::chrono::steady_clock::now();
    if (!ec) {
      if (const auto kec = set_keepalive(socket, options.keepalive)) say("keep-alive: " + kec.message());
      say("connected");
      try {
        co_await session(std::move(socket), where);
      } catch (const std::exception& e) {
        say(std::string("bug: session ended by an exception: ") + e.what() + " [LINK-007]");
      }
      say("session ended");
      if (co_await cancelled()) co_return;
      if (std::chrono::steady_clock::now() - started >= options.stable_after) attempt = 0;
    } else {
      say("connect failed: " + ec.message());
      if (options.on_connect_failed) options.on_connect_failed(ec.message());
    }
    const auto delay = backoff_delay(options.backoff, attempt, unit(rng));
    if (attempt < 64) ++attempt;
    say("reconnecting in " + std::to_string(delay.count()) + " ms");
    timer.expires_after(delay);
    auto [wec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (wec == asio::error::operation_aborted) co_return;
  }
}

}  // namespace interfaced::transport
