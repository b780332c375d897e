// Issue #16 acceptance: a fault run -- a checksum error, a cut connection, backend 5xx, the outbox
// full -- and then every warning or error line of the device logs and the service log ends with a
// stable code, and `interfaced explain` prints help for every code the run produced.

#include <catch2/catch.hpp>

#include <map>
#include <regex>
#include <set>

#include "e2e_support.hpp"
#include "orders_support.hpp"

using namespace interfaced::e2e;

namespace {

// One ASTM message with `n` samples (each its own outbox message: one ordering key per sample).
std::string astm_samples(const std::string& prefix, int n) {
  std::string m = "H|\\^&|||FAULT-SIM^1.0|||||LIS||P|LIS2-A2|20261206100000\rP|1|PAT-1\r";
  for (int i = 0; i < n; ++i)
    m += "O|" + std::to_string(i + 1) + "|" + prefix + std::to_string(i) + "||^^^GLU|R\rR|1|^^^GLU|5." +
         std::to_string(i % 10) + "|mmol/L|3.9-6.1|N||F||tech1|20261206100000|20261206100000\r";
  return m + "L|1|N\r";
}

fs::path write(const fs::path& file, const std::string& text) {
  std::ofstream(file, std::ios::binary) << text;
  return file;
}

}  // namespace

TEST_CASE("fault run: every warning and error line ends with a code, and explain knows every code", "[lab][codes]") {
  scratch_dir dir;
  write_backend_data(dir.path() / "backend.json", json::object());
  backend_proc backend(dir.path(), dir.path() / "backend.json");
  const std::uint16_t chem = free_port(), cut = free_port(), health = free_port();
  json cfg = daemon_config(dir.path(), json::array({tcp_server_device("chem", "astm", chem), tcp_server_device("cut", "astm", cut)}), health);
  cfg["backend"] = {{"base_url", "http://127.0.0.1:" + std::to_string(backend.port())}};
  cfg["outbox"]["max_messages"] = 100;
  auto daemon = run_daemon(dir.path(), cfg, health);
  // Backend 5xx: every post fails (DELIVERY-003), so the outbox fills.
  {
    tcp_conn c(backend.port());
    REQUIRE(c.ok());
    const std::string spec = R"({"status":503})";
    REQUIRE(c.send("POST /_sim/faults HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: " +
                   std::to_string(spec.size()) + "\r\n\r\n" + spec));
  }
  // A checksum error (frame 2 corrupted on its first transmission) in a multi-frame message.
  {
    auto sim = simulate(dir.path(), "corrupt", {"--connect", "127.0.0.1:" + std::to_string(chem), "--frame-size", "40", "--corrupt-frame", "2"},
                        write(dir.path() / "corrupt.astm", astm_samples("S-C", 3)));
    INFO(sim->err());
    REQUIRE(sim->wait_for(30000ms) == std::optional<int>(0));
  }
  // A connection cut in the middle of a message (the simulator reconnects and sends it again).
  {
    auto sim = simulate(dir.path(), "cut", {"--connect", "127.0.0.1:" + std::to_string(cut), "--frame-size", "40", "--drop-after", "120"},
                        write(dir.path() / "cut.astm", astm_samples("S-D", 3)));
    INFO(sim->err());
    REQUIRE(sim->wait_for(60000ms).has_value());
  }
  // The outbox full: 100 messages undelivered, then the next transfer is refused.
  {
    auto fill = simulate(dir.path(), "fill", {"--connect", "127.0.0.1:" + std::to_string(chem)}, write(dir.path() / "fill.astm", astm_samples("S-F", 100)));
    REQUIRE(fill->wait_for(60000ms).has_value());
    // Refused (NAK to its ENQ) while the outbox is full: the simulator keeps trying; it is
    // stopped once the refusal had time to happen.
    auto refused = simulate(dir.path(), "refused", {"--connect", "127.0.0.1:" + std::to_string(chem)}, write(dir.path() / "more.astm", astm_samples("S-G", 1)));
    if (!refused->wait_for(5000ms)) {
      refused->signal(SIGTERM);
      REQUIRE(refused->wait_for(10000ms).has_value());
    }
  }
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (json::parse(*http_get(health, "/health"))["alarms"].dump().find("OUTBOX-001") == std::string::npos &&
         std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(100ms);
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_for(15000ms).has_value());

  // The historical summary counted the link errors by kind: the damaged frame once as a checksum
  // error, once as the NAK that answered it.
  {
    child st({interfaced::test::interfaced_binary().string(), "stats", "-c", (dir.path() / "interfaced.json").string(),
              "--event", "device_link_error", "--device", "chem", "--format", "json"},
             dir.path() / "stats.out", dir.path() / "stats.err");
    REQUIRE(st.wait_for(10000ms) == std::optional<int>(0));
    const json j = json::parse(st.out());
    INFO(j.dump());
    std::map<std::string, long long> total;
    for (const auto& r : j["rows"])
      for (const auto& v : r["values"]) total[r["dimension_b"].get<std::string>()] += v.get<long long>();
    CHECK(total["checksum"] >= 1);
    CHECK(total["nak"] >= 1);
  }
  const std::regex level(R"(^\S+ +(warning|error|critical) )");
  const std::regex coded(R"(\[([A-Z][A-Z0-9]*-[0-9]{3})\]$)");
  std::set<std::string> codes;
  std::vector<std::string> uncoded;
  auto scan = [&](const std::string& name, const std::string& text) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (!std::regex_search(line, level)) continue;
      std::smatch m;
      if (std::regex_search(line, m, coded)) codes.insert(m[1]);
      else uncoded.push_back(name + ": " + line);
    }
  };
  scan("service log", daemon->err() + daemon->out());
  scan("chem.log", file_text(dir.path() / "logs" / "chem.log"));
  scan("cut.log", file_text(dir.path() / "logs" / "cut.log"));
  for (const auto& u : uncoded) INFO(u);
  CHECK(uncoded.empty());
  std::string all;
  for (const auto& c : codes) all += c + " ";
  INFO("codes of the run: " << all);
  CHECK(codes.count("ASTM-012") == 1);    // the checksum error
  CHECK(codes.count("DELIVERY-003") == 1);  // backend 5xx
  CHECK(codes.count("OUTBOX-001") == 1);    // the outbox full
  for (const auto& c : codes) {
    child e({interfaced::test::interfaced_binary().string(), "explain", c, "-c", (dir.path() / "interfaced.json").string()},
            dir.path() / "explain.out", dir.path() / "explain.err");
    INFO(c << ": " << e.err());
    CHECK(e.wait_for(10000ms) == std::optional<int>(0));
    CHECK(e.out().rfind(c + ": ", 0) == 0);
  }
}
