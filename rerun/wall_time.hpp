#pragma once
// Observation times as analysers send them (ASTM "YYYYMMDD[HHMM[SS]]", HL7 TS with optional
// fraction and zone, ISO-8601 "YYYY-MM-DD[THH:MM[:SS]]") read as a point on the lab's wall clock.
// The zone suffix is ignored: analysers send local time and the daemon passes `now` on the same
// wall clock, so hours_since(...) compares like with like.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace interfaced::rerun {

using timestamp = std::chrono::sys_seconds;  // wall-clock seconds; no clock is ever read here

// The time s names, or nullopt when it is empty or malformed.
[[nodiscard]] std::optional<timestamp> parse_wall_time(std::string_view s) noexcept;

// "YYYY-MM-DDTHH:MM:SS".
[[nodiscard]] std::string format_wall_time(timestamp t);
// Appends the date "YYYY-MM-DD", or "YYYYMMDD" when sep is '\0'; the fields as given (a date
// checked by the caller), zero-padded as printf's "%04d"/"%02d" pads them.
void append_date(std::string& out, long long year, long long month, long long day, char sep = '-');
// Appends the time of day "HH:MM:SS", or "HHMMSS" when sep is '\0'.
void append_clock(std::string& out, long long hours, long long minutes, long long seconds, char sep = ':');
// "YYYYMMDDHHMMSS": ASTM H.14 and HL7 MSH-7 of the messages the host sends.
[[nodiscard]] std::string format_message_time(timestamp t);

}  // namespace interfaced::rerun
