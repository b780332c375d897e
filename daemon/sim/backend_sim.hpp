#pragma once
// The backend simulator: a real HTTP/1.1 server (transport::http_server, optional TLS) on loopback
// that serves the default endpoints of backend-api.md, records every request, and fails on command.
// Tests, the demo and the benchmarks talk to it exactly as the daemon talks to the real backend.
//
//  - POST results / rerun values / rerun request / auto-check / storage presign + reconcile / file
//    report: 200 with a small JSON answer. A repeated Idempotency-Key that was already answered 2xx
//    gets 200 {"duplicate":true} (what the real backend's de-duplication does), recorded as such.
//  - GET /interfacing/waiting-list?device=D and /interfacing/parameters?device=D: from data_file,
//    {"waiting_list": [...] or {"D": [...]}, "parameters": [...] or {"D": [...]}} (a top-level array
//    is the waiting list of every device). Re-read when the file changes, or on POST /_sim/reload.
//  - Every request except /_sim/... is recorded: in memory (requests()) and as one JSON line in
//    record_file: {"seq","method","target","path","headers":{...},"idempotency_key","internal",
//    "body","status","duplicate","fault"}. Authorization is recorded as "Bearer ***".
//  - Faults (construction options, add_fault(), or at run time: POST /_sim/faults with one fault
//    object or an array, DELETE /_sim/faults to clear): the first fault matching a request (path,
//    method, body substring) applies; one with count N applies to the N next matching requests.
//    A delayed reply waits on a timer (the server's deferred reply), so it holds up no other
//    connection; `drop` closes the connection without an answer.
//  - File reports: see backend_sim_options::s3_url / store_dir. /interfacing/file-report answers
//    {"status":"ok","path":P} with the path it was given (the canonical path).
//  - Control: GET /_sim/requests (the recorded requests as a JSON array), POST /_sim/reload.
// Runs on the caller's executor; thread-safe accessors (requests(), add_fault()).

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
#include <boost/system/error_code.hpp>

#include "transport/event_log.hpp"

namespace interfaced::sim {

struct sim_fault {
  std::string path;           // request path without the query; empty: any
  std::string method;         // "POST", "GET"; empty: any
  std::string body_contains;  // empty: any body
  unsigned status = 0;        // fail with this status; 0 or 2xx: answer normally (after `delay`)
  bool drop = false;          // close the connection without answering (after `delay`)
  std::chrono::milliseconds delay{0};
  int count = -1;             // the N next matching requests; -1: all of them
  std::string retry_after;    // Retry-After header value, when not empty
  std::string body;           // response body; empty: {"error":"simulated failure"}
};

// CLI form: comma-separated `key=value` items: status=503, count=3, path=/x, method=POST,
// body-contains=TEXT, delay=250 (ms), retry-after=2, body=TEXT, and the bare word `drop`.
// nullopt with *error set on a bad item.
[[nodiscard]] std::optional<sim_fault> parse_fault(std::string_view spec, std::string* error = nullptr);

struct recorded_request {
  std::uint64_t seq = 0;
  std::string method;
  std::string target;  // path and query as sent
  std::string path;    // without the query
  std::vector<std::pair<std::string, std::string>> headers;  // Authorization redacted
  std::string idempotency_key;
  bool internal = false;  // x-is-internal-request: True
  std::string body;
  unsigned status = 0;  // answered; 0: the connection was dropped
  bool duplicate = false;
  bool fault = false;
};

struct backend_sim_options {
  std::string listen_address = "127.0.0.1";
  std::uint16_t port = 0;                 // 0: ephemeral (tests), see port()
  std::filesystem::path record_file;      // JSON lines, appended; empty: memory only
  std::filesystem::path data_file;        // waiting list + parameters; empty: empty lists
  std::vector<sim_fault> faults;
  std::filesystem::path tls_cert;         // both set: HTTPS (PEM chain and key)
  std::filesystem::path tls_key;
  std::string expect_token;               // not empty: other Authorization values get 401
  // File reports (file-reports.md). Presign answers real S3 POST policies (AWS SigV4, sigv4.hpp):
  // for the S3-compatible store at s3_url (bucket s3_bucket, credential s3_key / s3_secret), or,
  // with store_dir, for the simulator itself: POST /store/upload takes the multipart form, checks
  // the policy (signature, expiry, key) and writes the file under store_dir at its key, byte for
  // byte. Reconcile then checks the stored object's size and SHA-256 (store_dir only).
  std::string s3_url;
  std::string s3_bucket;
  std::string s3_key;
  std::string s3_secret;
  std::filesystem::path store_dir;
  std::chrono::seconds presign_ttl{900};  // a policy's lifetime (tests make it short)
  transport::event_log log;
};

class backend_sim {
 public:
  backend_sim(boost::asio::any_io_executor ex, backend_sim_options options);
  ~backend_sim();  // stop()
  backend_sim(const backend_sim&) = delete;
  backend_sim& operator=(const backend_sim&) = delete;

  // Binds and starts accepting; errors (address in use, bad cert/key) returned, not thrown.
  [[nodiscard]] boost::system::error_code start();
  [[nodiscard]] std::uint16_t port() const noexcept;
  // Stops accepting and closes every connection (a backend going down).
  void stop();

  [[nodiscard]] std::vector<recorded_request> requests() const;
  void add_fault(sim_fault f);
  void clear_faults();

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

// `interfaced backend-sim`: runs a simulator on its own io_context until SIGINT or SIGTERM.
// Exit status: 0 stopped by a signal; 69 (EX_UNAVAILABLE) cannot listen; 78 (EX_CONFIG) bad
// TLS certificate or key.
int run_backend_sim(backend_sim_options options);

}  // namespace interfaced::sim
