#pragma once
// E1394 message -> normalised results, host queries and orders (parsers/model.hpp).
//
// Pure. Where an analyser puts what differs between models; astm_options says where, and
// devices/ fills it from a profile. Without a profile the defaults follow LIS02-A2: sample id
// O.3 (else O.4), test code (the test identity) from every non-empty R.3 manufacturer component
// (4+, joined by '^': `^^^HPV^AnalyteSCO` -> `HPV^AnalyteSCO`; else component 1), value
// R.4, unit R.5, reference range R.6, flags R.7 (every repetition and component), status R.9
// (a repeat field: `F\R` -> status `F`, statuses [F, R]), completed time R.13, instrument R.14,
// QC when O.12 (action code) is `Q` or H.12 (processing id) is `Q`.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parsers/astm/records.hpp"
#include "parsers/model.hpp"
#include "parsers/text_codec.hpp"

namespace interfaced::astm {

// A place in a record: field number (standard counting, field 1 = record type) and component
// (1-based; 0 = the first non-empty component).
struct field_ref {
  char record = 'O';
  int field = 3;
  int component = 0;
};

// A condition on a field: the decoded value equals `equals` (when set) or starts with `prefix`.
struct field_match {
  field_ref where;
  std::string equals;
  std::string prefix;
};

// R record field positions (LIS02-A2 defaults); some analysers shift them.
struct result_fields {
  int test = 3, value = 4, unit = 5, range = 6, flags = 7, status = 9, started = 12,
      completed = 13, instrument = 14;
};

struct astm_options {
  text_encoding encoding = text_encoding::latin1;
  std::vector<field_ref> sample_id_from{{'O', 3, 0}, {'O', 4, 0}};
  // R.3 components that make the code, joined by '/'; empty = automatic (every non-empty
  // component from 4 on except the result-type component, joined by '^'; else component 1).
  // Listing components declares the others irrelevant to the test's identity.
  std::vector<int> code_components;
  // R.3 component holding the result type (Abbott ARCHITECT / m2000: 7, `F` final value, `I`
  // interpretation, `P` raw signal); 0: none. Results of one test whose type is in
  // companion_types are folded into the result of that test in the same O record as companion
  // values (model.hpp); without one they stay results of their own, keyed by their type.
  int result_type_component = 0;
  std::vector<std::pair<std::string, std::string>> companion_types;  // type -> label
  std::vector<std::string> code_strip_suffixes;  // e.g. Roche "/" ("^^^685/" -> "685")
  int name_component = 0;                        // R.3 component holding the test name (0: none)
  int value_flag_component = 0;  // R.4 component holding a flag (Beckman DxH "146!  H ")
  std::vector<int> range_components;  // R.6 components joined by '-'; empty = component 1
  result_fields r;
  std::vector<field_match> qc_when;              // besides O.12 == "Q" and H.12 == "Q"
  // Where a control result's material, lot and level are (profile `qc_series`); field 0: absent.
  field_ref qc_material{'O', 0, 0};
  field_ref qc_lot{'O', 0, 0};
  field_ref qc_level{'O', 0, 0};
  std::vector<std::string> rerun_statuses;       // R.9 codes that mark a repeat (profile's indicator)
  bool comma_decimal = true;                     // "7,41" parses as 7.41
};

struct astm_batch {
  std::vector<result> results;
  std::vector<query> queries;
  std::vector<order> orders;
  std::vector<record_diagnostic> diagnostics;
  std::string sender;  // H.5, decoded: how profiles recognise the analyser
};

[[nodiscard]] astm_batch normalise(const message& m, const astm_options& options,
                                   std::string_view device);
// The same with `sender` = header_sender(m) already read by the caller (devices/ reads it first,
// to pick the profile), so H.5 is not walked and decoded twice per message.
[[nodiscard]] astm_batch normalise(const message& m, const astm_options& options,
                                   std::string_view device, std::string sender);

// True when normalise(m, options', "") with options' = options but sample_id_from = {ref} gives a
// result with a sample id for one of the R records `records` (1-based record indices, as
// result::where.record_index). Reads only the fields `ref` names, not whole results (devices/
// asks this for each place other profiles read a sample id from, for every message that lacks
// one).
[[nodiscard]] bool finds_sample_id(const message& m, const astm_options& options, const field_ref& ref,
                                   const std::vector<std::size_t>& records);

// H.5 (sender name or id), decoded with the message's delimiters, components joined by '^'.
[[nodiscard]] std::string header_sender(const message& m);

}  // namespace interfaced::astm
