// Text decoding per device (parsers/text_codec.hpp). Expected strings are written from the
// encodings' tables (Unicode / WHATWG windows-1252) and from the capture bytes read with xxd.

#include "parsers/text_codec.hpp"
#include "parsers/astm/records.hpp"
#include "support/files.hpp"

#include <catch2/catch.hpp>

#include <string>

using interfaced::from_utf8;
using interfaced::parse_encoding;
using interfaced::text_encoding;
using interfaced::to_utf8;

namespace {

// Spelled as bytes so the test does not depend on the source file's encoding.
const std::string S_caron = "\xC5\xA0";   // U+0160
const std::string C_acute = "\xC4\x86";   // U+0106
const std::string Z_caron = "\xC5\xBD";   // U+017D
const std::string D_stroke = "\xC4\x90";  // U+0110
const std::string Eth = "\xC3\x90";       // U+00D0
const std::string fffd = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

TEST_CASE("parse_encoding accepts the documented names, case-insensitively", "[text_codec]") {
  CHECK(parse_encoding("latin1") == text_encoding::latin1);
  CHECK(parse_encoding("ISO-8859-1") == text_encoding::latin1);
  CHECK(parse_encoding("8859/1") == text_encoding::latin1);
  CHECK(parse_encoding(" us-ascii ") == text_encoding::latin1);
  CHECK(parse_encoding("utf-8") == text_encoding::utf8);
  CHECK(parse_encoding("UTF8") == text_encoding::utf8);
  CHECK(parse_encoding("UNICODE UTF-8") == text_encoding::utf8);
  CHECK(parse_encoding("windows-1252") == text_encoding::windows1252);
  CHECK(parse_encoding("CP1252") == text_encoding::windows1252);
  CHECK_FALSE(parse_encoding("").has_value());
  CHECK_FALSE(parse_encoding("utf-16").has_value());
  CHECK_FALSE(parse_encoding("latin").has_value());
  for (auto e : {text_encoding::latin1, text_encoding::utf8, text_encoding::windows1252}) {
    CHECK(parse_encoding(interfaced::encoding_name(e)) == e);
  }
}

TEST_CASE("latin1 maps every byte to the same code point", "[text_codec]") {
  bool lossy = false;
  CHECK(to_utf8("abc", text_encoding::latin1, &lossy) == "abc");
  CHECK(to_utf8("\xE9", text_encoding::latin1, &lossy) == "\xC3\xA9");  // é
  CHECK(to_utf8("\xD0", text_encoding::latin1, &lossy) == Eth);
  CHECK(to_utf8("\x8A", text_encoding::latin1, &lossy) == "\xC2\x8A");  // a C1 control, not Š
  CHECK(to_utf8("\xFF", text_encoding::latin1, &lossy) == "\xC3\xBF");
  CHECK(to_utf8(std::string_view("\0x", 2), text_encoding::latin1, &lossy) ==
        std::string("\0x", 2));
  CHECK_FALSE(lossy);
  // All 256 bytes: 128 one-byte and 128 two-byte sequences.
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  CHECK(to_utf8(all, text_encoding::latin1).size() == 128 + 2 * 128);
}

TEST_CASE("windows-1252 uses the full 0x80-0x9F table", "[text_codec]") {
  bool lossy = false;
  CHECK(to_utf8("\x80", text_encoding::windows1252, &lossy) == "\xE2\x82\xAC");  // €
  CHECK(to_utf8("\x8A", text_encoding::windows1252, &lossy) == S_caron);
  CHECK(to_utf8("\x8E", text_encoding::windows1252, &lossy) == Z_caron);
  CHECK(to_utf8("\x9A\x9E", text_encoding::windows1252, &lossy) == "\xC5\xA1\xC5\xBE");  // š ž
  CHECK(to_utf8("\x93x\x94", text_encoding::windows1252, &lossy) == "\xE2\x80\x9Cx\xE2\x80\x9D");
  CHECK(to_utf8("\x99", text_encoding::windows1252, &lossy) == "\xE2\x84\xA2");  // ™
  CHECK(to_utf8("\x9F", text_encoding::windows1252, &lossy) == "\xC5\xB8");      // Ÿ
  CHECK(to_utf8("\x83", text_encoding::windows1252, &lossy) == "\xC6\x92");      // ƒ
  CHECK(to_utf8("\xA0\xD0\xFF", text_encoding::windows1252, &lossy) ==
        "\xC2\xA0" + Eth + "\xC3\xBF");
  CHECK_FALSE(lossy);
  for (const char* undefined : {"\x81", "\x8D", "\x8F", "\x90", "\x9D"}) {
    bool l = false;
    CHECK(to_utf8(undefined, text_encoding::windows1252, &l) == fffd);
    CHECK(l);
  }
}

TEST_CASE("utf8 is validated, each maximal invalid subpart becomes one U+FFFD", "[text_codec]") {
  const auto conv = [](std::string_view in, bool& lossy) {
    return to_utf8(in, text_encoding::utf8, &lossy);
  };
  bool lossy = false;
  CHECK(conv("plain", lossy) == "plain");
  CHECK(conv(S_caron + C_acute + Z_caron + D_stroke, lossy) ==
        S_caron + C_acute + Z_caron + D_stroke);
  CHECK(conv("\xF0\x9F\x98\x80", lossy) == "\xF0\x9F\x98\x80");  // U+1F600, 4 bytes
  CHECK(conv("\xF4\x8F\xBF\xBF", lossy) == "\xF4\x8F\xBF\xBF");  // U+10FFFF
  CHECK_FALSE(lossy);

  struct bad_case {
    const char* in;
    std::string out;
  };
  const bad_case cases[] = {
      {"\x80", fffd},  // stray continuation
      {"a\xBF"
       "b",
       "a" + fffd + "b"},
      {"\xC0\xAF", fffd + fffd},  // overlong '/', C0 never valid
      {"\xC1\xBF", fffd + fffd},
      {"\xE0\x80\xAF", fffd + fffd + fffd},             // overlong 3-byte: E0 needs A0-BF
      {"\xED\xA0\x80", fffd + fffd + fffd},             // surrogate U+D800
      {"\xF4\x90\x80\x80", fffd + fffd + fffd + fffd},  // > U+10FFFF
      {"\xF5\x80", fffd + fffd},
      {"\xFF", fffd},
      {"\xC5", fffd},      // truncated at end
      {"\xE2\x82", fffd},  // truncated 3-byte: one U+FFFD for the subpart
      {"\xE2\x82x", fffd + "x"},
      {"\xF0\x9F\x98", fffd},
      {"\xC5"
       "A",
       fffd + "A"},  // the next byte is not swallowed
  };
  for (const auto& c : cases) {
    bool l = false;
    INFO("input bytes: " << c.in);
    CHECK(conv(c.in, l) == c.out);
    CHECK(l);
  }
}

TEST_CASE("lossy is only ever set, so it can accumulate over calls", "[text_codec]") {
  bool lossy = false;
  (void)to_utf8("\xFF", text_encoding::utf8, &lossy);
  CHECK(lossy);
  (void)to_utf8("fine", text_encoding::utf8, &lossy);
  CHECK(lossy);
  CHECK(to_utf8("\xFF", text_encoding::utf8) == fffd);  // null flag pointer is fine
}

TEST_CASE("from_utf8 encodes for the device and marks what it cannot hold", "[text_codec]") {
  bool lossy = false;
  CHECK(from_utf8("\xC3\xA9t\xC3\xA9", text_encoding::latin1, &lossy) == "\xE9t\xE9");
  CHECK(from_utf8(S_caron + "x" + Z_caron, text_encoding::windows1252, &lossy) == "\x8Ax\x8E");
  CHECK(from_utf8("\xE2\x82\xAC", text_encoding::windows1252, &lossy) == "\x80");
  CHECK_FALSE(lossy);
  CHECK(from_utf8(S_caron, text_encoding::latin1, &lossy) == "?");
  CHECK(lossy);
  lossy = false;
  CHECK(from_utf8(C_acute, text_encoding::windows1252, &lossy) == "?");
  CHECK(lossy);
  lossy = false;
  CHECK(from_utf8("\xC2\x81", text_encoding::windows1252, &lossy) == "?");  // U+0081 has no byte
  CHECK(lossy);
  lossy = false;
  CHECK(from_utf8("\xFF", text_encoding::latin1, &lossy) == "?");  // invalid input
  CHECK(lossy);
  // Round trip of every byte Latin-1 / Windows-1252 define.
  for (int b = 0; b < 256; ++b) {
    const std::string byte(1, static_cast<char>(b));
    CHECK(from_utf8(to_utf8(byte, text_encoding::latin1), text_encoding::latin1) == byte);
    bool l = false;
    const auto u = to_utf8(byte, text_encoding::windows1252, &l);
    if (!l) CHECK(from_utf8(u, text_encoding::windows1252) == byte);
  }
}

// The three Ortho VISION upload files (captures/astm/SOURCES.md). Read with xxd, the P.6 name
// component is NOT the same text in the three files: the instrument software replaced what each
// character set cannot hold.
//   UTF-8:        C5 A0 C4 86 C5 BD C4 90  -> "ŠĆŽĐ"  (U+0160 U+0106 U+017D U+0110)
//   Windows-1252: 8A 43 8E D0              -> "ŠCŽÐ"  (Ć is not in 1252; D0 is Ð U+00D0, Eth)
//   ISO-8859-1:   53 43 5A 44              -> "SCZD"  (plain ASCII)
TEST_CASE("Ortho VISION uploads decode the patient name with each file's encoding",
          "[text_codec][capture]") {
  struct upload {
    const char* file;
    text_encoding enc;
    std::string name;
  };
  const upload uploads[] = {
      {"astm/ortho-vision-upload-utf8.astm", text_encoding::utf8,
       S_caron + C_acute + Z_caron + D_stroke},
      {"astm/ortho-vision-upload-windows1252.astm", text_encoding::windows1252,
       S_caron + "C" + Z_caron + Eth},
      {"astm/ortho-vision-upload-iso8859-1.astm", text_encoding::latin1, "SCZD"},
  };
  for (const auto& u : uploads) {
    INFO(u.file);
    const auto bytes = interfaced::test::capture(u.file);
    if (!bytes) return;
    const auto m = interfaced::astm::parse_message(*bytes);
    REQUIRE(m.records.size() == 6);
    REQUIRE(m.records[1].type() == 'P');
    const auto name = m.records[1].field(6);
    bool lossy = false;
    CHECK(to_utf8(name.component(1).decode(), u.enc, &lossy) == u.name);
    CHECK(to_utf8(name.component(2).decode(), u.enc, &lossy) == "Bobby");
    CHECK(to_utf8(name.component(3).decode(), u.enc, &lossy) == "B");
    CHECK_FALSE(lossy);
    // The whole file decodes without loss in its own encoding.
    CHECK(to_utf8(*bytes, u.enc, &lossy).size() >= bytes->size());
    CHECK_FALSE(lossy);
  }
  // With the wrong encoding the difference shows: the 1252 bytes are not UTF-8, and the UTF-8
  // bytes read as Latin-1 give mojibake rather than the name.
  const auto w = interfaced::test::capture("astm/ortho-vision-upload-windows1252.astm");
  const auto u8 = interfaced::test::capture("astm/ortho-vision-upload-utf8.astm");
  if (!w || !u8) return;
  bool lossy = false;
  (void)to_utf8(*w, text_encoding::utf8, &lossy);
  CHECK(lossy);
  const auto m = interfaced::astm::parse_message(*u8);
  CHECK(to_utf8(m.records[1].field(6).component(1).raw(), text_encoding::latin1) !=
        S_caron + C_acute + Z_caron + D_stroke);
}
