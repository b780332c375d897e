#include "daemon/admin_commands.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <optional>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "daemon/clock.hpp"
#include "daemon/config.hpp"
#include "daemon/replay.hpp"
#include "daemon/sim/backend_sim.hpp"
#include "rerun/wall_time.hpp"
#include "transport/http_fetch.hpp"
#include "transport/instance_lock.hpp"
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

json message_json(const transport::stored_message& m, const std::vector<transport::resend>& resends) {
  json j = {{"id", m.id}, {"kind", m.kind}, {"ordering_key", m.ordering_key},
            {"state", transport::to_string(m.state)}, {"attempts", m.attempts},
            {"created_at", iso(m.created_at)}, {"next_attempt_at", iso(m.next_attempt_at)},
            {"last_status", m.last_status}, {"last_response", m.last_response},
            {"internal_request", m.internal_request}};
  if (m.delivered_at) j["delivered_at"] = iso(*m.delivered_at);
  if (m.set_aside_at)
    j["set_aside"] = {{"by", m.set_aside_by}, {"at", iso(*m.set_aside_at)}, {"reason", m.set_aside_reason}};
  json copies = json::array();
  for (const auto& r : resends)
    copies.push_back({{"received_at", iso(r.received_at)}, {"device", r.device}, {"sample_id", r.sample_id},
                      {"parameter", r.parameter}, {"value", r.value}, {"observed_at", r.observed_at}});
  j["resends"] = copies;
  json body = json::parse(m.body, nullptr, false);
  j["body"] = body.is_discarded() ? json(m.body) : body;
  if (!m.body_error.empty()) j["body_error"] = m.body_error;
  return j;
}

// `outbox show` for a person: what it is, where it stands, why, what to do.
void print_message(std::ostream& out, const transport::stored_message& m, const std::vector<transport::resend>& resends) {
  out << "message    " << m.id << '\n'
      << "kind       " << m.kind << (m.internal_request ? " (internal request)" : "") << '\n'
      << "order key  " << m.ordering_key << '\n'
      << "state      " << transport::to_string(m.state) << '\n'
      << "stored     " << iso(m.created_at) << '\n'
      << "attempts   " << m.attempts << '\n';
  if (m.delivered_at) out << "delivered  " << iso(*m.delivered_at) << '\n';
  if (m.state == transport::message_state::pending && m.attempts > 0)
    out << "next try   " << iso(m.next_attempt_at) << '\n';
  if (m.attempts > 0)
    out << "last answer " << (m.last_status ? "HTTP " + std::to_string(m.last_status) : std::string("no response")) << ": "
        << (m.last_response.empty() ? "(empty)" : m.last_response.substr(0, 500)) << '\n';
  if (m.set_aside_at)
    out << "set aside  " << iso(*m.set_aside_at) << " by " << m.set_aside_by << ": " << m.set_aside_reason << '\n';
  if (!resends.empty()) {
    out << "sent again by the analyser " << resends.size() << " time(s) while dead:\n";
    for (const auto& r : resends)
      out << "  " << iso(r.received_at) << "  " << r.device << "  sample " << r.sample_id << "  " << r.parameter << " = "
          << r.value << (r.observed_at.empty() ? "" : "  observed " + r.observed_at) << '\n';
  }
  switch (m.state) {
    case transport::message_state::dead:
      out << "what now   fix the cause, then `interfaced outbox retry " << m.id << "`\n";
      break;
    case transport::message_state::set_aside:
      out << "what now   `interfaced outbox retry " << m.id << "` sends it again\n";
      break;
    case transport::message_state::pending:
      out << "what now   it is retried with backoff; `interfaced outbox set-aside " << m.id
          << " --by NAME --reason TEXT` parks it\n";
      break;
    case transport::message_state::delivered: break;
  }
  if (!m.body_error.empty()) {
    out << "body       (none: " << m.body_error << ")\n";
    return;
  }
  json body = json::parse(m.body, nullptr, false);
  out << "body\n" << (body.is_discarded() ? m.body : body.dump(2)) << '\n';
}

// Whether a daemon runs on this outbox, from its single-instance lock (transport/instance_lock.hpp,
// "<outbox>.lock"): `retry` must not promise a pick-up nobody will make. "pid N" when one holds
// it, "" when none does, nullopt when it cannot be told (the lock file unreadable).
std::optional<std::string> daemon_on(const std::string& file) {
  std::string why;
  if (auto free = transport::instance_lock::acquire(file + ".lock", why)) return std::string();
  if (why.starts_with("held by ")) return why.substr(8);
  return std::nullopt;
}

}  // namespace

int run_outbox_command(const outbox_command& c, std::ostream& out, std::ostream& err) {
  std::string file = c.file;
  if (file.empty()) {
    auto r = load_config(c.config, /*check_devices=*/false);
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
      transport::list_filter f;
      f.include_delivered = c.all;
      f.sample = c.sample;
      f.orphans = c.orphans;
      if (!c.state.empty()) {
        f.state = transport::message_state_from(c.state);
        if (!f.state) {
          err << "--state: expected pending, delivered, dead or set-aside, got \"" << c.state << "\"\n";
          return exit_usage;
        }
      }
      if (!c.since.empty()) {
        f.since = rerun::parse_wall_time(c.since);
        if (!f.since) {
          err << "--since: expected a date like 2026-11-23 or 2026-11-23T08:00:00Z (UTC), got \"" << c.since << "\"\n";
          return exit_usage;
        }
      }
      const auto rows = admin.list(f);
      if (c.json) {
        json a = json::array();
        for (const auto& m : rows)
          a.push_back({{"id", m.id}, {"kind", m.kind}, {"ordering_key", m.ordering_key},
                       {"state", transport::to_string(m.state)}, {"attempts", m.attempts},
                       {"age_s", m.age.count() / 1000}, {"next_attempt_at", iso(m.next_attempt_at)},
                       {"last_status", m.last_status}, {"created_at", iso(m.created_at)}, {"resends", m.resends}});
        for (std::size_t i = 0; i < rows.size(); ++i)
          if (!rows[i].orphan_path.empty()) a[i]["orphan_path"] = rows[i].orphan_path;
        out << a.dump(2) << '\n';
        return exit_ok;
      }
      out << std::left << std::setw(38) << "ID" << std::setw(14) << "KIND" << std::setw(10) << "STATE"
          << std::setw(9) << "ATTEMPTS" << std::setw(7) << "AGE" << std::setw(7) << "HTTP" << "KEY\n";
      for (const auto& m : rows)
        out << std::setw(38) << m.id << std::setw(14) << m.kind << std::setw(10) << transport::to_string(m.state)
            << std::setw(9) << m.attempts << std::setw(7) << age_text(m.age) << std::setw(7)
            << (m.last_status ? std::to_string(m.last_status) : "-") << m.ordering_key
            << (m.resends ? "  (+" + std::to_string(m.resends) + " resent)" : "")
            << (m.orphan_path.empty() ? "" : "  orphan object: " + m.orphan_path) << '\n';
      out << rows.size() << " message(s)\n";
      return exit_ok;
    }
    if (c.action == "show") {
      const auto m = admin.show(c.id);
      if (!m) {
        err << file << ": no message " << c.id << '\n';
        return exit_bad_input;
      }
      const auto resends = admin.resends_of(m->id);
      // A file-type report: the stage it reached and the stored object (file-reports.md).
      const auto job = m->kind == "file_report" ? admin.file_job_of(m->id) : std::nullopt;
      if (c.json) {
        json j = message_json(*m, resends);
        if (job)
          j["file_job"] = {{"stage", job->stage}, {"size", job->size}, {"sha256", job->sha256},
                           {"path", job->path}, {"presigns", job->presigns}};
        out << j.dump(2) << '\n';
      } else {
        print_message(out, *m, resends);
        if (job)
          out << "file stage " << job->stage << " (" << job->size << " bytes, sha256 " << job->sha256 << ")"
              << (job->path.empty() ? std::string() : ", object " + job->path)
              << (m->state == transport::message_state::dead && (job->stage == "uploaded" || job->stage == "reconciled")
                      ? " -- an orphan: the object is stored but the backend refused the report"
                      : "")
              << '\n';
      }
      return exit_ok;
    }
    if (c.action == "retry") {
      const std::size_t n = c.dead ? admin.retry_all_dead() : admin.retry(c.id);
      out << n << " message(s) queued again";
      const auto holder = n == 0 ? std::optional<std::string>() : daemon_on(file);
      if (n == 0) out << '\n';
      else if (holder && !holder->empty()) out << "; the running daemon (" << *holder << ") picks them up within seconds\n";
      else if (holder) out << "; no daemon runs on this outbox now: they are sent when it starts\n";
      else out << "; they are sent by the daemon that uses " << file << " (within seconds if one runs)\n";
      return n > 0 || c.dead ? exit_ok : exit_bad_input;
    }
    if (c.action == "set-aside") {
      if (c.by.empty() || c.reason.empty()) {
        err << "outbox set-aside: --by NAME and --reason TEXT are both required (the audit keeps them)\n";
        return exit_usage;
      }
      const auto before = admin.show(c.id);
      if (!before) {
        err << file << ": no message " << c.id << '\n';
        return exit_bad_input;
      }
      if (admin.set_aside(c.id, c.by, c.reason) == 0) {
        err << "message " << c.id << " is " << transport::to_string(before->state)
            << ": only a pending or dead message can be set aside\n";
        return exit_bad_input;
      }
      out << "message " << c.id << " set aside by " << c.by << "; it stays in the outbox and is sent again only after "
          << "`interfaced outbox retry " << c.id << "`\n";
      return exit_ok;
    }
    if (c.action == "purge") {
      const auto t = rerun::parse_wall_time(c.before);
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
  // Dead letters are not waiting for delivery: they wait for a person (`outbox list --state dead`).
  const long long depth = h["outbox"].value("depth", 0LL), dead = h["outbox"].value("dead", 0LL);
  out << "outbox: " << depth - dead << " waiting" << (dead > 0 ? ", " + std::to_string(dead) + " dead (`interfaced outbox list --state dead`)" : "")
      << (h["outbox"]["alarm"].get<bool>() ? "  ALARM: full, analysers refused" : "") << '\n';
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

int run_qc_admin(const qc_admin_command& c, std::ostream& out, std::ostream& err) {
  const std::string who = "interfaced qc " + c.action;
  const auto r = load_config(c.config, /*check_devices=*/false);
  if (!r.ok()) {
    for (const auto& p : r.problems) err << format_problem(c.config, p) << '\n';
    return exit_config;
  }
  std::vector<transport::http_header> headers{{"Content-Type", "application/json"}};
  std::string method = "GET", target = "/api/qc/history", body;
  if (c.action != "history") {
    // A resolution changes the daemon: it takes the admin token (health.admin_token_file).
    if (r.cfg.health.admin_token_file.empty()) {
      err << who << ": " << c.config << ": /health/admin_token_file is not set: the daemon refuses changes "
          << "without its token (README \"Install on a lab PC\")\n";
      return exit_config;
    }
    try {
      headers.push_back({"Authorization", "Bearer " + load_admin_token(r.cfg.health)});
      // Not a page: no CSRF token to send back (health.hpp, health_sources::csrf).
      headers.push_back({"X-Interfaced-Client", "cli"});
    } catch (const std::exception& e) {
      err << who << ": " << e.what() << '\n';
      return exit_no_input;
    }
    method = "POST";
    json b;
    if (c.action == "resolve") {
      target = "/api/qc/resolve";
      b = {{"result_id", c.id}, {"code", c.code}, {"by", c.by}, {"reason", c.reason}, {"propose", c.propose}};
    } else if (c.action == "approve") {
      target = "/api/qc/approve";
      b = {{"proposal_id", c.id}, {"by", c.by}};
    } else {
      target = "/api/qc/undo";
      b = {{"resolution_id", c.id}, {"by", c.by}, {"reason", c.reason}};
    }
    body = b.dump();
  }
  const std::string& bind = r.cfg.health.bind;
  const std::string host = bind == "0.0.0.0" ? "127.0.0.1" : bind == "::" ? "::1" : bind;
  const auto a = transport::http_fetch(host, r.cfg.health.port, method, target, std::move(headers),
                                       std::chrono::milliseconds(15000), body);
  if (!a.answered) {
    err << who << ": cannot reach the daemon at " << host << " port " << r.cfg.health.port
        << " (is it running? resolutions are applied by the running daemon): " << a.error << '\n';
    return exit_unavailable;
  }
  const json j = json::parse(a.body, nullptr, false);
  if (a.status != 200) {
    err << who << ": refused: " << (j.is_object() && j.contains("error") ? j["error"].get<std::string>() : a.body) << '\n';
    // 503: the daemon could not store the change (nothing changed) or is storing another: try again.
    return a.status == 401 ? exit_config : a.status == 503 ? exit_tempfail : exit_bad_input;
  }
  if (c.json) {
    out << (j.is_discarded() ? a.body : j.dump()) << '\n';
    return exit_ok;
  }
  if (c.action == "history") {
    for (const auto& e : j.value("entries", json::array())) {
      out << e.value("id", 0) << "  " << e.value("at", "") << "  " << e.value("kind", "") << "  " << e.value("code", "")
          << "  " << e.value("result_id", "") << "  by " << e.value("by", "");
      if (e.value("ref", 0) != 0) out << "  (of " << e.value("ref", 0) << ")";
      if (!e.value("reason", "").empty()) out << "  why: " << e.value("reason", "");
      out << '\n';
    }
    return exit_ok;
  }
  const json& res = j["resolution"];
  out << j.value("message", "") << '\n';
  out << (res.value("state", "") == "proposed" ? "proposal " : "resolution ") << res.value("id", 0) << " ("
      << res.value("state", "") << ")\n";
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
  o.store_dir = c.store;
  o.presign_ttl = std::chrono::seconds(c.presign_ttl_s);
  if (!c.s3_url.empty()) {
    if (!c.store.empty()) {
      err << "--s3 and --store: choose one store\n";
      return exit_usage;
    }
    if (c.s3_bucket.empty() || c.s3_key.empty() || c.s3_secret_file.empty()) {
      err << "--s3 needs --s3-bucket, --s3-key and --s3-secret-file\n";
      return exit_usage;
    }
    std::ifstream in(c.s3_secret_file);
    std::string secret;
    std::getline(in, secret);
    while (!secret.empty() && (secret.back() == '\r' || secret.back() == ' ')) secret.pop_back();
    if (!in && secret.empty()) {
      err << "--s3-secret-file: cannot read " << c.s3_secret_file << '\n';
      return exit_bad_input;
    }
    o.s3_url = c.s3_url;
    o.s3_bucket = c.s3_bucket;
    o.s3_key = c.s3_key;
    o.s3_secret = secret;
  }
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
