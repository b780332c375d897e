#include "parsers/astm/records.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <string>

#include "parsers/text.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace interfaced::astm {

namespace {

class record_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "astm.records"; }
  std::string message(int ev) const override {
    switch (static_cast<record_error>(ev)) {
      case record_error::ok:
        return "ok";
      case record_error::no_header:
        return "message does not start with an H record";
      case record_error::bad_delimiters:
        return "H record delimiters missing, repeated or CR/LF";
      case record_error::empty_record:
        return "record has no type";
      case record_error::unknown_record_type:
        return "unknown record type";
      case record_error::bad_escape:
        return "malformed escape sequence";
      case record_error::out_of_order:
        return "record out of hierarchy order";
      case record_error::too_many_records:
        return "too many records in message";
      case record_error::not_text:
        return "byte not allowed in record text (LIS02 5.1)";
      case record_error::lenient_delimiters:
        return "H record delimiters accepted by a leniency";
    }
    return "unknown astm record error";
  }
};

constexpr char upper(char c) noexcept {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

// LIS02-A2 5.1: allowed are 7, 9, 11, 12, 13, 32-126 and 128-254. CR and LF never reach this
// check because they end records.
constexpr bool allowed_byte(unsigned char b) noexcept {
  if (b == 7 || b == 9 || b == 11 || b == 12 || b == 13) return true;
  if (b >= 32 && b <= 126) return true;
  return b >= 128 && b <= 254;
}

// allowed_byte as a table: this test runs on every byte of every record (a branch chain per byte
// was 12 instructions a byte of parse_message's own cost in bench_astm).
constexpr std::array<bool, 256> allowed_bytes = [] {
  std::array<bool, 256> t{};
  for (unsigned b = 0; b < 256; ++b) t[b] = allowed_byte(static_cast<unsigned char>(b));
  return t;
}();

constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// The i-th (0-based) piece of `s` split on `sep`; empty when absent.
// One pass over the bytes: pieces are a few bytes long, so a memchr call per piece (find) cost more
// than the bytes it skipped (callgrind, bench_astm: nth_piece 26 % of all instructions).
// Eight bytes a step on little-endian targets (sixteen first where SSE2 is there): a word without a
// separator costs one test, and only the separators are visited, one set bit at a time
// (record_view::field walks up to a dozen fields of every O and H record a result reads: the byte
// loop was ~180 instructions a call, 0.1 M of 2.8 M per pass of bench_astm).
std::string_view nth_piece(std::string_view s, char sep, std::size_t i) noexcept {
  const char* p = s.data();
  const char* const end = p + s.size();
  std::size_t k = 0;
  // Whole blocks first, then the byte loop below finishes what is left (the only loop on other
  // targets). (Separators counted one set bit at a time: std::popcount is no single instruction
  // on the x86-64 baseline, and made this slower than the byte loop.)
  if constexpr (std::endian::native == std::endian::little) {
#if defined(__SSE2__)
    // A compare and a byte mask per block of sixteen.
    {
      const __m128i s16 = _mm_set1_epi8(sep);
      for (; k < i && end - p >= 16; p += 16) {
        for (auto m = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), s16)));
             m != 0; m &= m - 1) {
          if (++k == i) {
            p += std::countr_zero(m) + 1;
            break;
          }
        }
        if (k == i) break;
      }
    }
#endif
    for (; k < i && end - p >= 8; p += 8) {
      for (std::uint64_t m = swar::equal_bytes(swar::load(p), sep); m != 0; m &= m - 1) {
        if (++k == i) {
          p += (std::countr_zero(m) >> 3) + 1;
          break;
        }
      }
      if (k == i) break;
    }
  }
  for (; k < i; ++p) {
    if (p == end) return {};
    if (*p == sep) ++k;
  }
  const char* q = p;
  if constexpr (std::endian::native == std::endian::little) {
#if defined(__SSE2__)
    for (; end - q >= 16; q += 16) {
      const auto m = static_cast<unsigned>(
          _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)), _mm_set1_epi8(sep))));
      if (m != 0) return {p, static_cast<std::size_t>(q + std::countr_zero(m) - p)};
    }
#endif
    for (; end - q >= 8; q += 8) {
      if (const std::uint64_t m = swar::equal_bytes(swar::load(q), sep); m != 0) {
        q += std::countr_zero(m) >> 3;
        return {p, static_cast<std::size_t>(q - p)};
      }
    }
  }
  while (q != end && *q != sep) ++q;
  return {p, static_cast<std::size_t>(q - p)};
}

// End of the record starting at `pos`: the first CR or LF at or after it, else text.size().
std::size_t end_of_record(std::string_view text, std::size_t pos) noexcept {
  return find_line_end(text, pos);
}

std::size_t count_pieces(std::string_view s, char sep) noexcept {
  std::size_t n = 1;
  for (const char c : s) n += (c == sep) ? 1U : 0U;
  return n;
}

enum class escape_kind { literal, delimiter, hex, dropped };

// Classifies the text between two escape characters (LIS02 5.4.5.1). `out` receives the
// delimiter for F S R E.
escape_kind classify_escape(std::string_view body, const delimiters& d, char& out) noexcept {
  if (body.empty()) return escape_kind::literal;
  if (body.size() == 1) {
    switch (body[0]) {
      case 'F':
        out = d.field;
        return escape_kind::delimiter;
      case 'S':
        out = d.component;
        return escape_kind::delimiter;
      case 'R':
        out = d.repeat;
        return escape_kind::delimiter;
      case 'E':
        out = d.escape;
        return escape_kind::delimiter;
      case 'H':
      case 'N':
        return escape_kind::dropped;  // highlighting: meaning ignored, markers removed
      case 'Z':
        return escape_kind::dropped;  // manufacturer-defined, no data
      default:
        return escape_kind::literal;
    }
  }
  if (body[0] == 'X') {
    for (std::size_t i = 1; i < body.size(); ++i) {
      if (hex_value(body[i]) < 0) return escape_kind::literal;
    }
    return escape_kind::hex;
  }
  if (body[0] == 'Z') return escape_kind::dropped;  // manufacturer-defined: no meaning we know
  return escape_kind::literal;
}

void append_hex(std::string& out, std::string_view digits) {
  // "&XA&" is LF per the standard's example, so an odd count puts the lone digit first.
  std::size_t i = 0;
  if (digits.size() % 2 == 1) {
    out.push_back(static_cast<char>(hex_value(digits[0])));
    i = 1;
  }
  for (; i + 1 < digits.size(); i += 2) {
    out.push_back(static_cast<char>((hex_value(digits[i]) << 4) | hex_value(digits[i + 1])));
  }
}

}  // namespace

const std::error_category& record_category() noexcept {
  static const record_category_impl cat;
  return cat;
}

std::error_code make_error_code(record_error e) noexcept {
  return {static_cast<int>(e), record_category()};
}

bool valid_delimiters(const delimiters& d) noexcept {
  const std::array<char, 4> c{d.field, d.repeat, d.component, d.escape};
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (c[i] == '\r' || c[i] == '\n') return false;
    if ((c[i] >= '0' && c[i] <= '9') || (upper(c[i]) >= 'A' && upper(c[i]) <= 'Z')) return false;
    for (std::size_t j = i + 1; j < c.size(); ++j) {
      if (c[i] == c[j]) return false;
    }
  }
  return true;
}

namespace {

std::error_code detect_impl(std::string_view h, delimiters& out, bool lenient,
                            bool* doubled) noexcept {
  if (h.empty() || upper(h[0]) != 'H') return record_error::no_header;
  if (h.size() < 5) return record_error::bad_delimiters;
  delimiters d{h[1], h[2], h[3], h[4]};
  // LIS02 H record: after the escape character comes the field delimiter (or, for a bare header,
  // the end of the record).
  const bool layout_ok = h.size() == 5 || h[5] == d.field;
  if (valid_delimiters(d) && layout_ok) {
    out = d;
    return {};
  }
  // Leniency for captures/astm/horiba-yumizen_h550-qc-result-records.astm: `H|\\^&|` (the repeat
  // character doubled, probably copied out of a source-code string). Taking it literally would
  // make `\` both repeat and component; skipping the second one gives the default set.
  if (lenient && h.size() >= 6 && h[3] == h[2]) {
    const delimiters skipped{h[1], h[2], h[4], h[5]};
    const bool skipped_layout_ok = h.size() == 6 || h[6] == skipped.field;
    if (valid_delimiters(skipped) && skipped_layout_ok) {
      out = skipped;
      if (doubled != nullptr) *doubled = true;
      return {};
    }
  }
  return record_error::bad_delimiters;
}

}  // namespace

std::error_code detect_delimiters(std::string_view h_record, delimiters& out) noexcept {
  return detect_impl(h_record, out, false, nullptr);
}

std::error_code detect_delimiters_lenient(std::string_view h_record, delimiters& out,
                                          bool* doubled_repeat) noexcept {
  return detect_impl(h_record, out, true, doubled_repeat);
}

int record_level(char type) noexcept {
  switch (upper(type)) {
    case 'H':
    case 'L':
      return 0;
    case 'P':
    case 'Q':
    case 'S':
      return 1;
    case 'O':
      return 2;
    case 'R':
      return 3;
    default:
      return -1;
  }
}

// ---- field_view ----

std::size_t field_view::repeat_count() const noexcept { return count_pieces(raw_, d_.repeat); }

field_view field_view::repeat(std::size_t i) const noexcept {
  return {nth_piece(raw_, d_.repeat, i), d_};
}

std::size_t field_view::component_count() const noexcept {
  return count_pieces(nth_piece(raw_, d_.repeat, 0), d_.component);
}

field_view field_view::component(std::size_t i) const noexcept {
  if (i == 0) return {std::string_view{}, d_};
  // Component i of the first repeat in one pass, stopping at the first repeat delimiter (before:
  // a pass for the repeat, then one for the component; normalise reads `.repeat(0).component(1)`
  // of half a dozen fields per result).
  const char* p = raw_.data();
  const char* const end = p + raw_.size();
  const char* start = p;
  std::size_t k = 1;
  for (; p != end && *p != d_.repeat; ++p) {
    if (*p != d_.component) continue;
    if (k == i) break;
    ++k;
    start = p + 1;
  }
  if (k != i) return {std::string_view{}, d_};
  return {std::string_view(start, static_cast<std::size_t>(p - start)), d_};
}

std::string field_view::decode() const { return decode_escapes(raw_, d_); }

std::string decode_escapes(std::string_view raw, const delimiters& d) {
  std::string out;
  out.reserve(raw.size());
  std::size_t i = 0;
  while (i < raw.size()) {
    const char c = raw[i];
    if (c != d.escape) {
      out.push_back(c);
      ++i;
      continue;
    }
    const auto close = raw.find(d.escape, i + 1);
    if (close == std::string_view::npos) {  // unterminated: the rest is literal
      out.append(raw.substr(i));
      break;
    }
    const auto body = raw.substr(i + 1, close - i - 1);
    char delim = 0;
    switch (classify_escape(body, d, delim)) {
      case escape_kind::delimiter:
        out.push_back(delim);
        i = close + 1;
        break;
      case escape_kind::hex:
        append_hex(out, body.substr(1));
        i = close + 1;
        break;
      case escape_kind::dropped:
        i = close + 1;
        break;
      case escape_kind::literal:
        // Not a sequence: keep this escape character and rescan from the next byte, so the
        // closing one may still open a real sequence ("a & b &F& c"). No nesting (5.4.5.1).
        out.push_back(c);
        ++i;
        break;
    }
  }
  return out;
}

bool has_bad_escape(std::string_view raw, const delimiters& d) noexcept {
  std::size_t i = 0;
  while (i < raw.size()) {
    if (raw[i] != d.escape) {
      ++i;
      continue;
    }
    const auto close = raw.find(d.escape, i + 1);
    if (close == std::string_view::npos) return true;
    char delim = 0;
    if (classify_escape(raw.substr(i + 1, close - i - 1), d, delim) == escape_kind::literal)
      return true;
    i = close + 1;
  }
  return false;
}

// ---- record_view ----

char record_view::type() const noexcept { return raw_.empty() ? '\0' : upper(raw_[0]); }

std::size_t record_view::field_count() const noexcept {
  return raw_.empty() ? 0 : count_pieces(raw_, d_.field);
}

field_view record_view::field(std::size_t n) const noexcept {
  if (n == 0) return {std::string_view{}, d_};
  return {nth_piece(raw_, d_.field, n - 1), d_};
}

// ---- parse_message ----

namespace {

void add(message& m, record_error e, std::size_t index, std::size_t offset, std::string detail) {
  m.diagnostics.push_back(record_diagnostic{make_error_code(e), index, offset, std::move(detail)});
}

// Tracks the LIS02 hierarchy: the type of the open record at each level (0 = none).
struct hierarchy {
  std::array<char, 4> open{};  // open[1] P/Q/S, open[2] O, open[3] R
  bool header = false;
  bool terminated = false;
  bool any = false;  // a record precedes (for C / M)

  // Returns an empty string when the record fits, else what was expected.
  std::string accept(char t, std::size_t index) {
    std::string problem;
    if (terminated) {
      problem = "record after the L record (several messages? see split_messages)";
    } else if (t == 'H') {
      if (index != 1) problem = "H record inside a message (several messages? see split_messages)";
    } else if (!header) {
      problem = "record before the H record";
    } else if (t == 'O' && open[1] != 'P') {
      problem = "O record without a preceding P record";
    } else if (t == 'R' && open[2] != 'O') {
      problem = "R record without a preceding O record";
    } else if ((t == 'C' || t == 'M') && !any) {
      problem = "C/M record with no preceding record";
    }
    // The record is kept whatever the verdict, so the state follows it.
    any = true;
    const int level = record_level(t);
    if (t == 'H') {
      header = true;
      open = {};
    } else if (t == 'L') {
      terminated = true;
      open = {};
    } else if (level > 0) {
      const auto l = static_cast<std::size_t>(level);
      open[l] = t;
      for (std::size_t k = l + 1; k < open.size(); ++k) open[k] = 0;  // same or higher level closes
    }
    return problem;
  }
};

constexpr bool known_type(char t) noexcept {
  switch (t) {
    case 'H':
    case 'P':
    case 'O':
    case 'R':
    case 'C':
    case 'Q':
    case 'M':
    case 'S':
    case 'L':
      return true;
    default:
      return false;
  }
}

}  // namespace

message parse_message(std::string_view text, message_limits limits) {
  message m;
  // Room for the records made once (growing two vectors record by record was a fifth of the
  // allocations of bench_astm): the median record of the captures is 55 bytes, a quarter are
  // under 36, so one per 32 bytes rarely grows; bounded, so a large message starts at 1,024
  // records and grows from there.
  const std::size_t expected_records = std::min<std::size_t>(text.size() / 32 + 4, 1024);
  m.records.reserve(expected_records);
  m.offsets.reserve(expected_records);
  hierarchy h;
  bool delimiters_set = false;
  std::size_t pos = 0;
  while (pos < text.size()) {
    // Records end at CR (LIS02 5.4.1); records-only input from some analysers uses LF or CR LF.
    // One pass finds the end and the first byte LIS02 5.1 disallows: printable ASCII, nearly
    // every byte, is skipped eight at a time (before: a pass for the end, then one for the
    // bytes, each a byte at a time).
    std::size_t stop = pos;
    std::size_t disallowed = std::string_view::npos;
    for (;;) {
      stop = skip_printable(text, stop);
      if (stop == text.size()) break;
      const auto b = static_cast<unsigned char>(text[stop]);
      if (b == '\r' || b == '\n') break;
      if (disallowed == std::string_view::npos && !allowed_bytes[b]) disallowed = stop;
      m.printable_ascii = false;
      ++stop;
    }
    const auto raw = text.substr(pos, stop - pos);
    const std::size_t offset = pos;
    pos = stop == text.size() ? stop : stop + 1;
    if (raw.empty()) continue;  // blank line, or the LF of CR LF

    const std::size_t index = m.records.size() + 1;
    if (m.records.size() >= limits.max_records) {
      add(m, record_error::too_many_records, index, offset,
          "more than " + std::to_string(limits.max_records) + " records");
      break;
    }

    bool defines_delimiters = false;  // this record's H.2 gave the delimiters
    if (!delimiters_set) {
      delimiters_set = true;  // only the first record may define them
      if (upper(raw[0]) != 'H') {
        add(m, record_error::no_header, index, offset,
            "first record must be H; default delimiters used");
      } else {
        bool doubled = false;
        const auto ec = detect_delimiters_lenient(raw, m.delims, &doubled);
        if (ec) {
          add(m, record_error::bad_delimiters, index, offset,
              "H.2 must hold four distinct delimiters then the field delimiter; default delimiters "
              "used");
        } else if (doubled) {
          add(m, record_error::lenient_delimiters, index, offset + 3,  // the skipped character
              "doubled repeat delimiter in H.2 skipped (Yumizen H550 capture quirk)");
        }
        defines_delimiters = !ec;
      }
    }

    const record_view rec{raw, m.delims};
    m.records.push_back(rec);
    m.offsets.push_back(offset);

    if (disallowed != std::string_view::npos) {
      add(m, record_error::not_text, index, disallowed,
          "byte " + std::to_string(static_cast<unsigned char>(text[disallowed])) + " not allowed (LIS02 5.1)");
    }

    // The type field is all that matters of field 1: empty, one byte, or longer, read from the
    // record's first two bytes (field(1) walked to the first delimiter for it, a call per record).
    const bool type_field_empty = raw[0] == m.delims.field;
    const bool type_field_one_byte = !type_field_empty && (raw.size() == 1 || raw[1] == m.delims.field);
    const char t = rec.type();
    if (type_field_empty) {
      add(m, record_error::empty_record, index, offset,
          "record type expected before the first field delimiter");
      m.printable_ascii = false;  // (its escapes are not checked)
      continue;
    }
    // An H record's second character *is* its field delimiter, so its type field is one byte
    // by definition even when H.2 is unusable and the defaults split it differently.
    if (t != 'H' && (!type_field_one_byte || !known_type(t))) {
      add(m, record_error::unknown_record_type, index, offset,
          "record type must be one of H P O R C Q M S L");
      m.printable_ascii = false;  // (its escapes are not checked)
      continue;
    }
    if (auto problem = h.accept(t, index); !problem.empty()) {
      add(m, record_error::out_of_order, index, offset, std::move(problem));
    }
    if (t == 'L') m.has_terminator = true;

    // H.2 holds the delimiters themselves, so its escape character is not an escape.
    // Fields walked once, and only in a record holding the escape character at all (before:
    // field(f) for every f, quadratic in the fields of every record).
    const std::size_t first_checked = t == 'H' ? 3 : 2;
    if (m.printable_ascii && raw.find(m.delims.escape) != std::string_view::npos) {
      // The H.2 the delimiters came from holds the escape character as itself: only the fields
      // after it count. (Its layout was checked: H.2 ends at the next field delimiter.)
      const std::size_t after_h2 = defines_delimiters ? std::min(raw.find(m.delims.field, 2), raw.size()) : 0;
      if (raw.find(m.delims.escape, after_h2) != std::string_view::npos) m.printable_ascii = false;
    }
    std::string_view rest = raw;
    for (std::size_t f = 1; !rest.empty() && rest.find(m.delims.escape) != std::string_view::npos; ++f) {
      const std::size_t sep = rest.find(m.delims.field);
      const std::string_view field = rest.substr(0, sep);
      if (f >= first_checked && has_bad_escape(field, m.delims)) {
        add(m, record_error::bad_escape, index, offset + static_cast<std::size_t>(field.data() - raw.data()),
            "field " + std::to_string(f) + ": escape character without a valid sequence; kept literally");
        break;
      }
      if (sep == std::string_view::npos) break;
      rest.remove_prefix(sep + 1);
    }
  }
  return m;
}

std::vector<std::size_t> split_messages(std::string_view text) {
  // Line starts only: each line is skipped in one tight loop to its end (before: every byte went
  // through the line-start test and upper(), 13 instructions a byte in bench_astm).
  std::vector<std::size_t> starts;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '\r' || text[i] == '\n') {
      ++i;
      continue;
    }
    if (text[i] == 'H' || text[i] == 'h') starts.push_back(i);
    i = end_of_record(text, i);
  }
  return starts;
}

// ---- record_writer ----

std::string record_writer::escape(std::string_view value) const {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  const auto seq = [&](char code) {
    out.push_back(d_.escape);
    out.push_back(code);
    out.push_back(d_.escape);
  };
  for (const char c : value) {
    const auto b = static_cast<unsigned char>(c);
    if (c == d_.field) {
      seq('F');
    } else if (c == d_.component) {
      seq('S');
    } else if (c == d_.repeat) {
      seq('R');
    } else if (c == d_.escape) {
      seq('E');
    } else if (b == 13 || !allowed_byte(b)) {
      // CR would end the record; the others are disallowed by LIS02 5.1. Hex keeps the bytes.
      out.push_back(d_.escape);
      out.push_back('X');
      out.push_back(hex[b >> 4]);
      out.push_back(hex[b & 0x0F]);
      out.push_back(d_.escape);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

record_writer& record_writer::begin(char type) {
  if (open_) end();
  record_start_ = out_.size();
  out_.push_back(type);
  open_ = true;
  return *this;
}

record_writer& record_writer::field(std::string_view value) {
  out_.push_back(d_.field);
  out_ += escape(value);
  return *this;
}

record_writer& record_writer::components(const std::vector<std::string>& parts) {
  std::size_t n = parts.size();
  while (n > 1 && parts[n - 1].empty()) --n;
  out_.push_back(d_.field);
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) out_.push_back(d_.component);
    out_ += escape(parts[i]);
  }
  return *this;
}

record_writer& record_writer::repeats(const std::vector<std::vector<std::string>>& reps) {
  out_.push_back(d_.field);
  for (std::size_t r = 0; r < reps.size(); ++r) {
    if (r > 0) out_.push_back(d_.repeat);
    const auto& parts = reps[r];
    std::size_t n = parts.size();
    while (n > 1 && parts[n - 1].empty()) --n;
    for (std::size_t i = 0; i < n; ++i) {
      if (i > 0) out_.push_back(d_.component);
      out_ += escape(parts[i]);
    }
  }
  return *this;
}

record_writer& record_writer::raw_field(std::string_view raw) {
  out_.push_back(d_.field);
  out_ += raw;
  return *this;
}

record_writer& record_writer::end() {
  if (!open_) return *this;
  // LIS02 5.4.7: trailing empty fields may be omitted. Keep the record type (first byte).
  while (out_.size() > record_start_ + 1 && out_.back() == d_.field) out_.pop_back();
  out_.push_back('\r');
  open_ = false;
  return *this;
}

std::string record_writer::take() {
  if (open_) end();
  std::string t = std::move(out_);
  out_.clear();
  record_start_ = 0;
  return t;
}

record_writer& record_writer::header(const std::vector<std::string>& fields_from_3) {
  begin('H');
  out_.push_back(d_.field);
  out_.push_back(d_.repeat);
  out_.push_back(d_.component);
  out_.push_back(d_.escape);
  for (const auto& f : fields_from_3) field(f);
  // end() trims only field delimiters, and H.2 ends with the escape character, so H.2 survives.
  return end();
}

}  // namespace interfaced::astm
