// Embedded data becomes files (issue #15 point 2) over the wire: the real daemon, `interfaced
// backend-sim --store DIR` as backend and store, the analyser played by `interfaced simulate`.
// Expectations from the capture (its O.3 sample id, its M records' names and point counts, read
// independently with Python's zlib when the layout was worked out) and the spec.

#include <catch2/catch.hpp>

#include <regex>

#include "devices/file_report.hpp"
#include "file_reports_support.hpp"

using namespace interfaced::e2e;
using namespace interfaced::e2e::files;

namespace {

// A daemon with one Yumizen H500 device (tcp-server), outbox and logs in `dir`.
struct yumizen_daemon {
  fs::path dir;
  std::uint16_t health = free_port();
  std::uint16_t analyser = free_port();
  std::unique_ptr<child> proc;
  yumizen_daemon(const fs::path& d, std::uint16_t backend_port) : dir(d) {
    json dev = tcp_server_device("h500", "astm", analyser);
    dev["profile"] = "horiba-yumizen-h500";
    json cfg = daemon_config(dir, json::array({dev}), health);
    cfg["backend"] = {{"base_url", "http://127.0.0.1:" + std::to_string(backend_port)},
                      {"waiting_list_poll_s", 3600},
                      {"allow_insecure_http", true}};
    proc = run_daemon(dir, cfg, health);
  }
  void send(const fs::path& capture, const std::string& tag) {
    auto sim = simulate(dir, tag, {"--connect", "127.0.0.1:" + std::to_string(analyser)}, capture);
    const auto st = sim->wait_for(30000ms);
    INFO(sim->err());
    REQUIRE(st == std::optional<int>(0));
  }
  [[nodiscard]] std::string log() const { return proc->err() + proc->out(); }
  [[nodiscard]] std::string device_log() const { return file_text(dir / "logs" / "h500.log"); }
};

std::size_t count_of(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + what.size())) ++n;
  return n;
}

}  // namespace

TEST_CASE("embedded files: Yumizen H500 capture -> its RBC and PLT histograms stored as SVG, finalized for sample and parameter") {
  const auto captures = interfaced::test::captures_dir("astm", "the Yumizen histogram e2e test");
  if (!captures) return;
  scratch_dir dir;
  store_backend be(dir.path());
  yumizen_daemon d(dir.path(), be.port());
  d.send(*captures / "horiba-yumizen_h500-result-flags-histograms.astm", "h500");
  if (!wait_until([&] { return be.ok("/interfacing/file-report").size() >= 2; }))
    FAIL("timed out; daemon log:\n" << d.log() << "\ndevice log:\n" << d.device_log());
  INFO(d.device_log());
  const auto finals = be.ok("/interfacing/file-report");
  REQUIRE(finals.size() == 2);
  const auto objects = stored_objects(be.store());
  CHECK(objects.size() == 2);
  // M|1 RbcAlongRes: 254 channels, no markers; M|2 PltAlongRes: 255 channels, 3 markers.
  const std::map<std::string, std::pair<std::size_t, std::size_t>> expected = {{"RbcAlongRes", {254, 0}},
                                                                               {"PltAlongRes", {255, 3}}};
  std::set<std::string> params;
  for (const auto& r : finals) {
    const json b = json::parse(r["body"].get<std::string>());
    const std::string param = b["parameter"];
    params.insert(param);
    REQUIRE(expected.count(param) == 1);
    CHECK(b["sample_id"] == "2021679");  // O.3 of the capture
    CHECK(b["content_type"] == "image/svg+xml");
    REQUIRE(objects.count(b["path"].get<std::string>()) == 1);
    const std::string& svg = objects.at(b["path"].get<std::string>());
    CHECK(b["sha256"].get<std::string>().size() == 64);
    CHECK(svg.starts_with("<?xml"));
    CHECK(svg.find("<title>" + param + " histogram, sample 2021679</title>") != std::string::npos);
    const std::regex points(R"re(<polyline class="curve"[^>]* points="([^"]*)")re");
    std::smatch m;
    REQUIRE(std::regex_search(svg, m, points));
    CHECK(count_of(m[1].str(), ",") == expected.at(param).first);
    CHECK(count_of(svg, "<line class=\"marker\"") == expected.at(param).second);
  }
  CHECK(params.size() == 2);
  // The results still go as results.
  CHECK_FALSE(be.ok("/interfacing/device-results").empty());
  // The drawings were the daemon's own spool files: deleted once finalized, the folder left empty.
  CHECK(wait_until([&] { return files_under(dir.path() / "files").empty(); }, 5000ms));
  CHECK(files_under(dir.path() / "files") == std::vector<std::string>{});
}

TEST_CASE("embedded files: a histogram that does not decode is a FILE-010 warning, the results are still posted") {
  scratch_dir dir;
  store_backend be(dir.path());
  yumizen_daemon d(dir.path(), be.port());
  // The H500's record layout (own fixture); M|1's curve is not base64, M|2's inflates to nothing.
  const fs::path msg = dir.path() / "bad-histogram.astm";
  std::ofstream(msg, std::ios::binary)
      << "H|\\^&|||H500^910YOXH02826^2.2.2.2b|||||||P|LIS2-A2|20230329113000\r"
         "P|1\rO|1|PAT-9||^^^DIF|R|20230329113000|||||||||BLOOD||||||||||F\r"
         "M|1|HISTOGRAM|RBC/PLT|PltAlongRes|FLOATLE-stream/deflate:base64^Y2AAAQ4nMMXQA6IdgMghPS3IQZ61z3HVRxNHiFyDPUgOAA==|"
         "FLOATLE-stream/deflate:base64^%%%not-base64%%%\r"
         "M|2|HISTOGRAM|RBC/PLT|RbcAlongRes|FLOATLE-stream/deflate:base64^AAAA|FLOATLE-stream/deflate:base64^AAAA\r"
         "R|1|^^^PLT^777-3|250|10E3/uL|150 - 400^REFERENCE_RANGE|N||F||MATYL^^USER|20230329113000||\r"
         "L|1|N\r";
  d.send(msg, "bad");
  if (!wait_until([&] { return !be.ok("/interfacing/device-results").empty(); }))
    FAIL("timed out; daemon log:\n" << d.log());
  const std::string log = d.device_log();
  INFO(log);
  CHECK(count_of(log, "[FILE-010]") == 2);
  CHECK(log.find("PAT-9") != std::string::npos);
  CHECK(be.requests("/storage/presign").empty());
  const json body = json::parse(be.ok("/interfacing/device-results")[0]["body"].get<std::string>());
  REQUIRE(body["results"].size() == 1);
  CHECK(body["results"][0]["sample_id"] == "PAT-9");
}

TEST_CASE("embedded files: an HL7 OBX ED PDF -> the PDF stored byte for byte, the result names it instead of the base64") {
  scratch_dir dir;
  store_backend be(dir.path());
  const std::uint16_t health = free_port(), analyser = free_port();
  json cfg = daemon_config(dir.path(), json::array({tcp_server_device("lab", "hl7", analyser)}), health);
  cfg["backend"] = {{"base_url", "http://127.0.0.1:" + std::to_string(be.port())},
                    {"waiting_list_poll_s", 3600},
                    {"allow_insecure_http", true}};
  auto daemon = run_daemon(dir.path(), cfg, health);
  // A hand-made PDF (header, random body, trailer) of 48 KiB, sent as OBX-5 ^AP^PDF^Base64^...
  std::string pdf = "%PDF-1.4\n";
  std::mt19937 g(42);
  while (pdf.size() < 48 * 1024) pdf += static_cast<char>('a' + g() % 26);
  pdf += "\ntrailer<</Root 1 0 R>>\n%%EOF\n";
  const fs::path msg = dir.path() / "ed.hl7";
  std::ofstream(msg, std::ios::binary) << "MSH|^~\\&|LAB|X|LIS|Y|20260101120000||ORU^R01|MSG-ED-1|P|2.5\r"
                                          "PID|1||P-1\r"
                                          "OBR|1||S-77|CBC\r"
                                          "OBX|1|NM|GLU^Glucose||5.4|mmol/L|||||F\r"
                                          "OBX|2|ED|RPT^Report||LAB^AP^PDF^Base64^"
                                       << interfaced::devices::base64_encode(pdf) << "||||||F\r";
  auto sim = simulate(dir.path(), "ed", {"--connect", "127.0.0.1:" + std::to_string(analyser)}, msg);
  {
    const auto st = sim->wait_for(30000ms);
    INFO(sim->err());
    REQUIRE(st == std::optional<int>(0));
  }
  if (!wait_until([&] { return be.ok("/interfacing/file-report").size() >= 1; }))
    FAIL("timed out; daemon log:\n" << daemon->err() << "\ndevice log:\n" << file_text(dir.path() / "logs" / "lab.log"));
  INFO(file_text(dir.path() / "logs" / "lab.log"));
  const auto finals = be.ok("/interfacing/file-report");
  REQUIRE(finals.size() == 1);
  const json b = json::parse(finals[0]["body"].get<std::string>());
  CHECK(b["sample_id"] == "S-77");
  CHECK(b["parameter"] == "RPT");
  CHECK(b["content_type"] == "application/pdf");
  CHECK(b["filename"] == "S-77_RPT.pdf");
  const auto objects = stored_objects(be.store());
  REQUIRE(objects.count(b["path"].get<std::string>()) == 1);
  CHECK(objects.at(b["path"].get<std::string>()) == pdf);
  // The results post: GLU as sent, RPT naming the file; no base64 anywhere in it.
  REQUIRE(wait_until([&] { return !be.ok("/interfacing/device-results").empty(); }));
  std::map<std::string, std::string> values;
  std::size_t body_bytes = 0;
  for (const auto& r : be.ok("/interfacing/device-results")) {
    const std::string text = r["body"].get<std::string>();
    body_bytes += text.size();
    const json body = json::parse(text);  // named: a range-for over parse(...)["results"] would dangle
    for (const auto& v : body["results"]) values[v["parameter"].get<std::string>()] = v["value"].get<std::string>();
  }
  CHECK(values["GLU"] == "5.4");
  CHECK(values["RPT"] == "S-77_RPT.pdf");
  CHECK(body_bytes < 8 * 1024);
  // The PDF the daemon wrote out is deleted once its report is finalized.
  CHECK(wait_until([&] { return files_under(dir.path() / "files").empty(); }, 5000ms));
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_for(10000ms) == std::optional<int>(0));
}

namespace {

// The XN test daemon (file_reports_support.hpp) given the Yumizen H500's profile: its histograms
// are drawn into the spool folder.
void make_yumizen(files_daemon& d) { d.config()["devices"][0]["profile"] = "horiba-yumizen-h500"; }

}  // namespace

TEST_CASE("embedded files: SIGKILL between the finalized commit and the spool file's deletion -> nothing left after restart") {
  const auto captures = interfaced::test::captures_dir("astm", "the spool sweep e2e test");
  if (!captures) return;
  scratch_dir dir;
  store_backend be(dir.path());
  be.fail({{"path", "/interfacing/file-report"}, {"drop", true}});  // stops both reports before finalize
  files_daemon d(dir.path(), be.port(), dir.path() / "unused-root");
  make_yumizen(d);
  d.start();
  d.send(*captures / "horiba-yumizen_h500-result-flags-histograms.astm");
  wait_or_fail(d, [&] {
    return d.stages() == std::vector<std::string>{"reconciled", "reconciled"} &&
           be.requests("/interfacing/file-report").size() >= 2;
  });
  d.kill();
  REQUIRE(d.spool_files().size() == 2);  // the two SVGs, written before their reports were stored
  // The state a SIGKILL right after the finalized commit leaves: the stage committed, the message
  // not yet marked, the file not yet deleted; and a drawing whose append never committed.
  d.outbox_exec("UPDATE file_jobs SET stage = 'finalized'");
  write_file(dir.path() / "files" / "xn" / "xn-9-1" / "0" / "never-stored.svg.part", "<svg/>");
  const auto finalize_posts = be.requests("/interfacing/file-report").size();
  be.heal();
  d.start("daemon2");
  wait_or_fail(d, [&] { return d.file_report_states() == std::vector<std::string>{"delivered", "delivered"}; });
  INFO(d.log());
  CHECK(wait_until([&] { return d.spool_files().empty(); }, 5000ms));
  CHECK(d.spool_files() == std::vector<std::string>{});
  // Finalized before the crash: not posted again.
  CHECK(be.requests("/interfacing/file-report").size() == finalize_posts);
}

TEST_CASE("embedded files: a dead-lettered report keeps its spool file (outbox retry sends it again)") {
  const auto captures = interfaced::test::captures_dir("astm", "the spool dead-letter e2e test");
  if (!captures) return;
  scratch_dir dir;
  store_backend be(dir.path());
  be.fail({{"path", "/storage/presign"}, {"status", 422}, {"body", R"({"error":"refused"})"}});
  files_daemon d(dir.path(), be.port(), dir.path() / "unused-root");
  make_yumizen(d);
  d.start();
  d.send(*captures / "horiba-yumizen_h500-result-flags-histograms.astm");
  wait_or_fail(d, [&] { return d.file_report_states() == std::vector<std::string>{"dead", "dead"}; });
  INFO(d.log());
  CHECK(d.spool_files().size() == 2);
  // A restart's sweep keeps them too: the dead letters still name them.
  d.stop();
  d.start("daemon2");
  std::this_thread::sleep_for(500ms);
  CHECK(d.spool_files().size() == 2);
  // Retried once the backend takes them: sent, then deleted.
  be.heal();
  child retry({interfaced::test::interfaced_binary().string(), "outbox", "--file", d.outbox().string(), "retry", "--dead"},
              dir.path() / "retry.out", dir.path() / "retry.err");
  REQUIRE(retry.wait_for(10000ms) == std::optional<int>(0));
  wait_or_fail(d, [&] { return be.ok("/interfacing/file-report").size() == 2; }, 30000ms);
  CHECK(wait_until([&] { return d.spool_files().empty(); }, 5000ms));
}
