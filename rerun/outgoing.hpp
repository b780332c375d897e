#pragma once
// What process_reports_for_rerun and refresh_waiting_list hand back to the daemon: outgoing
// messages for the backend (backend-api.md: results, rerun values, rerun request; field names as
// there) and actions for the daemon itself (re-test orders, state changes to log). JSON-free:
// rerun_json.hpp turns a message into its body. The daemon assigns the outbox id (the
// Idempotency-Key) when it stores the message.

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace interfaced::rerun {

// The backend's activity log codes (rerun.md, "Activity codes").
enum class activity : int {
  rerun_values_received = 979,   // RERUN_VALUES_RECEIVED
  rerun_values_confirmed = 980,  // RERUN_VALUES_CONFIRMED
  rerun_requested = 981,         // RERUN_REQUESTED
  rerun_failed = 984,            // RERUN_FAILED
  rerun_cancelled = 985,         // RERUN_CANCELLED
};

[[nodiscard]] constexpr int code(activity a) noexcept { return static_cast<int>(a); }

enum class endpoint {
  results,        // POST /interfacing/device-results
  rerun_values,   // POST /sample-rerun/values
  rerun_request,  // POST /sample-rerun/request, x-is-internal-request: True
  qc_results,     // POST /interfacing/qc-results (qc.md): control results, never patient results
  qc_runs,        // POST /interfacing/qc-runs: a run's status change, the patient results it affects
  reflex,         // POST /interfacing/reflex: tests a reflex rule added
};

// The endpoint's name, as the outbox stores it and delivery maps it to a path (results,
// rerun_values, rerun_request): one spelling everywhere.
[[nodiscard]] const char* to_string(endpoint e) noexcept;

// One result in the shape backend-api.md gives for results and rerun values.
struct result_value {
  std::string sample_id;
  std::string lab_report_id;  // empty: not matched to a report (the key is then omitted)
  std::string parameter;      // machine name
  std::string value;
  std::optional<double> numeric;
  std::string unit;
  std::vector<std::string> flags;
  std::string reference_range;
  std::string status;
  std::string observed_at;    // ISO-8601 with the analyser's offset, else the lab's (lab_time.hpp); a date alone stays a date
  bool is_rerun = false;
  int rerun_number = 0;
  bool machine_triggered_rerun = false;
  std::string instrument_code;
  std::string raw;            // the record as sent, when the caller keeps it
  // Additions (backend-api.md fields unchanged; these are sent only when set):
  // The analyser sent no sample id: never matched nor seen (derived from sample_id).
  [[nodiscard]] bool sample_id_missing() const noexcept { return sample_id.empty(); }
  std::string sub_id;              // HL7 OBX-4
  std::string result_type;         // ASTM result type (`F`, or `I` / `P` with no final value)
  std::vector<std::pair<std::string, std::string>> companions;  // label -> value (interpretation, raw signal)
  std::vector<std::string> statuses;  // R.9 when it repeats (`F\R`)
  // qc.md: "accepted", "rejected" or "missed" when QC is configured (the `qc` section); empty:
  // not sent.
  std::string qc_status;
};

// One control result in the shape of qc.md's POST /interfacing/qc-results.
struct qc_result_value {
  std::string parameter, material, lot, level;  // the series
  std::string sample_id;       // the id the analyser gave the control
  std::string value;
  std::optional<double> numeric;
  std::string unit;
  std::string observed_at;     // ISO-8601 with offset
  std::optional<double> z;
  std::optional<double> mean;  // the limits it was judged with
  std::optional<double> sd;
  std::string limits_source;   // config, backend, analyser; empty: no limits (outcome no_limits)
  std::string outcome;         // accept, warning, reject, no_limits
  std::vector<std::string> rules;
  std::string run_id;
  std::string result_id;
  std::string instrument_code;  // the test identity as the analyser sent it (as in patient results)
};

struct qc_results_body {
  std::string device_id;
  std::vector<qc_result_value> results;
};

struct qc_run_patient {
  std::string sample_id;
  std::string parameter;
  std::string observed_at;
  // When it was exported: the backend took the post that carried it (the outbox's delivered_at,
  // ISO-8601); empty: not delivered yet (still in the outbox, re-tagged by this post).
  std::string exported_at;
};

// POST /interfacing/reflex {lab_report_id, sample_id, trigger:{parameter, value, rule}, add_parameters}.
struct reflex_body {
  std::string lab_report_id;
  std::string sample_id;
  std::string parameter;
  std::string value;
  std::string rule;
  std::vector<std::string> add_parameters;
};

struct qc_run_body {
  std::string device_id;
  std::string run_id;
  std::string status;  // the seed's run status strings (westgard.hpp)
  std::string reason;
  std::vector<qc_run_patient> patient_results;
};

struct results_body {
  std::string device_id;
  std::string batch_id;
  std::string received_at;  // ISO-8601 with offset of the batch's receipt (rerun_inputs::received_at)
  std::vector<result_value> results;
};

struct rerun_values_body {
  std::string lab_report_id;
  int rerun_number = 0;
  bool machine_triggered_rerun = false;
  std::vector<std::string> requested_parameters;
  std::vector<std::string> fulfilled_parameters;
  std::vector<result_value> values;
  activity act = activity::rerun_values_received;
};

// A value a rule saw, for the request's reason and the explain trace.
struct seen_value {
  enum class kind { null, boolean, number, string, time, strings } k = kind::null;
  bool b = false;
  double n = 0;
  std::string s;                 // string, or time as ISO-8601
  std::vector<std::string> list;
};

struct rerun_request_body {
  std::string lab_report_id;
  std::vector<std::string> requested_parameters;
  std::string rule;                                         // reason.rule
  std::vector<std::pair<std::string, seen_value>> values;  // reason.values, by variable name
  activity act = activity::rerun_requested;
};

struct outgoing_message {
  endpoint kind = endpoint::results;
  std::string lab_report_id;  // per-report ordering key; empty for a results batch
  std::optional<activity> act;
  bool internal_request = false;  // header x-is-internal-request: True (login_user = -1)
  results_body results;           // kind == results
  rerun_values_body rerun_values; // kind == rerun_values
  rerun_request_body request;     // kind == rerun_request
  qc_results_body qc;             // kind == qc_results
  qc_run_body qc_run;             // kind == qc_runs
  reflex_body reflex;             // kind == reflex
};

// Things the daemon does itself, besides sending.
enum class action_kind {
  // rerun_number_changed: order exactly `parameters` (machine names) again for `sample_id` on
  // `device` (order download, or the answer to its next host query) -- when the analyser takes orders.
  queue_retest_order,
  rerun_recorded,   // a new manual rerun was recorded locally (log line)
  rerun_received,   // every requested parameter arrived: left the waiting list (979)
  rerun_closed,     // confirmed (980) or cancelled (985) in the backend: local state dropped
  rerun_failed,     // an automatic rerun could not be requested (984), see note
};

struct action {
  action_kind kind = action_kind::queue_retest_order;
  std::string device;
  std::string sample_id;
  std::string lab_report_id;
  int rerun_number = 0;
  std::vector<std::string> parameters;
  std::optional<activity> act;
  std::string note;
};

}  // namespace interfaced::rerun
