#include "daemon/lab_view.hpp"

#include <cctype>
#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "daemon/assets.hpp"
#include "daemon/stats_command.hpp"
#include "rerun/help.hpp"
#include "rerun/wall_time.hpp"
#include "transport/history_store.hpp"
#include "transport/outbox.hpp"

namespace interfaced::daemon {

using nlohmann::json;

std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query) {
  auto decode = [](std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '+') {
        out += ' ';
      } else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
                 std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
        out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else {
        out += s[i];
      }
    }
    return out;
  };
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (kv.empty()) continue;
    const auto eq = kv.find('=');
    out.emplace_back(decode(kv.substr(0, eq)), eq == std::string_view::npos ? std::string() : decode(kv.substr(eq + 1)));
  }
  return out;
}

lab_view::lab_view(std::filesystem::path outbox_file, std::filesystem::path help_file,
                   std::function<rerun::lab_zone()> zone, bool admin)
    : outbox_file_(std::move(outbox_file)), help_file_(std::move(help_file)), zone_(std::move(zone)), admin_enabled_(admin) {
  std::random_device rd;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
  csrf_ = buf;
}

lab_view::~lab_view() = default;

namespace {

transport::http_reply asset_reply(const char* name) {
  const auto* a = find_asset(name);
  if (a == nullptr) return {500, "text/plain", std::string("asset missing: ") + name + "\n"};
  transport::http_reply r{200, std::string(a->content_type), std::string(a->body)};
  r.headers.push_back({"Cache-Control", "no-cache"});
  return r;
}

// A page: its <main> (web/<name>.html) in the shared frame (web/frame.html: head, nav, help
// panel, script), its nav link marked current. The five pages share one head and nav.
transport::http_reply page_reply(const char* name, std::string_view page, std::string_view title, std::string_view path) {
  const auto* frame = find_asset("web/frame.html");
  const auto* main = find_asset(name);
  if (frame == nullptr || main == nullptr) return {500, "text/plain", std::string("asset missing: ") + name + "\n"};
  std::string html(frame->body);
  auto put = [&html](std::string_view marker, std::string_view text) {
    if (const auto at = html.find(marker); at != std::string::npos) html.replace(at, marker.size(), text);
  };
  put("{{title}}", title);
  put("{{page}}", page);
  put("{{main}}", main->body);
  const std::string link = "<a href=\"" + std::string(path) + "\">";
  if (const auto at = html.find(link); at != std::string::npos)
    html.insert(at + link.size() - 1, " aria-current=\"page\"");
  transport::http_reply r{200, std::string(main->content_type), std::move(html)};
  r.headers.push_back({"Cache-Control", "no-cache"});
  return r;
}

std::string value_of(const std::vector<std::pair<std::string, std::string>>& q, std::string_view key) {
  for (const auto& [k, v] : q)
    if (k == key) return v;
  return {};
}

std::string iso(const rerun::lab_zone& zone, transport::outbox_time t) {
  return zone.format(std::chrono::system_clock::time_point(t.time_since_epoch()));
}

}  // namespace

std::optional<transport::http_reply> lab_view::handle(const transport::http_request_view& req,
                                                      std::chrono::system_clock::time_point now) {
  const auto qpos = req.target.find('?');
  const std::string path = req.target.substr(0, qpos);
  const auto q = parse_query(qpos == std::string::npos ? std::string_view() : std::string_view(req.target).substr(qpos + 1));
  if (req.method == "POST") {
    if (path == "/api/messages/retry" || path == "/api/messages/set-aside") return action(path, req);
    return std::nullopt;
  }
  if (req.method != "GET") return std::nullopt;
  if (path == "/" || path == "/index.html") return page_reply("web/dashboard.html", "dashboard", "Dashboard", "/");
  if (path == "/messages") return page_reply("web/messages.html", "messages", "Messages", "/messages");
  if (path == "/qc") return page_reply("web/qc.html", "qc", "QC", "/qc");
  if (path == "/stats") return page_reply("web/stats.html", "stats", "Stats", "/stats");
  if (path == "/help") return page_reply("web/help.html", "help", "Help", "/help");
  if (path == "/assets/app.js") return asset_reply("web/app.js");
  if (path == "/assets/app.css") return asset_reply("web/app.css");
  if (path == "/api/stats") return stats(q, now);
  if (path == "/api/help") return help(q);
  if (path == "/api/messages") return messages(q);
  return std::nullopt;
}

transport::http_reply lab_view::stats(const std::vector<std::pair<std::string, std::string>>& q,
                                      std::chrono::system_clock::time_point now) {
  try {
    if (!history_) history_ = std::make_unique<transport::history_store>(outbox_file_);
    const auto a = answer_stats(*history_, zone_(), q, now, "json");
    transport::http_reply r{static_cast<unsigned>(a.status), a.content_type, a.body};
    if (value_of(q, "format") == "csv")
      r.headers.push_back({"Content-Disposition", "attachment; filename=\"interfaced-stats.csv\""});
    return r;
  } catch (const std::exception& e) {
    history_.reset();  // opened again at the next request
    return {503, "application/json", json({{"error", e.what()}}).dump() + "\n"};
  }
}

transport::http_reply lab_view::help(const std::vector<std::pair<std::string, std::string>>& q) {
  if (!help_) help_ = load_help(help_file_);
  const auto hits = rerun::search_help(help_->items, value_of(q, "q"), value_of(q, "page"));
  std::vector<rerun::help_item> found;
  for (const auto* h : hits) found.push_back(*h);
  json j = rerun::to_json(found);
  j.erase("version");
  return {200, "application/json", j.dump() + "\n"};
}

transport::http_reply lab_view::messages(const std::vector<std::pair<std::string, std::string>>& q) {
  try {
    if (!admin_) admin_ = std::make_unique<transport::outbox_admin>(outbox_file_);
    transport::list_filter f;
    f.include_delivered = true;
    f.sample = value_of(q, "sample");
    f.device = value_of(q, "device");
    if (const auto s = value_of(q, "state"); !s.empty()) f.state = transport::message_state_from(s);
    if (const auto s = value_of(q, "from"); !s.empty()) f.since = rerun::parse_wall_time(s);
    if (const auto s = value_of(q, "to"); !s.empty()) {
      f.until = rerun::parse_wall_time(s);
      // A date alone is the whole day.
      if (f.until && s.size() == 10) *f.until += std::chrono::hours(24);
    }
    // Newest first, bounded, in SQL: a page's cost follows what it shows, not what is stored.
    f.newest_first = true;
    f.limit = max_messages;
    json out = json::array();
    const rerun::lab_zone zone = zone_();
    for (const auto& row : admin_->list(f)) {
      const auto m = admin_->show(row.id);
      if (!m) continue;
      json body = json::parse(m->body, nullptr, false);
      json j = {{"id", m->id},
                {"kind", m->kind},
                {"ordering_key", m->ordering_key},
                {"state", transport::to_string(m->state)},
                {"attempts", m->attempts},
                {"created_at", iso(zone, m->created_at)},
                {"last_status", m->last_status},
                {"last_response", m->last_response},
                {"raw", m->body},
                {"body", body.is_discarded() ? json(nullptr) : body}};
      if (m->delivered_at) j["delivered_at"] = iso(zone, *m->delivered_at);
      if (!m->set_aside_by.empty()) {
        j["set_aside_by"] = m->set_aside_by;
        j["set_aside_reason"] = m->set_aside_reason;
      }
      json resends = json::array();
      for (const auto& r : admin_->resends_of(m->id))
        resends.push_back({{"received_at", iso(zone, r.received_at)}, {"device", r.device}, {"sample_id", r.sample_id},
                           {"parameter", r.parameter}, {"value", r.value}, {"observed_at", r.observed_at}});
      j["resends"] = resends;
      out.push_back(std::move(j));
    }
    json reply = {{"messages", out}, {"limit", max_messages}, {"admin", admin_enabled_}};
    if (admin_enabled_) reply["csrf"] = csrf_;
    return {200, "application/json", reply.dump() + "\n"};
  } catch (const std::exception& e) {
    admin_.reset();
    return {503, "application/json", json({{"error", e.what()}}).dump() + "\n"};
  }
}

transport::http_reply lab_view::action(const std::string& path, const transport::http_request_view& req) {
  auto error = [](unsigned status, const std::string& what) {
    return transport::http_reply{status, "application/json", json({{"error", what}}).dump() + "\n"};
  };
  if (!admin_enabled_) return error(403, "the message browser is read-only: set health.admin_token_file");
  if (req.header("x-csrf-token") != csrf_) return error(403, "missing or stale X-CSRF-Token: reload the page");
  const json body = json::parse(req.body, nullptr, false);
  if (!body.is_object()) return error(400, "expected a JSON object {\"id\",\"by\",\"reason\"}");
  const std::string id = body.value("id", ""), by = body.value("by", ""), reason = body.value("reason", "");
  if (id.empty() || by.empty()) return error(400, "id and by are required (the action is audited)");
  try {
    if (!admin_) admin_ = std::make_unique<transport::outbox_admin>(outbox_file_);
    std::size_t moved = 0;
    if (path == "/api/messages/retry") {
      moved = admin_->retry(id);
      if (moved > 0) spdlog::info("dashboard: message {} queued again by {}{}", id, by, reason.empty() ? "" : " (" + reason + ")");
    } else {
      if (reason.empty()) return error(400, "a reason is required to set a message aside");
      moved = admin_->set_aside(id, by, reason);
      if (moved > 0) spdlog::info("dashboard: message {} set aside by {}: {}", id, by, reason);
    }
    if (moved == 0) return error(409, "message " + id + " was not moved (no such message, or not in a state that allows it)");
    return {200, "application/json", json({{"id", id}, {"moved", moved}}).dump() + "\n"};
  } catch (const std::exception& e) {
    admin_.reset();
    return error(503, e.what());
  }
}

}  // namespace interfaced::daemon
