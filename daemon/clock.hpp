#pragma once
// The daemon's readings of the clock, and the zone it shows them in. Everything below the daemon
// takes time as an argument (style.md): these are the few places that read it.
//
// Every time this process writes for a person or a program (logs, traces, /health, `status`, the
// backend bodies) is ISO-8601 with offset in the lab's zone (rerun/lab_time.hpp): `lab.timezone`
// once the configuration is read, the machine's zone before that and without it.

#include <chrono>
#include <string>

#include "rerun/lab_time.hpp"
#include "rerun/wall_time.hpp"

namespace interfaced::daemon {

// The lab's zone as the rest of the process reads it. Safe to read from any thread (loggers).
void set_lab_zone(rerun::lab_zone zone) noexcept;
[[nodiscard]] rerun::lab_zone current_lab_zone() noexcept;

// The machine's zone: TZ when it names an IANA zone (":Europe/Berlin", a zoneinfo path), else
// /etc/localtime's link into zoneinfo, else /etc/timezone; UTC when none does, and `note` says
// why (a POSIX TZ rule such as "CET-1CEST" is not a zone the tz database can name).
struct machine_zone_result {
  rerun::lab_zone zone;
  std::string note;  // empty when the zone was found
};
[[nodiscard]] machine_zone_result machine_zone();
// `lab.timezone` when set (check-config has validated it), else the machine's zone.
[[nodiscard]] machine_zone_result lab_zone_of(const std::string& configured);

// Now, "2026-11-23T09:00:01.250+01:00": wire traces, last-message times.
[[nodiscard]] std::string now_iso_ms();
[[nodiscard]] std::string iso_ms(std::chrono::system_clock::time_point t);
// Now as HL7 DTM with the lab's offset, "20261206130501+0100": MSH-7 of the ACKs the daemon sends.
[[nodiscard]] std::string now_hl7();
// The lab's wall clock as rerun::timestamp: analysers send local wall-clock times and the rerun
// module compares like with like (rerun/wall_time.hpp).
[[nodiscard]] rerun::timestamp wall_now();
[[nodiscard]] rerun::timestamp wall_time(std::chrono::system_clock::time_point t);

}  // namespace interfaced::daemon
