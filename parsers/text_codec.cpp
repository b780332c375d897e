#include "parsers/text_codec.hpp"

#include <array>
#include <cstdint>

namespace interfaced {

namespace {

constexpr char32_t replacement = 0xFFFD;

// Windows-1252 0x80-0x9F (the WHATWG / Microsoft table). 0 marks the five undefined bytes
// 0x81 0x8D 0x8F 0x90 0x9D; 0xA0-0xFF equal Latin-1.
constexpr std::array<char32_t, 32> cp1252_high{
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,  // 80-87
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,       // 88-8F
    0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,  // 90-97
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,  // 98-9F
};

void append_utf8(std::string& out, char32_t cp) {
  const auto u = static_cast<std::uint32_t>(cp);
  if (u < 0x80) {
    out.push_back(static_cast<char>(u));
  } else if (u < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (u >> 6)));
    out.push_back(static_cast<char>(0x80 | (u & 0x3F)));
  } else if (u < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (u >> 12)));
    out.push_back(static_cast<char>(0x80 | ((u >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (u & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (u >> 18)));
    out.push_back(static_cast<char>(0x80 | ((u >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((u >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (u & 0x3F)));
  }
}

// Reads one code point at s[i]. Returns the code point and advances i; on an invalid sequence
// returns U+FFFD and advances past its maximal invalid subpart (at least one byte) with ok=false.
char32_t next_code_point(std::string_view s, std::size_t& i, bool& ok) noexcept {
  const auto b0 = static_cast<unsigned char>(s[i]);
  ok = true;
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  std::size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  char32_t cp = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1FU;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0FU;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // UTF-16 surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07U;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // > U+10FFFF
  } else {                      // stray continuation, C0/C1 (overlong), F5-FF
    ++i;
    ok = false;
    return replacement;
  }
  std::size_t k = 1;
  for (; k < len; ++k) {
    if (i + k >= s.size()) break;
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < lo || b > hi) break;
    lo = 0x80;
    hi = 0xBF;
    cp = (cp << 6) | (b & 0x3FU);
  }
  i += k;
  if (k < len) {
    ok = false;
    return replacement;
  }
  return cp;
}

char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

std::optional<text_encoding> parse_encoding(std::string_view name) noexcept {
  while (!name.empty() && (name.front() == ' ' || name.front() == '\t')) name.remove_prefix(1);
  while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
  // "8859/1" and "UNICODE UTF-8" are HL7 MSH-18 spellings; the rest are IANA names and aliases.
  for (const auto* n : {"latin1", "latin-1", "iso-8859-1", "iso8859-1", "iso_8859-1", "8859/1",
                        "ascii", "us-ascii"}) {
    if (iequals(name, n)) return text_encoding::latin1;
  }
  for (const auto* n : {"utf-8", "utf8", "unicode utf-8"}) {
    if (iequals(name, n)) return text_encoding::utf8;
  }
  for (const auto* n : {"windows-1252", "windows1252", "cp1252", "cp-1252"}) {
    if (iequals(name, n)) return text_encoding::windows1252;
  }
  return std::nullopt;
}

std::string_view encoding_name(text_encoding enc) noexcept {
  switch (enc) {
    case text_encoding::latin1:
      return "latin1";
    case text_encoding::utf8:
      return "utf-8";
    case text_encoding::windows1252:
      return "windows-1252";
  }
  return "latin1";
}

std::string to_utf8(std::string_view bytes, text_encoding enc, bool* lossy) {
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 4);
  bool replaced = false;
  switch (enc) {
    case text_encoding::latin1:
      for (const char c : bytes) append_utf8(out, static_cast<unsigned char>(c));
      break;
    case text_encoding::windows1252:
      for (const char c : bytes) {
        const auto b = static_cast<unsigned char>(c);
        if (b >= 0x80 && b <= 0x9F) {
          const char32_t cp = cp1252_high[b - 0x80U];
          replaced = replaced || cp == 0;
          append_utf8(out, cp == 0 ? replacement : cp);
        } else {
          append_utf8(out, b);
        }
      }
      break;
    case text_encoding::utf8:
      for (std::size_t i = 0; i < bytes.size();) {
        const std::size_t start = i;
        bool ok = true;
        const char32_t cp = next_code_point(bytes, i, ok);
        if (ok) {
          out.append(bytes.substr(start, i - start));  // valid: copy the bytes as they are
        } else {
          replaced = true;
          append_utf8(out, cp);
        }
      }
      break;
  }
  if (replaced && lossy != nullptr) *lossy = true;
  return out;
}

std::string from_utf8(std::string_view utf8, text_encoding enc, bool* lossy) {
  if (enc == text_encoding::utf8) return to_utf8(utf8, enc, lossy);
  std::string out;
  out.reserve(utf8.size());
  bool replaced = false;
  for (std::size_t i = 0; i < utf8.size();) {
    bool ok = true;
    const char32_t cp = next_code_point(utf8, i, ok);
    if (!ok) {
      replaced = true;
      out.push_back('?');
      continue;
    }
    if (cp < 0x80 || (cp >= 0xA0 && cp <= 0xFF) || (enc == text_encoding::latin1 && cp <= 0xFF)) {
      out.push_back(static_cast<char>(static_cast<unsigned char>(cp)));
      continue;
    }
    char mapped = 0;
    if (enc == text_encoding::windows1252) {
      for (std::size_t k = 0; k < cp1252_high.size(); ++k) {
        if (cp1252_high[k] != 0 && cp1252_high[k] == cp) mapped = static_cast<char>(0x80 + k);
      }
    }
    if (mapped == 0) {
      replaced = true;
      mapped = '?';
    }
    out.push_back(mapped);
  }
  if (replaced && lossy != nullptr) *lossy = true;
  return out;
}

}  // namespace interfaced
