#pragma once
// Control results on the instrument side (../shared/spec/qc.md): which series a control result
// belongs to, which limits judge it, and the in-memory charts the daemon and replay evaluate new
// control results against. Pure: no clock, no I/O; `now` and observed_at are data. Westgard
// itself is rerun/westgard.hpp.
//
// A control result's series is (device, parameter, material, lot, level): from the message where
// the profile says (result::qc_material / qc_lot / qc_level), else from `qc.controls` (a sample-id
// pattern -> material, lot, level). Its limits: the configuration's `qc.limits`, else the
// backend's GET /interfacing/qc-limits (kept locally), else the analyser's own mean / SD (Mindray
// OBR-18/19) -- said so in `limits_source`.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "rerun/qc_resolution.hpp"
#include "rerun/wall_time.hpp"
#include "rerun/westgard.hpp"

namespace interfaced::rerun::qc {

struct series_key {
  std::string parameter;
  std::string material;
  std::string lot;
  std::string level;
  friend bool operator==(const series_key&, const series_key&) = default;
};

// Limits of a series. Empty material / lot in a configured limit match any.
struct limits {
  series_key series;
  double mean = 0;
  double sd = 0;
  std::string unit;
};

// `qc.controls`: a sample id matching `sample_id` (a glob, `*` and `?`) is a control of this
// material, lot and level (a capture that does not carry them, or an analyser that does not mark
// its controls, e.g. the cobas c111).
// What the message says wins and the rule fills the gaps, unless `override` is set: then the rule's
// non-empty material / lot / level replace the message's (a lab that names its control material
// itself, or a QC file re-used for a new lot the analyser does not send).
struct control_rule {
  std::string sample_id;
  std::string material;
  std::string lot;
  std::string level;
  bool override = false;
};

struct qc_config {
  bool enabled = false;                 // a `qc` section exists: patient results carry qc_status
  std::vector<limits> configured;       // qc.limits
  std::vector<control_rule> controls;   // qc.controls
  rule_set default_rules = rule_set::defaults();
  std::map<std::string, rule_set, std::less<>> rules;  // qc.rules: per parameter
  std::int64_t event_window_s = 900;
  double max_interval_h = 24;
  std::map<std::string, double, std::less<>> max_interval_h_per;  // per parameter
  std::vector<resolution_code> resolution_codes;  // qc.resolution_codes
  [[nodiscard]] const rule_set& rules_for(std::string_view parameter) const;
  [[nodiscard]] double max_interval_for(std::string_view parameter) const;
};

// `*` any run, `?` one character.
[[nodiscard]] bool glob_match(std::string_view pattern, std::string_view text) noexcept;
[[nodiscard]] const control_rule* match_control(const qc_config& c, std::string_view sample_id) noexcept;
// The limits of a series in a list: parameter and level must be equal, material / lot when the
// limit names them; the last match wins (the newest).
[[nodiscard]] const limits* find_limits(const std::vector<limits>& list, const series_key& s) noexcept;

// One control result as the daemon hands it over.
struct control_result {
  std::string device;
  series_key series;
  std::optional<double> value;
  std::string unit;
  std::string observed_at;  // ISO-8601 with offset (for the body); `t` is its wall-clock reading
  timestamp t{};
  std::string result_id;    // stable id: device|parameter|material|lot|level|observed_at
  std::optional<double> analyser_mean;
  std::optional<double> analyser_sd;
};

struct control_verdict {
  std::optional<double> z;
  std::optional<double> mean;
  std::optional<double> sd;
  evaluation eval;
  std::string limits_source;  // "config", "backend", "analyser" or "" (no limits)
  std::string run_id;         // device + the QC event's first observed_at
  // Earlier control results of the chart whose outcome changed because this one arrived late.
  std::size_t changed_earlier = 0;
  bool late = false;          // observed before a result of the chart already evaluated
};

// A patient result of a run, kept to report the results a later rejecting control affects.
struct patient_ref {
  std::string sample_id;
  std::string parameter;
  std::string observed_at;  // ISO-8601 with offset
  timestamp t{};
};

// The daemon's QC state for every device: charts (device + parameter, every level), QC events per
// device and parameter for the runs patient results belong to. Held in memory.
class qc_tracker {
 public:
  explicit qc_tracker(const qc_config& cfg) : cfg_(&cfg) {}
  void set_config(const qc_config& cfg) { cfg_ = &cfg; }
  [[nodiscard]] const qc_config& config() const noexcept { return *cfg_; }
  // The limits the backend sent (GET /interfacing/qc-limits) for a device.
  void set_backend_limits(const std::string& device, std::vector<limits> l) { backend_[device] = std::move(l); }
  // The backend's limits of a device as set (nullopt: never set), and that state put back (a
  // limit change whose commit failed, qc_admin::limits_changed).
  [[nodiscard]] std::optional<std::vector<limits>> backend_limits(const std::string& device) const {
    const auto it = backend_.find(device);
    return it == backend_.end() ? std::nullopt : std::optional<std::vector<limits>>(it->second);
  }
  void restore_backend_limits(const std::string& device, std::optional<std::vector<limits>> l) {
    if (l) backend_[device] = std::move(*l);
    else backend_.erase(device);
  }

  // Evaluates a new control result against its chart and records it.
  control_verdict add(const control_result& c);
  // How many control results add() took since this tracker was made (not persisted): a change
  // whose commit failed tells from it whether results arrived meanwhile (qc_admin).
  [[nodiscard]] std::uint64_t additions() const noexcept { return additions_; }

  // qc_status of a patient result of `parameter` observed at `t` on `device`: "accepted",
  // "rejected" or "missed" (qc.md: the last QC event before it, not older than max_interval_h).
  [[nodiscard]] std::string patient_status(const std::string& device, std::string_view parameter, timestamp t) const;

  // True the first time `what` (a run id with a purpose) is asked: one post per run, not one per
  // control result of it.
  bool first_report(const std::string& what) { return reported_.insert(what).second; }
  // A patient result was posted (with its qc_status).
  void record_patient(const std::string& device, patient_ref p);
  // The patient results recorded since the last call (device, result), for the caller to persist
  // with the post that carries them; a restart gives them back through record_patient (then
  // drops what this returns).
  [[nodiscard]] std::vector<std::pair<std::string, patient_ref>> take_recorded_patients();
  // The patient results of `parameter` on `device` observed after the last accepted QC event
  // before `reject_at` and before it: what a rejecting control at reject_at affects.
  [[nodiscard]] std::vector<patient_ref> affected(const std::string& device, std::string_view parameter,
                                                  timestamp reject_at) const;
  // True when the chart of device + parameter has a control result observed after t: a control
  // result at t would arrive late (control_verdict::late).
  [[nodiscard]] bool has_later(const std::string& device, std::string_view parameter, timestamp t) const;
  // The patient results observed after t (the runs after a late control result).
  [[nodiscard]] std::vector<patient_ref> patients_after(const std::string& device, std::string_view parameter,
                                                        timestamp t) const;

  struct point_view {
    control_result c;
    control_verdict v;
  };
  // --- resolutions (qc.md "Resolutions") --------------------------------------------------------
  // A control result resolved with a code that excludes it from Westgard (it leaves every
  // history) and / or SKIP (rules bypassed at its initial evaluation). Cleared by undo.
  struct resolution_flags {
    bool excluded = false;
    bool skip = false;
  };
  void set_resolution(const std::string& result_id, resolution_flags f);
  void clear_resolution(const std::string& result_id) { resolved_.erase(result_id); }
  [[nodiscard]] resolution_flags resolution_of(std::string_view result_id) const;

  // The control result with this id: its chart key, the result and its verdict; nullopt: unknown.
  struct found {
    std::string chart_key;
    control_result c;
    control_verdict v;
  };
  [[nodiscard]] std::optional<found> find(std::string_view result_id) const;

  // One run re-evaluated: its id, when its QC event starts, what changed, the new status.
  struct run_report {
    std::string run_id;
    timestamp start{};
    change what = change::no_change;
    rule_mask original = 0;
    rule_mask analysed = 0;
    std::string status;  // status_reanalysis_westgard when marked, else status_no_resolution
    std::vector<patient_ref> patients;  // the patient results of the run (until the next QC event)
  };
  struct reevaluation_report {
    std::size_t runs_reevaluated = 0;
    std::size_t runs_changed = 0;
    bool stopped_early = false;  // 8 consecutive unchanged runs; else the end of the series
    std::vector<run_report> runs;
  };
  // Each control result's outcome as it counts (history.md): an excluded one counts as accepted
  // (a person judged it), else its verdict. Key: result id; value: outcome and observed_at.
  [[nodiscard]] std::map<std::string, std::pair<outcome, std::string>, std::less<>> effective_outcomes(
      const std::string& device, std::string_view parameter) const;
  // Re-evaluates the chart of device + parameter after a change at `from` (qc::reevaluate with the
  // change-detection table and the 8-run stop), in observed_at order; the verdicts take the new
  // outcomes. A re-evaluation: SKIP does not bypass (5.2.1).
  // `toggled`: the result whose exclusion was just set or cleared (its run was judged without it /
  // with it); every other excluded result counted in no run before either.
  reevaluation_report reevaluate_from(const std::string& device, std::string_view parameter, timestamp from,
                                      std::size_t stop_after = 8, std::string_view toggled = {});
  // After the limits changed (configuration, backend): each control result of device + parameter
  // whose limits now differ from the ones it was judged with takes the new mean, SD, z and
  // source (configured, else the backend's, else the analyser's). Returns the earliest changed
  // result's observed time, from where the chart must be re-evaluated; nullopt: nothing changed.
  std::optional<timestamp> rejudge_limits(const std::string& device, std::string_view parameter);
  // The patient results of the run whose QC event starts at `start` (until the next QC event).
  [[nodiscard]] std::vector<patient_ref> run_patients(const std::string& device, std::string_view parameter,
                                                      timestamp start) const;
  [[nodiscard]] const std::map<std::string, resolution_flags, std::less<>>& resolution_state() const noexcept {
    return resolved_;
  }

  // Every chart's points, for the read API.
  [[nodiscard]] std::vector<std::pair<std::string, std::vector<point_view>>> charts() const;

  // The persisted state (qc_json.hpp writes and reads it): charts by device + '\x1f' +
  // parameter, and the runs already reported. Patient results are persisted apart, row by row
  // (take_recorded_patients).
  struct chart {
    std::vector<control_result> results;
    std::vector<control_verdict> verdicts;
  };
  [[nodiscard]] std::map<std::string, chart, std::less<>>& chart_state() noexcept { return charts_; }
  [[nodiscard]] const std::map<std::string, chart, std::less<>>& chart_state() const noexcept { return charts_; }
  [[nodiscard]] std::set<std::string, std::less<>>& reported_state() noexcept { return reported_; }
  [[nodiscard]] const std::set<std::string, std::less<>>& reported_state() const noexcept { return reported_; }
  // The results kept per chart: the Westgard windows need 12, re-evaluation and the dashboard more.
  static constexpr std::size_t max_chart_results = 2000;

 private:
  [[nodiscard]] std::vector<chart_point> points_of(const chart& ch) const;
  [[nodiscard]] std::optional<limits> limits_of(const control_result& c, std::string& source) const;
  const qc_config* cfg_;
  std::map<std::string, std::vector<limits>, std::less<>> backend_;
  std::map<std::string, chart, std::less<>> charts_;  // key: device + '\x1f' + parameter
  std::map<std::string, std::vector<patient_ref>, std::less<>> patients_;  // same key, bounded
  std::vector<std::pair<std::string, patient_ref>> recorded_;  // since take_recorded_patients()
  std::set<std::string, std::less<>> reported_;
  std::map<std::string, resolution_flags, std::less<>> resolved_;  // result id -> resolution flags
  std::uint64_t additions_ = 0;
};

}  // namespace interfaced::rerun::qc
