#pragma once
// One blocking HTTP request for the command-line tools (`status`, `trace`, `outbox retry`) that
// talk to the running daemon's local endpoint: the same Beast client as delivery (IPv4 and IPv6,
// deadlines), on a private io_context, so the CLI has no HTTP code of its own and no Asio header.

#include <chrono>
#include <string>
#include <vector>

#include "transport/http_header.hpp"

namespace interfaced::transport {

struct fetch_result {
  bool answered = false;  // false: no HTTP response (error says why)
  unsigned status = 0;
  std::string body;
  std::string error;
};

// host: a name or an IPv4/IPv6 address (no brackets); method "GET" or "POST"; target with query.
[[nodiscard]] fetch_result http_fetch(const std::string& host, unsigned port, const std::string& method,
                                      const std::string& target, std::vector<http_header> headers = {},
                                      std::chrono::milliseconds timeout = std::chrono::milliseconds(5000),
                                      const std::string& body = {});

}  // namespace interfaced::transport
