#pragma once
// The backend HTTP client: HTTP/1.1 over one kept-alive connection (plain TCP or TLS), built on
// Boost.Beast, used from coroutines on the daemon's io_context.
//
// Contract:
//  - One request at a time per client (the delivery loop owns one client per connection slot).
//  - Every phase has a deadline: resolve + connect + TLS handshake within connect_timeout, write +
//    read of one exchange within request_timeout. Failures are values (http_result::ec), never
//    exceptions; a response of any status is not a failure.
//  - TLS verifies the server certificate and its host name by default (system CAs, or ca_file).
//    verify_tls=false turns that off and says so once through `log`.
//  - The bearer token goes only into the Authorization header: never into a log line or an error.
//  - A kept-alive connection the server closed while idle is reconnected once, transparently.
// Construction throws std::invalid_argument for a base URL it cannot use or an unreadable CA file
// (start-up errors).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include "transport/backend_options.hpp"
#include "transport/event_log.hpp"
#include "transport/http_header.hpp"

namespace interfaced::transport {

struct http_client_options {
  std::string base_url;  // http://host[:port][/prefix] or https://...
  std::string ca_file;   // extra trust anchor (PEM); empty: the system's
  bool verify_tls = true;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{15000};
  std::string token;  // bearer token; empty: no Authorization header
  std::string user_agent = "interfaced/0.1";
  std::size_t body_limit = 64 * 1024 * 1024;  // largest response body accepted
  event_log log;                              // warnings (TLS verification off, reconnects)
};

// backend_config -> client options; the token is passed separately (load_bearer_token).
[[nodiscard]] http_client_options client_options(const backend_options& cfg, std::string token,
                                                 event_log log = {});


struct http_result {
  boost::system::error_code ec;  // set: no response (resolve, connect, TLS, timeout, reset)
  bool timed_out = false;
  unsigned status = 0;
  std::string body;
  std::optional<std::chrono::seconds> retry_after;  // Retry-After, as a delay from the response
  // upload(): the file did not match its size and SHA-256 while it was read; the request was
  // abandoned before its last bytes (the store never got a complete body). ec is set too.
  bool source_changed = false;
  [[nodiscard]] bool ok() const noexcept { return !ec && status >= 200 && status < 300; }
};

// Retry-After (RFC 9110 10.2.3): delay-seconds ("120" -> 120 s) or an HTTP-date in the IMF-fixdate
// form ("Wed, 21 Oct 2015 07:28:00 GMT" -> that instant minus `now`, 0 when past). Garbage (and
// the obsolete RFC 850 / asctime date forms) -> nullopt: the caller's own backoff applies.
[[nodiscard]] std::optional<std::chrono::seconds> parse_retry_after(
    std::string_view v, std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) noexcept;

// True when `ec` is a failed verification of the server's certificate (or its name): a
// configuration problem (CA file, host name), not a backend that is down.
[[nodiscard]] bool tls_verification_failed(const boost::system::error_code& ec) noexcept;

enum class http_method { get, post };

// A body whose middle is a file read from disk while it is sent (file-reports.md stage 2: the
// multipart form, the file as the last part): `head`, then `size` bytes of `file`, then `tail`.
// The bytes read must hash to `sha256` (hex) and the file must still have `size` bytes; this is
// checked before the last piece is written, so a changed file never completes a request.
struct streamed_body {
  std::string content_type;
  std::string head;
  std::filesystem::path file;
  std::uint64_t size = 0;
  std::string sha256;
  std::string tail;
};

class http_client {
 public:
  http_client(boost::asio::any_io_executor ex, http_client_options options);
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  // path: absolute path (and query) under the base URL's prefix, e.g. "/interfacing/device-results".
  boost::asio::awaitable<http_result> request(http_method method, std::string path, std::string body,
                                              std::vector<http_header> headers = {});
  // POST with a streamed body. request_timeout applies to each piece written and to the answer,
  // not to the whole transfer (a 500 MB file takes longer than one JSON post).
  boost::asio::awaitable<http_result> upload(std::string path, streamed_body body,
                                             std::vector<http_header> headers = {});
  // Closes the connection; a request in progress ends with operation_aborted.
  void close() noexcept;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

// backend-api.md GET helpers: the JSON text as received (the rerun module parses it).
boost::asio::awaitable<http_result> fetch_waiting_list(http_client& client, const backend_options& cfg,
                                                       std::string device);
boost::asio::awaitable<http_result> fetch_parameters(http_client& client, const backend_options& cfg,
                                                     std::string device);
boost::asio::awaitable<http_result> fetch_qc_limits(http_client& client, const backend_options& cfg,
                                                    std::string device);

// Percent-encodes a query parameter value (RFC 3986 unreserved characters pass).
[[nodiscard]] std::string url_encode(std::string_view v);

}  // namespace interfaced::transport
