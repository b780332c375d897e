#include "devices/file_report.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace interfaced::devices {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool contains_ci(std::string_view hay, std::string_view needle) {
  return lower(hay).find(lower(needle)) != std::string::npos;
}

}  // namespace

std::optional<std::string> file_reference_path(const file_reference_rule& rule, std::string_view value) {
  const auto prefix = std::find_if(rule.prefixes.begin(), rule.prefixes.end(),
                                   [&](const std::string& p) { return value.starts_with(p); });
  if (prefix == rule.prefixes.end()) return std::nullopt;
  std::string out;
  std::size_t at = 0;
  for (;;) {
    const auto end = value.find(rule.separator, at);
    const std::string_view part = value.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
    // A path that could leave files.root (or name a folder) is not followed.
    if (part.empty() || part == "." || part == ".." || part.find('/') != std::string_view::npos ||
        part.find('\0') != std::string_view::npos)
      return std::nullopt;
    if (!out.empty()) out += '/';
    out += part;
    if (end == std::string_view::npos) break;
    at = end + 1;
  }
  return out;
}

std::string content_type_for(std::string_view filename) {
  const auto dot = filename.rfind('.');
  const std::string ext = dot == std::string_view::npos ? std::string() : lower(filename.substr(dot + 1));
  if (ext == "png") return "image/png";
  if (ext == "jpg" || ext == "jpeg") return "image/jpeg";
  if (ext == "bmp") return "image/bmp";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "pdf") return "application/pdf";
  if (ext == "csv") return "text/csv";
  if (ext == "xml") return "application/xml";
  if (ext == "txt") return "text/plain";
  return "application/octet-stream";
}

bool pdf_is_encrypted(std::string_view head, std::string_view tail) {
  if (!head.starts_with("%PDF-")) return false;
  // The trailer dictionary (classic) or the cross-reference stream dictionary (PDF 1.5+) names
  // the encryption dictionary: "/Encrypt 12 0 R". Both sit at the end of the file; an
  // incrementally updated file repeats the trailer there too.
  const auto at = tail.rfind("/Encrypt");
  if (at == std::string_view::npos) return false;
  // "/EncryptMetadata" is a key inside the encryption dictionary, not the trailer's entry.
  const std::string_view after = tail.substr(at + 8);
  return after.empty() || !std::isalpha(static_cast<unsigned char>(after.front())) ||
         tail.substr(0, at).find("/Encrypt ") != std::string_view::npos;
}

const char* to_string(file_refusal r) noexcept {
  switch (r) {
    case file_refusal::none: return "none";
    case file_refusal::encrypted_pdf: return "encrypted PDF";
    case file_refusal::too_large: return "files.max_bytes";
    case file_refusal::type_not_allowed: return "files.allowed_types";
  }
  return "none";
}

file_refusal check_before_presign(std::uint64_t size, std::uint64_t max_bytes, std::string_view content_type,
                                  const std::vector<std::string>& allowed_types, bool encrypted_pdf) {
  if (encrypted_pdf) return file_refusal::encrypted_pdf;
  if (max_bytes > 0 && size > max_bytes) return file_refusal::too_large;
  if (!allowed_types.empty() &&
      std::none_of(allowed_types.begin(), allowed_types.end(), [&](const std::string& t) {
        // "image/*" allows every image type.
        if (t.size() > 2 && t.ends_with("/*")) return lower(content_type).starts_with(lower(t.substr(0, t.size() - 1)));
        return lower(t) == lower(content_type);
      }))
    return file_refusal::type_not_allowed;
  return file_refusal::none;
}

const char* to_string(file_stage s) noexcept {
  switch (s) {
    case file_stage::prepared: return "prepared";
    case file_stage::presigned: return "presigned";
    case file_stage::uploaded: return "uploaded";
    case file_stage::reconciled: return "reconciled";
    case file_stage::finalized: return "finalized";
  }
  return "prepared";
}

std::optional<file_stage> file_stage_from(std::string_view s) noexcept {
  for (auto st : {file_stage::prepared, file_stage::presigned, file_stage::uploaded, file_stage::reconciled,
                  file_stage::finalized})
    if (s == to_string(st)) return st;
  return std::nullopt;
}

const char* next_request(file_stage s) noexcept {
  switch (s) {
    case file_stage::prepared: return "presign";
    case file_stage::presigned: return "upload";
    case file_stage::uploaded: return "reconcile";
    case file_stage::reconciled: return "finalize";
    case file_stage::finalized: return "";
  }
  return "";
}

stage_decision decide(file_stage current, unsigned status, std::string_view body) noexcept {
  if (status >= 200 && status < 300) return stage_decision::advance;
  if (status == 0 || status == 408 || status == 425 || status == 429 || status >= 500) return stage_decision::retry;
  // S3 answers an expired POST policy with 403 AccessDenied "Invalid according to Policy: Policy
  // expired."; any 403 naming an expiry sends the file back to presign for new fields.
  if (current == file_stage::presigned && status == 403 && contains_ci(body, "expired")) return stage_decision::represign;
  return stage_decision::dead;
}

std::optional<std::int64_t> parse_iso_utc_ms(std::string_view s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  const std::string t(s);
  if (std::sscanf(t.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6) return std::nullopt;
  if (!t.ends_with("Z")) return std::nullopt;
  using namespace std::chrono;
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  const auto tp = sys_days{ymd} + hours{h} + minutes{mi} + seconds{sec};
  return duration_cast<milliseconds>(tp.time_since_epoch()).count();
}

std::optional<std::int64_t> policy_expiry_ms(std::string_view fields_json) {
  const auto fields = nlohmann::json::parse(fields_json, nullptr, false);
  if (!fields.is_object()) return std::nullopt;
  for (const char* key : {"policy", "Policy"}) {
    if (!fields.contains(key) || !fields[key].is_string()) continue;
    const auto text = base64_decode(fields[key].get<std::string>());
    if (!text) return std::nullopt;
    const auto doc = nlohmann::json::parse(*text, nullptr, false);
    if (!doc.is_object() || !doc.contains("expiration") || !doc["expiration"].is_string()) return std::nullopt;
    return parse_iso_utc_ms(doc["expiration"].get<std::string>());
  }
  return std::nullopt;
}

std::string file_report_body(const file_report_request& r) {
  nlohmann::ordered_json j = {{"device_id", r.device_id},       {"sample_id", r.sample_id},
                              {"lab_report_id", r.lab_report_id}, {"parameter", r.parameter},
                              {"file", r.file},                 {"filename", r.filename},
                              {"content_type", r.content_type}, {"mode", r.mode},
                              {"max_bytes", r.max_bytes},       {"allowed_types", r.allowed_types},
                              {"settle_ms", r.settle_ms},       {"wait_s", r.wait_s}};
  if (r.spool) j["spool"] = true;  // absent otherwise: bodies of the analyser's files as before
  return j.dump();
}

std::optional<file_report_request> parse_file_report_body(std::string_view body) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  try {
    file_report_request r;
    r.device_id = j.value("device_id", "");
    r.sample_id = j.value("sample_id", "");
    r.lab_report_id = j.value("lab_report_id", "");
    r.parameter = j.value("parameter", "");
    r.file = j.at("file").get<std::string>();
    r.filename = j.value("filename", "");
    r.content_type = j.value("content_type", "application/octet-stream");
    r.mode = j.value("mode", "presigned");
    r.max_bytes = j.value("max_bytes", r.max_bytes);
    r.allowed_types = j.value("allowed_types", std::vector<std::string>{});
    r.settle_ms = j.value("settle_ms", r.settle_ms);
    r.wait_s = j.value("wait_s", r.wait_s);
    r.spool = j.value("spool", false);
    if (r.file.empty()) return std::nullopt;
    return r;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

std::string base64_encode(std::string_view in) {
  static constexpr char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  // Bytes as unsigned before any shift: a char promoted to int would shift as signed.
  auto byte = [&](std::size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(in[k])); };
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += abc[(v >> 6) & 63];
    out += abc[v & 63];
  }
  if (i + 1 == in.size()) {
    const unsigned v = byte(i) << 16;
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const unsigned v = (byte(i) << 16) | (byte(i + 1) << 8);
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += abc[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+' || c == '-') v = 62;
    else if (c == '/' || c == '_') v = 63;
    else if (c == '=' || std::isspace(c)) continue;
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

}  // namespace interfaced::devices
