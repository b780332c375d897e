#pragma once
// Builders for rerun tests: results, waiting-list entries, and a world (state, history, rules)
// to run batches through.

#include <string>
#include <vector>

#include "parsers/number.hpp"
#include "rerun/process.hpp"

namespace interfaced::rerun::test {

inline timestamp at(const char* iso) { return *parse_wall_time(iso); }

inline result make_result(std::string sample, std::string code, std::string value,
                          std::string observed_at = "20240301100000") {
  result r;
  r.sample_id = std::move(sample);
  r.code = std::move(code);
  r.value = std::move(value);
  r.numeric = parse_number(r.value, false);  // as the ASTM normaliser sets it
  r.observed_at = std::move(observed_at);
  return r;
}

inline waiting_list_entry entry(std::string sample, std::string report, int rerun_number,
                                std::vector<std::string> parameters,
                                std::vector<std::string> rerun_params = {}) {
  waiting_list_entry e;
  e.sample_id = std::move(sample);
  e.lab_report_id = std::move(report);
  e.rerun_number = rerun_number;
  e.sample_redraw_flag = rerun_number > 0 ? redraw_flag_rerun_requested : redraw_flag_none;
  e.parameters = std::move(parameters);
  e.rerun_params = std::move(rerun_params);
  return e;
}

struct world {
  code_map codes;
  rule_set rules;
  memory_result_store history;
  rerun_state state;
  timestamp now = at("2024-03-01T10:05:00");
  lab_zone zone;                 // UTC unless a test sets the lab's zone
  std::string received_at;       // empty: `now` in `zone`
  int batches = 0;

  std::vector<action> refresh(const std::string& device, std::vector<waiting_list_entry> entries) {
    return refresh_waiting_list(state, device, std::move(entries), now);
  }

  batch_outcome run(const std::string& device, std::vector<result> results, batch* keep = nullptr) {
    batch b{device, "b" + std::to_string(++batches), std::move(results), {}};
    rerun_inputs in{codes, rules, history, state, now, true, zone, received_at};
    auto out = process_reports_for_rerun(b, in);
    if (keep != nullptr) *keep = std::move(b);
    return out;
  }
};

inline const outgoing_message* find_message(const batch_outcome& o, endpoint kind,
                                            const std::string& report = {}) {
  for (const auto& m : o.messages)
    if (m.kind == kind && (report.empty() || m.lab_report_id == report)) return &m;
  return nullptr;
}

inline std::size_t count_messages(const batch_outcome& o, endpoint kind) {
  std::size_t n = 0;
  for (const auto& m : o.messages) n += m.kind == kind ? 1 : 0;
  return n;
}

inline const action* find_action(const std::vector<action>& actions, action_kind k) {
  for (const auto& a : actions)
    if (a.kind == k) return &a;
  return nullptr;
}

}  // namespace interfaced::rerun::test
