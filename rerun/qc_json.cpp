#include "rerun/qc_json.hpp"

#include <set>

namespace interfaced::rerun::qc {

using nlohmann::json;

namespace {

std::string text(const json& o, const char* key, const std::string& at, bool required) {
  const auto it = o.find(key);
  if (it == o.end() || it->is_null()) {
    if (required) throw json_error(at + "/" + key, "missing; this key is required");
    return {};
  }
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();  // a level sent as 1
  throw json_error(at + "/" + key, std::string("expected a string, found ") + it->type_name());
}

double number(const json& o, const char* key, const std::string& at) {
  const auto it = o.find(key);
  if (it == o.end()) throw json_error(at + "/" + key, "missing; this key is required");
  if (!it->is_number()) throw json_error(at + "/" + key, std::string("expected a number, found ") + it->type_name());
  return it->get<double>();
}

void only_keys(const json& o, const std::string& at, const std::set<std::string>& keys) {
  for (auto it = o.begin(); it != o.end(); ++it)
    if (!keys.contains(it.key())) throw json_error(at + "/" + it.key(), "unknown key");
}

}  // namespace

std::vector<limits> limits_from_json(const json& j, const std::string& at) {
  if (!j.is_array()) throw json_error(at, std::string("expected an array of limits, found ") + j.type_name());
  std::vector<limits> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const std::string p = at + "/" + std::to_string(i);
    const json& e = j[i];
    if (!e.is_object()) throw json_error(p, std::string("expected an object, found ") + e.type_name());
    limits l;
    l.series.parameter = text(e, "parameter", p, true);
    l.series.level = text(e, "level", p, false);
    l.series.material = text(e, "material", p, false);
    l.series.lot = text(e, "lot", p, false);
    l.mean = number(e, "mean", p);
    l.sd = number(e, "sd", p);
    if (!(l.sd > 0)) throw json_error(p + "/sd", "expected a standard deviation above 0");
    l.unit = text(e, "unit", p, false);
    out.push_back(std::move(l));
  }
  return out;
}

rule_set rule_set_from_json(const json& j, const std::string& at) {
  if (!j.is_array()) throw json_error(at, std::string("expected an array of rule names, found ") + j.type_name());
  rule_set rs;
  rs.rules = 0;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const std::string p = at + "/" + std::to_string(i);
    if (!j[i].is_string()) throw json_error(p, "expected a rule name such as \"1-3s\"");
    const auto r = rule_from_string(j[i].get<std::string>());
    if (!r)
      throw json_error(p, "unknown rule \"" + j[i].get<std::string>() +
                              "\": expected 1-2s, 1-3s, 2-2s, R-4s, 4-1s, 10-x, 2of3-2s, 3-1s, 8-x, 9-x or 12-x");
    rs.rules |= bit(*r);
  }
  return rs;
}

qc_config qc_config_from_json(const json& j, const std::string& at) {
  if (!j.is_object()) throw json_error(at, std::string("expected an object, found ") + j.type_name());
  only_keys(j, at, {"limits", "controls", "rules", "parameter_rules", "gate_on_1_2s", "event_window_s", "max_interval_h",
                    "parameter_max_interval_h", "resolution_codes"});
  qc_config c;
  c.enabled = true;
  if (j.contains("limits")) c.configured = limits_from_json(j["limits"], at + "/limits");
  if (j.contains("controls")) {
    const json& a = j["controls"];
    if (!a.is_array()) throw json_error(at + "/controls", "expected an array of {sample_id, material, lot, level}");
    for (std::size_t i = 0; i < a.size(); ++i) {
      const std::string p = at + "/controls/" + std::to_string(i);
      if (!a[i].is_object()) throw json_error(p, "expected an object {sample_id, material, lot, level}");
      only_keys(a[i], p, {"sample_id", "material", "lot", "level", "override"});
      c.controls.push_back({text(a[i], "sample_id", p, true), text(a[i], "material", p, false),
                            text(a[i], "lot", p, false), text(a[i], "level", p, false), false});
      if (a[i].contains("override")) {
        if (!a[i]["override"].is_boolean()) throw json_error(p + "/override", "expected true or false");
        c.controls.back().override = a[i]["override"].get<bool>();
      }
    }
  }
  if (j.contains("resolution_codes")) {
    const json& a = j["resolution_codes"];
    const std::string shape = "expected an array of {code, excludes_from_westgard, skip, two_step}";
    if (!a.is_array()) throw json_error(at + "/resolution_codes", shape);
    for (std::size_t i = 0; i < a.size(); ++i) {
      const std::string p = at + "/resolution_codes/" + std::to_string(i);
      if (!a[i].is_object()) throw json_error(p, shape);
      only_keys(a[i], p, {"code", "excludes_from_westgard", "skip", "two_step"});
      resolution_code rc;
      rc.code = text(a[i], "code", p, true);
      if (find_code(c.resolution_codes, rc.code) != nullptr) throw json_error(p + "/code", "the code \"" + rc.code + "\" is listed twice");
      for (auto [key, field] : {std::pair{"excludes_from_westgard", &rc.excludes_from_westgard}, std::pair{"skip", &rc.skip},
                                std::pair{"two_step", &rc.two_step}}) {
        if (!a[i].contains(key)) continue;
        if (!a[i][key].is_boolean()) throw json_error(p + "/" + key, "expected true or false");
        *field = a[i][key].get<bool>();
      }
      c.resolution_codes.push_back(std::move(rc));
    }
  }
  if (j.contains("rules")) c.default_rules = rule_set_from_json(j["rules"], at + "/rules");
  bool gate = false;
  if (j.contains("gate_on_1_2s")) {
    if (!j["gate_on_1_2s"].is_boolean()) throw json_error(at + "/gate_on_1_2s", "expected true or false");
    gate = j["gate_on_1_2s"].get<bool>();
  }
  c.default_rules.gate_on_1_2s = gate;
  if (j.contains("parameter_rules")) {
    const json& pr = j["parameter_rules"];
    if (!pr.is_object()) throw json_error(at + "/parameter_rules", "expected an object {parameter: [rules]}");
    for (auto it = pr.begin(); it != pr.end(); ++it) {
      rule_set rs = rule_set_from_json(*it, at + "/parameter_rules/" + it.key());
      rs.gate_on_1_2s = gate;
      c.rules.emplace(it.key(), rs);
    }
  }
  if (j.contains("event_window_s")) {
    const json& e = j["event_window_s"];
    if (!e.is_number_integer() || e.get<long long>() < 0 || e.get<long long>() > 86400)
      throw json_error(at + "/event_window_s", "expected whole seconds from 0 to 86400");
    c.event_window_s = e.get<std::int64_t>();
  }
  if (j.contains("max_interval_h")) {
    c.max_interval_h = number(j, "max_interval_h", at);
    if (!(c.max_interval_h > 0)) throw json_error(at + "/max_interval_h", "expected hours above 0");
  }
  if (j.contains("parameter_max_interval_h")) {
    const json& m = j["parameter_max_interval_h"];
    if (!m.is_object()) throw json_error(at + "/parameter_max_interval_h", "expected an object {parameter: hours}");
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (!it->is_number() || !(it->get<double>() > 0))
        throw json_error(at + "/parameter_max_interval_h/" + it.key(), "expected hours above 0");
      c.max_interval_h_per.emplace(it.key(), it->get<double>());
    }
  }
  return c;
}

namespace {
json opt(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }
std::optional<double> opt_of(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}
}  // namespace

json to_json(const qc_tracker& t) {
  json charts = json::object();
  for (const auto& [key, ch] : t.chart_state()) {
    json pts = json::array();
    for (std::size_t i = 0; i < ch.results.size(); ++i) {
      const auto& c = ch.results[i];
      const auto& v = ch.verdicts[i];
      pts.push_back({{"device", c.device},
                     {"series", {c.series.parameter, c.series.material, c.series.lot, c.series.level}},
                     {"value", opt(c.value)},
                     {"unit", c.unit},
                     {"observed_at", c.observed_at},
                     {"t", c.t.time_since_epoch().count()},
                     {"result_id", c.result_id},
                     {"analyser", {opt(c.analyser_mean), opt(c.analyser_sd)}},
                     {"z", opt(v.z)},
                     {"mean", opt(v.mean)},
                     {"sd", opt(v.sd)},
                     {"outcome", std::string(to_string(v.eval.result))},
                     {"fired", v.eval.fired},
                     {"limits_source", v.limits_source},
                     {"run_id", v.run_id}});
    }
    charts[key] = std::move(pts);
  }
  return {{"charts", std::move(charts)}, {"reported", t.reported_state()}};
}

void restore(qc_tracker& t, const json& j) {
  if (!j.is_object()) throw json_error("", "expected the QC state object");
  auto& charts = t.chart_state();
  charts.clear();
  const json stored = j.value("charts", json::object());  // a named copy: items() is a view
  for (const auto& [key, pts] : stored.items()) {
    qc_tracker::chart ch;
    for (const auto& p : pts) {
      control_result c;
      c.device = p.value("device", "");
      const auto& s = p.at("series");
      c.series = {s.at(0).get<std::string>(), s.at(1).get<std::string>(), s.at(2).get<std::string>(),
                  s.at(3).get<std::string>()};
      c.value = opt_of(p, "value");
      c.unit = p.value("unit", "");
      c.observed_at = p.value("observed_at", "");
      c.t = timestamp{std::chrono::seconds{p.value("t", std::int64_t{0})}};
      c.result_id = p.value("result_id", "");
      const auto& a = p.at("analyser");
      if (a.at(0).is_number()) c.analyser_mean = a.at(0).get<double>();
      if (a.at(1).is_number()) c.analyser_sd = a.at(1).get<double>();
      control_verdict v;
      v.z = opt_of(p, "z");
      v.mean = opt_of(p, "mean");
      v.sd = opt_of(p, "sd");
      const std::string o = p.value("outcome", "no_limits");
      v.eval.result = o == "accept" ? outcome::accept : o == "warning" ? outcome::warning
                      : o == "reject" ? outcome::reject : outcome::no_limits;
      v.eval.fired = p.value("fired", rule_mask{0});
      v.limits_source = p.value("limits_source", "");
      v.run_id = p.value("run_id", "");
      ch.results.push_back(std::move(c));
      ch.verdicts.push_back(std::move(v));
    }
    charts.emplace(key, std::move(ch));
  }
  auto& reported = t.reported_state();
  reported.clear();
  const json runs = j.value("reported", json::array());
  for (const auto& r : runs) reported.insert(r.get<std::string>());
}

}  // namespace interfaced::rerun::qc
