#pragma once
// The historical summary (spec/history.md): counts per lab-local day, per event type and two
// generic dimensions, and the pure reading of them -- buckets (lab-local days, ISO weeks starting
// on Monday, calendar months), the zero-filled matrix, its JSON / CSV / table forms.
//
// Contract:
//  - Pure: no clock, no I/O. `today` (the lab-local date of the caller's `now`) is passed in.
//  - A day is a lab-local calendar date (std::chrono::sys_days used as a calendar label), so a
//    day with a DST change (23 or 25 hours) is still exactly one bucket.
//  - history_day() is the ONE rule that decides an event's day; the live path (the outbox worker)
//    and `interfaced stats rebuild` both call it, which is what keeps them equal.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "rerun/lab_time.hpp"
#include "rerun/outgoing.hpp"
#include "rerun/process.hpp"

namespace interfaced::rerun {

// The event types of history.md's table.
namespace history_events {
inline constexpr std::string_view device_result = "device_result";
inline constexpr std::string_view device_sample = "device_sample";
inline constexpr std::string_view device_rerun_requested = "device_rerun_requested";
inline constexpr std::string_view device_rerun_received = "device_rerun_received";
inline constexpr std::string_view device_machine_rerun = "device_machine_rerun";
inline constexpr std::string_view device_qc_accepted = "device_qc_accepted";
inline constexpr std::string_view device_qc_rejected = "device_qc_rejected";
inline constexpr std::string_view device_file_report = "device_file_report";
inline constexpr std::string_view device_dead_letter = "device_dead_letter";
inline constexpr std::string_view device_link_error = "device_link_error";
}  // namespace history_events
// Every type above, in the table's order.
[[nodiscard]] const std::vector<std::string>& history_event_types();
[[nodiscard]] bool is_history_event_type(std::string_view t) noexcept;

// One change of a count. A correction (a result excluded, a QC outcome resolved) is an event
// with delta -1 (and +1 on the new type) and the ORIGINAL observed_at, so it lands on the day
// the thing was observed, not the day of the correction.
struct history_event {
  std::string event_type;
  std::string dimension_a;  // device
  std::string dimension_b;  // parameter, endpoint or link-error kind; empty: none
  std::string sample;       // device_result: the sample id (device_sample is derived from it)
  std::string observed_at;  // the analyser's time as sent (any form lab_zone reads); empty: `at`
  std::chrono::sys_time<std::chrono::milliseconds> at{};  // when the daemon saw it (fallback)
  std::int64_t delta = 1;
};

// The lab-local date an event counts on: observed_at read in `zone` (with its own offset when it
// has one), else the instant `at` in `zone`.
[[nodiscard]] std::chrono::sys_days history_day(const lab_zone& zone, const history_event& e);

// The events of one processed batch (history.md's table): device_result per patient result
// forwarded, device_qc_accepted / device_qc_rejected per judged control result, device_rerun_received / device_machine_rerun by
// rerun number, device_rerun_requested per parameter of an automatic rerun request or a rerun
// recorded from the waiting list. `at`: when the batch was received.
[[nodiscard]] std::vector<history_event> batch_history_events(const batch& b, const batch_outcome& out,
                                                              std::chrono::sys_time<std::chrono::milliseconds> at);
// device_rerun_requested for every rerun recorded among `acts` (a waiting-list refresh).
[[nodiscard]] std::vector<history_event> action_history_events(const std::vector<action>& acts,
                                                               std::chrono::sys_time<std::chrono::milliseconds> at);

// "2026-12-05"; parse_day: nullopt unless exactly YYYY-MM-DD and a real date.
[[nodiscard]] std::string format_day(std::chrono::sys_days d);
[[nodiscard]] std::optional<std::chrono::sys_days> parse_day(std::string_view s) noexcept;

enum class granularity { day, week, month };
[[nodiscard]] std::optional<granularity> granularity_from(std::string_view s) noexcept;
[[nodiscard]] const char* to_string(granularity g) noexcept;
// The first day of the bucket holding d (weeks: the Monday; months: the 1st).
[[nodiscard]] std::chrono::sys_days bucket_start(std::chrono::sys_days d, granularity g) noexcept;
// The buckets covering [from, to], labelled by their first day (the first may start before from).
[[nodiscard]] std::vector<std::chrono::sys_days> bucket_starts(std::chrono::sys_days from, std::chrono::sys_days to,
                                                               granularity g);

enum class stats_by { parameter, device };

struct stats_query {
  std::optional<std::chrono::sys_days> from;  // inclusive; default: `to` - 6 days
  std::optional<std::chrono::sys_days> to;    // inclusive; default: today
  granularity gran = granularity::day;
  stats_by by = stats_by::parameter;
  std::vector<std::string> events;   // empty: every type
  std::vector<std::string> devices;  // empty: every device; given: each one a row even if silent
};

// from/to filled in from `today`; an error text when from > to or a type is unknown.
struct resolved_query {
  std::chrono::sys_days from, to;
  stats_query q;
  std::string error;
};
[[nodiscard]] resolved_query resolve(const stats_query& q, std::chrono::sys_days today);

// The query from named parameters, the CLI's and /api/stats' names: from, to, granularity, by,
// event (repeatable), device (repeatable), format. Unknown names are ignored (a cache-buster);
// a malformed value sets error.
struct parsed_stats_params {
  stats_query q;
  std::string format = "json";
  std::string error;
};
[[nodiscard]] parsed_stats_params parse_stats_params(
    const std::vector<std::pair<std::string, std::string>>& params, std::string default_format);

// A stored summary row (what the SQL read returns).
struct summary_row {
  std::chrono::sys_days day;
  std::string event_type, dimension_a, dimension_b;
  std::int64_t value = 0;
};

struct stats_row {
  std::string event_type, dimension_a;
  std::optional<std::string> dimension_b;  // null with stats_by::device
  std::vector<std::int64_t> values;        // one per bucket
};

struct stats_table {
  std::chrono::sys_days from, to;
  granularity gran = granularity::day;
  std::string timezone;
  std::vector<std::chrono::sys_days> buckets;
  std::vector<stats_row> rows;  // sorted by event type (table order), dimension_a, dimension_b
};

// Stored counts of consecutive days (the summary keeps one row per month holding its days):
// values[i] counts day first + i. A span names its entity even when its values are all zero.
struct summary_span {
  std::chrono::sys_days first;
  std::string event_type, dimension_a, dimension_b;
  std::vector<std::int64_t> values;
};

// The complete matrix: every entity seen in `spans` (plus every requested device) a row, every
// bucket a value, zeros included. Days outside [from, to] or not matching the filters are ignored;
// with stats_by::device the parameters of a device are summed.
[[nodiscard]] stats_table aggregate(const resolved_query& r, std::string_view timezone,
                                    const std::vector<summary_span>& spans);
// The same from single-day rows (each a span of one day).
[[nodiscard]] stats_table aggregate(const resolved_query& r, std::string_view timezone,
                                    const std::vector<summary_row>& rows);

// {"from","to","granularity","timezone","buckets":[...],"rows":[{"event_type","dimension_a",
// "dimension_b","values":[...]}]}
[[nodiscard]] nlohmann::json to_json(const stats_table& t);
// The same JSON as text, keys in the contract's order, written directly (a 6-month answer has
// hundreds of thousands of values: no intermediate JSON tree).
[[nodiscard]] std::string to_json_text(const stats_table& t);
// event_type,dimension_a,dimension_b,<bucket>... one line per row (RFC 4180 quoting).
[[nodiscard]] std::string to_csv(const stats_table& t);
// Aligned columns for a terminal.
[[nodiscard]] std::string to_table(const stats_table& t);

}  // namespace interfaced::rerun
