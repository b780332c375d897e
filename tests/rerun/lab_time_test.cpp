// rerun/lab_time: the one conversion to ISO-8601 with offset. Expected offsets come from the tz
// database's rules, not from the code: Europe/Berlin is UTC+1 (CET) in winter and UTC+2 (CEST)
// from the last Sunday of March 01:00 UTC to the last Sunday of October 01:00 UTC -- in 2026,
// 29 March and 25 October; Asia/Kolkata is UTC+05:30 all year; America/New_York UTC-5 in winter.
#include <catch2/catch.hpp>

#include "rerun/lab_time.hpp"

namespace interfaced::rerun {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

lab_zone zone(const char* name) {
  const auto z = lab_zone::find(name);
  REQUIRE(z.has_value());
  return *z;
}

// An instant given in UTC.
system_clock::time_point utc(int y, unsigned mo, unsigned d, int h, int mi, int s, int ms = 0) {
  return sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} + seconds{s} + milliseconds{ms};
}

}  // namespace

TEST_CASE("lab_time: IANA names are looked up in the tz database, unknown ones are refused") {
  CHECK(zone("Europe/Berlin").name() == "Europe/Berlin");
  CHECK(zone("Asia/Kolkata").name() == "Asia/Kolkata");
  CHECK_FALSE(lab_zone::find("Europe/Berlinn").has_value());
  CHECK_FALSE(lab_zone::find("Mars/Olympus_Mons").has_value());
  CHECK_FALSE(lab_zone::find("").has_value());
  CHECK(lab_zone{}.name() == "UTC");
}

TEST_CASE("lab_time: an instant carries the zone's offset at that instant, to the millisecond") {
  const auto berlin = zone("Europe/Berlin");
  CHECK(berlin.format(utc(2026, 12, 6, 12, 5, 1, 250)) == "2026-12-06T13:05:01.250+01:00");  // winter, CET
  CHECK(berlin.format(utc(2026, 7, 15, 12, 0, 0, 7)) == "2026-07-15T14:00:00.007+02:00");    // summer, CEST
  CHECK(zone("Asia/Kolkata").format(utc(2026, 12, 6, 17, 30, 0)) == "2026-12-06T23:00:00.000+05:30");
  CHECK(zone("UTC").format(utc(2026, 12, 6, 12, 5, 1, 999)) == "2026-12-06T12:05:01.999+00:00");
  CHECK(lab_zone{}.format(utc(2026, 12, 6, 12, 5, 1)) == "2026-12-06T12:05:01.000+00:00");
  CHECK(zone("America/New_York").format(utc(2026, 1, 15, 17, 0, 0)) == "2026-01-15T12:00:00.000-05:00");
}

TEST_CASE("lab_time: instants around the clock changes are each told apart by their offset") {
  const auto berlin = zone("Europe/Berlin");
  // Autumn: 02:30 local happens twice, at 00:30 UTC (still CEST) and 01:30 UTC (CET again).
  CHECK(berlin.format(utc(2026, 10, 25, 0, 30, 0)) == "2026-10-25T02:30:00.000+02:00");
  CHECK(berlin.format(utc(2026, 10, 25, 1, 30, 0)) == "2026-10-25T02:30:00.000+01:00");
  // Spring: 01:59:59.999 CET is followed by 03:00 CEST.
  CHECK(berlin.format(utc(2026, 3, 29, 0, 59, 59, 999)) == "2026-03-29T01:59:59.999+01:00");
  CHECK(berlin.format(utc(2026, 3, 29, 1, 0, 0)) == "2026-03-29T03:00:00.000+02:00");
}

TEST_CASE("lab_time: an instant as HL7 DTM with offset (MSH-7 of the host's messages)") {
  CHECK(zone("Europe/Berlin").format_hl7(utc(2026, 12, 6, 12, 5, 1, 250)) == "20261206130501+0100");
  CHECK(zone("Asia/Kolkata").format_hl7(utc(2026, 12, 6, 17, 30, 0)) == "20261206230000+0530");
  CHECK(zone("America/New_York").format_hl7(utc(2026, 1, 15, 17, 0, 0)) == "20260115120000-0500");
}

TEST_CASE("lab_time: an instant as the lab's wall clock reads it") {
  const auto kolkata = zone("Asia/Kolkata");
  CHECK(format_wall_time(kolkata.wall_time(utc(2026, 12, 6, 17, 30, 0, 900))) == "2026-12-06T23:00:00");
  CHECK(format_wall_time(zone("Europe/Berlin").wall_time(utc(2026, 7, 15, 12, 0, 0))) == "2026-07-15T14:00:00");
}

TEST_CASE("lab_time: an analyser's local time gets the lab zone's offset at that local time") {
  const auto berlin = zone("Europe/Berlin");
  CHECK(berlin.normalise("20260715140000") == "2026-07-15T14:00:00+02:00");  // summer
  CHECK(berlin.normalise("20261206130501") == "2026-12-06T13:05:01+01:00");  // winter
  CHECK(berlin.normalise("202611230801") == "2026-11-23T08:01:00+01:00");    // no seconds (YYYYMMDDHHMM)
  CHECK(berlin.normalise("2026112308") == "2026-11-23T08:00:00+01:00");      // HL7 hour precision
  CHECK(zone("Asia/Kolkata").normalise("20261206230000") == "2026-12-06T23:00:00+05:30");
  CHECK(zone("UTC").normalise("20261206230000") == "2026-12-06T23:00:00+00:00");
  CHECK(zone("America/New_York").normalise("20260115120000") == "2026-01-15T12:00:00-05:00");
  // Around the changes, by the documented rule: the offset in force before the change.
  CHECK(berlin.normalise("20261025015959") == "2026-10-25T01:59:59+02:00");
  CHECK(berlin.normalise("20261025023000") == "2026-10-25T02:30:00+02:00");  // repeated hour: the first (summer)
  CHECK(berlin.normalise("20261025030000") == "2026-10-25T03:00:00+01:00");
  CHECK(berlin.normalise("20260329015959") == "2026-03-29T01:59:59+01:00");
  CHECK(berlin.normalise("20260329023000") == "2026-03-29T02:30:00+01:00");  // skipped hour: winter's
  CHECK(berlin.normalise("20260329030000") == "2026-03-29T03:00:00+02:00");
  CHECK(berlin.offset_at_local(*parse_wall_time("20261025023000")) == 2h);
  CHECK(berlin.format_local(*parse_wall_time("20261206130501")) == "2026-12-06T13:05:01+01:00");
}

TEST_CASE("lab_time: the offset an analyser sent is kept, whatever the lab's zone") {
  const auto kolkata = zone("Asia/Kolkata");
  CHECK(kolkata.normalise("20080807142518+0200") == "2008-08-07T14:25:18+02:00");  // HL7 TS with zone
  CHECK(kolkata.normalise("20230513164804.1234-0500") == "2023-05-13T16:48:04.1234-05:00");
  CHECK(kolkata.normalise("20230513164804+0000") == "2023-05-13T16:48:04+00:00");
  CHECK(kolkata.normalise("20230513164804-0000") == "2023-05-13T16:48:04-00:00");  // "offset unknown" (RFC 3339)
  CHECK(kolkata.normalise("20230513164804.5") == "2023-05-13T16:48:04.5+05:30");
}

TEST_CASE("lab_time: a date alone stays a calendar date (ASTM LIS2-A2 5.6.2 YYYYMMDD)") {
  CHECK(zone("Europe/Berlin").normalise("20261123") == "2026-11-23");
  CHECK(zone("Europe/Berlin").normalise("2026-11-23") == "2026-11-23");
}

TEST_CASE("lab_time: ISO-8601 as sent is read too and written in the one form") {
  const auto berlin = zone("Europe/Berlin");
  CHECK(berlin.normalise("2026-11-23T08:01:00") == "2026-11-23T08:01:00+01:00");
  CHECK(berlin.normalise("2026-11-23 08:01") == "2026-11-23T08:01:00+01:00");
  CHECK(berlin.normalise("2026-11-23T08:01:00Z") == "2026-11-23T08:01:00+00:00");
  CHECK(berlin.normalise("2026-11-23T08:01:00.250+05:30") == "2026-11-23T08:01:00.250+05:30");
  CHECK(berlin.normalise("2026-12-06T13:05:01.250+01:00") == "2026-12-06T13:05:01.250+01:00");  // idempotent
}

TEST_CASE("lab_time: what is not a time is returned as sent") {
  const auto berlin = zone("Europe/Berlin");
  for (const char* s : {"", "-----", "2026", "202611", "20261323120000", "20260230120000", "20261123250000",
                        "20261123126000", "20261123120000+2500", "20261123120000X",
                        "2026-11-23T8:01", "20261123120000."})
    CHECK(berlin.normalise(s) == s);
}

}  // namespace interfaced::rerun
