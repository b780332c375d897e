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

[[nodiscard]] inline std::string result_key(std::string_view parameter, const result& r) {
  std::string k(parameter);
  if (!r.sub_id.empty()) k.append("^sub=").append(r.sub_id);
  if (!r.result_type.empty()) k.append("^type=").append(r.result_type);
  return k;
}

}  // namespace interfaced::rerun
