#include "parsers/hl7/message.hpp"

#include <algorithm>
#include <string>

namespace interfaced::hl7 {

namespace {

class message_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "hl7.message"; }
  std::string message(int ev) const override {
    switch (static_cast<message_error>(ev)) {
      case message_error::ok:
        return "ok";
      case message_error::empty:
        return "empty HL7 message";
      case message_error::no_msh:
        return "HL7 message does not start with an MSH segment";
      case message_error::bad_delimiters:
        return "MSH-1/MSH-2 delimiters missing or invalid";
      case message_error::too_many_segments:
        return "HL7 message has too many segments";
    }
    return "unknown HL7 message error";
  }
};

// Piece n (0-based) of `s` split on `sep`; empty when absent. sep == '\0': not declared, no split.
// memchr (find), not a byte loop: the loop took fewer instructions but the view-only figure of
// bench_hl7 on ../shared fell from 527-786 to 399-645 MB/s (a long field, an ED histogram's
// base64, is scanned far faster by memchr); normalise reads OBX fields from its own split.
std::string_view piece(std::string_view s, char sep, std::size_t n) noexcept {
  if (sep == '\0') return n == 0 ? s : std::string_view{};
  std::size_t begin = 0;
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t p = s.find(sep, begin);
    if (p == std::string_view::npos) return {};
    begin = p + 1;
  }
  const std::size_t end = s.find(sep, begin);
  return s.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin);
}

std::size_t count(std::string_view s, char sep) noexcept {
  if (sep == '\0') return 1;
  std::size_t c = 1;
  for (char ch : s) c += (ch == sep) ? 1u : 0u;
  return c;
}

bool is_alnum(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

// Segments whose field 1 is the field separator itself (HL7 2.5 ch. 2.14: MSH, FHS, BHS).
bool is_header_segment(std::string_view name) noexcept {
  return name == "MSH" || name == "FHS" || name == "BHS";
}

}  // namespace

const std::error_category& message_category() noexcept {
  static const message_category_impl instance;
  return instance;
}

std::error_code make_error_code(message_error e) noexcept {
  return {static_cast<int>(e), message_category()};
}

std::error_code detect_delimiters(std::string_view msh, delimiters& out) noexcept {
  if (msh.size() < 3 || msh.substr(0, 3) != "MSH") return message_error::no_msh;
  if (msh.size() < 5) return message_error::bad_delimiters;
  delimiters d;
  d.field = msh[3];
  auto bad = [&](char c) { return c == '\0' || c == '\r' || c == '\n' || c == ' ' || is_alnum(c); };
  if (bad(d.field)) return message_error::bad_delimiters;
  std::string_view enc = msh.substr(4);
  enc = enc.substr(0, enc.find(d.field));
  // 2.7 adds a fifth (truncation) character; it has no meaning for splitting.
  if (enc.empty() || enc.size() > 5) return message_error::bad_delimiters;
  char* slots[4] = {&d.component, &d.repetition, &d.escape, &d.subcomponent};
  for (std::size_t i = 0; i < 4; ++i) *slots[i] = i < enc.size() ? enc[i] : '\0';
  for (std::size_t i = 0; i < enc.size(); ++i) {
    if (bad(enc[i]) || enc[i] == d.field) return message_error::bad_delimiters;
    for (std::size_t j = i + 1; j < enc.size(); ++j) {
      if (enc[i] == enc[j]) return message_error::bad_delimiters;
    }
  }
  out = d;
  return {};
}

// ---- value_view ----

std::size_t value_view::repetition_count() const noexcept {
  return literal_ ? 1 : count(raw_, d_.repetition);
}

value_view value_view::repetition(std::size_t i) const noexcept {
  if (literal_) return i == 0 ? *this : value_view{};
  return {piece(raw_, d_.repetition, i), d_};
}

std::size_t value_view::component_count() const noexcept {
  if (literal_) return 1;
  return count(piece(raw_, d_.repetition, 0), d_.component);
}

value_view value_view::component(std::size_t n) const noexcept {
  if (n == 0) return {};
  if (literal_) return n == 1 ? *this : value_view{};
  if (d_.repetition == '\0' || d_.component == '\0')
    return {piece(piece(raw_, d_.repetition, 0), d_.component, n - 1), d_};
  // Component n of the first repetition in one pass (a result reads ten components; two passes
  // each, repetition then component, were a fifth of normalise on OBX-dense messages).
  const char* p = raw_.data();
  const char* const end = p + raw_.size();
  const char* start = p;
  std::size_t k = 1;
  for (; p != end && *p != d_.repetition; ++p) {
    if (*p != d_.component) continue;
    if (k == n) break;
    ++k;
    start = p + 1;
  }
  if (k != n) return {std::string_view{}, d_};
  return {std::string_view(start, static_cast<std::size_t>(p - start)), d_};
}

std::size_t value_view::subcomponent_count() const noexcept {
  if (literal_) return 1;
  return count(component(1).raw_, d_.subcomponent);
}

value_view value_view::subcomponent(std::size_t n) const noexcept {
  if (n == 0) return {};
  if (literal_) return n == 1 ? *this : value_view{};
  return {piece(component(1).raw_, d_.subcomponent, n - 1), d_};
}

std::string value_view::decode() const {
  std::string out;
  if (literal_ || d_.escape == '\0' || raw_.find(d_.escape) == std::string_view::npos) {
    out.assign(raw_);
    return out;
  }
  out.reserve(raw_.size());
  const char e = d_.escape;
  std::size_t i = 0;
  while (i < raw_.size()) {
    const char c = raw_[i];
    if (c != e) {
      out.push_back(c);
      ++i;
      continue;
    }
    const std::size_t close = raw_.find(e, i + 1);
    if (close == std::string_view::npos) {  // unterminated: keep literally
      out.append(raw_.substr(i));
      break;
    }
    const std::string_view seq = raw_.substr(i + 1, close - i - 1);
    char mapped = '\0';
    if (seq == "F")
      mapped = d_.field;
    else if (seq == "S")
      mapped = d_.component;
    else if (seq == "T")
      mapped = d_.subcomponent;
    else if (seq == "R")
      mapped = d_.repetition;
    else if (seq == "E")
      mapped = d_.escape;
    if (mapped != '\0') {
      out.push_back(mapped);
    } else {
      // \Xhh\ (charset-dependent bytes), \Zxx\ (vendor), \.br\ and \H\ \N\ (formatting) are
      // the receiver's business: passed through as sent.
      out.append(raw_.substr(i, close - i + 1));
    }
    i = close + 1;
  }
  return out;
}

// ---- segment_view ----

std::string_view segment_view::name() const noexcept {
  // A byte loop: names are three bytes, and a memchr call cost several times that for every
  // segment of every message (normalise asks each segment's name twice).
  std::size_t n = 0;
  while (n < raw_.size() && raw_[n] != d_.field) ++n;
  return raw_.substr(0, n);
}

std::size_t segment_view::field_count() const noexcept {
  const std::size_t pieces = count(raw_, d_.field);
  return is_header_segment(name()) ? pieces : pieces - 1;
}

value_view segment_view::field(std::size_t n) const noexcept {
  if (n == 0) return {name(), d_, true};
  if (is_header_segment(name())) {
    if (n == 1) return {raw_.size() > 3 ? raw_.substr(3, 1) : std::string_view{}, d_, true};
    if (n == 2) return {piece(raw_, d_.field, 1), d_, true};
    return {piece(raw_, d_.field, n - 1), d_};
  }
  return {piece(raw_, d_.field, n), d_};
}

// ---- message ----

std::optional<std::size_t> message::find(std::string_view name, std::size_t from) const noexcept {
  for (std::size_t i = from; i < segments_.size(); ++i) {
    if (segments_[i].name() == name) return i;
  }
  return std::nullopt;
}

std::error_code parse_message(std::string_view text, message& out, message_limits limits) {
  out = message{};
  out.text_ = text;
  out.lf_only_ = text.find('\r') == std::string_view::npos;
  const char term = out.lf_only_ ? '\n' : '\r';

  std::size_t pos = 0;
  while (pos < text.size() &&
         (text[pos] == '\r' || text[pos] == '\n' || text[pos] == ' ' || text[pos] == '\t')) {
    ++pos;
  }
  if (pos >= text.size()) return message_error::empty;

  // MSH first: the delimiters are needed before any segment view can be made.
  std::size_t end = text.find(term, pos);
  std::string_view first = text.substr(pos, end == std::string_view::npos ? end : end - pos);
  if (std::error_code ec = detect_delimiters(first, out.delims_)) return ec;
  // Room for the segments guessed from the size (a segment is rarely under 32 bytes), at most
  // 256: growing both vectors from empty was a dozen allocations and copies per message,
  // ~50 instructions a result on OBX-dense messages (callgrind, bench_hl7).
  const std::size_t guess = std::min<std::size_t>(text.size() / 32 + 4, 256);
  out.segments_.reserve(std::min(guess, limits.max_segments));
  out.offsets_.reserve(std::min(guess, limits.max_segments));

  while (pos < text.size()) {
    end = text.find(term, pos);
    const std::size_t stop = end == std::string_view::npos ? text.size() : end;
    if (stop > pos) {
      if (out.segments_.size() >= limits.max_segments) return message_error::too_many_segments;
      out.segments_.emplace_back(text.substr(pos, stop - pos), out.delims_);
      out.offsets_.push_back(pos);
    }
    pos = stop + 1;
    // CR LF: the LF belongs to the terminator.
    if (!out.lf_only_ && pos < text.size() && text[pos] == '\n') ++pos;
  }
  return {};
}

std::vector<std::string_view> split_unframed(std::string_view text) {
  std::vector<std::size_t> starts;
  for (std::size_t pos = 0; pos + 3 < text.size(); ++pos) {
    const bool line_start = pos == 0 || text[pos - 1] == '\r' || text[pos - 1] == '\n';
    if (line_start && text.substr(pos, 3) == "MSH" && !is_alnum(text[pos + 3]) &&
        text[pos + 3] != '\r' && text[pos + 3] != '\n') {
      starts.push_back(pos);
    }
  }
  std::vector<std::string_view> out;
  for (std::size_t i = 0; i < starts.size(); ++i) {
    const std::size_t end = i + 1 < starts.size() ? starts[i + 1] : text.size();
    out.push_back(text.substr(starts[i], end - starts[i]));
  }
  return out;
}

std::string escape(std::string_view value, const delimiters& d) {
  std::string out;
  out.reserve(value.size());
  auto put_escape = [&](std::string_view code) {
    if (d.escape == '\0') {
      out.push_back(' ');  // no escape character declared: nothing better than a blank
      return;
    }
    out.push_back(d.escape);
    out.append(code);
    out.push_back(d.escape);
  };
  for (char c : value) {
    if (c == d.field)
      put_escape("F");
    else if (c != '\0' && c == d.component)
      put_escape("S");
    else if (c != '\0' && c == d.subcomponent)
      put_escape("T");
    else if (c != '\0' && c == d.repetition)
      put_escape("R");
    else if (c != '\0' && c == d.escape)
      put_escape("E");
    else if (c == '\r')
      put_escape("X0D");
    else if (c == '\n')
      put_escape("X0A");
    else
      out.push_back(c);
  }
  return out;
}

}  // namespace interfaced::hl7
