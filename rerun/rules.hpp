#pragma once
// Auto-rerun rules (rerun.md, "Auto-rerun"): per-parameter conditions in the rule language
// (condition.hpp), from the backend's parameter configuration (auto_rerun_allowed,
// auto_rerun_parameter_condition) and from a local rules file. Every condition is compiled when it
// is loaded; one that does not compile is a configuration error (never a silent false at run time).
// A rule is evaluated only for first results (rerun_number == 0: a rerun never triggers another)
// and at most max_per_sample automatic reruns are requested per (sample, parameter) (default 1).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parsers/model.hpp"
#include "rerun/condition.hpp"
#include "rerun/outgoing.hpp"
#include "rerun/result_store.hpp"
#include "rerun/wall_time.hpp"
#include "rerun/westgard.hpp"

namespace interfaced::rerun {

// The backend's per-parameter meta (backend-api.md, "parameter configuration").
struct parameter_config {
  std::string machine_name;
  bool manual_rerun = false;
  bool auto_rerun_allowed = false;
  std::string auto_rerun_parameter_condition;
  std::optional<double> range_low;   // range.low / range.high for rules
  std::optional<double> range_high;
  std::string unit;
};

// auto_rerun is implemented; the others are reserved names so the file format has room for them
// (a rules file using one is refused at load, not ignored).
enum class rule_action { auto_rerun, hold, flag, reflex };

struct rule {
  std::string id;
  std::vector<std::string> parameters;  // machine names; empty: every parameter
  condition cond;
  rule_action action = rule_action::auto_rerun;
  int max_per_sample = 1;               // automatic reruns per (sample, parameter)
  std::string origin;                   // where it was defined, for logs and explain
  // action reflex (seed 003: additional tests ordered automatically from the result of an initial
  // test): the machine names to add, once per sample and rule (max_per_sample counts per rule).
  std::vector<std::string> add_tests{};
  // qc.md 5.2.1: this rule applies the SKIP outcome; once it has run for a result, later rules
  // execute for it (qc::decide_skip).
  bool handles_skip = false;

  [[nodiscard]] bool applies_to(std::string_view parameter) const noexcept;
};

// A rule that could not be loaded: where (file or backend), which rule, and the condition error.
struct rule_load_error {
  std::string origin;        // "rules.json" or "backend parameter configuration"
  std::string pointer;       // JSON pointer of the offending field, when known
  std::string rule_id;
  std::string source;        // the condition text (empty for errors outside a condition)
  std::optional<condition_error> error;  // set for condition errors (line, column)
  std::string message;       // for errors outside a condition

  // "origin: pointer (rule id): line:column: message" and, for condition errors, the condition
  // with a caret under the column.
  [[nodiscard]] std::string format() const;
};

class rule_set {
 public:
  // Adds the parameters' configuration (ranges) and, for each with auto_rerun_allowed and a
  // non-empty condition, the rule "parameter:<machine_name>". Returns the conditions that failed.
  std::vector<rule_load_error> add_parameters(const std::vector<parameter_config>& params);
  void add(rule r) { rules_.push_back(std::move(r)); }

  [[nodiscard]] const std::vector<rule>& rules() const noexcept { return rules_; }
  [[nodiscard]] const parameter_config* parameter(std::string_view machine_name) const noexcept;
  [[nodiscard]] const rule* find(std::string_view id) const noexcept;

 private:
  std::vector<rule> rules_;
  std::vector<parameter_config> parameters_;
};

// The bindings for one result: views into r, parameter, qc_status and device (they must outlive
// the bindings). range.* come from the parameter configuration, else from r.reference_range
// ("lo-hi"). qc_status: the result's (process.hpp result_tag), empty without QC.
[[nodiscard]] bindings bind_result(const result& r, std::string_view parameter,
                                   const std::optional<observation>& previous,
                                   const parameter_config* config, timestamp now,
                                   std::string_view qc_status = {});

enum class rule_outcome {
  fired,           // the condition held and an automatic rerun is requested
  not_fired,       // the condition did not hold
  skipped_rerun,   // the result is a rerun (rerun_number != 0): rules do not apply
  capped,          // the condition held but the cap for (sample, parameter) is reached
  skipped_resolution,  // the result carries a SKIP resolution (qc.md 5.2.1): the rule is bypassed
};

// qc.md 5.2.1 (SKIP) for the rules engine: a patient result resolved with the SKIP code bypasses
// the rules (auto-rerun, reflex) at its initial evaluation, never at a re-evaluation. A rule that
// declares handles_skip is the one that applies the SKIP outcome, so it runs; once it has run,
// the later rules (file order) run too. The table itself is qc::decide_skip.
struct skip_context {
  bool has_skip = false;      // the result carries an active SKIP resolution
  bool reevaluation = false;  // the rules run again for a result evaluated before
};

// The decision for every rule of `rules`, parallel to rules.rules(): rules that do not apply to
// `parameter` are execute (they are never looked at) and do not count as having run.
[[nodiscard]] std::vector<qc::skip_decision> skip_decisions(const rule_set& rules, std::string_view parameter,
                                                            skip_context c);

// The id a SKIP resolution of a patient result is made under (POST /api/qc/resolve result_id,
// `interfaced qc resolve`): "patient:<device>|<sample id>|<parameter>" -- what the rules engine
// keys a result by (sample, parameter) on its analyser; the control results' ids never start so.
[[nodiscard]] std::string patient_result_id(std::string_view device, std::string_view sample,
                                            std::string_view parameter);
inline constexpr std::string_view patient_result_prefix = "patient:";

[[nodiscard]] const char* to_string(rule_outcome o) noexcept;

// What the variables a condition reads were, by name (for reasons and explain traces).
[[nodiscard]] std::vector<std::pair<std::string, seen_value>> seen_values(const condition& c,
                                                                          const bindings& b);

struct rule_trace {
  std::string rule_id;
  rule_outcome outcome = rule_outcome::not_fired;
  std::vector<std::pair<std::string, seen_value>> values;
};

// One rule on one result. rerun_number gates (only 0 is evaluated), auto_reruns_so_far the cap.
[[nodiscard]] rule_outcome evaluate_rule(const rule& r, const bindings& b, int rerun_number,
                                         int auto_reruns_so_far) noexcept;

struct rules_verdict {
  const rule* fired = nullptr;                              // the first rule that fired
  std::vector<std::pair<std::string, seen_value>> values;   // what it saw
  std::vector<rule_trace> trace;                            // every applicable rule, when explaining
};

// Every rule of `rules` that applies to `parameter`, in order; the first that fires wins (one
// request per result). Values are collected only for the fired rule unless `explain`.
// `skip`: qc.md 5.2.1 (skip_decisions); a bypassed rule is skipped_resolution and never fires.
[[nodiscard]] rules_verdict evaluate_rules(const rule_set& rules, std::string_view parameter,
                                           const bindings& b, int rerun_number,
                                           int auto_reruns_so_far, bool explain, skip_context skip = {});

// A test case carried by a rules file: given a result (and its previous result), the rule is
// expected to fire or not.
struct rule_test_case {
  std::string rule_id;
  std::string name;
  std::string pointer;      // JSON pointer in the file, for failure messages
  result given;             // given.code is the machine name (defaults to the rule's first parameter)
  std::optional<observation> previous;
  timestamp now{};
  int auto_reruns_before = 0;
  std::string qc_status;    // given.qc_status
  bool expect_fired = false;
};

// A loaded rules file: its rules, its test cases, and what failed to load.
struct rules_file {
  std::string origin;
  rule_set rules;
  std::vector<rule_test_case> tests;
  std::vector<rule_load_error> errors;
};

struct rule_test_failure {
  std::string rule_id;
  std::string name;
  std::string pointer;
  std::string message;  // expected / got, and the values the rule saw
};

struct rule_test_report {
  std::size_t run = 0;
  std::vector<rule_test_failure> failures;
  [[nodiscard]] bool passed() const noexcept { return failures.empty(); }
};

// Runs every test case of the file against its rule (`interfaced rules test FILE`).
[[nodiscard]] rule_test_report run_rule_tests(const rules_file& file);

// "name=value, ..." for logs, explain output and test failures.
[[nodiscard]] std::string describe(const std::vector<std::pair<std::string, seen_value>>& values);

}  // namespace interfaced::rerun
