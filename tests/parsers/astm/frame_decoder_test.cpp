// E1381 (LIS1-A) frame decoder: hand-built frames from the standard's rules, then every raw
// capture in ../shared/captures/astm.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "astm_test_helpers.hpp"
#include "parsers/astm/frame_decoder.hpp"
#include "support/files.hpp"

namespace a = interfaced::astm;
using a::event_kind;
using a::frame_error;
using interfaced::test::astm::count_kind;
using interfaced::test::astm::decode_bytewise;
using interfaced::test::astm::decode_whole;
using interfaced::test::astm::owned_event;
using interfaced::test::astm::raw_frame;
using interfaced::test::astm::split_mismatches;

namespace {

const std::string stx = "\x02";
const std::string etx = "\x03";
const std::string eot = "\x04";
const std::string enq = "\x05";
const std::string etb = "\x17";

std::error_code err(frame_error e) { return make_error_code(e); }

}  // namespace

TEST_CASE(
    "checksum_hex: sum of FN..terminator mod 256 as two uppercase hex digits (LIS1-A 6.3.3)") {
  CHECK(a::checksum_hex("") == "00");
  CHECK(a::checksum_hex("z") == "7A");                         // 122 is sent as 7A
  CHECK(a::checksum_hex(std::string("\xFF\x7B", 2)) == "7A");  // 255 + 123 = 378 = 0x17A
  CHECK(a::checksum_hex("7L|1|N\r\x03") == "0A");              // TaqMan capture, frame 7
  CHECK(a::checksum_hex("1H|\\^&\r\x03") == "E5");
}

TEST_CASE("encode_frame: STX FN text ETB|ETX C1 C2 CR LF, FN mod 8") {
  CHECK(a::encode_frame(1, "H|\\^&\r", true) ==
        "\x02"
        "1H|\\^&\r\x03"
        "E5\r\n");
  CHECK(a::encode_frame(2, "P|1\r", false) ==
        "\x02"
        "2P|1\r\x17"
        "53\r\n");
  CHECK(a::encode_frame(8, "", true) ==
        "\x02"
        "0\x03"
        "33\r\n");
}

TEST_CASE("control characters outside frames are events with their stream offsets") {
  const auto evs = decode_whole("xx\x05\x06\x15\x04");
  REQUIRE(evs.size() == 4);
  CHECK(evs[0].kind == event_kind::enq);
  CHECK(evs[0].offset == 2);
  CHECK(evs[1].kind == event_kind::ack);
  CHECK(evs[2].kind == event_kind::nak);
  CHECK(evs[3].kind == event_kind::eot);
  CHECK(evs[3].offset == 5);
}

TEST_CASE(
    "put() returns after one event and reports what it consumed, offset() is the stream position") {
  a::frame_decoder d;
  const std::string in = "\x05" + raw_frame('1', "H|\\^&\r", true) + "\x04";
  auto r = d.put(in);
  CHECK(r.consumed == 1);
  CHECK(r.event.kind == event_kind::enq);
  CHECK(d.offset() == 1);
  std::string_view rest(in);
  rest.remove_prefix(1);
  r = d.put(rest);
  REQUIRE(r.event.kind == event_kind::frame);
  CHECK(r.consumed == 1 + 1 + 6 + 1 + 2);  // event emitted at C2; the CR LF trailer comes next
  CHECK(r.event.offset == 1);
  CHECK(r.event.f.number == 1);
  CHECK(r.event.f.text == "H|\\^&\r");
  CHECK(r.event.f.final);
  CHECK(r.event.f.checksum == 0xE5);
  rest.remove_prefix(r.consumed);
  r = d.put(rest);
  CHECK(r.event.kind == event_kind::eot);
  CHECK(r.consumed == 3);  // CR LF skipped, EOT
  CHECK(d.offset() == in.size());
  r = d.put("");
  CHECK(r.consumed == 0);
  CHECK(r.event.kind == event_kind::none);
}

TEST_CASE("intermediate frame (ETB) and end frame (ETX) (LIS1-A 6.3.1.2)") {
  const auto evs = decode_whole(raw_frame('1', "H|\\^&|||x", false) + raw_frame('2', "yz\r", true));
  REQUIRE(evs.size() == 2);
  CHECK_FALSE(evs[0].final);
  CHECK(evs[0].text == "H|\\^&|||x");
  CHECK(evs[1].final);
  CHECK(evs[1].number == 2);
}

TEST_CASE("frame trailers CR LF, CR, LF and none give the same frames") {
  auto frames_of = [](const std::string& trailer) {
    auto evs =
        decode_whole(raw_frame('1', "A\r", false, trailer) + raw_frame('2', "B\r", true, trailer));
    for (auto& e : evs) e.offset = 0;
    return evs;
  };
  const auto reference = frames_of("\r\n");
  REQUIRE(reference.size() == 2);
  CHECK(count_kind(reference, event_kind::frame) == 2);
  CHECK(frames_of("\r") == reference);
  CHECK(frames_of("\n") == reference);
  CHECK(frames_of("") == reference);
  CHECK(frames_of("\n\r\r\n") == reference);
}

TEST_CASE("lowercase checksum digits are accepted") {
  const std::string in = stx + "1H|\\^&\r" + etx + "e5\r\n";
  const auto evs = decode_whole(in);
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].kind == event_kind::frame);
  CHECK(evs[0].checksum == 0xE5);
}

TEST_CASE("bad checksum is an error event with the FN hint, then the next frame decodes") {
  const std::string in = stx + "3O|1\r" + etx + "3E\r\n" + raw_frame('3', "O|1\r", true);
  const auto evs = decode_whole(in);
  REQUIRE(evs.size() == 2);
  CHECK(evs[0].kind == event_kind::error);
  CHECK(evs[0].error == err(frame_error::bad_checksum));
  CHECK(evs[0].hint == 3);
  CHECK(evs[0].offset == 0);
  CHECK(evs[1].kind == event_kind::frame);
  CHECK(evs[1].text == "O|1\r");
}

TEST_CASE("checksum verified on intermediate (ETB) frames too") {
  const std::string bad_etb = stx + "1H|\\^&" + etb + "00\r\n";
  const auto evs = decode_whole(bad_etb + raw_frame('2', "x\r", true));
  REQUIRE(evs.size() == 2);
  CHECK(evs[0].error == err(frame_error::bad_checksum));
  CHECK(evs[1].kind == event_kind::frame);
}

TEST_CASE("checksum characters that are not hex digits") {
  for (const std::string cs : {"G0", "0G", "\r\n", " 3", "3 "}) {
    const auto evs = decode_whole(stx + "1x" + etx + cs + "\r\n");
    REQUIRE(evs.size() == 1);
    CHECK(evs[0].error == err(frame_error::checksum_not_hex));
    CHECK(evs[0].hint == 1);
  }
}

TEST_CASE("frame number that is not 0-7 is bad_frame_number (checksum still over the FN byte)") {
  for (char fn : {'8', '9', 'A', ' ', '\r'}) {
    const auto evs = decode_whole(raw_frame(fn, "P|1\r", true));
    REQUIRE(evs.size() == 1);
    CHECK(evs[0].error == err(frame_error::bad_frame_number));
    CHECK(evs[0].hint == -1);
  }
  // STX immediately followed by ETX: no FN at all.
  const auto evs = decode_whole(stx + etx + a::checksum_hex(etx) + "\r\n");
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].error == err(frame_error::bad_frame_number));
}

TEST_CASE("every FN digit 0-7 is accepted by the decoder") {
  for (char fn = '0'; fn <= '7'; ++fn) {
    const auto evs = decode_whole(raw_frame(fn, "R|1\r", false));
    REQUIRE(evs.size() == 1);
    CHECK(evs[0].number == fn - '0');
  }
}

TEST_CASE("LIS1-A 6.6: restricted characters in frame text are rejected") {
  // STX / ETX / EOT / ENQ / ETB are structural and tested separately; the others must be
  // reported as restricted_character even with a correct checksum.
  for (char c : {'\x01', '\x06', '\x10', '\x15', '\x16', '\x0A', '\x11', '\x12', '\x13', '\x14'}) {
    const std::string text = std::string("R|1|") + c + "|\r";
    const auto evs = decode_whole(raw_frame('4', text, true) + raw_frame('5', "ok\r", true));
    INFO("restricted byte " << static_cast<int>(c));
    REQUIRE(evs.size() == 2);
    CHECK(evs[0].error == err(frame_error::restricted_character));
    CHECK(evs[0].hint == 4);
    CHECK(evs[1].kind == event_kind::frame);
  }
}

TEST_CASE("characters that are not restricted are kept raw in the text") {
  std::string text = "R|1|\t\x1B\x7F\r";
  for (int b = 0x80; b <= 0xFF; ++b) text.push_back(static_cast<char>(b));  // 8-bit encodings
  const auto evs = decode_whole(raw_frame('1', text, true));
  REQUIRE(evs.size() == 1);
  REQUIRE(evs[0].kind == event_kind::frame);
  CHECK(evs[0].text == text);
}

TEST_CASE("STX inside an unfinished frame: interrupted, then the new frame decodes") {
  const std::string in = stx + "1H|\\^&|||partial" + raw_frame('1', "H|\\^&\r", true);
  a::frame_decoder d;
  auto r = d.put(in);
  REQUIRE(r.event.kind == event_kind::error);
  CHECK(r.event.error == err(frame_error::interrupted));
  CHECK(r.event.offset == 0);
  CHECK(r.event.frame_number_hint == 1);
  CHECK(r.consumed == 17);  // the interrupting STX is not consumed
  r = d.put(std::string_view(in).substr(r.consumed));
  REQUIRE(r.event.kind == event_kind::frame);
  CHECK(r.event.offset == 17);
  CHECK(r.event.f.text == "H|\\^&\r");
}

TEST_CASE("ENQ or EOT inside an unfinished frame: interrupted, then the control event") {
  for (const auto& [byte, kind] :
       {std::pair{enq, event_kind::enq}, std::pair{eot, event_kind::eot}}) {
    // in the text, in the FN position, and between terminator and checksum
    for (const std::string& prefix :
         {stx + "2abc", stx, stx + "2abc" + etx, stx + "2abc" + etx + "4"}) {
      const auto evs = decode_whole(prefix + byte + "zz");
      REQUIRE(evs.size() == 2);
      CHECK(evs[0].error == err(frame_error::interrupted));
      CHECK(evs[1].kind == kind);
      CHECK(evs[1].offset == prefix.size());
    }
  }
}

TEST_CASE("bytes outside frames are skipped: only STX and ENQ/ACK/NAK/EOT matter") {
  const std::string noise =
      "garbage\r\n\x03\x17"
      "99 \x01\x10";
  const auto evs = decode_whole(noise + raw_frame('1', "H|\r", true) + noise + "\x05");
  REQUIRE(evs.size() == 2);
  CHECK(evs[0].kind == event_kind::frame);
  CHECK(evs[0].offset == noise.size());
  CHECK(evs[1].kind == event_kind::enq);
}

TEST_CASE("frame size limit: max_frame counts the 7 overhead bytes (LIS1-A 6.3.1), resync after") {
  constexpr std::size_t max_frame = 20;  // 13 text bytes
  SECTION("exactly at the limit is accepted") {
    const auto evs = decode_whole(raw_frame('1', std::string(13, 'x'), true), max_frame);
    REQUIRE(evs.size() == 1);
    CHECK(evs[0].kind == event_kind::frame);
  }
  SECTION("one over is frame_too_long, raised at the first excess byte; the next frame decodes") {
    const std::string longf = raw_frame('1', std::string(14, 'x'), true);
    const auto evs = decode_whole(longf + raw_frame('2', "ok", true), max_frame);
    REQUIRE(evs.size() == 2);
    CHECK(evs[0].error == err(frame_error::frame_too_long));
    CHECK(evs[0].hint == 1);
    CHECK(evs[1].kind == event_kind::frame);
    CHECK(evs[1].offset == longf.size());
    a::frame_decoder d(max_frame);
    const auto r = d.put(longf);
    CHECK(r.consumed == 2 + 14);  // STX FN and 14 text bytes: the 14th is the excess
  }
  SECTION("a never-ending frame stays bounded and control bytes in its tail still count") {
    const std::string endless = stx + "1" + std::string(1000, 'y') + "\x05";
    const auto evs = decode_whole(endless, max_frame);
    REQUIRE(evs.size() == 2);
    CHECK(evs[0].error == err(frame_error::frame_too_long));
    CHECK(evs[1].kind == event_kind::enq);
  }
}

TEST_CASE("default limit: 64,000-byte frames (63,993 text) accepted, one more byte rejected") {
  CHECK(a::frame_decoder::default_max_frame == 64000);
  const auto ok = decode_whole(raw_frame('1', std::string(63993, 'r'), true));
  REQUIRE(ok.size() == 1);
  CHECK(ok[0].kind == event_kind::frame);
  CHECK(ok[0].text.size() == 63993);
  const auto too_long = decode_whole(raw_frame('1', std::string(63994, 'r'), true));
  REQUIRE(too_long.size() == 1);
  CHECK(too_long[0].error == err(frame_error::frame_too_long));
}

TEST_CASE("checksum of long frames of every printable and high byte verifies whole and in chunks") {
  // The text is summed in 16-bit lanes folded every 128 words: text lengths around and well past
  // that (1,024 bytes), of bytes 0x20..0xFF, so every lane carries large values.
  for (const std::size_t n : {1023U, 1024U, 1025U, 1031U, 5000U, 63993U}) {
    std::string text;
    for (std::size_t i = 0; i < n; ++i) text += static_cast<char>(0x20 + (i * 7) % 0xE0);
    const std::string raw = raw_frame('3', text, false);
    const auto whole = decode_whole(raw);
    REQUIRE(whole.size() == 1);
    CHECK(whole[0].kind == event_kind::frame);
    CHECK(whole[0].text == text);
    for (const std::size_t chunk : {1U, 7U, 8U, 9U, 1000U}) {
      a::frame_decoder dec;
      std::vector<std::string> texts;
      for (std::size_t at = 0; at < raw.size(); at += chunk) {
        std::string_view part = std::string_view(raw).substr(at, chunk);
        while (!part.empty()) {
          const auto r = dec.put(part);
          part.remove_prefix(r.consumed);
          CHECK(r.event.kind != event_kind::error);
          if (r.event.kind == event_kind::frame) texts.emplace_back(r.event.f.text);
        }
      }
      REQUIRE(texts.size() == 1);
      CHECK(texts[0] == text);
    }
  }
}

TEST_CASE("reset() drops a partial frame") {
  a::frame_decoder d;
  auto r = d.put(stx + "1abc");
  CHECK(r.event.kind == event_kind::none);
  d.reset();
  r = d.put("def" + etx + "00");  // would complete a frame without the reset
  CHECK(r.event.kind == event_kind::none);
  CHECK(d.offset() == 5 + 6);
}

namespace {

std::string synthetic_stream() {
  std::string s = "noise\x05";
  s += raw_frame('1', "H|\\^&|||analyser\r", false, "\r\n");
  s += raw_frame('2', "P|1||ID", false, "\n");
  s += stx + "3O|1" + etx + "00\r";  // bad checksum
  s += raw_frame('3', "R|1|^^^GLU|5,5|mmol/L\r", true, "\r");
  s += stx + "4 interrupted";
  s += raw_frame('4', "L|1|N\r", true, "");
  s += stx + "5" + std::string(40, 'x');  // too long for max_frame 32
  s += raw_frame('5', std::string("a\x13z"), true);
  s += "\x15\x06\x04";
  return s;
}

}  // namespace

TEST_CASE("every incomplete prefix yields a prefix of the whole input's events") {
  const std::string in = synthetic_stream();
  const auto whole = decode_whole(in, 32);
  REQUIRE(whole.size() == 12);
  for (std::size_t n = 0; n <= in.size(); ++n) {
    const auto part = decode_whole(std::string_view(in).substr(0, n), 32);
    REQUIRE(part.size() <= whole.size());
    for (std::size_t i = 0; i < part.size(); ++i) {
      REQUIRE(part[i] == whole[i]);
    }
  }
}

TEST_CASE("same events whole, byte at a time and split at every offset (synthetic stream)") {
  const std::string in = synthetic_stream();
  const auto whole = decode_whole(in, 32);
  CHECK(decode_bytewise(in, 32) == whole);
  CHECK(split_mismatches(in, 32).empty());
}

// --- captures ---

TEST_CASE("every raw capture decodes with zero errors and the frame count counted from the file") {
  using interfaced::test::astm::raw_captures;
  for (const auto& c : raw_captures()) {
    const auto bytes = interfaced::test::capture(std::string("astm/") + c.file);
    if (!bytes) return;
    INFO(c.file);
    const auto evs = decode_whole(*bytes);
    CHECK(count_kind(evs, event_kind::error) == 0);
    CHECK(count_kind(evs, event_kind::frame) == c.frames);
    std::size_t end_frames = 0;
    for (const auto& e : evs) end_frames += (e.kind == event_kind::frame && e.final) ? 1 : 0;
    CHECK(end_frames == c.end_frames);
    CHECK(count_kind(evs, event_kind::enq) == (c.has_enq_eot ? 1u : 0u));
    CHECK(count_kind(evs, event_kind::eot) == (c.has_enq_eot ? 1u : 0u));
    CHECK(count_kind(evs, event_kind::ack) + count_kind(evs, event_kind::nak) == 0);
  }
}

namespace {

// Captures up to this size are split at every offset in the default run; above it (the two
// Yumizen H500 files, 24-32 KB) every offset costs O(n^2) decoder steps, minutes under ASan, so
// the default run splits densely around every control byte and the [.slow] test does them all.
constexpr std::size_t exhaustive_split_limit = 8192;

std::vector<std::string> chunking_files() {
  std::vector<std::string> files;
  for (const auto& c : interfaced::test::astm::raw_captures()) files.emplace_back(c.file);
  for (const char* f : interfaced::test::astm::non_astm_stx_captures()) files.emplace_back(f);
  return files;
}

}  // namespace

TEST_CASE("captures: byte at a time and split at every offset give the whole-input events") {
  using interfaced::test::astm::interesting_offsets;
  for (const auto& f : chunking_files()) {
    const auto bytes = interfaced::test::capture("astm/" + f);
    if (!bytes) return;
    INFO(f);
    const auto whole = decode_whole(*bytes);
    CHECK(decode_bytewise(*bytes) == whole);
    if (bytes->size() <= exhaustive_split_limit) {
      CHECK(split_mismatches(*bytes).empty());
    } else {
      const auto offsets = interesting_offsets(*bytes);
      CHECK(offsets.size() > 1000);
      CHECK(split_mismatches(*bytes, a::frame_decoder::default_max_frame, &offsets).empty());
    }
  }
}

TEST_CASE("large captures: split at every single offset", "[.slow]") {
  for (const auto& f : chunking_files()) {
    const auto bytes = interfaced::test::capture("astm/" + f);
    if (!bytes) return;
    if (bytes->size() <= exhaustive_split_limit) continue;
    INFO(f);
    CHECK(split_mismatches(*bytes).empty());
  }
}

TEST_CASE("non-ASTM STX..ETX formats are errors, never frames (mini VIDAS, SPOTCHEM)") {
  using interfaced::test::astm::non_astm_stx_captures;
  for (const char* f : non_astm_stx_captures()) {
    const auto bytes = interfaced::test::capture(std::string("astm/") + f);
    if (!bytes) return;
    INFO(f);
    const auto evs = decode_whole(*bytes);
    CHECK(count_kind(evs, event_kind::frame) == 0);
  }
}

TEST_CASE("Afinion 2 capture: the single end frame holds the whole message, checksum F2") {
  const auto bytes = interfaced::test::capture("astm/abbott-afinion2-hba1c-result.astm");
  if (!bytes) return;
  const auto evs = decode_whole(*bytes);
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].checksum == 0xF2);
  CHECK(evs[0].text.rfind("H|\\^&", 0) == 0);
  CHECK(evs[0].text.find("\rL|1|N\r") != std::string::npos);
}

TEST_CASE("Yumizen H500 raw session: FNs wrap 1..7,0 over 125 frames and every ETB frame checks") {
  const auto bytes =
      interfaced::test::capture("astm/horiba-yumizen_h500-result-flags-histograms.astm");
  if (!bytes) return;
  const auto evs = decode_whole(*bytes);
  int expected = 1;
  std::size_t frames = 0;
  for (const auto& e : evs) {
    if (e.kind != event_kind::frame) continue;
    ++frames;
    CHECK(e.number == expected);
    expected = (expected + 1) % 8;
  }
  CHECK(frames == 125);
  CHECK(evs.front().kind == event_kind::enq);
  CHECK(evs.back().kind == event_kind::eot);
}

TEST_CASE("escaped TaqMan capture: decoding the xNN escapes gives 7 frames that verify") {
  const auto text =
      interfaced::test::capture("astm/roche-cobas_taqman_amplilink-result-escaped.txt");
  if (!text) return;
  const std::string bytes = interfaced::test::astm::unescape_hex(*text);
  const auto evs = decode_whole(bytes);
  CHECK(count_kind(evs, event_kind::error) == 0);
  CHECK(count_kind(evs, event_kind::frame) == 7);
  CHECK(count_kind(evs, event_kind::enq) == 1);
  CHECK(count_kind(evs, event_kind::eot) == 1);
  REQUIRE(evs.size() == 9);
  CHECK(evs[1].text.rfind("H|\\^&|||ALCZC12033KD^Roche^AMPLILINK", 0) == 0);
  CHECK(evs[7].text == "L|1|N\r");
  CHECK(evs[7].number == 7);
  CHECK(decode_bytewise(bytes) == evs);
  CHECK(split_mismatches(bytes).empty());
}
