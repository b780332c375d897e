#include "daemon/health.hpp"

#include <cctype>
#include <map>
#include <sstream>
#include <unistd.h>

#include "daemon/clock.hpp"
#include "daemon/qc_admin.hpp"

#include <spdlog/spdlog.h>

namespace interfaced::daemon {

using json = nlohmann::json;

link_state link_state_of(const device_runtime& d) {
  return {d.open_links > 0, d.server && d.server->listening()};
}

json health_json(const health_sources& s) {
  json devs = json::array();
  for (const auto& d : s.devices->running) {
    const link_state link = link_state_of(*d);
    devs.push_back({{"id", d->cfg.id},
                    {"protocol", d->cfg.protocol},
                    {"link", d->cfg.link_type},
                    {"state", link.name()},
                    {"up", link.connected},
                    {"listening", link.listening},
                    {"messages", d->stats.messages},
                    {"messages_today", d->stats.messages_today},
                    {"results_today", d->stats.results_today},
                    {"results", d->stats.results},
                    {"queries", d->stats.queries},
                    {"duplicates", d->stats.duplicates},
                    {"problems", d->stats.problems},
                    {"connections", d->stats.connections},
                    {"last_message_at", d->stats.last_message_at},
                    {"trace", d->tap->enabled.load()}});
    devs.back()["buffered_bytes"] = d->buffers->used;
    devs.back()["buffer_refusals"] = d->buffers->refused;
    if (!link.up())
      devs.back()["down_reason"] = d->down_reason.empty() ? std::string("not connected") : d->down_reason;
    if (d->server) {
      devs.back()["sessions"] = d->server->sessions();
      devs.back()["max_sessions"] = d->cfg.max_sessions;
      devs.back()["sessions_refused"] = d->server->refused();
      devs.back()["sessions_replaced"] = d->server->replaced();
    }
  }
  const auto ob = s.outbox->stats();
  // `alarms`: one line per alarm for a person ("text [CODE]"); `alarm_details`: the same list
  // for programs, with the code, what it is about and since when.
  json alarms = json::array(), details = json::array();
  if (s.alarms)
    for (const auto& a : s.alarms->list()) {
      alarms.push_back(transport::describe(a));
      details.push_back({{"code", a.code}, {"subject", a.subject}, {"text", a.text}, {"since", iso_ms(a.since)}});
    }
  json j = {{"ready", true},
            {"pid", static_cast<long>(::getpid())},
            {"config", s.config_path},
            {"version", INTERFACED_VERSION},
            {"devices", devs},
            {"outbox", {{"depth", ob.undelivered}, {"accepting", ob.accepting}, {"alarm", ob.alarm}}},
            {"backend", {{"configured", s.backend_configured}}},
            {"alarms", alarms},
            {"alarm_details", details}};
  if (s.delivery) {
    const auto st = s.delivery->stats();
    j["backend"]["delivered"] = st.delivered;
    j["backend"]["retried"] = st.retried;
    j["backend"]["dead"] = st.dead;
    j["backend"]["held"] = st.held;              // attempts answered 401/403/404/405/TLS: not dead letters
    j["backend"]["unrecorded"] = st.unrecorded;  // outcomes the outbox could not record (recorded again later)
    j["backend"]["purged"] = st.purged;          // delivered messages deleted after outbox.keep_delivered_days
    j["outbox"]["dead"] = st.dead_letters;        // of depth: refused for good, waiting for a person, not for delivery
  }
  return j;
}

std::string prometheus_label_value(std::string_view v) {
  // Text format 0.0.4: in label values, backslash, double quote and line feed are escaped.
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string metrics_text(const health_sources& s) {
  std::ostringstream m;
  const auto& devices = s.devices->running;
  const auto head = [&](const char* name, const char* type, const char* help) {
    m << "# HELP interfaced_" << name << ' ' << help << "\n# TYPE interfaced_" << name << ' ' << type << '\n';
  };
  const auto device_label = [](const device_runtime& d) { return "device=\"" + prometheus_label_value(d.cfg.id) + "\""; };
  auto per_device = [&](const char* name, const char* type, const char* help, auto field) {
    head(name, type, help);
    for (const auto& d : devices) m << "interfaced_" << name << '{' << device_label(*d) << "} " << field(*d) << '\n';
  };
  head("build_info", "gauge", "Always 1; the running version");
  m << "interfaced_build_info{version=\"" << prometheus_label_value(INTERFACED_VERSION) << "\"} 1\n";
  per_device("messages_total", "counter", "Messages received", [](const device_runtime& d) { return d.stats.messages; });
  per_device("results_total", "counter", "Results forwarded", [](const device_runtime& d) { return d.stats.results; });
  per_device("duplicates_total", "counter", "Results received again and not forwarded (same result key)",
             [](const device_runtime& d) { return d.stats.duplicates; });
  per_device("link_problems_total", "counter", "NAKs, checksum errors and discarded messages",
             [](const device_runtime& d) { return d.stats.problems; });
  per_device("naks_total", "counter", "NAKs (HL7: AE, AR) sent or received on the link",
             [](const device_runtime& d) { return d.stats.link->naks_sent + d.stats.link->naks_received; });
  per_device("naks_sent_total", "counter", "NAKs (HL7: AE, AR) sent to the analyser",
             [](const device_runtime& d) { return d.stats.link->naks_sent; });
  per_device("naks_received_total", "counter", "NAKs (HL7: AE, AR) received from the analyser",
             [](const device_runtime& d) { return d.stats.link->naks_received; });
  per_device("checksum_errors_total", "counter", "Received frames with a wrong checksum",
             [](const device_runtime& d) { return d.stats.link->checksum_errors; });
  per_device("connections_total", "counter", "Connections (reconnects)", [](const device_runtime& d) { return d.stats.connections; });
  per_device("sessions_refused_total", "counter", "Connections closed at once: the device's max_sessions were running",
             [](const device_runtime& d) { return d.server ? d.server->refused() : 0; });
  per_device("sessions_replaced_total", "counter", "Sessions closed because the same analyser (address) connected again",
             [](const device_runtime& d) { return d.server ? d.server->replaced() : 0; });
  per_device("buffer_refusals_total", "counter",
             "Sessions closed because unfinished data went over the device's max_buffered_bytes",
             [](const device_runtime& d) { return d.buffers->refused; });
  per_device("buffered_bytes", "gauge", "Unfinished message bytes the device's sessions hold",
             [](const device_runtime& d) { return d.buffers->used; });
  per_device("link_up", "gauge", "1 while the device's link is usable: connected, or listening for the analyser",
             [](const device_runtime& d) { return link_state_of(d).up() ? 1 : 0; });
  // Absent until the first message: an alert on time() - this must not fire for a device that
  // never sent anything since the start (alert on its absence instead, README).
  head("last_message_timestamp_seconds", "gauge", "When the analyser's last message was received (Unix time)");
  for (const auto& d : devices)
    if (d->stats.last_message_time.time_since_epoch().count() != 0)
      m << "interfaced_last_message_timestamp_seconds{" << device_label(*d) << "} "
        << std::chrono::duration_cast<std::chrono::seconds>(d->stats.last_message_time.time_since_epoch()).count()
        << '\n';
  head("ingest_ack_seconds", "histogram", "Message complete to ACK released (outbox durable)");
  for (const auto& d : devices) d->stats.ingest_ack.write(m, "interfaced_ingest_ack_seconds", device_label(*d));
  const auto ob = s.outbox->stats();
  head("outbox_depth", "gauge", "Messages not yet delivered");
  m << "interfaced_outbox_depth " << ob.undelivered << '\n';
  head("outbox_alarm", "gauge", "1 when the outbox is full");
  m << "interfaced_outbox_alarm " << (ob.alarm ? 1 : 0) << '\n';
  head("outbox_commit_seconds", "histogram",
       "Outbox group transaction, BEGIN to durable COMMIT (the disk's share of an ACK)");
  ob.commit_latency.write(m, "interfaced_outbox_commit_seconds");
  head("alarm", "gauge", "1 while the alarm is up (code: see `interfaced explain`; subject: device or message)");
  if (s.alarms)
    for (const auto& a : s.alarms->list())
      m << "interfaced_alarm{code=\"" << prometheus_label_value(a.code) << "\",subject=\""
        << prometheus_label_value(a.subject) << "\"} 1\n";
  if (s.delivery) {
    const auto st = s.delivery->stats();
    head("delivered_total", "counter", "Messages the backend accepted");
    m << "interfaced_delivered_total " << st.delivered << '\n';
    head("retried_total", "counter", "Delivery attempts that ended in a scheduled retry");
    m << "interfaced_retried_total " << st.retried << '\n';
    head("dead_total", "counter", "Messages the backend refused for good (dead letters) since the start");
    m << "interfaced_dead_total " << st.dead << '\n';
    head("outbox_dead", "gauge", "Dead letters in the outbox now: refused for good, waiting for a person (outbox list --state dead)");
    m << "interfaced_outbox_dead " << st.dead_letters << '\n';
    head("backend_request_seconds", "histogram", "Backend HTTP request latency (every attempt)");
    st.request_latency.write(m, "interfaced_backend_request_seconds");
  }
  return m.str();
}

namespace {
// A query parameter's value: %XX and '+' decoded (a parameter such as "NEU#" arrives as NEU%23).
std::string query_value(std::string_view v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '+') out += ' ';
    else if (v[i] == '%' && i + 2 < v.size() && std::isxdigit(static_cast<unsigned char>(v[i + 1])) &&
             std::isxdigit(static_cast<unsigned char>(v[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(v.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else out += v[i];
  }
  return out;
}
}  // namespace

json qc_series_json(const rerun::qc::qc_tracker& qc, std::string_view device, std::string_view parameter,
                    bool show_resolved_controls, const rerun::qc::resolution_book* book) {
  // qc.md "Levey-Jennings view": excluded points are hidden unless show_resolved_controls, then
  // drawn with their resolution; a point resolved without exclusion is always shown with it.
  json series = json::array();
  for (const auto& [key, points] : qc.charts()) {
    std::map<std::string, std::size_t> index;  // material/lot/level -> position in `series`
    for (const auto& p : points) {
      if (!device.empty() && p.c.device != device) continue;
      if (!parameter.empty() && p.c.series.parameter != parameter) continue;
      const std::string k = p.c.series.material + '\x1f' + p.c.series.lot + '\x1f' + p.c.series.level;
      auto it = index.find(k);
      if (it == index.end()) {
        series.push_back({{"device", p.c.device},
                          {"parameter", p.c.series.parameter},
                          {"material", p.c.series.material},
                          {"lot", p.c.series.lot},
                          {"level", p.c.series.level},
                          {"mean", nullptr},
                          {"sd", nullptr},
                          {"points", json::array()}});
        it = index.emplace(k, series.size() - 1).first;
      }
      const rerun::qc::resolution* res = book ? book->active_of(p.c.result_id) : nullptr;
      if (res && qc.resolution_of(p.c.result_id).excluded && !show_resolved_controls) continue;
      json& s = series[it->second];
      // The newest limits the series was judged with.
      if (p.v.mean && p.v.sd) {
        s["mean"] = *p.v.mean;
        s["sd"] = *p.v.sd;
      }
      s["points"].push_back({{"result_id", p.c.result_id},
                             {"observed_at", p.c.observed_at},
                             {"value", p.c.value ? json(*p.c.value) : json(nullptr)},
                             {"z", p.v.z ? json(*p.v.z) : json(nullptr)},
                             {"outcome", std::string(rerun::qc::to_string(p.v.eval.result))},
                             {"rules", rerun::qc::rule_names(p.v.eval.fired)},
                             {"resolution", res ? resolution_json(*res) : json(nullptr)}});
    }
  }
  return {{"series", std::move(series)}};
}

transport::http_reply handle_health_request(const health_sources& s, const transport::http_request_view& req) {
  const std::string path = req.target.substr(0, req.target.find('?'));
  const std::string query = req.target.find('?') == std::string::npos ? "" : req.target.substr(req.target.find('?') + 1);
  if (req.method == "GET" && path == "/health") return {200, "application/json", health_json(s).dump(2) + "\n"};
  if (req.method == "GET" && path == "/metrics") return {200, "text/plain; version=0.0.4", metrics_text(s)};
  if (req.method == "GET" && path == "/api/qc/series") {
    std::string device, parameter, show;
    std::istringstream qs(query);
    for (std::string kv; std::getline(qs, kv, '&');) {
      const auto eq = kv.find('=');
      const std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
      if (k == "device") device = query_value(v);
      if (k == "parameter") parameter = query_value(v);
      if (k == "show_resolved_controls") show = v;
    }
    if (s.qc == nullptr) return {200, "application/json", json({{"series", json::array()}}).dump() + "\n"};
    json j = qc_series_json(*s.qc, device, parameter, show == "1" || show == "true", s.qc_book);
    // The /qc page offers resolve / approve / undo only when changes are possible at all.
    j["admin"] = !s.admin_token.empty();
    if (!s.admin_token.empty()) {
      j["csrf"] = s.csrf;
      json codes = json::array();
      for (const auto& c : s.qc->config().resolution_codes)
        codes.push_back({{"code", c.code}, {"excludes_from_westgard", c.excludes_from_westgard}, {"skip", c.skip},
                         {"two_step", c.two_step}});
      j["resolution_codes"] = std::move(codes);
    }
    return {200, "application/json", j.dump() + "\n"};
  }
  if (req.method == "GET" && s.qc_api)
    if (auto r = s.qc_api(req)) return std::move(*r);
  if (req.method == "GET" && s.lab_view)
    if (auto r = s.lab_view(req)) return std::move(*r);
  if (req.method == "POST") {
    // Compared in constant time: the endpoint may be reachable from the lab's network.
    const std::string expected = "Bearer " + s.admin_token;
    const std::string_view given = req.header("authorization");
    bool same = !s.admin_token.empty() && given.size() == expected.size();
    unsigned char diff = 0;
    for (std::size_t i = 0; same && i < expected.size(); ++i)
      diff = static_cast<unsigned char>(diff | (expected[i] ^ given[i]));
    if (!same || diff != 0)
      return {401, "application/json",
              json({{"error", s.admin_token.empty()
                                  ? "this route changes the daemon: set health.admin_token_file and send its token"
                                  : "missing or wrong admin token (Authorization: Bearer <health.admin_token_file>)"}})
                      .dump() + "\n"};
  }
  if (req.method == "POST" && s.qc_api && path.starts_with("/api/qc/")) {  // the token was checked above
    // CSRF, checked here and not in the QC logic: a page's POST carries the token its GET was
    // handed. A browser always sends Origin with a POST and cannot add X-Interfaced-Client
    // cross-site without a CORS preflight, which this endpoint never grants: so the CLI's header
    // is no way around the token for a page.
    const bool page = !s.csrf.empty() && req.header("x-csrf-token") == s.csrf;
    const bool cli = req.header("x-interfaced-client") == "cli" && req.header("origin").empty();
    if (!page && !cli)
      return {403, "application/json",
              json({{"error", "missing or stale X-CSRF-Token: reload the page (interfaced qc sends X-Interfaced-Client: cli)"}})
                      .dump() + "\n"};
    auto r = s.qc_api(req);
    if (r && page) {
      // Audited twice: the QC audit (who, when, why) and the service log, as the message browser's actions.
      const json body = json::parse(req.body, nullptr, false);
      const auto field = [&](const char* k) {
        return body.is_object() && body.contains(k) ? (body[k].is_string() ? body[k].get<std::string>() : body[k].dump())
                                                    : std::string();
      };
      spdlog::info("dashboard: {} {} by {}: HTTP {}", path, field("result_id") + field("proposal_id") + field("resolution_id"),
                   field("by"), r->status);
    }
    if (r) return std::move(*r);
  }
  if (req.method == "POST" && s.lab_view)  // the token was checked above
    if (auto r = s.lab_view(req)) return std::move(*r);
  if (req.method == "POST" && path == "/trace") {
    // /trace?device=ID&on=1 : switch a device's wire trace at run time.
    std::string device, on;
    std::istringstream qs(query);
    for (std::string kv; std::getline(qs, kv, '&');) {
      const auto eq = kv.find('=');
      const std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
      if (k == "device") device = v;
      if (k == "on") on = v;
    }
    device_runtime* dev = s.devices->find(device);
    if (!dev) return {404, "application/json", json({{"error", "no device \"" + device + "\""}}).dump() + "\n"};
    s.set_trace(dev, on == "1" || on == "true");
    return {200, "application/json", json({{"device", device}, {"trace", dev->tap->enabled.load()}}).dump() + "\n"};
  }
  return {404, "application/json", "{\"error\":\"not found\"}\n"};
}

}  // namespace interfaced::daemon
