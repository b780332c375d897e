#pragma once
// Writes HL7 v2 segments with a given set of delimiters: values are escaped, raw pieces (copied
// from a received message that uses the same delimiters) are not. Every segment ends with CR
// (HL7 2.5 ch. 2.5.2: the segment terminator is always CR). Pure; owns its output.

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>

#include "parsers/hl7/message.hpp"

namespace interfaced::hl7 {

class segment_writer {
 public:
  explicit segment_writer(delimiters d = {}) : d_(d) {}

  // Starts "MSH|^~\&"; the next field written is MSH-3.
  segment_writer& msh();
  segment_writer& begin(std::string_view name);
  segment_writer& field(std::string_view value);  // escaped
  segment_writer& raw(std::string_view raw);      // already delimited, written as is
  // Components, each escaped, joined with the component separator; trailing empty ones dropped.
  segment_writer& components(std::initializer_list<std::string_view> parts);
  // Ends the segment with CR. Trailing empty fields are dropped, then the segment is padded with
  // empty fields up to `min_fields` (vendor templates such as Mindray's `...|0|`).
  segment_writer& end(std::size_t min_fields = 0);

  [[nodiscard]] const std::string& text() const noexcept { return out_; }
  [[nodiscard]] std::string take() { return std::move(out_); }
  [[nodiscard]] const delimiters& delims() const noexcept { return d_; }

 private:
  delimiters d_;
  std::string out_;
  std::size_t segment_start_ = 0;
  std::size_t fields_ = 0;         // fields written in the current segment (MSH counts MSH-1/2)
  std::size_t last_nonempty_ = 0;  // out_ size after the last non-empty field
  std::size_t last_nonempty_fields_ = 0;
};

}  // namespace interfaced::hl7
