#pragma once
// Westgard multirule QC (../shared/spec/qc.md "The rules", "Re-evaluation and propagation"): pure
// functions over z-scores. No clock, no I/O, no allocation on the per-result path: the caller
// passes the series history (earlier, not excluded results of the same series, oldest first) and
// the other levels of the same QC event, and gets the outcome and the rules that fired.
//
//   qc::rule_set rs = qc::rule_set::defaults();          // 1-3s/2-2s/R-4s/4-1s/10-x, 1-2s warning
//   qc::evaluation e = qc::evaluate(z, history_z, event_z, rs);
//
// evaluate_chart() runs a whole chart (one device + parameter, every level) in observed_at order;
// reevaluate() is the propagation after a change (exclusion, undo, limits, late control) with the
// change-detection table and the 8-run stop. Also here: the SKIP decision table (5.2.1).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rerun/wall_time.hpp"

namespace interfaced::rerun::qc {

// Every rule qc.md names. The order is the order rules are listed in output.
enum class rule : std::uint8_t { r1_2s, r1_3s, r2_2s, r_4s, r4_1s, r10_x, r2of3_2s, r3_1s, r8_x, r9_x, r12_x };
inline constexpr std::size_t rule_count = 11;

// A set of rules as bits (bit i = rule i): the fired rules of a result, or the rules applied.
using rule_mask = std::uint16_t;
[[nodiscard]] constexpr rule_mask bit(rule r) noexcept { return static_cast<rule_mask>(1u << static_cast<unsigned>(r)); }

// "1-2s", "2of3-2s", "R-4s" ... exactly as qc.md spells them.
[[nodiscard]] std::string_view to_string(rule r) noexcept;
[[nodiscard]] std::optional<rule> rule_from_string(std::string_view s) noexcept;
// The names of the rules in m, in rule order.
[[nodiscard]] std::vector<std::string> rule_names(rule_mask m);

// The rules applied to one parameter.
struct rule_set {
  rule_mask rules = 0;
  // Classic manual procedure: the other rules are looked at only after a 1-2s warning.
  bool gate_on_1_2s = false;
  // 1-3s/2-2s/R-4s/4-1s/10-x with 1-2s as warning (qc.md, controls run in pairs).
  [[nodiscard]] static rule_set defaults() noexcept;
  [[nodiscard]] bool has(rule r) const noexcept { return (rules & bit(r)) != 0; }
};

enum class outcome : std::uint8_t { accept, warning, reject, no_limits };
[[nodiscard]] std::string_view to_string(outcome o) noexcept;
// The worse of two outcomes (no_limits is worse than accept and warning: never a silent pass).
[[nodiscard]] outcome worst(outcome a, outcome b) noexcept;

struct evaluation {
  outcome result = outcome::accept;
  rule_mask fired = 0;  // 1-2s included when it fired as the warning
};

// One control result with z-score z. history: the earlier results of its series (same device,
// parameter, material, lot, level), excluded ones left out, oldest first -- only the last 11 are
// read. event: the z of the other levels of the same QC event measured before it, in time order.
// A rule fires only when its window is full.
[[nodiscard]] evaluation evaluate(double z, std::span<const double> history, std::span<const double> event,
                                  const rule_set& rs) noexcept;

// z = (value - mean) / sd, or nullopt when there is no usable limit (sd <= 0) or no number.
[[nodiscard]] std::optional<double> z_score(std::optional<double> value, double mean, double sd) noexcept;

// --- a whole chart ---------------------------------------------------------------------------

// One control result of a chart: one device and parameter, any level.
struct chart_point {
  timestamp observed_at{};
  std::string level;           // the series within the chart (material/lot/level joined by the caller)
  std::optional<double> z;     // nullopt: no limits or not numeric -> no_limits
  bool excluded = false;       // resolved with an excludes_from_westgard code: not in any history
  bool skip = false;           // SKIP at initial evaluation: Westgard rules bypassed (decision table)
};

struct chart_options {
  rule_set rules = rule_set::defaults();
  // Results within this many seconds of an event's first result are one QC event (qc.md default
  // 900). 0: the same observed_at only.
  std::int64_t event_window_s = 900;
  bool reevaluation = false;   // SKIP does not bypass during a re-evaluation
};

struct chart_result {
  evaluation eval;
  std::size_t event = 0;       // index of the QC event (0-based, in observed_at order)
};

// Evaluates every point in observed_at order (ties: input order); results are parallel to points.
// An excluded point is evaluated (for display) but never enters a history.
[[nodiscard]] std::vector<chart_result> evaluate_chart(std::span<const chart_point> points,
                                                       const chart_options& opt);

// --- re-evaluation and propagation ---------------------------------------------------------------

// qc.md change-detection table. original / analysed: the rules that fired in the run (1-2s
// warnings included); missed: the run's WESTGARDS_MISSED.
enum class change : std::uint8_t { no_change, error_changed, error_cleared, new_error, missed_westgard };
[[nodiscard]] change detect_change(rule_mask original, rule_mask analysed, bool missed) noexcept;
[[nodiscard]] std::string_view to_string(change c) noexcept;
[[nodiscard]] constexpr bool is_mark(change c) noexcept { return c != change::no_change; }

// The run status strings (exactly the seed's).
inline constexpr std::string_view status_no_resolution = "No Resolution";
inline constexpr std::string_view status_reanalysis_westgard = "Reanalysis required (Westgard)";
inline constexpr std::string_view status_missing_controls = "Reanalysis required (Missing controls received)";
inline constexpr std::string_view status_may_be_affected =
    "Results for results in this run may be affected by a recently received control. Reanalysis optional.";

struct run_change {
  std::size_t event = 0;      // QC event index in the chart
  rule_mask original = 0;
  rule_mask analysed = 0;
  change what = change::no_change;
};

struct reevaluation {
  std::vector<chart_result> results;  // the new evaluation of every point (parallel to points)
  std::vector<run_change> runs;       // every run re-evaluated, in order
  std::size_t runs_reevaluated = 0;
  std::size_t runs_changed = 0;
  bool stopped_early = false;         // 8 consecutive unchanged runs
};

// After a change at (or after) `from` (the observed_at of the changed point): the runs whose
// event starts at or after `from` are evaluated again in order and compared with `original`
// (parallel to points: the outcomes they were judged with); stop after `stop_after` consecutive
// unchanged runs (8 in qc.md; 0 = never, the worst case). missed(event) may be empty (all no).
// The points before `from` only feed the history, they are not evaluated again.
[[nodiscard]] reevaluation reevaluate(std::span<const chart_point> points, std::span<const chart_result> original,
                                      timestamp from, const chart_options& opt, std::size_t stop_after = 8,
                                      std::span<const bool> missed = {});

// --- SKIP (qc.md 5.2.1) --------------------------------------------------------------------------

enum class skip_decision : std::uint8_t { skip, execute };
// has_skip: the result carries a SKIP resolution; reevaluation: this is a re-evaluation;
// handles_skip_ran: a rule declaring handles_skip has already run for this result.
[[nodiscard]] skip_decision decide_skip(bool has_skip, bool reevaluation, bool handles_skip_ran) noexcept;

}  // namespace interfaced::rerun::qc
