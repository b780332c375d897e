// Issue #13, what a lab's IT department checks: device ids that could escape the log folder or
// break a scrape are refused with their JSON pointer; logs, traces and the outbox are not
// readable by other users; /metrics passes Prometheus' own checker on a live scrape; the README's
// alert rules load in promtool; `status` names the daemon it talks to.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <regex>

#include "e2e_support.hpp"
#include "support/files.hpp"

using namespace interfaced::e2e;

namespace {

fs::path demo_astm() { return interfaced::test::fixture_dir() / ".." / ".." / "packaging" / "samples" / "demo-chemistry.astm"; }
fs::path readme() { return interfaced::test::fixture_dir() / ".." / ".." / "README.md"; }

std::optional<std::string> find_program(const std::string& name) {
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin"})
    if (fs::exists(fs::path(dir) / name)) return (fs::path(dir) / name).string();
  return std::nullopt;
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777u;
}

// Runs a command to completion (20 s at most); its exit status, stdout + stderr in `output`.
int run_tool(const fs::path& work, const std::string& tag, const std::vector<std::string>& argv, std::string& output) {
  child c(argv, work / (tag + ".out"), work / (tag + ".err"));
  const auto st = c.wait_for(std::chrono::milliseconds(20000));
  REQUIRE(st.has_value());
  output = c.out() + c.err();
  return *st;
}

}  // namespace

TEST_CASE("lab IT: a device id that is a path or breaks quoting is refused with its JSON pointer", "[lab-it]") {
  scratch_dir dir;
  const std::vector<std::string> bad = {"../escaped", "a\"b", "a\\b", "a\nb", ".hidden", "with space", "x/y",
                                        std::string(65, 'a')};
  for (const auto& id : bad) {
    INFO("id: " << id);
    json cfg = daemon_config(dir.path(), json::array({tcp_server_device(id, "astm", 5001)}), 9750);
    std::ofstream(dir.path() / "bad.json") << cfg.dump(2);
    std::string out;
    const int rc = run_tool(dir.path(), "check", {interfaced::test::interfaced_binary().string(), "check-config",
                                                  (dir.path() / "bad.json").string()}, out);
    CHECK(rc == 78);
    CHECK(out.find("/devices/0/id") != std::string::npos);
  }
  json ok = daemon_config(dir.path(), json::array({tcp_server_device("chem-1.A_b", "astm", 5001),
                                                    tcp_server_device(std::string(64, 'b'), "hl7", 5002)}), 9750);
  std::ofstream(dir.path() / "ok.json") << ok.dump(2);
  std::string out;
  CHECK(run_tool(dir.path(), "check-ok", {interfaced::test::interfaced_binary().string(), "check-config",
                                          (dir.path() / "ok.json").string()}, out) == 0);
  INFO(out);
}

TEST_CASE("lab IT: logs, traces and the outbox are not readable by other users, metrics pass promtool", "[lab-it]") {
  scratch_dir dir;
  const auto port = free_port();
  // The test runner's own umask (often 022) is what the daemon inherits: it must set its own.
  const auto hp = free_port();
  json cfg = daemon_config(dir.path(), json::array({tcp_server_device("chem-1", "astm", port)}), hp);
  with_admin_token(cfg, dir.path(), "adm-s3cret");
  auto daemon = run_daemon(dir.path(), cfg, hp);
  std::string out;
  // Changing routes need the admin token: none, or a wrong one, is 401 and changes nothing.
  {
    tcp_conn c(hp);
    REQUIRE(c.send("POST /trace?device=chem-1&on=1 HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer wrong\r\n\r\n"));
    CHECK(c.read_all(std::chrono::milliseconds(5000)).find(" 401 ") != std::string::npos);
  }
  {
    tcp_conn c(hp);
    REQUIRE(c.send("POST /trace?device=chem-1&on=1 HTTP/1.0\r\nHost: x\r\n\r\n"));
    CHECK(c.read_all(std::chrono::milliseconds(5000)).find(" 401 ") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(dir.path() / "logs" / "chem-1.trace"));
  REQUIRE(run_tool(dir.path(), "trace", {interfaced::test::interfaced_binary().string(), "trace", "chem-1", "on",
                                         "-c", (dir.path() / "interfaced.json").string()}, out) == 0);
  auto sim = simulate(dir.path(), "chem", {"--connect", "127.0.0.1:" + std::to_string(port)}, demo_astm());
  REQUIRE(sim->wait_for(std::chrono::milliseconds(20000)) == std::optional<int>(0));

  // status names the daemon it reached (pid and configuration).
  REQUIRE(run_tool(dir.path(), "status", {interfaced::test::interfaced_binary().string(), "status", "-c",
                                          (dir.path() / "interfaced.json").string()}, out) == 0);
  CHECK(out.find("pid " + std::to_string(daemon->pid())) != std::string::npos);
  // Another configuration naming the same health port: status must not report this daemon as its own.
  fs::copy_file(dir.path() / "interfaced.json", dir.path() / "other.json");
  std::string other;
  CHECK(run_tool(dir.path(), "status-other", {interfaced::test::interfaced_binary().string(), "status", "-c",
                                              (dir.path() / "other.json").string()}, other) == 69);
  CHECK(other.find("runs " + fs::absolute(dir.path() / "interfaced.json").lexically_normal().string()) != std::string::npos);

  const json h = json::parse(*http_get(hp, "/health"));
  CHECK(h.at("pid") == daemon->pid());

  // Permissions: nothing for others, nothing written by the group; the outbox owner-only.
  CHECK((mode_of(dir.path() / "logs") & 0027u) == 0);
  CHECK(mode_of(dir.path() / "outbox.sqlite") == 0600u);
  if (fs::exists(dir.path() / "outbox.sqlite-wal")) CHECK(mode_of(dir.path() / "outbox.sqlite-wal") == 0600u);
  REQUIRE(fs::exists(dir.path() / "logs" / "chem-1.log"));
  REQUIRE(fs::exists(dir.path() / "logs" / "chem-1.trace"));
  for (const auto& e : fs::directory_iterator(dir.path() / "logs")) {
    INFO(e.path());
    CHECK((mode_of(e.path()) & 0027u) == 0);
  }

  const auto promtool = find_program("promtool");
  if (!promtool) {
    WARN("SKIPPED: promtool not installed (Debian package prometheus): /metrics and the README's rules not checked");
    return;
  }
  const auto scrape = http_get(hp, "/metrics");
  REQUIRE(scrape.has_value());
  CHECK(scrape->find("interfaced_last_message_timestamp_seconds{device=\"chem-1\"}") != std::string::npos);
  CHECK(scrape->find("interfaced_build_info{version=") != std::string::npos);
  std::ofstream(dir.path() / "scrape.txt") << *scrape;
  CHECK(run_tool(dir.path(), "promtool-metrics",
                 {"/bin/sh", "-c", *promtool + " check metrics < " + (dir.path() / "scrape.txt").string()}, out) == 0);
  INFO(out);
  CHECK(out.find("problem") == std::string::npos);  // promtool lists lint problems even when exiting 0

  // The README's alert rules, as a lab would copy them.
  const std::string text = interfaced::test::file_text(readme());
  const std::regex block("<!-- alert-rules:begin -->\\s*```yaml\\n([\\s\\S]*?)```\\s*<!-- alert-rules:end -->");
  std::smatch m;
  REQUIRE(std::regex_search(text, m, block));
  std::ofstream(dir.path() / "rules.yml") << m[1].str();
  std::string rules_out;
  CHECK(run_tool(dir.path(), "promtool-rules", {*promtool, "check", "rules", (dir.path() / "rules.yml").string()},
                 rules_out) == 0);
  INFO(rules_out);
  CHECK(rules_out.find("SUCCESS: 3 rules found") != std::string::npos);
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_for(std::chrono::milliseconds(10000)) == std::optional<int>(0));
}

TEST_CASE("lab IT: check-config refuses addresses that are not addresses, an exposed endpoint without a token, "
          "a token over http://", "[lab-it]") {
  scratch_dir dir;
  const auto check = [&](json cfg, const std::string& pointer) {
    std::ofstream(dir.path() / "c.json") << cfg.dump(2);
    std::string out;
    const int rc = run_tool(dir.path(), "check", {interfaced::test::interfaced_binary().string(), "check-config",
                                                  (dir.path() / "c.json").string()}, out);
    INFO(out);
    CHECK(rc == 78);
    CHECK(out.find(pointer + ":") != std::string::npos);
  };
  json dev = tcp_server_device("chem-1", "astm", 5001);
  dev["link"]["bind"] = "not-an-ip";
  check(daemon_config(dir.path(), json::array({dev}), 9750), "/devices/0/link/bind");
  dev = tcp_server_device("chem-1", "astm", 5001);
  dev["link"]["allow"] = json::array({"192.0.2.1", "999.1.1.1"});
  check(daemon_config(dir.path(), json::array({dev}), 9750), "/devices/0/link/allow/1");
  json cfg = daemon_config(dir.path(), json::array({tcp_server_device("chem-1", "astm", 5001)}), 9750);
  cfg["health"]["bind"] = "0.0.0.0";
  check(cfg, "/health/bind");
  cfg = daemon_config(dir.path(), json::array({tcp_server_device("chem-1", "astm", 5001)}), 9750);
  cfg["backend"] = {{"base_url", "http://lims.example/api"}, {"token_file", (dir.path() / "t").string()}};
  check(cfg, "/backend/base_url");
  cfg["backend"]["allow_insecure_http"] = true;  // a closed network, said so explicitly
  std::ofstream(dir.path() / "c.json") << cfg.dump(2);
  std::string out;
  CHECK(run_tool(dir.path(), "check-ok", {interfaced::test::interfaced_binary().string(), "check-config",
                                          (dir.path() / "c.json").string()}, out) == 0);
}

TEST_CASE("lab IT: status reaches a daemon whose endpoint is on IPv6 loopback", "[lab-it]") {
  scratch_dir dir;
  const auto hp = free_port();
  json cfg = daemon_config(dir.path(), json::array({tcp_server_device("chem-1", "astm", free_port())}), hp);
  cfg["health"]["bind"] = "::1";
  std::ofstream(dir.path() / "interfaced.json") << cfg.dump(2);
  child daemon({interfaced::test::interfaced_binary().string(), "run", "-c", (dir.path() / "interfaced.json").string()},
               dir.path() / "d.out", dir.path() / "d.err");
  std::string out;
  int rc = -1;
  for (int i = 0; i < 150 && rc != 0; ++i) {  // up to 15 s for the daemon to listen
    if (!daemon.running()) FAIL("the daemon exited:\n" << daemon.err());
    rc = run_tool(dir.path(), "status6", {interfaced::test::interfaced_binary().string(), "status", "-c",
                                          (dir.path() / "interfaced.json").string()}, out);
    if (rc != 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO(out << daemon.err());
  CHECK(rc == 0);
  CHECK(out.find("chem-1") != std::string::npos);
  daemon.signal(SIGTERM);
  CHECK(daemon.wait_for(std::chrono::milliseconds(10000)) == std::optional<int>(0));
}
