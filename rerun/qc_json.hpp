#pragma once
// JSON for QC (qc.md): the limits list (`qc.limits`, GET /interfacing/qc-limits, the
// `--limits FILE` of `interfaced qc evaluate`) and the `qc` configuration section. Every reader
// throws json_error naming the JSON pointer of the offending value (rerun_json.hpp).
//
//   limits:  [{"parameter","level","mean","sd"} + optional "material","lot","unit"]
//   qc:      {"limits": [...], "controls": [{"sample_id","material","lot","level","override"}],
//             "rules": ["1-3s","2-2s",...], "parameter_rules": {"GLU": ["1-3s"]},
//             "gate_on_1_2s": false, "event_window_s": 900, "max_interval_h": 24,
//             "parameter_max_interval_h": {"GLU": 8}}

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rerun/qc.hpp"
#include "rerun/rerun_json.hpp"

namespace interfaced::rerun::qc {

[[nodiscard]] std::vector<limits> limits_from_json(const nlohmann::json& j, const std::string& pointer = "");
[[nodiscard]] qc_config qc_config_from_json(const nlohmann::json& j, const std::string& pointer = "/qc");
[[nodiscard]] rule_set rule_set_from_json(const nlohmann::json& j, const std::string& pointer);

// The tracker's charts as the daemon persists them (the state document "qc_state", written in the
// same transaction as the outbox messages of the batch that changed them), and back.
[[nodiscard]] nlohmann::json to_json(const qc_tracker& t);
void restore(qc_tracker& t, const nlohmann::json& j);

}  // namespace interfaced::rerun::qc
