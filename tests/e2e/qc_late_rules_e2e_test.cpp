// qc.md 5.2.1 (the re-evaluation row) for a late control result, over the wire (issue #14): a
// control that arrives after runs already evaluated (its observed_at is before them) changes the
// qc_status of the patient results it now judges, and the daemon runs the rules again for them in
// the batch's transaction -- once per sample and rule, as an exclusion or a limit change does.
// The real daemon, the backend simulator (its waiting list gives the lab reports).
#include <catch2/catch.hpp>

#include <map>

#include "e2e_support.hpp"
#include "orders_support.hpp"
#include "qc_support.hpp"

using namespace interfaced::e2e;
using namespace std::chrono_literals;

TEST_CASE("qc late control e2e: the rules run again for the earlier patient results whose qc_status it changed",
          "[qc][e2e]") {
  scratch_dir dir;
  backend_proc backend(dir.path(), chem_glu_waiting_list(dir.path(), {"S-2", "S-4"}));
  const std::uint16_t port = free_port(), health = free_port();
  json cfg = qc_daemon_config(dir.path(), port, health, backend.port(), glu_l1_qc_config());
  // A lab's rule for results of a run whose QC failed: rerun them.
  with_rules(cfg, dir.path(),
             R"({"rules": [{"id": "qc-rejected", "parameters": ["GLU"], "condition": "qc_status == \"rejected\""}]})");
  auto daemon = run_daemon(dir.path(), cfg, health);
  const fs::path log = dir.path() / "logs" / "chem.log";
  INFO("chem log:\n" << file_text(log));
  REQUIRE(wait_log(log, "waiting list refreshed"));

  play(dir.path(), "c1", port, glu("QC-L1", "20261206080000", "5.0"));  // accept
  play(dir.path(), "p2", port, glu("S-2", "20261206103000", "5.5"));    // in the 08:00 run: accepted
  play(dir.path(), "c3", port, glu("QC-L1", "20261206120000", "5.1"));  // accept
  play(dir.path(), "p4", port, glu("S-4", "20261206123000", "5.6"));    // in the 12:00 run: accepted
  REQUIRE(backend.wait_posts("/interfacing/device-results", 2).size() >= 2);
  std::this_thread::sleep_for(500ms);  // a wrongly requested rerun would have been posted by now
  REQUIRE(backend.posts("/sample-rerun/request").empty());

  // The analyser sends the 10:00 control it buffered: 1-3s (z 4.5). S-2 (10:30) now belongs to its
  // run and is rejected; S-4 (the 12:00 run) is not. The rule fires for S-2, for S-2 only.
  play(dir.path(), "late", port, glu("QC-L1", "20261206100000", "5.9"));
  REQUIRE(backend.wait_posts("/sample-rerun/request", 1).size() == 1);
  const json request = json::parse(backend.posts("/sample-rerun/request")[0].value("body", "{}"));
  INFO(request.dump(1));
  CHECK(request["lab_report_id"] == "R-2");
  CHECK(request["requested_parameters"] == json::array({"GLU"}));
  CHECK(wait_log(log, "late control result changed the QC status of 1 earlier patient result: rules re-run for 1 "
                      "patient result(s)"));

  // Another late control of that run keeps S-2 rejected: its status does not change, nothing more
  // is requested (once per sample and rule).
  play(dir.path(), "late-again", port, glu("QC-L1", "20261206100500", "5.95"));
  REQUIRE(wait_all_delivered(dir.path() / "outbox.sqlite"));
  std::this_thread::sleep_for(500ms);
  CHECK(backend.posts_by("/sample-rerun/request", "lab_report_id") == std::map<std::string, int>{{"R-2", 1}});

  daemon->signal(SIGTERM);
  CHECK(daemon->wait_for(10000ms) == std::optional<int>(0));
}
