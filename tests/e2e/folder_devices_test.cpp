// Folder devices end to end (issue #15 point 4, file-reports.md "Folder devices"): the real daemon
// with a "files" device on a real folder, `interfaced backend-sim --store DIR` as backend and
// store, files written into the folder as an analyser's export would be.

#include <catch2/catch.hpp>

#include <set>

#include "file_reports_support.hpp"

using namespace interfaced::e2e;
using namespace interfaced::e2e::files;

namespace {

// LIS02-A2 records, the standard's defaults (no profile detected from this H.5): O.3 is the
// sample id, R.3's fourth component the test.
std::string astm_file(const std::string& sample, const std::string& value) {
  return "H|\\^&|||FOLDERTEST^1|||||||P|LIS2-A2|20240627135407\r"
         "P|1\r"
         "O|1|" + sample + "||^^^GLU|||||||||||||||||||||F\r"
         "R|1|^^^GLU|" + value + "|mmol/L||N||F||||20240627135407\r"
         "L|1|N\r";
}

std::string hl7_file(const std::string& sample, const std::string& value) {
  return "MSH|^~\\&|FOLDERTEST|LAB|LIS|LAB|20240627135407||ORU^R01|MSG-" + sample + "|P|2.3.1\r"
         "PID|1||P1\r"
         "OBR|1|" + sample + "|" + sample + "|CRP\r"
         "OBX|1|NM|CRP||" + value + "|mg/L|||||F|||20240627135407\r";
}

class folder_daemon {
 public:
  folder_daemon(const fs::path& dir, std::uint16_t backend_port)
      : dir_(dir), folder_(dir / "export"), health_(free_port()) {
    fs::create_directories(folder_);
    json dev = {{"id", "fd"},
                {"protocol", "files"},
                {"profile", "generic-folder-export"},
                {"link", {{"type", "folder"}, {"path", folder_.string()}, {"scan_s", 1}, {"settle_ms", 200}}},
                {"files", {{"root", folder_.string()}, {"settle_ms", 50}, {"wait_s", 20}}}};
    cfg_ = daemon_config(dir, json::array({dev}), health_);
    cfg_["backend"] = {{"base_url", "http://127.0.0.1:" + std::to_string(backend_port)},
                       {"waiting_list_poll_s", 3600},
                       {"allow_insecure_http", true}};
  }
  void start(const std::string& tag = "daemon", const std::vector<std::string>& env = {}) {
    proc_ = run_daemon(dir_, cfg_, health_, tag, env);
  }
  [[nodiscard]] child& process() { return *proc_; }
  void kill() {
    proc_->signal(SIGKILL);
    REQUIRE(proc_->wait_for(10000ms).has_value());
  }
  void stop() {
    proc_->signal(SIGTERM);
    REQUIRE(proc_->wait_for(10000ms).has_value());
  }
  // Written under a dot name, then renamed in (IN_MOVED_TO), as careful exporters do.
  void drop(const std::string& name, const std::string& bytes) const {
    const fs::path tmp = folder_ / ("." + name + ".tmp");
    std::ofstream(tmp, std::ios::binary) << bytes;
    fs::rename(tmp, folder_ / name);
  }
  [[nodiscard]] fs::path folder() const { return folder_; }
  [[nodiscard]] std::string log() const {
    return (proc_ ? proc_->err() + proc_->out() : std::string()) + "\n--- device log ---\n" +
           file_text(dir_ / "logs" / "fd.log");
  }
  [[nodiscard]] std::string device_log() const { return file_text(dir_ / "logs" / "fd.log"); }

 private:
  fs::path dir_;
  fs::path folder_;
  std::uint16_t health_;
  json cfg_;
  std::unique_ptr<child> proc_;
};

// (sample, parameter, value) of every result the backend accepted.
std::multiset<std::string> backend_results(const store_backend& be) {
  std::multiset<std::string> out;
  for (const auto& r : be.ok("/interfacing/device-results")) {
    const json body = json::parse(r["body"].get<std::string>());
    for (const auto& v : body["results"])
      out.insert(v.value("sample_id", "") + "/" + v.value("parameter", "") + "=" + v.value("value", ""));
  }
  return out;
}

bool in_done(const fs::path& folder, const std::string& name) { return fs::exists(folder / "done" / name); }

}  // namespace

TEST_CASE("folder device: an ASTM file and an HL7 file and a CSV and a PNG each reach the backend once and land in done/") {
  scratch_dir dir;
  store_backend be(dir.path());
  folder_daemon d(dir.path(), be.port());
  d.start();
  const std::string png = random_bytes(20000, 3);
  d.drop("a.astm", astm_file("S-A", "5.4"));
  d.drop("h.hl7", hl7_file("S-H", "12"));
  d.drop("export.csv", "Sample ID,Test,Result,Unit,Date\r\nS-C1,HBA1C,6.1,%,20240627\r\nS-C2,HBA1C,7.3,%,20240627\r\n");
  d.drop("S-P_20240627.png", png);
  const std::vector<std::string> names = {"a.astm", "h.hl7", "export.csv", "S-P_20240627.png"};
  const bool all_done = wait_until([&] {
    for (const auto& n : names)
      if (!in_done(d.folder(), n)) return false;
    return be.ok("/interfacing/file-report").size() >= 1 && backend_results(be).size() >= 4;
  });
  INFO(d.log());
  REQUIRE(all_done);
  std::this_thread::sleep_for(500ms);
  const auto results = backend_results(be);
  CHECK(results.count("S-A/GLU=5.4") == 1);
  CHECK(results.count("S-H/CRP=12") == 1);
  CHECK(results.count("S-C1/HBA1C=6.1") == 1);
  CHECK(results.count("S-C2/HBA1C=7.3") == 1);
  CHECK(results.size() == 4);
  const auto finals = be.ok("/interfacing/file-report");
  REQUIRE(finals.size() == 1);
  const json b = json::parse(finals[0]["body"].get<std::string>());
  CHECK(b["sample_id"] == "S-P");
  CHECK(b["parameter"] == "report");
  CHECK(b["filename"] == "S-P_20240627.png");
  CHECK(b["sha256"] == sha256_of(d.folder() / "done" / "S-P_20240627.png"));
  const auto objects = stored_objects(be.store());
  REQUIRE(objects.size() == 1);
  CHECK(objects.begin()->second == png);
  for (const auto& n : names) CHECK_FALSE(fs::exists(d.folder() / n));
  CHECK(fs::is_empty(d.folder() / "failed"));
}

TEST_CASE("folder device: a bad file lands in failed/ with its .error.txt and a coded device-log line and nothing sent") {
  scratch_dir dir;
  store_backend be(dir.path());
  folder_daemon d(dir.path(), be.port());
  d.start();
  d.drop("broken.csv", "Name,Something\r\nx,y\r\n");
  d.drop("nosample.pdf", "%PDF-1.4\n%%EOF\n");
  const bool failed = wait_until([&] {
    return fs::exists(d.folder() / "failed" / "broken.csv.error.txt") &&
           fs::exists(d.folder() / "failed" / "nosample.pdf.error.txt");
  });
  INFO(d.log());
  REQUIRE(failed);
  CHECK(fs::exists(d.folder() / "failed" / "broken.csv"));
  CHECK(fs::exists(d.folder() / "failed" / "nosample.pdf"));
  CHECK(file_text(d.folder() / "failed" / "broken.csv.error.txt").find("Sample ID") != std::string::npos);
  CHECK(file_text(d.folder() / "failed" / "nosample.pdf.error.txt").find("filename_pattern") != std::string::npos);
  CHECK(d.device_log().find("[FOLDER-003]") != std::string::npos);
  CHECK(d.device_log().find("[FOLDER-004]") != std::string::npos);
  CHECK(be.ok("/interfacing/device-results").empty());
  CHECK(be.requests("/storage/presign").empty());
}

TEST_CASE("folder device: SIGKILL between the outbox commit and the move -> restart -> moved to done/ and nothing twice") {
  scratch_dir dir;
  store_backend be(dir.path());
  folder_daemon d(dir.path(), be.port());
  // The daemon kills itself (SIGKILL) right after the commit, before the move.
  d.start("daemon-1", {"INTERFACED_TEST_FOLDER_KILL_AFTER_COMMIT=1"});
  d.drop("k.astm", astm_file("S-K", "4.2"));
  const auto st = d.process().wait_for(10000ms);
  INFO(d.log());
  REQUIRE(st.has_value());
  REQUIRE(fs::exists(d.folder() / "k.astm"));  // committed, not moved
  CHECK_FALSE(in_done(d.folder(), "k.astm"));
  d.start("daemon-2");
  const bool moved = wait_until([&] { return in_done(d.folder(), "k.astm") && backend_results(be).size() >= 1; });
  INFO(d.log());
  REQUIRE(moved);
  std::this_thread::sleep_for(1500ms);  // a second send would show within this
  CHECK(backend_results(be).count("S-K/GLU=4.2") == 1);
  CHECK(backend_results(be).size() == 1);
  CHECK(d.device_log().find("already taken") != std::string::npos);
  CHECK_FALSE(fs::exists(d.folder() / "k.astm"));
}
