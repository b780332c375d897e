#pragma once
// What transport needs to reach the lab backend (backend-api.md): where it is, how to
// authenticate, how long to wait, and the endpoint path of every message kind. The daemon's
// configuration (daemon/config.hpp, section "backend") extends it with what only the daemon uses.

#include <chrono>
#include <cstddef>
#include <string>

namespace interfaced::transport {

struct backend_options {
  std::string base_url;           // empty: no backend (results stay in the outbox)
  std::string token_file;
  std::string token_env;
  std::string ca_file;
  bool verify_tls = true;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{15000};
  // The largest response body read from the backend (waiting lists included); a larger one is a
  // failed request, retried with backoff, and never held in memory whole.
  std::size_t max_response_bytes = 8 * 1024 * 1024;
  std::string results_path = "/interfacing/device-results";
  std::string rerun_values_path = "/sample-rerun/values";
  std::string rerun_request_path = "/sample-rerun/request";
  std::string waiting_list_path = "/interfacing/waiting-list";
  std::string parameters_path = "/interfacing/parameters";
  std::string qc_results_path = "/interfacing/qc-results";
  std::string qc_runs_path = "/interfacing/qc-runs";
  std::string qc_limits_path = "/interfacing/qc-limits";
  std::string reflex_path = "/interfacing/reflex";
};

// The token from cfg.token_file (surrounding whitespace trimmed) or else the environment variable
// cfg.token_env; empty when neither is configured. Throws std::runtime_error naming the file or
// variable (never the token) when one is configured but unreadable or empty.
[[nodiscard]] std::string load_bearer_token(const backend_options& cfg);

}  // namespace interfaced::transport
