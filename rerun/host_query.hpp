#pragma once
// Host queries answered from the device's local waiting list (rerun.md, "Manual reruns and the
// waiting list": a re-test order goes out as "the answer to the analyser's next host query"), and
// the orders a device is sent unasked (order download). Pure: the rerun state, the result history,
// `now` on the lab's wall clock and, for HL7, a source of message control ids come in; the messages
// to send and one log line per decision come out. No backend round trip, so the analyser gets its
// answer within its reply window.
//
// Pending, for a sample on the device's waiting list:
//  - with an active rerun that is still requested: its requested parameters not yet fulfilled;
//  - otherwise: the report's parameters without a value yet (the waiting list's own
//    valued_parameters, or a result in the history: seen(S,P)).
//  - and, for a sample a reflex rule fired for on this device (rerun_state::reflex_orders), the
//    tests it added that have had no result since (listed or not: the analyser knows the sample).
// Codes are the instrument's (code_lookup: the profile's "orders"/"codes", else the code map,
// identity otherwise); names are the machine names they stand for.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/model.hpp"
#include "rerun/order_download.hpp"
#include "rerun/rerun_state.hpp"
#include "rerun/result_store.hpp"
#include "rerun/wall_time.hpp"
#include "rerun/waiting_list.hpp"

namespace interfaced::rerun {

// The analyser's code to order a machine name with.
using code_lookup = std::function<std::string(const std::string& machine_name)>;
// The next message control id (HL7 MSH-10), unique per daemon run.
using id_source = std::function<std::string()>;

struct pending_order {
  const waiting_list_entry* entry = nullptr;  // into the state passed in
  bool is_rerun = false;
  std::vector<std::string> codes;  // instrument codes, parallel to names
  std::vector<std::string> names;  // machine names
  // Some of the tests were added by a reflex rule: the analyser ran the specimen already, so
  // they are added to it (ASTM O.12 A) like a rerun's.
  bool reflex = false;
};

// The tests of a reflex order with no result received since it fired (the history's received_at).
[[nodiscard]] std::vector<std::string> reflex_tests_pending(const reflex_order& o, const result_store& history);

// What query `q` asks for that is pending on `device`'s waiting list, in waiting-list order;
// samples with nothing pending (or nothing the query names) are left out.
[[nodiscard]] std::vector<pending_order> pending_orders(const rerun_state& state, const result_store& history,
                                                        std::string_view device, const query& q,
                                                        const code_lookup& code_of);

// Order download: what is pending for every sample of the device against what it was sent
// (plan_downloads); updates `sent`.
[[nodiscard]] std::vector<download_change> plan_device_downloads(const rerun_state& state, const result_store& history,
                                                                 std::string_view device, download_state& sent,
                                                                 const code_lookup& code_of, timestamp now);

// What a query asks about, for log lines: "ALL" or its sample ids ("S-1,S-2").
[[nodiscard]] std::string queried_samples(const query& q);

// The order (patient, specimen, priority) of a waiting-list entry, for these instrument codes.
[[nodiscard]] order order_of(const waiting_list_entry& e, const std::vector<std::string>& codes, std::string action);

// The waiting-list entry of a sample on the device; nullptr when it is not listed (any more).
[[nodiscard]] const waiting_list_entry* waiting_entry(const rerun_state& state, std::string_view device,
                                                      std::string_view sample);

// What to build an order for the sample from: its waiting-list entry, else the entry kept with a
// pending reflex order of the device (patient and priority as they were when the rule fired).
[[nodiscard]] const waiting_list_entry* order_entry(const rerun_state& state, std::string_view device,
                                                    std::string_view sample);

struct query_answer {
  std::vector<std::string> messages;  // to send to the analyser, in order
  std::vector<std::string> log;       // one line per query, for the device log
};

// ASTM host queries (LIS02-A2 Q records): per query one order message with a P and an O record per
// sample that has something pending (O.12 A for a rerun, N otherwise), or H + `L|1|I` (no
// information). A cancel query (Q.13 `A`) gets no answer, only a log line.
[[nodiscard]] query_answer answer_astm_queries(const rerun_state& state, const result_store& history,
                                               std::string_view device, const std::vector<query>& queries,
                                               const code_lookup& code_of, timestamp now);

// An HL7 QBP^Q11 (IHE LAB-27): RSP^K11 with QAK-2 OK when something is pending for the queried
// samples, NF otherwise; then one OML^O33 work order (LAB-28) per pending sample, addressed to the
// query's sender. A Mindray QRY^Q02 (2.3.1): QCK^Q02 with QAK-2 OK, then one DSR^Q03 per pending
// sample (the last with an empty DSC-1), or QCK^Q02 NF alone (hl7/builders.hpp, Mindray host
// interface manual §1.3.2); the analyser answers each DSR with ACK^Q03. Nothing (no messages, no
// log: the usual ACK goes back) for text that is neither a parsable QBP^Q11 nor QRY^Q02.
[[nodiscard]] query_answer answer_hl7_query(const rerun_state& state, const result_store& history,
                                            std::string_view device, std::string_view text,
                                            const std::vector<query>& queries, const code_lookup& code_of,
                                            timestamp now, const id_source& next_id);

}  // namespace interfaced::rerun
