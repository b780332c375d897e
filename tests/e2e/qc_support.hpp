#pragma once
// QC over the wire (issue #14): GLU results as LIS2-A2 messages, played into the daemon by
// `interfaced simulate`; the `interfaced qc` CLI; the daemon's /api/qc/series points.

#include <sqlite3.h>

#include <cstdio>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "e2e_support.hpp"
#include "orders_support.hpp"

namespace interfaced::e2e {


// One GLU result (LIS2-A2), R.13 the analyser's local time.
inline std::string glu(const std::string& sample, const std::string& completed, const std::string& value) {
  return "H|\\^&|||QC-SIM^1.0|||||LIS||P|LIS2-A2|" + completed + "\rP|1|PAT-1\rO|1|" + sample + "||^^^GLU|R\rR|1|^^^GLU|" +
         value + "|mmol/L|3.9-6.1|N||F||tech1|" + completed + "|" + completed + "\rL|1|N\r";
}

// The QC rigs' daemon: analyser "chem" (ASTM, TCP server on port), the admin token "qc-s3cret"
// (the qc CLI reads it), the given qc section, and backend-sim at backend_port unless it is 0
// (then no backend: posts wait in the outbox, never attempted).
inline json qc_daemon_config(const fs::path& dir, std::uint16_t port, std::uint16_t health, std::uint16_t backend_port,
                             json qc) {
  json cfg = daemon_config(dir, json::array({tcp_server_device("chem", "astm", port)}), health);
  if (backend_port != 0) cfg["backend"] = {{"base_url", "http://127.0.0.1:" + std::to_string(backend_port)}};
  with_admin_token(cfg, dir, "qc-s3cret");
  cfg["qc"] = std::move(qc);
  return cfg;
}

// The single-level GLU series of the durability, re-tag and storage rigs: QC-L1* controls
// (Lyphochek lot L1, level 1), limits mean 5.0 SD 0.2, the excluding code BAD_VIAL.
inline json glu_l1_qc_config() {
  return {{"controls", json::array({{{"sample_id", "QC-L1*"}, {"material", "Lyphochek"}, {"lot", "L1"}, {"level", "1"}}})},
          {"limits", json::array({{{"parameter", "GLU"}, {"level", "1"}, {"mean", 5.0}, {"sd", 0.2}}})},
          {"resolution_codes", json::array({{{"code", "BAD_VIAL"}, {"excludes_from_westgard", true}}})}};
}

// backend.json for a chem analyser whose waiting list holds a first run of GLU for each sample
// (S-<n> in report R-<n>): rules that fire for them post rerun requests naming the report.
inline fs::path chem_glu_waiting_list(const fs::path& dir, const std::vector<std::string>& samples) {
  json list = json::array();
  for (const auto& s : samples) list.push_back(entry(s, "R-" + s.substr(s.find('-') + 1), 0, {"GLU"}, {}));
  const fs::path data = dir / "backend.json";
  write_backend_data(data, {{"waiting_list", {{"chem", std::move(list)}}}, {"parameters", json::array()}});
  return data;
}

// The lab's rules file (`rules`, JSON text) in `dir`, read by the daemon of `cfg`, which polls the
// waiting list every second (the rules' reports come from it).
inline void with_rules(json& cfg, const fs::path& dir, const std::string& rules) {
  std::ofstream(dir / "rules.json") << rules;
  cfg["rules_file"] = (dir / "rules.json").string();
  cfg["backend"]["waiting_list_poll_s"] = 1;
}

inline void play(const fs::path& dir, const std::string& tag, std::uint16_t port, const std::string& text,
                 ms limit = 30000ms) {
  const fs::path file = dir / (tag + ".astm");
  std::ofstream(file, std::ios::binary) << text;
  auto sim = simulate(dir, tag, {"--connect", "127.0.0.1:" + std::to_string(port)}, file);
  const auto st = sim->wait_for(limit);
  INFO(tag << "\n" << sim->out() << sim->err());
  REQUIRE(st == std::optional<int>(0));
}

struct cli_result {
  int status;
  std::string out, err;
};

inline cli_result qc_cli(const fs::path& dir, std::vector<std::string> args) {
  args.insert(args.begin(), {interfaced::test::interfaced_binary().string(), "qc"});
  args.insert(args.end(), {"-c", (dir / "interfaced.json").string()});
  child c(args, dir / "cli.out", dir / "cli.err");
  const auto st = c.wait_for(20000ms);
  REQUIRE(st.has_value());
  return {*st, c.out(), c.err()};
}

// Today's date in the local zone (the daemon's default lab zone), "YYYY-MM-DD": the day of an
// exported_at stamped during the test.
inline std::string iso_today() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

// How many outbox messages are not delivered yet (pending, dead, set aside); read-only, while the
// daemon runs (WAL). -1: the file could not be read.
inline long undelivered(const fs::path& db_path) {
  sqlite3* db = nullptr;
  long n = -1;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM messages WHERE state != 'delivered'", -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

// Waits until the backend took every message of the outbox (delivered_at set: "exported").
inline bool wait_all_delivered(const fs::path& db_path, ms limit = 20000ms) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (undelivered(db_path) != 0) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

// The 30-day scenario of issue #14 (qc.md's acceptance; tests/rerun/qc_scenario_test.cpp runs it
// in process): one GLU control series of two levels (QC-1: mean 100 SD 5; QC-2: mean 200 SD 10)
// at 08:00 and two patient results (Pna at 10:00, Pnb at 14:00) a day, November 2026. Quiet
// days alternate +-0.4 SD; day 11 level 1 is +2.4 SD (1-2s warning), day 12 both levels +2.2 SD
// (2-2s within the run: reject).
inline std::string scenario_ts(int day, int hour) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "202611%02d%02d0000", day, hour);
  return buf;
}
inline double scenario_l1(int day) { return day == 12 ? 111 : day == 11 ? 112 : (day % 2 ? 102 : 98); }
inline double scenario_l2(int day) { return day == 12 ? 222 : (day % 2 ? 196 : 204); }
inline std::string scenario_controls(int day, double l1, double l2) {
  return glu("QC-1", scenario_ts(day, 8), std::to_string(l1)) + glu("QC-2", scenario_ts(day, 8), std::to_string(l2));
}
inline std::string scenario_patients(int day) {
  return glu("P" + std::to_string(day) + "a", scenario_ts(day, 10), "5.1") +
         glu("P" + std::to_string(day) + "b", scenario_ts(day, 14), "6.3");
}
// Days 1..30 but `skip` (an analyser that buffered that day through an outage), in time order.
inline std::string scenario_days(int skip) {
  std::string text;
  for (int day = 1; day <= 30; ++day)
    if (day != skip) text += scenario_controls(day, scenario_l1(day), scenario_l2(day)) + scenario_patients(day);
  return text;
}
inline json scenario_qc_config() {
  return {{"controls", json::array({{{"sample_id", "QC-1*"}, {"material", "Liquichek"}, {"lot", "L7"}, {"level", "1"}},
                                    {{"sample_id", "QC-2*"}, {"material", "Liquichek"}, {"lot", "L7"}, {"level", "2"}}})},
          {"limits", json::array({{{"parameter", "GLU"}, {"level", "1"}, {"mean", 100.0}, {"sd", 5.0}},
                                  {{"parameter", "GLU"}, {"level", "2"}, {"mean", 200.0}, {"sd", 10.0}}})},
          {"resolution_codes", json::array({{{"code", "BAD_VIAL"}, {"excludes_from_westgard", true}}})}};
}

}  // namespace interfaced::e2e
