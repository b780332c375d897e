#pragma once
// Folder devices (file-reports.md "Folder devices"): the pure decisions about one file an analyser
// dropped in its export folder -- which kind it is, the results it gives, the sample its name
// names. No I/O: the daemon reads the file (transport/folder_watch.hpp) and passes its bytes.
//   an ASTM or HL7 file (what decode_capture reads)  -> results, through the same ingest as replay
//   a CSV export (".csv" with the profile's "folder"/"csv" mapping) -> results
//   anything else                                     -> a file-type report (file_report.hpp),
//                                                        its sample taken from the file's name

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/model.hpp"

namespace interfaced::devices {

class profile_catalog;
struct device_profile;

// Profile key "folder"/"csv": how a CSV export maps to results. Either the long form (one row per
// result: `parameter` and `value` columns) or the wide form (`columns`: one column per parameter,
// header -> test code). Headers are matched exactly after trimming spaces and quotes.
struct csv_mapping {
  char delimiter = ',';
  std::string sample_id;    // header of the sample id column; empty: no CSV mapping
  std::string observed_at;  // optional header of the observation time column
  std::string parameter;    // long form
  std::string value;        // long form
  std::string unit;         // long form, optional
  std::map<std::string, std::string, std::less<>> columns;  // wide form
  [[nodiscard]] bool enabled() const noexcept { return !sample_id.empty(); }
  friend bool operator==(const csv_mapping&, const csv_mapping&) = default;
};

// Profile key "folder": {filename_pattern, report_parameter, csv, why}.
struct folder_rule {
  // "{sample_id}_{date}.pdf": `{sample_id}` captures the sample id, any other `{name}` matches
  // any text, `*` any text, every other character itself. Empty: a file report names no sample.
  std::string filename_pattern;
  std::string report_parameter = "report";  // the parameter a file-type report is attached to
  csv_mapping csv;
  friend bool operator==(const folder_rule&, const folder_rule&) = default;
};

enum class folder_file_kind { astm, hl7, csv, report };
[[nodiscard]] const char* to_string(folder_file_kind k) noexcept;

// ASTM/HL7 by content (devices/capture_input.hpp), CSV by the ".csv" extension when `rule` maps
// CSV, else a report.
[[nodiscard]] folder_file_kind classify_folder_file(std::string_view name, std::string_view bytes,
                                                    const folder_rule* rule);

// The sample id the file name carries under `pattern`; nullopt when the name does not match or
// the pattern has no {sample_id} (or the captured id is empty).
[[nodiscard]] std::optional<std::string> sample_from_filename(std::string_view pattern, std::string_view name);

// Results of a file (ASTM, HL7 or CSV). `error` set: the file cannot be read as its kind (the
// reason, for <name>.error.txt); results are then not to be used.
struct folder_results {
  std::vector<result> results;
  const device_profile* profile = nullptr;  // the profile the results were read with
  std::string error;
  std::vector<std::string> warnings;
};
[[nodiscard]] folder_results read_capture_results(std::string_view bytes, const profile_catalog* catalog,
                                                  const device_profile* forced, const std::string& device);
[[nodiscard]] folder_results read_csv_results(std::string_view text, const csv_mapping& m, const std::string& device);

}  // namespace interfaced::devices
