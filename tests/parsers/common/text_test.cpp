// parsers/text.hpp: the helpers every value read goes through (padding, plain-ASCII test, the
// word-at-a-time byte search the field splitters use).
#include <catch2/catch.hpp>

#include <bit>
#include <cstdio>
#include <string>

#include "parsers/text.hpp"

using namespace interfaced;

TEST_CASE("text: trim_padding drops blanks and tabs at both ends only") {
  CHECK(trim_padding("") == "");
  CHECK(trim_padding("  ") == "");
  CHECK(trim_padding(" \t5.5\t ") == "5.5");
  CHECK(trim_padding("a b") == "a b");
  CHECK(trim_padding("\xA0x\xA0") == "\xA0x\xA0");  // Latin-1 NBSP is text, not padding
  CHECK(trim_padding("\x01x") == "\x01x");          // control bytes are removed elsewhere, not here
  CHECK(trim_padding(" x") == "x");
  CHECK(trim_padding("x ") == "x");
}

TEST_CASE("text: equal_bytes marks exactly the bytes equal to the delimiter") {
  if constexpr (std::endian::native != std::endian::little) return;
  // Every arrangement of '|' and its neighbours in value (including '|' ^ 1 and bytes >= 0x80,
  // where a borrowing test gives false positives) in one eight-byte word.
  const char picks[] = {'|', '}', '\x7D', '\xFC', '\x80', '\0', 'a', '\xFF'};
  int wrong = 0;
  for (unsigned seed = 0; seed < 4096; ++seed) {
    char w[8];
    unsigned x = seed * 2654435761U;
    for (char& c : w) {
      c = picks[x & 7U];
      x = x * 1103515245U + 12345U;
    }
    const std::uint64_t m = swar::equal_bytes(swar::load(w), '|');
    for (int i = 0; i < 8; ++i) {
      const bool marked = ((m >> (8 * i + 7)) & 1U) != 0;
      if (marked != (w[i] == '|')) ++wrong;
    }
    if ((m & ~swar::highs) != 0) ++wrong;
  }
  CHECK(wrong == 0);
}

namespace {

// The byte-by-byte definitions the word-at-a-time searches must agree with.
std::size_t line_end_reference(std::string_view s, std::size_t pos) {
  while (pos < s.size() && s[pos] != '\r' && s[pos] != '\n') ++pos;
  return pos < s.size() ? pos : s.size();
}

std::size_t printable_reference(std::string_view s, std::size_t pos) {
  while (pos < s.size() && static_cast<unsigned char>(s[pos]) >= 0x20 && static_cast<unsigned char>(s[pos]) <= 0x7E) ++pos;
  return pos;
}

}  // namespace

TEST_CASE("text: find_line_end and skip_printable stop at the first such byte wherever it lies") {
  // Every byte value at every position of texts up to 40 bytes (past the 16- and 8-byte steps and
  // their tails), searched from every start: both ends of the ranges (0x1F 0x20 0x7E 0x7F 0x80
  // 0xFF), CR, LF and TAB among them.
  int wrong = 0;
  for (std::size_t len = 0; len <= 40; ++len) {
    for (std::size_t at = 0; at < len; ++at) {
      for (unsigned b = 0; b < 256; ++b) {
        std::string s(len, 'x');
        s[at] = static_cast<char>(b);
        for (std::size_t from = 0; from <= len; from += (len > 20 ? 3 : 1)) {
          if (find_line_end(s, from) != line_end_reference(s, from)) ++wrong;
          if (skip_printable(s, from) != printable_reference(s, from)) ++wrong;
        }
      }
    }
  }
  CHECK(wrong == 0);
  // A stop byte in every 16-byte lane after a long printable run, as in a base64 record.
  const std::string run(100, 'A');
  CHECK(find_line_end(run + "\r", 0) == 100);
  CHECK(find_line_end(run + "B\nC\r", 5) == 101);
  CHECK(find_line_end(run, 0) == 100);
  CHECK(skip_printable(run + "\x7F", 0) == 100);
  CHECK(skip_printable(run + "~\x80", 0) == 101);
  CHECK(skip_printable(run + " \t", 0) == 101);
  CHECK(skip_printable(run, 0) == 100);
}

TEST_CASE("text: append_padded writes what printf's %0*lld writes") {
  // printf is the oracle: every date, time and offset the daemon formats went through it before.
  const long long values[] = {0, 5, 9, 10, 59, 99, 100, 999, 1000, 2026, 9999, 10000, 123456, -1, -5, -59, -999, -1000,
                              4294967296LL, -4294967296LL};
  for (const long long v : values)
    for (int width = 0; width <= 5; ++width) {
      char expected[48];
      std::snprintf(expected, sizeof expected, "%0*lld", width, v);
      std::string out = "x";
      append_padded(out, v, width);
      INFO("value " << v << ", width " << width);
      CHECK(out == std::string("x") + expected);
    }
}
