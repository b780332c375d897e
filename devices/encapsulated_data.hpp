#pragma once
// HL7 `OBX-2 ED` (encapsulated data, issue #15 point 2): OBX-5 is
// `source^type^subtype^encoding^data` (HL7 v2.5 2.A.24), the data base64. Each such OBX becomes
// the file it is -- PDF, PNG or JPEG, by subtype, checked by its magic bytes -- and a result whose
// value is a reference to that file instead of the base64 (the file's name, which the file-type
// report of the same sample and parameter carries as `filename`).
//
// Pure: message text in, results and file bytes out; no I/O. The normaliser drops ED OBX by
// default (hl7_options::skip_value_types): here the message is read a second time with ED kept,
// so the sample id, test code and times follow the profile's own rules.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/hl7/normalise.hpp"
#include "parsers/model.hpp"

namespace interfaced::devices {

struct encapsulated_limits {
  std::size_t max_encoded = 96u << 20;  // base64 characters of one OBX-5 (~72 MiB decoded)
};

struct encapsulated_file {
  result r;                   // the OBX's result; value = `filename` (set only when decoded)
  std::string filename;       // `<sample>_<code>.<pdf|png|jpg>`, safe as a file name
  std::string content_type;   // application/pdf | image/png | image/jpeg
  std::string bytes;          // the decoded file
  std::string error;          // not empty: not decoded, why (bytes empty)
};

// Every ED OBX of the message text (one HL7 message), in order.
[[nodiscard]] std::vector<encapsulated_file> encapsulated_files(std::string_view message_text,
                                                                const hl7::hl7_options& options,
                                                                std::string_view device,
                                                                const encapsulated_limits& limits = {});

// The file kind of decoded bytes given the ED subtype (`PDF`, `PNG`, `JPEG`/`JPG`; another
// subtype: by magic alone): {extension, content type}, both empty when the bytes are none of them
// or not what the subtype says.
struct file_kind {
  std::string extension;
  std::string content_type;
};
[[nodiscard]] file_kind encapsulated_kind(std::string_view subtype, std::string_view bytes);

// A name component for a file: letters, digits, '-', '_' kept, anything else '_'; never empty.
[[nodiscard]] std::string file_name_part(std::string_view s);

}  // namespace interfaced::devices
