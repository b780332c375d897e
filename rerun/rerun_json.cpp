#include "rerun/rerun_json.hpp"

#include <map>
#include <set>
#include <string_view>

#include "parsers/number.hpp"

namespace interfaced::rerun {

using nlohmann::json;

namespace {

std::string ptr(const std::string& base, const std::string& key) { return base + "/" + key; }
std::string ptr(const std::string& base, std::size_t i) { return base + "/" + std::to_string(i); }

// Ids arrive as strings or (Django primary keys) integers.
std::string id_string(const json& j, const std::string& at) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number_integer()) return std::to_string(j.get<long long>());
  if (j.is_number_unsigned()) return std::to_string(j.get<unsigned long long>());
  if (j.is_null()) return {};
  throw json_error(at, "expected a string or an integer id");
}

std::string text(const json& obj, const char* key, const std::string& at) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return {};
  if (!it->is_string()) throw json_error(ptr(at, key), "expected a string");
  return it->get<std::string>();
}

int integer(const json& obj, const char* key, const std::string& at, int fallback) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (it->is_number_integer()) return it->get<int>();
  if (it->is_string()) {
    try {
      return std::stoi(it->get<std::string>());
    } catch (const std::exception&) {
    }
  }
  throw json_error(ptr(at, key), "expected an integer");
}

bool boolean(const json& obj, const char* key, const std::string& at) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return false;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_number_integer()) return it->get<long long>() != 0;  // MySQL tinyint
  throw json_error(ptr(at, key), "expected true or false");
}

std::vector<std::string> strings(const json& obj, const char* key, const std::string& at) {
  std::vector<std::string> out;
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) throw json_error(ptr(at, key), "expected an array of strings");
  for (std::size_t i = 0; i < it->size(); ++i) {
    const json& x = (*it)[i];
    out.push_back(id_string(x, ptr(ptr(at, key), i)));
  }
  return out;
}

std::optional<double> number_or_null(const json& obj, const char* key, const std::string& at) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (it->is_number()) return it->get<double>();
  if (it->is_string()) {
    const std::string s = it->get<std::string>();
    if (s.empty()) return std::nullopt;
    if (const auto d = parse_number(s, false)) return d;
  }
  throw json_error(ptr(at, key), "expected a number");
}

void require_object(const json& j, const std::string& at) {
  if (!j.is_object()) throw json_error(at.empty() ? "/" : at, "expected an object");
}

void require_array(const json& j, const std::string& at) {
  if (!j.is_array()) throw json_error(at.empty() ? "/" : at, "expected an array");
}

waiting_list_entry entry_from_json(const json& j, const std::string& at) {
  require_object(j, at);
  waiting_list_entry e;
  e.sample_id = id_string(j.value("sample_id", json()), ptr(at, "sample_id"));
  e.lab_report_id = id_string(j.value("lab_report_id", json()), ptr(at, "lab_report_id"));
  if (e.lab_report_id.empty()) throw json_error(ptr(at, "lab_report_id"), "missing");
  e.sample_redraw_flag = integer(j, "sampleRedrawFlag", at, 0);
  e.rerun_number = integer(j, "rerunNumber", at, 0);
  e.parameters = strings(j, "parameters", at);
  e.rerun_params = strings(j, "rerun_params", at);
  e.valued_parameters = strings(j, "valued_parameters", at);
  if (const auto p = j.find("patient"); p != j.end() && !p->is_null()) {
    const std::string pat = ptr(at, "patient");
    require_object(*p, pat);
    e.patient.id = id_string(p->value("id", json()), ptr(pat, "id"));
    e.patient.name = text(*p, "name", pat);
    e.patient.sex = text(*p, "sex", pat);
    e.patient.dob = text(*p, "dob", pat);
  }
  e.priority = id_string(j.value("priority", json()), ptr(at, "priority"));
  return e;
}

json value_json(const result_value& v) {
  json j = {{"sample_id", v.sample_id}};
  if (!v.lab_report_id.empty()) j["lab_report_id"] = v.lab_report_id;
  j["parameter"] = v.parameter;
  j["value"] = v.value;
  j["unit"] = v.unit;
  j["flags"] = v.flags;
  j["reference_range"] = v.reference_range;
  j["status"] = v.status;
  j["observed_at"] = v.observed_at;
  j["is_rerun"] = v.is_rerun;
  j["rerun_number"] = v.rerun_number;
  j["machine_triggered_rerun"] = v.machine_triggered_rerun;
  j["instrument_code"] = v.instrument_code;
  j["raw"] = v.raw;
  if (v.sample_id_missing()) j["sample_id_missing"] = true;
  if (!v.sub_id.empty()) j["sub_id"] = v.sub_id;
  if (!v.result_type.empty()) j["result_type"] = v.result_type;
  if (!v.statuses.empty()) j["statuses"] = v.statuses;
  for (const auto& [label, value] : v.companions) j["companions"][label] = value;
  if (!v.qc_status.empty()) j["qc_status"] = v.qc_status;
  return j;
}

json qc_value_json(const qc_result_value& v) {
  json j = {{"series", {{"parameter", v.parameter}, {"material", v.material}, {"lot", v.lot}, {"level", v.level}}},
            {"sample_id", v.sample_id},
            {"value", v.value},
            {"unit", v.unit},
            {"observed_at", v.observed_at},
            {"z", v.z ? json(*v.z) : json(nullptr)},
            {"outcome", v.outcome},
            {"rules", v.rules},
            {"run_id", v.run_id},
            {"result_id", v.result_id},
            {"instrument_code", v.instrument_code}};
  if (v.mean && v.sd) j["limits"] = {{"mean", *v.mean}, {"sd", *v.sd}, {"source", v.limits_source}};
  return j;
}

json values_json(const std::vector<result_value>& vs) {
  json a = json::array();
  for (const auto& v : vs) a.push_back(value_json(v));
  return a;
}

timestamp time_from(const json& obj, const char* key, const std::string& at) {
  const std::string s = text(obj, key, at);
  if (s.empty()) return timestamp{};
  const auto t = parse_wall_time(s);
  if (!t) throw json_error(ptr(at, key), "expected a time (YYYY-MM-DDTHH:MM:SS)");
  return *t;
}

}  // namespace

std::vector<waiting_list_entry> waiting_list_from_json(const json& j) {
  require_array(j, "");
  std::vector<waiting_list_entry> out;
  for (std::size_t i = 0; i < j.size(); ++i) out.push_back(entry_from_json(j[i], ptr("", i)));
  return out;
}

json to_json(const waiting_list_entry& e) {
  json j = {{"sample_id", e.sample_id},
            {"lab_report_id", e.lab_report_id},
            {"sampleRedrawFlag", e.sample_redraw_flag},
            {"rerunNumber", e.rerun_number},
            {"parameters", e.parameters},
            {"rerun_params", e.rerun_params},
            {"patient", {{"id", e.patient.id}, {"name", e.patient.name}, {"sex", e.patient.sex}, {"dob", e.patient.dob}}},
            {"priority", e.priority}};
  if (!e.valued_parameters.empty()) j["valued_parameters"] = e.valued_parameters;
  return j;
}

std::vector<parameter_config> parameters_from_json(const json& j) {
  require_array(j, "");
  std::vector<parameter_config> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const std::string at = ptr("", i);
    const json& p = j[i];
    require_object(p, at);
    parameter_config c;
    c.machine_name = id_string(p.value("machine_name", json()), ptr(at, "machine_name"));
    if (c.machine_name.empty()) throw json_error(ptr(at, "machine_name"), "missing");
    c.manual_rerun = boolean(p, "manual_rerun", at);
    c.auto_rerun_allowed = boolean(p, "auto_rerun_allowed", at);
    c.auto_rerun_parameter_condition = text(p, "auto_rerun_parameter_condition", at);
    if (const auto r = p.find("range"); r != p.end() && !r->is_null()) {
      require_object(*r, ptr(at, "range"));
      c.range_low = number_or_null(*r, "low", ptr(at, "range"));
      c.range_high = number_or_null(*r, "high", ptr(at, "range"));
    }
    c.unit = text(p, "unit", at);
    out.push_back(std::move(c));
  }
  return out;
}

json to_json(const seen_value& v) {
  switch (v.k) {
    case seen_value::kind::null: return nullptr;
    case seen_value::kind::boolean: return v.b;
    case seen_value::kind::number: return v.n;
    case seen_value::kind::string:
    case seen_value::kind::time: return v.s;
    case seen_value::kind::strings: return v.list;
  }
  return nullptr;
}

std::optional<std::string> retag_qc_status(std::string_view body, std::string_view sample_id,
                                           std::string_view parameter, std::string_view observed_at,
                                           std::string_view status) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  bool found = false;
  // values_json writes both: a results post's "results", a rerun values post's "values".
  for (const char* list : {"results", "values"}) {
    if (!j.contains(list) || !j[list].is_array()) continue;
    for (auto& r : j[list])
      if (r.is_object() && r.value("sample_id", "") == sample_id && r.value("parameter", "") == parameter &&
          r.value("observed_at", "") == observed_at) {
        r["qc_status"] = status;
        found = true;
      }
  }
  if (!found) return std::nullopt;
  return j.dump();
}

json body_json(const outgoing_message& m) {
  switch (m.kind) {
    case endpoint::results:
      return {{"device_id", m.results.device_id},
              {"batch_id", m.results.batch_id},
              {"received_at", m.results.received_at},
              {"results", values_json(m.results.results)}};
    case endpoint::rerun_values: {
      const auto& b = m.rerun_values;
      return {{"lab_report_id", b.lab_report_id},
              {"rerun_number", b.rerun_number},
              {"machine_triggered_rerun", b.machine_triggered_rerun},
              {"requested_parameters", b.requested_parameters},
              {"fulfilled_parameters", b.fulfilled_parameters},
              {"values", values_json(b.values)},
              {"activity", code(b.act)}};
    }
    case endpoint::rerun_request: {
      const auto& b = m.request;
      json values = json::object();
      for (const auto& [name, v] : b.values) values[name] = to_json(v);
      return {{"lab_report_id", b.lab_report_id},
              {"requested_parameters", b.requested_parameters},
              {"reason", {{"rule", b.rule}, {"values", values}}},
              {"activity", code(b.act)}};
    }
    case endpoint::qc_results: {
      json results = json::array();
      for (const auto& v : m.qc.results) results.push_back(qc_value_json(v));
      return {{"device_id", m.qc.device_id}, {"results", std::move(results)}};
    }
    case endpoint::reflex: {
      const auto& b = m.reflex;
      json j = {{"sample_id", b.sample_id},
                {"trigger", {{"parameter", b.parameter}, {"value", b.value}, {"rule", b.rule}}},
                {"add_parameters", b.add_parameters}};
      if (!b.lab_report_id.empty()) j["lab_report_id"] = b.lab_report_id;
      return j;
    }
    case endpoint::qc_runs: {
      const auto& b = m.qc_run;
      json pr = json::array();
      for (const auto& p : b.patient_results) {
        json one = {{"sample_id", p.sample_id}, {"parameter", p.parameter}, {"observed_at", p.observed_at}};
        if (!p.exported_at.empty()) one["exported_at"] = p.exported_at;
        pr.push_back(std::move(one));
      }
      return {{"device_id", b.device_id}, {"run_id", b.run_id}, {"status", b.status}, {"reason", b.reason},
              {"patient_results", std::move(pr)}};
    }
  }
  return json::object();
}

namespace {

// Appends s as dump() writes a JSON string: `"` `\\` and the C0 controls escaped (\b \t \n \f \r,
// else \u00xx in lower case), everything else as it is. A string with bytes above 0x7F goes
// through nlohmann itself, which checks the UTF-8 (and throws on bad UTF-8, as dump() does).
void append_string(std::string& out, std::string_view s) {
  for (const char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) {
      out += json(std::string(s)).dump();
      return;
    }
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  // Runs that need no escape go in whole (issue #17: a push_back per character was ~5k
  // instructions of every 2-result message).
  std::size_t plain = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + plain, i - plain);
    plain = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default:
        out += "\\u00";
        out.push_back(hex[u >> 4]);
        out.push_back(hex[u & 0x0F]);
    }
  }
  out.append(s.data() + plain, s.size() - plain);
  out.push_back('"');
}

void append_strings(std::string& out, const std::vector<std::string>& v) {
  out.push_back('[');
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_string(out, v[i]);
  }
  out.push_back(']');
}

// One member, `"key":` (keys are plain ASCII here, written as they are); a comma before all but
// the first.
void key(std::string& out, bool& first, std::string_view k) {
  if (!first) out.push_back(',');
  first = false;
  out.push_back('"');
  out += k;
  out += "\":";
}

// value_json(v).dump(): the members in std::map (byte) order, as nlohmann's object keeps them.
void append_value(std::string& out, const result_value& v) {
  bool first = true;
  out.push_back('{');
  if (!v.companions.empty()) {
    // j["companions"][label] = value: sorted by label, a repeated label keeps its last value.
    std::map<std::string_view, std::string_view> by_label;
    for (const auto& [label, value] : v.companions) by_label.insert_or_assign(label, value);
    key(out, first, "companions");
    out.push_back('{');
    bool inner = true;
    for (const auto& [label, value] : by_label) {
      if (!inner) out.push_back(',');
      inner = false;
      append_string(out, label);
      out.push_back(':');
      append_string(out, value);
    }
    out.push_back('}');
  }
  key(out, first, "flags");
  append_strings(out, v.flags);
  key(out, first, "instrument_code");
  append_string(out, v.instrument_code);
  key(out, first, "is_rerun");
  out += v.is_rerun ? "true" : "false";
  if (!v.lab_report_id.empty()) {
    key(out, first, "lab_report_id");
    append_string(out, v.lab_report_id);
  }
  key(out, first, "machine_triggered_rerun");
  out += v.machine_triggered_rerun ? "true" : "false";
  key(out, first, "observed_at");
  append_string(out, v.observed_at);
  key(out, first, "parameter");
  append_string(out, v.parameter);
  if (!v.qc_status.empty()) {
    key(out, first, "qc_status");
    append_string(out, v.qc_status);
  }
  key(out, first, "raw");
  append_string(out, v.raw);
  key(out, first, "reference_range");
  append_string(out, v.reference_range);
  key(out, first, "rerun_number");
  out += std::to_string(v.rerun_number);
  if (!v.result_type.empty()) {
    key(out, first, "result_type");
    append_string(out, v.result_type);
  }
  key(out, first, "sample_id");
  append_string(out, v.sample_id);
  if (v.sample_id_missing()) {
    key(out, first, "sample_id_missing");
    out += "true";
  }
  key(out, first, "status");
  append_string(out, v.status);
  if (!v.statuses.empty()) {
    key(out, first, "statuses");
    append_strings(out, v.statuses);
  }
  if (!v.sub_id.empty()) {
    key(out, first, "sub_id");
    append_string(out, v.sub_id);
  }
  key(out, first, "unit");
  append_string(out, v.unit);
  key(out, first, "value");
  append_string(out, v.value);
  out.push_back('}');
}

void append_values(std::string& out, const std::vector<result_value>& vs) {
  out.push_back('[');
  for (std::size_t i = 0; i < vs.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_value(out, vs[i]);
  }
  out.push_back(']');
}

}  // namespace

std::string body_text(const outgoing_message& m) {
  std::string out;
  bool first = true;
  switch (m.kind) {
    case endpoint::results: {
      const auto& b = m.results;
      out.reserve(128 + 512 * b.results.size());
      out.push_back('{');
      key(out, first, "batch_id");
      append_string(out, b.batch_id);
      key(out, first, "device_id");
      append_string(out, b.device_id);
      key(out, first, "received_at");
      append_string(out, b.received_at);
      key(out, first, "results");
      append_values(out, b.results);
      out.push_back('}');
      return out;
    }
    case endpoint::rerun_values: {
      const auto& b = m.rerun_values;
      out.reserve(256 + 512 * b.values.size());
      out.push_back('{');
      key(out, first, "activity");
      out += std::to_string(code(b.act));
      key(out, first, "fulfilled_parameters");
      append_strings(out, b.fulfilled_parameters);
      key(out, first, "lab_report_id");
      append_string(out, b.lab_report_id);
      key(out, first, "machine_triggered_rerun");
      out += b.machine_triggered_rerun ? "true" : "false";
      key(out, first, "requested_parameters");
      append_strings(out, b.requested_parameters);
      key(out, first, "rerun_number");
      out += std::to_string(b.rerun_number);
      key(out, first, "values");
      append_values(out, b.values);
      out.push_back('}');
      return out;
    }
    default:
      return body_json(m).dump();
  }
}

std::vector<std::pair<std::string, std::string>> extra_headers(const outgoing_message& m) {
  if (m.internal_request) return {{"x-is-internal-request", "True"}};
  return {};
}

json to_json(const rerun_state& s) {
  json reruns = json::array();
  for (const auto& [id, r] : s.reruns) {
    reruns.push_back({{"lab_report_id", r.lab_report_id},
                      {"sample_id", r.sample_id},
                      {"rerun_number", r.number},
                      {"requested_parameters", r.requested},
                      {"fulfilled_parameters", r.fulfilled},
                      {"status", r.status == rerun_status::received ? "received" : "requested"},
                      {"since", format_wall_time(r.since)}});
  }
  json lists = json::object();
  for (const auto& [device, entries] : s.waiting_lists) {
    json a = json::array();
    for (const auto& e : entries) a.push_back(to_json(e));
    lists[device] = std::move(a);
  }
  json autos = json::array();
  for (const auto& [key, a] : s.auto_reruns) {
    const auto sep = key.find('\x1f');
    autos.push_back({{"sample_id", key.substr(0, sep)},
                     {"parameter", sep == std::string::npos ? std::string() : key.substr(sep + 1)},
                     {"count", a.count},
                     {"last", format_wall_time(a.last)}});
  }
  json reflexes = json::object();
  for (const auto& [device, orders] : s.reflex_orders) {
    json a = json::array();
    for (const auto& o : orders)
      // Not the waiting-list entry's own JSON: a reflex may fire for a sample no report lists.
      a.push_back({{"sample_id", o.entry.sample_id},
                   {"lab_report_id", o.entry.lab_report_id},
                   {"patient",
                    {{"id", o.entry.patient.id}, {"name", o.entry.patient.name}, {"sex", o.entry.patient.sex},
                     {"dob", o.entry.patient.dob}}},
                   {"priority", o.entry.priority},
                   {"rule", o.rule},
                   {"tests", o.tests},
                   {"since", format_wall_time(o.since)}});
    reflexes[device] = std::move(a);
  }
  return {{"version", 1}, {"reruns", reruns}, {"waiting_lists", lists}, {"auto_reruns", autos},
          {"reflex_orders", reflexes}};
}

rerun_state rerun_state_from_json(const json& j) {
  require_object(j, "");
  if (j.value("version", 0) != 1) throw json_error("/version", "expected 1");
  rerun_state s;
  if (const auto r = j.find("reruns"); r != j.end()) {
    require_array(*r, "/reruns");
    for (std::size_t i = 0; i < r->size(); ++i) {
      const std::string at = ptr("/reruns", i);
      const json& x = (*r)[i];
      require_object(x, at);
      report_rerun rr;
      rr.lab_report_id = text(x, "lab_report_id", at);
      rr.sample_id = text(x, "sample_id", at);
      rr.number = integer(x, "rerun_number", at, 0);
      rr.requested = strings(x, "requested_parameters", at);
      rr.fulfilled = strings(x, "fulfilled_parameters", at);
      const std::string status = text(x, "status", at);
      if (status != "requested" && status != "received")
        throw json_error(ptr(at, "status"), "expected \"requested\" or \"received\"");
      rr.status = status == "received" ? rerun_status::received : rerun_status::requested;
      rr.since = time_from(x, "since", at);
      s.reruns.insert_or_assign(rr.lab_report_id, std::move(rr));
    }
  }
  if (const auto w = j.find("waiting_lists"); w != j.end()) {
    require_object(*w, "/waiting_lists");
    for (const auto& [device, entries] : w->items()) {
      const std::string at = ptr("/waiting_lists", device);
      require_array(entries, at);
      std::vector<waiting_list_entry> list;
      for (std::size_t i = 0; i < entries.size(); ++i) list.push_back(entry_from_json(entries[i], ptr(at, i)));
      s.waiting_lists.insert_or_assign(device, std::move(list));
    }
  }
  if (const auto a = j.find("auto_reruns"); a != j.end()) {
    require_array(*a, "/auto_reruns");
    for (std::size_t i = 0; i < a->size(); ++i) {
      const std::string at = ptr("/auto_reruns", i);
      const json& x = (*a)[i];
      require_object(x, at);
      std::string key = text(x, "sample_id", at);
      key.push_back('\x1f');
      key += text(x, "parameter", at);
      s.auto_reruns.insert_or_assign(key, rerun_state::auto_rerun_record{integer(x, "count", at, 0),
                                                                         time_from(x, "last", at)});
    }
  }
  // Added after version 1 without a version bump: a state written before has none.
  if (const auto r = j.find("reflex_orders"); r != j.end()) {
    require_object(*r, "/reflex_orders");
    for (const auto& [device, orders] : r->items()) {
      const std::string at = ptr("/reflex_orders", device);
      require_array(orders, at);
      std::vector<reflex_order> list;
      for (std::size_t i = 0; i < orders.size(); ++i) {
        const std::string oat = ptr(at, i);
        const json& x = orders[i];
        require_object(x, oat);
        reflex_order o;
        o.entry.sample_id = text(x, "sample_id", oat);
        o.entry.lab_report_id = text(x, "lab_report_id", oat);
        if (const auto p = x.find("patient"); p != x.end()) {
          const std::string pat = ptr(oat, "patient");
          require_object(*p, pat);
          o.entry.patient = {text(*p, "id", pat), text(*p, "name", pat), text(*p, "sex", pat), text(*p, "dob", pat)};
        }
        o.entry.priority = text(x, "priority", oat);
        o.rule = text(x, "rule", oat);
        o.tests = strings(x, "tests", oat);
        o.since = time_from(x, "since", oat);
        list.push_back(std::move(o));
      }
      s.reflex_orders.insert_or_assign(device, std::move(list));
    }
  }
  return s;
}

namespace {

result given_result(const json& g, const std::string& at, std::optional<observation>& previous,
                    timestamp& now, int& auto_before, std::string& qc_status) {
  static const std::set<std::string> known = {"parameter", "value", "unit", "flags", "status", "qc",
                                              "reference_range", "observed_at", "device", "sample_id",
                                              "rerun_number", "previous", "now", "auto_reruns_before",
                                              "qc_status"};
  require_object(g, at);
  for (const auto& [k, v] : g.items())
    if (!known.count(k)) throw json_error(ptr(at, k), "unknown field");
  result r;
  r.code = text(g, "parameter", at);
  auto set_value = [](const json& v, const std::string& where, std::string& txt, std::optional<double>& num) {
    if (v.is_null()) return;
    if (v.is_number()) {
      num = v.get<double>();
      txt = v.dump();
    } else if (v.is_string()) {
      txt = v.get<std::string>();
      num = parse_number(txt, false);  // numeric exactly as the parsers would set it
    } else {
      throw json_error(where, "expected a number, a string or null");
    }
  };
  if (const auto v = g.find("value"); v != g.end()) set_value(*v, ptr(at, "value"), r.value, r.numeric);
  r.unit = text(g, "unit", at);
  r.flags = strings(g, "flags", at);
  r.status = text(g, "status", at);
  r.qc = boolean(g, "qc", at);
  r.reference_range = text(g, "reference_range", at);
  r.observed_at = text(g, "observed_at", at);
  r.device = text(g, "device", at);
  r.sample_id = text(g, "sample_id", at);
  r.rerun_number = integer(g, "rerun_number", at, 0);
  r.is_rerun = r.rerun_number != 0;
  if (const auto p = g.find("previous"); p != g.end() && !p->is_null()) {
    const std::string pat = ptr(at, "previous");
    require_object(*p, pat);
    observation o;
    if (const auto v = p->find("value"); v != p->end()) set_value(*v, ptr(pat, "value"), o.value, o.numeric);
    o.observed_at = text(*p, "observed_at", pat);
    previous = std::move(o);
  }
  now = time_from(g, "now", at);
  auto_before = integer(g, "auto_reruns_before", at, 0);
  qc_status = text(g, "qc_status", at);
  return r;
}

}  // namespace

rules_file load_rules_file(std::string_view text_in, std::string origin) {
  rules_file f;
  f.origin = origin;
  auto fail = [&](std::string pointer, std::string rule_id, std::string message) {
    rule_load_error e;
    e.origin = origin;
    e.pointer = std::move(pointer);
    e.rule_id = std::move(rule_id);
    e.message = std::move(message);
    f.errors.push_back(std::move(e));
  };
  json doc;
  try {
    doc = json::parse(text_in.begin(), text_in.end());
  } catch (const json::parse_error& e) {
    const auto [line, col] = line_column(text_in, e.byte > 0 ? e.byte - 1 : 0);
    fail({}, {}, std::to_string(line) + ":" + std::to_string(col) + ": not valid JSON (" + e.what() + ")");
    return f;
  }
  if (!doc.is_object() || !doc.contains("rules") || !doc["rules"].is_array()) {
    fail("/rules", {}, "expected an object with an array \"rules\"");
    return f;
  }
  static const std::set<std::string> rule_keys = {"id", "parameters", "condition", "action", "max_per_sample",
                                                  "tests", "why", "add_tests", "handles_skip"};
  std::set<std::string> ids;
  const json& rules = doc["rules"];
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const std::string at = ptr("/rules", i);
    const json& j = rules[i];
    std::string id;
    try {
      require_object(j, at);
      id = text(j, "id", at);
      if (id.empty()) throw json_error(ptr(at, "id"), "a rule needs an id");
      if (!ids.insert(id).second) throw json_error(ptr(at, "id"), "duplicate rule id \"" + id + "\"");
      for (const auto& [k, v] : j.items())
        if (!rule_keys.count(k)) throw json_error(ptr(at, k), "unknown field");
      const std::string action = j.contains("action") ? text(j, "action", at) : "auto_rerun";
      rule_action act = rule_action::auto_rerun;
      if (action == "hold") act = rule_action::hold;
      else if (action == "flag") act = rule_action::flag;
      else if (action == "reflex") act = rule_action::reflex;
      else if (action != "auto_rerun")
        throw json_error(ptr(at, "action"), "unknown action \"" + action + "\" (known: auto_rerun, reflex)");
      if (act != rule_action::auto_rerun && act != rule_action::reflex)
        throw json_error(ptr(at, "action"), "action \"" + action + "\" is reserved but not implemented yet");
      const int cap = integer(j, "max_per_sample", at, 1);
      if (cap < 0) throw json_error(ptr(at, "max_per_sample"), "must be 0 or more");
      const std::string cond = text(j, "condition", at);
      if (!j.contains("condition")) throw json_error(ptr(at, "condition"), "a rule needs a condition");
      auto compiled = condition::compile(cond);
      if (!compiled) {
        rule_load_error e;
        e.origin = origin;
        e.pointer = ptr(at, "condition");
        e.rule_id = id;
        e.source = cond;
        e.error = compiled.error;
        f.errors.push_back(std::move(e));
        continue;
      }
      rule r{id, strings(j, "parameters", at), std::move(*compiled.program), act, cap, origin + " " + at};
      r.add_tests = strings(j, "add_tests", at);
      if (act == rule_action::reflex && r.add_tests.empty())
        throw json_error(ptr(at, "add_tests"), "a reflex rule needs add_tests: the machine names to order");
      if (act != rule_action::reflex && !r.add_tests.empty())
        throw json_error(ptr(at, "add_tests"), "add_tests belongs to action \"reflex\"");
      if (const auto hs = j.find("handles_skip"); hs != j.end()) {
        if (!hs->is_boolean()) throw json_error(ptr(at, "handles_skip"), "expected true or false");
        r.handles_skip = hs->get<bool>();
      }
      std::vector<rule_test_case> tests;
      if (const auto t = j.find("tests"); t != j.end()) {
        require_array(*t, ptr(at, "tests"));
        for (std::size_t k = 0; k < t->size(); ++k) {
          const std::string tat = ptr(ptr(at, "tests"), k);
          const json& tj = (*t)[k];
          require_object(tj, tat);
          rule_test_case tc;
          tc.rule_id = id;
          tc.name = tj.contains("name") ? text(tj, "name", tat) : tat;
          tc.pointer = tat;
          if (!tj.contains("given")) throw json_error(ptr(tat, "given"), "a test needs \"given\"");
          tc.given = given_result(tj["given"], ptr(tat, "given"), tc.previous, tc.now, tc.auto_reruns_before,
                                  tc.qc_status);
          const auto ex = tj.find("expect");
          if (ex == tj.end() || !ex->is_object() || !ex->contains("fired") || !(*ex)["fired"].is_boolean())
            throw json_error(ptr(tat, "expect"), "expected {\"fired\": true|false}");
          tc.expect_fired = (*ex)["fired"].get<bool>();
          tests.push_back(std::move(tc));
        }
      }
      f.rules.add(std::move(r));
      for (auto& tc : tests) f.tests.push_back(std::move(tc));
    } catch (const json_error& e) {
      fail(e.pointer(), id, std::string(e.what()).substr(e.pointer().size() + 2));
    } catch (const json::exception& e) {
      fail(at, id, e.what());
    }
  }
  return f;
}

}  // namespace interfaced::rerun
