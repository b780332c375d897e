#include "parsers/number.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>

#include "parsers/text.hpp"

namespace interfaced {

std::optional<double> parse_number(std::string_view text, bool comma_decimal) noexcept {
  std::string_view s = trim_padding(text);
  if (s.empty() || s.size() > 64) return std::nullopt;
  bool negative = false;
  if (s.front() == '+' || s.front() == '-') {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  bool decimal = false;
  std::uint64_t mantissa = 0;  // the digits as an integer (exact while there are at most 19)
  std::size_t count = 0;       // digits seen
  std::size_t fraction = 0;    // digits after the separator
  for (const char c : s) {
    const auto digit = static_cast<unsigned>(static_cast<unsigned char>(c)) - unsigned{'0'};
    if (digit <= 9) {
      // (Past 19 digits the mantissa wraps, unused: the slow path below reads the text.)
      mantissa = mantissa * 10 + digit;
      ++count;
      fraction += decimal ? 1u : 0u;
    } else if ((c == '.' || (comma_decimal && c == ',')) && !decimal) {
      decimal = true;
    } else {
      return std::nullopt;
    }
  }
  if (count == 0) return std::nullopt;
  // Clinger's fast path, what correctly rounding parsers (from_chars included) take first: an
  // integer below 2^53 and a power of ten up to 1e22 are both exact doubles, so their quotient,
  // rounded once by the division, is the correctly rounded value of the decimal -- the same
  // double from_chars gives, for a few instructions instead of ~150 per result value.
  static constexpr double powers[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                      1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                      1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  if (count <= 19 && mantissa <= (std::uint64_t{1} << 53) && fraction <= 22) {
    const double v = static_cast<double>(mantissa) / powers[fraction];
    return negative ? -v : v;
  }
  // The rare long number: from_chars on a copy with '.' as the separator (s holds only digits
  // and at most one separator now; the copy is made here, not for every value).
  char buf[65];
  std::size_t n = 0;
  for (const char c : s) buf[n++] = c == ',' ? '.' : c;
  double v = 0;
  const auto [p, ec] = std::from_chars(buf, buf + n, v, std::chars_format::fixed);
  if (ec != std::errc{} || p != buf + n || !std::isfinite(v)) return std::nullopt;
  return negative ? -v : v;
}

}  // namespace interfaced
