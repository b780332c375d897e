#pragma once
// HL7 v2 message view: segments, fields, repetitions, components and subcomponents as views into
// the caller's message text (the bytes between MLLP 0x0B and 0x1C).
//
// Pure and zero-copy: every view points into the text given to parse_message(), which must outlive
// the message and all views taken from it. Views carry a copy of the delimiters, so copying a
// message or a view is safe.
// Delimiters come from MSH-1 / MSH-2 (never assumed). Segments end with CR, CR LF or LF; a lone
// LF ends a segment only when the message holds no CR at all (then LF-only exports and logs
// parse), otherwise it is data. Empty lines are skipped.
// Field numbering follows the standard: field(0) is the segment name; for MSH, field(1) is the
// field separator itself and field(2) the encoding characters (both literal: never split or
// decoded); field(3) is MSH-3 and so on.
// Escapes \F\ \S\ \T\ \R\ \E\ are decoded only when a value is read with decode(); \Xhh\, \Zxx\,
// \.br\, \H\, \N\ (and anything unknown) are passed through untouched. An empty value and the HL7
// null `""` are kept apart: empty() vs is_null().
// Bytes only: decode() returns bytes in the message's character set (see normalise.hpp for UTF-8).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace interfaced::hl7 {

enum class message_error {
  ok = 0,
  empty = 1,          // no segment at all
  no_msh,             // the first segment is not MSH
  bad_delimiters,     // MSH-1 / MSH-2 missing, repeated, alphanumeric or CR / LF
  too_many_segments,  // over message_limits::max_segments
};
const std::error_category& message_category() noexcept;
std::error_code make_error_code(message_error e) noexcept;

// '\0' marks an encoding character the message did not declare (MSH-2 may be short).
struct delimiters {
  char field = '|';
  char component = '^';
  char repetition = '~';
  char escape = '\\';
  char subcomponent = '&';
};

// Reads delimiters from the start of an MSH segment ("MSH|^~\&|..."). Errors: no_msh,
// bad_delimiters.
[[nodiscard]] std::error_code detect_delimiters(std::string_view msh, delimiters& out) noexcept;

// A field, repetition, component or subcomponent.
class value_view {
 public:
  value_view() = default;
  // literal: the value is never split nor decoded (MSH-1, MSH-2).
  value_view(std::string_view raw, const delimiters& d, bool literal = false) noexcept
      : raw_(raw), d_(d), literal_(literal) {}

  [[nodiscard]] std::string_view raw() const noexcept { return raw_; }
  [[nodiscard]] bool empty() const noexcept { return raw_.empty(); }
  // The HL7 null `""`: "delete this value on the receiver", distinct from empty (not sent).
  [[nodiscard]] bool is_null() const noexcept { return raw_ == "\"\""; }
  // Not empty and not null.
  [[nodiscard]] bool has_value() const noexcept { return !empty() && !is_null(); }

  [[nodiscard]] std::size_t repetition_count() const noexcept;        // >= 1
  [[nodiscard]] value_view repetition(std::size_t i) const noexcept;  // 0-based; empty if absent
  // Components of the first repetition (1-based, as the standard counts); empty when absent.
  [[nodiscard]] std::size_t component_count() const noexcept;  // >= 1
  [[nodiscard]] value_view component(std::size_t n) const noexcept;
  // Subcomponents of the first component of the first repetition (1-based).
  [[nodiscard]] std::size_t subcomponent_count() const noexcept;  // >= 1
  [[nodiscard]] value_view subcomponent(std::size_t n) const noexcept;

  // Escapes decoded (bytes; see header comment). A `\` with no closing `\` is kept literally.
  [[nodiscard]] std::string decode() const;
  [[nodiscard]] const delimiters& delims() const noexcept { return d_; }

 private:
  std::string_view raw_;
  delimiters d_;
  bool literal_ = false;
};

class segment_view {
 public:
  segment_view() = default;
  segment_view(std::string_view raw, const delimiters& d) noexcept : raw_(raw), d_(d) {}

  [[nodiscard]] std::string_view raw() const noexcept { return raw_; }  // without terminator
  [[nodiscard]] std::string_view name() const noexcept;  // text before the first field separator
  [[nodiscard]] bool is(std::string_view segment_name) const noexcept {
    return name() == segment_name;
  }
  // Highest field number present (MSH counts MSH-1 as a field).
  [[nodiscard]] std::size_t field_count() const noexcept;
  [[nodiscard]] value_view field(std::size_t n) const noexcept;  // empty when absent

 private:
  std::string_view raw_;
  delimiters d_;
};

struct message_limits {
  std::size_t max_segments = 100000;
};

class message {
 public:
  [[nodiscard]] const delimiters& delims() const noexcept { return delims_; }
  [[nodiscard]] std::string_view text() const noexcept { return text_; }
  [[nodiscard]] std::size_t segment_count() const noexcept { return segments_.size(); }
  [[nodiscard]] const std::vector<segment_view>& segments() const noexcept { return segments_; }
  [[nodiscard]] const segment_view& segment(std::size_t i) const noexcept { return segments_[i]; }
  // Byte offset of segment i within text().
  [[nodiscard]] std::size_t segment_offset(std::size_t i) const noexcept { return offsets_[i]; }
  // MSH (segment 0); only call after a successful parse_message.
  [[nodiscard]] const segment_view& msh() const noexcept { return segments_.front(); }
  // Index of the first segment named `name` at or after `from`.
  [[nodiscard]] std::optional<std::size_t> find(std::string_view name,
                                                std::size_t from = 0) const noexcept;
  // True when segments ended with a lone LF (no CR anywhere in the text).
  [[nodiscard]] bool lf_terminated() const noexcept { return lf_only_; }

 private:
  friend std::error_code parse_message(std::string_view, message&, message_limits);
  std::string_view text_;
  delimiters delims_;
  std::vector<segment_view> segments_;
  std::vector<std::size_t> offsets_;
  bool lf_only_ = false;
};

// Splits `text` into segments and reads the delimiters from MSH. On error `out` holds the
// segments found so far (possibly none). Leading CR / LF / spaces before MSH are skipped.
// Throws only std::bad_alloc.
[[nodiscard]] std::error_code parse_message(std::string_view text, message& out,
                                            message_limits limits = {});

// Splits text holding unframed messages one after another (capture files, `mllp_send --loose`
// input) at every segment that starts with `MSH` followed by a non-alphanumeric character.
// Each view covers one message including its segment terminators; text before the first MSH
// is dropped. Views point into `text`.
[[nodiscard]] std::vector<std::string_view> split_unframed(std::string_view text);

// Applies HL7 escapes to `value` so it can be written as one component: the delimiters and the
// escape character become \F\ \S\ \T\ \R\ \E\; CR / LF become \X0D\ / \X0A\.
[[nodiscard]] std::string escape(std::string_view value, const delimiters& d);

}  // namespace interfaced::hl7

template <>
struct std::is_error_code_enum<interfaced::hl7::message_error> : std::true_type {};
