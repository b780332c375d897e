#pragma once
// The result key (parsers/model.hpp, "The result key") as the result history stores it: every
// place that asks "the same result?" -- duplicate delivery, seen(S,P), previous.value for rules --
// asks it with this key. `parameter` is the machine name the device's code map gives the test
// identity (result::code); the HL7 sub-id and the ASTM result type follow when sent, so the
// interpretation of a test is never the seen of its value, nor OBX-4 `2` the seen of OBX-4 `1`.
// Waiting lists and rerun fulfilment speak the backend's language, the machine name alone.
// A result with no sample id has no key (process_reports_for_rerun never looks it up).

#include <string>
#include <string_view>

#include "parsers/model.hpp"

namespace interfaced::rerun {

// What follows the machine name in a key, when sent.
inline constexpr std::string_view key_sub_id = "^sub=";
inline constexpr std::string_view key_result_type = "^type=";

[[nodiscard]] inline std::string result_key(std::string_view parameter, const result& r) {
  std::string k(parameter);
  if (!r.sub_id.empty()) k.append(key_sub_id).append(r.sub_id);
  if (!r.result_type.empty()) k.append(key_result_type).append(r.result_type);
  return k;
}

// Whether `key` is a key of machine name `parameter` (the name alone, or with a sub-id or result
// type): what waiting lists and order download ask -- "does P have a result?" -- in the
// backend's terms.
[[nodiscard]] inline bool is_key_of(std::string_view key, std::string_view parameter) noexcept {
  if (!key.starts_with(parameter)) return false;
  const std::string_view rest = key.substr(parameter.size());
  return rest.empty() || rest.starts_with(key_sub_id) || rest.starts_with(key_result_type);
}

}  // namespace interfaced::rerun
