#pragma once
// The hand-off from every analyser link to the rest of the service: rerun tagging and routing
// (rerun.md, process_reports_for_rerun), then the durable outbox; the analyser's final ACK waits
// for `done(true)` (persist, then acknowledge). It owns the rerun state and the rules, and answers
// host queries and plans order downloads from them (rerun/host_query.hpp) with the device's codes.

#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemon/device_runtime.hpp"
#include "rerun/code_map.hpp"
#include "rerun/host_query.hpp"
#include "rerun/outgoing.hpp"
#include "rerun/rerun_state.hpp"
#include "rerun/result_store.hpp"
#include "rerun/rules.hpp"
#include "transport/outbox.hpp"
#include "transport/sink.hpp"
#include "transport/state_store.hpp"

namespace interfaced::rerun {
struct batch;
struct batch_outcome;
}  // namespace interfaced::rerun

namespace interfaced::daemon {

// One device-log line per rerun action, with the backend's activity code (rerun.md, "Activity codes").
void log_actions(spdlog::logger& log, const std::vector<rerun::action>& acts);

// seen(S,P) over the durable history plus the batches whose outbox append is still in flight.
// A batch's history rows commit in the same transaction as its outbox messages: a crash (or a
// failed append) before that leaves the results unseen, so the analyser's resend is forwarded
// again instead of being taken for a duplicate and lost (found by tests/bench/crash_test.sh: 100
// acknowledged messages lost over 110 SIGKILLs when the history committed first), and a crash
// after it leaves both, so the resend is a duplicate, not a second copy under a new key.
class pending_history final : public rerun::result_store {
 public:
  explicit pending_history(rerun::result_store& base) : base_(base) {}

  // Records made until the next open() belong to the batch open() returns.
  std::uint64_t open();
  // The batch's rows, to commit with its messages; the batch stays visible until settle().
  std::vector<transport::history_row> take_rows(std::uint64_t id);
  // The batch's commit ended (its rows are in the durable store, or were never written).
  void settle(std::uint64_t id);

  [[nodiscard]] bool has(std::string_view s, std::string_view p) const override;
  [[nodiscard]] bool has_observation(std::string_view s, std::string_view p, std::string_view v,
                                     std::string_view t) const override;
  [[nodiscard]] std::optional<rerun::observation> latest(std::string_view s, std::string_view p) const override;
  [[nodiscard]] std::optional<rerun::observation> latest_of_parameter(std::string_view s,
                                                                      std::string_view p) const override;
  void record(std::string_view s, std::string_view p, rerun::observation o) override;
  std::size_t prune(rerun::timestamp cutoff) override { return base_.prune(cutoff); }

 private:
  struct batch {
    std::uint64_t id;
    std::vector<transport::history_row> rows;
    rerun::memory_result_store seen;
    std::vector<std::size_t> samples;  // hash of the sample of each result recorded (in_flight_)
  };
  // Whether an in-flight batch may hold a result of sample `s`. Most lookups are of a sample no
  // batch holds (a new sample), answered by the durable store alone instead of by asking every
  // batch in flight, up to one per analyser at saturation (issue #17: has_observation 27.9k ->
  // 20.9k instructions a message with 8 analysers in throughput.sh; the rest is the durable
  // store's lookup). A hash shared by two samples only sends a lookup on to the batches.
  [[nodiscard]] bool in_flight(std::string_view s) const { return in_flight_.contains(std::hash<std::string_view>{}(s)); }
  rerun::result_store& base_;
  std::deque<batch> batches_;
  std::unordered_map<std::size_t, std::size_t> in_flight_;  // sample hash -> results in flight
  std::uint64_t seq_ = 0;
};

class ingest_hand_off final : public transport::batch_sink {
 public:
  ingest_hand_off(transport::outbox& box, const device_set& devices, transport::state_store& store)
      : outbox_(box), devices_(devices), store_(store), history_(store) {}

  void hand_off(transport::delivery d, transport::done_callback done) override;
  [[nodiscard]] bool accepting() const override { return outbox_.accepting(); }

  rerun::rule_set& rules() noexcept { return rules_; }
  // Where files the daemon makes from embedded data (Yumizen histograms drawn as SVG) are written
  // before their file-type report is stored: the outbox's spool_dir(). Empty: not made.
  void set_spool_dir(std::filesystem::path dir) { spool_dir_ = std::move(dir); }
  // A durable state document (folder devices: the digest of a file taken), as last committed.
  [[nodiscard]] std::optional<std::string> document(std::string_view key) const { return store_.get(key); }
  // QC (qc.md): the configuration's `qc` section; the tracker holds every device's charts.
  void set_qc(const rerun::qc::qc_config& cfg) {
    qc_cfg_ = cfg;
    qc_.set_config(qc_cfg_);
  }
  rerun::qc::qc_tracker& qc() noexcept { return qc_; }
  rerun::rerun_state& state() noexcept { return state_; }

  // After a waiting-list refresh or a prune: the rerun state written off the event loop, in order
  // with the batches. `dev` (may be null) names where a failure is logged.
  // `events`: historical summary counts (reruns recorded by the refresh) committed with it.
  void persist_state(device_runtime* dev, std::vector<rerun::history_event> events = {});

  // Historical summary counts that no message carries (link errors): written off the loop, in
  // order with the batches.
  void record_events(std::vector<rerun::history_event> events);

  // qc.md 5.2.1, the re-evaluation row: the rules engine again (rerun::run_rules_again) for these
  // patient results of `device`, whose qc_status a QC re-evaluation changed or whose SKIP
  // resolution was undone; each is read back from the body of the message that posted it
  // (state_store::qc_patient_body). Rerun requests and reflex posts go into `msgs`, the rerun
  // state into `sc`: the caller's one transaction. `take_back` is for a commit that failed: the
  // state forgets what it counted, so the next re-evaluation asks again.
  struct rules_rerun {
    std::string note;          // for the outcome message; empty when no rule applies to any of them
    std::size_t results = 0;   // results the rules ran for
    std::size_t fired = 0;     // rerun requests and reflex posts
    std::size_t unknown = 0;   // results whose message is gone (purged): not re-run
    std::function<void()> take_back;
  };
  rules_rerun rerun_rules(const std::string& device, const std::vector<rerun::qc::patient_ref>& patients,
                          transport::state_changes& sc, std::vector<transport::new_message>& msgs);

  // Host queries (rerun/host_query.hpp) with the device's codes; each decision logged on `dev`.
  std::vector<std::string> answer_astm_queries(device_runtime& dev, const std::vector<query>& queries);
  std::vector<std::string> answer_hl7_query(device_runtime& dev, std::string_view text,
                                            const std::vector<query>& queries);
  // Order download after a waiting-list refresh (rerun::plan_device_downloads).
  std::vector<rerun::download_change> plan_downloads(device_runtime& dev, rerun::timestamp now);
  // The waiting-list entry of a sample on the device, if it is still listed.
  [[nodiscard]] const rerun::waiting_list_entry* entry_of(const std::string& device, std::string_view sample) const {
    return rerun::waiting_entry(state_, device, sample);
  }
  // What an order for the sample is built from: its waiting-list entry, else a pending reflex's.
  [[nodiscard]] const rerun::waiting_list_entry* order_entry_of(const std::string& device, std::string_view sample) const {
    return rerun::order_entry(state_, device, sample);
  }

 private:
  // The rerun state document, when it changed since it was last queued for writing.
  void state_document(transport::state_changes& sc);
  bool duplicates_durable(const std::vector<transport::history_row>& duplicates, device_runtime* dev);
  // Duplicates whose earlier copy sits in a dead letter: recorded against it (sc.resends), logged.
  void resends_of_dead_letters(const rerun::batch& b, const rerun::batch_outcome& out, device_runtime* dev,
                               transport::state_changes& sc);
  // The code map over test identities (issue #19: Panther `HPV^AnalyteSCO`) of the profile a
  // message was read with: built once per profile, not per message.
  const rerun::code_map& codes_for(const devices::device_profile* profile);
  // Yumizen `M` HISTOGRAM records of an ASTM message: decoded, drawn as SVG into the spool
  // directory, and a file-type report per histogram for its (sample, parameter) appended to
  // `msgs`. Malformed data is a device-log warning [FILE-010]; the batch is accepted regardless.
  // A file_report message for `bytes` appended to `msgs`, carrying the bytes for the outbox worker
  // to write durably under the spool directory before the commit (a file it cannot write leaves
  // the message out: logged [FILE-012] when the append completes).
  void spool_file_report(device_runtime& dev, const std::string& device, const std::string& batch_id,
                         const std::string& sample, const std::string& report, const std::string& parameter,
                         const std::string& filename, const std::string& content_type, std::string_view bytes,
                         std::vector<transport::new_message>& msgs);
  void embedded_histograms(const transport::delivery& d, const rerun::batch& b, const rerun::batch_outcome& out,
                           device_runtime& dev, std::vector<transport::new_message>& msgs);
  // The analyser's code to order a machine name with: its profile's "orders"/"codes", else the
  // code map (identity when unmapped).
  [[nodiscard]] rerun::code_lookup codes_of(const device_runtime& dev) const;

  transport::outbox& outbox_;
  const device_set& devices_;
  std::filesystem::path spool_dir_;
  rerun::code_map codes_;  // without a profile: every identity is its own machine name
  std::map<const devices::device_profile*, rerun::code_map> codes_by_profile_;
  rerun::rule_set rules_;
  rerun::qc::qc_config qc_cfg_;
  rerun::qc::qc_tracker qc_{qc_cfg_};
  transport::state_store& store_;
  pending_history history_;  // seen(S,P): durable rows + batches not yet durable
  rerun::rerun_state state_;
  std::optional<rerun::rerun_state> state_written_;  // the rerun state last queued for writing
  std::uint64_t batch_seq_ = 0;
  std::uint64_t query_seq_ = 0;  // HL7 control ids of query answers
};

}  // namespace interfaced::daemon
