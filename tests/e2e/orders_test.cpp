// End to end: orders back to the analyser and reruns (rerun.md, "Manual reruns and the waiting
// list", "Auto-rerun"). The real daemon polls the real backend simulator (`interfaced
// backend-sim`) for the waiting list and parameter configuration; the analyser side is written
// here on a raw loopback socket (E1381 by hand: ENQ, frames, EOT) so the test records the exact
// bytes the daemon sends back to a host query.

#include <catch2/catch.hpp>

#include <iostream>

#include "orders_support.hpp"

using namespace interfaced::e2e;

namespace {

std::string header() { return "H|\\^&|||SIM-ORD^1.0|||||||P|LIS2-A2|20260101120000\r"; }

std::string query_message(const std::string& range, const std::string& status = "O") {
  return header() + "Q|1|" + range + "||^^^ALL||||||||" + status + "\rL|1|N\r";
}

std::string result_message(const std::string& sample, const std::string& code, const std::string& value,
                           const std::string& at) {
  return header() + "P|1\rO|1|" + sample + "||^^^" + code + "|R\rR|1|^^^" + code + "|" + value + "|||N||F||||" + at +
         "\rL|1|N\r";
}

void write_data(const fs::path& file, const json& waiting) {
  const json params = json::array(
      {{{"machine_name", "GLU"}, {"manual_rerun", true}, {"auto_rerun_allowed", true},
        {"auto_rerun_parameter_condition", "value > 20"}, {"unit", "mmol/L"}},
       // Broken on purpose: the daemon must say so, naming the parameter.
       {{"machine_name", "WBC"}, {"manual_rerun", true}, {"auto_rerun_allowed", true},
        {"auto_rerun_parameter_condition", "value >"}, {"unit", "10^9/L"}}});
  write_backend_data(file, {{"waiting_list", waiting}, {"parameters", params}});
}

class order_daemon {
 public:
  order_daemon(const fs::path& dir, std::uint16_t analyser_port, std::uint16_t hl7_port, std::uint16_t backend_port)
      : dir_(dir), health_(free_port()) {
    cfg_ = daemon_config(dir_,
                         json::array({tcp_server_device("ana1", "astm", analyser_port),
                                      tcp_server_device("ana2", "hl7", hl7_port)}),
                         health_);
    cfg_["backend"] = {{"base_url", "http://127.0.0.1:" + std::to_string(backend_port)}, {"waiting_list_poll_s", 1}};
    cfg_["outbox"]["history_days"] = 7;
  }
  void start() {
    ++runs_;
    proc_ = run_daemon(dir_, cfg_, health_, "daemon" + std::to_string(runs_));
  }
  void stop() {
    proc_->signal(SIGTERM);
    const auto st = proc_->wait_for(10000ms);
    INFO(proc_->err());
    REQUIRE(st.has_value());
    CHECK(*st == 0);
  }
  [[nodiscard]] std::string log() const { return proc_->err() + proc_->out(); }
  [[nodiscard]] std::string device_log() const { return file_text(dir_ / "logs" / "ana1.log"); }
  bool wait_log(const std::string& text, ms limit = 10000ms) const {
    return wait_text([this] { return log(); }, text, 1, limit);
  }
  // Waits until the device log holds `text` `count` times.
  bool wait_device_log(const std::string& text, std::size_t count = 1, ms limit = 10000ms) const {
    return wait_text([this] { return device_log(); }, text, count, limit);
  }

 private:
  fs::path dir_;
  std::uint16_t health_;
  json cfg_;
  int runs_ = 0;
  std::unique_ptr<child> proc_;
};

}  // namespace

TEST_CASE("host queries are answered from the waiting list, reruns and auto-reruns reach the backend") {
  scratch_dir dir;
  const fs::path data = dir.path() / "backend-data.json";
  write_data(data, json::array({entry("S-RR-1", "R-100", 1, {"HGB", "PLT", "WBC"}, {"HGB", "PLT"}),
                                entry("S-NEW-2", "R-150", 0, {"GLU", "NA"}, {}),
                                entry("S-AR-1", "R-200", 0, {"GLU"}, {})}));
  backend_proc backend(dir.path(), data);
  const std::uint16_t analyser_port = free_port();
  const std::uint16_t hl7_port = free_port();
  order_daemon d(dir.path(), analyser_port, hl7_port, backend.port());
  d.start();
  // First poll at start: the rerun is recorded and its re-test order queued (activity 981).
  REQUIRE(d.wait_device_log("re-test order queued: sample S-RR-1 report R-100 rerun 1 parameters [HGB,PLT]"));
  CHECK(d.device_log().find("activity=981") != std::string::npos);
  // A condition that does not parse is an error naming its parameter, not a silent false.
  CHECK(d.wait_log("auto-rerun condition of parameter WBC does not parse"));

  astm_analyser ana(analyser_port);
  REQUIRE(ana.ok());

  SECTION("queries") {
    // The rerun: exactly the two requested tests, as an ASTM order (H P O L), within 2 s.
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(ana.send_message(query_message("^S-RR-1")));
    const auto order = ana.receive_message(2000ms);
    const auto took = std::chrono::duration_cast<ms>(std::chrono::steady_clock::now() - t0);
    INFO("received bytes: " << ana.raw() << "\ndevice log:\n" << d.device_log());
    REQUIRE(order.has_value());
    std::cout << "  (host query answered in " << took.count() << " ms)\n";
    CHECK(took < 2000ms);
    CHECK(ana.raw().front() == enq);
    const auto recs = records(*order);
    REQUIRE(recs.size() == 4);
    CHECK(recs[0].starts_with("H|\\^&|"));
    CHECK(recs[1].starts_with("P|1|PAT-S-RR-1"));
    CHECK(recs[2].starts_with("O|1|S-RR-1||^^^HGB\\^^^PLT|R||||||A|"));
    CHECK(recs[3] == "L|1|N");

    // Unknown sample: no information.
    REQUIRE(ana.send_message(query_message("^NOBODY")));
    const auto none = ana.receive_message(2000ms);
    REQUIRE(none.has_value());
    CHECK(record_of(*none, 'L') == "L|1|I");
    CHECK(record_of(*none, 'O').empty());

    // Several ids: one P + O per sample with something pending; a first run orders its parameters.
    REQUIRE(ana.send_message(query_message("^S-RR-1\\^S-NEW-2")));
    const auto two = ana.receive_message(2000ms);
    REQUIRE(two.has_value());
    std::vector<std::string> orders;
    for (const auto& r : records(*two))
      if (r[0] == 'O') orders.push_back(r);
    REQUIRE(orders.size() == 2);
    CHECK(orders[0].starts_with("O|1|S-RR-1||^^^HGB\\^^^PLT|"));
    CHECK(orders[1].starts_with("O|1|S-NEW-2||^^^GLU\\^^^NA|R||||||N|"));

    // ALL: every sample with something pending.
    REQUIRE(ana.send_message(query_message("^ALL")));
    const auto all = ana.receive_message(2000ms);
    REQUIRE(all.has_value());
    CHECK(all->find("O|1|S-AR-1||^^^GLU|") != std::string::npos);

    // Cancel (Q.13 A): nothing is sent back.
    REQUIRE(ana.send_message(query_message("^S-RR-1", "A")));
    CHECK_FALSE(ana.receive_message(1000ms).has_value());
  }

  SECTION("with the backend down, a restarted daemon answers from the last known waiting list") {
    backend.stop();
    d.stop();
    d.start();
    REQUIRE(d.wait_device_log("waiting list: backend unavailable"));
    astm_analyser later(analyser_port);
    REQUIRE(later.ok());
    REQUIRE(later.send_message(query_message("^S-RR-1")));
    const auto order = later.receive_message(2000ms);
    INFO(d.device_log());
    REQUIRE(order.has_value());
    CHECK(record_of(*order, 'O').starts_with("O|1|S-RR-1||^^^HGB\\^^^PLT|R||||||A|"));
  }

  SECTION("HL7 QBP^Q11 gets RSP^K11 with QAK OK when something is pending, NF otherwise") {
    // The same waiting list serves every device (the simulator's top-level list).
    auto qbp = [](const std::string& id, const std::string& sample) {
      return "\x0bMSH|^~\\&|BA400|Biosystems|Host|Host provider|20230513092458||QBP^Q11^QBP_Q11|" + id +
             "|P|2.5.1|||ER|AL||UNICODE UTF-8|||LAB-27^IHE\rQPD|WOS^Work Order Step^IHE_LABTF|" + id + "Q|" + sample +
             "^MRCP|I\rRCP|I||R\r\x1c\r";
    };
    // The HL7 device polls its own waiting list: wait for its first refresh (a loaded machine
    // can be slower than the analyser's query).
    (void)wait_log(dir.path() / "logs" / "ana2.log", "waiting list refreshed");
    tcp_conn hl7(hl7_port);
    REQUIRE(hl7.ok());
    auto exchange = [&](const std::string& msg, std::size_t frames) {
      REQUIRE(hl7.send(msg));
      std::string reply;
      const auto until = std::chrono::steady_clock::now() + 2s;
      // RSP^K11, and OML^O33 when something is pending: wait for `frames` MLLP ends.
      while (static_cast<std::size_t>(std::count(reply.begin(), reply.end(), '\x1c')) < frames) {
        const std::string more = hl7.read_some(until);
        if (more.empty()) break;
        reply += more;
      }
      return reply;
    };
    const std::string ok = exchange(qbp("Q-1", "S-RR-1"), 2);
    INFO(ok << "\n" << d.device_log());
    CHECK(ok.find("MSH|^~\\&|") != std::string::npos);
    CHECK(ok.find("RSP^K11") != std::string::npos);
    CHECK(ok.find("MSA|AA|Q-1") != std::string::npos);
    CHECK(ok.find("QAK|Q-1Q|OK|") != std::string::npos);
    // The work order: exactly the two rerun tests for the sample.
    const auto oml = ok.find("OML^O33");
    REQUIRE(oml != std::string::npos);
    const std::string order = ok.substr(oml);
    CHECK(order.find("SPM|1|S-RR-1") != std::string::npos);
    CHECK(order.find("|HGB") != std::string::npos);
    CHECK(order.find("|PLT") != std::string::npos);
    CHECK(order.find("WBC") == std::string::npos);
    const std::string nf = exchange(qbp("Q-2", "NOBODY"), 1);
    INFO(nf);
    CHECK(nf.find("QAK|Q-2Q|NF|") != std::string::npos);
  }

  SECTION("rerun values, a restart mid-rerun, an instrument-triggered rerun and an auto-rerun") {
    REQUIRE(ana.send_message(result_message("S-RR-1", "HGB", "13.5", "20260101121000")));
    auto values = backend.wait_posts("/sample-rerun/values", 1);
    INFO("device log:\n" << d.device_log() << "\nbackend:\n" << backend.requests().dump(1));
    REQUIRE(values.size() == 1);

    // Restart in the middle of the rerun: its partial fulfilment (HGB) is kept in the outbox file's state tables.
    d.stop();
    d.start();
    astm_analyser again(analyser_port);
    REQUIRE(again.ok());
    REQUIRE(again.send_message(result_message("S-RR-1", "PLT", "250", "20260101121100")));
    values = backend.wait_posts("/sample-rerun/values", 2);
    REQUIRE(values.size() == 2);

    // Fulfilled: an analyser asking again gets no stale rerun.
    REQUIRE(again.send_message(query_message("^S-RR-1")));
    const auto after = again.receive_message(2000ms);
    REQUIRE(after.has_value());
    CHECK(after->find("HGB") == std::string::npos);
    CHECK(after->find("PLT") == std::string::npos);

    // A third HGB nobody asked for: instrument-triggered (-1). The received rerun has left the
    // waiting list, but its report is still known: rerun.md step 4 routes a -1 to the rerun-values
    // endpoint with machine_triggered_rerun, under that report.
    REQUIRE(again.send_message(result_message("S-RR-1", "HGB", "13.9", "20260101121500")));
    values = backend.wait_posts("/sample-rerun/values", 3);
    REQUIRE(values.size() == 3);
    CHECK(backend.posts("/interfacing/device-results").empty());
    const json v1 = json::parse(values[0]["body"].get<std::string>());
    const json v2 = json::parse(values[1]["body"].get<std::string>());
    const json third = json::parse(values[2]["body"].get<std::string>());
    INFO(v1.dump() << "\n" << v2.dump() << "\n" << third.dump());
    CHECK(third["lab_report_id"] == "R-100");
    CHECK(third["machine_triggered_rerun"] == true);
    CHECK(third["rerun_number"] == -1);
    CHECK(third["fulfilled_parameters"] == json::array({"HGB"}));
    const json v3 = third["values"].at(0);
    CHECK(v3["parameter"] == "HGB");
    CHECK(v3["is_rerun"] == true);
    CHECK(v1["lab_report_id"] == "R-100");
    CHECK(v1["rerun_number"] == 1);
    CHECK(v1["fulfilled_parameters"] == json::array({"HGB"}));
    CHECK(v1["requested_parameters"] == json::array({"HGB", "PLT"}));
    CHECK(v1["activity"] == 979);
    CHECK(v2["rerun_number"] == 1);
    CHECK(v2["fulfilled_parameters"] == json::array({"HGB", "PLT"}));
    CHECK(v3["rerun_number"] == -1);
    CHECK(v3["machine_triggered_rerun"] == true);

    // Auto-rerun: `value > 20` on GLU fires on the first result ...
    REQUIRE(again.send_message(result_message("S-AR-1", "GLU", "25", "20260101122000")));
    auto requests = backend.wait_posts("/sample-rerun/request", 1);
    REQUIRE(requests.size() == 1);
    CHECK(requests[0]["internal"] == true);
    const json req = json::parse(requests[0]["body"].get<std::string>());
    CHECK(req["lab_report_id"] == "R-200");
    CHECK(req["requested_parameters"] == json::array({"GLU"}));
    bool header_seen = false;
    for (const auto& h : requests[0]["headers"].items()) {
      std::string name = h.key();
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (name == "x-is-internal-request") header_seen = h.value() == "True";
    }
    CHECK(header_seen);

    // ... the backend turns it into rerun 1 of GLU; the rerun's result (still > 20) does not fire.
    write_data(data, json::array({entry("S-AR-1", "R-200", 1, {"GLU"}, {"GLU"})}));
    REQUIRE(d.wait_device_log("re-test order queued: sample S-AR-1 report R-200 rerun 1 parameters [GLU]"));
    REQUIRE(again.send_message(result_message("S-AR-1", "GLU", "26", "20260101123000")));
    values = backend.wait_posts("/sample-rerun/values", 4);
    REQUIRE(values.size() == 4);
    const json v4 = json::parse(values[3]["body"].get<std::string>());
    CHECK(v4["rerun_number"] == 1);
    CHECK(v4["lab_report_id"] == "R-200");
    std::this_thread::sleep_for(500ms);  // a wrongly fired second request would be delivered by now
    CHECK(backend.posts("/sample-rerun/request").size() == 1);
  }
  d.stop();
}
