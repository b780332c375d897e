// qc.md 5.2.1 (SKIP), its re-evaluation row, over the wire (issue #14): a patient result resolved
// SKIP has its auto-rerun rule bypassed when it arrives; when a QC re-evaluation changes its
// qc_status (an exclusion of the control that rejected its run) the daemon runs the rules again
// for it, and the rule fires -- once: the undo that re-evaluates again requests nothing more, nor
// does a result whose rule already fired at first. Undoing the SKIP of a result runs its rules.
// The real daemon, the backend simulator (its waiting list gives the lab reports), the qc CLI.
#include <catch2/catch.hpp>

#include <map>

#include "e2e_support.hpp"
#include "orders_support.hpp"
#include "qc_support.hpp"

using namespace interfaced::e2e;
using namespace std::chrono_literals;

TEST_CASE("qc rules re-run e2e: a SKIP result's bypassed rule fires once when a re-evaluation changes its status",
          "[qc][e2e]") {
  scratch_dir dir;
  backend_proc backend(dir.path(), chem_glu_waiting_list(dir.path(), {"S-2", "S-3", "S-4"}));
  const std::uint16_t port = free_port(), health = free_port();
  json cfg = qc_daemon_config(
      dir.path(), port, health, backend.port(),
      {{"controls", json::array({{{"sample_id", "QC-L1*"}, {"material", "Lyphochek"}, {"lot", "L1"}, {"level", "1"}}})},
       {"limits", json::array({{{"parameter", "GLU"}, {"level", "1"}, {"mean", 5.0}, {"sd", 0.2}}})},
       {"resolution_codes", json::array({{{"code", "BAD_VIAL"}, {"excludes_from_westgard", true}},
                                         {{"code", "SKIP"}, {"skip", true}}})}});
  with_rules(cfg, dir.path(), R"({"rules": [{"id": "glu-high", "parameters": ["GLU"], "condition": "value > 5.3"}]})");
  auto daemon = run_daemon(dir.path(), cfg, health);
  const fs::path log = dir.path() / "logs" / "chem.log";
  INFO("chem log:\n" << file_text(log));
  REQUIRE(wait_log(log, "waiting list refreshed"));

  // S-2 and S-4 resolved SKIP before they arrive (qc.md 5.2.1: their first evaluation bypasses the rules).
  for (const char* id : {"patient:chem|S-2|GLU", "patient:chem|S-4|GLU"}) {
    auto r = qc_cli(dir.path(), {"resolve", id, "--code", "SKIP", "--by", "ana", "--reason", "haemolysed, judged by hand"});
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
  }
  play(dir.path(), "c1", port, glu("QC-L1", "20261206080000", "5.0"));  // accept
  play(dir.path(), "c2", port, glu("QC-L1", "20261206100000", "5.9"));  // 1-3s reject: S-2, S-3 rejected
  play(dir.path(), "p2", port, glu("S-2", "20261206103000", "5.5") + glu("S-3", "20261206104500", "5.6"));
  play(dir.path(), "c3", port, glu("QC-L1", "20261206120000", "5.1"));  // accept
  play(dir.path(), "p4", port, glu("S-4", "20261206123000", "5.7"));    // in the 12:00 run: accepted
  // At first only S-3's rule fired: S-2 and S-4 are SKIP.
  REQUIRE(backend.wait_posts("/interfacing/device-results", 3).size() >= 3);
  REQUIRE(backend.wait_posts("/sample-rerun/request", 1).size() == 1);
  std::this_thread::sleep_for(500ms);  // a wrongly requested rerun would have been posted by now
  CHECK(backend.posts_by("/sample-rerun/request", "lab_report_id") == std::map<std::string, int>{{"R-3", 1}});

  // The excluding resolution clears the 10:00 run's error: S-2 and S-3 change status, the rules
  // run again for both (a re-evaluation: SKIP bypasses nothing) and S-2's rule fires; S-3's had.
  const json pts = glu_points(health, false, [](const json& p) { return p.size() == 3; });
  REQUIRE(pts.size() == 3);
  REQUIRE(pts[1]["outcome"] == "reject");
  const std::string rejected = pts[1]["result_id"];
  auto r = qc_cli(dir.path(), {"resolve", rejected, "--code", "BAD_VIAL", "--by", "ana", "--reason", "vial left open"});
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("2 patient result(s) changed status") != std::string::npos);
  CHECK(r.out.find("rules re-run for 2 patient result(s)") != std::string::npos);
  CHECK(r.out.find("1 fired (auto-rerun glu-high for report R-2 GLU)") != std::string::npos);
  REQUIRE(backend.wait_posts("/sample-rerun/request", 2).size() == 2);
  const auto requests = backend.posts("/sample-rerun/request");
  const json second = json::parse(requests[1].value("body", "{}"));
  INFO(second.dump(1));
  CHECK(second["lab_report_id"] == "R-2");
  CHECK(second["requested_parameters"] == json::array({"GLU"}));
  // The device log says it with the re-evaluation's outcome.
  CHECK(wait_log(log, "rules re-run for 2 patient result(s)"));

  // The undo re-evaluates again (the error is back): the rules run again, nothing fires twice.
  const json hist = json::parse(*http_get(health, "/api/qc/history"));
  const std::int64_t bad_vial = hist["entries"].back()["id"];
  r = qc_cli(dir.path(), {"undo", std::to_string(bad_vial), "--by", "ben", "--reason", "vial was fine"});
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("rules re-run for 2 patient result(s)") != std::string::npos);
  CHECK(r.out.find(", 0 fired") != std::string::npos);

  // Undoing S-4's SKIP (its run never changed) runs its rules: its request, once.
  std::int64_t skip_s4 = 0;
  const json entries = json::parse(*http_get(health, "/api/qc/history"))["entries"];
  for (const auto& e : entries)
    if (e["kind"] == "resolution" && e["result_id"] == "patient:chem|S-4|GLU") skip_s4 = e["id"];
  REQUIRE(skip_s4 != 0);
  r = qc_cli(dir.path(), {"undo", std::to_string(skip_s4), "--by", "ben", "--reason", "judged again"});
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("rules re-run for 1 patient result(s)") != std::string::npos);
  REQUIRE(backend.wait_posts("/sample-rerun/request", 3).size() == 3);
  REQUIRE(wait_all_delivered(dir.path() / "outbox.sqlite"));
  CHECK(backend.posts_by("/sample-rerun/request", "lab_report_id") == std::map<std::string, int>{{"R-2", 1}, {"R-3", 1}, {"R-4", 1}});

  daemon->signal(SIGTERM);
  CHECK(daemon->wait_for(10000ms) == std::optional<int>(0));
}
