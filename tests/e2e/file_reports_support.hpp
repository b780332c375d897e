#pragma once
// File-type reports end to end (issue #15): `interfaced backend-sim --store DIR` (or `--s3` in
// front of s3rver), a daemon with a Sysmex XN device whose files.root holds the images, the
// analyser played by `interfaced simulate`. Expectations come from the capture and the spec:
// which parameter names which file, one object per file byte for byte, the stage requests the
// simulator recorded.

#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <map>
#include <random>

#include "e2e_support.hpp"
#include "sim_control.hpp"

namespace interfaced::e2e::files {

using interfaced::e2e::sim_control;  // sim_control.hpp

inline bool wait_until(const std::function<bool()>& ok, ms limit = 20000ms) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (ok()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return ok();
}

// sha256sum(1): an implementation other than the daemon's.
inline std::string sha256_of(const fs::path& f) {
  std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(("sha256sum '" + f.string() + "'").c_str(), "r"), &::pclose);
  char buf[65] = {};
  if (!p || std::fread(buf, 1, 64, p.get()) != 64) return {};
  return std::string(buf, 64);
}

inline std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 g(seed);
  std::string s = "\x89PNG\r\n\x1a\n";
  while (s.size() < n) s += static_cast<char>(g() & 0xFF);
  return s;
}

// `interfaced backend-sim --store DIR` (or with the given store arguments).
class store_backend {
 public:
  store_backend(const fs::path& dir, std::vector<std::string> store_args = {},
                const json& data = {{"waiting_list", json::array()}, {"parameters", json::array()}})
      : dir_(dir), port_(free_port()) {
    std::ofstream(dir / "backend-data.json") << data.dump();
    if (store_args.empty()) store_args = {"--store", (dir / "store").string()};
    std::vector<std::string> argv{interfaced::test::interfaced_binary().string(), "backend-sim", "--listen",
                                  std::to_string(port_), "--data", (dir / "backend-data.json").string()};
    argv.insert(argv.end(), store_args.begin(), store_args.end());
    proc_ = std::make_unique<child>(argv, dir / "backend.out", dir / "backend.err");
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (!http_get(port_, "/_sim/requests")) {
      if (!proc_->running()) FAIL("backend-sim exited:\n" << proc_->err());
      if (std::chrono::steady_clock::now() >= until) FAIL("backend-sim did not answer within 10 s");
      std::this_thread::sleep_for(20ms);
    }
  }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] fs::path store() const { return dir_ / "store"; }
  void fail(const json& fault) { REQUIRE(sim_control(port_, "POST", "/_sim/faults", fault.dump()) == 200); }
  void heal() { REQUIRE(sim_control(port_, "DELETE", "/_sim/faults") == 200); }
  [[nodiscard]] std::vector<json> requests(const std::string& path = {}) const {
    const auto body = http_get(port_, "/_sim/requests");
    REQUIRE(body.has_value());
    std::vector<json> out;
    for (const auto& r : json::parse(*body))
      if (!r.value("path", "").starts_with("/_sim") && (path.empty() || r.value("path", "") == path)) out.push_back(r);
    return out;
  }
  // Requests to `path` answered 2xx (a duplicate Idempotency-Key answer is not counted).
  [[nodiscard]] std::vector<json> ok(const std::string& path) const {
    std::vector<json> out;
    for (auto& r : requests(path))
      if (r.value("status", 0) >= 200 && r.value("status", 0) < 300 && !r.value("duplicate", false)) out.push_back(r);
    return out;
  }
  [[nodiscard]] std::string err() const { return proc_->err(); }

 private:
  fs::path dir_;
  std::uint16_t port_;
  std::unique_ptr<child> proc_;
};

// Regular files under `dir`, relative path -> bytes.
inline std::map<std::string, std::string> stored_objects(const fs::path& dir) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() != ".part")
      out[fs::relative(e.path(), dir).string()] = file_text(e.path());
  return out;
}

// Every regular file under `dir` (`.part` ones too), relative paths; none when it is missing.
inline std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    if (it->is_regular_file()) out.push_back(fs::relative(it->path(), dir).string());
  return out;
}

// A daemon with one Sysmex XN device (tcp-server) whose files lie under `root`.
class files_daemon {
 public:
  files_daemon(const fs::path& dir, std::uint16_t backend_port, const fs::path& root, const json& files_extra = json::object())
      : dir_(dir), health_(free_port()), analyser_(free_port()) {
    json files = {{"root", root.string()}, {"settle_ms", 100}, {"wait_s", 20}};
    files.merge_patch(files_extra);
    json dev = tcp_server_device("xn", "astm", analyser_);
    dev["profile"] = "sysmex-xn";
    dev["files"] = files;
    cfg_ = daemon_config(dir, json::array({dev}), health_);
    cfg_["backend"] = {{"base_url", "http://127.0.0.1:" + std::to_string(backend_port)},
                       {"waiting_list_poll_s", 3600},
                       {"allow_insecure_http", true}};
  }
  void start(const std::string& tag = "daemon") {
    tag_ = tag;
    proc_ = run_daemon(dir_, cfg_, health_, tag);
  }
  void kill() {
    proc_->signal(SIGKILL);
    REQUIRE(proc_->wait_for(10000ms).has_value());
  }
  void stop() {
    proc_->signal(SIGTERM);
    REQUIRE(proc_->wait_for(10000ms).has_value());
  }
  // Plays `capture` to the device; REQUIREs every message acknowledged.
  void send(const fs::path& capture) {
    auto sim = simulate(dir_, "sim-" + std::to_string(++sends_), {"--connect", "127.0.0.1:" + std::to_string(analyser_)}, capture);
    const auto st = sim->wait_for(30000ms);
    INFO(sim->err());
    REQUIRE(st == std::optional<int>(0));
  }
  [[nodiscard]] fs::path outbox() const { return dir_ / "outbox.sqlite"; }
  [[nodiscard]] json& config() { return cfg_; }
  [[nodiscard]] std::string device_log() const { return file_text(dir_ / "logs" / "xn.log"); }
  [[nodiscard]] std::string log() const { return proc_ ? proc_->err() + proc_->out() : std::string(); }
  // The stage column of every file_jobs row.
  [[nodiscard]] std::vector<std::string> stages() const { return column_of("SELECT stage FROM file_jobs"); }
  // The state of every file_report message.
  [[nodiscard]] std::vector<std::string> file_report_states() const {
    return column_of("SELECT state FROM messages WHERE kind = 'file_report'");
  }
  // Regular files under the spool folder (<outbox dir>/files), relative paths.
  [[nodiscard]] std::vector<std::string> spool_files() const { return files_under(dir_ / "files"); }
  // Runs `sql` on the outbox file while the daemon is stopped (a crash's state, made by hand).
  void outbox_exec(const std::string& sql) const {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(outbox().c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    const std::string why = error ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    INFO(sql << ": " << why);
    REQUIRE(rc == SQLITE_OK);
  }

 private:
  // The first column of every row `sql` selects from the outbox file (read-only, while the
  // daemon runs: WAL readers do not block it).
  [[nodiscard]] std::vector<std::string> column_of(const char* sql) const {
    std::vector<std::string> out;
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(outbox().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      sqlite3_close(db);
      return out;
    }
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK)
      while (sqlite3_step(st) == SQLITE_ROW) out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }

  fs::path dir_;
  std::uint16_t health_;
  std::uint16_t analyser_;
  json cfg_;
  std::string tag_;
  int sends_ = 0;
  std::unique_ptr<child> proc_;
};

// Waits for `ok`; on time-out the test fails with the daemon's log.
inline void wait_or_fail(const files_daemon& d, const std::function<bool()>& ok, ms limit = 20000ms) {
  if (!wait_until(ok, limit)) FAIL("timed out; daemon log:\n" << d.log());
}

// One Sysmex XN message (records only) whose result `parameter` names the file
// PNG\20240628\<name> (the XN's form, &R& being the repeat delimiter).
inline fs::path one_file_message(const fs::path& dir, const std::string& sample, const std::string& parameter,
                                 const std::string& name) {
  const fs::path f = dir / ("msg-" + sample + ".astm");
  std::ofstream(f, std::ios::binary) << "H|\\^&|||XN-550^00-24^22723^^^^BD634545||||||||E1394-97P\r"
                                     << "P|1\r"
                                     << "O|1||^^" << sample << "^M||||||||||||||||||||||F\r"
                                     << "R|1|^^^^WBC^1|8.13|10*3/uL||N||F||||20240627135407\r"
                                     << "R|2|^^^^" << parameter << "|PNG&R&20240628&R&" << name
                                     << "|||N||F||||20240627135407\r"
                                     << "L|1|N\r";
  return f;
}

inline void write_file(const fs::path& f, const std::string& bytes) {
  fs::create_directories(f.parent_path());
  std::ofstream(f, std::ios::binary) << bytes;
}

// A TCP relay on loopback in front of `upstream` that passes the client's bytes on slowly (at
// most `chunk` per `pause`, through a small receive buffer), so an upload through it is
// observably in progress: forwarded() grows while the sender is still reading its file. The
// answer comes back unthrottled.
class slow_relay {
 public:
  slow_relay(std::uint16_t upstream, std::size_t chunk, ms gap) : upstream_(upstream), chunk_(chunk), pause_(gap) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listener_ >= 0);
    const int small = 16 * 1024;  // inherited by accepted sockets: little buffered on our side
    ::setsockopt(listener_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listener_, 8) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~slow_relay() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    acceptor_.join();
    for (auto& t : pipes_) t.join();
    ::close(listener_);
  }
  slow_relay(const slow_relay&) = delete;
  slow_relay& operator=(const slow_relay&) = delete;
  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::size_t forwarded() const { return forwarded_; }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const int c = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      pipes_.emplace_back([this, c] { relay(c); });
    }
  }
  // Copies until either side ends (or the relay stops); `slow`: the client's direction.
  void copy(int from, int to, bool slow) {
    std::vector<char> buf(slow ? chunk_ : 64 * 1024);
    while (!stop_) {
      pollfd p{from, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const auto n = ::recv(from, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      if (::send(to, buf.data(), static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) break;
      if (slow) {
        forwarded_ += static_cast<std::size_t>(n);
        std::this_thread::sleep_for(pause_);
      }
    }
    ::shutdown(to, SHUT_WR);
  }
  void relay(int client) {
    const int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(upstream_);
    if (up >= 0 && ::connect(up, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      std::thread back([this, up, client] { copy(up, client, false); });
      copy(client, up, true);
      back.join();
    }
    if (up >= 0) ::close(up);
    ::close(client);
  }

  std::uint16_t upstream_;
  std::size_t chunk_;
  ms pause_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> forwarded_{0};
  std::thread acceptor_;
  std::vector<std::thread> pipes_;  // touched by the acceptor thread only, joined after it
};

}  // namespace interfaced::e2e::files

namespace interfaced::e2e::files {

// s3rver (tests/peers, installed by .ci/deps): $INTERFACED_PEERS_DIR, else the build's default.
inline std::optional<fs::path> s3rver_binary() {
  const char* env = std::getenv("INTERFACED_PEERS_DIR");
  const fs::path dir = env && *env ? fs::path(env) : fs::path(INTERFACED_PEERS_DIR);
  const fs::path bin = dir / "node_modules" / ".bin" / "s3rver";
  std::error_code ec;
  if (!fs::exists(bin, ec)) {
    WARN("SKIPPED: s3rver not found at " << bin.string()
                                         << " (run .ci/deps, which runs npm ci for tests/peers); the S3 e2e test not run");
    return std::nullopt;
  }
  return bin;
}

// A real S3-compatible store on loopback: s3rver with one bucket, its default credentials
// (S3RVER / S3RVER); objects on disk under DIR/<bucket>/<key>._S3rver_object.
class s3rver_store {
 public:
  s3rver_store(const fs::path& bin, const fs::path& dir, const std::string& bucket)
      : dir_(dir / "s3"), bucket_(bucket), port_(free_port()) {
    fs::create_directories(dir_);
    proc_ = std::make_unique<child>(std::vector<std::string>{bin.string(), "-d", dir_.string(), "-a", "127.0.0.1", "-p",
                                                             std::to_string(port_), "--configure-bucket", bucket},
                                    dir / "s3rver.out", dir / "s3rver.err");
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (!tcp_conn(port_).ok() || !fs::exists(dir_ / bucket)) {
      if (!proc_->running()) FAIL("s3rver exited:\n" << proc_->err());
      if (std::chrono::steady_clock::now() >= until) FAIL("s3rver did not listen within 20 s");
      std::this_thread::sleep_for(50ms);
    }
  }
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  // key -> bytes of every object in the bucket.
  [[nodiscard]] std::map<std::string, std::string> objects() const {
    std::map<std::string, std::string> out;
    const std::string suffix = "._S3rver_object";
    for (const auto& [rel, bytes] : stored_objects(dir_ / bucket_))
      if (rel.ends_with(suffix)) out[rel.substr(0, rel.size() - suffix.size())] = bytes;
    return out;
  }
  void stop() {
    proc_->signal(SIGTERM);
    (void)proc_->wait_for(5000ms);
  }

 private:
  fs::path dir_;
  std::string bucket_;
  std::uint16_t port_;
  std::unique_ptr<child> proc_;
};

}  // namespace interfaced::e2e::files
