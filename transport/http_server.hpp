#pragma once
// A small HTTP/1.1 server on the daemon's io_context for the loopback health, metrics and control
// endpoints. The handler is plain data in, plain data out (no Beast types leak to the daemon).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/error_code.hpp>

#include "transport/event_log.hpp"

namespace interfaced::transport {

struct http_request_view {
  std::string method;
  std::string target;  // path and query
  std::string body;
};

struct http_reply {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
};

using http_handler = std::function<http_reply(const http_request_view&)>;

class http_server {
 public:
  http_server(boost::asio::any_io_executor ex, std::string bind, std::uint16_t port, http_handler handler,
              event_log log);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;
  [[nodiscard]] boost::system::error_code start();
  [[nodiscard]] std::uint16_t port() const noexcept;
  void stop();

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace interfaced::transport
