// qc.md "Exported results are preserved" over the wire (issue #14): a re-evaluation re-tags the
// patient results still in the outbox and never attempted (the backend then receives them with
// the new qc_status and no correction for them), and corrects with a qc-runs post the ones the
// backend already took.
#include <catch2/catch.hpp>

#include <map>

#include "e2e_support.hpp"
#include "orders_support.hpp"
#include "qc_support.hpp"

using namespace interfaced::e2e;
using namespace std::chrono_literals;

namespace {

// The qc_status of every GLU patient result the backend received, by sample id, in arrival order.
std::map<std::string, std::vector<std::string>> received_status(const backend_proc& backend) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& post : backend.posts("/interfacing/device-results")) {
    const json body = json::parse(post.value("body", "{}"));
    for (const auto& r : body.value("results", json::array()))
      if (r.value("parameter", "") == "GLU" && !r.value("sample_id", "").starts_with("QC-"))
        out[r.value("sample_id", "")].push_back(r.value("qc_status", ""));
  }
  return out;
}

// c1 accept at 08:00, c2 1-3s reject at 10:00 (S-2 and S-3 in its run: rejected), c3 accept at 12:00.
void play_rejected_run(const fs::path& dir, std::uint16_t port) {
  play(dir, "c1", port, glu("QC-L1", "20261206080000", "5.0"));
  play(dir, "c2", port, glu("QC-L1", "20261206100000", "5.9"));
  play(dir, "p2", port, glu("S-2", "20261206103000", "5.5") + glu("S-3", "20261206104500", "5.6"));
  play(dir, "c3", port, glu("QC-L1", "20261206120000", "5.1"));
}

std::string rejected_control(std::uint16_t health) {
  const json pts = glu_points(health, false, [](const json& p) { return p.size() == 3; });
  INFO(pts.dump(1));
  REQUIRE(pts.size() == 3);
  REQUIRE(pts[1]["outcome"] == "reject");
  return pts[1]["result_id"];
}

}  // namespace

TEST_CASE("qc re-tag e2e: results still in the outbox are re-tagged before delivery and no correction names them",
          "[qc][e2e]") {
  scratch_dir dir;
  const std::uint16_t port = free_port(), health = free_port();
  // No backend yet (no backend.base_url): the results posts wait in the outbox, never attempted.
  json cfg = qc_daemon_config(dir.path(), port, health, 0, glu_l1_qc_config());
  auto daemon = run_daemon(dir.path(), cfg, health);
  play_rejected_run(dir.path(), port);
  const std::string rejected = rejected_control(health);

  auto r = qc_cli(dir.path(), {"resolve", rejected, "--code", "BAD_VIAL", "--by", "ana", "--reason", "vial left open"});
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("2 patient result(s) changed status") != std::string::npos);
  CHECK(r.out.find("2 re-tagged in the outbox before delivery") != std::string::npos);
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_for(10000ms) == std::optional<int>(0));

  // The backend comes up: it receives S-2 and S-3 once each, accepted (the 10:00 run's error was
  // cleared), and the run's status change names no patient result (nothing to correct).
  write_backend_data(dir.path() / "backend.json", json::object());
  backend_proc backend(dir.path(), dir.path() / "backend.json");
  cfg["backend"] = {{"base_url", "http://127.0.0.1:" + std::to_string(backend.port())}};
  auto again = run_daemon(dir.path(), cfg, health, "daemon2");
  REQUIRE(wait_all_delivered(dir.path() / "outbox.sqlite"));
  const auto status = received_status(backend);
  CHECK(status.at("S-2") == std::vector<std::string>{"accepted"});
  CHECK(status.at("S-3") == std::vector<std::string>{"accepted"});
  const auto runs = backend.posts("/interfacing/qc-runs");
  REQUIRE(runs.size() == 1);
  const json run = json::parse(runs[0].value("body", ""));
  INFO(run.dump(1));
  CHECK(run["status"] == "Reanalysis required (Westgard)");
  CHECK(run["reason"].get<std::string>().find("MARK (error cleared)") != std::string::npos);
  CHECK(run["patient_results"].empty());
  again->signal(SIGTERM);
  CHECK(again->wait_for(10000ms) == std::optional<int>(0));
}

TEST_CASE("qc re-tag e2e: results the backend already took are corrected by a qc-runs post and never re-sent",
          "[qc][e2e]") {
  scratch_dir dir;
  write_backend_data(dir.path() / "backend.json", json::object());
  backend_proc backend(dir.path(), dir.path() / "backend.json");
  const std::uint16_t port = free_port(), health = free_port();
  json cfg = qc_daemon_config(dir.path(), port, health, backend.port(), glu_l1_qc_config());
  auto daemon = run_daemon(dir.path(), cfg, health);
  play_rejected_run(dir.path(), port);
  const std::string rejected = rejected_control(health);
  REQUIRE(wait_all_delivered(dir.path() / "outbox.sqlite"));  // S-2 and S-3 exported, rejected

  auto r = qc_cli(dir.path(), {"resolve", rejected, "--code", "BAD_VIAL", "--by", "ana", "--reason", "vial left open"});
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("2 patient result(s) changed status") != std::string::npos);
  CHECK(r.out.find("0 re-tagged in the outbox before delivery") != std::string::npos);
  CHECK(r.out.find("2 already exported") != std::string::npos);
  const auto runs = backend.wait_posts("/interfacing/qc-runs", 1);
  REQUIRE(runs.size() == 1);
  const json run = json::parse(runs[0].value("body", ""));
  INFO(run.dump(1));
  REQUIRE(run["patient_results"].size() == 2);
  for (const auto& p : run["patient_results"]) CHECK(p.value("exported_at", "").rfind(iso_today(), 0) == 0);
  REQUIRE(wait_all_delivered(dir.path() / "outbox.sqlite"));
  // The results themselves were posted once, as they were: never changed in place.
  const auto status = received_status(backend);
  CHECK(status.at("S-2") == std::vector<std::string>{"rejected"});
  CHECK(status.at("S-3") == std::vector<std::string>{"rejected"});
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_for(10000ms) == std::optional<int>(0));
}
