// parsers/text.hpp: the helpers every value read goes through (padding, plain-ASCII test, the
// word-at-a-time byte search the field splitters use).
#include <catch2/catch.hpp>

#include <bit>
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
