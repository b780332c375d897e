#pragma once
// The normalised domain objects every protocol path produces: a result, a host query, an order.
// Plain data, owning their strings (style.md: "copy once, at the edge, when a domain object is
// built"), UTF-8 text. ASTM and HL7 normalisers fill them; rerun/ tags them; daemon/ serialises them.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace interfaced {

enum class protocol { astm, hl7 };

// Where a domain object came from, for error messages and technicians' logs.
struct source_location {
  std::size_t message_index = 0;  // 0-based message (ASTM H..L, HL7 message) in the stream
  std::size_t record_index = 0;   // 1-based record / segment within the message
  std::size_t byte_offset = 0;    // offset of the message start in the input stream
};

// A value the analyser sends beside a result as another record of the same test: ASTM result types
// other than the final value (Abbott ARCHITECT / m2000 R.3 component 7: `I` interpretation, `P`
// the raw signal). Posted with the result it belongs to, never as a result of its own.
struct companion_value {
  std::string type;   // the result-type code as sent (`I`, `P`)
  std::string label;  // what the profile calls it (`interpretation`, `raw_signal`)
  std::string value;
  std::string unit;
  std::vector<std::string> flags;
};

// The result key -- what makes two results "the same result" for duplicate detection, seen(S,P),
// rerun tagging, fulfilment and the counts (rerun/result_key.hpp builds it):
//   sample_id + test identity (`code`) + `sub_id` + `result_type`.
// `code` is the whole test identity: ASTM every R.3 component from 4 on that the profile does not
// declare irrelevant (analyte, dilution, ...), HL7 OBX-3.1, else its text OBX-3.2, else the test
// named in OBX-4. `sub_id` is HL7 OBX-4; `result_type` the ASTM result-type component the profile
// names (`F`; an `I` or `P` with no final value to ride with keeps its own type, so it is a
// result of its own and not a rerun of the final value). A result without a sample
// id has no key: it is forwarded once, flagged, and is nobody's duplicate, rerun or `seen`.
struct result {
  // Every member has its initialiser below; this constructor only makes them the whole work of
  // making a result. Without it `result()` (what vector::emplace_back() does for each result a
  // normaliser builds in place) value-initialises: all ~650 bytes zeroed first (rep stos, ~80
  // instructions a result in callgrind), then the same initialisers run.
  result() noexcept {}  // NOLINT(modernize-use-equals-default): `= default` would zero again
  interfaced::protocol protocol = protocol::astm;
  std::string device;            // device id (config) or profile name (replay)
  std::string sample_id;         // specimen id per the profile's rule
  std::string code;              // the test identity (see above); what the code map reads
  std::string sub_id;            // HL7 OBX-4 when it is a sub-id (part of the key)
  std::string result_type;       // ASTM result type when the profile names its component (part of the key)
  std::vector<companion_value> companions;  // interpretation, raw signal ... of this test
  std::string name;              // test name when the analyser sends one
  std::string value;             // text as sent: escapes decoded, padding trimmed
  std::optional<double> numeric; // parsed number when value is plainly numeric ("7,41" -> 7.41)
  std::string unit;
  std::vector<std::string> flags;
  std::string status;            // ASTM R.9 / HL7 OBX-11: the first repetition
  std::vector<std::string> statuses;  // every repetition of R.9 when it repeats (`F\R`)
  std::string reference_range;
  std::string observed_at;       // as sent (YYYYMMDD[HHMMSS]); rerun/lab_time.hpp writes it as ISO-8601 with offset
  bool qc = false;
  // A control result's series where the message carries it (profile `qc_series`, Mindray OBR
  // control name / lot), and the analyser's own target mean / SD when it sends them (qc.md).
  std::string qc_material;
  std::string qc_lot;
  std::string qc_level;
  std::optional<double> qc_mean;
  std::optional<double> qc_sd;
  std::string instrument;        // instrument / module id when sent (ASTM R.14, HL7 OBX-18)
  bool rerun_indicator = false;  // the profile says the analyser marked this a repeat (seen(S,P))
  bool is_rerun = false;         // set by rerun/
  int rerun_number = 0;          // 0 first, N requested rerun, -1 instrument-triggered
  bool duplicate = false;        // the very same result delivered again (not forwarded twice)
  // No sample id: forwarded once, flagged, never matched or seen (derived, never stored apart).
  [[nodiscard]] bool sample_id_missing() const noexcept { return sample_id.empty(); }
  source_location where;
};

struct query {
  interfaced::protocol protocol = protocol::astm;
  std::string device;
  std::vector<std::string> sample_ids;  // empty with all_samples
  bool all_samples = false;
  std::vector<std::string> tests;       // empty or {"ALL"}: every test
  std::string status_code;              // ASTM Q.13: O, A (cancel), N, D ...
  bool cancel = false;
  std::string tag;                      // HL7 QPD-2 query tag
  source_location where;
};

struct order_test {
  std::string code;
  std::string name;
  // HL7 AWOS id (ORC-2 / OBR-2) of this test when the sender keeps its own, so a later cancel (ORC-1
  // CA) names the same work order step; empty: the builder numbers it `<sample>.<n>`.
  std::string awos_id{};
};

struct order {
  interfaced::protocol protocol = protocol::astm;
  std::string device;
  std::string sample_id;
  std::string patient_id;
  std::string patient_name;
  std::string patient_birth_date;  // ASTM P.8 (YYYYMMDD)
  std::string patient_sex;         // ASTM P.9
  std::vector<order_test> tests;
  std::string priority;     // ASTM O.6 / HL7 TQ1-9
  std::string action_code;  // ASTM O.12 / HL7 ORC-1
  source_location where;
};

}  // namespace interfaced
