#pragma once
// Messages the daemon sends to ASTM analysers (LIS02-A2): orders, as the answer to a host query
// (Q) and as an order download (worklist push). One builder for both, so an analyser sees the
// same records whichever way it got them. Pure: the timestamp comes from the caller; no framing
// (the E1381 link does that) and no transcoding (values are bytes in the device's encoding).
//
// Layout: `H|\^&|||<sender>|||||||<processing id>|LIS2-A2|<timestamp>`, then per order a P record
// and its O record, `L|1|<termination code>`. Consecutive orders for the same specimen and patient
// share one P (their O records are numbered 1, 2, ...): a cancel and an add for one specimen go in
// one message.
//  P: P.2 sequence, P.3 patient id, P.6 name ('^' in order.patient_name separates its
//     components: last^first^middle, LIS02-A2 P.6), P.8 birth date, P.9 sex.
//  O: O.2 sequence, O.3 specimen id, O.5 one repeat `^^^<code>[^<name>]` per test (universal test
//     id, manufacturer's code in component 4), O.6 priority (S, A, R, C or P as given; anything
//     else R, routine), O.12 action code (order.action_code: N new specimen, A add tests to a
//     known specimen, C cancel the tests named; empty: N), O.26 report type O (order).

#include <string>
#include <string_view>
#include <vector>

#include "parsers/astm/records.hpp"
#include "parsers/model.hpp"

namespace interfaced::astm {

struct order_message_header {
  std::string_view sender = "interfaced";   // H.5
  std::string_view processing_id = "P";     // H.12
  std::string_view timestamp{};             // H.14, YYYYMMDDHHMMSS
  std::string_view termination_code = "N";  // L.3: N normal; I no information (query answers)
};

// Records, each ending CR. Precondition: valid_delimiters(d).
[[nodiscard]] std::string build_order_message(const std::vector<order>& orders,
                                              const order_message_header& h,
                                              const delimiters& d = {});

}  // namespace interfaced::astm
