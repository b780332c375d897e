#pragma once
// The service's loopback HTTP endpoint (health.bind:health.port): GET /health (JSON: devices,
// outbox, backend, alarms), GET /metrics (Prometheus text format 0.0.4), POST /trace?device=ID&on=1
// (switch a device's wire trace). Reads the service's state on the event-loop thread; changes
// nothing itself but the trace, through `set_trace`. Reading is open (the endpoint binds to
// loopback unless an admin token is configured); every route that changes something needs
// "Authorization: Bearer <health.admin_token_file's token>" and answers 401 without it.

#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/device_runtime.hpp"
#include "rerun/qc.hpp"
#include "transport/alarms.hpp"
#include "transport/delivery.hpp"
#include "transport/http_server.hpp"
#include "transport/outbox.hpp"

namespace interfaced::daemon {

struct health_sources {
  const device_set* devices = nullptr;
  const transport::outbox* outbox = nullptr;
  const transport::delivery_service* delivery = nullptr;  // null: no backend configured
  bool backend_configured = false;
  const transport::alarm_board* alarms = nullptr;
  std::string config_path;  // absolute: `status` tells this daemon from another one on the port
  // health.admin_token_file's token; empty: routes that change something are refused (401).
  std::string admin_token;
  std::function<void(device_runtime*, bool on)> set_trace;
  const rerun::qc::qc_tracker* qc = nullptr;  // GET /api/qc/series (the dashboard's Levey-Jennings data)
  // The lab's view (daemon/lab_view.hpp): GET pages and /api/... it answers; nullopt: not its path.
  std::function<std::optional<transport::http_reply>(const transport::http_request_view&)> lab_view;
  // QC resolutions (daemon/qc_admin.hpp): GET /api/qc/history, POST /api/qc/resolve|approve|undo.
  std::function<std::optional<transport::http_reply>(const transport::http_request_view&)> qc_api;
  const rerun::qc::resolution_book* qc_book = nullptr;  // /api/qc/series points' "resolution"
  // The pages' CSRF token (lab_view::csrf()). POST /api/qc/... needs, besides the bearer token,
  // either this token (X-CSRF-Token: the /qc page, which GET /api/qc/series hands it to when an
  // admin token is configured) or "X-Interfaced-Client: cli" without an Origin header (`interfaced
  // qc`: no browser). 403 otherwise.
  std::string csrf;
};

// GET /api/qc/series[?device=ID&parameter=P&show_resolved_controls=1]:
// {"series":[{"device","parameter","material","lot","level","mean","sd",
//             "points":[{"result_id","observed_at","value","z","outcome","rules":[...],"resolution"}]}]}
// resolution: null, or {"id","code","by","reason","at","state"[,"approved_by"]}; points resolved
// with an excluding code are left out unless show_resolved_controls.
[[nodiscard]] nlohmann::json qc_series_json(const rerun::qc::qc_tracker& qc, std::string_view device,
                                            std::string_view parameter, bool show_resolved_controls,
                                            const rerun::qc::resolution_book* book = nullptr);

// A Prometheus label value escaped for the text format (backslash, double quote, line feed).
[[nodiscard]] std::string prometheus_label_value(std::string_view v);
// The device's link now, read once for /health and /metrics alike.
struct link_state {
  bool connected = false;  // serial open, a session, the client connection (device_runtime::open_links)
  bool listening = false;  // a tcp-server's acceptor is open (while connected too)
  // Usable: connected, or listening for the analyser (/health "state" is not "down").
  [[nodiscard]] bool up() const noexcept { return connected || listening; }
  // /health "state": "connected", else "listening", else "down" (with down_reason).
  [[nodiscard]] const char* name() const noexcept { return connected ? "connected" : listening ? "listening" : "down"; }
};
[[nodiscard]] link_state link_state_of(const device_runtime& d);
[[nodiscard]] nlohmann::json health_json(const health_sources& s);
[[nodiscard]] std::string metrics_text(const health_sources& s);
[[nodiscard]] transport::http_reply handle_health_request(const health_sources& s,
                                                          const transport::http_request_view& req);

}  // namespace interfaced::daemon
