#pragma once
// TCP for analyser links, both directions:
//  - tcp_server: the analyser connects to us. Binds one address/port, refuses (and logs) peers not
//    in allowed_peers, runs one session coroutine per connection. A new connection from an
//    address that already has a session replaces it (the old session is cancelled, so its
//    socket closes): an analyser that reconnects has restarted, and its old socket is half-open
//    (nothing would ever arrive on it again). At most max_sessions sessions run at once: a
//    connection from another address beyond that is closed at once, with one log line and a
//    count (refused()), so the number of sessions -- and their buffers -- never grows.
//  - run_tcp_client: we connect to the analyser (host:port) and reconnect forever with capped
//    exponential backoff and jitter, every connect bounded by connect_timeout.
// A session is any coroutine taking the connected socket (run_astm_link, run_mllp_session...),
// so the server knows nothing about protocols. Everything runs on the caller's executor (the
// daemon's one io_context thread); failures are event_log lines.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include "transport/event_log.hpp"

namespace interfaced::transport {

// SO_KEEPALIVE and its Linux timing: a dead analyser (power cut, cable pulled) is noticed in
// idle + interval * count instead of never on a link that is silent between runs.
struct keepalive_settings {
  bool enabled = true;
  std::chrono::seconds idle{60};
  std::chrono::seconds interval{10};
  int count = 5;
};

boost::system::error_code set_keepalive(boost::asio::ip::tcp::socket& socket, const keepalive_settings& k);

// Delay before reconnect attempt `attempt` (0-based): min(max, initial * factor^attempt), spread
// uniformly by +-jitter (a fraction) so links that dropped together do not reconnect together.
struct backoff_policy {
  std::chrono::milliseconds initial{1000};
  std::chrono::milliseconds max{60000};
  double factor = 2.0;
  double jitter = 0.2;
};

// unit_random in [0, 1): the caller's random draw (pure, so tests are exact).
[[nodiscard]] std::chrono::milliseconds backoff_delay(const backoff_policy& p, unsigned attempt,
                                                      double unit_random) noexcept;

// A session: runs until the connection ends. peer is "address:port".
using tcp_session =
    std::function<boost::asio::awaitable<void>(boost::asio::ip::tcp::socket socket, std::string peer)>;

struct tcp_server_options {
  std::string bind_address = "0.0.0.0";
  std::uint16_t port = 0;                  // 0: an ephemeral port (tests), see port()
  std::vector<std::string> allowed_peers;  // IP addresses; empty: any peer
  keepalive_settings keepalive;
  std::size_t max_sessions = 0;            // sessions at once; 0: no limit
};

class tcp_server {
 public:
  tcp_server(boost::asio::any_io_executor ex, tcp_server_options options, tcp_session session,
             event_log log);
  ~tcp_server();  // stops accepting and cancels the sessions
  tcp_server(const tcp_server&) = delete;
  tcp_server& operator=(const tcp_server&) = delete;

  // Binds, listens and starts accepting; an error (address in use...) is returned, not thrown.
  [[nodiscard]] boost::system::error_code start();
  [[nodiscard]] std::uint16_t port() const noexcept;  // the bound port, after start()
  // Stop accepting (shutdown step one); running sessions go on.
  void stop();
  // Cancel every running session (their coroutines end as on a disconnect).
  void close_sessions();
  [[nodiscard]] std::size_t sessions() const noexcept;
  // The acceptor is open (start() succeeded and stop() was not called).
  [[nodiscard]] bool listening() const noexcept;
  // Connections closed at once because max_sessions ran; sessions replaced by a reconnect.
  [[nodiscard]] std::uint64_t refused() const noexcept;
  [[nodiscard]] std::uint64_t replaced() const noexcept;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

struct tcp_client_options {
  std::string host;
  std::uint16_t port = 0;
  std::chrono::milliseconds connect_timeout{10000};
  backoff_policy backoff;
  // A session that lasted this long resets the backoff; shorter ones (the analyser accepts and
  // closes at once) keep growing it, so a broken peer is not hammered.
  std::chrono::milliseconds stable_after{30000};
  keepalive_settings keepalive;
  // Called with the reason of every failed connect (for the owner's link state); may be empty.
  std::function<void(const std::string& why)> on_connect_failed;
};

// Connects, runs the session, reconnects; returns only when cancelled (e.g. co_spawn bound to a
// cancellation_signal, or the io_context stopped).
boost::asio::awaitable<void> run_tcp_client(tcp_client_options options, tcp_session session, event_log log);

}  // namespace interfaced::transport
