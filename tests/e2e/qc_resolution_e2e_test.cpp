// Issue #14 points 4 and 5 over the wire: a control rejected on the real daemon, resolved with an
// excluding code through `interfaced qc resolve` (the CLI talks to the daemon's /api/qc/...):
// the run re-evaluated and its change posted to the backend simulator's /interfacing/qc-runs,
// /api/qc/series shows the resolution; undo restores the reject; a two-step code proposed and
// approved by the same person is refused, by another accepted; `qc history` lists it all; no
// daemon is exit 69.
#include <catch2/catch.hpp>

#include "e2e_support.hpp"
#include "orders_support.hpp"
#include "qc_support.hpp"

using namespace interfaced::e2e;
using namespace std::chrono_literals;

TEST_CASE("qc resolutions e2e: resolve, re-evaluate, qc-runs posted, undo, two-step approval by another person",
          "[qc][e2e]") {
  scratch_dir dir;
  write_backend_data(dir.path() / "backend.json", json::object());
  backend_proc backend(dir.path(), dir.path() / "backend.json");
  const std::uint16_t port = free_port(), health = free_port();
  json cfg = qc_daemon_config(dir.path(), port, health, backend.port(), {{"controls", json::array({{{"sample_id", "QC-L1*"}, {"material", "Lyphochek"}, {"lot", "L1"}, {"level", "1"}}})},
               {"limits", json::array({{{"parameter", "GLU"}, {"level", "1"}, {"mean", 5.0}, {"sd", 0.2}}})},
               {"resolution_codes", json::array({{{"code", "BAD_VIAL"}, {"excludes_from_westgard", true}},
                                                 {{"code", "TECH_REVIEW"}, {"excludes_from_westgard", true}, {"two_step", true}},
                                                 {{"code", "SKIP"}, {"skip", true}}})}});
  auto daemon = run_daemon(dir.path(), cfg, health);

  play(dir.path(), "c1", port, glu("QC-L1", "20261206080000", "5.0"));  // accept
  play(dir.path(), "p1", port, glu("S-1", "20261206083000", "5.4"));
  play(dir.path(), "c2", port, glu("QC-L1", "20261206100000", "5.9"));  // z 4.5: 1-3s reject
  play(dir.path(), "p2", port, glu("S-2", "20261206103000", "5.5"));
  play(dir.path(), "c3", port, glu("QC-L1", "20261206120000", "5.1"));  // accept
  // The reject reported S-1 (posted since the last accept) as affected: one qc-runs post.
  REQUIRE(backend.wait_posts("/interfacing/qc-runs", 1).size() == 1);
  json pts = glu_points(health, false, [](const json& p) { return p.size() == 3; });
  INFO(pts.dump(1));
  REQUIRE(pts.size() == 3);
  CHECK(pts[1]["outcome"] == "reject");
  const std::string rejected = pts[1]["result_id"];

  // Refusals: unknown code, a two-step code without --propose (exit 1, nothing changed).
  auto r = qc_cli(dir.path(), {"resolve", rejected, "--code", "NOPE", "--by", "ana", "--reason", "x"});
  CHECK(r.status == 1);
  CHECK(r.err.find("unknown resolution code") != std::string::npos);
  r = qc_cli(dir.path(), {"resolve", rejected, "--code", "TECH_REVIEW", "--by", "ana", "--reason", "x"});
  CHECK(r.status == 1);
  CHECK(r.err.find("two-step") != std::string::npos);

  // Resolve with an excluding code: the 10:00 run re-evaluated (error cleared), the 12:00 one
  // unchanged, the end of the series reached; the change posted with S-2.
  r = qc_cli(dir.path(), {"resolve", rejected, "--code", "BAD_VIAL", "--by", "ana", "--reason", "vial left open"});
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("re-evaluated 2 run(s)") != std::string::npos);
  CHECK(r.out.find("1 changed") != std::string::npos);
  CHECK(r.out.find("end of series") != std::string::npos);
  auto runs = backend.wait_posts("/interfacing/qc-runs", 2);
  REQUIRE(runs.size() == 2);
  json run = json::parse(runs[1].value("body", ""));
  INFO(run.dump(1));
  CHECK(run["status"] == "Reanalysis required (Westgard)");
  CHECK(run["reason"].get<std::string>().find("MARK (error cleared)") != std::string::npos);
  REQUIRE(run["patient_results"].size() == 1);
  CHECK(run["patient_results"][0]["sample_id"] == "S-2");
  // /api/qc/series: the excluded point is hidden, and shown with its resolution on request.
  pts = glu_points(health, false, [](const json& p) { return p.size() == 2; });
  CHECK(pts.size() == 2);
  pts = glu_points(health, true, [](const json& p) { return p.size() == 3; });
  REQUIRE(pts.size() == 3);
  CHECK(pts[1]["resolution"]["code"] == "BAD_VIAL");
  CHECK(pts[1]["resolution"]["by"] == "ana");
  const std::int64_t resolution_id = pts[1]["resolution"]["id"];

  // Undo: the reject is back (a new error in that run, posted again).
  r = qc_cli(dir.path(), {"undo", std::to_string(resolution_id), "--by", "ben", "--reason", "vial was fine"});
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  runs = backend.wait_posts("/interfacing/qc-runs", 3);
  REQUIRE(runs.size() == 3);
  CHECK(json::parse(runs[2].value("body", ""))["reason"].get<std::string>().find("MARK (new error)") != std::string::npos);
  pts = glu_points(health, false, [](const json& p) { return p.size() == 3; });
  REQUIRE(pts.size() == 3);
  CHECK(pts[1]["outcome"] == "reject");
  CHECK(pts[1]["resolution"].is_null());

  // Two-step: proposed by ana, ana cannot approve it, ben can.
  r = qc_cli(dir.path(), {"resolve", rejected, "--code", "TECH_REVIEW", "--by", "ana", "--reason", "drift", "--propose"});
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("proposal ") != std::string::npos);
  const json hist = json::parse(*http_get(health, "/api/qc/history"));
  const std::int64_t proposal = hist["entries"].back()["id"];
  CHECK(hist["entries"].back()["kind"] == "proposal");
  r = qc_cli(dir.path(), {"approve", std::to_string(proposal), "--by", "ana"});
  CHECK(r.status == 1);
  CHECK(r.err.find("different person") != std::string::npos);
  r = qc_cli(dir.path(), {"approve", std::to_string(proposal), "--by", "ben"});
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(backend.wait_posts("/interfacing/qc-runs", 4).size() == 4);
  pts = glu_points(health, true, [](const json& p) { return p.size() == 3 && !p[1]["resolution"].is_null(); });
  REQUIRE(pts.size() == 3);
  CHECK(pts[1]["resolution"]["approved_by"] == "ben");

  // The history keeps everything (nothing deleted): resolution, undo, proposal, approval.
  r = qc_cli(dir.path(), {"history"});
  REQUIRE(r.status == 0);
  INFO(r.out);
  for (const char* kind : {"resolution", "undo", "proposal", "approval"}) CHECK(r.out.find(kind) != std::string::npos);
  CHECK(r.out.find("vial left open") != std::string::npos);

  daemon->signal(SIGTERM);
  CHECK(daemon->wait_for(10000ms) == std::optional<int>(0));
  // Restart: the resolutions come back from the outbox file (qc_audit) with the charts.
  auto again = run_daemon(dir.path(), cfg, health);
  pts = glu_points(health, true, [](const json& p) { return p.size() == 3 && !p[1]["resolution"].is_null(); });
  REQUIRE(pts.size() == 3);
  CHECK(pts[1]["resolution"]["code"] == "TECH_REVIEW");
  CHECK(json::parse(*http_get(health, "/api/qc/history"))["entries"].size() == 4);
  again->signal(SIGTERM);
  CHECK(again->wait_for(10000ms) == std::optional<int>(0));
  // No daemon: exit 69 with a clear message.
  r = qc_cli(dir.path(), {"history"});
  CHECK(r.status == 69);
  CHECK(r.err.find("is it running?") != std::string::npos);
}
