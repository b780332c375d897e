// File-type reports end to end (issue #15, file-reports.md): the real daemon, `interfaced
// backend-sim --store DIR` as backend and store, the analyser played by `interfaced simulate`.
// Every fault test is named after the issue's list.

#include <catch2/catch.hpp>

#include "file_reports_support.hpp"

using namespace interfaced::e2e;
using namespace interfaced::e2e::files;

namespace {

const char* const image = "2024_06_27_13_54_27_WDF.PNG";

// The one-file scenario most fault tests share: sample S-1, parameter SCAT_WDF, a 300 KiB image.
struct one_file {
  scratch_dir dir;
  fs::path root = dir.path() / "xn-share";
  std::string bytes = random_bytes(300 * 1024, 7);
  fs::path file = root / "PNG" / "20240628" / image;
  one_file() { write_file(file, bytes); }
  fs::path message() { return one_file_message(dir.path(), "S-1", "SCAT_WDF", image); }
};

// That scenario running: the backend (with `faults` set before the daemon starts), the daemon,
// and the one message sent.
struct one_file_run : one_file {
  store_backend be;
  files_daemon d;
  // `store_options`: more backend-sim arguments after `--store DIR/store`.
  explicit one_file_run(const std::vector<json>& faults = {}, const std::vector<std::string>& store_options = {})
      : be(dir.path(), with_store(store_options)), d(dir.path(), be.port(), root) {
    for (const auto& f : faults) be.fail(f);
    d.start();
    d.send(message());
  }

 private:
  std::vector<std::string> with_store(const std::vector<std::string>& more) const {
    std::vector<std::string> args{"--store", (dir.path() / "store").string()};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
};

}  // namespace

TEST_CASE("file reports: Sysmex XN capture, four PNGs under files.root -> four stored objects and four finalize posts (backend-sim --store)") {
  const auto captures = interfaced::test::captures_dir("astm", "the Sysmex XN file-report e2e test");
  if (!captures) return;
  const fs::path capture = *captures / "sysmex-xn550-cbc-result.astm";
  scratch_dir dir;
  const fs::path root = dir.path() / "xn-share";
  // R.38-R.41 of the capture: parameter -> the file its value names.
  const std::map<std::string, std::string> expected = {
      {"SCAT_WDF", "2024_06_27_13_54_27_WDF.PNG"},
      {"SCAT_WDF-CBC", "2024_06_27_13_54_27_WDF_CBC.PNG"},
      {"DIST_RBC", "2024_06_27_13_54_27_RBC.PNG"},
      {"DIST_PLT", "2024_06_27_13_54_27_PLT.PNG"}};
  std::map<std::string, std::string> sha;  // file name -> sha256sum
  unsigned seed = 1;
  for (const auto& [param, name] : expected) {
    const fs::path f = root / "PNG" / "20240628" / name;
    write_file(f, random_bytes(40000 + seed * 1000, seed));
    ++seed;
    sha[name] = sha256_of(f);
    REQUIRE(sha[name].size() == 64);
  }
  store_backend be(dir.path());
  files_daemon d(dir.path(), be.port(), root);
  d.start();
  d.send(capture);
  wait_or_fail(d, [&] { return be.ok("/interfacing/file-report").size() >= 4; });
  std::this_thread::sleep_for(300ms);
  const auto finals = be.ok("/interfacing/file-report");
  INFO(d.log());
  REQUIRE(finals.size() == 4);
  std::set<std::string> params;
  const auto objects = stored_objects(be.store());
  CHECK(objects.size() == 4);
  for (const auto& r : finals) {
    const json b = json::parse(r["body"].get<std::string>());
    const std::string param = b["parameter"];
    params.insert(param);
    REQUIRE(expected.count(param) == 1);
    CHECK(b["sample_id"] == "27");  // O.3.3 of the capture, right-aligned in 22 characters
    CHECK(b["filename"] == expected.at(param));
    CHECK(b["content_type"] == "image/png");
    CHECK(b["sha256"] == sha[expected.at(param)]);
    // The object at the path the finalize names holds the file byte for byte.
    REQUIRE(objects.count(b["path"].get<std::string>()) == 1);
    CHECK(objects.at(b["path"].get<std::string>()) ==
          file_text(root / "PNG" / "20240628" / expected.at(param)));
    CHECK(r["idempotency_key"].get<std::string>().ends_with(".finalize"));
  }
  CHECK(params.size() == 4);
  CHECK(be.ok("/storage/presign").size() == 4);
  CHECK(be.ok("/store/upload").size() == 4);
  CHECK(be.ok("/storage/reconcile").size() == 4);
  // The results themselves still go as results, the value as sent.
  bool value_forwarded = false;
  for (const auto& r : be.ok("/interfacing/device-results")) {
    const json body = json::parse(r["body"].get<std::string>());
    for (const auto& v : body["results"])
      if (v["parameter"] == "SCAT_WDF" && v["value"] == "PNG\\20240628\\2024_06_27_13_54_27_WDF.PNG") value_forwarded = true;
  }
  CHECK(value_forwarded);
}

TEST_CASE("file reports: store down then up -> upload retried with the same fields, not presigned again") {
  one_file_run s(std::vector<json>{json{{"path", "/store/upload"}, {"status", 503}, {"count", 2}}});
  auto& be = s.be;
  auto& d = s.d;
  wait_or_fail(d, [&] { return be.ok("/interfacing/file-report").size() == 1; });
  INFO(d.log());
  const auto uploads = be.requests("/store/upload");
  CHECK(uploads.size() == 3);
  CHECK(be.ok("/store/upload").size() == 1);
  CHECK(be.requests("/storage/presign").size() == 1);
  CHECK(stored_objects(be.store()).size() == 1);
  CHECK(d.log().find("[FILE-007]") != std::string::npos);
}

TEST_CASE("file reports: expired policy (403) -> a new presign, never the same fields") {
  one_file_run s(std::vector<json>{json{{"path", "/store/upload"},
                       {"status", 403},
                       {"count", 1},
                       {"body", "<Error><Code>AccessDenied</Code><Message>Invalid according to Policy: Policy expired.</Message></Error>"}}});
  auto& be = s.be;
  auto& d = s.d;
  wait_or_fail(d, [&] { return be.ok("/interfacing/file-report").size() == 1; });
  INFO(d.log());
  const auto presigns = be.ok("/storage/presign");
  REQUIRE(presigns.size() == 2);
  // A second presign is a new request (its own Idempotency-Key), answered with new fields.
  CHECK(presigns[0]["idempotency_key"].get<std::string>().ends_with(".presign"));
  CHECK(presigns[1]["idempotency_key"].get<std::string>().ends_with(".presign-2"));
  const auto uploads = be.requests("/store/upload");
  REQUIRE(uploads.size() == 2);
  CHECK(uploads[0]["idempotency_key"] != uploads[1]["idempotency_key"]);
  CHECK(stored_objects(be.store()).size() == 1);
  CHECK(d.log().find("[FILE-006]") != std::string::npos);
}

TEST_CASE("file reports: a policy that expired while the store was down -> a new presign before uploading") {
  one_file_run s(std::vector<json>{json{{"path", "/store/upload"}, {"drop", true}, {"count", 3}}}, {"--presign-ttl", "3"});
  auto& be = s.be;
  auto& d = s.d;
  wait_or_fail(d, [&] { return be.ok("/interfacing/file-report").size() == 1; }, 30000ms);
  INFO(d.log());
  CHECK(be.ok("/storage/presign").size() >= 2);
  CHECK(be.ok("/store/upload").size() == 1);
  CHECK(stored_objects(be.store()).size() == 1);
}

TEST_CASE("file reports: finalize 5xx then 2xx -> finalized without a second upload") {
  one_file_run s(std::vector<json>{json{{"path", "/interfacing/file-report"}, {"status", 502}, {"count", 2}}});
  auto& be = s.be;
  auto& d = s.d;
  wait_or_fail(d, [&] { return be.ok("/interfacing/file-report").size() == 1; });
  INFO(d.log());
  CHECK(be.requests("/interfacing/file-report").size() == 3);
  CHECK(be.requests("/store/upload").size() == 1);
  CHECK(be.requests("/storage/presign").size() == 1);
  wait_or_fail(d, [&] { return d.file_report_states() == std::vector<std::string>{"delivered"}; }, 5000ms);
  CHECK(d.stages() == std::vector<std::string>{"finalized"});
}

TEST_CASE("file reports: finalize 4xx -> orphan dead letter listed by outbox list --orphans") {
  one_file_run s(std::vector<json>{json{{"path", "/interfacing/file-report"}, {"status", 422}, {"body", R"({"error":"no such report"})"}}});
  auto& be = s.be;
  auto& d = s.d;
  wait_or_fail(d, [&] { return d.file_report_states() == std::vector<std::string>{"dead"}; });
  INFO(d.log());
  CHECK(be.requests("/interfacing/file-report").size() == 1);
  const auto objects = stored_objects(be.store());
  REQUIRE(objects.size() == 1);
  CHECK(d.log().find("[FILE-004]") != std::string::npos);
  child list({interfaced::test::interfaced_binary().string(), "outbox", "--file", d.outbox().string(), "list", "--orphans",
              "--json"},
             s.dir.path() / "orphans.out", s.dir.path() / "orphans.err");
  REQUIRE(list.wait_for(10000ms) == std::optional<int>(0));
  const json rows = json::parse(list.out());
  REQUIRE(rows.size() == 1);
  CHECK(rows[0]["kind"] == "file_report");
  CHECK(rows[0]["orphan_path"] == objects.begin()->first);
  // A dead letter that stored nothing is not an orphan: the plain list has more than --orphans.
  child all({interfaced::test::interfaced_binary().string(), "outbox", "--file", d.outbox().string(), "list", "--state",
             "dead", "--json"},
            s.dir.path() / "dead.out", s.dir.path() / "dead.err");
  REQUIRE(all.wait_for(10000ms) == std::optional<int>(0));
  CHECK(json::parse(all.out()).size() == 1);
  // outbox show names the stage reached and the stored object.
  child show({interfaced::test::interfaced_binary().string(), "outbox", "--file", d.outbox().string(), "show",
              rows[0]["id"].get<std::string>(), "--json"},
             s.dir.path() / "show.out", s.dir.path() / "show.err");
  REQUIRE(show.wait_for(10000ms) == std::optional<int>(0));
  const json shown = json::parse(show.out());
  CHECK(shown["file_job"]["stage"] == "reconciled");
  CHECK(shown["file_job"]["path"] == objects.begin()->first);
  CHECK(shown["file_job"]["size"] == s.bytes.size());
}

TEST_CASE("file reports: SIGKILL between every pair of stages -> resumes, one object, one finalize") {
  // The request that cannot get through while the daemon is killed, and the stage committed then.
  const std::vector<std::pair<std::string, std::string>> cuts = {{"/storage/presign", "prepared"},
                                                                 {"/store/upload", "presigned"},
                                                                 {"/storage/reconcile", "uploaded"},
                                                                 {"/interfacing/file-report", "reconciled"}};
  for (const auto& [blocked, stage] : cuts) {
    DYNAMIC_SECTION("killed with stage " << stage << " committed") {
      one_file_run s(std::vector<json>{json{{"path", blocked}, {"drop", true}}});
      auto& be = s.be;
      auto& d = s.d;
      wait_or_fail(d, [&] { return d.stages() == std::vector<std::string>{stage} && !be.requests(blocked).empty(); });
      d.kill();
      const auto uploads_before = be.requests("/store/upload").size();
      be.heal();
      d.start("daemon2");
      wait_or_fail(d, [&] { return be.ok("/interfacing/file-report").size() == 1; });
      INFO(d.log());
      std::this_thread::sleep_for(300ms);
      CHECK(be.ok("/interfacing/file-report").size() == 1);
      CHECK(be.ok("/store/upload").size() == 1);
      CHECK(stored_objects(be.store()).size() == 1);
      // Never presigned again while the fields are valid; never uploaded again once uploaded.
      CHECK(be.ok("/storage/presign").size() == 1);
      if (stage == "uploaded" || stage == "reconciled") CHECK(be.requests("/store/upload").size() == uploads_before);
      wait_or_fail(d, [&] { return d.stages() == std::vector<std::string>{"finalized"}; }, 5000ms);
    }
  }
}

TEST_CASE("file reports: encrypted PDF refused before presign, no request made") {
  scratch_dir dir;
  const fs::path root = dir.path() / "xn-share";
  write_file(root / "PNG" / "20240628" / "report.pdf",
             "%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Size 9 /Root 1 0 R /Encrypt 8 0 R >>\n"
             "startxref\n0\n%%EOF\n");
  store_backend be(dir.path());
  files_daemon d(dir.path(), be.port(), root);
  d.start();
  d.send(one_file_message(dir.path(), "S-2", "REPORT", "report.pdf"));
  wait_or_fail(d, [&] { return d.file_report_states() == std::vector<std::string>{"dead"}; });
  INFO(d.log());
  CHECK(be.requests("/storage/presign").empty());
  CHECK(be.requests("/store/upload").empty());
  CHECK(be.requests("/interfacing/file-report").empty());
  CHECK(d.log().find("encrypted PDF") != std::string::npos);
  CHECK(d.log().find("[FILE-002]") != std::string::npos);
  // And a line in the device's own log naming the rule.
  const std::string dev_log = d.device_log();
  CHECK(dev_log.find("refused before presign by the rule encrypted PDF") != std::string::npos);
  CHECK(dev_log.find("[FILE-002]") != std::string::npos);
  CHECK(d.stages().empty());
}

TEST_CASE("file reports: over files.max_bytes or outside files.allowed_types -> refused before presign naming the rule") {
  scratch_dir dir;
  const fs::path root = dir.path() / "xn-share";
  write_file(root / "PNG" / "20240628" / "big.PNG", random_bytes(5000, 3));
  write_file(root / "PNG" / "20240628" / "run.csv", "a,b\n1,2\n");
  store_backend be(dir.path());
  files_daemon d(dir.path(), be.port(), root, {{"max_bytes", 4096}, {"allowed_types", {"image/*"}}});
  d.start();
  d.send(one_file_message(dir.path(), "S-3", "SCAT_WDF", "big.PNG"));
  d.send(one_file_message(dir.path(), "S-4", "EXPORT", "run.csv"));
  wait_or_fail(d, [&] { return d.file_report_states() == std::vector<std::string>{"dead", "dead"}; });
  INFO(d.log());
  CHECK(be.requests("/storage/presign").empty());
  CHECK(d.log().find("files.max_bytes") != std::string::npos);
  CHECK(d.log().find("files.allowed_types") != std::string::npos);
}

TEST_CASE("file reports: file growing between two upload attempts -> upload refused, nothing stored") {
  // The first upload is lost (connection dropped): the file grows before the second one.
  one_file_run s(std::vector<json>{json{{"path", "/store/upload"}, {"drop", true}, {"count", 1}}});
  auto& be = s.be;
  auto& d = s.d;
  wait_or_fail(d, [&] { return be.requests("/store/upload").size() == 1; });
  std::ofstream(s.file, std::ios::binary | std::ios::app) << "more bytes the analyser is still writing";
  wait_or_fail(d, [&] { return d.file_report_states() == std::vector<std::string>{"dead"}; });
  INFO(d.log());
  CHECK(be.ok("/store/upload").empty());
  CHECK(stored_objects(be.store()).empty());
  CHECK(be.requests("/interfacing/file-report").empty());
  CHECK(d.log().find("[FILE-003]") != std::string::npos);
}

TEST_CASE("file reports: a file that never comes -> dead letter naming it after files.wait_s") {
  scratch_dir dir;
  const fs::path root = dir.path() / "xn-share";
  fs::create_directories(root);
  store_backend be(dir.path());
  files_daemon d(dir.path(), be.port(), root, {{"wait_s", 1}});
  d.start();
  d.send(one_file_message(dir.path(), "S-5", "SCAT_WDF", "missing.PNG"));
  wait_or_fail(d, [&] { return d.file_report_states() == std::vector<std::string>{"dead"}; }, 15000ms);
  INFO(d.log());
  CHECK(d.log().find((root / "PNG" / "20240628" / "missing.PNG").string() + " never came") != std::string::npos);
  CHECK(d.log().find("[FILE-001]") != std::string::npos);
  CHECK(be.requests("/storage/presign").empty());
}

TEST_CASE("file reports: files.mode inline posts content_base64, no presign") {
  scratch_dir dir;
  const fs::path root = dir.path() / "xn-share";
  write_file(root / "PNG" / "20240628" / "h.PNG", "hello");
  store_backend be(dir.path());
  files_daemon d(dir.path(), be.port(), root, {{"mode", "inline"}});
  d.start();
  d.send(one_file_message(dir.path(), "S-6", "SCAT_WDF", "h.PNG"));
  wait_or_fail(d, [&] { return be.ok("/interfacing/file-report").size() == 1; });
  const json b = json::parse(be.ok("/interfacing/file-report")[0]["body"].get<std::string>());
  CHECK(b["content_base64"] == "aGVsbG8=");  // RFC 4648 base64 of "hello"
  CHECK(b["sha256"] == sha256_of(root / "PNG" / "20240628" / "h.PNG"));
  CHECK(b["sample_id"] == "S-6");
  CHECK_FALSE(b.contains("path"));
  CHECK(be.requests("/storage/presign").empty());
}

TEST_CASE("file reports: Sysmex XN capture, four PNGs -> four objects in s3rver (real S3, SigV4 POST policies)") {
  const auto captures = interfaced::test::captures_dir("astm", "the Sysmex XN S3 file-report e2e test");
  if (!captures) return;
  const auto bin = s3rver_binary();
  if (!bin) return;
  scratch_dir dir;
  const fs::path root = dir.path() / "xn-share";
  const std::map<std::string, std::string> expected = {
      {"SCAT_WDF", "2024_06_27_13_54_27_WDF.PNG"},
      {"SCAT_WDF-CBC", "2024_06_27_13_54_27_WDF_CBC.PNG"},
      {"DIST_RBC", "2024_06_27_13_54_27_RBC.PNG"},
      {"DIST_PLT", "2024_06_27_13_54_27_PLT.PNG"}};
  unsigned seed = 11;
  for (const auto& [param, name] : expected) {
    write_file(root / "PNG" / "20240628" / name, random_bytes(30000 + seed * 7, seed));
    ++seed;
  }
  s3rver_store s3(*bin, dir.path(), "lab-reports");
  std::ofstream(dir.path() / "s3-secret") << "S3RVER\n";
  store_backend be(dir.path(), {"--s3", s3.url(), "--s3-bucket", "lab-reports", "--s3-key", "S3RVER", "--s3-secret-file",
                                (dir.path() / "s3-secret").string()});
  files_daemon d(dir.path(), be.port(), root);
  d.start();
  d.send(*captures / "sysmex-xn550-cbc-result.astm");
  if (!wait_until([&] { return be.ok("/interfacing/file-report").size() >= 4; }))
    FAIL("timed out; daemon log:\n" << d.log());
  const auto objects = s3.objects();
  REQUIRE(objects.size() == 4);
  for (const auto& r : be.ok("/interfacing/file-report")) {
    const json b = json::parse(r["body"].get<std::string>());
    const std::string param = b["parameter"];
    REQUIRE(expected.count(param) == 1);
    CHECK(b["sample_id"] == "27");
    const fs::path src = root / "PNG" / "20240628" / expected.at(param);
    CHECK(b["sha256"] == sha256_of(src));
    REQUIRE(objects.count(b["path"].get<std::string>()) == 1);
    CHECK(objects.at(b["path"].get<std::string>()) == file_text(src));
  }
}

TEST_CASE("file reports: s3rver down then up -> upload retried with the same fields, not presigned again") {
  const auto bin = s3rver_binary();
  if (!bin) return;
  one_file s;
  auto s3 = std::make_unique<s3rver_store>(*bin, s.dir.path(), "lab-reports");
  const std::string url = s3->url();
  s3->stop();  // the store is down when the daemon first uploads
  std::ofstream(s.dir.path() / "s3-secret") << "S3RVER\n";
  store_backend be(s.dir.path(), {"--s3", url, "--s3-bucket", "lab-reports", "--s3-key", "S3RVER", "--s3-secret-file",
                                  (s.dir.path() / "s3-secret").string()});
  files_daemon d(s.dir.path(), be.port(), s.root);
  d.start();
  d.send(s.message());
  if (!wait_until([&] { return d.log().find("upload failed") != std::string::npos; }))
    FAIL("timed out; daemon log:\n" << d.log());
  // Up again on the same port and folder.
  const auto port = static_cast<std::uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
  child again({bin->string(), "-d", (s.dir.path() / "s3").string(), "-a", "127.0.0.1", "-p", std::to_string(port),
               "--configure-bucket", "lab-reports"},
              s.dir.path() / "s3rver2.out", s.dir.path() / "s3rver2.err");
  if (!wait_until([&] { return be.ok("/interfacing/file-report").size() == 1; }, 30000ms))
    FAIL("timed out; daemon log:\n" << d.log() << again.err());
  CHECK(be.ok("/storage/presign").size() == 1);
  std::size_t objects = 0;
  for (const auto& [rel, bytes] : stored_objects(s.dir.path() / "s3" / "lab-reports"))
    if (rel.ends_with("._S3rver_object")) {
      ++objects;
      CHECK(bytes == s.bytes);
    }
  CHECK(objects == 1);
  again.signal(SIGTERM);
  (void)again.wait_for(5000ms);
}

TEST_CASE("file reports: backend-sim replays a presign answer for a repeated Idempotency-Key (a crash before the fields were recorded)") {
  scratch_dir dir;
  store_backend be(dir.path());
  auto presign = [&] {
    tcp_conn c(be.port());
    REQUIRE(c.ok());
    const std::string body = R"({"file_category":"FileTypeReport","filename":"a.png","content_type":"image/png","size":5})";
    c.send("POST /storage/presign HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
           "Idempotency-Key: m-1.presign\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    const std::string reply = c.read_all(5000ms);
    const auto at = reply.find("\r\n\r\n");
    REQUIRE(at != std::string::npos);
    return json::parse(reply.substr(at + 4));
  };
  const json first = presign();
  std::this_thread::sleep_for(1100ms);  // a new presign would carry a new x-amz-date
  const json again = presign();
  REQUIRE(first.contains("fields"));
  CHECK(again["url"] == first["url"]);
  CHECK(again["fields"] == first["fields"]);
}

TEST_CASE("file reports: file growing during upload -> refused while the upload is in flight, no finalize, a dead letter naming the file and the rule") {
  const auto bin = s3rver_binary();
  if (!bin) return;
  scratch_dir dir;
  const fs::path root = dir.path() / "xn-share";
  const fs::path file = root / "PNG" / "20240628" / image;
  // 8 MiB through a relay passing ~1.6 MB/s: several seconds on the wire, more than the sender's
  // socket buffers (4 MiB at most) can hide, so the last piece is still unread when it grows.
  write_file(file, random_bytes(8 * 1024 * 1024, 5));
  s3rver_store s3(*bin, dir.path(), "lab-reports");
  slow_relay relay(s3.port(), 16 * 1024, 10ms);
  std::ofstream(dir.path() / "s3-secret") << "S3RVER\n";
  store_backend be(dir.path(), {"--s3", "http://127.0.0.1:" + std::to_string(relay.port()), "--s3-bucket", "lab-reports",
                                "--s3-key", "S3RVER", "--s3-secret-file", (dir.path() / "s3-secret").string()});
  files_daemon d(dir.path(), be.port(), root);
  d.start();
  d.send(one_file_message(dir.path(), "S-1", "SCAT_WDF", image));
  // In flight: the store has had part of the body, not all of it.
  wait_or_fail(d, [&] { return relay.forwarded() > 1024 * 1024; }, 30000ms);
  const std::size_t before = relay.forwarded();
  std::ofstream(file, std::ios::binary | std::ios::app) << "more bytes the analyser is still writing";
  INFO("forwarded when the file grew: " << before);
  CHECK(before < 8 * 1024 * 1024);
  wait_or_fail(d, [&] { return d.file_report_states() == std::vector<std::string>{"dead"}; }, 30000ms);
  INFO(d.log());
  CHECK(relay.forwarded() < 8 * 1024 * 1024);  // the last piece never went
  CHECK(be.requests("/storage/presign").size() == 1);
  CHECK(be.requests("/interfacing/file-report").empty());
  CHECK(be.requests("/storage/reconcile").empty());
  // The file's bytes never reached the store whole. (s3rver keeps what it got of a body whose
  // connection closed before its Content-Length, where S3 answers IncompleteBody; so what is
  // asserted is that no object is the file, not that the bucket is empty.)
  for (const auto& [key, bytes] : s3.objects()) {
    INFO(key << ": " << bytes.size() << " bytes");
    CHECK(bytes.size() < 8 * 1024 * 1024);
  }
  CHECK(d.log().find("[FILE-003]") != std::string::npos);
  CHECK(d.stages() == std::vector<std::string>{"presigned"});
  // The dead letter names the file and why it was refused.
  child list({interfaced::test::interfaced_binary().string(), "outbox", "--file", d.outbox().string(), "list", "--state",
              "dead", "--json"},
             dir.path() / "dead.out", dir.path() / "dead.err");
  REQUIRE(list.wait_for(10000ms) == std::optional<int>(0));
  const json rows = json::parse(list.out());
  REQUIRE(rows.size() == 1);
  child show({interfaced::test::interfaced_binary().string(), "outbox", "--file", d.outbox().string(), "show",
              rows[0]["id"].get<std::string>(), "--json"},
             dir.path() / "show.out", dir.path() / "show.err");
  REQUIRE(show.wait_for(10000ms) == std::optional<int>(0));
  const std::string why = json::parse(show.out())["last_response"].get<std::string>();
  CHECK(why.find(file.string()) != std::string::npos);
  CHECK(why.find("changed during the upload") != std::string::npos);
  // The analyser's own file is never deleted by the daemon.
  CHECK(fs::exists(file));
}

TEST_CASE("file reports: backend 401 on presign and 403 on finalize -> delivery held for credentials (BACKEND-002), then resumed, no dead letter") {
  one_file_run s(std::vector<json>{json{{"path", "/storage/presign"}, {"status", 401}, {"count", 1}},
                  json{{"path", "/interfacing/file-report"}, {"status", 403}, {"count", 1}}});
  auto& be = s.be;
  auto& d = s.d;
  wait_or_fail(d, [&] { return d.file_report_states() == std::vector<std::string>{"delivered"}; }, 30000ms);
  INFO(d.log());
  // Each refused stage was asked again after the hold, at the same stage: one upload only.
  CHECK(be.requests("/storage/presign").size() == 2);
  CHECK(be.ok("/storage/presign").size() == 1);
  CHECK(be.requests("/store/upload").size() == 1);
  CHECK(be.requests("/interfacing/file-report").size() == 2);
  CHECK(be.ok("/interfacing/file-report").size() == 1);
  CHECK(stored_objects(be.store()).size() == 1);
  const std::string log = d.log();
  CHECK(log.find("refuses our credentials") != std::string::npos);
  CHECK(log.find("delivery resumed") != std::string::npos);
  CHECK(log.find("[BACKEND-002]") != std::string::npos);
  CHECK(log.find("[FILE-004]") == std::string::npos);
  CHECK(log.find("[FILE-005]") == std::string::npos);
  // The analyser's own file stays where it was.
  CHECK(fs::exists(s.file));
}

TEST_CASE("file reports: rerun values that name a file -> a file-type report under the rerun's report") {
  scratch_dir dir;
  const fs::path root = dir.path() / "xn-share";
  const std::string bytes = random_bytes(50000, 9);
  write_file(root / "PNG" / "20240628" / image, bytes);
  // The backend lists a rerun of SCAT_WDF for S-R (report R-9): the XN's answer is a rerun value.
  const json data = {{"waiting_list",
                      json::array({{{"sample_id", "S-R"},
                                    {"lab_report_id", "R-9"},
                                    {"sampleRedrawFlag", 0},
                                    {"rerunNumber", 1},
                                    {"parameters", {"WBC", "SCAT_WDF"}},
                                    {"rerun_params", {"SCAT_WDF"}},
                                    {"priority", "routine"}}})},
                     {"parameters", json::array()}};
  store_backend be(dir.path(), {}, data);
  files_daemon d(dir.path(), be.port(), root);
  d.start();
  wait_or_fail(d, [&] { return d.device_log().find("waiting list refreshed") != std::string::npos; });
  d.send(one_file_message(dir.path(), "S-R", "SCAT_WDF", image));
  wait_or_fail(d, [&] { return be.ok("/interfacing/file-report").size() == 1; });
  INFO(d.log());
  // The value went as a rerun value, not as a first result.
  bool rerun_value = false;
  for (const auto& r : be.ok("/sample-rerun/values")) {
    const json body = json::parse(r["body"].get<std::string>());
    for (const auto& v : body["values"])
      if (v["parameter"] == "SCAT_WDF" && body["lab_report_id"] == "R-9") rerun_value = true;
  }
  CHECK(rerun_value);
  const json b = json::parse(be.ok("/interfacing/file-report")[0]["body"].get<std::string>());
  CHECK(b["sample_id"] == "S-R");
  CHECK(b["lab_report_id"] == "R-9");
  CHECK(b["parameter"] == "SCAT_WDF");
  CHECK(b["filename"] == image);
  const auto objects = stored_objects(be.store());
  REQUIRE(objects.count(b["path"].get<std::string>()) == 1);
  CHECK(objects.at(b["path"].get<std::string>()) == bytes);
}
