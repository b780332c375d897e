#pragma once
// JSON for the rerun domain, kept out of the core types: the backend's waiting list and parameter
// configuration (read), outgoing message bodies (written, field names exactly as backend-api.md),
// the persisted rerun_state, and local rules files.
//
// Rules file:
//   {"rules": [{"id": "hgb-range", "parameters": ["HGB"], "condition": "value > 20 or value < 2",
//               "action": "auto_rerun", "max_per_sample": 1,
//               "tests": [{"name": "high", "given": {"value": 25}, "expect": {"fired": true}},
//                         {"name": "rerun", "given": {"value": 25, "rerun_number": 1},
//                          "expect": {"fired": false}}]}]}
//   action: "auto_rerun"; "reflex" with "add_tests": ["FT4"] (machine names added, once per sample
//   and rule, POST /interfacing/reflex); "hold", "flag" are reserved and refused for now.
//   "handles_skip": true marks the rule that applies a SKIP resolution (qc.md 5.2.1).
//   given: parameter, value (number, string or null), unit, flags, status, qc, reference_range,
//          observed_at, device, sample_id, rerun_number, previous {value, observed_at}, now,
//          auto_reruns_before, qc_status.

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "rerun/outgoing.hpp"
#include "rerun/rerun_state.hpp"
#include "rerun/rules.hpp"
#include "rerun/waiting_list.hpp"

namespace interfaced::rerun {

// A backend response or persisted state that does not have the expected shape; names the JSON
// pointer of the offending value.
class json_error : public std::runtime_error {
 public:
  json_error(std::string pointer, const std::string& what)
      : std::runtime_error(pointer + ": " + what), pointer_(std::move(pointer)) {}
  [[nodiscard]] const std::string& pointer() const noexcept { return pointer_; }

 private:
  std::string pointer_;
};

// GET /interfacing/waiting-list response. Throws json_error.
[[nodiscard]] std::vector<waiting_list_entry> waiting_list_from_json(const nlohmann::json& j);
[[nodiscard]] nlohmann::json to_json(const waiting_list_entry& e);

// GET /interfacing/parameters response. Throws json_error. Conditions are compiled by
// rule_set::add_parameters, which reports their errors.
[[nodiscard]] std::vector<parameter_config> parameters_from_json(const nlohmann::json& j);

// The POST body of a message (backend-api.md), and its extra headers.
[[nodiscard]] nlohmann::json body_json(const outgoing_message& m);
// body_json(m).dump(), byte for byte (keys in nlohmann's sorted order, its escapes; it throws
// where dump() throws). Results and rerun values bodies, one per analyser message, are written
// straight into the string instead of through a JSON tree (issue #17); the rare kinds go
// through body_json.
[[nodiscard]] std::string body_text(const outgoing_message& m);
[[nodiscard]] std::vector<std::pair<std::string, std::string>> extra_headers(const outgoing_message& m);
[[nodiscard]] nlohmann::json to_json(const seen_value& v);

// qc.md "Results still in the outbox are re-tagged before delivery": a stored results (or rerun
// values) body with the qc_status of the patient result (sample_id, parameter, observed_at) set
// to `status`, every other byte's meaning kept; nullopt when the body is not such a body or does
// not carry that result (the caller then corrects it with a qc-runs post instead).
[[nodiscard]] std::optional<std::string> retag_qc_status(std::string_view body, std::string_view sample_id,
                                                         std::string_view parameter, std::string_view observed_at,
                                                         std::string_view status);

// The persisted state. rerun_state_from_json throws json_error.
[[nodiscard]] nlohmann::json to_json(const rerun_state& s);
[[nodiscard]] rerun_state rerun_state_from_json(const nlohmann::json& j);

// Loads a rules file's text. Never throws: JSON syntax errors (with line and column), shape errors
// (with the JSON pointer) and condition errors (with line, column and caret) are in .errors, each
// printable with rule_load_error::format(). `origin` names the file in messages.
[[nodiscard]] rules_file load_rules_file(std::string_view text, std::string origin);

}  // namespace interfaced::rerun
