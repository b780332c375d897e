#include "daemon/result_json.hpp"

namespace interfaced::daemon {

const char* to_string(protocol p) noexcept { return p == protocol::astm ? "astm" : "hl7"; }

nlohmann::json to_json(const result& r, const rerun::lab_zone& zone) {
  nlohmann::json j = {
      {"type", "result"},
      {"protocol", to_string(r.protocol)},
      {"sample_id", r.sample_id},
      {"code", r.code},
      {"name", r.name},
      {"value", r.value},
      {"unit", r.unit},
      {"flags", r.flags},
      {"status", r.status},
      {"reference_range", r.reference_range},
      {"observed_at", zone.normalise(r.observed_at)},
      {"qc", r.qc},
      {"is_rerun", r.is_rerun},
      {"rerun_number", r.rerun_number},
      {"device", r.device},
  };
  if (r.numeric) j["numeric"] = *r.numeric;
  if (!r.instrument.empty()) j["instrument"] = r.instrument;
  // Additions (issue #19), present only when they carry something.
  if (r.sample_id_missing()) j["sample_id_missing"] = true;
  if (!r.sub_id.empty()) j["sub_id"] = r.sub_id;
  if (!r.result_type.empty()) j["result_type"] = r.result_type;
  if (!r.statuses.empty()) j["statuses"] = r.statuses;
  for (const auto& c : r.companions) {
    nlohmann::json v = {{"type", c.type}, {"value", c.value}};
    if (!c.unit.empty()) v["unit"] = c.unit;
    if (!c.flags.empty()) v["flags"] = c.flags;
    j["companions"][c.label] = v;
  }
  return j;
}

nlohmann::json to_json(const query& q) {
  return {{"type", "query"},       {"protocol", to_string(q.protocol)}, {"sample_ids", q.sample_ids},
          {"all_samples", q.all_samples}, {"tests", q.tests},          {"status_code", q.status_code},
          {"cancel", q.cancel},     {"tag", q.tag},                      {"device", q.device}};
}

nlohmann::json to_json(const order& o) {
  nlohmann::json tests = nlohmann::json::array();
  for (const auto& t : o.tests) tests.push_back({{"code", t.code}, {"name", t.name}});
  return {{"type", "order"},         {"protocol", to_string(o.protocol)}, {"sample_id", o.sample_id},
          {"patient_id", o.patient_id}, {"patient_name", o.patient_name}, {"tests", tests},
          {"priority", o.priority},   {"action_code", o.action_code},     {"device", o.device}};
}

}  // namespace interfaced::daemon
