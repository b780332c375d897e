#pragma once
// Per-analyser profiles as data: JSON files in devices/profiles/ (installed to
// /usr/share/interfaced/profiles). A profile says how to recognise the analyser from its H record
// (H.5 sender), where its fields differ from LIS02-A2, its text encoding, its frame size, and its
// leniencies -- every non-default setting carries a "why" naming the capture or manual section.
// Loading is configuration: problems throw profile_error naming the file and JSON pointer.

#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/astm/normalise.hpp"
#include "parsers/hl7/ack.hpp"
#include "parsers/hl7/normalise.hpp"
#include "devices/file_report.hpp"
#include "devices/folder_file.hpp"

namespace interfaced::devices {

class profile_error : public std::runtime_error {
 public:
  profile_error(const std::string& file, const std::string& pointer, const std::string& what)
      : std::runtime_error(file + ": " + (pointer.empty() ? "/" : pointer) + ": " + what) {}
};

struct leniency {
  std::string name;
  std::string why;
};

struct device_profile {
  std::string id;
  std::string vendor;
  std::vector<std::string> models;
  std::string protocol = "astm";            // "astm" | "hl7"
  // H.5 as sent (components joined by '^', leading blanks trimmed), case-insensitive: a prefix,
  // or a part anywhere (for analysers whose H.5 starts with a site-configured name).
  std::vector<std::string> sender_prefixes;
  std::vector<std::string> sender_contains;
  astm::astm_options astm;
  hl7::hl7_options hl7;  // protocol "hl7": where this analyser's HL7 differs (profile key "hl7")
  hl7::ack_options ack;  // the ACK it expects (profile key "hl7"/"ack"), e.g. Mindray's MSA-3/MSA-6
  std::size_t frame_text_size = 63993;       // sending: 240 for E1381-95 analysers
  // Order download (profile key "orders"): the analyser takes orders the host sends unasked
  // (worklist push), besides answering its host queries. Off by default.
  bool order_download = false;
  // Machine name -> the analyser's test code to order it with, for downloads and query answers
  // ("orders"/"codes"); a name not listed is its own code (code_map.hpp).
  std::map<std::string, std::string, std::less<>> order_codes;
  // Test identity (result::code) -> machine name ("result_codes"/"codes"); an identity not listed
  // is its own machine name. The daemon and replay build the device's rerun::code_map from it.
  std::map<std::string, std::string, std::less<>> result_codes;
  // Result values that name a file the analyser wrote (profile key "file_references"): the value
  // is forwarded as it is and the file becomes a file-type report (file_report.hpp).
  file_reference_rule file_references;
  // Folder devices (profile key "folder", folder_file.hpp): the file name that carries the sample
  // id of a file-type report, and the column mapping of CSV exports.
  folder_rule folder;
  std::vector<leniency> leniencies;
  std::filesystem::path file;

  [[nodiscard]] bool has_leniency(std::string_view name) const noexcept;
};

class profile_catalog {
 public:
  // Every *.json in the folder; throws profile_error on the first invalid file.
  static profile_catalog load_dir(const std::filesystem::path& dir);
  // The built-in folder: $INTERFACED_PROFILE_DIR, else <exe>/../share/interfaced/profiles when it
  // exists (installed), else the source tree's devices/profiles.
  static std::filesystem::path default_dir();

  void add(device_profile p);
  [[nodiscard]] const device_profile* find(std::string_view id) const noexcept;
  // The profile whose sender pattern matches H.5 (the longest pattern wins); nullptr when none.
  // For HL7, `sender` is MSH-3 (sending application); only profiles of `protocol` are considered.
  [[nodiscard]] const device_profile* detect(std::string_view sender, std::string_view protocol = "astm") const noexcept;
  [[nodiscard]] const std::vector<device_profile>& all() const noexcept { return profiles_; }

 private:
  std::vector<device_profile> profiles_;
};

// Parses one profile document (exposed for tests and check-config).
device_profile parse_profile(std::string_view json_text, const std::string& file_name);

}  // namespace interfaced::devices
