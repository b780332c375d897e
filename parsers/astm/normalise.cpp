#include "parsers/astm/normalise.hpp"

#include "parsers/number.hpp"
#include "parsers/text.hpp"
#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <optional>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace interfaced::astm {
namespace {

// Decoded, transcoded to UTF-8, padding trimmed, appended to `out`: the one way every value
// leaves a record. Appending (not returning a string) lets a code or a value made of several
// components be built in its final string, without a string per component.
void append_text(std::string& out, const field_view& f, text_encoding enc) {
  const std::string_view raw = f.raw();
  if (raw.empty()) return;
  // Plain ASCII without the escape character (nearly every value): decoding and transcoding are
  // the identity (ASCII is the same bytes in Latin-1, Windows-1252 and UTF-8), so the value is
  // copied once instead of through decode's and to_utf8's two buffers, byte by byte.
  if (is_plain_ascii(raw, f.delims().escape)) {
    out += trim_padding(raw);
    return;
  }
  const std::string decoded = f.decode();
  out += to_utf8(trim_padding(decoded), enc);
}

std::string text_of(const field_view& f, text_encoding enc) {
  std::string out;
  append_text(out, f, enc);
  return out;
}

// Appends `sep` then the text of f to out, unless that text is empty (then out is unchanged).
void append_part(std::string& out, char sep, const field_view& f, text_encoding enc) {
  const std::size_t mark = out.size();
  if (mark != 0) out += sep;
  const std::size_t start = out.size();
  append_text(out, f, enc);
  if (out.size() == start) out.resize(mark);
}

// The pieces of `raw` split on `sep`, each given to f(index, piece) (index from 1) in one pass;
// f returns false to stop. field_view::component(i) and repeat(i) walk from the start each time,
// so reading every component of a field that way was quadratic in its components (nth_piece was
// 9 % of all instructions of bench_astm).
// Pieces are a few bytes long, so a byte loop, not a memchr call per piece.
template <typename F>
void for_each_piece(std::string_view raw, char sep, F&& f) {
  const char* p = raw.data();
  const char* const end = p + raw.size();
  std::size_t i = 1;
  for (;;) {
    const char* q = p;
    while (q != end && *q != sep) ++q;
    if (!f(i++, std::string_view(p, static_cast<std::size_t>(q - p)))) return;
    if (q == end) return;
    p = q + 1;
  }
}

// The components of the first repeat of `raw` (as field_view::repeat(0) then split on the
// component delimiter) in one walk, each given to f(index, piece) (index from 1); f returns
// false to stop. repeat(0) walked the whole field to find the repeat, then the split walked it
// again.
template <typename F>
void for_each_component(std::string_view raw, const delimiters& d, F&& f) {
  const char* p = raw.data();
  const char* const end = p + raw.size();
  std::size_t i = 1;
  for (;;) {
    const char* q = p;
    while (q != end && *q != d.component && *q != d.repeat) ++q;
    if (!f(i++, std::string_view(p, static_cast<std::size_t>(q - p)))) return;
    if (q == end || *q == d.repeat) return;
    p = q + 1;
  }
}

// Component 1 of the first repeat (field_view::component(1)), inlined: a result reads five
// fields so, and the call returning a view through memory was ~40 instructions each.
[[gnu::always_inline]] inline field_view first_component(const field_view& f) noexcept {
  const std::string_view raw = f.raw();
  const delimiters& d = f.delims();
  std::size_t n = 0;
  while (n < raw.size() && raw[n] != d.component && raw[n] != d.repeat) ++n;
  return {raw.substr(0, n), d};
}

// (field_view::component(i) is component i of the first repeat: no repeat(0) before it.)
// Component 0, the first non-empty one, in one walk over the first repeat (repeat(0), then
// component_count(), then component(i) for each i walked the field three times and more: value_at,
// which reads every sample id so, was ~0.07 M of 2.63 M instructions per pass of bench_astm).
field_view component_or_first(const field_view& f, int component) {
  if (component > 0) return f.component(static_cast<std::size_t>(component));
  field_view found;
  for_each_component(f.raw(), f.delims(), [&](std::size_t, std::string_view piece) {
    if (trim_padding(piece).empty()) return true;
    found = field_view(piece, f.delims());
    return false;
  });
  return found;
}

// The fields of one record, split once: a result reads some fifteen fields of its R record, and
// record_view::field(n) walks the record from its start each time.
class split_fields {
 public:
  explicit split_fields(const record_view& r) noexcept : rec_(r) {
    // Eight bytes a step, every field separator of a word found from one test of it (a byte loop
    // was ~4 instructions a byte; a memchr call per field cost more than the bytes it skipped,
    // memchr 7 % of bench_astm). The bit of each byte depends on byte order: other targets take
    // the byte loop.
    const std::string_view raw = r.raw();
    const char sep = r.delims().field;
    const char* q = raw.data();
    const char* const end = q + raw.size();
    begin_[0] = q;
    // Ends field n_ at `at`; false when the record holds more fields than held.
    const auto close = [&](const char* at) {
      end_[n_] = at;
      if (++n_ == held) {
        truncated_ = true;  // the rest is read from the record
        return false;
      }
      begin_[n_] = at + 1;
      return true;
    };
#if defined(__SSE2__)
    // Sixteen bytes a step where SSE2 is there: one compare and a byte mask, no bit tricks (an R
    // record is some 50-100 bytes; split_fields was ~0.08 M of 2.55 M instructions per pass of
    // bench_astm eight at a time).
    {
      const __m128i s = _mm_set1_epi8(sep);
      for (; end - q >= 16; q += 16) {
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
        for (auto m = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(x, s))); m != 0; m &= m - 1)
          if (!close(q + std::countr_zero(m))) return;
      }
    }
#endif
    if constexpr (std::endian::native == std::endian::little) {
      for (; end - q >= 8; q += 8) {
        for (std::uint64_t m = swar::equal_bytes(swar::load(q), sep); m != 0; m &= m - 1)
          if (!close(q + (std::countr_zero(m) >> 3))) return;
      }
    }
    for (; q != end; ++q)
      if (*q == sep && !close(q)) return;
    end_[n_] = end;
    ++n_;
  }
  // 1-based, as record_view::field.
  [[nodiscard]] field_view operator()(int n) const noexcept {
    if (n >= 1 && static_cast<std::size_t>(n) <= n_) {
      const auto k = static_cast<std::size_t>(n) - 1;
      return {std::string_view(begin_[k], static_cast<std::size_t>(end_[k] - begin_[k])), rec_.delims()};
    }
    if (n >= 1 && truncated_) return rec_.field(static_cast<std::size_t>(n));
    return {std::string_view{}, rec_.delims()};
  }

 private:
  const record_view& rec_;
  // Where field k + 1 begins and ends, for k < n_ (plain pointers, left uninitialised: an array
  // of twenty views was value-initialised for every R record).
  static constexpr std::size_t held = 20;
  std::array<const char*, held> begin_;
  std::array<const char*, held> end_;
  std::size_t n_ = 0;
  bool truncated_ = false;
};

// The record an option refers to: the H, P, O or R in scope when the result is built.
struct scope {
  record_view h, p, o, r;
  [[nodiscard]] const record_view* pick(char type) const noexcept {
    switch (type) {
      case 'H': return &h;
      case 'P': return &p;
      case 'O': return &o;
      case 'R': return &r;
      default: return nullptr;
    }
  }
};

std::string value_at(const scope& s, const field_ref& ref, text_encoding enc) {
  const record_view* rec = s.pick(ref.record);
  if (rec == nullptr || rec->type() == 0) return {};
  return text_of(component_or_first(rec->field(static_cast<std::size_t>(ref.field)), ref.component),
                 enc);
}

bool matches(const scope& s, const field_match& m, text_encoding enc) {
  const std::string v = value_at(s, m.where, enc);
  if (!m.equals.empty()) return v == m.equals;
  if (!m.prefix.empty()) return v.starts_with(m.prefix);
  return !v.empty();
}

// "^^^^WBC^1" -> WBC; "^^^685/" -> 685 (with the "/" suffix stripped by the profile).
// The components are walked once and each part appended to the code (component(c) per part
// walked the field from its start, and a string per part: test_code was 0.3 M of 4.6 M
// instructions per pass of bench_astm).
// Built in `code`, which is empty (a result's member: no string returned and moved in).
void test_code(std::string& code, const field_view& test_id, const astm_options& o) {
  const delimiters& d = test_id.delims();
  if (!o.code_components.empty()) {
    // The listed components, in the profile's order (which need not be ascending).
    constexpr std::size_t held = 16;
    std::array<const char*, held> begin;  // (set for the first n only: no initialisation)
    std::array<std::size_t, held> size;
    std::size_t n = 0;
    for_each_component(test_id.raw(), d, [&](std::size_t, std::string_view piece) {
      begin[n] = piece.data();
      size[n] = piece.size();
      return ++n < held;
    });
    for (int c : o.code_components) {
      const auto k = static_cast<std::size_t>(c);
      const field_view part = c >= 1 && k <= n ? field_view(std::string_view(begin[k - 1], size[k - 1]), d)
                                               : test_id.component(c > 0 ? k : 0);
      append_part(code, '/', part, o.encoding);
    }
  } else {
    // The whole identity: LIS02-A2 leaves components 4+ to the manufacturer, who puts the
    // analyte (Panther `^^^HPV^AnalyteSCO`), the dilution or the replicate there.
    field_view component1;
    for_each_component(test_id.raw(), d, [&](std::size_t i, std::string_view piece) {
      if (i == 1) component1 = field_view(piece, d);
      if (i < 4 || static_cast<int>(i) == o.result_type_component) return true;
      append_part(code, '^', field_view(piece, d), o.encoding);
      return true;
    });
    if (code.empty()) append_text(code, component1, o.encoding);
  }
  for (const auto& suffix : o.code_strip_suffixes) {
    if (!suffix.empty() && code.size() > suffix.size() && code.ends_with(suffix)) {
      code.resize(code.size() - suffix.size());
    }
  }
}

std::string test_code(const field_view& test_id, const astm_options& o) {
  std::string code;
  test_code(code, test_id, o);
  return code;
}

// A value is "as sent": componented values keep their components ("3+^3+^45") unless only one
// is non-empty ("9.34^^^^" -> "9.34", "^0.0" -> "0.0"). Built in one string in one walk over
// the components (a vector of a string per component before: value_text was 0.2 M of 4.6 M
// instructions per pass of bench_astm).
// Built in `out`, which is empty (the result's member).
void value_text(std::string& out, const field_view& f, const astm_options& o, const delimiters& d) {
  std::size_t pieces = 0;
  std::size_t non_empty = 0;
  std::size_t first_start = 0, first_size = 0;  // the first non-empty part, within out
  std::size_t kept = 0;                          // out up to the end of the last non-empty part
  for_each_component(f.raw(), f.delims(), [&](std::size_t i, std::string_view piece) {
    pieces = i;
    if (i > 1) out += d.component;
    const std::size_t start = out.size();
    // (A value without components is its text, whatever value_flag_component says.)
    const char* const after = piece.data() + piece.size();
    const bool only = i == 1 && (after == f.raw().data() + f.raw().size() || *after == f.delims().repeat);
    if (only || static_cast<int>(i) != o.value_flag_component)
      append_text(out, field_view(piece, f.delims()), o.encoding);
    if (out.size() != start) {
      if (non_empty++ == 0) {
        first_start = start;
        first_size = out.size() - start;
      }
      kept = out.size();
    }
    return true;
  });
  if (pieces == 1) return;
  if (non_empty == 0) {
    out.clear();
  } else if (non_empty == 1) {
    out.erase(0, first_start);
    out.resize(first_size);
  } else {
    out.resize(kept);
  }
}

void add_flags(const field_view& f, text_encoding enc, std::vector<std::string>& out) {
  if (f.empty()) return;
  const delimiters& d = f.delims();
  for_each_piece(f.raw(), d.repeat, [&](std::size_t, std::string_view rep) {
    for_each_piece(rep, d.component, [&](std::size_t, std::string_view component) {
      std::string flag = text_of(field_view(component, d), enc);
      if (!flag.empty()) out.push_back(std::move(flag));
      return true;
    });
    return true;
  });
}

const std::string* companion_label(const astm_options& o, std::string_view type) {
  for (const auto& [t, label] : o.companion_types)
    if (t == type) return &label;
  return nullptr;
}

// Result types of one test (ARCHITECT `F` / `I` / `P`) are one result, not three: each companion
// record joins the result of the same sample, test and O record that has no value of its type
// yet -- the nearest before it, else the nearest after it. A companion with nowhere to go stays a
// result of its own (its result_type keeps it apart from the final value).
void fold_companions(std::vector<result>& results, const std::vector<std::size_t>& scope_of,
                     const astm_options& o) {
  if (o.companion_types.empty()) return;
  std::vector<bool> folded(results.size(), false);
  auto is_companion = [&](const result& r) { return companion_label(o, r.result_type) != nullptr; };
  auto takes = [&](std::size_t j, std::size_t i) {
    const result& p = results[j];
    const result& c = results[i];
    if (folded[j] || is_companion(p) || scope_of[j] != scope_of[i] || p.sample_id != c.sample_id || p.code != c.code)
      return false;
    return std::none_of(p.companions.begin(), p.companions.end(),
                        [&](const companion_value& v) { return v.type == c.result_type; });
  };
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (!is_companion(results[i])) continue;
    std::size_t target = results.size();
    for (std::size_t j = i; j-- > 0;)
      if (takes(j, i)) { target = j; break; }
    for (std::size_t j = i + 1; j < results.size() && target == results.size(); ++j)
      if (takes(j, i)) target = j;
    if (target == results.size()) continue;
    result& c = results[i];
    results[target].companions.push_back(
        {c.result_type, *companion_label(o, c.result_type), std::move(c.value), std::move(c.unit), std::move(c.flags)});
    folded[i] = true;
  }
  std::size_t k = 0;
  for (std::size_t i = 0; i < results.size(); ++i)
    if (!folded[i]) {
      if (k != i) results[k] = std::move(results[i]);
      ++k;
    }
  results.resize(k);
}

}  // namespace


std::string header_sender(const message& m) {
  for (const auto& r : m.records) {
    if (r.type() != 'H') continue;
    // H.5's components in one walk (component(i) for each i walked the field from its start, and
    // a decoded string each: header_sender is read twice per message, for the profile and here).
    const field_view f = r.field(5).repeat(0);
    const delimiters& d = f.delims();
    std::string out;
    for_each_piece(f.raw(), d.component, [&](std::size_t i, std::string_view piece) {
      if (i > 1) out += '^';
      if (piece.find(d.escape) == std::string_view::npos) out += trim_padding(piece);
      else out += trim_padding(decode_escapes(piece, d));
      return true;
    });
    while (!out.empty() && out.back() == '^') out.pop_back();
    return out;
  }
  return {};
}

bool finds_sample_id(const message& m, const astm_options& o, const field_ref& ref,
                     const std::vector<std::size_t>& records) {
  const auto asked = [&](std::size_t record_index) {
    return std::find(records.begin(), records.end(), record_index) != records.end();
  };
  if (!o.companion_types.empty()) {
    // Folding companions compares sample ids, so which results survive depends on them: only
    // the whole normalise says.
    astm_options one = o;
    one.sample_id_from = {ref};
    const astm_batch b = normalise(m, one, "");
    return std::any_of(b.results.begin(), b.results.end(),
                       [&](const result& r) { return !r.sample_id.empty() && asked(r.where.record_index); });
  }
  // Without folding every R record is one result, and its sample id is the value at `ref` in the
  // scope normalise keeps (the same H / P / O bookkeeping).
  scope s;
  for (std::size_t i = 0; i < m.records.size(); ++i) {
    const record_view& rec = m.records[i];
    switch (rec.type()) {
      case 'H':
        s.h = rec;
        break;
      case 'P':
        s.p = rec;
        s.o = {};
        break;
      case 'O':
        s.o = rec;
        break;
      case 'R':
        s.r = rec;
        if (asked(i + 1) && !value_at(s, ref, o.encoding).empty()) return true;
        break;
      default:
        break;
    }
  }
  return false;
}

astm_batch normalise(const message& m, const astm_options& o, std::string_view device) {
  return normalise(m, o, device, header_sender(m));
}

astm_batch normalise(const message& m, const astm_options& o, std::string_view device, std::string sender) {
  astm_batch batch;
  batch.sender = std::move(sender);
  batch.diagnostics = m.diagnostics;
  scope s;
  bool any_result = false;
  std::size_t o_index = 0;                // the O (or P) record in scope
  std::vector<std::size_t> result_scope;  // parallel to batch.results: its O record

  auto read_sample_id = [&]() {
    for (const auto& ref : o.sample_id_from) {
      std::string v = value_at(s, ref, o.encoding);
      if (!v.empty()) return v;
    }
    return std::string{};
  };
  // The sample id and the H / O part of "is QC" come from the H, P and O records in scope: read
  // once per scope, not once per result (unless the profile reads them from the R record itself).
  const auto reads_r = [](const field_ref& ref) { return ref.record == 'R'; };
  const bool sample_id_per_result = std::any_of(o.sample_id_from.begin(), o.sample_id_from.end(), reads_r);
  const bool qc_per_result =
      std::any_of(o.qc_when.begin(), o.qc_when.end(), [&](const field_match& q) { return reads_r(q.where); });
  std::optional<std::string> scope_sample_id;
  int scope_qc = -1;  // -1: not read yet for this scope (an optional<bool> trips GCC 12's -Wmaybe-uninitialized)
  // Written into the result's member (the scope's id copied in, not returned as a copy and moved).
  auto set_sample_id = [&](std::string& out) {
    if (sample_id_per_result) {
      out = read_sample_id();
      return;
    }
    if (!scope_sample_id) scope_sample_id = read_sample_id();
    out = *scope_sample_id;
  };
  auto read_qc = [&]() {
    // O.12 action code Q: "treat specimen as QC"; H.12 processing id Q: "quality control".
    bool qc = (s.o.type() == 'O' && text_of(s.o.field(12), o.encoding) == "Q") ||
              (s.h.type() == 'H' && text_of(s.h.field(12).component(1), o.encoding) == "Q");
    for (const auto& q : o.qc_when) qc = qc || matches(s, q, o.encoding);
    return qc;
  };
  auto is_qc = [&]() {
    if (qc_per_result) return read_qc();
    if (scope_qc < 0) scope_qc = read_qc() ? 1 : 0;
    return scope_qc == 1;
  };
  auto new_scope = [&]() {
    scope_sample_id.reset();
    scope_qc = -1;
  };
  const auto r_records = static_cast<std::size_t>(
      std::count_if(m.records.begin(), m.records.end(), [](const record_view& r) { return r.type() == 'R'; }));
  batch.results.reserve(r_records);
  result_scope.reserve(r_records);  // (grown result by result: ~80 allocations a pass of bench_astm)
  auto where = [&](std::size_t i) {
    source_location w;
    w.record_index = i + 1;
    w.byte_offset = i < m.offsets.size() ? m.offsets[i] : 0;
    return w;
  };

  for (std::size_t i = 0; i < m.records.size(); ++i) {
    const record_view& rec = m.records[i];
    switch (rec.type()) {
      case 'H':
        s.h = rec;
        new_scope();
        break;
      case 'P':
        s.p = rec;
        s.o = {};
        o_index = i;
        new_scope();
        break;
      case 'O':
        s.o = rec;
        o_index = i;
        new_scope();
        break;
      case 'R': {
        const split_fields F(rec);
        s.r = rec;
        any_result = true;
        // Built in place in the room reserved above (moving a finished result in, twenty strings
        // and vectors, was a memcpy per string: result::result(result&&) 1 % of bench_astm).
        result& res = batch.results.emplace_back();
        res.protocol = protocol::astm;
        res.device.append(device);  // (into the empty member: assign() is _M_replace, ~60 instructions)
        set_sample_id(res.sample_id);
        test_code(res.code, F(o.r.test), o);
        if (o.name_component > 0)
          append_text(res.name, F(o.r.test).component(static_cast<std::size_t>(o.name_component)), o.encoding);
        value_text(res.value, F(o.r.value), o, m.delims);
        res.numeric = parse_number(res.value, o.comma_decimal);
        // The texts appended into the new result's empty members (a string returned then moved
        // in, and destroyed, was ~40 instructions a field).
        append_text(res.unit, first_component(F(o.r.unit)), o.encoding);
        if (o.range_components.empty()) {
          append_text(res.reference_range, first_component(F(o.r.range)), o.encoding);
        } else {
          for (int c : o.range_components) {
            std::string part = text_of(F(o.r.range).component(static_cast<std::size_t>(c)), o.encoding);
            if (part.empty()) continue;
            if (!res.reference_range.empty()) res.reference_range += '-';
            res.reference_range += part;
          }
        }
        add_flags(F(o.r.flags), o.encoding, res.flags);
        if (o.value_flag_component > 0) {
          std::string f = text_of(F(o.r.value).component(static_cast<std::size_t>(o.value_flag_component)), o.encoding);
          if (!f.empty()) res.flags.insert(res.flags.begin(), std::move(f));
        }
        const field_view status = F(o.r.status);
        if (!status.empty()) {
          // The first non-empty repetition is the status; the list is made only when a second
          // one comes (a list per result, allocated then cleared, was a malloc and a free for
          // nearly every result).
          std::size_t seen = 0;
          for_each_piece(status.raw(), status.delims().repeat, [&](std::size_t, std::string_view rep) {
            std::string st = text_of(field_view(rep, status.delims()), o.encoding);
            if (st.empty()) return true;
            if (seen++ == 0) {
              res.status = std::move(st);
            } else {
              if (seen == 2) res.statuses.push_back(res.status);
              res.statuses.push_back(std::move(st));
            }
            return true;
          });
        }
        append_text(res.observed_at, first_component(F(o.r.completed)), o.encoding);
        if (res.observed_at.empty()) append_text(res.observed_at, first_component(F(o.r.started)), o.encoding);
        append_text(res.instrument, first_component(F(o.r.instrument)), o.encoding);
        res.qc = is_qc();
        if (res.qc) {
          if (o.qc_material.field > 0) res.qc_material = value_at(s, o.qc_material, o.encoding);
          if (o.qc_lot.field > 0) res.qc_lot = value_at(s, o.qc_lot, o.encoding);
          if (o.qc_level.field > 0) res.qc_level = value_at(s, o.qc_level, o.encoding);
        }
        for (const auto& st : o.rerun_statuses)
          res.rerun_indicator = res.rerun_indicator || res.status == st ||
                                std::find(res.statuses.begin(), res.statuses.end(), st) != res.statuses.end();
        if (o.result_type_component > 0)
          append_text(res.result_type, F(o.r.test).component(static_cast<std::size_t>(o.result_type_component)), o.encoding);
        result_scope.push_back(o_index);
        res.where = where(i);
        break;
      }
      case 'Q': {
        query q;
        q.protocol = protocol::astm;
        q.device = std::string(device);
        const field_view range = rec.field(3);
        for (std::size_t r = 0; r < range.repeat_count(); ++r) {
          const field_view rep = range.repeat(r);
          // Q.3: patientID^specimenID^...; some analysers put the id in the first component.
          std::string id = text_of(rep.component(2), o.encoding);
          if (id.empty()) id = text_of(rep.component(1), o.encoding);
          if (id == "ALL") q.all_samples = true;
          else if (!id.empty()) q.sample_ids.push_back(std::move(id));
        }
        const field_view tests = rec.field(5);
        for (std::size_t r = 0; r < tests.repeat_count(); ++r) {
          std::string t = test_code(tests.repeat(r), o);
          if (t.empty()) t = text_of(tests.repeat(r), o.encoding);
          if (!t.empty()) q.tests.push_back(std::move(t));
        }
        q.status_code = text_of(rec.field(13), o.encoding);
        q.cancel = q.status_code == "A";
        q.where = where(i);
        batch.queries.push_back(std::move(q));
        break;
      }
      default:
        break;
    }
  }

  fold_companions(batch.results, result_scope, o);

  // O records with no results in a message that carries none are an order message (LIS ->
  // instrument download, or a worklist the analyser echoes).
  if (!any_result) {
    scope os;
    for (std::size_t i = 0; i < m.records.size(); ++i) {
      const record_view& rec = m.records[i];
      if (rec.type() == 'H') os.h = rec;
      if (rec.type() == 'P') os.p = rec;
      if (rec.type() != 'O') continue;
      os.o = rec;
      std::swap(s, os);
      order ord;
      ord.protocol = protocol::astm;
      ord.device = std::string(device);
      ord.sample_id = read_sample_id();
      std::swap(s, os);
      ord.patient_id = text_of(os.p.field(3), o.encoding);
      if (ord.patient_id.empty()) ord.patient_id = text_of(os.p.field(4), o.encoding);
      ord.patient_name = text_of(os.p.field(6), o.encoding);
      const field_view tests = rec.field(5);
      for (std::size_t r = 0; r < tests.repeat_count(); ++r) {
        order_test t;
        t.code = test_code(tests.repeat(r), o);
        if (!t.code.empty()) ord.tests.push_back(std::move(t));
      }
      ord.priority = text_of(rec.field(6), o.encoding);
      ord.action_code = text_of(rec.field(12), o.encoding);
      ord.where = where(i);
      batch.orders.push_back(std::move(ord));
    }
  }
  return batch;
}

}  // namespace interfaced::astm
