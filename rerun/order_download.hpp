#pragma once
// Order download (worklist push) for analysers that take orders the host sends unasked (rerun.md,
// "Manual reruns and the waiting list": "queues a re-test order ... (order download, or the
// answer to the analyser's next host query)"). After each waiting-list refresh: which orders are
// new or changed since they were last sent, and which tests sent before nobody wants any more.
// Pure: the caller passes what is pending now (the very tests a host query is answered with),
// what was sent before (download_state, kept in memory by the daemon), the result history and
// `now` on the same wall clock the history uses; the state is updated as if every change was sent.
//
// Per sample:
//  - nothing sent before, or another round (rerun number): every pending test is ordered, as a
//    new order for a first run (ASTM O.12 N) and as tests added to a known specimen for a rerun
//    (A);
//  - the same round: the pending tests not sent before are ordered (A); nothing is sent again;
//  - a test sent before and no longer pending is cancelled (ASTM O.12 C, LIS02-A2: "cancel
//    request for the battery or tests named"; HL7 ORC-1 CA) unless a result for it arrived since
//    it was sent: then the analyser did it (fulfilled), and a cancel would be noise;
//  - a sample whose download the analyser refused is not sent again until its pending tests change.
// After a restart the state is empty: pending orders are sent once more (the analyser sees the
// same specimen and tests again) and orders sent before the restart are not cancelled.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "rerun/result_store.hpp"
#include "rerun/wall_time.hpp"

namespace interfaced::rerun {

// One sample's tests for the analyser: the report, the round and the tests.
struct download_tests {
  std::string sample_id;
  std::string lab_report_id;
  bool is_rerun = false;
  int rerun_number = 0;
  std::vector<std::string> parameters;  // machine names
  std::vector<std::string> codes;       // the analyser's codes, parallel to parameters
  bool reflex = false;                  // some tests a reflex rule added: the specimen is known (A)
};

// What a device's waiting list asks of the analyser for one sample.
using pending_download = download_tests;

struct sent_test {
  std::string parameter;
  std::string code;
  timestamp sent_at{};
};

// What an analyser was sent for one sample.
struct downloaded_order {
  std::string lab_report_id;
  bool is_rerun = false;
  int rerun_number = 0;
  std::vector<sent_test> tests;
  bool refused = false;  // the analyser refused it: not sent again until the pending tests change
};

using download_state = std::map<std::string, downloaded_order, std::less<>>;  // by sample id

enum class download_action {
  new_order,  // a specimen the analyser has not been sent (first run)
  add_tests,  // tests added to a specimen it knows (a rerun, or tests added to the report)
  cancel,     // tests it was sent and nobody wants any more
};

// What to send: `action` on the tests named (for a cancel, the tests to cancel).
struct download_change : download_tests {
  download_action action = download_action::new_order;
};

// The changes to send, cancels first for a sample (an order replacing them comes after); updates
// `state` as if they were all sent.
[[nodiscard]] std::vector<download_change> plan_downloads(
    download_state& state, const std::vector<pending_download>& pending,
    const result_store& history, timestamp now);

// The analyser refused the download of round `rerun_number` for the sample (its link gave up):
// not sent again until what is pending for it changes. No-op when the state moved on since.
void mark_refused(download_state& state, std::string_view sample_id, int rerun_number);

// A download that could not even be queued: forgotten, so the next plan sends it again.
void forget_download(download_state& state, std::string_view sample_id);

}  // namespace interfaced::rerun
