// Configuration: every problem listed with its JSON pointer and what is expected.

#include <catch2/catch.hpp>

#include <algorithm>

#include "daemon/config.hpp"
#include "support/files.hpp"

using namespace interfaced::daemon;

namespace {

std::vector<std::string> problems_of(const std::string& text) {
  auto r = parse_config(text, /*check_devices=*/true);
  std::vector<std::string> out;
  for (const auto& p : r.problems) out.push_back((p.pointer.empty() ? "/" : p.pointer) + ": " + p.message);
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

const char* good = R"({
  // comments are allowed: lab IT annotate their files
  "devices": [
    {"id": "xn-1", "protocol": "astm", "profile": "sysmex-xn",
     "link": {"type": "tcp-server", "port": 5001, "allow": ["127.0.0.1"]}},
    {"id": "ba400", "protocol": "hl7",
     "link": {"type": "tcp-client", "host": "10.0.0.9", "port": 6000, "reconnect_max_ms": 30000}},
    {"id": "c311", "protocol": "astm", "profile": "roche-cobas-c311",
     "link": {"type": "serial", "device": "/dev/null", "baud": 9600, "parity": "none"}}
  ],
  "backend": {"base_url": "https://lab.example/api", "token_env": "INTERFACED_TOKEN"},
  "outbox": {"path": "/tmp/outbox.sqlite", "max_messages": 5000},
  "health": {"port": 9750}
})";

}  // namespace

TEST_CASE("config: a valid file parses into the device list") {
  auto r = parse_config(good);
  INFO(problems_of(good).size());
  REQUIRE(r.ok());
  REQUIRE(r.cfg.devices.size() == 3);
  CHECK(r.cfg.devices[0].server.port == 5001);
  CHECK(r.cfg.devices[0].server.allow == std::vector<std::string>{"127.0.0.1"});
  CHECK(r.cfg.devices[1].client.reconnect_max.count() == 30000);
  CHECK(r.cfg.devices[2].serial.device == "/dev/null");
  CHECK(r.cfg.outbox.max_messages == 5000);
}

TEST_CASE("config: every problem is listed, each with its JSON pointer") {
  const auto p = problems_of(R"({
    "devices": [
      {"id": "a", "protocol": "astm", "profile": "no-such-profile",
       "link": {"type": "tcp-server", "port": 5001, "allwo": []}},
      {"id": "a", "protocol": "smtp", "link": {"type": "tcp-server", "port": 5001}},
      {"id": "c", "protocol": "astm", "link": {"type": "serial", "device": "/nonexistent/ttyS9", "baud": 9601}},
      {"id": "d", "protocol": "hl7", "link": {"type": "tcp-client", "port": "6000"}}
    ],
    "backend": {"token": "secret"},
    "colour": "blue"
  })");
  for (const auto& s : p) UNSCOPED_INFO(s);
  CHECK(has(p, "/devices/0/profile: no profile \"no-such-profile\" in the profile folder"));
  CHECK(has(p, "/devices/0/link/allwo: unknown key (did you mean \"allow\"?)"));
  CHECK(has(p, "/devices/1/protocol: expected one of \"astm\", \"hl7\", \"files\", found \"smtp\""));
  CHECK(has(p, "/devices/1/id: device id \"a\" already used by /devices/0"));
  CHECK(has(p, "/devices/1/link/port: port 5001 is already used by /devices/0"));
  CHECK(has(p, "/devices/2/link/baud: expected a standard rate (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)"));
  CHECK(has(p, "/devices/3/link/host: missing; this key is required"));
  CHECK(has(p, "/devices/3/link/port: expected a whole number, found string"));
  CHECK(has(p, "/backend/token: a token is never written in the configuration: use token_file or token_env"));
  CHECK(has(p, "/colour: unknown key"));
  CHECK(p.size() == 10);
}

TEST_CASE("config: a serial device missing now is a warning, not a problem (the service starts without it)") {
  const char* text = R"({"devices": [
    {"id": "c", "protocol": "astm", "link": {"type": "serial", "device": "/nonexistent/ttyS9"}},
    {"id": "d", "protocol": "astm", "link": {"type": "tcp-server", "port": 5001}}]})";
  auto r = parse_config(text, /*check_devices=*/true);
  CHECK(r.ok());
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].pointer == "/devices/0/link/device");
  CHECK(r.warnings[0].message.starts_with("cannot open /nonexistent/ttyS9 for reading and writing"));
  CHECK(parse_config(text, /*check_devices=*/false).warnings.empty());
}

TEST_CASE("config: silent_after in seconds or as a duration, max_sessions by protocol, idle_timeout_s") {
  auto r = parse_config(R"({"devices": [
    {"id": "a", "protocol": "astm", "silent_after": 900, "link": {"type": "tcp-server", "port": 5001}},
    {"id": "b", "protocol": "hl7", "silent_after": "15m", "link": {"type": "tcp-server", "port": 5002}},
    {"id": "c", "protocol": "hl7", "silent_after": "2h", "max_sessions": 2, "idle_timeout_s": 0,
     "link": {"type": "tcp-server", "port": 5003}},
    {"id": "d", "protocol": "astm", "link": {"type": "tcp-client", "host": "10.0.0.9", "port": 6000}}]})");
  REQUIRE(r.ok());
  CHECK(r.cfg.devices[0].silent_after == std::chrono::seconds(900));
  CHECK(r.cfg.devices[1].silent_after == std::chrono::seconds(900));
  CHECK(r.cfg.devices[2].silent_after == std::chrono::seconds(7200));
  CHECK_FALSE(r.cfg.devices[3].silent_after.has_value());
  // A serial-like ASTM analyser on TCP: one session; HL7 analysers may open a few.
  CHECK(r.cfg.devices[0].max_sessions == 1);
  CHECK(r.cfg.devices[1].max_sessions == 4);
  CHECK(r.cfg.devices[2].max_sessions == 2);
  CHECK(r.cfg.devices[1].idle_timeout_s == 30);
  CHECK(r.cfg.devices[2].idle_timeout_s == 0);

  const auto p = problems_of(R"({"devices": [
    {"id": "a", "protocol": "astm", "silent_after": "15 minutes", "link": {"type": "tcp-server", "port": 5001}},
    {"id": "b", "protocol": "astm", "silent_after": 0, "link": {"type": "tcp-server", "port": 5002}},
    {"id": "c", "protocol": "astm", "max_sessions": 2, "link": {"type": "serial", "device": "/dev/null"}},
    {"id": "d", "protocol": "astm", "idle_timeout_s": 10, "link": {"type": "tcp-server", "port": 5004}},
    {"id": "e", "protocol": "hl7", "max_sessions": 0, "link": {"type": "tcp-server", "port": 5005}}]})");
  for (const auto& s : p) UNSCOPED_INFO(s);
  CHECK(has(p, "/devices/0/silent_after: expected seconds or a duration such as \"90s\", \"15m\", \"2h\", \"1d\", found \"15 minutes\""));
  CHECK(has(p, "/devices/1/silent_after: expected seconds from 1 to 2592000, found 0"));
  CHECK(has(p, "/devices/2/max_sessions: applies to tcp-server links only (a serial port or a tcp-client link is one session)"));
  CHECK(has(p, "/devices/3/idle_timeout_s: applies to hl7 devices only (ASTM has the LIS1-A receive timeout)"));
  CHECK(has(p, "/devices/4/max_sessions: expected a number from 1 to 64, found 0"));
  CHECK(p.size() == 5);
}

TEST_CASE("config: broken JSON names the place") {
  const auto p = problems_of("{\"devices\": [,]}");
  REQUIRE(p.size() == 1);
  CHECK(p[0].find("/: not valid JSON") == 0);
  CHECK(p[0].find("column 14") != std::string::npos);
}

TEST_CASE("config: config_error formats one line per problem, file first") {
  config_error e("/etc/interfaced/interfaced.json", {{"/devices/0/id", "missing; this key is required"}, {"", "x"}});
  CHECK(std::string(e.what()) ==
        "/etc/interfaced/interfaced.json: /devices/0/id: missing; this key is required\n"
        "/etc/interfaced/interfaced.json: /: x\n");
}

TEST_CASE("config: orders.download overrides the profile's order download, typos are listed") {
  auto r = parse_config(R"({"devices": [
    {"id": "xn-1", "protocol": "astm", "profile": "sysmex-xn", "orders": {"download": true},
     "link": {"type": "tcp-server", "port": 5001}},
    {"id": "echo", "protocol": "astm", "profile": "immucor-galileo-echo", "orders": {"download": false},
     "link": {"type": "tcp-server", "port": 5002}},
    {"id": "ba400", "protocol": "hl7", "link": {"type": "tcp-server", "port": 5003}}]})");
  REQUIRE(r.ok());
  CHECK(r.cfg.devices[0].order_download == std::optional<bool>(true));
  CHECK(r.cfg.devices[1].order_download == std::optional<bool>(false));
  CHECK_FALSE(r.cfg.devices[2].order_download.has_value());

  const auto p = problems_of(R"({"devices": [
    {"id": "a", "protocol": "astm", "orders": {"downlaod": true}, "link": {"type": "tcp-server", "port": 5001}},
    {"id": "b", "protocol": "astm", "orders": {"download": "yes"}, "link": {"type": "tcp-server", "port": 5002}},
    {"id": "c", "protocol": "astm", "orders": true, "link": {"type": "tcp-server", "port": 5003}}]})");
  for (const auto& s : p) UNSCOPED_INFO(s);
  CHECK(has(p, "/devices/0/orders/downlaod: unknown key (did you mean \"download\"?)"));
  CHECK(has(p, "/devices/1/orders/download: expected true or false, found string"));
  CHECK(has(p, "/devices/2/orders: expected an object, found boolean"));
  CHECK(p.size() == 3);
}

TEST_CASE("config: lab.timezone is an IANA zone of the tz database, an unknown one is named at its pointer") {
  auto r = parse_config(R"({"devices": [], "lab": {"timezone": "Asia/Kolkata"}})");
  REQUIRE(r.ok());
  CHECK(r.cfg.lab.timezone == "Asia/Kolkata");
  CHECK(parse_config(R"({"devices": []})").cfg.lab.timezone.empty());  // absent: the machine's zone
  const auto p = problems_of(R"({"devices": [], "lab": {"timezone": "Europe/Berlinn", "tz": "UTC"}})");
  REQUIRE(p.size() == 2);
  CHECK(p[0].starts_with("/lab/timezone: unknown time zone \"Europe/Berlinn\""));
  CHECK(p[1].starts_with("/lab/tz: unknown key"));
  CHECK(has(problems_of(R"({"devices": [], "lab": {"timezone": 1}})"), "/lab/timezone: expected a string, found number"));
}

TEST_CASE("config: delivery.stuck_after / unreachable_after take seconds or a duration, keep_delivered_days a day count") {
  auto r = parse_config(R"({"devices": [], "outbox": {"keep_delivered_days": 7},
                            "delivery": {"stuck_after": "2s", "unreachable_after": 600}})", false);
  REQUIRE(r.ok());
  CHECK(r.cfg.delivery.stuck_after == std::chrono::seconds(2));
  CHECK(r.cfg.delivery.unreachable_after == std::chrono::seconds(600));
  CHECK(r.cfg.outbox.keep_delivered_days == 7);
  r = parse_config(R"({"devices": [], "delivery": {"stuck_after": "15m", "unreachable_after": "1h"}})", false);
  REQUIRE(r.ok());
  CHECK(r.cfg.delivery.stuck_after == std::chrono::minutes(15));
  CHECK(r.cfg.delivery.unreachable_after == std::chrono::hours(1));
  // The defaults the issue names: 15 minutes stuck, 30 days kept.
  const config defaults;
  CHECK(defaults.delivery.stuck_after == std::chrono::minutes(15));
  CHECK(defaults.outbox.keep_delivered_days == 30);

  const auto p = problems_of(R"({"devices": [], "delivery": {"stuck_after": "soon", "unreachable_after": 0,
                                  "stuck_afer": 5}, "outbox": {"keep_delivered_days": -1}})");
  CHECK(std::any_of(p.begin(), p.end(), [](const std::string& s) { return s.starts_with("/delivery/stuck_after: expected seconds"); }));
  CHECK(std::any_of(p.begin(), p.end(), [](const std::string& s) { return s.starts_with("/delivery/unreachable_after: expected seconds"); }));
  CHECK(std::any_of(p.begin(), p.end(), [](const std::string& s) { return s.starts_with("/delivery/stuck_afer: unknown key"); }));
  CHECK(std::any_of(p.begin(), p.end(), [](const std::string& s) { return s.starts_with("/outbox/keep_delivered_days: expected a number from 0"); }));
}

TEST_CASE("config: a key given twice is a problem at its pointer, not a silent override", "[config]") {
  const auto p = problems_of(R"({
    "devices": [
      {"id": "a", "protocol": "astm", "link": {"type": "tcp-server", "port": 5001}},
      {"id": "b", "protocol": "astm", "link": {"type": "tcp-server", "port": 5002, "port": 5003}}
    ],
    "health": {"port": 9750},
    "health": {"port": 9751}
  })");
  for (const auto& s : p) UNSCOPED_INFO(s);
  CHECK(has(p, "/devices/1/link/port: \"port\" appears twice in this object; only the last value would be used"));
  CHECK(has(p, "/health: \"health\" appears twice in this object; only the last value would be used"));
  CHECK(p.size() == 2);
}

TEST_CASE("config: a token file that does not exist yet is a warning saying how to create it", "[config]") {
  auto r = parse_config(R"({
    "devices": [{"id": "a", "protocol": "astm", "link": {"type": "tcp-server", "port": 5001}}],
    "backend": {"base_url": "https://lims.example/api", "token_file": "/nonexistent/interfaced/token"}
  })", /*check_devices=*/true);
  CHECK(r.ok());
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].pointer == "/backend/token_file");
  CHECK(r.warnings[0].message.find("does not exist") != std::string::npos);
  CHECK(r.warnings[0].message.find("install -m 0640") != std::string::npos);
}
