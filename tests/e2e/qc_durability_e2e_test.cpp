// Issue #14 "all of it durable" over the wire, with the real daemon and backend simulator:
// a QC change is answered only once its transaction is on disk. An outbox that cannot commit
// (the read-only fault hook, INTERFACED_TEST_OUTBOX_WRITE_FAULT) makes `interfaced qc resolve`
// exit 75 with the outbox's error, and nothing changed: not the chart, not the history, not
// after a restart; the same resolution once the disk is back is applied and survives a restart.
// A run's patient results survive a restart (the outbox's qc_patients), and the correction says
// which were exported and when. A change of the backend's qc-limits re-evaluates the series.
#include <catch2/catch.hpp>

#include <map>

#include "e2e_support.hpp"
#include "orders_support.hpp"
#include "qc_support.hpp"
#include "sim_control.hpp"

using namespace interfaced::e2e;

TEST_CASE("qc durability e2e: a resolution the outbox cannot commit is refused and leaves nothing behind",
          "[qc][e2e]") {
  scratch_dir dir;
  write_backend_data(dir.path() / "backend.json", json::object());
  backend_proc backend(dir.path(), dir.path() / "backend.json");
  const std::uint16_t port = free_port(), health = free_port();
  json cfg = qc_daemon_config(dir.path(), port, health, backend.port(), glu_l1_qc_config());
  const fs::path fault = dir.path() / "outbox-readonly";
  auto daemon = run_daemon(dir.path(), cfg, health, "daemon", {"INTERFACED_TEST_OUTBOX_WRITE_FAULT=" + fault.string()});

  play(dir.path(), "c1", port, glu("QC-L1", "20261206080000", "5.0"));  // accept
  play(dir.path(), "p1", port, glu("S-1", "20261206083000", "5.4"));
  play(dir.path(), "c2", port, glu("QC-L1", "20261206100000", "5.9"));  // z 4.5: 1-3s reject
  play(dir.path(), "p2", port, glu("S-2", "20261206103000", "5.5"));
  REQUIRE(backend.wait_posts("/interfacing/qc-runs", 1).size() == 1);  // S-1 affected
  REQUIRE(backend.wait_posts("/interfacing/device-results", 2).size() == 2);
  json pts = glu_points(health, true, [](const json& p) { return p.size() == 2; });
  REQUIRE(pts.size() == 2);
  REQUIRE(pts[1]["outcome"] == "reject");
  const std::string rejected = pts[1]["result_id"];

  // The disk turns read-only: the resolution is refused with the outbox's reason, exit 75.
  { std::ofstream(fault) << "x"; }
  auto r = qc_cli(dir.path(), {"resolve", rejected, "--code", "BAD_VIAL", "--by", "ana", "--reason", "vial left open"});
  INFO(r.out << r.err);
  CHECK(r.status == 75);
  CHECK(r.err.find("not stored") != std::string::npos);
  CHECK(r.err.find("readonly") != std::string::npos);
  CHECK(r.out.empty());
  CHECK(wait_log(dir.path() / "logs" / "chem.log", "[QC-008]"));
  // Memory unchanged: the reject stands, no resolution, an empty history, no qc-runs post.
  pts = glu_points(health, true, [](const json& p) { return p.size() == 2; });
  REQUIRE(pts.size() == 2);
  CHECK(pts[1]["outcome"] == "reject");
  CHECK(pts[1]["resolution"].is_null());
  CHECK(json::parse(*http_get(health, "/api/qc/history"))["entries"].empty());
  std::this_thread::sleep_for(500ms);
  CHECK(backend.posts("/interfacing/qc-runs").size() == 1);

  // The disk is back: the same resolution is applied (audit id 1: the refused one left no gap).
  fs::remove(fault);
  r = qc_cli(dir.path(), {"resolve", rejected, "--code", "BAD_VIAL", "--by", "ana", "--reason", "vial left open"});
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("re-evaluated 1 run(s)") != std::string::npos);
  const auto runs = backend.wait_posts("/interfacing/qc-runs", 2);
  REQUIRE(runs.size() == 2);
  CHECK(json::parse(runs[1].value("body", ""))["patient_results"][0]["sample_id"] == "S-2");
  json hist = json::parse(*http_get(health, "/api/qc/history"));
  REQUIRE(hist["entries"].size() == 1);
  CHECK(hist["entries"][0]["id"] == 1);

  // SIGKILL right after the answer: the answer meant durable, the restart finds it.
  daemon->signal(SIGKILL);
  REQUIRE(daemon->wait_for(10000ms).has_value());
  auto again = run_daemon(dir.path(), cfg, health, "daemon2");
  pts = glu_points(health, true, [](const json& p) { return p.size() == 2 && !p[1]["resolution"].is_null(); });
  REQUIRE(pts.size() == 2);
  CHECK(pts[1]["resolution"]["code"] == "BAD_VIAL");
  hist = json::parse(*http_get(health, "/api/qc/history"));
  CHECK(hist["entries"].size() == 1);
  again->signal(SIGTERM);
  CHECK(again->wait_for(10000ms) == std::optional<int>(0));
}

TEST_CASE("qc durability e2e: a run's patient results survive a restart and the correction says when they were exported",
          "[qc][e2e]") {
  scratch_dir dir;
  write_backend_data(dir.path() / "backend.json", json::object());
  backend_proc backend(dir.path(), dir.path() / "backend.json");
  const std::uint16_t port = free_port(), health = free_port();
  json cfg = qc_daemon_config(dir.path(), port, health, backend.port(), glu_l1_qc_config());
  auto daemon = run_daemon(dir.path(), cfg, health);

  play(dir.path(), "c1", port, glu("QC-L1", "20261206080000", "5.0"));  // accept
  play(dir.path(), "c2", port, glu("QC-L1", "20261206100000", "5.9"));  // 1-3s reject
  play(dir.path(), "p2", port, glu("S-2", "20261206103000", "5.5") + glu("S-3", "20261206104500", "5.6"));
  play(dir.path(), "c3", port, glu("QC-L1", "20261206120000", "5.1"));  // accept
  play(dir.path(), "p3", port, glu("S-4", "20261206123000", "5.2"));
  REQUIRE(backend.wait_posts("/interfacing/device-results", 3).size() == 3);
  REQUIRE(wait_all_delivered(dir.path() / "outbox.sqlite"));  // S-2 and S-3 exported
  json pts = glu_points(health, true, [](const json& p) { return p.size() == 3; });
  REQUIRE(pts.size() == 3);
  const std::string rejected = pts[1]["result_id"];
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_for(10000ms) == std::optional<int>(0));

  // The backend stops taking results: S-5, sent after the restart, stays in the outbox.
  REQUIRE(sim_control(backend.port(), "POST", "/_sim/faults",
                      json{{"path", "/interfacing/device-results"}, {"status", 503}}.dump()) == 200);
  auto again = run_daemon(dir.path(), cfg, health, "daemon2");
  play(dir.path(), "p4", port, glu("S-5", "20261206104800", "5.7"));  // observed in the 10:00 run
  REQUIRE(wait_text([&] { return std::to_string(backend.posts("/interfacing/device-results").size()); }, "4"));

  // Excluding the 10:00 reject after the restart: the correction names the run's patient results
  // from before the restart (S-2, S-3) with when the backend took them, and S-5 without.
  auto r = qc_cli(dir.path(), {"resolve", rejected, "--code", "BAD_VIAL", "--by", "ana", "--reason", "vial left open"});
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("3 patient result(s) changed status") != std::string::npos);
  CHECK(r.out.find("2 already exported") != std::string::npos);
  const auto runs = backend.wait_posts("/interfacing/qc-runs", 1);
  REQUIRE(runs.size() == 1);
  const json run = json::parse(runs[0].value("body", ""));
  INFO(run.dump(1));
  CHECK(run["run_id"].get<std::string>().find("2026-12-06T10:00:00") != std::string::npos);
  REQUIRE(run["patient_results"].size() == 3);
  std::map<std::string, json> by_sample;
  for (const auto& p : run["patient_results"]) by_sample[p.value("sample_id", "")] = p;
  REQUIRE(by_sample.count("S-2") == 1);
  REQUIRE(by_sample.count("S-3") == 1);
  REQUIRE(by_sample.count("S-5") == 1);
  CHECK(by_sample["S-2"].value("exported_at", "").rfind(iso_today(), 0) == 0);
  CHECK(by_sample["S-3"].value("exported_at", "").rfind(iso_today(), 0) == 0);
  CHECK_FALSE(by_sample["S-5"].contains("exported_at"));  // still in the outbox: not exported
  CHECK(by_sample.count("S-4") == 0);  // the 12:00 run's, unchanged
  REQUIRE(sim_control(backend.port(), "DELETE", "/_sim/faults") == 200);
  again->signal(SIGTERM);
  CHECK(again->wait_for(10000ms) == std::optional<int>(0));
}

TEST_CASE("qc durability e2e: the backend's qc-limits change re-evaluates the series (by backend in the history)",
          "[qc][e2e]") {
  scratch_dir dir;
  const json glu1 = {{"parameter", "GLU"}, {"level", "1"}, {"mean", 5.0}, {"sd", 0.2}};
  write_backend_data(dir.path() / "backend.json", {{"qc_limits", {{"chem", json::array({glu1})}}}});
  backend_proc backend(dir.path(), dir.path() / "backend.json");
  const std::uint16_t port = free_port(), health = free_port();
  json qc = glu_l1_qc_config();
  qc.erase("limits");  // the backend's only
  json cfg = qc_daemon_config(dir.path(), port, health, backend.port(), qc);
  cfg["backend"]["waiting_list_poll_s"] = 1;
  auto daemon = run_daemon(dir.path(), cfg, health);
  const fs::path log = dir.path() / "logs" / "chem.log";
  REQUIRE(wait_log(log, "QC limits from the backend: 1 series"));

  play(dir.path(), "c1", port, glu("QC-L1", "20261206080000", "5.0"));  // accept
  play(dir.path(), "c2", port, glu("QC-L1", "20261206100000", "5.5"));  // z 2.5: 1-2s warning
  play(dir.path(), "p2", port, glu("S-2", "20261206103000", "5.5"));
  play(dir.path(), "c3", port, glu("QC-L1", "20261206120000", "5.0"));  // accept
  json pts = glu_points(health, false, [](const json& p) { return p.size() == 3; });
  REQUIRE(pts.size() == 3);
  CHECK(pts[1]["outcome"] == "warning");
  REQUIRE(backend.wait_posts("/interfacing/device-results", 1).size() == 1);

  // The backend narrows the SD: the 10:00 control is now 5 SD off, a 1-3s reject.
  json narrowed = glu1;
  narrowed["sd"] = 0.1;
  write_backend_data(dir.path() / "backend.json", {{"qc_limits", {{"chem", json::array({narrowed})}}}});
  REQUIRE(wait_log(log, "QC limits changed"));
  pts = glu_points(health, false, [](const json& p) { return p.size() == 3 && p[1]["outcome"] == "reject"; });
  REQUIRE(pts.size() == 3);
  CHECK(pts[1]["outcome"] == "reject");
  CHECK(pts[1]["z"].get<double>() == Approx(5.0));
  const auto runs = backend.wait_posts("/interfacing/qc-runs", 1);
  REQUIRE(runs.size() == 1);
  const json run = json::parse(runs[0].value("body", ""));
  INFO(run.dump(1));
  CHECK(run["reason"].get<std::string>().find("qc-limits from the backend changed") != std::string::npos);
  REQUIRE(run["patient_results"].size() == 1);
  CHECK(run["patient_results"][0]["sample_id"] == "S-2");
  auto h = qc_cli(dir.path(), {"history", "--json"});
  REQUIRE(h.status == 0);
  const json hist = json::parse(h.out);
  REQUIRE(hist["entries"].size() == 1);
  CHECK(hist["entries"][0]["kind"] == "limits");
  CHECK(hist["entries"][0]["by"] == "backend");
  CHECK(hist["entries"][0]["detail"].get<std::string>().find("re-evaluated") != std::string::npos);

  // The same limits polled again (and after a restart) change nothing more.
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_for(10000ms) == std::optional<int>(0));
  auto again = run_daemon(dir.path(), cfg, health, "daemon2");
  std::this_thread::sleep_for(2500ms);  // two polls
  CHECK(json::parse(qc_cli(dir.path(), {"history", "--json"}).out)["entries"].size() == 1);
  CHECK(backend.posts("/interfacing/qc-runs").size() == 1);
  again->signal(SIGTERM);
  CHECK(again->wait_for(10000ms) == std::optional<int>(0));
}
