// `interfaced qc evaluate --limits FILE SERIES.csv` as the issue states it: one JSON line per row
// in input order, {observed_at, parameter, level, value, z, outcome, rules}; the same time is the
// same QC event. Expected outcomes worked by hand from qc.md's rule definitions.

#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "daemon/qc_command.hpp"
#include "daemon/replay.hpp"
#include "support/files.hpp"
#include "support/scratch_dir.hpp"

using interfaced::test::scratch_dir;
using json = nlohmann::json;

namespace {

struct run {
  int rc = 0;
  std::vector<json> lines;
  std::string raw;
  std::string err;
};

run evaluate(const std::string& limits, const std::string& csv) {
  scratch_dir dir;
  std::ofstream(dir / "limits.json") << limits;
  std::ofstream(dir / "series.csv") << csv;
  std::ostringstream out, err;
  run r;
  r.rc = interfaced::daemon::run_qc_evaluate((dir / "limits.json").string(), (dir / "series.csv").string(), out, err);
  r.raw = out.str();
  r.err = err.str();
  std::istringstream in(r.raw);
  for (std::string line; std::getline(in, line);) r.lines.push_back(json::parse(line));
  return r;
}

const std::string limits = R"([{"parameter":"GLU","level":"1","mean":100,"sd":5},
                              {"parameter":"GLU","level":"2","mean":200,"sd":10,"material":"Liquichek","lot":"L7"}])";

}  // namespace

TEST_CASE("qc evaluate: one line per row in input order, the fields the issue names, in its order") {
  // Day 3 arrives first in the file: it is judged after day 1 and 2 (observed_at order) but printed first.
  const auto r = evaluate(limits,
                          "observed_at,parameter,level,value\n"
                          "2026-11-03T08:00:00+01:00,GLU,1,111\n"
                          "2026-11-01T08:00:00+01:00,GLU,1,110\n"
                          "2026-11-02T08:00:00+01:00,GLU,1,111\n");
  REQUIRE(r.rc == 0);
  REQUIRE(r.lines.size() == 3);
  CHECK(r.raw.substr(0, r.raw.find('\n')) ==
        R"({"observed_at":"2026-11-03T08:00:00+01:00","parameter":"GLU","level":"1","value":111.0,"z":2.2,"outcome":"reject","rules":["1-2s","2-2s"]})");
  // Exactly 2.0 SD: accept.
  CHECK(r.lines[1]["z"] == 2.0);
  CHECK(r.lines[1]["outcome"] == "accept");
  // Day 2: 2.2 after 2.0 -> 1-2s only (the previous one is not beyond 2 SD).
  CHECK(r.lines[2]["outcome"] == "warning");
  CHECK(r.lines[2]["rules"] == json::array({"1-2s"}));
}

TEST_CASE("qc evaluate: the same time is one QC event, 2-2s and R-4s across its levels") {
  const auto r = evaluate(limits,
                          "observed_at,parameter,level,value\n"
                          "2026-11-01T08:00:00+01:00,GLU,1,111\n"
                          "2026-11-01T08:00:00+01:00,GLU,2,222\n"
                          "2026-11-02T08:00:00+01:00,GLU,1,111\n"
                          "2026-11-02T08:00:00+01:00,GLU,2,178\n");
  REQUIRE(r.rc == 0);
  CHECK(r.lines[1]["rules"] == json::array({"1-2s", "2-2s"}));
  CHECK(r.lines[3]["rules"] == json::array({"1-2s", "R-4s"}));
  CHECK(r.lines[3]["outcome"] == "reject");
}

TEST_CASE("qc evaluate: no limits or a value that is not a number is no_limits, never a pass") {
  const auto r = evaluate(limits,
                          "observed_at,parameter,level,value\n"
                          "2026-11-01T08:00:00+01:00,ALT,1,40\n"
                          "2026-11-01T08:00:00+01:00,GLU,1,>500\n");
  REQUIRE(r.rc == 0);
  CHECK(r.lines[0]["outcome"] == "no_limits");
  CHECK(r.lines[0]["z"].is_null());
  CHECK(r.lines[1]["outcome"] == "no_limits");
  CHECK(r.lines[1]["value"] == ">500");
}

TEST_CASE("qc evaluate: a bad header, a bad time and bad limits are named") {
  CHECK(evaluate(limits, "time,parameter,level,value\n").rc == 1);
  const auto bad_time = evaluate(limits, "observed_at,parameter,level,value\nyesterday,GLU,1,100\n2026-11-01T08:00:00,GLU,1,100\n");
  CHECK(bad_time.rc == 1);
  CHECK(bad_time.lines.size() == 1);
  CHECK(bad_time.err.find("line 2") != std::string::npos);
  const auto bad_limits = evaluate(R"([{"parameter":"GLU","level":"1","mean":100,"sd":0}])", "observed_at,parameter,level,value\n");
  CHECK(bad_limits.rc == 78);
  CHECK(bad_limits.err.find("/0/sd") != std::string::npos);
}

TEST_CASE("replay --qc-limits: a {type:qc} line per control result of the Yumizen H550 capture") {
  const auto rel = std::string("astm/horiba-yumizen_h550-qc-result-records.astm");
  if (!interfaced::test::capture(rel)) return;  // skipped with the WARN of capture()
  scratch_dir dir;
  // PLT low control 67 against 64 +- 3: z = 1.0 exactly, accept; HGB 6.0 against 5.0 +- 0.25: 4 SD, 1-3s.
  std::ofstream(dir / "limits.json") << R"([{"parameter":"PLT","level":"CTRLLOW","mean":64,"sd":3},
                                           {"parameter":"HGB","level":"CTRLLOW","mean":5.0,"sd":0.25}])";
  interfaced::daemon::replay_options o;
  o.files = {interfaced::test::capture_path(rel).string()};
  o.timezone = "Europe/Berlin";
  o.qc_limits_file = (dir / "limits.json").string();
  std::ostringstream out, err;
  CHECK(interfaced::daemon::run_replay(o, out, err) == 0);
  std::vector<json> qc;
  std::istringstream in(out.str());
  for (std::string line; std::getline(in, line);)
    if (json j = json::parse(line); j.value("type", "") == "qc") qc.push_back(j);
  REQUIRE(qc.size() == 20);
  std::map<std::string, json> by;
  for (const auto& q : qc) by[q.value("parameter", "")] = q;
  CHECK(by["PLT"]["z"] == 1.0);
  CHECK(by["PLT"]["outcome"] == "accept");
  CHECK(by["HGB"]["outcome"] == "reject");
  CHECK(by["HGB"]["rules"] == json::array({"1-2s", "1-3s"}));
  CHECK(by["MCV"]["outcome"] == "no_limits");
  CHECK(by["PLT"]["lot"] == "PX449L");
  CHECK(by["PLT"]["observed_at"] == "2024-09-12T07:03:43+02:00");
}
