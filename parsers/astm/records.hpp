#pragma once
// E1394 (CLSI LIS02-A2) records over a message's text.
//
// Pure and zero-copy: record_view / field_view point into the caller's message text (which must
// outlive them); escapes (&F& &S& &R& &E& &Xhh..& ; &H& &N& &Z..& dropped) are decoded only when a
// value is materialised with decode(). Delimiters come from the H record (LIS02 H record: the five
// characters after `H` are field, repeat, component, escape, field) -- `|\^&` is only the default.
// Record type is case-insensitive; records end with CR, or (records-only input) LF or CR LF.
// Field numbers follow the standard: field(1) is the record type, field(2) the sequence number...
// Views are small values (a string_view plus a copy of the four delimiter chars), so a `message`
// may be copied or moved freely; only the caller's text must outlive it.
// Bad input never throws: problems become record_diagnostic values and parsing continues.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace interfaced::astm {

enum class record_error {
  ok = 0,
  no_header = 1,        // message does not start with an H record
  bad_delimiters,       // H delimiters missing, repeated, or CR/LF
  empty_record,         // a record with no type
  unknown_record_type,  // type not one of H P O R C Q M S L
  bad_escape,           // an escape char not opening a valid sequence (unclosed, unknown code)
  out_of_order,         // hierarchy violated (e.g. R before any O)
  too_many_records,     // over the configured limit
  not_text,             // a byte LIS02 5.1 disallows (0-6, 8, 10, 14-31, 127, 255) in a record
  lenient_delimiters,   // H delimiters accepted only through a leniency (see parse_message)
};
const std::error_category& record_category() noexcept;
std::error_code make_error_code(record_error e) noexcept;

struct delimiters {
  char field = '|';
  char repeat = '\\';
  char component = '^';
  char escape = '&';
};

// True when the four characters differ from each other and from CR and LF (LIS02 H.2), and none
// is an ASCII letter or digit: escape codes (F S R E X H N Z) and hex digits are letters and
// digits, so such a delimiter would make escapes ambiguous. No analyser we know uses one.
[[nodiscard]] bool valid_delimiters(const delimiters& d) noexcept;

// Reads the delimiters from an H record ("H|\^&..."; the record type may be lower case). The
// character after the escape character must be the field delimiter or the end of the record.
// Errors: no_header (not an H record), bad_delimiters (too short, repeated, CR/LF, bad layout).
// Strict: `out` is only written on success.
[[nodiscard]] std::error_code detect_delimiters(std::string_view h_record,
                                                delimiters& out) noexcept;

// As detect_delimiters, plus one leniency: a doubled repeat delimiter (`H|\\^&|`, seen in
// captures/astm/horiba-yumizen_h550-qc-result-records.astm) is read as `|\^&` with the second
// character skipped; then *doubled_repeat is set and the result is ok.
[[nodiscard]] std::error_code detect_delimiters_lenient(std::string_view h_record, delimiters& out,
                                                        bool* doubled_repeat) noexcept;

// Hierarchy level of a record type (LIS02: H L 0; P Q S 1; O 2; R 3); -1 for C and M, which
// attach to the preceding record, and for unknown types. Case-insensitive.
[[nodiscard]] int record_level(char type) noexcept;

// A field, repeat or component: a raw view plus (a copy of) the delimiters to split and decode it.
// Splitting is on the raw delimiter characters: escape sequences never contain them (LIS02 5.4.5).
class field_view {
 public:
  field_view() = default;
  field_view(std::string_view raw, delimiters d) noexcept : raw_(raw), d_(d) {}
  // Kept for source compatibility; copies *d (defaults when null).
  field_view(std::string_view raw, const delimiters* d) noexcept
      : raw_(raw), d_(d != nullptr ? *d : delimiters{}) {}

  [[nodiscard]] std::string_view raw() const noexcept { return raw_; }
  [[nodiscard]] bool empty() const noexcept { return raw_.empty(); }
  [[nodiscard]] std::size_t repeat_count() const noexcept;        // >= 1
  [[nodiscard]] field_view repeat(std::size_t i) const noexcept;  // 0-based; empty when absent
  [[nodiscard]] std::size_t component_count() const noexcept;     // >= 1 (of the first repeat)
  [[nodiscard]] field_view component(
      std::size_t i) const noexcept;  // 1-based, as the standard counts
  // Escapes decoded (bytes, not yet transcoded to UTF-8) with this view's escape character:
  // F S R E -> the delimiter, X<hex> -> bytes, H N Z<any> dropped. A sequence that is not one of
  // these or has no closing escape character is kept literally (escape char included).
  [[nodiscard]] std::string decode() const;
  [[nodiscard]] const delimiters& delims() const noexcept { return d_; }

 private:
  std::string_view raw_;
  delimiters d_;
};

// Decodes LIS02 5.4.5 escape sequences in `raw` (see field_view::decode).
[[nodiscard]] std::string decode_escapes(std::string_view raw, const delimiters& d);
// True when `raw` holds an escape character that does not start a well-formed sequence.
[[nodiscard]] bool has_bad_escape(std::string_view raw, const delimiters& d) noexcept;

class record_view {
 public:
  record_view() = default;
  record_view(std::string_view raw, delimiters d) noexcept : raw_(raw), d_(d) {}
  // Kept for source compatibility; copies *d (defaults when null).
  record_view(std::string_view raw, const delimiters* d) noexcept
      : raw_(raw), d_(d != nullptr ? *d : delimiters{}) {}

  [[nodiscard]] char type() const noexcept;  // upper-cased first character, 0 when empty
  [[nodiscard]] std::string_view raw() const noexcept { return raw_; }
  [[nodiscard]] std::size_t field_count() const noexcept;        // 0 for an empty record
  [[nodiscard]] field_view field(std::size_t n) const noexcept;  // 1-based; empty when absent
  [[nodiscard]] const delimiters& delims() const noexcept { return d_; }

 private:
  std::string_view raw_;
  delimiters d_;
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
  bool has_terminator = false;  // an L record was seen
  // Every byte of every record is printable ASCII (0x20-0x7E), every record type is known, and no
  // field holds the escape character (the H.2 that defined the delimiters aside): then no value read
  // from the message, decoded or not, holds a control character, and devices/ skips looking for
  // them. False says nothing: the values may still be clean.
  bool printable_ascii = true;
};

// Splits text on CR, LF or CR LF (blank lines skipped), detects delimiters from the first record,
// which must be H, validates types and hierarchy (H/L level 0; P Q S 1; O 2; R 3; C M attach to
// the preceding record). Problems are diagnostics and every record is still kept, so one bad
// record does not lose the others:
//  - no_header: the first record is not H (default delimiters are used);
//  - bad_delimiters: H.2 unusable (default delimiters are used);
//  - lenient_delimiters: H.2 read through detect_delimiters_lenient's doubled-repeat leniency;
//  - empty_record / unknown_record_type / out_of_order (incl. records after L, a second H);
//  - not_text: first disallowed byte of a record (offset of that byte);
//  - bad_escape: first record field with a malformed escape (H.2 is not checked);
//  - too_many_records: parsing stops at limits.max_records.
// One message per call: for text with several H..L messages, split it with split_messages.
[[nodiscard]] message parse_message(std::string_view text, message_limits limits = {});

// Byte offsets at which an H record (type H or h) starts: offset 0 or just after a CR / LF.
// Text before the first H is not part of any message. The message i is
// text.substr(offsets[i], offsets[i+1] - offsets[i]) (the last one runs to the end); each can be
// given to parse_message. Pure, allocates only the result.
[[nodiscard]] std::vector<std::size_t> split_messages(std::string_view text);

// Writes records (H P O L orders, query answers) with escapes applied. Each record ends CR.
// Precondition: valid_delimiters(d). Values are bytes in the device's encoding (see from_utf8 in
// text_codec.hpp); the writer does not transcode.
class record_writer {
 public:
  explicit record_writer(delimiters d = {}) : d_(d) {}
  // Starts a record of the given type (ending an open one first); field(), components(),
  // repeats() and raw_field() then append fields 2, 3, ... (call them only after begin()).
  record_writer& begin(char type);
  record_writer& field(std::string_view value);  // escaped
  // Each part escaped, joined by the component delimiter; trailing empty parts dropped.
  record_writer& components(const std::vector<std::string>& parts);
  // Repeats, each a list of components (escaped), joined by the repeat delimiter.
  record_writer& repeats(const std::vector<std::vector<std::string>>& reps);
  record_writer& raw_field(std::string_view raw);  // already delimited, not escaped
  record_writer& end();                            // trailing empty fields trimmed, CR
  [[nodiscard]] const std::string& text() const noexcept { return out_; }
  [[nodiscard]] std::string take();  // the text; the writer is left empty
  // A complete H record with this writer's delimiters (H|\^&|...), fields 3.. as given (escaped).
  record_writer& header(const std::vector<std::string>& fields_from_3);
  [[nodiscard]] const delimiters& delims() const noexcept { return d_; }
  // The four delimiters -> &F& &R& &S& &E&; CR, LF and other bytes LIS02 5.1 disallows -> &Xhh&.
  [[nodiscard]] std::string escape(std::string_view value) const;

 private:
  delimiters d_;
  std::string out_;
  std::size_t record_start_ = 0;
  bool open_ = false;
};

}  // namespace interfaced::astm

template <>
struct std::is_error_code_enum<interfaced::astm::record_error> : std::true_type {};
