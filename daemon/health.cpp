#include "daemon/health.hpp"

#include <sstream>

#include "daemon/clock.hpp"

namespace interfaced::daemon {

using json = nlohmann::json;

json health_json(const health_sources& s) {
  json devs = json::array();
  for (const auto& d : s.devices->running) {
    devs.push_back({{"id", d->cfg.id},
                    {"protocol", d->cfg.protocol},
                    {"link", d->cfg.link_type},
                    {"up", d->stats.connected || (d->server && d->server->sessions() > 0)},
                    {"listening", d->server != nullptr},
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
  }
  return j;
}

std::string metrics_text(const health_sources& s) {
  std::ostringstream m;
  const auto& devices = s.devices->running;
  auto per_device = [&](const char* name, const char* help, auto field) {
    m << "# HELP interfaced_" << name << ' ' << help << "\n# TYPE interfaced_" << name << " counter\n";
    for (const auto& d : devices) m << "interfaced_" << name << "{device=\"" << d->cfg.id << "\"} " << field(*d) << '\n';
  };
  per_device("messages_total", "Messages received", [](const device_runtime& d) { return d.stats.messages; });
  per_device("results_total", "Results forwarded", [](const device_runtime& d) { return d.stats.results; });
  per_device("link_problems_total", "NAKs, checksum errors and discarded messages",
             [](const device_runtime& d) { return d.stats.problems; });
  per_device("naks_total", "NAKs (HL7: AE, AR) sent or received on the link",
             [](const device_runtime& d) { return d.stats.link->naks_sent + d.stats.link->naks_received; });
  per_device("naks_sent_total", "NAKs (HL7: AE, AR) sent to the analyser",
             [](const device_runtime& d) { return d.stats.link->naks_sent; });
  per_device("naks_received_total", "NAKs (HL7: AE, AR) received from the analyser",
             [](const device_runtime& d) { return d.stats.link->naks_received; });
  per_device("checksum_errors_total", "Received frames with a wrong checksum",
             [](const device_runtime& d) { return d.stats.link->checksum_errors; });
  per_device("connections_total", "Connections (reconnects)", [](const device_runtime& d) { return d.stats.connections; });
  m << "# HELP interfaced_ingest_ack_seconds Message complete to ACK released (outbox durable)\n"
       "# TYPE interfaced_ingest_ack_seconds histogram\n";
  for (const auto& d : devices) d->stats.ingest_ack.write(m, "interfaced_ingest_ack_seconds", "device=\"" + d->cfg.id + "\"");
  const auto ob = s.outbox->stats();
  m << "# HELP interfaced_outbox_depth Messages not yet delivered\n# TYPE interfaced_outbox_depth gauge\n"
    << "interfaced_outbox_depth " << ob.undelivered << '\n';
  m << "# HELP interfaced_outbox_alarm 1 when the outbox is full\n# TYPE interfaced_outbox_alarm gauge\n"
    << "interfaced_outbox_alarm " << (ob.alarm ? 1 : 0) << '\n';
  m << "# HELP interfaced_outbox_commit_seconds Outbox group transaction, BEGIN to durable COMMIT (the disk's share of an ACK)\n"
       "# TYPE interfaced_outbox_commit_seconds histogram\n";
  ob.commit_latency.write(m, "interfaced_outbox_commit_seconds");
  m << "# HELP interfaced_alarm 1 while the alarm is up (code: see `interfaced explain`; subject: device or message)\n"
       "# TYPE interfaced_alarm gauge\n";
  if (s.alarms)
    for (const auto& a : s.alarms->list())
      m << "interfaced_alarm{code=\"" << a.code << "\",subject=\"" << a.subject << "\"} 1\n";
  if (s.delivery) {
    const auto st = s.delivery->stats();
    m << "# TYPE interfaced_delivered_total counter\ninterfaced_delivered_total " << st.delivered << '\n'
      << "# TYPE interfaced_retried_total counter\ninterfaced_retried_total " << st.retried << '\n'
      << "# TYPE interfaced_dead_total counter\ninterfaced_dead_total " << st.dead << '\n'
      << "# HELP interfaced_backend_request_seconds Backend HTTP request latency (every attempt)\n"
      << "# TYPE interfaced_backend_request_seconds histogram\n";
    st.request_latency.write(m, "interfaced_backend_request_seconds");
  }
  return m.str();
}

transport::http_reply handle_health_request(const health_sources& s, const transport::http_request_view& req) {
  const std::string path = req.target.substr(0, req.target.find('?'));
  const std::string query = req.target.find('?') == std::string::npos ? "" : req.target.substr(req.target.find('?') + 1);
  if (req.method == "GET" && path == "/health") return {200, "application/json", health_json(s).dump(2) + "\n"};
  if (req.method == "GET" && path == "/metrics") return {200, "text/plain; version=0.0.4", metrics_text(s)};
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
