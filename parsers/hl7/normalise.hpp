#pragma once
// One HL7 v2 message -> normalised results, host queries and orders (parsers/model.hpp).
//
// Pure; owns its output (strings are copied once, here, and converted to UTF-8). Where things are
// differs between analysers; hl7_options says where and devices/ fills it from a profile. The
// defaults follow IHE LAW (LAB-29 OUL^R22, hl7-facts.md §8) and also read 2.3.1 ORU^R01:
//  - sample id: SPM-2 (first non-empty of EIP components 1/2, first subcomponent), else OBR-3,
//    else OBR-2 (`""` counts as absent);
//  - code / name: OBX-3 components 1 / 2; a test sent by its text only (`^pH^M`, Radiometer ABL)
//    has that text as its code, and one sent with OBX-3 empty and its name in OBX-4 (Mindray
//    2.3.1) has that name; otherwise OBX-4 is the sub-id (part of the result key, model.hpp);
//    value OBX-5 as sent (escapes decoded, spaces trimmed;
//    coded types CE/CWE/CNE: component 1); numeric only when plainly a number;
//  - unit OBX-6.1, reference range OBX-7, flags OBX-8 (repetitions, component 1, empty and `""`
//    dropped), status OBX-11, instrument OBX-18 (first repetition, component 1),
//    observed_at OBX-19, else OBX-14, else OBR-7;
//  - QC when MSH-11 or SPM-11 is `Q`; a control's material / lot / level where options.qc_series
//    says (none by default); rerun_indicator on OBX-11 `C` (Roche) or TCD-8 `R`/`D`.
// Supported: ORU^R01, OUL^R22 (results), QBP^Q11, QRY^Q02 (queries), OML^O33, ORM^O01 (orders);
// types in options.ignored_types (status, inventory, acks) give an empty batch without error.
// Character set: options.encoding, overridden by MSH-18 when honour_msh_18 (`ASCII`, `8859/1`,
// `UNICODE`, `UNICODE UTF-8`); bytes are split first, each value is decoded after.

#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "parsers/hl7/message.hpp"
#include "parsers/model.hpp"
#include "parsers/text_codec.hpp"

namespace interfaced::hl7 {

enum class normalise_error {
  ok = 0,
  missing_control_id = 1,  // MSH-10 empty (fatal: the ACK could not name the message)
  missing_message_type,    // MSH-9 empty (fatal)
  unknown_message_type,    // MSH-9 not supported and not ignored (fatal)
  unknown_charset,         // MSH-18 not understood: options.encoding used (warning)
  lossy_text,              // bytes invalid in the character set were replaced (warning)
  missing_sample_id,       // a result / query / order without a sample id (warning)
  missing_code,            // OBX-3 and OBX-4 name no test: OBX skipped (warning)
  obx_outside_order,       // OBX before any OBR / SPM (kept; warning)
  no_results,              // a result message whose OBX segments gave no result (warning, with why)
};
const std::error_category& normalise_category() noexcept;
std::error_code make_error_code(normalise_error e) noexcept;

// A place in a message: segment name, field (standard numbering, MSH-1 = field separator),
// component (1-based; 0 = the whole field as sent), subcomponent (0 = the whole component).
struct field_ref {
  std::string segment = "OBR";
  int field = 3;
  int component = 1;
  int subcomponent = 0;
};

// A condition: the decoded, trimmed value at `where` equals `equals` (ASCII case-insensitive).
struct field_match {
  field_ref where;
  std::string equals;
};

// Results carried in OBR fields instead of OBX (Mindray CL-series QC, manual p.39: control name,
// lot, expiry, mean, SD, value, unit in OBR-13..21). Used for an OBR with no OBX under it.
struct obr_result_fields {
  bool enabled = false;
  field_ref code{"OBR", 3, 1, 0};
  field_ref value{"OBR", 20, 1, 0};
  field_ref unit{"OBR", 21, 1, 0};
  field_ref sample_id{"OBR", 13, 1, 0};  // for QC: the control material's name
  field_ref observed_at{"OBR", 8, 1, 0};
  // Control results: material (the control's name), lot, the analyser's target mean and SD.
  field_ref qc_material{"OBR", 13, 1, 0};
  field_ref qc_lot{"OBR", 14, 1, 0};
  field_ref qc_mean{"OBR", 18, 1, 0};
  field_ref qc_sd{"OBR", 19, 1, 0};
};

// One place a control result's series is read from (profile "hl7"/"qc_series"): a field of the
// segment in scope, or, with `ordinal`, the 1-based position of the segment in scope among the
// message's segments of that name (Mindray BC X-R QC: the levels are the OBR groups' order).
struct qc_place {
  field_ref where;
  bool ordinal = false;
};

// Where a control result's material, lot and level are in the message. Each is a list of places
// whose values are joined by a space; when one of them is empty the key is left empty, so
// `qc.controls` completes it instead of a partial name making a series of its own. Empty lists:
// not in the message.
struct qc_series_fields {
  std::vector<qc_place> material;
  std::vector<qc_place> lot;
  std::vector<qc_place> level;
};

struct hl7_options {
  text_encoding encoding = text_encoding::latin1;  // when MSH-18 is empty or not honoured
  bool honour_msh_18 = true;
  // Tried in order; the first non-empty, non-null value wins. SPM-2 is handled as EIP (component
  // 1, else 2; first subcomponent) whatever component is given.
  std::vector<field_ref> sample_id_from{{"SPM", 2, 1, 1}, {"OBR", 3, 1, 0}, {"OBR", 2, 1, 0}};
  field_ref code{"OBX", 3, 1, 0};
  field_ref name{"OBX", 3, 2, 0};  // Mindray 2.3.1: {"OBX", 4, 1, 0}
  std::vector<field_match> qc_when{{{"MSH", 11, 1, 0}, "Q"}, {{"SPM", 11, 1, 0}, "Q"}};
  bool all_qc = false;            // the device only sends QC on this link
  bool rerun_on_obx_11_c = true;  // Roche: OBX-11 `C` (corrected) = rerun result
  bool rerun_on_tcd_8 = true;     // TCD-8 `R` / `D` (table 0389) = repeated
  // IHE LAW supplemental OBX (OBX-3.4 starting `S_`: pipetting time, calibration id...).
  bool include_supplemental = false;
  // OBX whose OBX-5 has no text (Roche's CE companion `^^99ROC`) are dropped, except OBX-11 `X`
  // (no result: the error is the point).
  bool skip_empty_values = true;
  std::vector<std::string> drop_flags;  // flag values that mean "no flag" (e.g. BA400 `NONE`)
  // OBX-2 value types that are not results: Mindray BC ED histograms / scattergrams are base64
  // BMPs of many kilobytes (facts §9).
  std::vector<std::string> skip_value_types{"ED"};
  // MSH-9 message codes (`ESU`) or code^trigger (`ACK^R22`) that are accepted and ignored.
  std::vector<std::string> ignored_types{"ACK", "ESU", "INU", "EAC", "ORL", "RSP", "QCK"};
  obr_result_fields obr_results;
  // Read for every control result (OBX or OBR-carried); a non-empty value replaces what
  // obr_results read for that key.
  qc_series_fields qc_series;
};

struct hl7_diagnostic {
  std::error_code error;
  std::size_t segment_index = 0;  // 1-based, as source_location::record_index
  std::size_t field = 0;          // standard numbering; 0 = the whole segment
  std::string detail;
};

struct hl7_batch {
  std::vector<result> results;
  std::vector<query> queries;
  std::vector<order> orders;
  std::error_code error;  // fatal: nothing else was produced (see diagnostics[0] for the place)
  std::vector<hl7_diagnostic> diagnostics;
  std::string message_type;                        // MSH-9 components 1^2 (`OUL^R22`)
  std::string control_id;                          // MSH-10, decoded
  std::string version;                             // MSH-12.1
  text_encoding encoding = text_encoding::latin1;  // used for this message
  bool ignored = false;                            // a type from options.ignored_types
};

// `where` fills every object's source_location (message_index, byte_offset); record_index is set
// to the 1-based segment of the OBX / QPD / OBR the object came from.
[[nodiscard]] hl7_batch normalise(const message& m, const hl7_options& options,
                                  std::string_view device, source_location where = {});

// Parses and normalises one message text (the bytes between 0x0B and 0x1C). A parse error is
// returned as the batch's error (segment 1).
[[nodiscard]] hl7_batch normalise(std::string_view text, const hl7_options& options,
                                  std::string_view device, source_location where = {});

// MSH-18 -> encoding: `ASCII`, `8859/1` -> latin1; `UNICODE UTF-8`, `UNICODE`, `UTF-8` -> utf8;
// then text_codec's names. nullopt when not understood.
[[nodiscard]] std::optional<text_encoding> charset_encoding(std::string_view msh_18) noexcept;

}  // namespace interfaced::hl7

template <>
struct std::is_error_code_enum<interfaced::hl7::normalise_error> : std::true_type {};
