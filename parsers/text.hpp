#pragma once
// Small text helpers every floor uses, standard library only.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace interfaced {

// `s` without the blanks (space, tab) that pad fixed-width fields.
[[nodiscard]] constexpr std::string_view trim_padding(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
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
  int first = -1;
  std::size_t out = 0;
  for (const char c : s) {
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
