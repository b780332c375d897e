#pragma once
// Small text helpers every floor uses, standard library only (plus SSE2 intrinsics, which every
// x86-64 compiler provides, where the target has them; the portable path stays for the others).

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace interfaced {

// `s` without the blanks (space, tab) that pad fixed-width fields.
// (Always inlined: it is a few instructions, called for every value read, and a call costs more.)
[[nodiscard, gnu::always_inline]] constexpr inline std::string_view trim_padding(std::string_view s) noexcept {
  // Nearly every value has no padding: both ends tested at once first (every byte above 0x20 is
  // neither blank; the two loops cost ~17 instructions a value, and every value read is trimmed).
  if (s.empty() || (static_cast<unsigned char>(s.front()) > 0x20 && static_cast<unsigned char>(s.back()) > 0x20))
    return s;
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Eight bytes at a time (SWAR, standard C++ only): record and line ends are looked for in every
// byte of every message, and a byte loop took 4-5 instructions a byte where this takes under
// two. Each test is exact as a yes/no for the whole word; the bytes of a word that says yes are
// then looked at one by one, so the result never depends on byte order.
namespace swar {
inline constexpr std::uint64_t ones = 0x0101010101010101ULL;
inline constexpr std::uint64_t highs = 0x8080808080808080ULL;
// Some byte of x is below n (n <= 128).
[[nodiscard]] constexpr bool has_less(std::uint64_t x, unsigned n) noexcept {
  return ((x - ones * n) & ~x & highs) != 0;
}
// Some byte of x is above n (n <= 127).
[[nodiscard]] constexpr bool has_more(std::uint64_t x, unsigned n) noexcept {
  return (((x + ones * (127 - n)) | x) & highs) != 0;
}
[[nodiscard]] inline std::uint64_t load(const char* p) noexcept {
  std::uint64_t x;
  std::memcpy(&x, p, sizeof x);
  return x;
}
// The high bit of every byte of x that equals c, and no other bit: exact per byte (no borrow
// runs from one byte into the next), so the set bits can be walked one by one to find every c
// in a word. Which bit is which byte depends on byte order: callers walk them on little-endian
// targets only (std::countr_zero(m) / 8 is then the byte's index).
[[nodiscard]] constexpr std::uint64_t equal_bytes(std::uint64_t x, char c) noexcept {
  constexpr std::uint64_t low7 = 0x7F7F7F7F7F7F7F7FULL;
  const std::uint64_t y = x ^ (ones * static_cast<unsigned char>(c));  // zero bytes where c is
  return ~(((y & low7) + low7) | y) & highs;
}
}  // namespace swar

// True when s is plain ASCII (no byte >= 0x80) and holds no `escape` byte: then decoding escapes
// and transcoding to UTF-8 are the identity. Eight bytes at a time; every value read into a
// result is tested, and the byte loop it replaces took ~4 instructions a byte. Always inlined:
// values are a few bytes, and the call (entry, exit, arguments) was a third of its cost.
[[nodiscard, gnu::always_inline]] inline bool is_plain_ascii(std::string_view s, char escape) noexcept {
  const char* p = s.data();
  std::size_t n = s.size();
  const std::uint64_t e = swar::ones * static_cast<unsigned char>(escape);
  for (; n >= 8; p += 8, n -= 8) {
    const std::uint64_t x = swar::load(p);
    const std::uint64_t y = x ^ e;  // a zero byte where x holds the escape
    if (((x | ((y - swar::ones) & ~y)) & swar::highs) != 0) return false;
  }
  if (n == 0) return true;
  // The last 1-7 bytes gathered into the low bytes of one word (4, 2, 1 at a time, no loop:
  // values are mostly shorter than eight bytes), the bytes above them left out of the test.
  std::uint64_t x = 0;
  if ((n & 4U) != 0) {
    std::uint32_t t;
    std::memcpy(&t, p, 4);
    x = t;
    p += 4;
  }
  if ((n & 2U) != 0) {
    std::uint16_t t;
    std::memcpy(&t, p, 2);
    x = (x << 16) | t;
    p += 2;
  }
  if ((n & 1U) != 0) x = (x << 8) | static_cast<unsigned char>(*p);
  const std::uint64_t y = x ^ e;
  // A false "zero byte" only ever shows above a true one, so masking the bytes above n keeps the
  // test exact.
  const std::uint64_t mask = swar::highs >> (8 * (8 - n));
  return ((x | ((y - swar::ones) & ~y)) & mask) == 0;
}

// Index of the first CR or LF in s at or after pos; s.size() when there is none.
[[nodiscard]] inline std::size_t find_line_end(std::string_view s, std::size_t pos) noexcept {
  const char* const d = s.data();
  const std::size_t n = s.size();
#if defined(__SSE2__)
  // Sixteen bytes a test, exact (no TAB to look past): records are scanned for their end twice
  // (E1394 reassembly looks for the L record, parse_message splits), and the eight-byte loop was
  // ~0.14 M of 2.8 M instructions per pass of bench_astm, whose base64 histogram records are
  // kilobytes long.
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  for (; pos + 16 <= n; pos += 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + pos));
    const auto m = static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, cr), _mm_cmpeq_epi8(x, lf))));
    if (m != 0) return pos + static_cast<std::size_t>(std::countr_zero(m));
  }
#endif
  for (;;) {
    // CR (13) and LF (10) are below 14; a word with another byte below 14 (a TAB) is looked at
    // byte by byte and the search goes on after it.
    while (pos + 8 <= n && !swar::has_less(swar::load(d + pos), 14)) pos += 8;
    const std::size_t stop = pos + 8 < n ? pos + 8 : n;
    for (; pos < stop; ++pos)
      if (d[pos] == '\r' || d[pos] == '\n') return pos;
    if (pos >= n) return n;
  }
}

// Index of the first byte in s at or after pos that is not printable ASCII (0x20-0x7E), i.e. a
// control byte, DEL or a byte >= 0x80; s.size() when there is none.
[[nodiscard]] inline std::size_t skip_printable(std::string_view s, std::size_t pos) noexcept {
  const char* const d = s.data();
  const std::size_t n = s.size();
#if defined(__SSE2__)
  // Sixteen bytes a test, exact: as signed bytes, 0x20-0x7E are 32..126 and every other byte is
  // below 32 (controls, and 0x80-0xFF as negatives) or DEL (parse_message runs this over every
  // byte of every message: ~0.15 M of 2.8 M instructions per pass of bench_astm eight at a time).
  const __m128i space = _mm_set1_epi8(0x20);
  const __m128i del = _mm_set1_epi8(0x7F);
  for (; pos + 16 <= n; pos += 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + pos));
    const auto m = static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(_mm_cmplt_epi8(x, space), _mm_cmpeq_epi8(x, del))));
    if (m != 0) return pos + static_cast<std::size_t>(std::countr_zero(m));
  }
#endif
  while (pos + 8 <= n) {
    const std::uint64_t x = swar::load(d + pos);
    if (swar::has_less(x, 0x20) || swar::has_more(x, 0x7E)) break;
    pos += 8;
  }
  while (pos < n && static_cast<unsigned char>(d[pos]) >= 0x20 && static_cast<unsigned char>(d[pos]) < 0x7F) ++pos;
  return pos;
}

// Appends v as printf's "%0<width>lld" does (zero-padded to `width` characters, a minus sign
// counted in them): dates and times without snprintf, which cost ~1,600 instructions a call (a
// message formatted ~15 dates and offsets that way; issue #17).
inline void append_padded(std::string& out, long long v, int width) {
  unsigned long long u = static_cast<unsigned long long>(v);
  if (v < 0) {
    out += '-';
    u = 0 - u;
    --width;
  }
  char buf[24];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0);
  for (; n < width; ++n) buf[n] = '0';
  while (n > 0) out += buf[--n];
}

// The items with `sep` between them, for log lines and listings ("GLU,NA").
[[nodiscard]] inline std::string join(const std::vector<std::string>& items, std::string_view sep = ",") {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  return out;
}

// "1 result", "4 results": a count and its noun for log lines and listings (English plural in -s).
[[nodiscard]] inline std::string plural(std::size_t n, std::string_view what) {
  return std::to_string(n) + " " + std::string(what) + (n == 1 ? "" : "s");
}

// Removes C0 control characters and DEL from a decoded field (a NUL inside "5\0.0"): they are
// never part of a value and break whatever reads it downstream. Returns the first one removed,
// -1 when there was none.
[[nodiscard]] inline int remove_control_characters(std::string& s) {
  // Looked for first, nothing written: nearly every field has none, and the copying loop and the
  // resize (a library call) for every sample id, value and unit of every result were ~0.1 M of
  // 3.77 M instructions per pass of bench_astm.
  const auto is_control = [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == '\x7F'; };
  const auto at = std::find_if(s.begin(), s.end(), is_control);
  if (at == s.end()) return -1;
  int first = -1;
  auto out = static_cast<std::size_t>(at - s.begin());
  for (const char c : std::string_view(s).substr(out)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) {
      if (first < 0) first = u;
      continue;
    }
    s[out++] = c;
  }
  s.resize(out);
  return first;
}

}  // namespace interfaced
