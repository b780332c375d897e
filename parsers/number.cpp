#include "parsers/number.hpp"

#include <charconv>
#include <cmath>

#include "parsers/text.hpp"

namespace interfaced {

std::optional<double> parse_number(std::string_view text, bool comma_decimal) noexcept {
  std::string_view s = trim_padding(text);
  if (s.empty() || s.size() > 64) return std::nullopt;
  char buf[65];
  std::size_t n = 0;
  bool negative = false;
  if (s.front() == '+' || s.front() == '-') {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  bool digits = false;
  bool decimal = false;
  for (const char c : s) {
    if (c >= '0' && c <= '9') {
      digits = true;
      buf[n++] = c;
    } else if ((c == '.' || (comma_decimal && c == ',')) && !decimal) {
      decimal = true;
      buf[n++] = '.';
    } else {
      return std::nullopt;
    }
  }
  if (!digits) return std::nullopt;
  double v = 0;
  const auto [p, ec] = std::from_chars(buf, buf + n, v, std::chars_format::fixed);
  if (ec != std::errc{} || p != buf + n || !std::isfinite(v)) return std::nullopt;
  return negative ? -v : v;
}

}  // namespace interfaced
