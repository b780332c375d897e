#pragma once
// File-type reports (../shared/spec/file-reports.md), the pure part: which result values name a
// file and where it lies under the device's files.root, the content type of a file name, the
// checks made before presign (encrypted PDF, size, type), the four stages and what an answer
// means for each, and the expiry of a presigned POST policy. No I/O, no clock: the caller passes
// bytes and `now`; transport/file_upload.* does the requests and the reading.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace interfaced::devices {

// Profile key "file_references": a value starting with one of `prefixes` (as decoded: the Sysmex
// XN sends PNG&R&20240628&R&NAME, i.e. PNG\20240628\NAME once the &R& escape is read) names a file
// whose path components are separated by `separator`.
struct file_reference_rule {
  std::vector<std::string> prefixes;
  char separator = '\\';
  [[nodiscard]] bool empty() const noexcept { return prefixes.empty(); }
};

// "PNG\20240628\NAME" -> "PNG/20240628/NAME" (relative to files.root); nullopt when the value is
// not a file reference, or would leave the root (an empty, "." or ".." component, a '/').
[[nodiscard]] std::optional<std::string> file_reference_path(const file_reference_rule& rule, std::string_view value);

// By extension, case-insensitive: image/png, image/jpeg, image/bmp, image/svg+xml,
// application/pdf, text/csv, application/xml, text/plain; else application/octet-stream.
[[nodiscard]] std::string content_type_for(std::string_view filename);

// A PDF whose trailer (or cross-reference stream dictionary) names /Encrypt. `tail` is the last
// bytes of the file (the trailer is at the end; 64 KiB is plenty), `head` its first bytes.
[[nodiscard]] bool pdf_is_encrypted(std::string_view head, std::string_view tail);

// The checks made before presign, in this order; the rule that refused the file.
enum class file_refusal { none, encrypted_pdf, too_large, type_not_allowed };
[[nodiscard]] const char* to_string(file_refusal r) noexcept;  // "encrypted PDF", "files.max_bytes", ...
[[nodiscard]] file_refusal check_before_presign(std::uint64_t size, std::uint64_t max_bytes,
                                                std::string_view content_type,
                                                const std::vector<std::string>& allowed_types,
                                                bool encrypted_pdf);

// The stages, in order; each is committed before the next starts. `prepared`: size and SHA-256
// taken, checks passed, nothing asked yet.
enum class file_stage { prepared, presigned, uploaded, reconciled, finalized };
[[nodiscard]] const char* to_string(file_stage s) noexcept;  // "presign", "upload", ... (Idempotency-Key suffix)
[[nodiscard]] std::optional<file_stage> file_stage_from(std::string_view s) noexcept;
// The request the next stage makes: "presign" after prepared, "upload" after presigned, ...
[[nodiscard]] const char* next_request(file_stage s) noexcept;

// What to do after an answer (status 0: no answer: connection error, timeout).
enum class stage_decision {
  advance,     // 2xx: commit the next stage
  retry,       // 408, 429, 5xx, no answer: the same request later (upload: the same fields)
  represign,   // upload refused because the policy expired: back to presign, never the same fields
  dead,        // refused for good (a dead letter; after the upload: an orphan object)
};
[[nodiscard]] stage_decision decide(file_stage current, unsigned status, std::string_view response_body) noexcept;

// The presign answer's fields carry the policy (base64 JSON with "expiration", ISO-8601 UTC, S3's
// POST policy): its expiry in ms since the epoch; nullopt when there is none or it cannot be read
// (then only the store's 403 says it expired).
[[nodiscard]] std::optional<std::int64_t> policy_expiry_ms(std::string_view fields_json);

// "2026-12-06T15:00:00Z" / "...00.000Z" -> ms since the epoch.
[[nodiscard]] std::optional<std::int64_t> parse_iso_utc_ms(std::string_view s);

// What a `file_report` outbox message carries (its body, JSON): the file on disk and what it is
// attached to, with the device's files settings at the time it was stored, so delivery needs no
// device configuration.
struct file_report_request {
  std::string device_id;
  std::string sample_id;
  std::string lab_report_id;
  std::string parameter;
  std::string file;          // absolute path on the daemon's disk
  std::string filename;      // what the backend is told (the file's name)
  std::string content_type;
  std::string mode = "presigned";  // "presigned" | "inline" (files.mode)
  std::uint64_t max_bytes = 64ull * 1024 * 1024;
  std::vector<std::string> allowed_types;  // empty: any
  std::int64_t settle_ms = 2000;  // complete when unchanged for this long
  std::int64_t wait_s = 600;      // a file not there (or not settled) this long after the result: dead letter
  // The daemon made the file (a drawn histogram, HL7 ED data) in its spool folder: deleted once
  // the report is finalized. False: the analyser's own file (files.root) or a folder device's,
  // never deleted by the upload.
  bool spool = false;
};
[[nodiscard]] std::string file_report_body(const file_report_request& r);
// nullopt when the body is not one (a damaged row: a dead letter, never a guess).
[[nodiscard]] std::optional<file_report_request> parse_file_report_body(std::string_view body);

[[nodiscard]] std::string base64_encode(std::string_view bytes);
// Whitespace skipped; nullopt on any other character outside the alphabet.
[[nodiscard]] std::optional<std::string> base64_decode(std::string_view text);

}  // namespace interfaced::devices
