// Issue #14, how QC changes are stored, over the wire with the real daemon, outbox and backend
// simulator: a limit change whose commit fails leaves memory as it was (limits, charts, run
// statuses, history), says [QC-008] and is applied once by a later attempt (the backend's next
// poll, the next SIGHUP); a re-tag that loses the race with delivery (its results post is in
// flight) becomes a qc-runs correction and the change still succeeds.
#include <catch2/catch.hpp>

#include <sstream>

#include "e2e_support.hpp"
#include "orders_support.hpp"
#include "qc_support.hpp"
#include "sim_control.hpp"

using namespace interfaced::e2e;

namespace {

const json glu_l1 = glu_l1_qc_config()["limits"][0];  // mean 5.0 SD 0.2

// c1 accept at 08:00, c2 at 10:00 z 2.5 with SD 0.2 (1-2s warning; 1-3s reject with SD 0.1),
// S-2 in its run, c3 accept at 12:00.
void play_warning_run(const fs::path& dir, std::uint16_t port) {
  play(dir, "c1", port, glu("QC-L1", "20261206080000", "5.0"));
  play(dir, "c2", port, glu("QC-L1", "20261206100000", "5.5"));
  play(dir, "p2", port, glu("S-2", "20261206103000", "5.5"));
  play(dir, "c3", port, glu("QC-L1", "20261206120000", "5.0"));
}

// The lines of a log holding `text`.
std::vector<std::string> log_lines(const fs::path& log, const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(file_text(log));
  for (std::string line; std::getline(in, line);)
    if (line.find(text) != std::string::npos) out.push_back(line);
  return out;
}

json history(const fs::path& dir) {
  auto h = qc_cli(dir, {"history", "--json"});
  REQUIRE(h.status == 0);
  return json::parse(h.out)["entries"];
}

// The 10:00 control is as the old limits judged it: z 2.5, a warning.
void check_judged_with_old_limits(std::uint16_t health) {
  const json pts = glu_points(health, false, [](const json& p) { return p.size() == 3; });
  INFO(pts.dump(1));
  REQUIRE(pts.size() == 3);
  CHECK(pts[1]["outcome"] == "warning");
  CHECK(pts[1]["z"].get<double>() == Approx(2.5));
  CHECK(pts[1]["rules"] == json::array({"1-2s"}));
}

}  // namespace

TEST_CASE("qc limits e2e: a backend limit change the outbox cannot commit leaves memory as it was, says QC-008, and a later poll applies it once",
          "[qc][e2e]") {
  scratch_dir dir;
  write_backend_data(dir.path() / "backend.json", {{"qc_limits", {{"chem", json::array({glu_l1})}}}});
  backend_proc backend(dir.path(), dir.path() / "backend.json");
  const std::uint16_t port = free_port(), health = free_port();
  json qc = glu_l1_qc_config();
  qc.erase("limits");  // the backend's only
  json cfg = qc_daemon_config(dir.path(), port, health, backend.port(), qc);
  cfg["backend"]["waiting_list_poll_s"] = 1;
  const fs::path fault = dir.path() / "outbox-readonly";
  auto daemon = run_daemon(dir.path(), cfg, health, "daemon", {"INTERFACED_TEST_OUTBOX_WRITE_FAULT=" + fault.string()});
  const fs::path log = dir.path() / "logs" / "chem.log";
  REQUIRE(wait_log(log, "QC limits from the backend: 1 series"));
  play_warning_run(dir.path(), port);
  check_judged_with_old_limits(health);
  REQUIRE(wait_all_delivered(dir.path() / "outbox.sqlite"));

  // The disk turns read-only, then the backend narrows the SD (the 10:00 control would be 5 SD off).
  { std::ofstream(fault) << "x"; }
  json narrowed = glu_l1;
  narrowed["sd"] = 0.1;
  write_backend_data(dir.path() / "backend.json", {{"qc_limits", {{"chem", json::array({narrowed})}}}});
  // Tried at every poll while the disk refuses: two failures, each said with device, reason and error.
  REQUIRE(wait_log(log, "[QC-008]", 2));
  const auto failed = log_lines(log, "[QC-008]");
  REQUIRE(!failed.empty());
  CHECK(failed[0].find("qc-limits from the backend changed for chem") != std::string::npos);
  CHECK(failed[0].find("readonly") != std::string::npos);
  CHECK(failed[0].find("of chem GLU") != std::string::npos);
  // Memory as before: limits, z, outcome and rules of every point, no history entry, no qc-runs post.
  check_judged_with_old_limits(health);
  const json series = json::parse(*http_get(health, "/api/qc/series?parameter=GLU"))["series"];
  REQUIRE(series.size() == 1);
  CHECK(series[0]["sd"].get<double>() == Approx(0.2));
  CHECK(history(dir.path()).empty());
  CHECK(log_lines(log, "QC limits changed").empty());
  CHECK(backend.posts("/interfacing/qc-runs").empty());

  // The disk is back: the next poll (its answer still differs from the limits in force) applies it.
  fs::remove(fault);
  REQUIRE(wait_log(log, "QC limits changed"));
  json pts = glu_points(health, false, [](const json& p) { return p.size() == 3 && p[1]["outcome"] == "reject"; });
  REQUIRE(pts.size() == 3);
  CHECK(pts[1]["z"].get<double>() == Approx(5.0));
  const auto runs = backend.wait_posts("/interfacing/qc-runs", 1);
  REQUIRE(runs.size() == 1);
  const json run = json::parse(runs[0].value("body", ""));
  INFO(run.dump(1));
  REQUIRE(run["patient_results"].size() == 1);
  CHECK(run["patient_results"][0]["sample_id"] == "S-2");
  // Applied once: polls after it find nothing more to do.
  std::this_thread::sleep_for(2500ms);
  const json hist = history(dir.path());
  REQUIRE(hist.size() == 1);
  CHECK(hist[0]["kind"] == "limits");
  CHECK(hist[0]["by"] == "backend");
  CHECK(log_lines(log, "QC limits changed").size() == 1);
  CHECK(backend.posts("/interfacing/qc-runs").size() == 1);
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_for(10000ms) == std::optional<int>(0));
}

TEST_CASE("qc limits e2e: a SIGHUP limit change the outbox cannot commit keeps the previous limits and the next SIGHUP applies it once",
          "[qc][e2e]") {
  scratch_dir dir;
  const std::uint16_t port = free_port(), health = free_port();
  json cfg = qc_daemon_config(dir.path(), port, health, 0, glu_l1_qc_config());
  const fs::path fault = dir.path() / "outbox-readonly";
  auto daemon = run_daemon(dir.path(), cfg, health, "daemon", {"INTERFACED_TEST_OUTBOX_WRITE_FAULT=" + fault.string()});
  const fs::path log = dir.path() / "logs" / "chem.log";
  play_warning_run(dir.path(), port);
  check_judged_with_old_limits(health);

  { std::ofstream(fault) << "x"; }
  json narrowed = glu_l1_qc_config();
  narrowed["limits"][0]["sd"] = 0.1;
  cfg["qc"] = narrowed;
  std::ofstream(dir.path() / "interfaced.json") << cfg.dump(2);
  daemon->signal(SIGHUP);
  REQUIRE(wait_log(log, "[QC-008]"));
  CHECK(log_lines(log, "[QC-008]")[0].find("qc.limits changed in") != std::string::npos);
  check_judged_with_old_limits(health);
  CHECK(history(dir.path()).empty());

  // The disk is back and the configuration is read again: the change is applied, once.
  fs::remove(fault);
  daemon->signal(SIGHUP);
  REQUIRE(wait_log(log, "QC limits changed"));
  json pts = glu_points(health, false, [](const json& p) { return p.size() == 3 && p[1]["outcome"] == "reject"; });
  REQUIRE(pts.size() == 3);
  CHECK(pts[1]["z"].get<double>() == Approx(5.0));
  daemon->signal(SIGHUP);  // the same file again: nothing more to change
  REQUIRE(wait_log(dir.path() / "daemon.err", "SIGHUP: configuration", 3));
  const json hist = history(dir.path());
  REQUIRE(hist.size() == 1);
  CHECK(hist[0]["by"] == "configuration reload (SIGHUP)");
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_for(10000ms) == std::optional<int>(0));
}

TEST_CASE("qc re-tag e2e: a results post delivery took before the re-tag is corrected by a qc-runs post and the change succeeds",
          "[qc][e2e]") {
  scratch_dir dir;
  write_backend_data(dir.path() / "backend.json", json::object());
  backend_proc backend(dir.path(), dir.path() / "backend.json");
  // S-2's results post is held by the backend for 10 s (under the 15 s request timeout): in flight,
  // claimed by delivery, attempts still 0, while the resolution is asked for.
  REQUIRE(sim_control(backend.port(), "POST", "/_sim/faults",
                      json{{"path", "/interfacing/device-results"}, {"body_contains", "S-2"}, {"delay_ms", 10000},
                           {"count", 1}}
                          .dump()) == 200);
  const std::uint16_t port = free_port(), health = free_port();
  json qc = glu_l1_qc_config();
  auto daemon = run_daemon(dir.path(), qc_daemon_config(dir.path(), port, health, backend.port(), qc), health);
  play(dir.path(), "c1", port, glu("QC-L1", "20261206080000", "5.0"));
  play(dir.path(), "c2", port, glu("QC-L1", "20261206100000", "5.9"));  // 1-3s reject
  play(dir.path(), "p2", port, glu("S-2", "20261206103000", "5.5"));
  const json pts = glu_points(health, false, [](const json& p) { return p.size() == 2; });
  REQUIRE(pts.size() == 2);
  REQUIRE(pts[1]["outcome"] == "reject");
  REQUIRE(wait_text(
      [&] {
        std::string bodies;
        for (const auto& p : backend.posts("/interfacing/device-results")) bodies += p.value("body", "");
        return bodies;
      },
      "S-2"));

  auto r = qc_cli(dir.path(), {"resolve", pts[1]["result_id"], "--code", "BAD_VIAL", "--by", "ana", "--reason", "vial left open"});
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("1 patient result(s) changed status") != std::string::npos);
  CHECK(r.out.find("1 re-tag(s) came after delivery took the results post: corrected by qc-runs posts instead") !=
        std::string::npos);
  // Counted as corrected, not as re-tagged: in the outcome message and in the history entry.
  const std::string counted = "(0 re-tagged in the outbox before delivery, 1 corrected by qc-runs posts";
  CHECK(r.out.find(counted) != std::string::npos);
  CHECK(r.out.find("(1 re-tagged") == std::string::npos);
  json entries = json::parse(*http_get(health, "/api/qc/history"))["entries"];
  REQUIRE(entries.size() == 1);
  CHECK(entries[0]["detail"].get<std::string>().find(counted) != std::string::npos);

  // The backend took S-2 as it was sent (rejected), then the run's post and S-2's correction.
  REQUIRE(wait_all_delivered(dir.path() / "outbox.sqlite", 20000ms));
  std::vector<std::string> s2;
  for (const auto& post : backend.posts("/interfacing/device-results"))
    for (const auto& res : json::parse(post.value("body", "{}")).value("results", json::array()))
      if (res.value("sample_id", "") == "S-2") s2.push_back(res.value("qc_status", ""));
  CHECK(s2 == std::vector<std::string>{"rejected"});
  const auto runs = backend.posts("/interfacing/qc-runs");
  std::size_t corrections = 0;
  std::string run_id;
  for (const auto& post : runs) {
    const json run = json::parse(post.value("body", "{}"));
    INFO(run.dump(1));
    if (run_id.empty()) run_id = run.value("run_id", "");
    CHECK(run["run_id"] == run_id);  // every post names the 10:00 run
    CHECK(run["status"] == "Reanalysis required (Westgard)");
    if (run["patient_results"].empty()) continue;
    REQUIRE(run["patient_results"].size() == 1);
    CHECK(run["patient_results"][0]["sample_id"] == "S-2");
    CHECK(run["reason"].get<std::string>().find("already being sent when it was to be re-tagged") != std::string::npos);
    ++corrections;
  }
  CHECK(run_id.find("2026-12-06T10:00:00") != std::string::npos);
  CHECK(corrections == 1);
  CHECK(json::parse(*http_get(health, "/api/qc/history"))["entries"].size() == 1);
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_for(10000ms) == std::optional<int>(0));

  // The entry as stored (its transaction decided the count): a restart lists the same detail.
  daemon = run_daemon(dir.path(), qc_daemon_config(dir.path(), port, health, backend.port(), qc), health, "daemon2");
  entries = json::parse(*http_get(health, "/api/qc/history"))["entries"];
  REQUIRE(entries.size() == 1);
  CHECK(entries[0]["detail"].get<std::string>().find(counted) != std::string::npos);
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_for(10000ms) == std::optional<int>(0));
}
