#pragma once
// process_reports_for_rerun and the waiting-list refresh (rerun.md, "process_reports_for_rerun",
// "Manual reruns and the waiting list"). Pure: the batch, the configuration, the state and `now`
// in; tagged results, outgoing messages, actions and state changes out. The caller persists
// `rerun_state` and the result store, and writes the messages to the durable outbox before it
// acknowledges the batch to the analyser (rerun.md step 5).
//
// Per batch the daemon calls:
//   rerun_inputs in{codes_of_device, rules, history, state, now};
//   batch_outcome out = process_reports_for_rerun(batch, in);
//   -> store out.messages in the outbox (in order), persist state, then ACK.
// Per waiting-list refresh of a device:
//   auto actions = refresh_waiting_list(state, device, entries, now);

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/model.hpp"
#include "rerun/code_map.hpp"
#include "rerun/lab_time.hpp"
#include "rerun/outgoing.hpp"
#include "rerun/qc.hpp"
#include "rerun/qualify.hpp"
#include "rerun/rerun_state.hpp"
#include "rerun/result_store.hpp"
#include "rerun/rules.hpp"

namespace interfaced::rerun {

// One instrument transmission (ASTM H..L, one HL7 message), results in transmission order.
struct batch {
  std::string device;    // device id
  std::string batch_id;
  std::vector<result> results;
  std::vector<std::string> raw;  // optional, parallel to results: the record as sent ("raw")
};

struct rerun_inputs {
  const code_map& codes;   // the batch's device
  const rule_set& rules;
  result_store& history;   // seen(S,P); results are recorded as they are qualified
  rerun_state& state;      // reruns, waiting lists, automatic rerun counts; mutated
  timestamp now;           // the lab's wall clock (lab_zone::wall_time)
  bool explain = false;    // fill batch_outcome::explain (`interfaced replay --explain`)
  // Times in the bodies are ISO-8601 with offset (backend-api.md): observed_at as the analyser
  // sent it, with its offset or this zone's (lab_time.hpp); default UTC.
  lab_zone zone;
  // The batch's receipt as the caller read it, lab_zone::format of the instant; empty: `now` in
  // `zone` (which, in the repeated autumn hour, cannot tell the two 02:30s apart).
  std::string received_at;
  // Control results (qc.md): evaluated here and posted to qc-results; patient results carry
  // qc_status when the tracker's configuration is enabled. nullptr: control results are still
  // kept apart from patient results, with the outcome no_limits.
  qc::qc_tracker* qc = nullptr;
};

// What happened to one result, parallel to batch::results.
struct result_tag {
  std::string parameter;       // machine name
  std::string key;             // result_key(parameter, result): the history's key; empty without a sample id
  std::string lab_report_id;   // empty when no waiting-list entry matched
  bool matched = false;
  bool duplicate = false;      // same value and observation time as a recorded result: not forwarded
  bool machine_triggered_rerun = false;
  qualify_row row = qualify_row::first_result;
  bool control = false;        // a control result: posted to qc-results, never as a patient result
  std::string qc_status;       // patient results when QC is configured: accepted, rejected, missed
};

// The explain trace of one result: the decision-table row and every rule that applied.
struct explain_entry {
  std::size_t index = 0;  // in batch::results
  std::string sample_id;
  std::string parameter;
  std::string decision;   // the row, or "duplicate"
  std::vector<rule_trace> rules;
  std::string note;       // e.g. why a fired rule requested nothing
};

struct batch_counts {
  std::size_t results = 0;
  std::size_t duplicates = 0;        // not forwarded
  std::size_t forwarded = 0;
  std::size_t unmatched = 0;         // forwarded without a waiting-list entry
  std::size_t sample_id_missing = 0; // forwarded once, flagged, never matched nor seen (also unmatched)
  std::size_t first_results = 0;     // rerun_number 0
  std::size_t requested_reruns = 0;  // rerun_number N > 0
  std::size_t instrument_triggered = 0;  // rerun_number -1
  std::size_t auto_rerun_requests = 0;
  std::size_t controls = 0;          // control results (qc-results), not in the counts above
  std::size_t qc_rejects = 0;        // control results whose outcome is reject
};

struct batch_outcome {
  std::vector<result_tag> tags;
  std::vector<outgoing_message> messages;  // in the order they must be delivered
  std::vector<action> actions;
  batch_counts counts;
  std::vector<explain_entry> explain;
  // Control results in batch order with their evaluation (replay prints them).
  std::vector<std::pair<std::size_t, qc_result_value>> controls;
  // qc.md 5.2.1, the re-evaluation row, for a late control result (observed before runs already
  // evaluated): the patient results of earlier batches on this device whose qc_status it changed,
  // each once. The caller runs the rules again for them (run_rules_again) in this batch's
  // transaction; results of this batch are not listed (their rules run here, step 3).
  std::vector<qc::patient_ref> qc_status_changed;
};

// Tags b.results in place (is_rerun, rerun_number, duplicate) and routes them (rerun.md step 4):
// rerun_number 0 -> results; N > 0 -> rerun values (requested / fulfilled so far; when all are
// fulfilled the rerun becomes received and the report leaves the waiting lists); -1 -> rerun
// values with machine_triggered_rerun (or, without a lab report, the results endpoint);
// fired auto-rerun rules -> rerun request.
[[nodiscard]] batch_outcome process_reports_for_rerun(batch& b, const rerun_inputs& in);

// qc.md 5.2.1, its re-evaluation row: the rules engine runs again for a patient result whose
// qc_status a QC re-evaluation changed (an exclusion, its undo, a limit change), or whose SKIP
// resolution was undone. A re-evaluation: SKIP bypasses nothing (skip_context::reevaluation), and
// the once-per-sample-and-rule counts of the rerun state hold as at the initial evaluation (a rule
// that already fired for the sample does not fire again).
struct rules_again_result {
  std::string device;
  result r;                   // as it was posted: value, unit, flags, status, range, observed_at, rerun_number
  std::string parameter;      // machine name
  std::string lab_report_id;  // empty: an auto-rerun rule that fires can request nothing (logged)
  std::string qc_status;      // its status now (the `qc_status` a condition reads)
  bool has_skip = false;      // it carries an active SKIP resolution
};

struct rules_again_outcome {
  std::vector<outgoing_message> messages;  // rerun requests and reflex posts, in firing order
  std::vector<action> actions;
  std::size_t results = 0;  // results the rules ran for
  std::size_t fired = 0;    // rerun requests and reflex posts
  // What it added to the rerun state (take_back undoes it): (sample, counter) increments and the
  // reflex orders queued, by device.
  std::vector<std::pair<std::string, std::string>> counted;
  std::vector<std::pair<std::string, reflex_order>> reflexes;
};

// previous.* are null here, as they were at the initial evaluation of every result the rules
// evaluate: a result with an earlier one of its (S,P) is a rerun (qualify_rerun: seen -> N or -1)
// and rules run for rerun_number 0 only (rerun.md). (The history keeps only the latest result of
// (S,P), so it could not give the earlier one anyway.)
[[nodiscard]] rules_again_outcome run_rules_again(const std::vector<rules_again_result>& results,
                                                  const rule_set& rules, rerun_state& state, timestamp now,
                                                  const lab_zone& zone);
// Undoes what `o` added to the state (its commit failed): the counts and the reflex orders.
void take_back(rerun_state& state, const rules_again_outcome& o);

// A device's fresh waiting list. An entry whose rerunNumber changed is rerun_number_changed: the
// new rerun is recorded and a re-test order queued for exactly its rerun_params. A report whose
// entry disappeared (or returned to rerunNumber 0) had its rerun confirmed or cancelled: its
// local state is dropped. Received reruns are kept while absent (flag 4 is not listed).
[[nodiscard]] std::vector<action> refresh_waiting_list(rerun_state& state, std::string_view device,
                                                       std::vector<waiting_list_entry> entries,
                                                       timestamp now);

// Forgets received reruns and automatic-rerun counts older than `cutoff` (the backend's rerun
// cache has a one-day TTL for the same reason: orphans whose confirmation never came back).
std::size_t prune_state(rerun_state& state, timestamp cutoff);

}  // namespace interfaced::rerun
