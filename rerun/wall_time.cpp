#include "rerun/wall_time.hpp"

#include <cstdio>
#include <string>

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
// `format` takes year, month, day, hours, minutes, seconds in that order.
std::string format_time(timestamp t, const char* format) {
  const auto day = std::chrono::floor<std::chrono::days>(t);
  const std::chrono::year_month_day ymd{day};
  const std::chrono::hh_mm_ss hms{t - day};
  char buf[32];
  std::snprintf(buf, sizeof buf, format, static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}
}  // namespace

std::string format_wall_time(timestamp t) { return format_time(t, "%04d-%02u-%02uT%02d:%02d:%02d"); }

std::string format_message_time(timestamp t) { return format_time(t, "%04d%02u%02u%02d%02d%02d"); }

}  // namespace interfaced::rerun
