#include "parsers/hl7/writer.hpp"

namespace interfaced::hl7 {

segment_writer& segment_writer::begin(std::string_view name) {
  segment_start_ = out_.size();
  out_.append(name);
  fields_ = 0;
  last_nonempty_ = out_.size();
  last_nonempty_fields_ = 0;
  return *this;
}

segment_writer& segment_writer::msh() {
  begin("MSH");
  out_.push_back(d_.field);
  for (char c : {d_.component, d_.repetition, d_.escape, d_.subcomponent}) {
    if (c != '\0') out_.push_back(c);
  }
  fields_ = 2;
  last_nonempty_ = out_.size();
  last_nonempty_fields_ = 2;
  return *this;
}

segment_writer& segment_writer::raw(std::string_view raw) {
  out_.push_back(d_.field);
  out_.append(raw);
  ++fields_;
  if (!raw.empty()) {
    last_nonempty_ = out_.size();
    last_nonempty_fields_ = fields_;
  }
  return *this;
}

segment_writer& segment_writer::field(std::string_view value) { return raw(escape(value, d_)); }

segment_writer& segment_writer::components(std::initializer_list<std::string_view> parts) {
  std::size_t n = parts.size();
  const std::string_view* p = parts.begin();
  while (n > 0 && p[n - 1].empty()) --n;
  std::string joined;
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) joined.push_back(d_.component);
    joined += escape(p[i], d_);
  }
  return raw(joined);
}

segment_writer& segment_writer::end(std::size_t min_fields) {
  out_.resize(last_nonempty_);
  for (std::size_t f = last_nonempty_fields_; f < min_fields; ++f) out_.push_back(d_.field);
  out_.push_back('\r');
  return *this;
}

}  // namespace interfaced::hl7
