#include "daemon/admin_commands.hpp"

#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "daemon/clock.hpp"
#include "daemon/config.hpp"
#include "daemon/replay.hpp"
#include "daemon/sim/backend_sim.hpp"
#include "transport/http_fetch.hpp"
#include "transport/outbox.hpp"

namespace interfaced::daemon {
namespace {

using json = nlohmann::json;

std::string age_text(std::chrono::milliseconds age) {
  const auto s = age.count() / 1000;
  std::ostringstream o;
  if (s < 120) o << s << "s";
  else if (s < 7200) o << s / 60 << "m";
  else if (s < 172800) o << s / 3600 << "h";
  else o << s / 86400 << "d";
  return o.str();
}

// ISO-8601 with the lab zone's offset, as every time the daemon writes (daemon/clock.hpp).
std::string iso(transport::outbox_time t) { return iso_ms(t); }

// The CLI talks to the running daemon's local endpoint (transport::http_fetch: IPv4 and IPv6, a
// deadline, so a wedged daemon is reported, not waited for). 0.0.0.0 / :: mean "this machine".
bool http_get(const std::string& bind, unsigned port, const std::string& method, const std::string& target,
              std::string& body, std::string& error, std::vector<transport::http_header> headers = {}) {
  const std::string host = bind == "0.0.0.0" ? "127.0.0.1" : bind == "::" ? "::1" : bind;
  const auto r = transport::http_fetch(host, port, method, target, std::move(headers));
  if (!r.answered) {
    error = "cannot reach the daemon at " + host + " port " + std::to_string(port) + " (is it running?): " + r.error;
    return false;
  }
  if (r.status != 200) {
    error = "the daemon answered " + std::to_string(r.status) + ": " + r.body;
    return false;
  }
  body = r.body;
  return true;
}

}  // namespace

int run_outbox_command(const outbox_command& c, std::ostream& out, std::ostream& err) {
  std::string file = c.file;
  if (file.empty()) {
    const auto r = load_config(c.config, /*check_devices=*/false);
    if (!r.ok()) {
      for (const auto& p : r.problems) err << format_problem(c.config, p) << '\n';
      return exit_config;
    }
    file = r.cfg.outbox.path.string();
    set_lab_zone(lab_zone_of(r.cfg.lab.timezone).zone);
  }
  try {
    transport::outbox_admin admin(file);
    if (c.action == "list") {
      const auto rows = admin.list(c.all);
      if (c.json) {
        json a = json::array();
        for (const auto& m : rows)
          a.push_back({{"id", m.id}, {"kind", m.kind}, {"ordering_key", m.ordering_key},
                       {"state", transport::to_string(m.state)}, {"attempts", m.attempts},
                       {"age_s", m.age.count() / 1000}, {"next_attempt_at", iso(m.next_attempt_at)},
                       {"last_status", m.last_status}});
        out << a.dump(2) << '\n';
        return exit_ok;
      }
      out << std::left << std::setw(38) << "ID" << std::setw(14) << "KIND" << std::setw(10) << "STATE"
          << std::setw(9) << "ATTEMPTS" << std::setw(7) << "AGE" << std::setw(7) << "HTTP" << "KEY\n";
      for (const auto& m : rows)
        out << std::setw(38) << m.id << std::setw(14) << m.kind << std::setw(10) << transport::to_string(m.state)
            << std::setw(9) << m.attempts << std::setw(7) << age_text(m.age) << std::setw(7)
            << (m.last_status ? std::to_string(m.last_status) : "-") << m.ordering_key << '\n';
      out << rows.size() << " message(s)\n";
      return exit_ok;
    }
    if (c.action == "show") {
      const auto m = admin.show(c.id);
      if (!m) {
        err << file << ": no message " << c.id << '\n';
        return exit_bad_input;
      }
      json j = {{"id", m->id}, {"kind", m->kind}, {"ordering_key", m->ordering_key},
                {"state", transport::to_string(m->state)}, {"attempts", m->attempts},
                {"created_at", iso(m->created_at)}, {"next_attempt_at", iso(m->next_attempt_at)},
                {"last_status", m->last_status}, {"last_response", m->last_response},
                {"internal_request", m->internal_request}};
      json body = json::parse(m->body, nullptr, false);
      j["body"] = body.is_discarded() ? json(m->body) : body;
      out << j.dump(2) << '\n';
      return exit_ok;
    }
    if (c.action == "retry") {
      const std::size_t n = c.dead ? admin.retry_all_dead() : admin.retry(c.id);
      out << n << " message(s) queued again; the running daemon picks them up within seconds\n";
      return n > 0 || c.dead ? exit_ok : exit_bad_input;
    }
    if (c.action == "purge") {
      const auto t = transport::parse_purge_date(c.before);
      if (!t) {
        err << "--delivered-before: expected a date like 2026-11-23 or 2026-11-23T08:00:00Z, got \"" << c.before << "\"\n";
        return exit_usage;
      }
      out << admin.purge_delivered_before(*t) << " delivered message(s) removed\n";
      return exit_ok;
    }
  } catch (const std::exception& e) {
    err << file << ": " << e.what() << '\n';
    return exit_no_input;
  }
  err << "outbox: unknown action " << c.action << '\n';
  return exit_usage;
}

int run_status(const status_command& c, std::ostream& out, std::ostream& err) {
  const auto r = load_config(c.config, /*check_devices=*/false);
  if (!r.ok()) {
    for (const auto& p : r.problems) err << format_problem(c.config, p) << '\n';
    return exit_config;
  }
  if (r.cfg.health.port == 0) {
    err << c.config << ": /health/port is 0: the daemon has no status endpoint\n";
    return exit_config;
  }
  std::string body, error;
  if (!http_get(r.cfg.health.bind, r.cfg.health.port, "GET", "/health", body, error)) {
    err << "interfaced status: " << error << '\n';
    return exit_unavailable;
  }
  const json h = json::parse(body, nullptr, false);
  if (h.is_discarded() || !h.is_object()) {
    err << "interfaced status: the answer on port " << r.cfg.health.port << " is not the daemon's status\n";
    return exit_unavailable;
  }
  // The port may be held by another daemon (another configuration, an old instance): say so
  // rather than report its devices as ours.
  const std::string ours = std::filesystem::absolute(c.config).lexically_normal().string();
  if (h.contains("config") && h["config"].is_string() && h["config"].get<std::string>() != ours) {
    err << "interfaced status: the daemon on port " << r.cfg.health.port << " (pid " << h.value("pid", 0L)
        << ") runs " << h["config"].get<std::string>() << ", not " << ours << '\n';
    return exit_unavailable;
  }
  if (c.json) {
    out << body;
    return exit_ok;
  }
  if (h.contains("pid")) out << "daemon: pid " << h["pid"] << ", " << h.value("config", std::string()) << '\n';
  out << "outbox: " << h["outbox"]["depth"] << " waiting" << (h["outbox"]["alarm"].get<bool>() ? "  ALARM: full, analysers refused" : "") << '\n';
  out << std::left << std::setw(16) << "DEVICE" << std::setw(6) << "PROTO" << std::setw(12) << "LINK" << std::setw(6) << "UP"
      << std::setw(10) << "MESSAGES" << std::setw(9) << "RESULTS" << std::setw(9) << "PROBLEMS" << "LAST MESSAGE"
      << "   (messages and results: today in the lab's zone; times with its offset)\n";
  for (const auto& d : h["devices"])
    out << std::setw(16) << d["id"].get<std::string>() << std::setw(6) << d["protocol"].get<std::string>() << std::setw(12)
        << d["link"].get<std::string>() << std::setw(6) << (d["up"].get<bool>() ? "yes" : "no") << std::setw(10)
        << d["messages_today"].get<std::uint64_t>() << std::setw(9) << d["results_today"].get<std::uint64_t>() << std::setw(9)
        << d["problems"].get<std::uint64_t>() << (d["last_message_at"].get<std::string>().empty() ? "-" : d["last_message_at"].get<std::string>())
        << '\n';
  for (const auto& d : h["devices"])
    if (d.value("state", "") == "down")
      out << "DOWN: " << d["id"].get<std::string>() << ": " << d.value("down_reason", "") << '\n';
  for (const auto& a : h["alarms"]) out << "ALARM: " << a.get<std::string>() << '\n';
  return exit_ok;
}

int run_trace(const trace_command& c, std::ostream& out, std::ostream& err) {
  const auto r = load_config(c.config, /*check_devices=*/false);
  if (!r.ok()) {
    for (const auto& p : r.problems) err << format_problem(c.config, p) << '\n';
    return exit_config;
  }
  // Switching a trace changes the daemon: it takes the admin token (health.admin_token_file).
  std::vector<transport::http_header> auth;
  if (r.cfg.health.admin_token_file.empty()) {
    err << "interfaced trace: " << c.config << ": /health/admin_token_file is not set: the daemon refuses changes "
        << "without its token (README \"Install on a lab PC\")\n";
    return exit_config;
  }
  try {
    auth.push_back({"Authorization", "Bearer " + load_admin_token(r.cfg.health)});
  } catch (const std::exception& e) {
    err << "interfaced trace: " << e.what() << '\n';
    return exit_no_input;
  }
  std::string body, error;
  if (!http_get(r.cfg.health.bind, r.cfg.health.port, "POST", "/trace?device=" + c.device + "&on=" + (c.on ? "1" : "0"),
                body, error, std::move(auth))) {
    err << "interfaced trace: " << error << '\n';
    return exit_unavailable;
  }
  out << "wire trace for " << c.device << " is " << (c.on ? "on" : "off") << " ("
      << (r.cfg.logging.dir / (c.device + ".trace")).string() << ")\n";
  return exit_ok;
}

int run_backend_sim_command(const backend_sim_command& c, std::ostream& err) {
  sim::backend_sim_options o;
  o.listen_address = c.listen;
  o.port = static_cast<std::uint16_t>(c.port);
  o.record_file = c.record;
  o.data_file = c.data;
  o.tls_cert = c.tls_cert;
  o.tls_key = c.tls_key;
  if (!c.token_env.empty()) {
    const char* t = std::getenv(c.token_env.c_str());
    if (!t) {
      err << "--expect-token-env: " << c.token_env << " is not set\n";
      return exit_usage;
    }
    o.expect_token = t;
  }
  for (const auto& f : c.faults) {
    std::string why;
    auto fault = sim::parse_fault(f, &why);
    if (!fault) {
      err << "--fail \"" << f << "\": " << why << '\n';
      return exit_usage;
    }
    o.faults.push_back(*fault);
  }
  o.log = [&err](std::string_view line) { err << line << '\n'; };
  return sim::run_backend_sim(std::move(o));
}

}  // namespace interfaced::daemon
