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

}  // namespace interfaced
