// Issue #14 acceptance over the wire: the 30-day scenario (tests/e2e/qc_support.hpp) sent by
// `interfaced simulate` to the real daemon over TCP, the backend simulator receiving.
//  - day 12's 2-2s reject: its patient results posted qc_status "rejected", day 11's (posted
//    since the last accepted QC event) reported affected in one qc-runs post; no control result
//    ever reaches the patient endpoint;
//  - `interfaced qc resolve` excluding the day-12 level-1 control: the chart re-evaluated from
//    day 12, its reject cleared (day 12's run marked), 8 unchanged runs then the stop; the
//    correction names the exported patient results with when they were exported;
//  - day 5's controls sent late: the runs after it marked "may be affected".
// And a SIGKILL in the middle of that re-evaluation, at several points (inside its transaction,
// after its commit with the posts undelivered, at varied delays): after the restart (and the
// client's retry when the kill came before the commit) the final state equals an uninterrupted
// run's: the points' outcomes, the history, and the qc-runs posts the backend took, none twice.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "e2e_support.hpp"
#include "orders_support.hpp"
#include "qc_support.hpp"
#include "sim_control.hpp"

using namespace interfaced::e2e;

namespace {

constexpr const char* may_be_affected =
    "Results for results in this run may be affected by a recently received control. Reanalysis optional.";

json scenario_config(const fs::path& dir, std::uint16_t port, std::uint16_t health, std::uint16_t backend) {
  json cfg = qc_daemon_config(dir, port, health, backend, scenario_qc_config());
  return cfg;
}

// Every GLU point by result id (both levels, excluded ones too): {outcome, rules, resolution code}.
std::map<std::string, std::string> points_by_id(std::uint16_t health) {
  std::map<std::string, std::string> out;
  const auto body = http_get(health, "/api/qc/series?parameter=GLU&show_resolved_controls=1");
  if (!body) return out;
  const json all = json::parse(*body);  // named: a range over a temporary's member dangles
  for (const auto& s : all["series"])
    for (const auto& p : s["points"])
      out[p.value("result_id", "")] = p.value("outcome", "") + " " + p["rules"].dump() + " " +
                                      (p["resolution"].is_null() ? std::string("-") : p["resolution"].value("code", ""));
  return out;
}

std::string day12_level1(std::uint16_t health) {
  const auto body = http_get(health, "/api/qc/series?parameter=GLU&show_resolved_controls=1");
  REQUIRE(body.has_value());
  const json all = json::parse(*body);  // named: a range over a temporary's member dangles
  for (const auto& s : all["series"])
    for (const auto& p : s["points"])
      if (s.value("level", "") == "1" && p.value("observed_at", "").rfind("2026-11-12T08:00:00", 0) == 0)
        return p.value("result_id", "");
  FAIL("no day-12 level-1 point");
  return {};
}

// The qc-runs posts the backend accepted: idempotency key -> body; a key taken twice fails.
std::map<std::string, std::string> taken_runs(const backend_proc& backend) {
  std::map<std::string, std::string> out;
  for (const auto& r : backend.posts("/interfacing/qc-runs")) {
    if (r.value("status", 0) != 200) continue;
    const std::string key = r.value("idempotency_key", "");
    if (r.value("duplicate", false)) continue;  // the backend's de-duplication caught a resend
    INFO("idempotency key " << key);
    CHECK(out.count(key) == 0);
    out[key] = r.value("body", "");
  }
  return out;
}

std::multiset<std::string> bodies(const std::map<std::string, std::string>& runs) {
  std::multiset<std::string> out;
  for (const auto& [key, body] : runs) out.insert(body);
  return out;
}

}  // namespace

TEST_CASE("qc scenario e2e: 30 days over the wire - day-12 2-2s reject then exclusion then a late day-5 control", "[qc][e2e]") {
  scratch_dir dir;
  write_backend_data(dir.path() / "backend.json", json::object());
  backend_proc backend(dir.path(), dir.path() / "backend.json");
  const std::uint16_t port = free_port(), health = free_port();
  const json cfg = scenario_config(dir.path(), port, health, backend.port());
  auto daemon = run_daemon(dir.path(), cfg, health);

  play(dir.path(), "days", port, scenario_days(5), 120000ms);
  // 29 days x 2 patient results, each its own sample (one post each); 58 control results.
  const auto results = backend.wait_posts("/interfacing/device-results", 58, 60000ms);
  REQUIRE(results.size() == 58);
  std::map<std::string, std::string> status;  // sample -> qc_status
  for (const auto& p : results) {
    const json body = json::parse(p.value("body", ""));
    for (const auto& r : body["results"]) {
      CHECK(r.value("sample_id", "").rfind("QC-", 0) != 0);  // a control never reaches the patient endpoint
      status[r.value("sample_id", "")] = r.value("qc_status", "");
    }
  }
  CHECK(status["P12a"] == "rejected");
  CHECK(status["P12b"] == "rejected");
  CHECK(status["P11a"] == "accepted");
  CHECK(status["P6a"] == "accepted");
  std::size_t controls = 0;
  for (const auto& p : backend.wait_posts("/interfacing/qc-results", 58))
    controls += json::parse(p.value("body", ""))["results"].size();
  CHECK(controls == 58);
  // The affected post: day 11's results, posted since the last accepted QC event, in one post.
  auto runs = backend.wait_posts("/interfacing/qc-runs", 1);
  REQUIRE(runs.size() == 1);
  json affected = json::parse(runs[0].value("body", ""));
  INFO(affected.dump(1));
  CHECK(affected["status"] == "Reanalysis required (Westgard)");
  REQUIRE(affected["patient_results"].size() == 2);
  CHECK(affected["patient_results"][0]["sample_id"] == "P11a");
  CHECK(affected["patient_results"][1]["sample_id"] == "P11b");
  auto pts = points_by_id(health);
  const std::string excluded = day12_level1(health);
  CHECK(pts[excluded].rfind("reject", 0) == 0);
  CHECK(pts[excluded].find("2-2s") != std::string::npos);

  // Everything exported (delivered), then the exclusion.
  REQUIRE(wait_all_delivered(dir.path() / "outbox.sqlite"));
  auto r = qc_cli(dir.path(), {"resolve", excluded, "--code", "BAD_VIAL", "--by", "ana", "--reason", "vial left open"});
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("re-evaluated 9 run(s)") != std::string::npos);
  CHECK(r.out.find("1 changed") != std::string::npos);
  CHECK(r.out.find("2 patient result(s) changed status") != std::string::npos);
  CHECK(r.out.find("2 already exported") != std::string::npos);
  CHECK(r.out.find("stopped: 8 consecutive unchanged runs") != std::string::npos);
  runs = backend.wait_posts("/interfacing/qc-runs", 2);
  REQUIRE(runs.size() == 2);
  const json correction = json::parse(runs[1].value("body", ""));
  INFO(correction.dump(1));
  CHECK(correction["status"] == "Reanalysis required (Westgard)");
  CHECK(correction["run_id"].get<std::string>().find("2026-11-12T08:00:00") != std::string::npos);
  CHECK(correction["reason"].get<std::string>().find("MARK (error changed)") != std::string::npos);
  REQUIRE(correction["patient_results"].size() == 2);
  for (const auto& p : correction["patient_results"]) {
    CHECK(p["sample_id"].get<std::string>().rfind("P12", 0) == 0);
    // Exported: when the backend took it, today (the observations are from November).
    REQUIRE(p.contains("exported_at"));
    CHECK(p["exported_at"].get<std::string>().rfind(iso_today(), 0) == 0);
  }
  pts = points_by_id(health);
  CHECK(pts[excluded].find("BAD_VIAL") != std::string::npos);
  // Day 12's level 2 alone at +2.2 SD: a warning, no longer the 2-2s reject.
  std::size_t day12_warnings = 0;
  for (const auto& [id, p] : pts)
    if (id.find("2026-11-12T08:00:00") != std::string::npos && id != excluded && p.rfind("warning", 0) == 0) ++day12_warnings;
  CHECK(day12_warnings == 1);

  // Day 5's controls arrive late (an analyser that buffered them): the runs after it may be affected.
  play(dir.path(), "late", port, scenario_controls(5, 101, 201));
  runs = backend.wait_posts("/interfacing/qc-runs", 3);
  REQUIRE(runs.size() == 3);
  const json late = json::parse(runs[2].value("body", ""));
  INFO(late.dump(1));
  CHECK(late["status"] == may_be_affected);
  REQUIRE(late["patient_results"].size() == 2 * 25);  // days 6..30
  CHECK(late["patient_results"][0]["sample_id"] == "P6a");
  CHECK(late["patient_results"][0].contains("exported_at"));

  daemon->signal(SIGTERM);
  CHECK(daemon->wait_for(10000ms) == std::optional<int>(0));
}

namespace {

// One daemon on a copy of a prepared outbox (the scenario ingested and delivered), its own
// backend simulator; `env` for the daemon's test hooks.
struct crash_rig {
  scratch_dir dir;
  std::unique_ptr<backend_proc> backend;
  std::uint16_t port = free_port(), health = free_port();
  json cfg;
  std::vector<std::string> env;
  std::unique_ptr<child> daemon;

  crash_rig(const fs::path& prepared, std::vector<std::string> e = {}) : env(std::move(e)) {
    for (const char* f : {"outbox.sqlite", "outbox.sqlite-wal", "outbox.sqlite.id"})
      if (fs::exists(prepared / f)) fs::copy_file(prepared / f, dir.path() / f);
    write_backend_data(dir.path() / "backend.json", json::object());
    backend = std::make_unique<backend_proc>(dir.path(), dir.path() / "backend.json");
    cfg = scenario_config(dir.path(), port, health, backend->port());
    start("daemon");
  }
  void start(const std::string& tag) { daemon = run_daemon(dir.path(), cfg, health, tag, env); }
  void kill() {
    daemon->signal(SIGKILL);
    REQUIRE(daemon->wait_for(10000ms).has_value());
  }
  std::unique_ptr<child> resolve_async(const std::string& id) {
    return std::make_unique<child>(
        std::vector<std::string>{interfaced::test::interfaced_binary().string(), "qc", "resolve", id, "--code", "BAD_VIAL",
                                 "--by", "ana", "--reason", "vial left open", "-c", (dir.path() / "interfaced.json").string()},
        dir.path() / "resolve.out", dir.path() / "resolve.err");
  }
  std::size_t resolutions() {
    const auto body = http_get(health, "/api/qc/history");
    REQUIRE(body.has_value());
    std::size_t n = 0;
    const json history = json::parse(*body);
    for (const auto& e : history["entries"])
      if (e.value("kind", "") == "resolution") ++n;
    return n;
  }
  // The final state once everything is delivered: the points, the history, the qc-runs taken.
  struct state {
    std::map<std::string, std::string> points;
    std::size_t resolutions = 0;
    std::multiset<std::string> runs;
  };
  state settle() {
    REQUIRE(wait_all_delivered(dir.path() / "outbox.sqlite"));
    std::this_thread::sleep_for(200ms);
    return {points_by_id(health), resolutions(), bodies(taken_runs(*backend))};
  }
  ~crash_rig() {
    if (daemon && daemon->running()) {
      daemon->signal(SIGTERM);
      (void)daemon->wait_for(10000ms);
    }
  }
};

}  // namespace

TEST_CASE("qc scenario e2e: SIGKILL in the middle of a re-evaluation then restart gives the same final state", "[qc][e2e]") {
  // The scenario ingested once, every message delivered, the daemon stopped: each case below
  // starts from a copy of that outbox.
  scratch_dir prepared;
  std::string excluded;
  {
    write_backend_data(prepared.path() / "backend.json", json::object());
    backend_proc backend(prepared.path(), prepared.path() / "backend.json");
    const std::uint16_t port = free_port(), health = free_port();
    auto daemon = run_daemon(prepared.path(), scenario_config(prepared.path(), port, health, backend.port()), health);
    play(prepared.path(), "days", port, scenario_days(5), 120000ms);
    REQUIRE(backend.wait_posts("/interfacing/device-results", 58, 60000ms).size() == 58);
    REQUIRE(wait_all_delivered(prepared.path() / "outbox.sqlite"));
    excluded = day12_level1(health);
    daemon->signal(SIGTERM);
    REQUIRE(daemon->wait_for(10000ms) == std::optional<int>(0));
  }

  // Uninterrupted: the reference final state.
  crash_rig::state want;
  {
    crash_rig rig(prepared.path());
    auto cli = rig.resolve_async(excluded);
    REQUIRE(cli->wait_for(20000ms) == std::optional<int>(0));
    want = rig.settle();
  }
  REQUIRE(want.resolutions == 1);
  REQUIRE(want.runs.size() == 1);  // day 12's run, its two exported results
  REQUIRE(want.points.size() == 58);
  CHECK(want.points[excluded].find("BAD_VIAL") != std::string::npos);

  {  // killed inside the re-evaluation's transaction: nothing kept, the client's retry gives the same end
    scratch_dir pause_dir;
    const fs::path pause = pause_dir.path() / "pause";  // the outbox's fault hook: "pause" holds COMMIT
    crash_rig rig(prepared.path(), {"INTERFACED_TEST_OUTBOX_WRITE_FAULT=" + pause.string()});
    { std::ofstream(pause) << "pause\n"; }
    auto cli = rig.resolve_async(excluded);
    // Applied in memory, its transaction written and held before COMMIT: no answer yet.
    REQUIRE(wait_text([&] { return points_by_id(rig.health)[excluded]; }, "BAD_VIAL"));
    std::this_thread::sleep_for(300ms);
    CHECK(cli->running());
    rig.kill();
    const auto cli_status = cli->wait_for(20000ms);
    fs::remove(pause);
    CHECK(cli_status.has_value());
    CHECK(cli_status != std::optional<int>(0));  // never "done" for a change that was not stored
    rig.start("daemon2");
    CHECK(rig.resolutions() == 0);
    CHECK(points_by_id(rig.health)[excluded].find("BAD_VIAL") == std::string::npos);
    auto again = rig.resolve_async(excluded);
    REQUIRE(again->wait_for(20000ms) == std::optional<int>(0));
    const auto got = rig.settle();
    CHECK(got.points == want.points);
    CHECK(got.resolutions == want.resolutions);
    CHECK(got.runs == want.runs);
  }

  {  // killed after the commit with its posts undelivered: the restart delivers them, once each
    crash_rig rig(prepared.path());
    REQUIRE(sim_control(rig.backend->port(), "POST", "/_sim/faults",
                        json{{"path", "/interfacing/qc-runs"}, {"status", 503}}.dump()) == 200);
    auto cli = rig.resolve_async(excluded);
    REQUIRE(cli->wait_for(20000ms) == std::optional<int>(0));
    REQUIRE(wait_text([&] { return std::to_string(rig.backend->posts("/interfacing/qc-runs").size()); }, "1"));
    rig.kill();
    REQUIRE(sim_control(rig.backend->port(), "DELETE", "/_sim/faults") == 200);
    rig.start("daemon2");
    const auto got = rig.settle();
    CHECK(got.points == want.points);
    CHECK(got.resolutions == want.resolutions);
    CHECK(got.runs == want.runs);
  }

  {  // killed at varied delays after the request
    std::size_t before_commit = 0, after_commit = 0;
    for (const int delay_ms : {0, 2, 5, 10, 20, 40, 80}) {
      INFO("kill " << delay_ms << " ms after the request");
      crash_rig rig(prepared.path());
      auto cli = rig.resolve_async(excluded);
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      rig.kill();
      (void)cli->wait_for(20000ms);
      rig.start("daemon2");
      if (rig.resolutions() == 0) {
        ++before_commit;  // not stored: the client retries (its exit said so)
        auto again = rig.resolve_async(excluded);
        REQUIRE(again->wait_for(20000ms) == std::optional<int>(0));
      } else {
        ++after_commit;
      }
      const auto got = rig.settle();
      CHECK(got.points == want.points);
      CHECK(got.resolutions == want.resolutions);
      CHECK(got.runs == want.runs);
    }
    WARN("killed before the commit " << before_commit << " times, after it " << after_commit << " times");
  }
}
