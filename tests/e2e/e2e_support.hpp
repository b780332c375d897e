#pragma once
// End-to-end harness: the real `interfaced` binary as child processes (daemon, simulate, replay),
// a generated configuration in a scratch dir, /health over a loopback socket, the outbox read with
// the sqlite3 C API. Every wait is bounded; a child still running when its handle dies is killed.
// Children, free ports, scratch dirs and file reading are the test-support library's
// (support/processes.hpp, scratch_dir.hpp, files.hpp), named here for the e2e tests.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "support/files.hpp"
#include "support/processes.hpp"
#include "support/scratch_dir.hpp"
#include "transport/body_codec.hpp"

namespace interfaced::e2e {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

using test::child;
using test::file_text;
using test::free_port;
using test::scratch_dir;

// A blocking loopback TCP connection with bounded waits (tests' misbehaving analyser, HTTP).
class tcp_conn {
 public:
  explicit tcp_conn(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) close();
  }
  ~tcp_conn() { close(); }
  tcp_conn(const tcp_conn&) = delete;
  tcp_conn& operator=(const tcp_conn&) = delete;
  [[nodiscard]] bool ok() const noexcept { return fd_ >= 0; }
  bool send(std::string_view bytes) {
    while (!bytes.empty() && fd_ >= 0) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return fd_ >= 0;
  }
  // Reads until the peer closes or `limit` passes.
  std::string read_all(ms limit) {
    std::string got;
    const auto until = std::chrono::steady_clock::now() + limit;
    char buf[4096];
    while (fd_ >= 0) {
      const auto left = std::chrono::duration_cast<ms>(until - std::chrono::steady_clock::now()).count();
      if (left <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  }
  // One read (waiting until `until` at most); empty on timeout or close.
  std::string read_some(std::chrono::steady_clock::time_point until) {
    const auto left = std::chrono::duration_cast<ms>(until - std::chrono::steady_clock::now()).count();
    if (fd_ < 0 || left <= 0) return {};
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return {};
    char buf[8192];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return {};
    return std::string(buf, static_cast<std::size_t>(n));
  }
  // Half-close: the peer sees end of stream, our reading side stays open.
  void shutdown_write() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// GET over plain HTTP/1.0 (the server closes after the reply); the body, or nullopt.
inline std::optional<std::string> http_get(std::uint16_t port, const std::string& target) {
  tcp_conn c(port);
  if (!c.ok()) return std::nullopt;
  if (!c.send("GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")) return std::nullopt;
  // Reads until Content-Length is satisfied (the server may keep the connection open).
  std::string reply;
  const auto until = std::chrono::steady_clock::now() + 5s;
  for (;;) {
    const auto head_end = reply.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      std::string head = reply.substr(0, head_end);
      std::transform(head.begin(), head.end(), head.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
      const auto cl = head.find("content-length:");
      if (cl != std::string::npos) {
        const std::size_t len = std::stoul(head.substr(cl + 15));
        if (reply.size() >= head_end + 4 + len) {
          if (!reply.starts_with("HTTP/1.") || reply.find(" 200 ") > head_end) return std::nullopt;
          return reply.substr(head_end + 4, len);
        }
      }
    }
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    const std::string more = c.read_some(until);
    if (more.empty()) return std::nullopt;
    reply += more;
  }
}

// (sample_id, code, value): what must arrive, compared as a sorted multiset.
using result_key = std::tuple<std::string, std::string, std::string>;
using result_set = std::vector<result_key>;

inline result_set sorted(result_set v) {
  std::sort(v.begin(), v.end());
  return v;
}

inline std::string show(const result_set& v) {
  std::ostringstream o;
  for (const auto& [s, c, val] : v) o << "  " << s << " | " << c << " | " << val << '\n';
  return o.str();
}

struct replay_out {
  int status = -1;
  result_set results;
  std::string err;
};

// `interfaced replay FILE`: the results the daemon must store for that capture.
inline replay_out replay(const fs::path& capture, const fs::path& work) {
  const auto tag = capture.filename().string();
  child c({test::interfaced_binary().string(), "replay", capture.string()}, work / (tag + ".replay.out"),
          work / (tag + ".replay.err"));
  replay_out r;
  const auto st = c.wait_for(30000ms);
  REQUIRE(st.has_value());
  r.status = *st;
  r.err = c.err();
  std::istringstream lines(c.out());
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("type", "") != "result") continue;
    r.results.emplace_back(j.value("sample_id", ""), j.value("code", ""), j.value("value", ""));
  }
  r.results = sorted(std::move(r.results));
  return r;
}

// Every outbox message body, in append order; read-only, after the daemon stopped.
inline std::vector<json> outbox_bodies(const fs::path& db_path) {
  std::vector<json> out;
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT b.body FROM messages m JOIN message_bodies b ON b.seq = m.seq ORDER BY m.seq", -1, &st, nullptr) == SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(st, 0));
    const int n = sqlite3_column_bytes(st, 0);
    // Stored deflated since outbox schema 13 (transport/body_codec.hpp).
    const auto body = interfaced::transport::unpack_body(std::string_view(p ? p : "", static_cast<std::size_t>(n)));
    REQUIRE(body);
    out.push_back(json::parse(*body, nullptr, false));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// The results the outbox holds for one device.
inline result_set outbox_results(const std::vector<json>& bodies, const std::string& device) {
  result_set r;
  for (const auto& b : bodies) {
    if (!b.is_object() || b.value("device_id", "") != device) continue;
    for (const char* key : {"results", "values"}) {
      if (!b.contains(key)) continue;
      for (const auto& v : b[key])
        r.emplace_back(v.value("sample_id", ""), v.value("instrument_code", ""), v.value("value", ""));
    }
  }
  return sorted(std::move(r));
}

// A daemon configuration: `devices` (the "devices" array), the outbox, the logs and the control
// socket in `dir`, /health on `health_port`. Callers add sections (backend ...) as they need.
inline json daemon_config(const fs::path& dir, const json& devices, std::uint16_t health_port) {
  return {{"devices", devices},
          {"outbox", {{"path", (dir / "outbox.sqlite").string()}}},
          {"logging", {{"dir", (dir / "logs").string()}, {"level", "info"}}},
          {"health", {{"bind", "127.0.0.1"}, {"port", health_port}}},
          {"control_socket", (dir / "control.sock").string()}};
}

// `interfaced run` with `cfg` (written to DIR/interfaced.json), stdout / stderr in DIR/TAG.out and
// DIR/TAG.err. Returned once /health on `health_port` answers (15 s at most): devices are started
// before the health endpoint.
inline std::unique_ptr<child> run_daemon(const fs::path& dir, const json& cfg, std::uint16_t health_port,
                                         const std::string& tag = "daemon",
                                         const std::vector<std::string>& env = {}) {
  std::ofstream(dir / "interfaced.json") << cfg.dump(2);
  auto proc = std::make_unique<child>(
      std::vector<std::string>{test::interfaced_binary().string(), "run", "-c", (dir / "interfaced.json").string()},
      dir / (tag + ".out"), dir / (tag + ".err"), env);
  const auto until = std::chrono::steady_clock::now() + 15s;
  while (!http_get(health_port, "/health")) {
    if (!proc->running()) FAIL("the daemon exited at start-up:\n" << proc->err());
    if (std::chrono::steady_clock::now() >= until) FAIL("the daemon's /health did not answer within 15 s");
    std::this_thread::sleep_for(20ms);
  }
  return proc;
}

// One daemon: configuration in `dir`, outbox and logs there too, /health on a free port.
class daemon_proc {
 public:
  explicit daemon_proc(const fs::path& dir) : dir_(dir), health_port_(free_port()) {}

  // devices: the "devices" array of the configuration.
  void start(const json& devices, const std::vector<std::string>& env = {}) {
    proc_ = run_daemon(dir_, daemon_config(dir_, devices, health_port_), health_port_, "daemon", env);
  }

  [[nodiscard]] json health() const {
    const auto body = http_get(health_port_, "/health");
    REQUIRE(body.has_value());
    return json::parse(*body);
  }

  // /metrics' value of `name` for one device (the series interfaced_<name>{device="ID"}); -1 when
  // the series is missing.
  [[nodiscard]] long long device_metric(const std::string& name, const std::string& id) const {
    const auto body = http_get(health_port_, "/metrics");
    REQUIRE(body.has_value());
    const std::string series = "interfaced_" + name + "{device=\"" + id + "\"} ";
    const auto at = body->find("\n" + series);
    if (at == std::string::npos) return -1;
    return std::stoll(body->substr(at + 1 + series.size()));
  }

  [[nodiscard]] std::uint16_t health_port() const noexcept { return health_port_; }

  [[nodiscard]] json device_health(const std::string& id) const {
    const json h = health();
    for (const auto& d : h["devices"])
      if (d["id"] == id) return d;
    FAIL("no device " << id << " in /health");
    return {};
  }

  // SIGTERM; the exit status (REQUIREd within 10 s) and how long the stop took.
  std::pair<int, ms> stop() {
    const auto t0 = std::chrono::steady_clock::now();
    proc_->signal(SIGTERM);
    const auto st = proc_->wait_for(10000ms);
    INFO(proc_->err());
    REQUIRE(st.has_value());
    return {*st, std::chrono::duration_cast<ms>(std::chrono::steady_clock::now() - t0)};
  }

  [[nodiscard]] std::vector<json> outbox() const { return outbox_bodies(dir_ / "outbox.sqlite"); }
  [[nodiscard]] std::string log() const { return proc_->err() + proc_->out(); }
  [[nodiscard]] std::string device_log(const std::string& id) const { return file_text(dir_ / "logs" / (id + ".log")); }
  [[nodiscard]] child& process() { return *proc_; }

 private:
  fs::path dir_;
  std::uint16_t health_port_;
  std::unique_ptr<child> proc_;
};

// health.admin_token_file set to a file in dir holding token: the changing routes (retry, set
// aside, QC resolutions) need it.
inline void with_admin_token(json& cfg, const fs::path& dir, const std::string& token) {
  std::ofstream(dir / "admin.token") << token << "\n";
  cfg["health"]["admin_token_file"] = (dir / "admin.token").string();
}

inline json tcp_server_device(const std::string& id, const std::string& protocol, std::uint16_t port) {
  return {{"id", id},
          {"protocol", protocol},
          {"link", {{"type", "tcp-server"}, {"bind", "127.0.0.1"}, {"port", port}}}};
}

// The points of the GLU series, polled until `want` holds (the daemon applies changes at once,
// the control results arrive through the outbox).
inline json glu_points(std::uint16_t health, bool show, const std::function<bool(const json&)>& want) {
  json last;
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    if (auto body = http_get(health, std::string("/api/qc/series?parameter=GLU") + (show ? "&show_resolved_controls=1" : ""))) {
      const json j = json::parse(*body);
      last = j["series"].empty() ? json::array() : j["series"][0]["points"];
      if (want(last)) return last;
    }
    std::this_thread::sleep_for(50ms);
  }
  return last;
}

// `interfaced simulate ARGS... CAPTURE`, started (wait on the returned child).
inline std::unique_ptr<child> simulate(const fs::path& work, const std::string& tag, std::vector<std::string> args,
                                       const fs::path& capture) {
  std::vector<std::string> argv{test::interfaced_binary().string(), "simulate"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(capture.string());
  return std::make_unique<child>(argv, work / (tag + ".sim.out"), work / (tag + ".sim.err"));
}

}  // namespace interfaced::e2e
