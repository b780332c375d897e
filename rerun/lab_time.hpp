#pragma once
// Times people and programs read, in one form: ISO-8601 with the offset from UTC,
// "2026-12-06T13:05:01.250+01:00" (backend-api.md: "times are ISO-8601 with their offset").
// The one conversion the logs, traces, `status`, /health, the backend bodies and `replay` use.
//
// - lab_zone: the lab's time zone (`lab.timezone`, an IANA name), looked up in the system's tz
//   database (tzdata, through Howard Hinnant's date/tz). Which zone the machine is in is the
//   daemon's question (daemon/clock.hpp); nothing here reads the clock or the environment.
// - Instants (the daemon's own clock readings) carry the offset the zone has at that instant.
// - Analyser times (ASTM "YYYYMMDD[HHMM[SS]]", HL7 TS "YYYYMMDD[HH[MM[SS[.S+]]]][+/-ZZZZ]")
//   keep the analyser's digits and the offset it sent; without one, the offset the lab's zone
//   has at that local time. The rule for the two hours a year where a local time is not one
//   instant: the offset in force *before* the clock change —
//     autumn, repeated hour (Europe/Berlin 2026-10-25 02:30 happens twice): the first, summer
//       offset, "2026-10-25T02:30:00+02:00";
//     spring, skipped hour (2026-03-29 02:30 never happens): the winter offset,
//       "2026-03-29T02:30:00+01:00" (the instant 03:30+02:00, as a clock not yet changed meant).
//   A date alone stays a date ("2026-11-23"): ISO-8601 gives a calendar day no offset.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "rerun/wall_time.hpp"

namespace date {
class time_zone;
}

namespace interfaced::rerun {

class lab_zone {
 public:
  // UTC.
  lab_zone() noexcept;
  // The zone an IANA name names ("Europe/Berlin", "Asia/Kolkata", "UTC"), or nullopt when the tz
  // database has no such zone (or cannot be read). Never throws.
  [[nodiscard]] static std::optional<lab_zone> find(std::string_view iana_name) noexcept;

  [[nodiscard]] std::string_view name() const noexcept;

  // An instant, to the millisecond: "2026-12-06T13:05:01.250+01:00".
  [[nodiscard]] std::string format(std::chrono::system_clock::time_point t) const;
  // An instant as HL7 v2 DTM with offset, "20261206130501+0100": MSH-7 of what the host sends.
  [[nodiscard]] std::string format_hl7(std::chrono::system_clock::time_point t) const;
  // An instant as the lab's wall clock reads it (the rerun module's `now`, wall_time.hpp).
  [[nodiscard]] timestamp wall_time(std::chrono::system_clock::time_point t) const;
  // The offset from UTC at a local wall-clock time, by the rule above for the hours that repeat
  // or do not exist.
  [[nodiscard]] std::chrono::seconds offset_at_local(timestamp local) const;
  // A local wall-clock time as ISO-8601 with that offset: "2026-11-23T08:01:00+01:00".
  [[nodiscard]] std::string format_local(timestamp local) const;
  // An analyser's time as sent -> ISO-8601 with offset (see above). Also accepted: ISO-8601 as
  // sent ("2026-11-23T08:01:00[+01:00|Z]"); anything it cannot read is returned as sent, so no
  // information is lost.
  [[nodiscard]] std::string normalise(std::string_view as_sent) const;
  // The lab-local calendar date of an analyser's time as sent: with an offset, the instant it
  // names seen in this zone; without, its own date (analysers send the lab's wall clock). nullopt
  // when it cannot be read. The historical summary's day (rerun/history.hpp).
  [[nodiscard]] std::optional<std::chrono::sys_days> local_day(std::string_view as_sent) const;

  friend bool operator==(const lab_zone& a, const lab_zone& b) noexcept { return a.zone_ == b.zone_; }

 private:
  explicit lab_zone(const date::time_zone* z) noexcept : zone_(z) {}
  const date::time_zone* zone_;  // owned by the tz database, which lives as long as the process
};

}  // namespace interfaced::rerun
