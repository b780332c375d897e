#pragma once
// The backend simulator's control routes (daemon/sim/backend_sim.hpp): faults at run time
// (POST /_sim/faults with a fault object: path, method, status, count, delay, drop...; DELETE
// clears them).

#include <cstdint>
#include <string>

#include "e2e_support.hpp"

namespace interfaced::e2e {

// One request to the backend simulator's control endpoint; the status code, 0 on no answer.
inline int sim_control(std::uint16_t port, const std::string& method, const std::string& target, const std::string& body = {}) {
  tcp_conn c(port);
  if (!c.ok()) return 0;
  c.send(method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  const std::string reply = c.read_all(5000ms);
  if (reply.size() < 12 || !reply.starts_with("HTTP/1.")) return 0;
  return std::stoi(reply.substr(9, 3));
}

}  // namespace interfaced::e2e
