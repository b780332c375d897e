#include "rerun/lab_time.hpp"

#include <date/tz.h>

#include "parsers/text.hpp"
#include "rerun/wall_time.hpp"

namespace interfaced::rerun {
namespace {

using std::chrono::seconds;

// "+01:00", "-03:30", "+05:30": ISO-8601 extended offset (minutes; no zone in use since 1972 has
// seconds in its offset).
void append_offset(std::string& out, seconds offset) {
  const long long total = offset.count() / 60;
  const long long m = total < 0 ? -total : total;
  out += total < 0 ? '-' : '+';
  append_padded(out, m / 60, 2);
  out += ':';
  append_padded(out, m % 60, 2);
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

int number(std::string_view s) noexcept {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

// An analyser's time taken apart; text fields point into the string as sent.
struct parsed_time {
  int year = 0, month = 0, day = 0;
  bool has_time = false;
  int hour = 0, minute = 0, second = 0;
  std::string_view fraction;  // digits after the decimal point, as sent
  bool has_offset = false;
  seconds offset{0};
  char sign = '+';
};

// "+HHMM", "+HH:MM", "+HH" or "Z" (the whole rest of the string).
bool read_offset(std::string_view z, parsed_time& p) {
  if (z.empty()) return true;
  if (z == "Z") {
    p.has_offset = true;
    return true;
  }
  if (z[0] != '+' && z[0] != '-') return false;
  p.sign = z[0];
  z.remove_prefix(1);
  std::string digits;
  for (std::size_t i = 0; i < z.size(); ++i) {
    if (is_digit(z[i])) digits += z[i];
    else if (!(z[i] == ':' && i == 2)) return false;
  }
  if (digits.size() != 2 && digits.size() != 4) return false;
  const int hh = number(std::string_view(digits).substr(0, 2));
  const int mm = digits.size() == 4 ? number(std::string_view(digits).substr(2, 2)) : 0;
  if (hh > 23 || mm > 59) return false;
  p.has_offset = true;
  p.offset = seconds((hh * 60 + mm) * 60) * (p.sign == '-' ? -1 : 1);
  return true;
}

// ".S+" after the seconds: the digits, as sent. False for a '.' with no digit after it.
bool read_fraction(std::string_view& rest, parsed_time& p) {
  if (rest.empty() || rest[0] != '.') return true;
  std::size_t f = 1;
  while (f < rest.size() && is_digit(rest[f])) ++f;
  if (f == 1) return false;
  p.fraction = rest.substr(1, f - 1);
  rest.remove_prefix(f);
  return true;
}

// HL7 TS / ASTM: "YYYYMMDD[HH[MM[SS[.S+]]]][+/-ZZZZ]".
bool read_compact(std::string_view s, parsed_time& p) {
  std::size_t n = 0;
  while (n < s.size() && is_digit(s[n])) ++n;
  if (n != 8 && n != 10 && n != 12 && n != 14) return false;
  p.year = number(s.substr(0, 4));
  p.month = number(s.substr(4, 2));
  p.day = number(s.substr(6, 2));
  if (n >= 10) {
    p.has_time = true;
    p.hour = number(s.substr(8, 2));
  }
  if (n >= 12) p.minute = number(s.substr(10, 2));
  if (n >= 14) p.second = number(s.substr(12, 2));
  std::string_view rest = s.substr(n);
  if (n == 14 && !read_fraction(rest, p)) return false;
  return read_offset(rest, p);
}

// ISO-8601 as some analysers and our own JSON send it: "YYYY-MM-DD[(T| )HH:MM[:SS[.f+]]][zone]".
bool read_iso(std::string_view s, parsed_time& p) {
  auto two = [&](std::size_t at) { return at + 2 <= s.size() && is_digit(s[at]) && is_digit(s[at + 1]); };
  if (s.size() < 10 || !two(0) || !two(2) || s[4] != '-' || !two(5) || s[7] != '-' || !two(8)) return false;
  p.year = number(s.substr(0, 4));
  p.month = number(s.substr(5, 2));
  p.day = number(s.substr(8, 2));
  std::string_view rest = s.substr(10);
  if (rest.empty()) return true;
  if ((rest[0] != 'T' && rest[0] != ' ') || rest.size() < 6) return false;
  s = rest.substr(1);
  if (!two(0) || s[2] != ':' || !two(3)) return false;
  p.has_time = true;
  p.hour = number(s.substr(0, 2));
  p.minute = number(s.substr(3, 2));
  rest = s.substr(5);
  if (!rest.empty() && rest[0] == ':') {
    if (rest.size() < 3 || !is_digit(rest[1]) || !is_digit(rest[2])) return false;
    p.second = number(rest.substr(1, 2));
    rest.remove_prefix(3);
    if (!read_fraction(rest, p)) return false;
  }
  return read_offset(rest, p);
}

}  // namespace

lab_zone::lab_zone() noexcept : zone_(nullptr) {}

std::optional<lab_zone> lab_zone::find(std::string_view iana_name) noexcept {
  if (iana_name.empty()) return std::nullopt;
  try {
    return lab_zone(date::locate_zone(iana_name));
  } catch (...) {  // unknown name, or no readable tz database: both mean "no such zone here"
    return std::nullopt;
  }
}

std::string_view lab_zone::name() const noexcept { return zone_ ? zone_->name() : std::string_view("UTC"); }

std::string lab_zone::format(std::chrono::system_clock::time_point t) const {
  const auto ms = std::chrono::floor<std::chrono::milliseconds>(t);
  const auto s = std::chrono::floor<seconds>(ms);
  const seconds offset = zone_ ? zone_->get_info(s).offset : seconds{0};
  std::string out = format_wall_time(s + offset);
  out += '.';
  append_padded(out, (ms - s).count(), 3);
  append_offset(out, offset);
  return out;
}

std::string lab_zone::format_hl7(std::chrono::system_clock::time_point t) const {
  const auto s = std::chrono::floor<seconds>(t);
  const seconds offset = zone_ ? zone_->get_info(s).offset : seconds{0};
  std::string out = format_message_time(s + offset);
  std::string iso;
  append_offset(iso, offset);  // "+01:00" -> "+0100"
  out += iso.substr(0, 3) + iso.substr(4, 2);
  return out;
}

timestamp lab_zone::wall_time(std::chrono::system_clock::time_point t) const {
  const auto s = std::chrono::floor<seconds>(t);
  return s + (zone_ ? zone_->get_info(s).offset : seconds{0});
}

seconds lab_zone::offset_at_local(timestamp local) const {
  if (!zone_) return seconds{0};
  // local_info.first: the only offset when the time is unique; the one in force before the change
  // when the time repeats (autumn) or was skipped (spring) -- the rule in the header.
  return zone_->get_info(date::local_seconds{local.time_since_epoch()}).first.offset;
}

std::string lab_zone::format_local(timestamp local) const {
  std::string out = format_wall_time(local);
  append_offset(out, offset_at_local(local));
  return out;
}

std::string lab_zone::normalise(std::string_view as_sent) const {
  parsed_time p;
  if (!read_compact(as_sent, p)) {
    p = parsed_time{};
    if (!read_iso(as_sent, p)) return std::string(as_sent);
  }
  const std::chrono::year_month_day ymd{std::chrono::year{p.year}, std::chrono::month{static_cast<unsigned>(p.month)},
                                        std::chrono::day{static_cast<unsigned>(p.day)}};
  // 60: a leap second, which HL7 and ISO-8601 allow.
  if (!ymd.ok() || p.hour > 23 || p.minute > 59 || p.second > 60) return std::string(as_sent);
  std::string out;
  append_date(out, p.year, p.month, p.day);
  if (!p.has_time) return out;  // a calendar day has no offset
  out += 'T';
  append_clock(out, p.hour, p.minute, p.second);
  if (!p.fraction.empty()) out.append(".").append(p.fraction);
  if (p.has_offset) {
    // The analyser's own offset, as it sent it ("-00:00" stays: RFC 3339's "offset unknown").
    if (p.offset == seconds{0} && p.sign == '-') out += "-00:00";
    else append_offset(out, p.offset);
    return out;
  }
  const timestamp local = std::chrono::sys_days{ymd} + std::chrono::hours{p.hour} + std::chrono::minutes{p.minute} +
                          seconds{p.second > 59 ? 59 : p.second};
  append_offset(out, offset_at_local(local));
  return out;
}

std::optional<std::chrono::sys_days> lab_zone::local_day(std::string_view as_sent) const {
  parsed_time p;
  if (!read_compact(as_sent, p)) {
    p = parsed_time{};
    if (!read_iso(as_sent, p)) return std::nullopt;
  }
  const std::chrono::year_month_day ymd{std::chrono::year{p.year}, std::chrono::month{static_cast<unsigned>(p.month)},
                                        std::chrono::day{static_cast<unsigned>(p.day)}};
  if (!ymd.ok() || p.hour > 23 || p.minute > 59 || p.second > 60) return std::nullopt;
  const std::chrono::sys_days day{ymd};
  if (!p.has_time || !p.has_offset) return day;
  const timestamp instant = day + std::chrono::hours{p.hour} + std::chrono::minutes{p.minute} +
                            seconds{p.second > 59 ? 59 : p.second} - p.offset;
  return std::chrono::floor<std::chrono::days>(wall_time(instant));
}

}  // namespace interfaced::rerun
