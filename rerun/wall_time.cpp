#include "rerun/wall_time.hpp"

#include <string>

#include "parsers/text.hpp"

namespace interfaced::rerun {

std::optional<timestamp> parse_wall_time(std::string_view s) noexcept {
  // Keep the digits of date and time, stop at a fraction or zone (both optional in HL7 TS).
  char d[14];
  std::size_t n = 0;
  std::size_t i = 0;
  for (; i < s.size() && n < sizeof d; ++i) {
    const char c = s[i];
    if (c >= '0' && c <= '9') {
      d[n++] = c;
    } else if (c == '-' || c == ':' || c == 'T' || c == ' ') {
      if (c == '-' && n >= 8) break;  // a zone offset after the date, not a date separator
      continue;
    } else {
      break;  // '.', '+', 'Z': fraction or zone
    }
  }
  if (n != 8 && n != 10 && n != 12 && n != 14) return std::nullopt;
  auto num = [&](std::size_t at, std::size_t len) {
    int v = 0;
    for (std::size_t k = at; k < at + len; ++k) v = v * 10 + (d[k] - '0');
    return v;
  };
  const std::chrono::year_month_day ymd{std::chrono::year{num(0, 4)},
                                        std::chrono::month{static_cast<unsigned>(num(4, 2))},
                                        std::chrono::day{static_cast<unsigned>(num(6, 2))}};
  if (!ymd.ok()) return std::nullopt;
  const int hh = n >= 10 ? num(8, 2) : 0;
  const int mm = n >= 12 ? num(10, 2) : 0;
  const int ss = n >= 14 ? num(12, 2) : 0;
  if (hh > 23 || mm > 59 || ss > 60) return std::nullopt;
  return std::chrono::sys_days{ymd} + std::chrono::hours{hh} + std::chrono::minutes{mm} +
         std::chrono::seconds{ss};
}

namespace {
// Three fields, the first zero-padded to `width` digits and the others to 2, `sep` between them
// unless it is '\0'.
void append_three(std::string& out, long long a, int width, long long b, long long c, char sep) {
  append_padded(out, a, width);
  if (sep != '\0') out += sep;
  append_padded(out, b, 2);
  if (sep != '\0') out += sep;
  append_padded(out, c, 2);
}

// ISO-8601 ("2024-03-01T08:05:09") or HL7's compact form ("20240301080509").
std::string format_time(timestamp t, bool separated) {
  const auto day = std::chrono::floor<std::chrono::days>(t);
  const std::chrono::year_month_day ymd{day};
  const std::chrono::hh_mm_ss hms{t - day};
  std::string out;
  out.reserve(19);
  append_date(out, static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
              separated ? '-' : '\0');
  if (separated) out += 'T';
  append_clock(out, hms.hours().count(), hms.minutes().count(), hms.seconds().count(), separated ? ':' : '\0');
  return out;
}
}  // namespace

void append_date(std::string& out, long long year, long long month, long long day, char sep) {
  append_three(out, year, 4, month, day, sep);
}

void append_clock(std::string& out, long long hours, long long minutes, long long seconds, char sep) {
  append_three(out, hours, 2, minutes, seconds, sep);
}

std::string format_wall_time(timestamp t) { return format_time(t, true); }

std::string format_message_time(timestamp t) { return format_time(t, false); }

}  // namespace interfaced::rerun
