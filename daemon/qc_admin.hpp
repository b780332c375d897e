#pragma once
// QC resolutions in the running daemon (qc.md "Resolutions", "Re-evaluation and propagation";
// issue #14 points 4 and 5): the local HTTP API the CLI (`interfaced qc resolve|approve|undo|
// history`) and the dashboard use, on the health endpoint:
//
//   POST /api/qc/resolve  {"result_id","code","by","reason","propose":false}
//   POST /api/qc/approve  {"proposal_id","by"}
//   POST /api/qc/undo     {"resolution_id","by","reason"}
//   GET  /api/qc/history  {"entries":[{"id","kind","result_id","device","parameter","code","by","reason","at","ref","detail"}]}
//
// A change that takes effect (an exclusion, its undo) re-evaluates the later runs of the series
// (qc_tracker::reevaluate_from: observed_at order, the change-detection table, the 8-run stop).
// Its audit entry, the qc-runs posts of the marked runs, the charts (qc_state) and the historical
// summary's corrections commit in ONE outbox transaction (the re-evaluation is one transaction,
// not resumable steps): a restart finds either all of it or none of it. The answer is given once
// that transaction is durable (a deferred reply: the loop is not blocked meanwhile); a commit that
// fails answers 503 with the outbox's error, is logged [QC-008], and the change -- only the change --
// is undone in memory (the chart, the result's flags, the book; control results stored meanwhile
// stay, put_back_charts), so memory matches what a restart would find. One
// change is stored at a time: another one asked meanwhile is answered 503 (try again); a limit
// change (limits_changed) waits for it instead. The outcome message goes in the answer and the
// device log. A re-tag that loses the race with delivery (its results post was claimed between
// the lookup and the commit) does not fail the change: the transaction stores a qc-runs
// correction for that result instead (body_rewrite::otherwise; "results_corrected_late"), and the
// outcome message, its history entry (settled in that transaction, state_changes::settle) and
// the answer count it as corrected, not as re-tagged.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <vector>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/device_runtime.hpp"
#include "rerun/outgoing.hpp"
#include "rerun/qc.hpp"
#include "rerun/qc_resolution.hpp"
#include "transport/http_server.hpp"
#include "transport/outbox.hpp"
#include "transport/state_store.hpp"

namespace interfaced::daemon {

class ingest_hand_off;

// What one re-evaluation did (qc.md "Outcome messages"): its outcome message and the summary in
// the answer. `late`: re-tags the transaction turned into qc-runs corrections (delivery had taken
// their results post, body_rewrite::otherwise): counted as corrected, not as re-tagged.
struct reevaluation_figures {
  std::string device;
  std::string parameter;
  std::size_t runs_reevaluated = 0;
  std::size_t runs_changed = 0;
  std::size_t results_changed = 0;
  std::size_t results_exported = 0;
  std::size_t results_retagged = 0;  // re-tags asked for in the transaction
  std::size_t qc_runs_posted = 0;
  bool stopped_early = false;
  std::string exported_from, exported_to;
  nlohmann::json rules_rerun;  // null: the rules were not re-run
  std::string rules_note;      // "; rules re-run ..." or empty
  [[nodiscard]] std::string message(std::size_t late = 0) const;
  [[nodiscard]] nlohmann::json summary(std::size_t late = 0) const;
};

class qc_admin {
 public:
  qc_admin(transport::outbox& box, transport::state_store& store, const device_set& devices,
           rerun::qc::qc_tracker& tracker)
      : outbox_(box), store_(store), devices_(devices), qc_(tracker) {}

  // The book from the outbox file's qc_audit table; the tracker's exclusion / SKIP flags from it.
  void restore();

  // /api/qc/... routes: false when not one of them. Otherwise the answer goes through `respond`:
  // at once for a read or a refusal, after the commit for a change. `now`: the request's time.
  bool handle(const transport::http_request_view& req, std::chrono::system_clock::time_point now,
              const transport::http_responder& respond);

  [[nodiscard]] const rerun::qc::resolution_book& book() const noexcept { return book_; }

  // After limits changed (the configuration's qc.limits on SIGHUP, by "configuration reload";
  // the backend's qc-limits, by "backend"): every chart whose results were judged with other
  // limits is judged again and re-evaluated from its first changed result; a "limits" audit entry
  // names who (by) and why, with the outcome message. `sc` (e.g. the new limits document) commits
  // in the same transaction. Like a resolution: logged once durable; a commit that fails puts
  // the charts and the book back, calls `put_back` (the caller restores the limits it changed,
  // so the change is tried again: the backend poll at its next answer, SIGHUP at the next
  // reload) and logs [QC-008] per device with the reason. While another change is being stored
  // it waits for that one (run after its commit, on the memory it leaves).
  void limits_changed(const std::string& by, const std::string& reason, std::chrono::system_clock::time_point now,
                      transport::state_changes sc = {}, std::function<void()> put_back = {});

  // qc.md 5.2.1: the rules engine (ingest_hand_off::rerun_rules) runs again, in the change's
  // transaction, for the patient results whose qc_status a re-evaluation changed and for a patient
  // result whose SKIP resolution is undone. Not set: the rules are not re-run.
  void set_rules(ingest_hand_off& rules) { rules_ = &rules; }

 private:
  using outcomes = std::map<std::string, std::pair<rerun::qc::outcome, std::string>, std::less<>>;
  // Re-evaluates device + parameter from `from`: qc-runs posts for the marked runs into msgs, the
  // history corrections into sc, the re-tags into rewrites; returns what it did.
  reevaluation_figures reevaluate(const std::string& device, const std::string& parameter, rerun::timestamp from,
                                  const std::string& toggled, const std::string& cause, const outcomes& before,
                                  std::chrono::system_clock::time_point now, transport::state_changes& sc,
                                  std::vector<transport::new_message>& msgs, std::vector<transport::body_rewrite>& rewrites);
  void count_moves(const std::string& device, const std::string& parameter, const outcomes& before,
                   std::chrono::system_clock::time_point now, transport::state_changes& sc);
  void apply(rerun::qc::decision d, const std::string& action, std::chrono::system_clock::time_point now,
             const transport::http_responder& respond);
  // The rules re-run for the patient results of the re-evaluation's marked runs; "; ..." for the
  // outcome message (empty: none re-run), its figures in `figures` (null: none).
  std::string rerun_rules_after(const std::string& device, const rerun::qc::qc_tracker::reevaluation_report& rep,
                                transport::state_changes& sc, std::vector<transport::new_message>& msgs,
                                nlohmann::json& figures);
  // The same for the patient result of a SKIP resolution that was undone.
  std::string rerun_rules_after_skip_undo(const rerun::qc::resolution& res, transport::state_changes& sc,
                                          std::vector<transport::new_message>& msgs, nlohmann::json& out);
  std::string rerun_rules_for(const std::string& device, const std::vector<rerun::qc::patient_ref>& patients,
                              transport::state_changes& sc, std::vector<transport::new_message>& msgs,
                              nlohmann::json& figures);
  transport::outbox& outbox_;
  transport::state_store& store_;
  const device_set& devices_;
  rerun::qc::qc_tracker& qc_;
  rerun::qc::resolution_book book_;
  // Runs the limit changes that waited for the stored change, until one is being stored again.
  void run_deferred();
  // A change whose commit failed: its charts as they were before it (`before`), with the control
  // results that arrived since evaluated again on top, in arrival order, without the change (their
  // batches committed them: a restart finds them). Call after the change's flags and limits are
  // put back. When results arrived since `additions_before` (qc_tracker::additions), the charts
  // document is stored again: a batch that stored it meanwhile stored the change's effects with it.
  void put_back_charts(std::map<std::string, rerun::qc::qc_tracker::chart, std::less<>> before,
                       std::uint64_t additions_before);
  bool storing_ = false;  // a change is waiting for its commit
  ingest_hand_off* rules_ = nullptr;
  // What the rules re-run of the change being built took into the rerun state: given back when
  // its commit fails (the callbacks take them with std::exchange).
  std::vector<std::function<void()>> rules_take_back_;
  std::deque<std::function<void()>> deferred_;  // limit changes that arrived meanwhile
};

// qc.md's qc-runs body `exported_at`: a patient result is exported once the backend took the post
// that carried it (the outbox's delivered_at, state_store::qc_patient_delivered_at); a result still
// in the outbox has none. Stamps each of `run`'s patient results; returns how many are exported
// and widens [first, last] (ISO-8601, empty: none yet) to their export times.
std::size_t stamp_exported(const transport::state_store& store, rerun::qc_run_body& run, std::string& first,
                           std::string& last);

// An audit entry as JSON (the history's and the answers' shape).
[[nodiscard]] nlohmann::json audit_json(const rerun::qc::audit_entry& e);
// A resolution's shape in /api/qc/series points: {"id","code","by","reason","at","state","approved_by"}.
[[nodiscard]] nlohmann::json resolution_json(const rerun::qc::resolution& r);

}  // namespace interfaced::daemon
