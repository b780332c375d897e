#pragma once
// The daemon's local rerun state (rerun.md, "Manual reruns and the waiting list"): per report the
// active manual rerun (number, requested, fulfilled, requested/received), per device the last
// waiting list seen, and per (sample, parameter) the automatic reruns already requested (the cap).
// Plain data: process_reports_for_rerun and refresh_waiting_list mutate it, the daemon persists it
// (rerun_json.hpp) after every batch and refresh.

#include <map>
#include <string>
#include <vector>

#include "rerun/waiting_list.hpp"
#include "rerun/wall_time.hpp"

namespace interfaced::rerun {

// True when names holds name (parameter lists are short: a scan beats a set).
[[nodiscard]] bool contains(const std::vector<std::string>& names, std::string_view name) noexcept;

enum class rerun_status {
  requested,  // mirror of sampleRedrawFlag 3: some requested parameters still missing
  received,   // mirror of sampleRedrawFlag 4: every requested parameter arrived
};

struct report_rerun {
  std::string lab_report_id;
  std::string sample_id;
  int number = 0;                       // the manual rerun number N > 0
  std::vector<std::string> requested;   // machine names, as rerun_params said
  std::vector<std::string> fulfilled;   // machine names received for this rerun, arrival order
  rerun_status status = rerun_status::requested;
  timestamp since{};                    // when it was recorded, or became received (for prune)

  [[nodiscard]] bool is_requested(std::string_view p) const noexcept;
  [[nodiscard]] bool is_fulfilled(std::string_view p) const noexcept;
  [[nodiscard]] bool complete() const noexcept;  // every requested parameter fulfilled

  bool operator==(const report_rerun&) const = default;
};

// The tests a reflex rule added for a sample (issue #14: they go to the analyser the way rerun
// orders do: order download, or the answer to its next host query). Pending until a result for
// the test is received at or after `since`; pruned with the received reruns.
struct reflex_order {
  waiting_list_entry entry;        // the sample's entry when the rule fired (patient, priority), else sample and report
  std::string rule;                // the rule id
  std::vector<std::string> tests;  // machine names
  timestamp since{};               // the batch's receipt (the result store's received_at)

  bool operator==(const reflex_order&) const = default;
};

struct rerun_state {
  std::map<std::string, report_rerun, std::less<>> reruns;  // by lab_report_id
  // By device id: the waiting list as last refreshed, minus reports whose rerun was received.
  std::map<std::string, std::vector<waiting_list_entry>, std::less<>> waiting_lists;
  // By "sample\x1fparameter": automatic reruns requested so far (rerun.md: capped, default 1).
  struct auto_rerun_record {
    int count = 0;
    timestamp last{};  // for prune

    bool operator==(const auto_rerun_record&) const = default;
  };
  std::map<std::string, auto_rerun_record, std::less<>> auto_reruns;
  // By device id: reflex orders not yet fulfilled, in the order they fired.
  std::map<std::string, std::vector<reflex_order>, std::less<>> reflex_orders;

  [[nodiscard]] int auto_rerun_count(std::string_view sample, std::string_view parameter) const;
  void count_auto_rerun(std::string_view sample, std::string_view parameter, timestamp now);
  // Takes one count back (a request whose commit failed was never made).
  void uncount_auto_rerun(std::string_view sample, std::string_view parameter);

  // Structural equality: the daemon compares with what it last persisted instead of serialising
  // the whole state after every message.
  bool operator==(const rerun_state&) const = default;
};

}  // namespace interfaced::rerun
