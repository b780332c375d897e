#pragma once
// E1394 (CLSI LIS02-A2) records over a message's text.
//
// Pure and zero-copy: record_view / field_view point into the caller's message text (which must
// outlive them); escapes (&F& &S& &R& &E& &Xhh..& ; &H& &N& &Z..& dropped) are decoded only when a
// value is materialised with decode(). Delimiters come from the H record (LIS02 H record: the five
// characters after `H` are field, repeat, component, escape, field) -- `|\^&` is only the default.
// Record type is case-insensitive; records end with CR, or (records-only input) LF or CR LF.
// Field numbers follow the standard: field(1) is the record type, field(2) the sequence number...

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace interfaced::astm {

enum class record_error {
  ok = 0,
  no_header = 1,         // message does not start with an H record
  bad_delimiters,        // H delimiters missing, repeated, or CR/LF
  empty_record,          // a record with no type
  unknown_record_type,   // type not one of H P O R C Q M S L
  bad_escape,            // an escape sequence with no closing escape character
  out_of_order,          // hierarchy violated (e.g. R before any O)
  too_many_records,      // over the configured limit
  not_text,              // a byte LIS02 5.1 disallows (0-6, 8, 10, 14-31, 127, 255) in a record
};
const std::error_category& record_category() noexcept;
std::error_code make_error_code(record_error e) noexcept;

struct delimiters {
  char field = '|';
  char repeat = '\\';
  char component = '^';
  char escape = '&';
};

// Reads the delimiters from an H record ("H|\^&..."). Errors: no_header, bad_delimiters.
[[nodiscard]] std::error_code detect_delimiters(std::string_view h_record, delimiters& out) noexcept;

// A field, repeat or component: a raw view plus the delimiters to split and decode it.
class field_view {
 public:
  field_view() = default;
  field_view(std::string_view raw, const delimiters* d) noexcept : raw_(raw), d_(d) {}

  [[nodiscard]] std::string_view raw() const noexcept { return raw_; }
  [[nodiscard]] bool empty() const noexcept { return raw_.empty(); }
  [[nodiscard]] std::size_t repeat_count() const noexcept;        // >= 1
  [[nodiscard]] field_view repeat(std::size_t i) const noexcept;  // 0-based; empty when absent
  [[nodiscard]] std::size_t component_count() const noexcept;     // >= 1 (of the first repeat)
  [[nodiscard]] field_view component(std::size_t i) const noexcept;  // 1-based, as the standard counts
  // Escapes decoded (bytes, not yet transcoded to UTF-8); bad escapes are kept literally.
  [[nodiscard]] std::string decode() const;

 private:
  std::string_view raw_;
  const delimiters* d_ = nullptr;
};

class record_view {
 public:
  record_view() = default;
  record_view(std::string_view raw, const delimiters* d) noexcept : raw_(raw), d_(d) {}

  [[nodiscard]] char type() const noexcept;  // upper-cased record type, 0 when empty
  [[nodiscard]] std::string_view raw() const noexcept { return raw_; }
  [[nodiscard]] std::size_t field_count() const noexcept;
  [[nodiscard]] field_view field(std::size_t n) const noexcept;  // 1-based; empty when absent

 private:
  std::string_view raw_;
  const delimiters* d_ = nullptr;
};

struct record_diagnostic {
  std::error_code error;
  std::size_t record_index = 0;  // 1-based
  std::size_t byte_offset = 0;   // within the message text
  std::string detail;            // what was expected
};

struct message_limits {
  std::size_t max_records = 100000;
};

// One E1394 message (H ... L). Views point into the text given to parse_message.
struct message {
  delimiters delims;
  std::vector<record_view> records;  // in order; each view excludes the record terminator
  std::vector<std::size_t> offsets;  // byte offset of each record within the text
  std::vector<record_diagnostic> diagnostics;
  bool has_terminator = false;       // an L record was seen
};

// Splits text on CR, LF or CR LF, detects delimiters from the first H record, validates types
// and hierarchy (H/L level 0; P Q S 1; O 2; R 3; C M attach to the preceding record). Problems
// are diagnostics; parsing continues so one bad record does not lose the others.
// Note: `message` holds pointers to its own delims; do not copy it after records were made
// (it is returned by value with guaranteed elision; moving is fine only via parse_message).
[[nodiscard]] message parse_message(std::string_view text, message_limits limits = {});

// Writes records (H P O L orders, query answers) with escapes applied. Each record ends CR.
class record_writer {
 public:
  explicit record_writer(delimiters d = {}) : d_(d) {}
  // Starts a record of the given type; following add_* calls append fields.
  record_writer& begin(char type);
  record_writer& field(std::string_view value);          // escaped
  record_writer& components(const std::vector<std::string>& parts);  // each escaped, joined by ^
  record_writer& raw_field(std::string_view raw);        // already delimited, not escaped
  record_writer& end();                                  // trailing empty fields trimmed, CR
  [[nodiscard]] const std::string& text() const noexcept { return out_; }
  // The H record with this writer's delimiters (H|\^&|...), fields after H.2 as given.
  record_writer& header(const std::vector<std::string>& fields_from_3);
  [[nodiscard]] std::string escape(std::string_view value) const;

 private:
  delimiters d_;
  std::string out_;
  std::size_t record_start_ = 0;
};

}  // namespace interfaced::astm

template <>
struct std::is_error_code_enum<interfaced::astm::record_error> : std::true_type {};
