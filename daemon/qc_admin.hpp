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
// not resumable steps): a restart finds either all of it or none of it. The answer is given when
// the change is applied in memory and queued in order on the outbox worker (the HTTP handler is
// synchronous); a commit that fails is logged [QC-008] and the change is then not kept after a
// restart. The outcome message goes in the answer and the device log.

#include <chrono>
#include <map>
#include <optional>
#include <vector>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/device_runtime.hpp"
#include "rerun/qc.hpp"
#include "rerun/qc_resolution.hpp"
#include "transport/http_server.hpp"
#include "transport/outbox.hpp"
#include "transport/state_store.hpp"

namespace interfaced::daemon {

class qc_admin {
 public:
  qc_admin(transport::outbox& box, transport::state_store& store, const device_set& devices,
           rerun::qc::qc_tracker& tracker)
      : outbox_(box), store_(store), devices_(devices), qc_(tracker) {}

  // The book from the outbox file's qc_audit table; the tracker's exclusion / SKIP flags from it.
  void restore();

  // /api/qc/... routes; nullopt: not one of them. `now`: the request's time.
  [[nodiscard]] std::optional<transport::http_reply> handle(const transport::http_request_view& req,
                                                            std::chrono::system_clock::time_point now);

  [[nodiscard]] const rerun::qc::resolution_book& book() const noexcept { return book_; }

  // After the configuration's qc.limits changed (SIGHUP): every chart whose results were judged
  // with other limits is judged again and re-evaluated from its first changed result; a "limits"
  // audit entry names who (by) and why, with the outcome message.
  void limits_changed(const std::string& by, const std::string& reason, std::chrono::system_clock::time_point now);

 private:
  using outcomes = std::map<std::string, std::pair<rerun::qc::outcome, std::string>, std::less<>>;
  // Re-evaluates device + parameter from `from`: qc-runs posts for the marked runs into msgs, the
  // history corrections into sc; returns the outcome message, summary gets its figures.
  std::string reevaluate(const std::string& device, const std::string& parameter, rerun::timestamp from,
                         const std::string& toggled, const std::string& cause, const outcomes& before, std::chrono::system_clock::time_point now,
                         transport::state_changes& sc, std::vector<transport::new_message>& msgs, nlohmann::json& summary);
  void count_moves(const std::string& device, const std::string& parameter, const outcomes& before,
                   std::chrono::system_clock::time_point now, transport::state_changes& sc);
  transport::http_reply apply(rerun::qc::decision d, const std::string& action, std::chrono::system_clock::time_point now);
  transport::outbox& outbox_;
  transport::state_store& store_;
  const device_set& devices_;
  rerun::qc::qc_tracker& qc_;
  rerun::qc::resolution_book book_;
};

// An audit entry as JSON (the history's and the answers' shape).
[[nodiscard]] nlohmann::json audit_json(const rerun::qc::audit_entry& e);
// A resolution's shape in /api/qc/series points: {"id","code","by","reason","at","state","approved_by"}.
[[nodiscard]] nlohmann::json resolution_json(const rerun::qc::resolution& r);

}  // namespace interfaced::daemon
