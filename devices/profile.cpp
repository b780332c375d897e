#include "devices/profile.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <tuple>
#include <utility>
#include <nlohmann/json.hpp>

namespace interfaced::devices {
namespace {

using json = nlohmann::json;

// Reads a profile with precise errors: every problem names the JSON pointer and what is expected.
class reader {
 public:
  explicit reader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const std::string& ptr, const std::string& what) const {
    throw profile_error(file_, ptr, what);
  }

  const json& require(const json& obj, const std::string& ptr, const char* key,
                      json::value_t type, const char* expected) const {
    auto it = obj.find(key);
    if (it == obj.end()) fail(ptr + "/" + key, std::string("missing; expected ") + expected);
    check_type(*it, ptr + "/" + key, type, expected);
    return *it;
  }

  void check_type(const json& v, const std::string& ptr, json::value_t type, const char* expected) const {
    const bool ok = type == json::value_t::number_integer ? v.is_number_integer() : v.type() == type;
    if (!ok) fail(ptr, std::string("expected ") + expected + ", found " + v.type_name());
  }

  std::string string_at(const json& obj, const std::string& ptr, const char* key) const {
    return require(obj, ptr, key, json::value_t::string, "a string").get<std::string>();
  }

  std::vector<std::string> strings(const json& v, const std::string& ptr) const {
    check_type(v, ptr, json::value_t::array, "an array of strings");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < v.size(); ++i) {
      check_type(v[i], ptr + "/" + std::to_string(i), json::value_t::string, "a string");
      out.push_back(v[i].get<std::string>());
    }
    return out;
  }

  // An object of non-empty strings to non-empty strings ({machine name: test code}, ...), in order.
  // `value` and `both` name the entries in errors ("a test code (string)", "a non-empty machine
  // name and test code").
  std::vector<std::pair<std::string, std::string>> string_map(const json& v, const std::string& ptr,
                                                              const char* expected, const char* value,
                                                              const char* both) const {
    check_type(v, ptr, json::value_t::object, expected);
    std::vector<std::pair<std::string, std::string>> out;
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string kp = ptr + "/" + it.key();
      check_type(*it, kp, json::value_t::string, value);
      if (it.key().empty() || it->get<std::string>().empty()) fail(kp, std::string("expected ") + both);
      out.emplace_back(it.key(), it->get<std::string>());
    }
    return out;
  }

  // Every non-default setting says why it exists (style.md: leniencies name their source).
  void require_why(const json& obj, const std::string& ptr) const {
    auto it = obj.find("why");
    if (it == obj.end() || !it->is_string() || it->get<std::string>().size() < 8)
      fail(ptr + "/why", "missing; expected a sentence naming the capture or manual section");
  }

  astm::field_ref field_ref(const json& v, const std::string& ptr) const {
    check_type(v, ptr, json::value_t::object, "an object {record, field, component}");
    astm::field_ref r;
    const std::string rec = string_at(v, ptr, "record");
    if (rec.size() != 1 || std::string_view("HPOR").find(rec[0]) == std::string_view::npos)
      fail(ptr + "/record", "expected one of \"H\", \"P\", \"O\", \"R\"");
    r.record = rec[0];
    r.field = require(v, ptr, "field", json::value_t::number_integer, "a field number").get<int>();
    if (r.field < 1 || r.field > 64) fail(ptr + "/field", "expected a field number from 1 to 64");
    if (v.contains("component")) {
      check_type(v["component"], ptr + "/component", json::value_t::number_integer, "a component number");
      r.component = v["component"].get<int>();
      if (r.component < 0 || r.component > 64)
        fail(ptr + "/component", "expected 0 (first non-empty) to 64");
    }
    return r;
  }

 private:
  std::string file_;
};

hl7::field_ref hl7_ref(const reader& rd, const json& v, const std::string& ptr) {
  rd.check_type(v, ptr, json::value_t::object, "an object {segment, field, component, subcomponent}");
  hl7::field_ref r;
  r.segment = rd.string_at(v, ptr, "segment");
  if (r.segment.size() != 3) rd.fail(ptr + "/segment", "expected a three-letter segment name");
  r.field = rd.require(v, ptr, "field", json::value_t::number_integer, "a field number").get<int>();
  if (r.field < 1 || r.field > 99) rd.fail(ptr + "/field", "expected a field number from 1 to 99");
  // A component or subcomponent that is not a number was a nlohmann type_error naming neither the
  // file nor the place.
  for (auto [key, dst, first] : {std::tuple{"component", &r.component, 1}, std::tuple{"subcomponent", &r.subcomponent, 0}}) {
    if (!v.contains(key)) {
      *dst = first;
      continue;
    }
    rd.check_type(v[key], ptr + "/" + key, json::value_t::number_integer, "a number");
    *dst = v[key].get<int>();
    if (*dst < 0 || *dst > 99) rd.fail(ptr + "/" + key, "expected 0 (the whole field) to 99");
  }
  return r;
}

// One place of hl7/qc_series: a field reference, or {"position_of": "OBR"} (the segment in scope's
// 1-based position among the message's segments of that name).
hl7::qc_place hl7_qc_place(const reader& rd, const json& v, const std::string& ptr) {
  const char* shape = "a field reference {segment, field, component, subcomponent} or {\"position_of\": segment}";
  rd.check_type(v, ptr, json::value_t::object, shape);
  hl7::qc_place q;
  if (!v.contains("position_of")) {
    for (auto it = v.begin(); it != v.end(); ++it)
      if (it.key() != "segment" && it.key() != "field" && it.key() != "component" && it.key() != "subcomponent")
        rd.fail(ptr + "/" + it.key(), std::string("unknown key; expected ") + shape);
    q.where = hl7_ref(rd, v, ptr);
    return q;
  }
  if (v.size() != 1) rd.fail(ptr, std::string("expected ") + shape + ", not both");
  q.where.segment = rd.string_at(v, ptr, "position_of");
  if (q.where.segment.size() != 3) rd.fail(ptr + "/position_of", "expected a three-letter segment name");
  q.where.field = 0;
  q.ordinal = true;
  return q;
}

// hl7/qc_series: where a control result's material, lot and level are (qc.md "series"); each a
// place or an array of places whose values are joined by a space.
void read_hl7_qc_series(const reader& rd, const json& q, hl7::qc_series_fields& out) {
  const std::string ptr = "/hl7/qc_series";
  rd.check_type(q, ptr, json::value_t::object, "an object {material, lot, level, why}");
  for (auto it = q.begin(); it != q.end(); ++it) {
    const std::string kp = ptr + "/" + it.key();
    std::vector<hl7::qc_place>* dst = it.key() == "material" ? &out.material
                                      : it.key() == "lot"    ? &out.lot
                                      : it.key() == "level"  ? &out.level
                                                             : nullptr;
    if (dst == nullptr) {
      if (it.key() == "why") continue;
      rd.fail(kp, "unknown key; expected material, lot, level or why");
    }
    if (it->is_array()) {
      if (it->empty()) rd.fail(kp, "expected at least one place");
      for (std::size_t i = 0; i < it->size(); ++i) dst->push_back(hl7_qc_place(rd, (*it)[i], kp + "/" + std::to_string(i)));
    } else {
      dst->push_back(hl7_qc_place(rd, *it, kp));
    }
  }
  rd.require_why(q, ptr);
}

void read_hl7(const reader& rd, const json& h, device_profile& p) {
  const std::string ptr = "/hl7";
  rd.check_type(h, ptr, json::value_t::object, "an object of HL7 settings with a why");
  static const std::vector<std::string> keys = {"sample_id_from", "code", "name", "qc_when", "all_qc",
                                                "drop_flags", "honour_msh_18", "obr_results", "ack", "qc_series",
                                                "why"};
  for (auto it = h.begin(); it != h.end(); ++it)
    if (std::find(keys.begin(), keys.end(), it.key()) == keys.end()) rd.fail(ptr + "/" + it.key(), "unknown key");
  rd.require_why(h, ptr);
  hl7::hl7_options& o = p.hl7;
  if (h.contains("sample_id_from")) {
    rd.check_type(h["sample_id_from"], ptr + "/sample_id_from", json::value_t::array, "an array of field references");
    o.sample_id_from.clear();
    for (std::size_t i = 0; i < h["sample_id_from"].size(); ++i)
      o.sample_id_from.push_back(hl7_ref(rd, h["sample_id_from"][i], ptr + "/sample_id_from/" + std::to_string(i)));
  }
  if (h.contains("code")) o.code = hl7_ref(rd, h["code"], ptr + "/code");
  if (h.contains("name")) o.name = hl7_ref(rd, h["name"], ptr + "/name");
  if (h.contains("qc_when")) {
    rd.check_type(h["qc_when"], ptr + "/qc_when", json::value_t::array, "an array of conditions");
    for (std::size_t i = 0; i < h["qc_when"].size(); ++i) {
      const std::string q = ptr + "/qc_when/" + std::to_string(i);
      o.qc_when.push_back({hl7_ref(rd, h["qc_when"][i], q), rd.string_at(h["qc_when"][i], q, "equals")});
    }
  }
  if (h.contains("all_qc")) {
    rd.check_type(h["all_qc"], ptr + "/all_qc", json::value_t::boolean, "true or false");
    o.all_qc = h["all_qc"].get<bool>();
  }
  if (h.contains("drop_flags")) o.drop_flags = rd.strings(h["drop_flags"], ptr + "/drop_flags");
  if (h.contains("honour_msh_18")) {
    rd.check_type(h["honour_msh_18"], ptr + "/honour_msh_18", json::value_t::boolean, "true or false");
    o.honour_msh_18 = h["honour_msh_18"].get<bool>();
  }
  if (h.contains("ack")) {
    // The ACK variations as data (hl7-facts.md §9: Mindray wants MSA|AA|<id>|Message accepted|||0|).
    const json& a = h["ack"];
    const std::string q = ptr + "/ack";
    rd.check_type(a, q, json::value_t::object, "an object of ACK settings");
    hl7::ack_options& k = p.ack;
    const std::pair<const char*, std::string*> strings_[] = {
        {"accept_text", &k.accept_text}, {"accept_code", &k.accept_code}, {"trigger", &k.trigger},
        {"accept_ack_type", &k.accept_ack_type}, {"application_ack_type", &k.application_ack_type},
        {"sending_application", &k.sending_application}, {"sending_facility", &k.sending_facility}};
    const std::pair<const char*, bool*> bools[] = {
        {"code_in_msa_6", &k.code_in_msa_6}, {"err_segment", &k.err_segment}, {"text_in_msa_3", &k.text_in_msa_3},
        {"echo_charset", &k.echo_charset}, {"echo_profile", &k.echo_profile}, {"echo_msh_16", &k.echo_msh_16}};
    const std::pair<const char*, std::size_t*> sizes[] = {{"msh_min_fields", &k.msh_min_fields},
                                                          {"msa_min_fields", &k.msa_min_fields}};
    for (auto it = a.begin(); it != a.end(); ++it) {
      const std::string kp = q + "/" + it.key();
      bool known = false;
      for (const auto& [name, dst] : strings_)
        if (it.key() == name) {
          rd.check_type(*it, kp, json::value_t::string, "a string");
          *dst = it->get<std::string>();
          known = true;
        }
      for (const auto& [name, dst] : bools)
        if (it.key() == name) {
          rd.check_type(*it, kp, json::value_t::boolean, "true or false");
          *dst = it->get<bool>();
          known = true;
        }
      for (const auto& [name, dst] : sizes)
        if (it.key() == name) {
          rd.check_type(*it, kp, json::value_t::number_integer, "a number of fields");
          *dst = it->get<std::size_t>();
          known = true;
        }
      if (!known) rd.fail(kp, "unknown ACK setting");
    }
  }
  if (h.contains("qc_series")) read_hl7_qc_series(rd, h["qc_series"], o.qc_series);
  if (h.contains("obr_results")) {
    const json& r = h["obr_results"];
    const std::string q = ptr + "/obr_results";
    rd.check_type(r, q, json::value_t::object, "an object {code, value, unit, sample_id, observed_at}");
    o.obr_results.enabled = true;
    if (r.contains("code")) o.obr_results.code = hl7_ref(rd, r["code"], q + "/code");
    if (r.contains("value")) o.obr_results.value = hl7_ref(rd, r["value"], q + "/value");
    if (r.contains("unit")) o.obr_results.unit = hl7_ref(rd, r["unit"], q + "/unit");
    if (r.contains("sample_id")) o.obr_results.sample_id = hl7_ref(rd, r["sample_id"], q + "/sample_id");
    if (r.contains("observed_at")) o.obr_results.observed_at = hl7_ref(rd, r["observed_at"], q + "/observed_at");
  }
}

const std::vector<std::string> known_keys = {
    "id", "vendor", "models", "protocol", "detect", "encoding", "sample_id", "code",
    "value_flag_component", "range", "result_fields", "qc_when", "qc_series", "rerun_statuses", "frame_text_size", "leniencies",
    "comma_decimal", "why", "notes", "hl7", "orders", "result_types", "result_codes", "file_references", "folder"};

void read_folder(const reader& rd, const json& f, device_profile& p) {
  const std::string ptr = "/folder";
  rd.check_type(f, ptr, json::value_t::object, "an object {filename_pattern, report_parameter, csv, why}");
  for (auto it = f.begin(); it != f.end(); ++it)
    if (it.key() != "filename_pattern" && it.key() != "report_parameter" && it.key() != "csv" && it.key() != "why")
      rd.fail(ptr + "/" + it.key(), "unknown key; expected \"filename_pattern\", \"report_parameter\", \"csv\" or \"why\"");
  if (f.contains("filename_pattern")) {
    p.folder.filename_pattern = rd.string_at(f, ptr, "filename_pattern");
    if (p.folder.filename_pattern.find("{sample_id}") == std::string::npos)
      rd.fail(ptr + "/filename_pattern", "expected a pattern with {sample_id}, e.g. \"{sample_id}_{date}.pdf\"");
  }
  if (f.contains("report_parameter")) p.folder.report_parameter = rd.string_at(f, ptr, "report_parameter");
  if (f.contains("csv")) {
    const json& c = f["csv"];
    const std::string cp = ptr + "/csv";
    rd.check_type(c, cp, json::value_t::object, "an object {sample_id, parameter, value | columns, delimiter}");
    auto& m = p.folder.csv;
    for (auto it = c.begin(); it != c.end(); ++it) {
      const std::string& k = it.key();
      if (k == "sample_id") m.sample_id = rd.string_at(c, cp, "sample_id");
      else if (k == "observed_at") m.observed_at = rd.string_at(c, cp, "observed_at");
      else if (k == "parameter") m.parameter = rd.string_at(c, cp, "parameter");
      else if (k == "value") m.value = rd.string_at(c, cp, "value");
      else if (k == "unit") m.unit = rd.string_at(c, cp, "unit");
      else if (k == "delimiter") {
        const std::string d = rd.string_at(c, cp, "delimiter");
        if (d.size() != 1) rd.fail(cp + "/delimiter", "expected one character");
        else m.delimiter = d[0];
      } else if (k == "columns") {
        rd.check_type(it.value(), cp + "/columns", json::value_t::object, "an object {header: test code}");
        for (auto ci = it.value().begin(); ci != it.value().end(); ++ci) {
          if (!ci.value().is_string()) rd.fail(cp + "/columns/" + ci.key(), "expected a test code (a string)");
          m.columns[ci.key()] = ci.value().get<std::string>();
        }
      } else {
        rd.fail(cp + "/" + k, "unknown key; expected sample_id, observed_at, parameter, value, unit, columns or delimiter");
      }
    }
    if (m.sample_id.empty()) rd.fail(cp + "/sample_id", "expected the header of the sample id column");
    if (m.parameter.empty() == m.columns.empty())
      rd.fail(cp, "expected either \"parameter\" and \"value\" (one row per result) or \"columns\" (one column per parameter)");
    if (!m.parameter.empty() && m.value.empty()) rd.fail(cp + "/value", "expected the header of the value column");
  }
  rd.require_why(f, ptr);
}

void read_orders(const reader& rd, const json& o, device_profile& p) {
  const std::string ptr = "/orders";
  rd.check_type(o, ptr, json::value_t::object, "an object {download, codes, why}");
  for (auto it = o.begin(); it != o.end(); ++it)
    if (it.key() != "download" && it.key() != "codes" && it.key() != "why")
      rd.fail(ptr + "/" + it.key(), "unknown key; expected \"download\", \"codes\" or \"why\"");
  if (o.contains("download")) {
    rd.check_type(o["download"], ptr + "/download", json::value_t::boolean, "true or false");
    p.order_download = o["download"].get<bool>();
  }
  if (o.contains("codes"))
    for (auto& [name, code] : rd.string_map(o["codes"], ptr + "/codes", "an object {machine name: the analyser's test code}",
                                                  "a test code (string)", "a non-empty machine name and test code"))
      p.order_codes.insert_or_assign(std::move(name), std::move(code));
  rd.require_why(o, ptr);
}

}  // namespace

bool device_profile::has_leniency(std::string_view name) const noexcept {
  return std::any_of(leniencies.begin(), leniencies.end(),
                     [&](const leniency& l) { return l.name == name; });
}

device_profile parse_profile(std::string_view json_text, const std::string& file_name) {
  reader rd(file_name);
  json doc = json::parse(json_text, nullptr, false, /*ignore_comments=*/true);
  if (doc.is_discarded()) rd.fail("", "not valid JSON");
  rd.check_type(doc, "", json::value_t::object, "an object");
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (std::find(known_keys.begin(), known_keys.end(), it.key()) == known_keys.end())
      rd.fail("/" + it.key(), "unknown key");
  }
  device_profile p;
  p.file = file_name;
  p.id = rd.string_at(doc, "", "id");
  p.vendor = rd.string_at(doc, "", "vendor");
  p.models = rd.strings(rd.require(doc, "", "models", json::value_t::array, "an array of model names"), "/models");
  if (doc.contains("protocol")) {
    p.protocol = rd.string_at(doc, "", "protocol");
    if (p.protocol != "astm" && p.protocol != "hl7") rd.fail("/protocol", "expected \"astm\" or \"hl7\"");
  }
  if (doc.contains("detect")) {
    const json& d = doc["detect"];
    rd.check_type(d, "/detect", json::value_t::object, "an object {sender_prefixes, why}");
    if (d.contains("sender_prefixes")) p.sender_prefixes = rd.strings(d["sender_prefixes"], "/detect/sender_prefixes");
    if (d.contains("sender_contains")) p.sender_contains = rd.strings(d["sender_contains"], "/detect/sender_contains");
    if (p.sender_prefixes.empty() && p.sender_contains.empty())
      rd.fail("/detect", "expected \"sender_prefixes\" or \"sender_contains\" (non-empty arrays of strings)");
    rd.require_why(d, "/detect");
  }
  if (doc.contains("hl7")) read_hl7(rd, doc["hl7"], p);
  if (doc.contains("orders")) read_orders(rd, doc["orders"], p);
  if (doc.contains("file_references")) {
    const json& f = doc["file_references"];
    const std::string ptr = "/file_references";
    rd.check_type(f, ptr, json::value_t::object, "an object {prefixes, separator, why}");
    for (auto it = f.begin(); it != f.end(); ++it)
      if (it.key() != "prefixes" && it.key() != "separator" && it.key() != "why")
        rd.fail(ptr + "/" + it.key(), "unknown key; expected \"prefixes\", \"separator\" or \"why\"");
    p.file_references.prefixes =
        rd.strings(rd.require(f, ptr, "prefixes", json::value_t::array, "an array of value prefixes"), ptr + "/prefixes");
    if (p.file_references.prefixes.empty()) rd.fail(ptr + "/prefixes", "expected at least one prefix");
    if (f.contains("separator")) {
      const std::string sep = rd.string_at(f, ptr, "separator");
      if (sep.size() != 1) rd.fail(ptr + "/separator", "expected one character");
      p.file_references.separator = sep[0];
    }
    rd.require_why(f, ptr);
  }
  if (doc.contains("folder")) read_folder(rd, doc["folder"], p);
  if (doc.contains("encoding")) {
    const json& e = doc["encoding"];
    rd.check_type(e, "/encoding", json::value_t::object, "an object {name, why}");
    auto enc = parse_encoding(rd.string_at(e, "/encoding", "name"));
    if (!enc) rd.fail("/encoding/name", "expected \"latin1\", \"utf-8\" or \"windows-1252\"");
    p.astm.encoding = *enc;
    p.hl7.encoding = *enc;
    rd.require_why(e, "/encoding");
  }
  if (doc.contains("sample_id")) {
    const json& s = doc["sample_id"];
    rd.check_type(s, "/sample_id", json::value_t::object, "an object {from, why}");
    const json& from = rd.require(s, "/sample_id", "from", json::value_t::array, "an array of field references");
    p.astm.sample_id_from.clear();
    for (std::size_t i = 0; i < from.size(); ++i)
      p.astm.sample_id_from.push_back(rd.field_ref(from[i], "/sample_id/from/" + std::to_string(i)));
    rd.require_why(s, "/sample_id");
  }
  if (doc.contains("code")) {
    const json& c = doc["code"];
    rd.check_type(c, "/code", json::value_t::object, "an object {components, strip_suffixes, name_component, why}");
    if (c.contains("components")) {
      rd.check_type(c["components"], "/code/components", json::value_t::array, "an array of component numbers");
      for (std::size_t i = 0; i < c["components"].size(); ++i) {
        rd.check_type(c["components"][i], "/code/components/" + std::to_string(i), json::value_t::number_integer, "a component number");
        p.astm.code_components.push_back(c["components"][i].get<int>());
      }
    }
    if (c.contains("strip_suffixes")) p.astm.code_strip_suffixes = rd.strings(c["strip_suffixes"], "/code/strip_suffixes");
    if (c.contains("name_component")) {
      rd.check_type(c["name_component"], "/code/name_component", json::value_t::number_integer, "a component number");
      p.astm.name_component = c["name_component"].get<int>();
    }
    rd.require_why(c, "/code");
  }
  if (doc.contains("result_types")) {
    // R.3's result-type component and which types are companions of the final value (model.hpp).
    const json& r = doc["result_types"];
    const std::string ptr = "/result_types";
    rd.check_type(r, ptr, json::value_t::object, "an object {component, companions, why}");
    p.astm.result_type_component =
        rd.require(r, ptr, "component", json::value_t::number_integer, "a component number").get<int>();
    if (p.astm.result_type_component < 1 || p.astm.result_type_component > 64)
      rd.fail(ptr + "/component", "expected a component number from 1 to 64");
    const char* what = "an object {result type: label}, e.g. {\"I\": \"interpretation\"}";
    p.astm.companion_types = rd.string_map(rd.require(r, ptr, "companions", json::value_t::object, what),
                                           ptr + "/companions", what, "a label (string)",
                                           "a non-empty result type and label");
    rd.require_why(r, ptr);
  }
  if (doc.contains("result_codes")) {
    // Test identity (result::code) -> machine name, for analysers whose identities are not the
    // backend's names (Panther `HPV^AnalyteSCO`).
    const json& r = doc["result_codes"];
    const std::string ptr = "/result_codes";
    rd.check_type(r, ptr, json::value_t::object, "an object {codes, why}");
    const json& c = rd.require(r, ptr, "codes", json::value_t::object, "an object {test identity: machine name}");
    for (auto& [identity, name] : rd.string_map(c, ptr + "/codes", "an object {test identity: machine name}",
                                                        "a machine name (string)", "a non-empty identity and machine name"))
      p.result_codes.insert_or_assign(std::move(identity), std::move(name));
    rd.require_why(r, ptr);
  }
  if (doc.contains("value_flag_component")) {
    const json& v = doc["value_flag_component"];
    rd.check_type(v, "/value_flag_component", json::value_t::object, "an object {component, why}");
    p.astm.value_flag_component = rd.require(v, "/value_flag_component", "component", json::value_t::number_integer, "a component number").get<int>();
    rd.require_why(v, "/value_flag_component");
  }
  if (doc.contains("range")) {
    const json& r = doc["range"];
    rd.check_type(r, "/range", json::value_t::object, "an object {components, why}");
    const json& comps = rd.require(r, "/range", "components", json::value_t::array, "an array of component numbers");
    for (std::size_t i = 0; i < comps.size(); ++i) {
      rd.check_type(comps[i], "/range/components/" + std::to_string(i), json::value_t::number_integer, "a component number");
      p.astm.range_components.push_back(comps[i].get<int>());
    }
    rd.require_why(r, "/range");
  }
  if (doc.contains("result_fields")) {
    const json& r = doc["result_fields"];
    const std::string ptr = "/result_fields";
    rd.check_type(r, ptr, json::value_t::object, "an object {test, value, unit, range, flags, status, started, completed, instrument, why}");
    const std::pair<const char*, int*> names[] = {
        {"test", &p.astm.r.test},       {"value", &p.astm.r.value},     {"unit", &p.astm.r.unit},
        {"range", &p.astm.r.range},     {"flags", &p.astm.r.flags},     {"status", &p.astm.r.status},
        {"started", &p.astm.r.started}, {"completed", &p.astm.r.completed}, {"instrument", &p.astm.r.instrument}};
    for (auto it = r.begin(); it != r.end(); ++it) {
      if (it.key() == "why") continue;
      auto n = std::find_if(std::begin(names), std::end(names), [&](const auto& e) { return it.key() == e.first; });
      if (n == std::end(names)) rd.fail(ptr + "/" + it.key(), "unknown R field name");
      rd.check_type(*it, ptr + "/" + it.key(), json::value_t::number_integer, "a field number");
      const int v = it->get<int>();
      if (v < 2 || v > 64) rd.fail(ptr + "/" + it.key(), "expected a field number from 2 to 64");
      *n->second = v;
    }
    rd.require_why(r, ptr);
  }
  if (doc.contains("qc_when")) {
    const json& q = doc["qc_when"];
    rd.check_type(q, "/qc_when", json::value_t::array, "an array of conditions");
    for (std::size_t i = 0; i < q.size(); ++i) {
      const std::string ptr = "/qc_when/" + std::to_string(i);
      astm::field_match m;
      m.where = rd.field_ref(q[i], ptr);
      if (q[i].contains("equals")) m.equals = rd.string_at(q[i], ptr, "equals");
      if (q[i].contains("prefix")) m.prefix = rd.string_at(q[i], ptr, "prefix");
      if (m.equals.empty() && m.prefix.empty()) rd.fail(ptr, "expected \"equals\" or \"prefix\"");
      rd.require_why(q[i], ptr);
      p.astm.qc_when.push_back(std::move(m));
    }
  }
  if (doc.contains("qc_series")) {
    // Where a control result's series is in the message (qc.md "series"): material, lot, level.
    const json& q = doc["qc_series"];
    rd.check_type(q, "/qc_series", json::value_t::object, "an object {material, lot, level, why}");
    for (auto it = q.begin(); it != q.end(); ++it) {
      const std::string ptr = "/qc_series/" + it.key();
      if (it.key() == "material") p.astm.qc_material = rd.field_ref(*it, ptr);
      else if (it.key() == "lot") p.astm.qc_lot = rd.field_ref(*it, ptr);
      else if (it.key() == "level") p.astm.qc_level = rd.field_ref(*it, ptr);
      else if (it.key() != "why") rd.fail(ptr, "unknown key; expected material, lot, level or why");
    }
    rd.require_why(q, "/qc_series");
  }
  if (doc.contains("rerun_statuses")) {
    const json& r = doc["rerun_statuses"];
    rd.check_type(r, "/rerun_statuses", json::value_t::object, "an object {codes, why}");
    p.astm.rerun_statuses = rd.strings(rd.require(r, "/rerun_statuses", "codes", json::value_t::array, "an array of R.9 codes"), "/rerun_statuses/codes");
    rd.require_why(r, "/rerun_statuses");
  }
  if (doc.contains("comma_decimal")) {
    rd.check_type(doc["comma_decimal"], "/comma_decimal", json::value_t::boolean, "true or false");
    p.astm.comma_decimal = doc["comma_decimal"].get<bool>();
  }
  if (doc.contains("frame_text_size")) {
    const json& f = doc["frame_text_size"];
    rd.check_type(f, "/frame_text_size", json::value_t::object, "an object {size, why}");
    const auto n = rd.require(f, "/frame_text_size", "size", json::value_t::number_integer, "240 or 63993").get<long>();
    if (n < 16 || n > 63993) rd.fail("/frame_text_size/size", "expected a text size from 16 to 63993");
    p.frame_text_size = static_cast<std::size_t>(n);
    rd.require_why(f, "/frame_text_size");
  }
  if (doc.contains("leniencies")) {
    const json& l = doc["leniencies"];
    rd.check_type(l, "/leniencies", json::value_t::array, "an array of {name, why}");
    for (std::size_t i = 0; i < l.size(); ++i) {
      const std::string ptr = "/leniencies/" + std::to_string(i);
      rd.check_type(l[i], ptr, json::value_t::object, "an object {name, why}");
      leniency len{rd.string_at(l[i], ptr, "name"), {}};
      rd.require_why(l[i], ptr);
      len.why = l[i]["why"].get<std::string>();
      p.leniencies.push_back(std::move(len));
    }
  }
  return p;
}

void profile_catalog::add(device_profile p) { profiles_.push_back(std::move(p)); }

profile_catalog profile_catalog::load_dir(const std::filesystem::path& dir) {
  profile_catalog cat;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw profile_error(dir.string(), "", "profile folder not found");
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) throw profile_error(f.string(), "", "cannot read the file");
    std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    device_profile p = parse_profile(text, f.string());
    if (cat.find(p.id) != nullptr) throw profile_error(f.string(), "/id", "duplicate profile id \"" + p.id + "\"");
    cat.add(std::move(p));
  }
  return cat;
}

std::filesystem::path profile_catalog::default_dir() {
  if (const char* env = std::getenv("INTERFACED_PROFILE_DIR"); env && *env) return env;
  // Installed layout, relative to the executable (<prefix>/bin/interfaced ->
  // <prefix>/share/interfaced/profiles), so a package or a scratch-root install finds its own
  // profiles whatever the prefix; a build tree falls back to the sources.
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto installed = exe.parent_path().parent_path() / "share" / "interfaced" / "profiles";
    if (std::filesystem::is_directory(installed, ec)) return installed;
  }
  return INTERFACED_PROFILE_DIR;
}

const device_profile* profile_catalog::find(std::string_view id) const noexcept {
  for (const auto& p : profiles_)
    if (p.id == id) return &p;
  return nullptr;
}

const device_profile* profile_catalog::detect(std::string_view sender, std::string_view protocol) const noexcept {
  const auto b = sender.find_first_not_of(" \t");
  const std::string_view s = b == std::string_view::npos ? std::string_view{} : sender.substr(b);
  const device_profile* best = nullptr;
  std::size_t best_len = 0;
  // Compared byte by byte, ASCII case folded (what std::tolower does in the "C" locale, and the
  // daemon never sets another): a lowered copy of the sender and of every pattern, for every
  // message, was ~5 % of bench_astm.
  const auto fold = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  const auto same_at = [&](std::size_t at, const std::string& pattern) {
    for (std::size_t i = 0; i < pattern.size(); ++i)
      if (fold(s[at + i]) != fold(pattern[i])) return false;
    return true;
  };
  auto consider = [&](const device_profile& p, const std::string& pattern, bool prefix) {
    if (pattern.empty() || pattern.size() <= best_len || pattern.size() > s.size()) return;
    bool found = false;
    if (prefix) found = same_at(0, pattern);
    else
      for (std::size_t at = 0; !found && at + pattern.size() <= s.size(); ++at) found = same_at(at, pattern);
    if (found) {
      best = &p;
      best_len = pattern.size();
    }
  };
  for (const auto& p : profiles_) {
    if (p.protocol != protocol) continue;
    for (const auto& prefix : p.sender_prefixes) consider(p, prefix, true);
    for (const auto& part : p.sender_contains) consider(p, part, false);
  }
  return best;
}

}  // namespace interfaced::devices
