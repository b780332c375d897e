// Issue #18 point 4 over the wire: every time a person or a program reads carries its zone. The
// real daemon (TZ=Europe/Berlin, with and without lab.timezone), `interfaced simulate` playing an
// ASTM and an HL7 analyser, the backend simulator recording what was posted, `interfaced status`.
// Offsets come from the tz database's rules: Asia/Kolkata is UTC+05:30 all year (so instants read
// from the clock have a known offset whatever day the test runs); Europe/Berlin is +01:00 in
// winter and +02:00 in summer time.
#include <catch2/catch.hpp>

#include <map>
#include <regex>

#include "e2e_support.hpp"
#include "orders_support.hpp"

using namespace interfaced::e2e;

namespace {

// ASTM records (LIS2-A2), R.13 "date/time test completed" as the analyser's local time.
std::string astm_records(const std::string& sample, const std::string& completed) {
  return "H|\\^&|||TZ-TEST^1.0|||||LIS||P|LIS2-A2|" + completed + "\rP|1|PAT-1\rO|1|" + sample +
         "||^^^GLU|R\rR|1|^^^GLU|5.4|mmol/L|3.9-6.1|N||F||tech1|" + completed + "|" + completed + "\rL|1|N\r";
}

// HL7 v2 ORU^R01 whose OBX-14 (observation date/time) carries its own offset.
std::string hl7_message(const std::string& sample, const std::string& observed) {
  return "MSH|^~\\&|TZ-HL7|LAB|LIS|LAB|" + observed + "||ORU^R01|TZ0001|P|2.5\rPID|1||PAT-2\rOBR|1||" + sample +
         "|GLU^Glucose\rOBX|1|NM|GLU^Glucose||6.1|mmol/L|3.9-6.1|N|||F|||" + observed + "\r";
}

fs::path write(const fs::path& file, const std::string& text) {
  std::ofstream(file, std::ios::binary) << text;
  return file;
}

void play(const fs::path& dir, const std::string& tag, std::uint16_t port, const fs::path& file) {
  auto sim = simulate(dir, tag, {"--connect", "127.0.0.1:" + std::to_string(port)}, file);
  const auto st = sim->wait_for(std::chrono::milliseconds(30000));
  INFO(tag << "\n" << sim->out() << sim->err());
  REQUIRE(st.has_value());
  REQUIRE(*st == 0);
}

// The observed_at of every result value posted for `sample`.
std::vector<std::string> observed_of(const std::vector<json>& posts, const std::string& sample) {
  std::vector<std::string> out;
  for (const auto& p : posts) {
    const json body = json::parse(p.value("body", ""), nullptr, false);
    if (!body.is_object()) continue;
    for (const auto& v : body.value("results", json::array()))
      if (v.value("sample_id", "") == sample) out.push_back(v.value("observed_at", ""));
  }
  return out;
}

// ISO-8601 to the millisecond, without and with an offset: what the daemon writes for an instant.
const std::string local_ms = R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})";
const std::string instant = local_ms + R"([+-]\d\d:\d\d)";

bool any_line(const std::string& text, const std::regex& re) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (std::regex_search(line, re)) return true;
  return false;
}

}  // namespace

TEST_CASE("time zones over the wire: lab.timezone Asia/Kolkata on a machine in Europe/Berlin", "[time]") {
  scratch_dir dir;
  write_backend_data(dir.path() / "backend.json", json::object());
  backend_proc backend(dir.path(), dir.path() / "backend.json");
  const std::uint16_t astm_port = free_port(), hl7_port = free_port(), health = free_port();
  json astm_dev = tcp_server_device("chem", "astm", astm_port);
  astm_dev["trace"] = true;
  json cfg = daemon_config(dir.path(), json::array({astm_dev, tcp_server_device("imm", "hl7", hl7_port)}), health);
  cfg["backend"] = {{"base_url", "http://127.0.0.1:" + std::to_string(backend.port())}};
  cfg["logging"]["level"] = "debug";
  cfg["lab"] = {{"timezone", "Asia/Kolkata"}};
  auto daemon = run_daemon(dir.path(), cfg, health, "daemon", {"TZ=Europe/Berlin"});

  play(dir.path(), "astm", astm_port, write(dir.path() / "tz.astm", astm_records("S-TZ-1", "20261206230000")));
  play(dir.path(), "hl7", hl7_port, write(dir.path() / "tz.hl7", hl7_message("S-TZ-2", "20080807142518+0200")));
  const auto posts = backend.wait_posts("/interfacing/device-results", 2);
  REQUIRE(posts.size() == 2);

  {  // the backend body: received_at with the lab's offset, observed_at with the analyser's or the lab's
    for (const auto& p : posts) {
      const json body = json::parse(p.value("body", ""));
      INFO(body.dump());
      CHECK(std::regex_match(body.value("received_at", ""), std::regex(instant)));
      CHECK(body.value("received_at", "").ends_with("+05:30"));
    }
    CHECK(observed_of(posts, "S-TZ-1") == std::vector<std::string>{"2026-12-06T23:00:00+05:30"});  // ASTM: none sent
    CHECK(observed_of(posts, "S-TZ-2") == std::vector<std::string>{"2008-08-07T14:25:18+02:00"});  // HL7: its own
  }

  {  // status and /health: last_message_at with the lab's offset
    child status({interfaced::test::interfaced_binary().string(), "status", "-c", (dir.path() / "interfaced.json").string()},
                 dir.path() / "status.out", dir.path() / "status.err");
    REQUIRE(status.wait_for(10000ms) == std::optional<int>(0));
    INFO(status.out() << status.err());
    CHECK(any_line(status.out(), std::regex(R"(^chem\s.*\s)" + local_ms + R"(\+05:30$)")));
    const json h = json::parse(*http_get(health, "/health"));
    for (const auto& d : h["devices"]) CHECK(d.value("last_message_at", "").ends_with("+05:30"));
  }

  // Stopped, so every log line is on disk.
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_for(10000ms) == std::optional<int>(0));

  {  // the device log, the debug lines, the wire trace and the service log carry the offset
    const auto chem_log = file_text(dir.path() / "logs" / "chem.log");
    INFO(chem_log);
    CHECK(any_line(chem_log, std::regex("^" + local_ms + R"(\+05:30 info  message received)")));
    // logging.level "debug": one line per result, observed_at with its offset.
    CHECK(any_line(chem_log, std::regex(R"(\+05:30 debug result 1/1: sample S-TZ-1 GLU = 5\.4 mmol/L \[N\] status F observed 2026-12-06T23:00:00\+05:30: )")));
    CHECK(any_line(file_text(dir.path() / "logs" / "imm.log"), std::regex(R"(observed 2008-08-07T14:25:18\+02:00)")));
    const auto trace = file_text(dir.path() / "logs" / "chem.trace");
    INFO(trace);
    CHECK(any_line(trace, std::regex(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+05:30 RX <ENQ>)")));
    // The service log (stderr here): its own lines, and one debug line per delivered message.
    const auto service = daemon->err() + daemon->out();
    CHECK(any_line(service, std::regex(R"(^\S+\+05:30 info  \[interfaced\] time zone Asia/Kolkata \(lab\.timezone\))")));
    CHECK(any_line(service, std::regex(R"(\+05:30 debug \[interfaced\] backend: outbox message \S+ \(results, key sample:\S+\): delivered to /interfacing/device-results, HTTP 2\d\d)")));
  }
}

TEST_CASE("time zones over the wire: without lab.timezone the machine's zone (TZ=Europe/Berlin) is the lab's", "[time]") {
  scratch_dir dir;
  const std::uint16_t astm_port = free_port(), health = free_port();
  const json cfg = daemon_config(dir.path(), json::array({tcp_server_device("chem", "astm", astm_port)}), health);
  auto daemon = run_daemon(dir.path(), cfg, health, "daemon", {"TZ=Europe/Berlin"});
  // Two messages: a winter and a summer local time, each read with Berlin's offset at that time.
  play(dir.path(), "winter", astm_port, write(dir.path() / "w.astm", astm_records("S-W", "20261206130501")));
  play(dir.path(), "summer", astm_port, write(dir.path() / "s.astm", astm_records("S-S", "20260715140000")));
  // The autumn repeated hour: the first (summer) offset, the documented rule.
  play(dir.path(), "autumn", astm_port, write(dir.path() / "a.astm", astm_records("S-A", "20261025023000")));
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_for(10000ms) == std::optional<int>(0));
  std::map<std::string, std::string> observed;
  for (const auto& b : outbox_bodies(dir.path() / "outbox.sqlite"))
    for (const auto& v : b.value("results", json::array())) observed[v.value("sample_id", "")] = v.value("observed_at", "");
  CHECK(observed["S-W"] == "2026-12-06T13:05:01+01:00");
  CHECK(observed["S-S"] == "2026-07-15T14:00:00+02:00");
  CHECK(observed["S-A"] == "2026-10-25T02:30:00+02:00");
  // Instants carry Berlin's offset of the day the test runs: CET or CEST.
  const auto log = file_text(dir.path() / "logs" / "chem.log");
  INFO(log);
  CHECK(any_line(log, std::regex(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0[12]:00 info  message received)")));
  CHECK(any_line(daemon->err(), std::regex(R"(time zone Europe/Berlin \(the machine's\))")));
}
