#include "devices/encapsulated_data.hpp"

#include <algorithm>
#include <cctype>

#include "devices/file_report.hpp"
#include "parsers/hl7/message.hpp"

namespace interfaced::devices {

std::string file_name_part(std::string_view s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  return out.empty() ? std::string("_") : out;
}

file_kind encapsulated_kind(std::string_view subtype, std::string_view bytes) {
  std::string sub(subtype);
  for (auto& c : sub) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const bool pdf = bytes.starts_with("%PDF-");
  const bool png = bytes.starts_with("\x89PNG\r\n\x1a\n");
  const bool jpeg = bytes.starts_with("\xFF\xD8\xFF");
  if (sub == "PDF") return pdf ? file_kind{"pdf", "application/pdf"} : file_kind{};
  if (sub == "PNG") return png ? file_kind{"png", "image/png"} : file_kind{};
  if (sub == "JPEG" || sub == "JPG") return jpeg ? file_kind{"jpg", "image/jpeg"} : file_kind{};
  if (pdf) return {"pdf", "application/pdf"};
  if (png) return {"png", "image/png"};
  if (jpeg) return {"jpg", "image/jpeg"};
  return {};
}

std::vector<encapsulated_file> encapsulated_files(std::string_view text, const hl7::hl7_options& options,
                                                  std::string_view device, const encapsulated_limits& limits) {
  std::vector<encapsulated_file> out;
  hl7::message m;
  if (hl7::parse_message(text, m)) return out;
  std::vector<std::size_t> ed_segments;  // 1-based, as source_location::record_index
  for (std::size_t i = 0; i < m.segments().size(); ++i) {
    const auto& s = m.segment(i);
    if (s.is("OBX") && s.field(2).component(1).raw() == "ED") ed_segments.push_back(i + 1);
  }
  if (ed_segments.empty()) return out;
  hl7::hl7_options keep = options;
  std::erase(keep.skip_value_types, std::string("ED"));
  keep.skip_empty_values = false;
  const hl7::hl7_batch b = hl7::normalise(m, keep, device);
  for (const auto& r : b.results) {
    if (std::find(ed_segments.begin(), ed_segments.end(), r.where.record_index) == ed_segments.end()) continue;
    encapsulated_file f;
    f.r = r;
    f.r.numeric.reset();
    const hl7::value_view v = m.segment(r.where.record_index - 1).field(5);
    const std::string subtype = v.component(3).decode();
    std::string encoding = v.component(4).decode();
    for (auto& c : encoding) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const std::string_view data = v.component(5).raw();
    if (encoding != "base64") {
      f.error = "OBX-5.4 encoding '" + v.component(4).decode() + "' is not Base64";
    } else if (data.size() > limits.max_encoded) {
      f.error = "OBX-5.5 holds " + std::to_string(data.size()) + " base64 characters, over the limit of " +
                std::to_string(limits.max_encoded);
    } else if (auto bytes = base64_decode(data); !bytes || bytes->empty()) {
      f.error = "OBX-5.5 is not base64";
    } else if (const file_kind k = encapsulated_kind(subtype, *bytes); k.extension.empty()) {
      f.error = "OBX-5.3 subtype '" + subtype + "' and the data's first bytes do not make a PDF, PNG or JPEG";
    } else {
      f.filename = file_name_part(r.sample_id) + "_" + file_name_part(r.code) + "." + k.extension;
      f.content_type = k.content_type;
      f.bytes = std::move(*bytes);
      f.r.value = f.filename;
    }
    if (!f.error.empty()) f.r.value.clear();
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace interfaced::devices
