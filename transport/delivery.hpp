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
//  - Failures are classified by whose fault they are (classify(), the table below):
//
//    | answer                                         | whose fault        | what happens                       |
//    |------------------------------------------------|--------------------|------------------------------------|
//    | 2xx                                            | -                  | delivered                          |
//    | 408, 425, 429, 5xx, connection errors,         | the backend's, for | this message retried after         |
//    |   timeouts                                     | now                | max(its backoff, Retry-After)      |
//    | 401, 403, 407; token configured but unreadable | credentials        | HOLD: BACKEND-002                  |
//    | 404, 405, 406, 410, 414, 415, 421, 426, 3xx    | endpoint config    | HOLD: BACKEND-003                  |
//    | TLS certificate verification failed            | TLS config         | HOLD: BACKEND-004                  |
//    | 400, 409, 411, 412, 413, 416, 417, 422, 424,   | the message's      | dead letter, response kept,        |
//    |   428, 431, 451 and any other 4xx              |                    | DELIVERY-002 while any is dead     |
//
//    404 / 405 / 410 and friends answer "this URL or method is wrong", which is as wrong for the
//    next message as for this one; 415 / 406 refuse our Content-Type / Accept, the same for every
//    message. A HOLD stops delivery for every message (none becomes a dead letter): the alarm is
//    raised once with the answer, then one message at a time is tried after the hold backoff
//    (hold_backoff, growing); the first answer of another kind clears the alarm with a log line
//    and delivery resumes. A credentials hold re-reads the token (load_token) before each try, so
//    fixing the token file resumes delivery; while it cannot be read nothing is posted (never an
//    unauthenticated post).
//  - No answer (connection errors, timeouts, 5xx) to anything for longer than unreachable_after:
//    BACKEND-001, cleared by the next answer below 500. Three different messages failing that way
//    with nothing else in between: the backend fails for everyone, and with a key per sample
//    each message would retry on its own schedule, so delivery sends one message at a time after
//    hold_backoff until one gets another answer (no alarm of its own; a single message refused
//    with 5xx again and again does not close the gate for the others).
//  - A message still pending stuck_after after it was stored: DELIVERY-001 naming it (subject =
//    message id; the oldest ten at most), cleared when it leaves `pending` (delivered, dead, set
//    aside). Dead letters present: DELIVERY-002.
//  - The outbox cannot record an outcome (read-only file, disk full): an outbox fault, not a
//    delivery event. The message is NOT posted again: delivery pauses (nothing claimed, nothing
//    posted) under OUTBOX-002 and re-tries the recording itself after the hold backoff; one log
//    line when it starts, one with the count when writes work again. So one message is never
//    posted faster than its backoff schedule, whatever fails.
//  - While nothing is wrong (no hold, gate or outbox fault), a connection claims up to eight due
//    messages of different keys at once and sends them one after another; an idle connection
//    takes over what another claimed ahead. Their delivered marks go to the outbox together
//    with that connection's next claim, so the CLI and the lab's view see a delivery up to that
//    many requests later (the mark is not durable anyway: a crash in between sends the message
//    again under the same Idempotency-Key).
//  - Delivered messages older than keep_delivered are deleted (checked hourly).
//  - A slow backend never blocks appends: the outbox worker and this loop only share the queue.
// Log lines (through `log`) end with a code: DELIVERY-003 an attempt failed and is retried,
// DELIVERY-002 a dead letter, DELIVERY-004 an internal error (a bug), the alarm's code for holds
// and outbox faults.
// Lifetime: destroy (or stop()) the delivery before the outbox it reads.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

#include "transport/alarms.hpp"
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
  // File-type reports: a refusal or dead letter also goes to the device's own log (device id,
  // line); empty: `log` only.
  std::function<void(std::string_view, std::string_view)> device_log;
  alarm_board* alarms = nullptr;  // BACKEND-00x, DELIVERY-00x, OUTBOX-002; nullptr: none raised
  // The bearer token, read at start and again before each try while credentials are held (and
  // after a 401 / 403). Throws std::runtime_error when configured but unreadable. Empty function:
  // client.token is used as given.
  std::function<std::string()> load_token;
  // Holds (credentials, endpoint, TLS) and outbox faults: how long before the next try.
  backoff_policy hold_backoff{std::chrono::milliseconds(1000), std::chrono::milliseconds(60000), 2.0, 0.2};
  std::chrono::milliseconds unreachable_after{std::chrono::minutes(5)};
  std::chrono::milliseconds stuck_after{std::chrono::minutes(15)};
  // Delivered messages are deleted after this long; zero: kept until purged by hand.
  std::chrono::hours keep_delivered{24 * 30};
};

// The endpoint paths for every message kind of backend-api.md, from the configuration (kinds the
// configuration does not name get the document's default path).
[[nodiscard]] std::map<std::string, std::string, std::less<>> default_paths(const backend_options& cfg);

// Everything from the configuration; the token from load_bearer_token(cfg), and load_token set to
// read it again when cfg names a token file or variable.
[[nodiscard]] delivery_options delivery_options_from(const backend_options& cfg, std::string token,
                                                     event_log log = {});

// Retryable per backend-api.md: 408, 429, 5xx.
[[nodiscard]] constexpr bool retryable_status(unsigned s) noexcept { return s == 408 || s == 429 || s >= 500; }

// Whose fault a failed attempt is (the table above).
enum class failure_class {
  delivered,         // 2xx
  retry,             // this message again after its backoff
  hold_credentials,  // BACKEND-002, every message held
  hold_endpoint,     // BACKEND-003, every message held
  hold_tls,          // BACKEND-004, every message held
  dead_letter,       // the backend refused this message for good
};
[[nodiscard]] const char* to_string(failure_class c) noexcept;
// For an HTTP status that was received.
[[nodiscard]] failure_class classify_status(unsigned status) noexcept;
// For a whole result: no response is a retry, except a failed TLS verification (a hold).
[[nodiscard]] failure_class classify(const http_result& r) noexcept;
// The alarm code of a hold class; empty for the others.
[[nodiscard]] std::string_view hold_alarm(failure_class c) noexcept;

struct delivery_stats {
  std::uint64_t delivered = 0;
  std::uint64_t retried = 0;    // attempts that ended in a scheduled retry
  std::uint64_t dead = 0;
  std::uint64_t attempts = 0;
  std::uint64_t held = 0;              // attempts answered with a hold (credentials, endpoint, TLS)
  std::uint64_t unrecorded = 0;        // outcomes the outbox could not record (re-tried, not re-posted)
  std::uint64_t purged = 0;            // delivered messages deleted after keep_delivered
  std::size_t dead_letters = 0;        // dead messages in the outbox at the last census (not waiting: a person must act)
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
