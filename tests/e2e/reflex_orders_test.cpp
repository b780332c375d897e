// Issue #14 point 6 over the wire: a reflex rule's added tests reach the analyser the way rerun
// orders do. The real daemon with a rules file (TSH > 4.5 -> add FT4), the real backend simulator,
// ASTM analysers played on raw loopback sockets (orders_support.hpp): a TSH of 5.0 -> the next host
// query for that sample is answered with FT4 added to the specimen (O.12 A), an analyser that takes
// order download is sent FT4 unasked, the backend gets one /interfacing/reflex post per sample, the
// pending FT4 survives a restart, and once FT4 arrives nothing is ordered any more.

#include <catch2/catch.hpp>

#include "orders_support.hpp"

using namespace interfaced::e2e;

namespace {

std::string header() { return "H|\\^&|||SIM-RFX^1.0|||||||P|LIS2-A2|20261206120000\r"; }

std::string query_message(const std::string& sample) {
  return header() + "Q|1|^" + sample + "||^^^ALL||||||||O\rL|1|N\r";
}

std::string result_message(const std::string& sample, const std::string& code, const std::string& value,
                           const std::string& at) {
  return header() + "P|1\rO|1|" + sample + "||^^^" + code + "|R\rR|1|^^^" + code + "|" + value + "|||N||F||||" + at +
         "\rL|1|N\r";
}

}  // namespace

TEST_CASE("reflex e2e: TSH 5.0 -> FT4 in the next host query answer and in the order download with one reflex post",
          "[reflex][e2e]") {
  scratch_dir dir;
  const fs::path data = dir.path() / "backend-data.json";
  write_backend_data(data, {{"waiting_list",
                             {{"imm", json::array({entry("S-TSH-1", "R-1", 0, {"TSH"}, {})})},
                              {"dl", json::array({entry("S-TSH-2", "R-2", 0, {"TSH"}, {})})}}},
                            {"parameters", json::array()}});
  backend_proc backend(dir.path(), data);
  std::ofstream(dir.path() / "rules.json")
      << R"({"rules": [{"id": "tsh-high", "parameters": ["TSH"], "condition": "value > 4.5", "action": "reflex", "add_tests": ["FT4"]}]})";
  const std::uint16_t imm_port = free_port(), dl_port = free_port(), health = free_port();
  json dl = tcp_server_device("dl", "astm", dl_port);
  dl["orders"] = {{"download", true}};
  json cfg = daemon_config(dir.path(), json::array({tcp_server_device("imm", "astm", imm_port), dl}), health);
  cfg["backend"] = {{"base_url", "http://127.0.0.1:" + std::to_string(backend.port())}, {"waiting_list_poll_s", 1}};
  cfg["rules_file"] = (dir.path() / "rules.json").string();
  auto daemon = run_daemon(dir.path(), cfg, health, "daemon1");
  const fs::path imm_log = dir.path() / "logs" / "imm.log";
  const fs::path dl_log = dir.path() / "logs" / "dl.log";
  INFO("imm log:\n" << file_text(imm_log) << "\ndl log:\n" << file_text(dl_log));
  REQUIRE(wait_log(imm_log, "waiting list refreshed"));

  SECTION("host query") {
    astm_analyser ana(imm_port);
    REQUIRE(ana.ok());
    // Before: the first run's TSH, a new specimen.
    REQUIRE(ana.send_message(query_message("S-TSH-1")));
    auto order = ana.receive_message(2000ms);
    REQUIRE(order.has_value());
    CHECK(record_of(*order, 'O').starts_with("O|1|S-TSH-1||^^^TSH|R||||||N|"));

    REQUIRE(ana.send_message(result_message("S-TSH-1", "TSH", "5.0", "20261206121000")));
    auto posts = backend.wait_posts("/interfacing/reflex", 1);
    REQUIRE(posts.size() == 1);
    const json body = json::parse(posts[0].value("body", "{}"));
    CHECK(body["sample_id"] == "S-TSH-1");
    CHECK(body["lab_report_id"] == "R-1");
    CHECK(body["add_parameters"] == json::array({"FT4"}));

    // The next host query: FT4, added to the specimen the analyser already ran (A), with its patient.
    REQUIRE(ana.send_message(query_message("S-TSH-1")));
    order = ana.receive_message(2000ms);
    REQUIRE(order.has_value());
    CHECK(record_of(*order, 'P').starts_with("P|1|PAT-S-TSH-1"));
    CHECK(record_of(*order, 'O').starts_with("O|1|S-TSH-1||^^^FT4|R||||||A|"));
    CHECK(wait_log(imm_log, "order sent for S-TSH-1 reflex: FT4"));

    // Durable like rerun orders: after a restart the query is answered the same way.
    daemon->signal(SIGTERM);
    REQUIRE(daemon->wait_for(10000ms) == std::optional<int>(0));
    daemon = run_daemon(dir.path(), cfg, health, "daemon2");
    astm_analyser again(imm_port);
    REQUIRE(again.ok());
    REQUIRE(again.send_message(query_message("S-TSH-1")));
    order = again.receive_message(2000ms);
    REQUIRE(order.has_value());
    CHECK(record_of(*order, 'O').starts_with("O|1|S-TSH-1||^^^FT4|R||||||A|"));

    // FT4 arrives: nothing pending for the sample any more, and no second reflex post.
    REQUIRE(again.send_message(result_message("S-TSH-1", "FT4", "9.8", "20261206123000")));
    REQUIRE(backend.wait_posts("/interfacing/device-results", 2).size() >= 2);
    REQUIRE(again.send_message(query_message("S-TSH-1")));
    order = again.receive_message(2000ms);
    REQUIRE(order.has_value());
    CHECK(record_of(*order, 'O').empty());
    CHECK(record_of(*order, 'L') == "L|1|I");
    std::this_thread::sleep_for(500ms);  // a second post would have been delivered by now
    CHECK(backend.posts_by("/interfacing/reflex", "sample_id")["S-TSH-1"] == 1);
  }

  SECTION("order download") {
    astm_analyser ana(dl_port);
    REQUIRE(ana.ok());
    auto order = ana.receive_message(5000ms);
    REQUIRE(order.has_value());
    CHECK(record_of(*order, 'O') == "O|1|S-TSH-2||^^^TSH|R||||||N||||||||||||||O");
    REQUIRE(ana.send_message(result_message("S-TSH-2", "TSH", "5.0", "20261206121000")));
    // Sent unasked at the next refresh: FT4 added to the known specimen, once.
    order = ana.receive_message(5000ms);
    REQUIRE(order.has_value());
    CHECK(record_of(*order, 'O') == "O|1|S-TSH-2||^^^FT4|R||||||A||||||||||||||O");
    CHECK(wait_log(dl_log, "orders sent: sample S-TSH-2 tests [FT4]"));
    CHECK_FALSE(ana.receive_message(2500ms).has_value());
    REQUIRE(backend.wait_posts("/interfacing/reflex", 1).size() == 1);
    CHECK(backend.posts_by("/interfacing/reflex", "sample_id")["S-TSH-2"] == 1);
    // The TSH download is fulfilled, not cancelled.
    CHECK(occurrences(file_text(dl_log), "order cancel sent") == 0);
  }
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_for(10000ms) == std::optional<int>(0));
}

TEST_CASE("rules SKIP e2e: a patient result resolved SKIP with `interfaced qc resolve` bypasses the reflex rule",
          "[reflex][e2e][qc]") {
  scratch_dir dir;
  const fs::path data = dir.path() / "backend-data.json";
  write_backend_data(data, {{"waiting_list",
                             {{"imm", json::array({entry("S-SK-1", "R-1", 0, {"TSH"}, {}),
                                                   entry("S-SK-2", "R-2", 0, {"TSH"}, {})})}}},
                            {"parameters", json::array()}});
  backend_proc backend(dir.path(), data);
  std::ofstream(dir.path() / "rules.json")
      << R"({"rules": [{"id": "tsh-high", "parameters": ["TSH"], "condition": "value > 4.5", "action": "reflex", "add_tests": ["FT4"]}]})";
  const std::uint16_t imm_port = free_port(), health = free_port();
  json cfg = daemon_config(dir.path(), json::array({tcp_server_device("imm", "astm", imm_port)}), health);
  cfg["backend"] = {{"base_url", "http://127.0.0.1:" + std::to_string(backend.port())}, {"waiting_list_poll_s", 1}};
  cfg["rules_file"] = (dir.path() / "rules.json").string();
  with_admin_token(cfg, dir.path(), "s3cret");
  cfg["qc"] = {{"resolution_codes", json::array({{{"code", "BAD_VIAL"}, {"excludes_from_westgard", true}},
                                                 {{"code", "SKIP"}, {"skip", true}}})}};
  auto daemon = run_daemon(dir.path(), cfg, health);
  const fs::path imm_log = dir.path() / "logs" / "imm.log";
  INFO("imm log:\n" << file_text(imm_log) << "\ndaemon:\n" << daemon->err());
  REQUIRE(wait_log(imm_log, "waiting list refreshed"));

  auto qc_cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {interfaced::test::interfaced_binary().string(), "qc"});
    args.insert(args.end(), {"-c", (dir.path() / "interfaced.json").string()});
    child c(args, dir.path() / "cli.out", dir.path() / "cli.err");
    const auto st = c.wait_for(20000ms);
    REQUIRE(st.has_value());
    return std::make_tuple(*st, c.out(), c.err());
  };
  // Only a SKIP code means anything for a patient result.
  auto [refused, r_out, r_err] = qc_cli({"resolve", "patient:imm|S-SK-1|TSH", "--code", "BAD_VIAL", "--by", "ana", "--reason", "x"});
  CHECK(refused == 1);
  CHECK(r_err.find("not a SKIP code") != std::string::npos);
  auto [status, out, err] = qc_cli({"resolve", "patient:imm|S-SK-1|TSH", "--code", "SKIP", "--by", "ana", "--reason", "known thyroid patient"});
  INFO(out << err);
  REQUIRE(status == 0);

  astm_analyser ana(imm_port);
  REQUIRE(ana.ok());
  REQUIRE(ana.send_message(result_message("S-SK-1", "TSH", "5.0", "20261206121000")));
  REQUIRE(ana.send_message(result_message("S-SK-2", "TSH", "5.0", "20261206121100")));
  // S-SK-2 gets its reflex; S-SK-1, resolved SKIP, none (its result is still delivered).
  REQUIRE(backend.wait_posts("/interfacing/reflex", 1).size() == 1);
  REQUIRE(backend.wait_posts("/interfacing/device-results", 2).size() >= 2);
  std::this_thread::sleep_for(500ms);  // a post for S-SK-1 would be delivered by now
  CHECK(backend.posts_by("/interfacing/reflex", "sample_id")["S-SK-2"] == 1);
  CHECK(backend.posts_by("/interfacing/reflex", "sample_id")["S-SK-1"] == 0);
  REQUIRE(ana.send_message(query_message("S-SK-1")));
  const auto order = ana.receive_message(2000ms);
  REQUIRE(order.has_value());
  CHECK(record_of(*order, 'L') == "L|1|I");  // no FT4 for the analyser either
  const json history = json::parse(*http_get(health, "/api/qc/history"));
  REQUIRE(history["entries"].size() == 1);
  CHECK(history["entries"][0]["result_id"] == "patient:imm|S-SK-1|TSH");
  CHECK(history["entries"][0]["code"] == "SKIP");
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_for(10000ms) == std::optional<int>(0));
}
