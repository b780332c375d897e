#pragma once
// The delivery loop: takes due messages from the outbox and POSTs them to the backend, on the
// daemon's io_context (C++20 coroutines), over `connections` kept-alive HTTP connections.
//
// Contract (backend-api.md "Common rules"):
//  - Per ordering key, one message at a time and in append order: the next message of a key is
//    sent only after the previous one was delivered or dead-lettered; a key whose head is waiting
//    for a retry waits with it. Different keys go in parallel.
//  - Every POST: Idempotency-Key: <message id>, Content-Type: application/json, the stored body
//    byte for byte; x-is-internal-request: True for rerun requests (and messages marked internal).
//  - 2xx: delivered. 408, 429, 5xx, connection errors, timeouts: retried, forever, after
//    max(capped exponential backoff with jitter, Retry-After seconds capped at max_retry_after).
//    Any other status: dead letter with the response kept, a log line; the rest keeps flowing.
//  - A slow backend never blocks appends: the outbox worker and this loop only share the queue.
// Lifetime: destroy (or stop()) the delivery before the outbox it reads.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "transport/backend_options.hpp"
#include "transport/event_log.hpp"
#include "transport/http_client.hpp"
#include "transport/latency_histogram.hpp"
#include "transport/outbox.hpp"
#include "transport/tcp.hpp"  // backoff_policy

namespace interfaced::transport {

struct delivery_options {
  http_client_options client;
  std::map<std::string, std::string, std::less<>> paths;  // message kind -> endpoint path
  std::size_t connections = 2;
  backoff_policy backoff{std::chrono::milliseconds(1000), std::chrono::milliseconds(300000), 2.0, 0.2};
  std::chrono::seconds max_retry_after{3600};  // a Retry-After beyond this is capped to it
  // Looks at the outbox at least this often even when nothing woke it (messages re-queued by the
  // CLI through another connection, clock jumps).
  std::chrono::milliseconds idle_poll{5000};
  event_log log;  // delivery failures, dead letters (never a token)
  event_log trace;  // each message delivered, one line (the daemon's debug level); empty: none
};

// The endpoint paths for every message kind of backend-api.md, from the configuration (kinds the
// configuration does not name get the document's default path).
[[nodiscard]] std::map<std::string, std::string, std::less<>> default_paths(const backend_options& cfg);

// Everything from the configuration; the token from load_bearer_token(cfg).
[[nodiscard]] delivery_options delivery_options_from(const backend_options& cfg, std::string token,
                                                     event_log log = {});

// Retryable per backend-api.md: 408, 429, 5xx.
[[nodiscard]] constexpr bool retryable_status(unsigned s) noexcept { return s == 408 || s == 429 || s >= 500; }

struct delivery_stats {
  std::uint64_t delivered = 0;
  std::uint64_t retried = 0;    // attempts that ended in a scheduled retry
  std::uint64_t dead = 0;
  std::uint64_t attempts = 0;
  std::size_t in_flight = 0;
  latency_histogram request_latency;  // every attempt: request sent -> response, error or timeout
};

class delivery_service {
 public:
  // Registers itself with box.on_appended() so a durable append wakes it.
  delivery_service(boost::asio::any_io_executor ex, outbox& box, delivery_options options);
  ~delivery_service();  // stop()
  delivery_service(const delivery_service&) = delete;
  delivery_service& operator=(const delivery_service&) = delete;

  void start();  // spawns the loop on the executor
  // Stops taking messages and aborts requests in flight; their messages stay pending (sent again
  // with the same Idempotency-Key after a restart).
  void stop();
  // Look at the outbox now (after a CLI retry, for instance). Thread-safe.
  void wake();
  [[nodiscard]] delivery_stats stats() const;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace interfaced::transport
