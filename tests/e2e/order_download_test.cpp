// End to end: order download (worklist push, issue #6). The real daemon polls the real backend
// simulator for each device's waiting list and sends the pending orders to analysers whose
// profile (or configuration) says they take host-initiated orders, without being asked: an ASTM
// analyser (profile immucor-galileo-echo) and an HL7 one (configuration "orders": {"download":
// true}), both played here on raw loopback sockets that record the exact bytes the daemon sends.

#include <catch2/catch.hpp>

#include <map>

#include "orders_support.hpp"
#include "parsers/hl7/ack.hpp"
#include "parsers/hl7/message.hpp"
#include "parsers/hl7/mllp.hpp"

using namespace interfaced::e2e;

namespace {

// Per device waiting lists (backend_sim.hpp: {"waiting_list": {"D": [...]}}), written atomically.
void write_data(const fs::path& file, const json& astm_list, const json& hl7_list) {
  write_backend_data(file, {{"waiting_list", {{"echo", astm_list}, {"ba400", hl7_list}}}, {"parameters", json::array()}});
}

// The MLLP messages read from `c` until `count` arrived or `limit` passed.
std::vector<std::string> read_mllp(tcp_conn& c, interfaced::hl7::mllp_decoder& decoder, std::string& pending,
                                   std::size_t count, ms limit) {
  std::vector<std::string> out;
  const auto until = std::chrono::steady_clock::now() + limit;
  while (out.size() < count) {
    std::string_view chunk(pending);
    while (!chunk.empty()) {
      const auto r = decoder.put(chunk);
      chunk.remove_prefix(r.consumed);
      if (r.event.kind == interfaced::hl7::mllp_event_kind::message) out.emplace_back(r.event.message);
      if (r.event.kind == interfaced::hl7::mllp_event_kind::none && r.consumed == 0) break;
    }
    pending.clear();
    if (out.size() >= count) break;
    pending = c.read_some(until);
    if (pending.empty()) break;
  }
  return out;
}

std::string msh_field(const std::string& message, std::size_t n) {
  interfaced::hl7::message m;
  if (interfaced::hl7::parse_message(message, m)) return {};
  return std::string(m.msh().field(n).raw());
}

}  // namespace

TEST_CASE("order download: analysers whose profile or configuration says so get the orders unasked") {
  scratch_dir dir;
  const fs::path data = dir.path() / "backend-data.json";
  const json astm_list = json::array({entry("S-DL-1", "R-1", 0, {"GLU", "NA"}, {}),
                                      entry("S-RR-1", "R-2", 1, {"HGB", "PLT", "WBC"}, {"HGB", "PLT"})});
  write_data(data, astm_list, json::array({entry("S-HL-1", "R-3", 0, {"GLU", "K"}, {})}));
  backend_proc backend(dir.path(), data);
  const std::uint16_t astm_port = free_port();
  const std::uint16_t hl7_port = free_port();
  const std::uint16_t plain_port = free_port();
  const std::uint16_t health = free_port();
  json echo = tcp_server_device("echo", "astm", astm_port);
  echo["profile"] = "immucor-galileo-echo";  // its profile: "orders": {"download": true}
  json ba400 = tcp_server_device("ba400", "hl7", hl7_port);
  ba400["profile"] = "biosystems-ba400";  // its profile says nothing: the configuration turns it on
  ba400["orders"] = {{"download", true}};
  json xn = tcp_server_device("xn", "astm", plain_port);
  xn["profile"] = "sysmex-xn";  // no order download: queries only
  json cfg = daemon_config(dir.path(), json::array({echo, ba400, xn}), health);
  cfg["backend"] = {{"base_url", "http://127.0.0.1:" + std::to_string(backend.port())}, {"waiting_list_poll_s", 1}};
  const auto daemon = run_daemon(dir.path(), cfg, health);
  const fs::path echo_log = dir.path() / "logs" / "echo.log";
  const fs::path ba400_log = dir.path() / "logs" / "ba400.log";
  INFO("echo log:\n" << file_text(echo_log) << "\nba400 log:\n" << file_text(ba400_log) << "\ndaemon:\n" << daemon->err());
  CHECK(wait_log(echo_log, "order download on (profile immucor-galileo-echo)"));
  CHECK(wait_log(ba400_log, "order download on (configuration)"));

  SECTION("ASTM: H P O L per sample without a query, sent once, a cancelled rerun cancelled with O.12 C") {
    astm_analyser ana(astm_port);
    REQUIRE(ana.ok());
    // The analyser only listens: the daemon bids (ENQ) and sends one order message per sample.
    std::map<std::string, std::string> by_sample;
    for (int i = 0; i < 2; ++i) {
      const auto msg = ana.receive_message(5000ms);
      REQUIRE(msg.has_value());
      const std::string o = record_of(*msg, 'O');
      REQUIRE(o.size() > 4);
      by_sample[o.substr(4, o.find('|', 4) - 4)] = *msg;
    }
    REQUIRE(by_sample.count("S-DL-1") == 1);
    REQUIRE(by_sample.count("S-RR-1") == 1);
    const auto first = records(by_sample["S-DL-1"]);
    REQUIRE(first.size() == 4);
    CHECK(first[0].starts_with("H|\\^&|||interfaced|||||||P|LIS2-A2|"));
    CHECK(first[1] == "P|1|PAT-S-DL-1|||DOE^JANE||19800101|F");
    CHECK(first[2] == "O|1|S-DL-1||^^^GLU\\^^^NA|R||||||N||||||||||||||O");  // N: a new specimen
    CHECK(first[3] == "L|1|N");
    // The rerun: exactly its requested tests, added to the known specimen (A).
    CHECK(record_of(by_sample["S-RR-1"], 'O') == "O|1|S-RR-1||^^^HGB\\^^^PLT|R||||||A||||||||||||||O");
    REQUIRE(wait_log(echo_log, "orders sent: sample S-RR-1 tests [HGB,PLT] (rerun 1)"));
    CHECK(wait_log(echo_log, "orders sent: sample S-DL-1 tests [GLU,NA]"));

    // Refreshes every second: nothing is sent again.
    CHECK_FALSE(ana.receive_message(2500ms).has_value());

    // The analyser does the first run; the report then leaves the list: fulfilled, no cancel.
    REQUIRE(ana.send_message("H|\\^&|||Echo\rP|1\rO|1|S-DL-1||^^^GLU\\^^^NA|R\rR|1|^^^GLU|5.4|mmol/L||N||F||||"
                             "20260101121000\rR|2|^^^NA|140|mmol/L||N||F||||20260101121000\rL|1|N\r"));
    // The backend cancels the rerun: the report leaves the waiting list too.
    write_data(data, json::array(), json::array({entry("S-HL-1", "R-3", 0, {"GLU", "K"}, {})}));
    const auto cancel = ana.receive_message(5000ms);
    REQUIRE(cancel.has_value());
    CHECK(record_of(*cancel, 'O') == "O|1|S-RR-1||^^^HGB\\^^^PLT|R||||||C||||||||||||||O");
    REQUIRE(wait_log(echo_log, "order cancel sent: sample S-RR-1 tests [HGB,PLT] (rerun 1)"));
    CHECK_FALSE(ana.receive_message(2500ms).has_value());  // nothing for the fulfilled S-DL-1
    CHECK(occurrences(file_text(echo_log), "order cancel sent: sample S-DL-1") == 0);
    CHECK(occurrences(file_text(echo_log), "orders sent: sample S-RR-1") == 1);
  }

  SECTION("HL7: OML^O33 with the instrument's codes and a unique MSH-10, done on the analyser's AA") {
    tcp_conn hl7(hl7_port);
    REQUIRE(hl7.ok());
    interfaced::hl7::mllp_decoder decoder;
    std::string pending;
    const auto got = read_mllp(hl7, decoder, pending, 1, 5000ms);
    REQUIRE(got.size() == 1);
    const std::string& oml = got[0];
    CHECK(msh_field(oml, 9) == "OML^O33^OML_O33");
    CHECK(msh_field(oml, 21) == "LAB-28^IHE");
    const std::string id = msh_field(oml, 10);
    CHECK(!id.empty());
    CHECK(oml.find("\rPID|||PAT-S-HL-1||DOE^JANE\r") != std::string::npos);
    CHECK(oml.find("\rSPM|1|S-HL-1|") != std::string::npos);
    CHECK(oml.find("\rORC|NW|S-HL-1.GLU\r") != std::string::npos);
    CHECK(oml.find("\rOBR|1|S-HL-1.GLU||GLU\r") != std::string::npos);
    CHECK(oml.find("\rOBR|2|S-HL-1.K||K\r") != std::string::npos);
    // Not acknowledged yet: the daemon does not count it as sent.
    CHECK(file_text(ba400_log).find("orders sent: sample S-HL-1") == std::string::npos);
    const std::string orl = "MSH|^~\\&|BA400|Biosystems|interfaced||20260101120001||ORL^O34^ORL_O42|A-1|P|2.5.1\r"
                            "MSA|AA|" + id + "\r";
    REQUIRE(hl7.send(interfaced::hl7::mllp_wrap(orl)));
    REQUIRE(wait_log(ba400_log, "orders sent: sample S-HL-1 tests [GLU,K]"));
    // Our reply is not acknowledged, and the order is not sent again at the next refreshes.
    CHECK(read_mllp(hl7, decoder, pending, 1, 2500ms).empty());
  }

  // A device without order download is never sent anything unasked.
  const std::string xn_log = file_text(dir.path() / "logs" / "xn.log");
  CHECK(xn_log.find("order download") == std::string::npos);
  CHECK(xn_log.find("orders") == std::string::npos);
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_for(10000ms) == std::optional<int>(0));
}
