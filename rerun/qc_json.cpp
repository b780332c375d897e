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
                    "parameter_max_interval_h"});
  qc_config c;
  c.enabled = true;
  if (j.contains("limits")) c.configured = limits_from_json(j["limits"], at + "/limits");
  if (j.contains("controls")) {
    const json& a = j["controls"];
    if (!a.is_array()) throw json_error(at + "/controls", "expected an array of {sample_id, material, lot, level}");
    for (std::size_t i = 0; i < a.size(); ++i) {
      const std::string p = at + "/controls/" + std::to_string(i);
      if (!a[i].is_object()) throw json_error(p, "expected an object {sample_id, material, lot, level}");
      only_keys(a[i], p, {"sample_id", "material", "lot", "level"});
      c.controls.push_back({text(a[i], "sample_id", p, true), text(a[i], "material", p, false),
                            text(a[i], "lot", p, false), text(a[i], "level", p, false)});
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

}  // namespace interfaced::rerun::qc
