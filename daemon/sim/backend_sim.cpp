#include "daemon/sim/backend_sim.hpp"

#include <algorithm>
#include <charconv>
#include <csignal>
#include <exception>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/string.hpp>
#include <nlohmann/json.hpp>

#include "daemon/exit_codes.hpp"
#include "daemon/sim/sigv4.hpp"
#include "devices/file_report.hpp"
#include "transport/http_server.hpp"
#include "transport/sha256.hpp"

namespace interfaced::sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
using boost::system::error_code;
using json = nlohmann::json;

namespace {

constexpr std::chrono::seconds idle_timeout{120};

bool parse_uint(std::string_view v, unsigned& out) {
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return ec == std::errc{} && p == v.data() + v.size();
}

bool parse_int(std::string_view v, int& out) {
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return ec == std::errc{} && p == v.data() + v.size();
}

sim_fault fault_from_json(const json& j) {
  sim_fault f;
  f.path = j.value("path", "");
  f.method = j.value("method", "");
  f.body_contains = j.value("body_contains", "");
  f.status = j.value("status", 0u);
  f.drop = j.value("drop", false);
  f.delay = std::chrono::milliseconds(j.value("delay_ms", 0));
  f.count = j.value("count", -1);
  if (j.contains("retry_after")) {
    const auto& ra = j["retry_after"];
    f.retry_after = ra.is_string() ? ra.get<std::string>() : ra.dump();
  }
  f.body = j.value("body", "");
  return f;
}

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

std::string query_param(std::string_view target, std::string_view name) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view item = rest.substr(0, amp);
    auto eq = item.find('=');
    if (item.substr(0, eq) == name && eq != std::string_view::npos) {
      std::string out;
      std::string_view v = item.substr(eq + 1);
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '%' && i + 2 < v.size()) {
          unsigned c = 0;
          std::from_chars(v.data() + i + 1, v.data() + i + 3, c, 16);
          out.push_back(static_cast<char>(c));
          i += 2;
        } else {
          out.push_back(v[i] == '+' ? ' ' : v[i]);
        }
      }
      return out;
    }
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return {};
}

}  // namespace

std::optional<sim_fault> parse_fault(std::string_view spec, std::string* error) {
  sim_fault f;
  auto fail = [&](std::string msg) -> std::optional<sim_fault> {
    if (error) *error = std::move(msg);
    return std::nullopt;
  };
  while (!spec.empty()) {
    auto comma = spec.find(',');
    std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view{} : spec.substr(comma + 1);
    if (item.empty()) continue;
    auto eq = item.find('=');
    std::string_view key = item.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
    if (key == "drop" && eq == std::string_view::npos) {
      f.drop = true;
    } else if (eq == std::string_view::npos) {
      return fail("fault item '" + std::string(item) + "' is not key=value");
    } else if (key == "status") {
      if (!parse_uint(value, f.status) || f.status < 100 || f.status > 599) return fail("bad status: " + std::string(value));
    } else if (key == "count") {
      if (!parse_int(value, f.count) || f.count < -1) return fail("bad count: " + std::string(value));
    } else if (key == "delay") {
      unsigned ms = 0;
      if (!parse_uint(value, ms)) return fail("bad delay (milliseconds): " + std::string(value));
      f.delay = std::chrono::milliseconds(ms);
    } else if (key == "path") {
      f.path = value;
    } else if (key == "method") {
      f.method = value;
    } else if (key == "body-contains") {
      f.body_contains = value;
    } else if (key == "retry-after") {
      f.retry_after = value;
    } else if (key == "body") {
      f.body = value;
    } else {
      return fail("unknown fault item '" + std::string(key) + "'");
    }
  }
  return f;
}

struct backend_sim::impl : std::enable_shared_from_this<backend_sim::impl> {
  impl(asio::any_io_executor e, backend_sim_options o) : ex(std::move(e)), opt(std::move(o)) { faults = opt.faults; }

  asio::any_io_executor ex;
  backend_sim_options opt;
  std::unique_ptr<transport::http_server> server;
  std::uint16_t bound_port = 0;

  mutable std::mutex mutex;  // requests, faults, data: the accessors may be called from any thread
  std::vector<recorded_request> requests;
  std::vector<sim_fault> faults;
  std::set<std::string> delivered_keys;
  // A presign answered before: its answer again for the same Idempotency-Key (the client crashed
  // before it recorded the fields, and needs them; a real backend's de-duplication replays it).
  std::map<std::string, std::string> presign_answers;
  std::ofstream record;
  json data = json::object();
  std::filesystem::file_time_type data_mtime{};
  const std::string store_secret = "backend-sim-store-secret";

  error_code start() {
    transport::http_server_options so;
    so.bind = opt.listen_address;
    so.port = opt.port;
    so.server_header = "interfaced-backend-sim";
    so.log_name = "backend-sim";
    // As the store (--store) it takes whole files: the 500 MB benchmark's among them.
    so.body_limit = opt.store_dir.empty() ? 64 * 1024 * 1024 : std::size_t{2} << 30;
    so.idle_timeout = idle_timeout;
    so.tls_cert = opt.tls_cert;
    so.tls_key = opt.tls_key;
    so.log = opt.log;
    // The server never calls the handler after stop(), which ~backend_sim does: `this` is safe.
    server = std::make_unique<transport::http_server>(
        ex, std::move(so),
        [this](const transport::http_request_view& req, transport::http_responder respond) { serve(req, respond); });
    if (auto ec = server->start()) {
      server.reset();
      return ec;
    }
    if (!opt.record_file.empty()) {
      record.open(opt.record_file, std::ios::app | std::ios::binary);
      if (!record) {
        stop();
        return std::make_error_code(std::errc::permission_denied);
      }
    }
    reload_data(true);
    bound_port = server->port();
    const bool tls = !opt.tls_cert.empty() || !opt.tls_key.empty();
    transport::emit(opt.log, "backend-sim listening on " + opt.listen_address + ":" + std::to_string(bound_port) +
                      (tls ? " (TLS)" : ""));
    return {};
  }

  void stop() {
    if (server) server->stop();
  }

  void reload_data(bool force) {
    if (opt.data_file.empty()) return;
    std::error_code fec;
    auto mtime = std::filesystem::last_write_time(opt.data_file, fec);
    if (fec) return;
    std::lock_guard lock(mutex);
    if (!force && mtime == data_mtime) return;
    std::ifstream in(opt.data_file, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto j = json::parse(text, nullptr, false, true);
    if (j.is_discarded()) {
      transport::emit(opt.log, "backend-sim: " + opt.data_file.string() + " is not valid JSON; keeping the previous data");
      return;
    }
    if (j.is_array()) j = json{{"waiting_list", j}};
    data = std::move(j);
    data_mtime = mtime;
  }

  json list_for(const char* name, const std::string& device) {
    reload_data(false);
    std::lock_guard lock(mutex);
    if (!data.is_object() || !data.contains(name)) return json::array();
    const auto& v = data[name];
    if (v.is_array()) return v;
    if (v.is_object() && v.contains(device)) return v[device];
    return json::array();
  }

  // What to answer and when: a fault may delay the reply or drop the connection instead.
  struct answer {
    transport::http_reply reply;
    std::chrono::milliseconds delay{0};
  };
  static answer reply(unsigned status, std::string body) {
    answer a;
    a.reply.status = status;
    a.reply.body = std::move(body);
    return a;
  }

  std::optional<sim_fault> take_fault(const transport::http_request_view& req, std::string_view path) {
    std::lock_guard lock(mutex);
    for (auto it = faults.begin(); it != faults.end(); ++it) {
      if (!it->path.empty() && it->path != path) continue;
      if (!it->method.empty() && it->method != req.method) continue;
      if (!it->body_contains.empty() && req.body.find(it->body_contains) == std::string::npos) continue;
      sim_fault f = *it;
      if (it->count > 0 && --it->count == 0) faults.erase(it);
      return f;
    }
    return std::nullopt;
  }

  answer control(const transport::http_request_view& req, std::string_view path) {
    answer a;
    if (path == "/_sim/faults" && req.method == "POST") {
      auto j = json::parse(req.body, nullptr, false);
      if (j.is_discarded() || !(j.is_object() || j.is_array())) return reply(400, R"({"error":"fault JSON expected"})");
      std::lock_guard lock(mutex);
      if (j.is_object()) j = json::array({j});
      for (const auto& f : j) faults.push_back(fault_from_json(f));
      a.reply.body = json{{"faults", faults.size()}}.dump();
    } else if (path == "/_sim/faults" && req.method == "DELETE") {
      std::lock_guard lock(mutex);
      faults.clear();
      a.reply.body = R"({"faults":0})";
    } else if (path == "/_sim/reload" && req.method == "POST") {
      reload_data(true);
      a.reply.body = R"({"reloaded":true})";
    } else if (path == "/_sim/requests" && req.method == "GET") {
      std::lock_guard lock(mutex);
      json all = json::array();
      for (const auto& r : requests) all.push_back(to_json(r));
      a.reply.body = all.dump();
    } else {
      return reply(404, R"({"error":"unknown control endpoint"})");
    }
    return a;
  }

  static json to_json(const recorded_request& r) {
    json headers = json::object();
    for (const auto& [k, v] : r.headers) headers[k] = v;
    return json{{"seq", r.seq},       {"method", r.method},   {"target", r.target},
                {"path", r.path},     {"headers", headers},   {"idempotency_key", r.idempotency_key},
                {"internal", r.internal}, {"body", r.body},   {"status", r.status},
                {"duplicate", r.duplicate}, {"fault", r.fault}};
  }

  // The simulated backend proper (backend-api.md defaults).
  answer endpoint(const transport::http_request_view& req, std::string_view path, const std::string& key,
                  bool& duplicate) {
    answer a;
    const bool post = req.method == "POST";
    if (req.method == "GET" && path == "/interfacing/waiting-list") {
      a.reply.body = list_for("waiting_list", query_param(req.target, "device")).dump();
      return a;
    }
    if (req.method == "GET" && path == "/interfacing/parameters") {
      a.reply.body = list_for("parameters", query_param(req.target, "device")).dump();
      return a;
    }
    if (req.method == "GET" && path == "/interfacing/qc-limits") {
      a.reply.body = list_for("qc_limits", query_param(req.target, "device")).dump();
      return a;
    }
    if (post && path == "/store/upload" && !opt.store_dir.empty()) return store_upload(req);
    static const std::set<std::string_view> posts{"/interfacing/device-results", "/sample-rerun/values",
                                                  "/sample-rerun/request",       "/sample-rerun/auto-check",
                                                  "/storage/presign",            "/storage/reconcile",
                                                  "/interfacing/file-report",    "/interfacing/qc-results",
                                                  "/interfacing/qc-runs",        "/interfacing/reflex"};
    if (!post || !posts.contains(path)) {
      return reply(404, R"({"error":"not found"})");
    }
    if (json::parse(req.body, nullptr, false).is_discarded()) return reply(400, R"({"error":"body is not JSON"})");
    if (!key.empty()) {
      std::lock_guard lock(mutex);
      if (delivered_keys.contains(key)) {
        duplicate = true;
        if (const auto it = presign_answers.find(key); path == "/storage/presign" && it != presign_answers.end()) {
          a.reply.body = it->second;
          return a;
        }
        a.reply.body = json{{"status", "ok"}, {"duplicate", true}, {"idempotency_key", key}}.dump();
        return a;
      }
    }
    if (path == "/storage/presign") {
      a.reply.body = presign(req, key);
    } else if (path == "/storage/reconcile") {
      return reconcile(req, key);
    } else if (path == "/interfacing/file-report") {
      const json b = json::parse(req.body, nullptr, false);
      a.reply.body = json{{"status", "ok"}, {"idempotency_key", key}, {"path", b.value("path", "")}}.dump();
    } else {
      a.reply.body = json{{"status", "ok"}, {"idempotency_key", key}}.dump();
    }
    return a;
  }

  // The object key for one file: its message id (from the Idempotency-Key) and name.
  static std::string object_key(const std::string& idem, const std::string& filename) {
    // "<id>.presign" -> "<id>", "<id>.presign-2" (a new presign after an expired policy) -> "<id>-2":
    // a new presign gets a new key, so never the same fields.
    const auto dot = idem.rfind('.');
    std::string id = idem.substr(0, dot);
    if (dot != std::string::npos && idem.compare(dot, 9, ".presign-") == 0) id += idem.substr(dot + 8);
    if (id.empty()) id = "upload";
    std::string name = filename.empty() ? std::string("file") : filename;
    for (auto& c : name)
      if (c == '/' || c == '\\' || static_cast<unsigned char>(c) < 0x20) c = '_';
    return "reports/" + id + "/" + name;
  }

  std::string presign(const transport::http_request_view& req, const std::string& idem) {
    const json b = json::parse(req.body, nullptr, false);
    post_policy_request p;
    p.key = object_key(idem, b.value("filename", ""));
    p.now = std::chrono::system_clock::now();
    p.ttl = opt.presign_ttl;
    std::string url;
    if (!opt.s3_url.empty()) {
      p.bucket = opt.s3_bucket;
      p.access_key = opt.s3_key;
      p.secret = opt.s3_secret;
      url = opt.s3_url;
      while (!url.empty() && url.back() == '/') url.pop_back();
      url += "/" + opt.s3_bucket;
    } else {
      p.bucket = "sim";
      p.access_key = "backend-sim";
      p.secret = store_secret;
      url = "http://" + opt.listen_address + ":" + std::to_string(bound_port) + "/store/upload";
    }
    nlohmann::ordered_json ordered = nlohmann::ordered_json::object();
    for (auto& [k, v] : post_policy_fields(p)) ordered[k] = v;
    nlohmann::ordered_json presigned = {{"url", url}, {"fields", ordered}, {"path", p.key}};
    return presigned.dump();
  }

  // multipart/form-data -> (name, value) in order; the file part's value is its bytes.
  static std::vector<std::pair<std::string, std::string>> form_parts(std::string_view content_type, std::string_view body) {
    std::vector<std::pair<std::string, std::string>> parts;
    const auto bpos = content_type.find("boundary=");
    if (bpos == std::string_view::npos) return parts;
    std::string boundary(content_type.substr(bpos + 9));
    if (boundary.size() > 1 && boundary.front() == '"') boundary = boundary.substr(1, boundary.size() - 2);
    const std::string delim = "--" + boundary;
    std::size_t at = body.find(delim);
    while (at != std::string_view::npos) {
      at += delim.size();
      if (body.substr(at, 2) == "--") break;
      at += 2;  // CRLF
      const auto head_end = body.find("\r\n\r\n", at);
      if (head_end == std::string_view::npos) break;
      const std::string_view head = body.substr(at, head_end - at);
      const auto next = body.find("\r\n" + delim, head_end + 4);
      if (next == std::string_view::npos) break;
      std::string name;
      if (const auto n = head.find("name=\""); n != std::string_view::npos) {
        const auto e = head.find('"', n + 6);
        name = std::string(head.substr(n + 6, e - n - 6));
      }
      parts.emplace_back(std::move(name), std::string(body.substr(head_end + 4, next - head_end - 4)));
      at = next + 2;
    }
    return parts;
  }

  // POST /store/upload: the simulator as the store (--store DIR), checking its own policies as S3 does.
  answer store_upload(const transport::http_request_view& req) {
    const auto parts = form_parts(req.header("Content-Type"), req.body);
    std::map<std::string, std::string> f;
    const std::string* file = nullptr;
    for (const auto& [k, v] : parts) {
      if (k == "file") {
        file = &v;
        break;  // S3 ignores fields after the file
      }
      f[k] = v;
    }
    if (!file) return reply(400, "<Error><Code>InvalidArgument</Code><Message>POST requires exactly one file upload per request.</Message></Error>");
    const std::string date = f["x-amz-date"].substr(0, 8);
    if (f["x-amz-signature"] != policy_signature(store_secret, date, "us-east-1", f["policy"]))
      return reply(403, "<Error><Code>SignatureDoesNotMatch</Code></Error>");
    if (const auto exp = devices::policy_expiry_ms(json{{"policy", f["policy"]}}.dump());
        !exp || std::chrono::system_clock::now().time_since_epoch() > std::chrono::milliseconds(*exp))
      return reply(403, "<Error><Code>AccessDenied</Code><Message>Invalid according to Policy: Policy expired.</Message></Error>");
    const std::string& key = f["key"];
    if (key.empty() || key.find("..") != std::string::npos || key.front() == '/')
      return reply(400, "<Error><Code>InvalidArgument</Code></Error>");
    const std::filesystem::path dst = opt.store_dir / key;
    std::error_code ec;
    std::filesystem::create_directories(dst.parent_path(), ec);
    const std::filesystem::path tmp = dst.string() + ".part";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out.write(file->data(), static_cast<std::streamsize>(file->size()));
      if (!out) return reply(500, "<Error><Code>InternalError</Code></Error>");
    }
    std::filesystem::rename(tmp, dst, ec);
    if (ec) return reply(500, "<Error><Code>InternalError</Code></Error>");
    answer a;
    a.reply.status = 204;
    return a;
  }

  answer reconcile(const transport::http_request_view& req, const std::string& key) {
    const json b = json::parse(req.body, nullptr, false);
    if (!opt.store_dir.empty()) {
      const std::string path = b.value("path", "");
      const auto d = transport::digest_file(opt.store_dir / path);
      if (!d) return reply(404, json{{"error", "no object at " + path}}.dump());
      if (d->size != b.value("size", std::uint64_t{0}) || d->sha256 != b.value("sha256", ""))
        return reply(409, json{{"error", "stored object differs"}, {"size", d->size}, {"sha256", d->sha256}}.dump());
    }
    answer a;
    a.reply.body = json{{"status", "ok"}, {"idempotency_key", key}}.dump();
    return a;
  }

  answer handle(const transport::http_request_view& req) {
    const std::string path(path_of(req.target));
    if (path.starts_with("/_sim/")) return control(req, path);

    recorded_request rec;
    rec.method = req.method;
    rec.target = req.target;
    rec.path = path;
    for (const auto& h : req.headers) {
      std::string value = h.value;
      if (beast::iequals(h.name, "Authorization")) value = value.starts_with("Bearer ") ? "Bearer ***" : "***";
      rec.headers.emplace_back(h.name, std::move(value));
    }
    rec.idempotency_key = std::string(req.header("Idempotency-Key"));
    rec.internal = req.header("x-is-internal-request") == "True";
    // An upload's body is the file: recorded by its size, not its bytes.
    rec.body = path == "/store/upload" ? "(" + std::to_string(req.body.size()) + " bytes)" : req.body;

    answer a;
    bool duplicate = false;
    if (!opt.expect_token.empty() && req.header("Authorization") != "Bearer " + opt.expect_token) {
      a = reply(401, R"({"error":"unauthorized"})");
    } else if (auto f = take_fault(req, path)) {
      // A 2xx "fault" is a slow success, answered by the endpoint proper: a 200 that did not store
      // the request would be a backend lying about delivery, which no client can detect (the
      // crash test once counted such fake 200s as lost results).
      const bool failing = f->status != 0 && (f->status < 200 || f->status >= 300);
      rec.fault = f->drop || failing;
      if (f->drop) {
        a.reply.close_without_reply = true;
      } else if (failing) {
        a = reply(f->status, f->body.empty() ? R"({"error":"simulated failure"})" : f->body);
        if (!f->retry_after.empty()) a.reply.headers.push_back({"Retry-After", f->retry_after});
      } else {
        a = endpoint(req, path, rec.idempotency_key, duplicate);
      }
      a.delay = f->delay;
    } else {
      a = endpoint(req, path, rec.idempotency_key, duplicate);
    }
    const bool dropped = a.reply.close_without_reply;
    rec.status = dropped ? 0 : a.reply.status;
    rec.duplicate = duplicate;

    std::lock_guard lock(mutex);
    if (!dropped && a.reply.status >= 200 && a.reply.status < 300 && !rec.idempotency_key.empty()) {
      delivered_keys.insert(rec.idempotency_key);
      if (path == "/storage/presign" && !duplicate) presign_answers[rec.idempotency_key] = a.reply.body;
    }
    rec.seq = requests.size() + 1;
    if (record.is_open()) {
      record << to_json(rec).dump() << '\n';
      record.flush();  // another process (a test, the demo) reads the file while we run
    }
    requests.push_back(std::move(rec));
    return a;
  }

  // Answers now, or after the fault's delay from a timer, so a slow request holds up nobody else.
  void serve(const transport::http_request_view& req, const transport::http_responder& respond) {
    answer a;
    try {
      a = handle(req);
    } catch (const std::exception&) {
      // A request the simulator cannot take (a fault object with fields of the wrong JSON type, a
      // body that is not UTF-8 for the JSON record) ends its connection unanswered, as it always
      // has; the server's own answer would be a 500.
      a.reply.close_without_reply = true;
    }
    if (a.delay.count() <= 0) {
      respond(std::move(a.reply));
      return;
    }
    auto timer = std::make_shared<asio::steady_timer>(ex, a.delay);
    timer->async_wait([timer, respond, r = std::move(a.reply)](error_code) mutable { respond(std::move(r)); });
  }
};

backend_sim::backend_sim(asio::any_io_executor ex, backend_sim_options options)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(options))) {}

backend_sim::~backend_sim() { impl_->stop(); }

error_code backend_sim::start() { return impl_->start(); }
std::uint16_t backend_sim::port() const noexcept { return impl_->bound_port; }
void backend_sim::stop() { impl_->stop(); }

std::vector<recorded_request> backend_sim::requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->requests;
}

void backend_sim::add_fault(sim_fault f) {
  std::lock_guard lock(impl_->mutex);
  impl_->faults.push_back(std::move(f));
}

void backend_sim::clear_faults() {
  std::lock_guard lock(impl_->mutex);
  impl_->faults.clear();
}

int run_backend_sim(backend_sim_options options) {
  asio::io_context ioc;
  const bool tls = !options.tls_cert.empty() || !options.tls_key.empty();
  auto log = options.log;
  backend_sim sim(ioc.get_executor(), std::move(options));
  if (auto ec = sim.start()) {
    transport::emit(log, "backend-sim: cannot start: " + ec.message());
    // A certificate or key OpenSSL refused is configuration; anything else (the port) is not.
    return tls && ec.category() != asio::error::get_system_category() ? exit_config : exit_unavailable;
  }
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](error_code, int) {
    sim.stop();
    ioc.stop();
  });
  ioc.run();
  return exit_ok;
}

}  // namespace interfaced::sim
