#include "daemon/sim/backend_sim.hpp"

#include <algorithm>
#include <charconv>
#include <csignal>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <nlohmann/json.hpp>

namespace interfaced::sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::ip::tcp;
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
  impl(asio::any_io_executor e, backend_sim_options o) : ex(std::move(e)), opt(std::move(o)), acceptor(ex) {
    faults = opt.faults;
  }

  asio::any_io_executor ex;
  backend_sim_options opt;
  tcp::acceptor acceptor;
  std::optional<ssl::context> ctx;
  std::uint16_t bound_port = 0;
  bool stopped = false;
  std::map<std::uint64_t, std::function<void()>> closers;
  std::uint64_t next_session = 1;

  mutable std::mutex mutex;  // requests, faults, data: the accessors may be called from any thread
  std::vector<recorded_request> requests;
  std::vector<sim_fault> faults;
  std::set<std::string> delivered_keys;
  std::ofstream record;
  json data = json::object();
  std::filesystem::file_time_type data_mtime{};

  error_code start() {
    error_code ec;
    if (!opt.tls_cert.empty() || !opt.tls_key.empty()) {
      ctx.emplace(ssl::context::tls_server);
      ctx->use_certificate_chain_file(opt.tls_cert.string(), ec);
      if (!ec) ctx->use_private_key_file(opt.tls_key.string(), ssl::context::pem, ec);
      if (ec) return ec;
    }
    if (!opt.record_file.empty()) {
      record.open(opt.record_file, std::ios::app | std::ios::binary);
      if (!record) return std::make_error_code(std::errc::permission_denied);
    }
    reload_data(true);
    auto address = asio::ip::make_address(opt.listen_address, ec);
    if (ec) return ec;
    tcp::endpoint ep(address, opt.port);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      error_code ignored;
      acceptor.close(ignored);
      return ec;
    }
    bound_port = acceptor.local_endpoint(ec).port();
    stopped = false;
    asio::co_spawn(ex, accept_loop(), asio::detached);
    transport::emit(opt.log, "backend-sim listening on " + opt.listen_address + ":" + std::to_string(bound_port) +
                      (ctx ? " (TLS)" : ""));
    return {};
  }

  void stop() {
    stopped = true;
    error_code ignored;
    acceptor.close(ignored);
    auto c = std::move(closers);
    closers.clear();
    for (auto& [id, close] : c) close();
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

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    while (!stopped) {
      if (!co_await accept_one()) break;
    }
  }

  asio::awaitable<bool> accept_one() {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return !(stopped || ec == asio::error::operation_aborted);
    {
      const auto id = next_session++;
      if (ctx) {
        auto stream = std::make_shared<beast::ssl_stream<beast::tcp_stream>>(std::move(socket), *ctx);
        closers[id] = [stream] {
          error_code ignored;
          beast::get_lowest_layer(*stream).socket().close(ignored);
        };
        asio::co_spawn(ex, tls_session(stream, id), asio::detached);
      } else {
        auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
        closers[id] = [stream] {
          error_code ignored;
          stream->socket().close(ignored);
        };
        asio::co_spawn(ex, session(stream, id), asio::detached);
      }
    }
    co_return true;
  }

  asio::awaitable<void> tls_session(std::shared_ptr<beast::ssl_stream<beast::tcp_stream>> stream, std::uint64_t id) {
    beast::get_lowest_layer(*stream).expires_after(std::chrono::seconds(10));
    auto [ec] = co_await stream->async_handshake(ssl::stream_base::server, asio::as_tuple(asio::use_awaitable));
    if (ec) {
      transport::emit(opt.log, "backend-sim: TLS handshake failed: " + ec.message());
      closers.erase(id);
      co_return;
    }
    co_await session(stream, id);
  }

  struct answer {
    unsigned status = 200;
    std::string body;
    std::string retry_after;
    bool drop = false;
    std::chrono::milliseconds delay{0};
  };
  static answer reply(unsigned status, std::string body) {
    answer a;
    a.status = status;
    a.body = std::move(body);
    return a;
  }

  std::optional<sim_fault> take_fault(const http::request<http::string_body>& req, std::string_view path) {
    std::lock_guard lock(mutex);
    for (auto it = faults.begin(); it != faults.end(); ++it) {
      if (!it->path.empty() && it->path != path) continue;
      if (!it->method.empty() && it->method != std::string_view(req.method_string())) continue;
      if (!it->body_contains.empty() && req.body().find(it->body_contains) == std::string::npos) continue;
      sim_fault f = *it;
      if (it->count > 0 && --it->count == 0) faults.erase(it);
      return f;
    }
    return std::nullopt;
  }

  answer control(const http::request<http::string_body>& req, std::string_view path) {
    answer a;
    if (path == "/_sim/faults" && req.method() == http::verb::post) {
      auto j = json::parse(req.body(), nullptr, false);
      if (j.is_discarded() || !(j.is_object() || j.is_array())) return reply(400, R"({"error":"fault JSON expected"})");
      std::lock_guard lock(mutex);
      if (j.is_object()) j = json::array({j});
      for (const auto& f : j) faults.push_back(fault_from_json(f));
      a.body = json{{"faults", faults.size()}}.dump();
    } else if (path == "/_sim/faults" && req.method() == http::verb::delete_) {
      std::lock_guard lock(mutex);
      faults.clear();
      a.body = R"({"faults":0})";
    } else if (path == "/_sim/reload" && req.method() == http::verb::post) {
      reload_data(true);
      a.body = R"({"reloaded":true})";
    } else if (path == "/_sim/requests" && req.method() == http::verb::get) {
      std::lock_guard lock(mutex);
      json all = json::array();
      for (const auto& r : requests) all.push_back(to_json(r));
      a.body = all.dump();
    } else {
      a.status = 404;
      a.body = R"({"error":"unknown control endpoint"})";
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
  answer endpoint(const http::request<http::string_body>& req, std::string_view path, const std::string& key,
                  bool& duplicate) {
    answer a;
    const bool post = req.method() == http::verb::post;
    if (req.method() == http::verb::get && path == "/interfacing/waiting-list") {
      a.body = list_for("waiting_list", query_param(req.target(), "device")).dump();
      return a;
    }
    if (req.method() == http::verb::get && path == "/interfacing/parameters") {
      a.body = list_for("parameters", query_param(req.target(), "device")).dump();
      return a;
    }
    static const std::set<std::string_view> posts{"/interfacing/device-results", "/sample-rerun/values",
                                                  "/sample-rerun/request",       "/sample-rerun/auto-check",
                                                  "/storage/presign",            "/storage/reconcile",
                                                  "/interfacing/file-report"};
    if (!post || !posts.contains(path)) {
      return reply(404, R"({"error":"not found"})");
    }
    if (json::parse(req.body(), nullptr, false).is_discarded()) return reply(400, R"({"error":"body is not JSON"})");
    if (!key.empty()) {
      std::lock_guard lock(mutex);
      if (delivered_keys.contains(key)) {
        duplicate = true;
        a.body = json{{"status", "ok"}, {"duplicate", true}, {"idempotency_key", key}}.dump();
        return a;
      }
    }
    if (path == "/storage/presign") {
      a.body = json{{"url", "http://" + opt.listen_address + ":" + std::to_string(bound_port) + "/_sim/upload"},
                    {"fields", json::object()},
                    {"path", "reports/" + (key.empty() ? std::string("upload") : key)}}
                   .dump();
    } else {
      a.body = json{{"status", "ok"}, {"idempotency_key", key}}.dump();
    }
    return a;
  }

  answer handle(const http::request<http::string_body>& req) {
    const std::string target(req.target());
    const std::string path(path_of(target));
    if (path.starts_with("/_sim/")) return control(req, path);

    recorded_request rec;
    rec.method = std::string(req.method_string());
    rec.target = target;
    rec.path = path;
    for (const auto& h : req) {
      std::string name(h.name_string());
      std::string value(h.value());
      if (h.name() == http::field::authorization) value = value.starts_with("Bearer ") ? "Bearer ***" : "***";
      rec.headers.emplace_back(std::move(name), std::move(value));
    }
    if (auto it = req.find("Idempotency-Key"); it != req.end()) rec.idempotency_key = std::string(it->value());
    if (auto it = req.find("x-is-internal-request"); it != req.end()) rec.internal = it->value() == "True";
    rec.body = req.body();

    answer a;
    bool duplicate = false;
    if (!opt.expect_token.empty() && req[http::field::authorization] != "Bearer " + opt.expect_token) {
      a = reply(401, R"({"error":"unauthorized"})");
    } else if (auto f = take_fault(req, path)) {
      // A 2xx "fault" is a slow success, answered by the endpoint proper: a 200 that did not store
      // the request would be a backend lying about delivery, which no client can detect (the
      // crash test once counted such fake 200s as lost results).
      const bool failing = f->status != 0 && (f->status < 200 || f->status >= 300);
      rec.fault = f->drop || failing;
      a.delay = f->delay;
      if (f->drop) {
        a.drop = true;
      } else if (failing) {
        a.status = f->status;
        a.body = f->body.empty() ? R"({"error":"simulated failure"})" : f->body;
        a.retry_after = f->retry_after;
      } else {
        a = endpoint(req, path, rec.idempotency_key, duplicate);
        a.delay = f->delay;
      }
    } else {
      a = endpoint(req, path, rec.idempotency_key, duplicate);
    }
    rec.status = a.drop ? 0 : a.status;
    rec.duplicate = duplicate;

    std::lock_guard lock(mutex);
    if (!a.drop && a.status >= 200 && a.status < 300 && !rec.idempotency_key.empty()) {
      delivered_keys.insert(rec.idempotency_key);
    }
    rec.seq = requests.size() + 1;
    if (record.is_open()) {
      record << to_json(rec).dump() << '\n';
      record.flush();  // another process (a test, the demo) reads the file while we run
    }
    requests.push_back(std::move(rec));
    return a;
  }

  // One request and its answer; false when the connection is done. Kept out of session()'s loop:
  // GCC 12 mis-destroys locals of a loop body that spans co_await and break.
  template <class Stream>
  asio::awaitable<bool> serve_one(Stream& stream, beast::flat_buffer& buffer) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    beast::get_lowest_layer(stream).expires_after(idle_timeout);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return false;
    auto req = parser.release();
    answer a = handle(req);
    if (a.delay.count() > 0) {
      asio::steady_timer t(ex);
      t.expires_after(a.delay);
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      if (stopped) co_return false;
    }
    if (a.drop) co_return false;
    http::response<http::string_body> res;
    res.result(static_cast<http::status>(a.status));
    res.version(req.version());
    res.set(http::field::server, "interfaced-backend-sim");
    res.set(http::field::content_type, "application/json");
    if (!a.retry_after.empty()) res.set(http::field::retry_after, a.retry_after);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(a.body);
    res.prepare_payload();
    beast::get_lowest_layer(stream).expires_after(idle_timeout);
    auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    co_return !wec && req.keep_alive();
  }

  template <class Stream>
  asio::awaitable<void> session(std::shared_ptr<Stream> stream, std::uint64_t id) {
    auto self = shared_from_this();
    beast::flat_buffer buffer;
    while (co_await serve_one(*stream, buffer)) {
    }
    error_code ignored;
    beast::get_lowest_layer(*stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(*stream).socket().close(ignored);
    closers.erase(id);
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
    return tls && ec.category() != asio::error::get_system_category() ? 78 : 69;
  }
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](error_code, int) {
    sim.stop();
    ioc.stop();
  });
  ioc.run();
  return 0;
}

}  // namespace interfaced::sim
