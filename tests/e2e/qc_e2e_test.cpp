// Issue #14 acceptance over the wire: the real QC captures of ../shared (Yumizen H500 / H550,
// cobas c111, Mindray CL QC in OBR) played by `interfaced simulate` into the real daemon reach the
// backend simulator's POST /interfacing/qc-results with their series, and nothing of them reaches
// the patient endpoint. A patient result after the H500 control carries qc_status.
#include <catch2/catch.hpp>

#include <map>

#include "e2e_support.hpp"
#include "orders_support.hpp"

using namespace interfaced::e2e;

namespace {

json device(const std::string& id, const std::string& protocol, std::uint16_t port, const std::string& profile) {
  json d = tcp_server_device(id, protocol, port);
  d["profile"] = profile;
  return d;
}

void play(const fs::path& dir, const std::string& tag, std::uint16_t port, const fs::path& file) {
  auto sim = simulate(dir, tag, {"--connect", "127.0.0.1:" + std::to_string(port)}, file);
  const auto st = sim->wait_for(std::chrono::milliseconds(30000));
  INFO(tag << "\n" << sim->out() << sim->err());
  REQUIRE(st.has_value());
  REQUIRE(*st == 0);
}

// Every control result posted, by device.
std::map<std::string, std::vector<json>> qc_results(const std::vector<json>& posts) {
  std::map<std::string, std::vector<json>> out;
  for (const auto& p : posts) {
    const json body = json::parse(p.value("body", ""));
    for (const auto& r : body["results"]) out[body.value("device_id", "")].push_back(r);
  }
  return out;
}

const json* find_parameter(const std::vector<json>& results, const std::string& parameter) {
  for (const auto& r : results)
    if (r["series"].value("parameter", "") == parameter) return &r;
  return nullptr;
}

}  // namespace

TEST_CASE("qc e2e: real QC captures reach qc-results with their series, nothing reaches the patient endpoint",
          "[qc][e2e]") {
  const auto h500 = interfaced::test::capture("astm/horiba-yumizen_h500-qc-histograms-multiframe.astm");
  const auto h550 = interfaced::test::capture("astm/horiba-yumizen_h550-qc-result-records.astm");
  const auto c111 = interfaced::test::capture("astm/roche-cobas_c111-qc-result-etb-per-record.astm");
  const auto mindray = interfaced::test::capture("hl7/mindray-cl1000i-oru-r01-qc-manual.txt");
  if (!h500 || !h550 || !c111 || !mindray) return;  // skipped with the WARN of capture()

  scratch_dir dir;
  write_backend_data(dir.path() / "backend.json", json::object());
  backend_proc backend(dir.path(), dir.path() / "backend.json");
  const std::uint16_t p500 = free_port(), p550 = free_port(), p111 = free_port(), pmr = free_port(),
                      health = free_port();
  json cfg = daemon_config(dir.path(),
                           json::array({device("h500", "astm", p500, "horiba-yumizen-h500"),
                                        device("h550", "astm", p550, "horiba-yumizen-h550"),
                                        device("c111", "astm", p111, "roche-cobas-c111"),
                                        device("cl", "hl7", pmr, "mindray-cl")}),
                           health);
  cfg["backend"] = {{"base_url", "http://127.0.0.1:" + std::to_string(backend.port())}};
  // The c111 does not mark its controls: its sample id names the control (qc.controls). The H500's
  // PLT medium control has configured limits: 308 against 261 +- 10 is 4.7 SD, a 1-3s reject (the
  // analyser itself said CONTROL_FAILED^^PLT_ABOVE_TOLERANCE).
  cfg["qc"] = {{"controls", json::array({{{"sample_id", "T20 *"}, {"material", "PreciControl"}, {"lot", "10134GA"},
                                          {"level", "1"}}})},
               {"limits", json::array({{{"parameter", "PLT"}, {"level", "CTRL MEDIUM"}, {"mean", 261}, {"sd", 10}}})}};
  auto daemon = run_daemon(dir.path(), cfg, health);

  play(dir.path(), "h500", p500, interfaced::test::capture_path("astm/horiba-yumizen_h500-qc-histograms-multiframe.astm"));
  play(dir.path(), "h550", p550, interfaced::test::capture_path("astm/horiba-yumizen_h550-qc-result-records.astm"));
  play(dir.path(), "c111", p111, interfaced::test::capture_path("astm/roche-cobas_c111-qc-result-etb-per-record.astm"));
  play(dir.path(), "cl", pmr, interfaced::test::capture_path("hl7/mindray-cl1000i-oru-r01-qc-manual.txt"));
  // A patient sample on the H500 after its control run (own fixture, the H500's record layout).
  const fs::path patient = dir.path() / "patient.astm";
  std::ofstream(patient, std::ios::binary)
      << "H|\\^&|||H500^910YOXH02826^2.2.2.2b|||||||P|LIS2-A2|20230329113000\r"
         "P|1\rO|1|PAT-77||^^^DIF|R|20230329113000|||||||||BLOOD||||||||||F\r"
         "R|1|^^^PLT^777-3|250|10E3/uL|150 - 400^REFERENCE_RANGE|N||F||MATYL^^USER|20230329113000||\r"
         "R|2|^^^HGB^718-7|13.1|g/dL|12.0 - 16.0^REFERENCE_RANGE|N||F||MATYL^^USER|20230329113000||\r"
         "L|1|N\r";
  play(dir.path(), "patient", p500, patient);

  const auto posts = backend.wait_posts("/interfacing/qc-results", 4);
  const auto patients = backend.wait_posts("/interfacing/device-results", 1);
  // The dashboard's read endpoint (issue #16): one series, its limits and its points.
  const auto api = http_get(health, "/api/qc/series?device=h500&parameter=PLT");
  REQUIRE(api.has_value());
  const json lj = json::parse(*api);
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_for(10000ms) == std::optional<int>(0));

  auto by_device = qc_results(posts);
  INFO(json(posts).dump(1));
  // Nothing of a control reaches the patient endpoint: the one patient post is PAT-77's.
  REQUIRE(patients.size() == 1);
  const json pb = json::parse(patients[0].value("body", ""));
  INFO(pb.dump(1));
  for (const auto& r : pb["results"]) CHECK(r.value("sample_id", "") == "PAT-77");
  CHECK(pb["results"].size() == 2);

  SECTION("Yumizen H500: its control results, series from O.16 / O.3, PLT rejected 1-3s") {
    const auto& r = by_device["h500"];
    // 21 R records; senaite rewrote the file's frame numbers (SOURCES.md note 1), so the frame
    // holding R|1 (MCV) repeats the number before it and `simulate` plays 20 of them (the replay
    // test with --ignore-frame-numbers reads all 21). Every one that arrives is a control.
    CHECK(r.size() >= 20);
    for (const auto& x : r) {
      CHECK(x["series"].value("level", "") == "CTRL MEDIUM");
      CHECK(x["series"].value("lot", "") == "PX440N");
    }
    const json* plt = find_parameter(r, "PLT");
    REQUIRE(plt != nullptr);
    CHECK(plt->value("outcome", "") == "reject");
    CHECK((*plt)["rules"] == json::array({"1-2s", "1-3s"}));
    CHECK((*plt)["z"].get<double>() == Approx(4.7));
    CHECK((*plt)["limits"].value("source", "") == "config");
    const json* neu = find_parameter(r, "NEU#");
    REQUIRE(neu != nullptr);
    CHECK(neu->value("outcome", "") == "no_limits");  // never a silent pass
  }
  SECTION("GET /api/qc/series: the H500 PLT series with its limits and the rejected point") {
    INFO(lj.dump(1));
    REQUIRE(lj["series"].size() == 1);
    const json& s = lj["series"][0];
    CHECK(s.value("device", "") == "h500");
    CHECK(s.value("level", "") == "CTRL MEDIUM");
    CHECK(s["mean"] == 261.0);
    CHECK(s["sd"] == 10.0);
    REQUIRE(s["points"].size() == 1);
    CHECK(s["points"][0].value("outcome", "") == "reject");
    CHECK(s["points"][0]["value"] == 308.0);
    CHECK(s["points"][0]["resolution"].is_null());
  }
  SECTION("Yumizen H550: 20 control results of the low level") {
    const auto& r = by_device["h550"];
    CHECK(r.size() == 20);
    for (const auto& x : r) CHECK(x["series"].value("level", "") == "CTRLLOW");
  }
  SECTION("cobas c111: the control named by qc.controls") {
    const auto& r = by_device["c111"];
    REQUIRE(r.size() == 1);
    CHECK(r[0]["series"] == json({{"parameter", "413"}, {"material", "PreciControl"}, {"lot", "10134GA"}, {"level", "1"}}));
    CHECK(r[0].value("value", "") == "40.13");
  }
  SECTION("Mindray CL: control name and lot from OBR, judged by the analyser's own mean / SD, said so") {
    const auto& r = by_device["cl"];
    REQUIRE(r.size() == 1);
    CHECK(r[0]["series"].value("material", "") == "QUAL2");
    CHECK(r[0]["series"].value("lot", "") == "2222");
    CHECK(r[0]["limits"].value("source", "") == "analyser");
    CHECK(r[0]["limits"]["mean"].get<double>() == 55.0);
    CHECK(r[0]["limits"]["sd"].get<double>() == 5.0);
  }
  SECTION("the patient result of the rejected PLT run is posted rejected, HGB (no limits) missed") {
    for (const auto& x : pb["results"]) {
      if (x.value("parameter", "") == "PLT") CHECK(x.value("qc_status", "") == "rejected");
      if (x.value("parameter", "") == "HGB") CHECK(x.value("qc_status", "") == "missed");
    }
  }
}

namespace {

// A Yumizen H500-style control run (own fixture: the H500's record layout), PLT only.
std::string h500_control(const std::string& when, const std::string& plt) {
  return "H|\\^&|||H500^910YOXH02826^2.2.2.2b|||||||Q|LIS2-A2|" + when +
         "\rP|1\rO|1|PX440N||^^^DIF|R|" + when + "|||||||||CTRL^^CTRL MEDIUM||||||||||F\r"
         "R|1|^^^PLT^777-3|" + plt + "|10E3/uL|231 - 291^REFERENCE_RANGE|N||F||MATYL^^USER|" + when + "||\rL|1|N\r";
}

}  // namespace

TEST_CASE("qc e2e: the Westgard chart survives a restart (2-2s across runs after it)", "[qc][e2e]") {
  scratch_dir dir;
  write_backend_data(dir.path() / "backend.json", json::object());
  backend_proc backend(dir.path(), dir.path() / "backend.json");
  const std::uint16_t port = free_port(), health = free_port();
  json cfg = daemon_config(dir.path(), json::array({device("h500", "astm", port, "horiba-yumizen-h500")}), health);
  cfg["backend"] = {{"base_url", "http://127.0.0.1:" + std::to_string(backend.port())}};
  cfg["qc"] = {{"limits", json::array({{{"parameter", "PLT"}, {"level", "CTRL MEDIUM"}, {"mean", 261}, {"sd", 10}}})}};
  const fs::path day1 = dir.path() / "day1.astm", day2 = dir.path() / "day2.astm";
  std::ofstream(day1, std::ios::binary) << h500_control("20261201080000", "284");  // z 2.3: 1-2s warning
  std::ofstream(day2, std::ios::binary) << h500_control("20261202080000", "285");  // z 2.4: 2-2s with day 1
  {
    auto daemon = run_daemon(dir.path(), cfg, health, "first");
    play(dir.path(), "day1", port, day1);
    REQUIRE(backend.wait_posts("/interfacing/qc-results", 1).size() == 1);
    daemon->signal(SIGTERM);
    REQUIRE(daemon->wait_for(10000ms) == std::optional<int>(0));
  }
  auto daemon = run_daemon(dir.path(), cfg, health, "second");
  play(dir.path(), "day2", port, day2);
  const auto posts = backend.wait_posts("/interfacing/qc-results", 2);
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_for(10000ms) == std::optional<int>(0));
  REQUIRE(posts.size() == 2);
  const json first = json::parse(posts[0].value("body", ""))["results"][0];
  const json second = json::parse(posts[1].value("body", ""))["results"][0];
  CHECK(first.value("outcome", "") == "warning");
  CHECK(second.value("outcome", "") == "reject");
  CHECK(second["rules"] == json::array({"1-2s", "2-2s"}));
  CHECK(backend.posts("/interfacing/device-results").empty());
}

// Issue #14 point 1: a Mindray BC-5380 QC message (MSH-11 `Q`, three levels sharing OBR-3 `6`) and
// a Hitachi 7600 QC transmission (control PCCC2, no QC marker: qc.controls) reached the backend as
// patient results. Fixtures written by hand from the vendors' descriptions (tests/fixtures/qc/README.md);
// the devices are configured as a new user would: no profile.
TEST_CASE("qc e2e: BC-5380 MSH-11 Q levels sharing OBR-3 and a Hitachi 7600 PCCC2 control reach qc-results only",
          "[qc][e2e]") {
  const fs::path fixtures = fs::path(INTERFACED_FIXTURE_DIR) / "qc";
  scratch_dir dir;
  write_backend_data(dir.path() / "backend.json", json::object());
  backend_proc backend(dir.path(), dir.path() / "backend.json");
  const std::uint16_t pbc = free_port(), ph = free_port(), health = free_port();
  json cfg = daemon_config(dir.path(),
                           json::array({tcp_server_device("bc", "hl7", pbc), tcp_server_device("h7600", "astm", ph)}),
                           health);
  cfg["backend"] = {{"base_url", "http://127.0.0.1:" + std::to_string(backend.port())}};
  cfg["qc"] = {{"controls", json::array({{{"sample_id", "PCCC*"}, {"material", "PreciControl ClinChem Multi 2"},
                                          {"lot", "187654"}, {"level", "2"}}})}};
  auto daemon = run_daemon(dir.path(), cfg, health);
  play(dir.path(), "bc", pbc, fixtures / "mindray-bc5380-qc-three-levels.hl7");
  play(dir.path(), "h7600", ph, fixtures / "hitachi-h7600-qc-pccc2.astm");
  const auto posts = backend.wait_posts("/interfacing/qc-results", 2);
  daemon->signal(SIGTERM);  // delivers what the outbox still holds before it exits
  CHECK(daemon->wait_for(10000ms) == std::optional<int>(0));
  INFO(json(posts).dump(1));

  // Nothing at the patient endpoint, no rerun anywhere.
  CHECK(backend.posts("/interfacing/device-results").empty());
  CHECK(backend.posts("/sample-rerun/values").empty());
  auto by_device = qc_results(posts);

  SECTION("BC-5380: all twelve results (three levels x WBC RBC HGB PLT) are control results of QC file 6") {
    const auto& r = by_device["bc"];
    REQUIRE(r.size() == 12);
    std::map<std::string, int> per_parameter;
    for (const auto& x : r) {
      ++per_parameter[x["series"].value("parameter", "")];
      CHECK(x.value("sample_id", "") == "6");
      CHECK_FALSE(x.contains("rerun_number"));
    }
    // No code map configured: the parameter is OBX-3.1, the LOINC code the BC sends.
    CHECK(per_parameter == std::map<std::string, int>{{"6690-2", 3}, {"718-7", 3}, {"777-3", 3}, {"789-8", 3}});
    // Each level keeps its own value (three OBR groups, not one result overwritten twice).
    std::vector<std::string> wbc;
    for (const auto& x : r)
      if (x["series"].value("parameter", "") == "6690-2") wbc.push_back(x.value("value", ""));
    CHECK(wbc == std::vector<std::string>{"3.10", "7.45", "17.9"});
  }
  SECTION("Hitachi 7600: PCCC2's three results with the series qc.controls gives them") {
    const auto& r = by_device["h7600"];
    REQUIRE(r.size() == 3);
    std::vector<std::string> parameters;
    for (const auto& x : r) {
      parameters.push_back(x["series"].value("parameter", ""));
      CHECK(x["series"].value("material", "") == "PreciControl ClinChem Multi 2");
      CHECK(x["series"].value("lot", "") == "187654");
      CHECK(x["series"].value("level", "") == "2");
      CHECK(x.value("sample_id", "") == "PCCC2");
    }
    CHECK(parameters == std::vector<std::string>{"GLU", "CREA", "CHOL"});
  }
}

// Issue #14 point 1, the series: with "profile": "mindray-bc" the BC-5380 fixture's three OBR
// groups are three levels (the group's position, the profile's qc_series), so each level is judged
// against its own configured limits; qc.controls gives the lot no field carries (QC file 6).
TEST_CASE("qc e2e: BC-5380 QC over the wire with the mindray-bc profile gives three series per parameter, "
          "each judged against its level's limits",
          "[qc][e2e]") {
  const fs::path fixtures = fs::path(INTERFACED_FIXTURE_DIR) / "qc";
  scratch_dir dir;
  write_backend_data(dir.path() / "backend.json", json::object());
  backend_proc backend(dir.path(), dir.path() / "backend.json");
  const std::uint16_t pbc = free_port(), health = free_port();
  json cfg = daemon_config(dir.path(), json::array({device("bc", "hl7", pbc, "mindray-bc")}), health);
  cfg["backend"] = {{"base_url", "http://127.0.0.1:" + std::to_string(backend.port())}};
  // WBC (6690-2): 3.10, 7.45, 17.9 -> z 1, -0.2, -0.2 against their own level. HGB (718-7): 6.2,
  // 13.1, 16.4 -> z 1, 0.5, 2.5 (a 1-2s warning on level 3 only). One chart for all three levels
  // would have put 17.9 against 3.0 +- 0.1. RBC and PLT have no limits.
  const auto lim = [](const char* parameter, const char* level, double mean, double sd) {
    return json{{"parameter", parameter}, {"level", level}, {"mean", mean}, {"sd", sd}};
  };
  cfg["qc"] = {{"controls", json::array({{{"sample_id", "6"}, {"lot", "L2611"}}})},
               {"limits", json::array({lim("6690-2", "1", 3.0, 0.1), lim("6690-2", "2", 7.5, 0.25),
                                       lim("6690-2", "3", 18.0, 0.5), lim("718-7", "1", 6.0, 0.2),
                                       lim("718-7", "2", 13.0, 0.2), lim("718-7", "3", 16.0, 0.16)})}};
  auto daemon = run_daemon(dir.path(), cfg, health);
  play(dir.path(), "bc", pbc, fixtures / "mindray-bc5380-qc-three-levels.hl7");
  const auto posts = backend.wait_posts("/interfacing/qc-results", 1);
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_for(10000ms) == std::optional<int>(0));
  INFO(json(posts).dump(1));
  CHECK(backend.posts("/interfacing/device-results").empty());
  CHECK(backend.posts("/sample-rerun/values").empty());

  const auto r = qc_results(posts)["bc"];
  REQUIRE(r.size() == 12);
  std::map<std::string, std::vector<std::string>> levels;
  std::map<std::string, std::vector<json>> by_parameter;
  for (const auto& x : r) {
    const std::string parameter = x["series"].value("parameter", "");
    levels[parameter].push_back(x["series"].value("level", ""));
    by_parameter[parameter].push_back(x);
    CHECK(x["series"].value("material", "") == "X-R QC 6");
    CHECK(x["series"].value("lot", "") == "L2611");
  }
  const std::vector<std::string> three{"1", "2", "3"};
  CHECK(levels == std::map<std::string, std::vector<std::string>>{
                      {"6690-2", three}, {"718-7", three}, {"777-3", three}, {"789-8", three}});

  const auto z_of = [](const std::vector<json>& xs) {
    std::vector<double> z;
    for (const auto& x : xs) z.push_back(x["z"].is_number() ? x["z"].get<double>() : 99.0);
    return z;
  };
  const auto wbc = z_of(by_parameter["6690-2"]);
  REQUIRE(wbc.size() == 3);
  CHECK(wbc[0] == Approx(1.0));
  CHECK(wbc[1] == Approx(-0.2));
  CHECK(wbc[2] == Approx(-0.2));
  for (const auto& x : by_parameter["6690-2"]) CHECK(x.value("outcome", "") == "accept");
  const auto hgb = z_of(by_parameter["718-7"]);
  REQUIRE(hgb.size() == 3);
  CHECK(hgb[0] == Approx(1.0));
  CHECK(hgb[1] == Approx(0.5));
  CHECK(hgb[2] == Approx(2.5));
  CHECK(by_parameter["718-7"][2]["limits"] == json{{"mean", 16.0}, {"sd", 0.16}, {"source", "config"}});
  CHECK(by_parameter["718-7"][2].value("outcome", "") == "warning");
  CHECK(by_parameter["718-7"][2]["rules"] == json::array({"1-2s"}));
  CHECK(by_parameter["718-7"][0].value("outcome", "") == "accept");
  for (const auto& x : by_parameter["777-3"]) {
    CHECK(x["z"].is_null());
    CHECK(x.value("outcome", "") == "no_limits");
  }
}
