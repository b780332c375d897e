// `interfaced replay` as a contract: exit statuses, stderr lines naming file and byte offset, the
// rest of a bad file still processed; and the ingest path independent of how bytes are chunked.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "devices/astm_ingest.hpp"
#include "devices/capture_input.hpp"
#include "daemon/result_json.hpp"
#include "parsers/astm/frame_decoder.hpp"
#include "replay_support.hpp"
#include "support/scratch_dir.hpp"

using namespace interfaced;
using interfaced::test::replay;

namespace {

// A file holding `bytes`, named `name` (replay reads the extension), removed with its scratch dir.
struct temp_file {
  interfaced::test::scratch_dir dir;
  std::filesystem::path path;
  explicit temp_file(const std::string& bytes, const std::string& name = "capture.astm") : path(dir / name) {
    std::ofstream(path, std::ios::binary) << bytes;
  }
};

// H..L for one sample, as records ending CR.
std::string records(const std::string& sample, const std::string& value) {
  return "H|\\^&|||TEST-ANALYSER\rP|1\rO|1|" + sample + "||^^^GLU\rR|1|^^^GLU|" + value +
         "|mmol/L||N||F||||20260101120000\rL|1|N\r";
}

std::string session(const std::string& text) {
  std::string out = "\x05";
  out += astm::encode_frame(1, text, true);
  out += "\x04";
  return out;
}

// Everything the ASTM ingest produced, as comparable text.
std::string ingest_log(const std::string& bytes, std::size_t chunk) {
  devices::profile_catalog none;
  astm::link_options lo;
  lo.accept_frames_without_enq = true;
  devices::astm_ingest in(&none, nullptr, "dev", lo);
  std::string log;
  for (std::size_t i = 0; i < bytes.size(); i += chunk)
    (void)in.feed(std::string_view(bytes).substr(i, chunk));
  in.finish();
  for (auto& m : in.take_messages())
    for (const auto& r : m.batch.results) log += daemon::to_json(r, rerun::lab_zone{}).dump() + "\n";
  for (const auto& p : in.take_problems()) log += std::to_string(p.offset) + " " + p.what + "\n";
  return log;
}

}  // namespace

TEST_CASE("replay CLI: a bad checksum names file and byte offset, the other message still arrives") {
  std::string good1 = session(records("S1", "5.1"));
  std::string bad = session(records("S2", "6.2"));
  // Corrupt one checksum digit of the second session's frame: the frame ends "...<ETX>C1C2<CR><LF>".
  const std::size_t etx = bad.rfind('\x03');
  bad[etx + 1] = bad[etx + 1] == '0' ? '1' : '0';
  std::string good3 = session(records("S3", "7.3"));
  temp_file f(good1 + bad + good3);
  auto run = replay({f.path.string()});
  INFO(run.err);
  CHECK(run.status == 1);
  auto res = run.of_type("result");
  REQUIRE(res.size() == 2);
  CHECK(res[0].at("sample_id") == "S1");
  CHECK(res[1].at("sample_id") == "S3");
  const std::string where = f.path.string() + ": byte " + std::to_string(good1.size() + 1) + ": ";
  CHECK(run.err.find(where) != std::string::npos);  // the bad frame's STX offset
  CHECK(run.err.find("checksum") != std::string::npos);
}

TEST_CASE("replay CLI: exit statuses") {
  SECTION("66 when a file cannot be read, the others still replayed") {
    temp_file ok(session(records("S1", "5.1")));
    auto run = replay({"/nonexistent/capture.astm", ok.path.string()});
    CHECK(run.status == 66);
    CHECK(run.of_type("result").size() == 1);
    CHECK(run.err.find("/nonexistent/capture.astm: cannot read the file") != std::string::npos);
  }
  SECTION("78 for an unknown profile, listing the known ones") {
    temp_file ok(session(records("S1", "5.1")));
    auto run = replay({ok.path.string()}, "no-such-analyser");
    CHECK(run.status == 78);
    CHECK(run.err.find("no profile \"no-such-analyser\"") != std::string::npos);
    CHECK(run.err.find("sysmex-xn") != std::string::npos);
  }
  SECTION("1, never an empty success, for a file with nothing in it") {
    temp_file empty("just some text\nwith no records\n", "empty.txt");
    auto run = replay({empty.path.string()});
    CHECK(run.status == 1);
    CHECK(run.lines.empty());
    CHECK(run.err.find(empty.path.string() + ": byte 0: ") != std::string::npos);
  }
}

TEST_CASE("replay CLI: the same result twice is reported once, a new observation is a rerun") {
  const std::string first = records("S1", "5.1");
  std::string again = first;  // byte-identical: a duplicate delivery
  std::string rerun = records("S1", "5.4");
  temp_file f(session(first) + session(again) + session(rerun));
  auto run = replay({f.path.string()});
  CHECK(run.status == 0);
  auto res = run.of_type("result");
  REQUIRE(res.size() == 2);
  CHECK(res[0].at("rerun_number") == 0);
  CHECK(res[0].at("is_rerun") == false);
  CHECK(res[1].at("value") == "5.4");
  CHECK(res[1].at("is_rerun") == true);
  CHECK(res[1].at("rerun_number") == -1);
  CHECK(run.err.find("duplicate") != std::string::npos);
}

TEST_CASE("replay CLI: mnemonic text with wrapped lines equals the raw bytes") {
  const std::string raw = session(records("S9", "1.5"));
  std::string text;
  for (char c : raw) {
    switch (c) {
      case '\x02': text += "<STX>"; break;
      case '\x03': text += "<ETX>"; break;
      case '\x04': text += "<EOT>"; break;
      case '\x05': text += "<ENQ>"; break;
      case '\r': text += "<CR>\n"; break;  // a physical break after each <CR>: layout only
      case '\n': text += "<LF>"; break;
      default: text += c;
    }
  }
  text.insert(20, "\n");  // a manual's line wrap inside a field
  temp_file a(raw, "raw.astm"), b(text, "text.txt");
  auto ra = replay({a.path.string()});
  auto rb = replay({b.path.string()});
  REQUIRE(ra.status == 0);
  REQUIRE(rb.status == 0);
  REQUIRE(ra.lines.size() == 1);
  CHECK(ra.lines == rb.lines);
}

TEST_CASE("ingest: identical output whatever the chunking, for every framed capture") {
  const auto captures = interfaced::test::capture_files("astm");
  if (!captures) return;
  std::size_t files = 0;
  for (const auto& file : *captures) {
    const std::string bytes = interfaced::test::read_file(file);
    const auto cap = devices::decode_capture(bytes);
    if (cap.kind != devices::capture_kind::astm_frames) continue;
    ++files;
    INFO(file.filename().string());
    const std::string whole = ingest_log(cap.bytes, cap.bytes.size());
    CHECK(ingest_log(cap.bytes, 1) == whole);
    // Up to ~400 split points per capture through the whole pipeline (the framer's own tests
    // split every capture at every offset).
    const std::size_t stride = std::max<std::size_t>(1, cap.bytes.size() / 400);
    for (std::size_t cut = 1; cut < cap.bytes.size(); cut += stride) {
      devices::profile_catalog none;
      astm::link_options lo;
      lo.accept_frames_without_enq = true;
      devices::astm_ingest in(&none, nullptr, "dev", lo);
      (void)in.feed(std::string_view(cap.bytes).substr(0, cut));
      (void)in.feed(std::string_view(cap.bytes).substr(cut));
      in.finish();
      std::string log;
      for (auto& m : in.take_messages())
        for (const auto& r : m.batch.results) log += daemon::to_json(r, rerun::lab_zone{}).dump() + "\n";
      for (const auto& p : in.take_problems()) log += std::to_string(p.offset) + " " + p.what + "\n";
      if (log != whole) {
        FAIL_CHECK("different output when split at " << cut);
        break;
      }
    }
  }
  CHECK(files >= 15);
}

TEST_CASE("ingest: framed records are cut into messages where feed_records cuts them") {
  // Bytes before the first H, two H..L in one frame, an H inside a message (a second message
  // without the first's L), and a last message whose L never comes: the framed path finds the H
  // records while looking for the L, feed_records splits the text itself; both must agree.
  std::string two = records("S2", "6.2");
  two.erase(two.rfind("L|1|N\r"));
  const std::string text = "junk\r" + records("S1", "5.1") + two + records("S3", "7.3") +
                           "H|\\^&|||TEST-ANALYSER\rP|1\rO|1|S4||^^^GLU\rR|1|^^^GLU|8.4|mmol/L||N||F\r";
  const auto read = [](devices::astm_ingest& in) {
    std::vector<std::pair<std::string, std::string>> out;  // message text, its sample ids
    for (auto& m : in.take_messages()) {
      std::string ids;
      for (const auto& r : m.batch.results) ids += r.sample_id + " ";
      out.emplace_back(m.text, ids);
    }
    return out;
  };
  devices::profile_catalog none;
  astm::link_options lo;
  lo.accept_frames_without_enq = true;
  for (const std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{100000}}) {
    INFO("chunk " << chunk);
    devices::astm_ingest framed(&none, nullptr, "dev", lo);
    const std::string bytes = session(text);
    for (std::size_t i = 0; i < bytes.size(); i += chunk) (void)framed.feed(std::string_view(bytes).substr(i, chunk));
    framed.finish();
    devices::astm_ingest plain(&none, nullptr, "dev", lo);
    plain.feed_records(text);
    const auto a = read(framed);
    CHECK(a == read(plain));
    REQUIRE(a.size() == 4);
    CHECK(a[0].second == "S1 ");
    CHECK(a[1].second == "S2 ");
    CHECK(a[2].second == "S3 ");
    CHECK(a[3].second == "S4 ");
    const auto problems = framed.take_problems();
    CHECK(std::any_of(problems.begin(), problems.end(),
                      [](const auto& p) { return p.what.find("5 bytes before the first H record ignored") != std::string::npos; }));
  }
}

TEST_CASE("replay CLI: --timezone gives observed_at its offset, an unknown zone exits 78") {
  temp_file f(session(records("S1", "5.1")));  // R.13 20260101120000: the analyser's local time
  daemon::replay_options o;
  o.files = {f.path.string()};
  for (const auto& [zone, expected] : std::vector<std::pair<std::string, std::string>>{
           {"Asia/Kolkata", "2026-01-01T12:00:00+05:30"},   // UTC+05:30 all year
           {"Europe/Berlin", "2026-01-01T12:00:00+01:00"},  // CET in January
           {"UTC", "2026-01-01T12:00:00+00:00"}}) {
    o.timezone = zone;
    std::ostringstream out, err;
    CHECK(daemon::run_replay(o, out, err) == 0);
    CHECK(nlohmann::json::parse(out.str()).at("observed_at") == expected);
  }
  o.timezone = "Europe/Berlinn";
  std::ostringstream out, err;
  CHECK(daemon::run_replay(o, out, err) == interfaced::exit_config);
  CHECK(out.str().empty());
  CHECK(err.str().find("--timezone: unknown time zone \"Europe/Berlinn\"") != std::string::npos);
}

TEST_CASE("replay: a NUL byte inside a value is removed and said, with its record and code", "[replay]") {
  // ASTM, frame text carries the NUL; HL7, OBX-5 carries it.
  temp_file astm(session(records("S-NUL", std::string("5\0.0", 4))));
  const auto a = replay({astm.path.string()});
  REQUIRE(a.lines.size() == 1);
  CHECK(a.lines[0]["value"] == "5.0");
  CHECK(a.lines[0]["numeric"] == 5.0);
  CHECK(a.err.find("control character 0x00 in its value removed") != std::string::npos);
  CHECK(a.err.find("[DATA-001]") != std::string::npos);
  CHECK(a.err.find("S-NUL") != std::string::npos);

  const std::string hl7 = std::string("\x0BMSH|^~\\&|AN|LAB|HOST|H|20260101120000||ORU^R01|C1|P|2.5.1\r"
                                      "PID|1\rOBR|1|S-NUL2||GLU\rOBX|1|NM|GLU||5") +
                          std::string(1, '\0') + ".0|mmol/L|||||F\r\x1C\r";
  temp_file h(hl7, "capture.hl7");
  const auto b = replay({h.path.string()});
  INFO(b.err);
  REQUIRE(b.lines.size() == 1);
  CHECK(b.lines[0]["value"] == "5.0");
  CHECK(b.err.find("[DATA-001]") != std::string::npos);
}
