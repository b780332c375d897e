#include "rerun/rules.hpp"

#include "parsers/number.hpp"

#include <algorithm>
#include <tuple>
#include <cstdio>

namespace interfaced::rerun {
namespace {

// Range bounds are numbers by the parsers' own rule.
std::optional<double> number_of(std::string_view s) noexcept { return parse_number(s, false); }

// "3.5-5.0", "3.5 - 5.0", "-1-1": the separator is a '-' that follows a digit or a space.
std::pair<std::optional<double>, std::optional<double>> parse_range(std::string_view s) noexcept {
  for (std::size_t i = 1; i < s.size(); ++i) {
    if (s[i] != '-') continue;
    const char before = s[i - 1];
    if ((before < '0' || before > '9') && before != ' ' && before != '.') continue;
    const auto lo = number_of(s.substr(0, i));
    const auto hi = number_of(s.substr(i + 1));
    if (lo && hi) return {lo, hi};
  }
  return {std::nullopt, std::nullopt};
}

std::string number_text(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", d);
  return buf;
}

}  // namespace

bool rule::applies_to(std::string_view parameter) const noexcept {
  return parameters.empty() ||
         std::find(parameters.begin(), parameters.end(), parameter) != parameters.end();
}

std::string rule_load_error::format() const {
  std::string where = origin;
  if (!pointer.empty()) where.append(": ").append(pointer);
  if (!rule_id.empty()) where.append(" (rule \"").append(rule_id).append("\")");
  if (error) return format_error(where, source, *error);
  return where + ": " + message + "\n";
}

std::vector<rule_load_error> rule_set::add_parameters(const std::vector<parameter_config>& params) {
  std::vector<rule_load_error> errors;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    parameters_.push_back(p);
    if (!p.auto_rerun_allowed || p.auto_rerun_parameter_condition.empty()) continue;
    auto compiled = condition::compile(p.auto_rerun_parameter_condition);
    if (!compiled) {
      rule_load_error e;
      e.origin = "backend parameter configuration";
      e.pointer.append("/").append(std::to_string(i)).append("/auto_rerun_parameter_condition");
      e.rule_id = "parameter:" + p.machine_name;
      e.source = p.auto_rerun_parameter_condition;
      e.error = compiled.error;
      errors.push_back(std::move(e));
      continue;
    }
    rule r{"parameter:" + p.machine_name, {p.machine_name}, std::move(*compiled.program),
           rule_action::auto_rerun, 1, "backend parameter " + p.machine_name};
    rules_.push_back(std::move(r));
  }
  return errors;
}

const parameter_config* rule_set::parameter(std::string_view machine_name) const noexcept {
  for (const auto& p : parameters_)
    if (p.machine_name == machine_name) return &p;
  return nullptr;
}

const rule* rule_set::find(std::string_view id) const noexcept {
  for (const auto& r : rules_)
    if (r.id == id) return &r;
  return nullptr;
}

bindings bind_result(const result& r, std::string_view parameter,
                     const std::optional<observation>& previous, const parameter_config* config,
                     timestamp now, std::string_view qc_status) {
  bindings b;
  b.set(variable::value, value::number(r.numeric));
  b.set(variable::text, value::string(r.value));
  b.set(variable::unit, value::string(r.unit));
  b.set(variable::flags, value::strings(r.flags));
  b.set(variable::status, value::string(r.status));
  b.set(variable::qc, value::boolean(r.qc));
  std::optional<double> lo, hi;
  if (config != nullptr && (config->range_low || config->range_high)) {
    lo = config->range_low;
    hi = config->range_high;
  } else {
    std::tie(lo, hi) = parse_range(r.reference_range);
  }
  b.set(variable::range_low, value::number(lo));
  b.set(variable::range_high, value::number(hi));
  if (previous) {
    b.set(variable::previous_value, value::number(previous->numeric));
    if (const auto t = parse_wall_time(previous->observed_at))
      b.set(variable::previous_observed_at, value::time(static_cast<double>(t->time_since_epoch().count())));
  }
  if (const auto t = parse_wall_time(r.observed_at))
    b.set(variable::observed_at, value::time(static_cast<double>(t->time_since_epoch().count())));
  b.set(variable::device, value::string(r.device));
  b.set(variable::parameter, value::string(parameter));
  b.set(variable::sample_id, value::string(r.sample_id));
  b.set(variable::rerun_number, value::number(static_cast<double>(r.rerun_number)));
  b.set(variable::qc_status, value::string(qc_status));
  b.set(variable::now, value::time(static_cast<double>(now.time_since_epoch().count())));
  return b;
}

const char* to_string(rule_outcome o) noexcept {
  switch (o) {
    case rule_outcome::fired: return "fired";
    case rule_outcome::not_fired: return "not fired";
    case rule_outcome::skipped_rerun: return "skipped (a rerun never triggers another)";
    case rule_outcome::capped: return "held, but the automatic rerun cap is reached";
    case rule_outcome::skipped_resolution: return "skipped (the result is resolved SKIP)";
  }
  return "?";
}

std::vector<std::pair<std::string, seen_value>> seen_values(const condition& c, const bindings& b) {
  std::vector<std::pair<std::string, seen_value>> out;
  for (variable v : c.variables()) {
    const value& x = b.get(v);
    seen_value s;
    switch (x.k) {
      case value::kind::null: s.k = seen_value::kind::null; break;
      case value::kind::boolean: s.k = seen_value::kind::boolean; s.b = x.b; break;
      case value::kind::number: s.k = seen_value::kind::number; s.n = x.n; break;
      case value::kind::string: s.k = seen_value::kind::string; s.s = std::string(x.str()); break;
      case value::kind::time:
        s.k = seen_value::kind::time;
        s.s = format_wall_time(timestamp{std::chrono::seconds{static_cast<std::int64_t>(x.n)}});
        break;
      case value::kind::list:
      case value::kind::bound_list:
        s.k = seen_value::kind::strings;
        for (std::uint32_t i = 0; i < x.count; ++i)
          s.list.push_back(x.k == value::kind::bound_list ? x.strs[i] : std::string(x.items[i].str()));
        break;
    }
    out.emplace_back(to_string(v), std::move(s));
  }
  return out;
}

rule_outcome evaluate_rule(const rule& r, const bindings& b, int rerun_number,
                           int auto_reruns_so_far) noexcept {
  if (rerun_number != 0) return rule_outcome::skipped_rerun;
  if (!r.cond.evaluate(b)) return rule_outcome::not_fired;
  return auto_reruns_so_far >= r.max_per_sample ? rule_outcome::capped : rule_outcome::fired;
}

std::vector<qc::skip_decision> skip_decisions(const rule_set& rules, std::string_view parameter, skip_context c) {
  std::vector<qc::skip_decision> out;
  out.reserve(rules.rules().size());
  bool handled = false;
  for (const auto& r : rules.rules()) {
    if (!r.applies_to(parameter)) {
      out.push_back(qc::skip_decision::execute);
      continue;
    }
    // The handles_skip rule itself applies the SKIP outcome: for it, the handling has begun.
    const auto d = qc::decide_skip(c.has_skip, c.reevaluation, handled || r.handles_skip);
    if (d == qc::skip_decision::execute && r.handles_skip) handled = true;
    out.push_back(d);
  }
  return out;
}

std::string patient_result_id(std::string_view device, std::string_view sample, std::string_view parameter) {
  std::string id(patient_result_prefix);
  id.append(device).append("|").append(sample).append("|").append(parameter);
  return id;
}

rules_verdict evaluate_rules(const rule_set& rules, std::string_view parameter, const bindings& b,
                             int rerun_number, int auto_reruns_so_far, bool explain, skip_context skip) {
  rules_verdict v;
  // Only a SKIP result pays for the walk (this runs for every result).
  const auto decisions = skip.has_skip ? skip_decisions(rules, parameter, skip) : std::vector<qc::skip_decision>{};
  for (std::size_t i = 0; i < rules.rules().size(); ++i) {
    const rule& r = rules.rules()[i];
    // Reflex rules order added tests, not a rerun: process.cpp evaluates them on their own.
    if (!r.applies_to(parameter) || r.action != rule_action::auto_rerun) continue;
    rule_outcome o = !decisions.empty() && decisions[i] == qc::skip_decision::skip
                         ? rule_outcome::skipped_resolution
                         : evaluate_rule(r, b, rerun_number, auto_reruns_so_far);
    if (o == rule_outcome::fired && v.fired != nullptr) o = rule_outcome::capped;  // one per result
    if (o == rule_outcome::fired) {
      v.fired = &r;
      v.values = seen_values(r.cond, b);
    }
    if (explain) {
      rule_trace t{r.id, o, {}};
      if (o != rule_outcome::skipped_rerun && o != rule_outcome::skipped_resolution) t.values = seen_values(r.cond, b);
      v.trace.push_back(std::move(t));
    }
  }
  return v;
}

std::string describe(const std::vector<std::pair<std::string, seen_value>>& values) {
  std::string out;
  for (const auto& [name, s] : values) {
    if (!out.empty()) out += ", ";
    out += name;
    out += '=';
    switch (s.k) {
      case seen_value::kind::null: out += "null"; break;
      case seen_value::kind::boolean: out += s.b ? "true" : "false"; break;
      case seen_value::kind::number: out += number_text(s.n); break;
      case seen_value::kind::string: out += '"' + s.s + '"'; break;
      case seen_value::kind::time: out += s.s; break;
      case seen_value::kind::strings: {
        out += '[';
        for (std::size_t i = 0; i < s.list.size(); ++i) out += (i ? ",\"" : "\"") + s.list[i] + '"';
        out += ']';
        break;
      }
    }
  }
  return out;
}

rule_test_report run_rule_tests(const rules_file& file) {
  rule_test_report report;
  for (const auto& t : file.tests) {
    ++report.run;
    const rule* r = file.rules.find(t.rule_id);
    if (r == nullptr) {
      report.failures.push_back({t.rule_id, t.name, t.pointer, "no rule \"" + t.rule_id + "\" (it failed to load?)"});
      continue;
    }
    const std::string parameter =
        !t.given.code.empty() ? t.given.code : (r->parameters.empty() ? std::string() : r->parameters.front());
    const bindings b = bind_result(t.given, parameter, t.previous, file.rules.parameter(parameter), t.now, t.qc_status);
    const rule_outcome o = r->applies_to(parameter)
                               ? evaluate_rule(*r, b, t.given.rerun_number, t.auto_reruns_before)
                               : rule_outcome::not_fired;
    const bool fired = o == rule_outcome::fired;
    if (fired != t.expect_fired) {
      std::string msg = std::string("expected ") + (t.expect_fired ? "fired" : "not fired") + ", got " +
                        to_string(o);
      if (!r->applies_to(parameter)) msg += " (the rule does not apply to parameter \"" + parameter + "\")";
      msg.append("; the rule saw ").append(describe(seen_values(r->cond, b)));
      report.failures.push_back({t.rule_id, t.name, t.pointer, std::move(msg)});
    }
  }
  return report;
}

}  // namespace interfaced::rerun
