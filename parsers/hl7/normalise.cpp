#include "parsers/hl7/normalise.hpp"

#include "parsers/number.hpp"
#include "parsers/text.hpp"
#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <charconv>
#include <initializer_list>
#include <utility>

namespace interfaced::hl7 {

namespace {

class normalise_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "hl7.normalise"; }
  std::string message(int ev) const override {
    switch (static_cast<normalise_error>(ev)) {
      case normalise_error::ok:
        return "ok";
      case normalise_error::missing_control_id:
        return "MSH-10 (message control id) is empty";
      case normalise_error::missing_message_type:
        return "MSH-9 (message type) is empty";
      case normalise_error::unknown_message_type:
        return "unsupported HL7 message type";
      case normalise_error::unknown_charset:
        return "MSH-18 character set not understood";
      case normalise_error::lossy_text:
        return "text invalid in the character set was replaced";
      case normalise_error::missing_sample_id:
        return "no sample id where the profile says";
      case normalise_error::missing_code:
        return "OBX-3 (observation identifier) is empty";
      case normalise_error::obx_outside_order:
        return "OBX before any OBR or SPM";
      case normalise_error::no_results:
        return "result message without a result";
    }
    return "unknown HL7 normalise error";
  }
};

bool equals_ci(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 'a' + 'A');
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 'a' + 'A');
    if (x != y) return false;
  }
  return true;
}

// Short texts (value types, flags) compared inline: operator== on views was a call and a memcmp
// call per comparison (~100 instructions a result for OBX-2 alone, bench_hl7 OBX-dense).
[[gnu::always_inline]] inline bool same_text(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}

// Segment names compared without a call to memcmp: nearly every name is three letters, and
// context::see and results() compare the name of every segment with several (callgrind,
// bench_hl7 OBX-dense: ~500 instructions a segment in context::see, most of them memcmp).
[[gnu::always_inline]] inline bool same_name(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  if (a.size() == 3) return a[0] == b[0] && a[1] == b[1] && a[2] == b[2];
  return a == b;
}

value_view at(const segment_view& s, const field_ref& r) noexcept {
  if (r.field < 0) return {};
  value_view v = s.field(static_cast<std::size_t>(r.field));
  if (r.component > 0) v = v.component(static_cast<std::size_t>(r.component));
  if (r.subcomponent > 0) v = v.subcomponent(static_cast<std::size_t>(r.subcomponent));
  return v;
}

// The first `max` components of v's first repetition, split in one walk (value_view::component
// walks the field from its start for each component: OBX-3 is read for components 1, 2 and 4).
// Components past the last one present are empty.
template <std::size_t... I>
std::array<value_view, sizeof...(I)> copies_of(const value_view& e, std::index_sequence<I...>) noexcept {
  return {((void)I, e)...};
}

template <std::size_t Max>
std::array<value_view, Max> first_components(const value_view& v) noexcept {
  const delimiters& d = v.delims();
  // Each made once, empty with v's delimiters (default-made then assigned was twice the stores).
  std::array<value_view, Max> out = copies_of(value_view(std::string_view{}, d), std::make_index_sequence<Max>{});
  if (d.component == '\0' || d.repetition == '\0') {  // an undeclared delimiter never splits
    for (std::size_t i = 0; i < Max; ++i) out[i] = v.component(i + 1);
    return out;
  }
  const std::string_view raw = v.raw();
  const char* p = raw.data();
  const char* const end = p + raw.size();
  const char* start = p;
  std::size_t k = 0;
  for (; p != end && *p != d.repetition; ++p) {
    if (*p != d.component) continue;
    out[k++] = value_view(std::string_view(start, static_cast<std::size_t>(p - start)), d);
    if (k == Max) return out;
    start = p + 1;
  }
  out[k] = value_view(std::string_view(start, static_cast<std::size_t>(p - start)), d);
  return out;
}

// Component 1 of the first repetition (what most OBX fields are read as), inlined.
// `splits`: v's component and repetition separators are both declared (tested once by a caller
// reading many values with the same delimiters: the test was ~7 instructions a call).
[[gnu::always_inline]] inline value_view first_component(const value_view& v, bool splits) noexcept {
  const delimiters& d = v.delims();
  if (!splits) return v.component(1);
  const std::string_view raw = v.raw();
  std::size_t n = 0;
  while (n < raw.size() && raw[n] != d.component && raw[n] != d.repetition) ++n;
  return value_view(std::string_view(raw.data(), n), d);  // (substr is a call: its bounds check throws)
}

// The fields of one OBX split once: a result reads a dozen of them, and segment_view::field(n)
// walks the segment from its start each time. Field numbers as segment_view::field (OBX is no
// header segment: field n is piece n). A segment of up to 256 bytes is split whole at the first
// read; a longer one lazily, up to the highest field asked for: an OBX that is dropped early
// (value type ED: a Mindray histogram, kilobytes of base64 in OBX-5) is never scanned past the
// fields its drop needed (the whole OBX was, byte by byte: the largest cost of bench_hl7 on the
// captures).
class segment_fields {
 public:
  segment_fields(const segment_view& s, const delimiters& d) noexcept
      : s_(s), d_(d), p_(s.raw().data()), q_(p_), end_(s.raw().data() + s.raw().size()) {}
  // The field already split: inline (a call per field read, returning a view through memory,
  // was ~500 instructions a result); else split up to it.
  [[gnu::always_inline]] value_view operator()(std::size_t n) noexcept {
    if (n != 0 && n < n_) return view(n);
    // Past the last field of a segment split to its end (OBX-14, -18, -19 of a short OBX): no call.
    if (n != 0 && done_ && !truncated_) return value_view(std::string_view{}, d_);
    return split_to(n);
  }
  // The whole segment was split (every field's view points into it) and it is plain ASCII: then
  // so is every value read from its fields, and is_plain_ascii would say so for each. One test
  // of the segment (a few words) for the ten values a result tests, ~20 instructions each.
  // Asked once an OBX is known to be kept past OBX-3; a long segment (an ED histogram) is never
  // tested whole: its values are tested one by one, as before. (Testing inside the split, on the
  // words it loads, cost the captures ~3.5 % of normalise: their dropped OBX paid for it too.)
  [[nodiscard]] bool plain() const noexcept {
    return done_ && !truncated_ && s_.raw().size() <= 256 && is_plain_ascii(s_.raw(), d_.escape);
  }

 private:
  [[nodiscard]] value_view view(std::size_t n) const noexcept {
    return value_view(std::string_view(begin_[n], static_cast<std::size_t>(end_of_[n] - begin_[n])), d_);
  }
  [[gnu::noinline]] value_view split_to(std::size_t n) noexcept {
    if (n == 0) return s_.field(0);
    // A short segment (every OBX but an ED one) is split to its end at once: one call, not one
    // per field beyond those split so far.
    if (!done_) scan_to(end_ - p_ <= 256 ? max_fields : n);
    if (n < n_) return view(n);
    if (truncated_) return s_.field(n);  // more fields than held: read from the segment
    return value_view(std::string_view{}, d_);
  }
  // Ends the field that began at p_ at `sep_at`; false (and truncated_) when no room is left.
  [[gnu::always_inline]] bool close_field(const char* sep_at) noexcept {
    if (n_ == max_fields) {
      truncated_ = true;
      done_ = true;
      return false;
    }
    begin_[n_] = p_;
    end_of_[n_] = sep_at;
    ++n_;
    p_ = sep_at + 1;
    return true;
  }
  // Splits on from q_ until field n is held (or the segment ends). Eight bytes a step: every
  // separator in a word is recorded from one test of the word (a byte loop was ~4 instructions a
  // byte, the largest part of splitting an OBX, callgrind bench_hl7 OBX-dense); the words are
  // read only up to the field asked for, so a dropped OBX (an ED histogram's kilobytes of base64
  // in OBX-5) is still not scanned past the fields its drop needed. Byte positions come from the
  // lowest set bit, so the word test runs on little-endian targets only; others take the byte loop.
  void scan_to(std::size_t n) noexcept {
    const char sep = d_.field;
    if constexpr (std::endian::native == std::endian::little) {
      while (n_ <= n && end_ - q_ >= 8) {
        for (std::uint64_t m = swar::equal_bytes(swar::load(q_), sep); m != 0; m &= m - 1) {
          if (!close_field(q_ + (std::countr_zero(m) >> 3))) return;
        }
        q_ += 8;
      }
      if (n_ > n) return;
    }
    for (; q_ != end_; ++q_) {
      if (*q_ != sep) continue;
      if (!close_field(q_)) return;
      if (n_ > n) {
        ++q_;
        return;
      }
    }
    // The last field runs to the segment's end.
    done_ = true;
    if (n_ == max_fields) {
      truncated_ = true;
      return;
    }
    begin_[n_] = p_;
    end_of_[n_] = end_;
    ++n_;
  }
  static constexpr std::size_t max_fields = 24;
  const segment_view& s_;
  delimiters d_;
  const char* p_;  // where the field being split begins
  const char* q_;  // where the search for its end goes on (p_ <= q_)
  const char* end_;
  // Where field k begins and ends, for k < n_ (plain pointers, left uninitialised: an array of
  // views was value-initialised for every OBX, ~200 instructions a result).
  std::array<const char*, max_fields> begin_;
  std::array<const char*, max_fields> end_of_;
  std::size_t n_ = 0;
  bool done_ = false;
  bool truncated_ = false;
};

// Latest segment of each kind seen while walking a message; a group head (SPM, OBR, OBX) forgets
// the segments below it so a field_ref never reads a previous group's segment.
class context {
 public:
  // Room for the names of a message's segments made once (grown from empty, ~15 instructions a
  // result on OBX-dense messages).
  context() { latest_.reserve(16); }
  void see(std::string_view name, std::size_t index) {
    const bool obx = same_name(name, "OBX");
    if (obx && obx_generation_ == generation_ && obx_slot_ < latest_.size()) {
      // An OBX right after an OBX (nothing else seen since): no TCD to forget (the previous OBX
      // forgot it and none came after), and the OBX entry is where that one left it.
      latest_[obx_slot_].second = index;
      return;
    }
    if (obx) {
      // The one segment of nearly every call (an OBX per result): forgetting its TCD and pointing
      // its entry here in one walk, the same changes as forget() then the search below (two
      // walks and a loop over a list of names cost ~120 instructions a result more: callgrind,
      // bench_hl7 --dir tests/bench/corpus/hl7-obx-dense).
      bool placed = false;
      for (std::size_t i = 0; i < latest_.size();) {
        auto& e = latest_[i];
        if (same_name(e.first, "TCD")) {
          e = latest_.back();
          latest_.pop_back();
          continue;
        }
        if (same_name(e.first, name)) {
          e.second = index;
          placed = true;
        }
        ++i;
      }
      if (!placed) latest_.emplace_back(name, index);
      for (std::size_t i = 0; i < latest_.size(); ++i)
        if (same_name(latest_[i].first, name)) obx_slot_ = i;
      obx_generation_ = generation_;
      return;
    }
    ++generation_;
    if (same_name(name, "SPM")) forget({"SAC", "OBR", "ORC", "TQ1", "OBX", "TCD", "INV"});
    if (same_name(name, "OBR")) forget({"TQ1", "OBX", "TCD"});
    for (auto& e : latest_) {
      if (same_name(e.first, name)) {
        e.second = index;
        return;
      }
    }
    latest_.emplace_back(name, index);
  }
  [[nodiscard]] std::optional<std::size_t> get(std::string_view name) const noexcept {
    for (const auto& e : latest_) {
      if (same_name(e.first, name)) return e.second;
    }
    return std::nullopt;
  }
  // Changes whenever a segment other than an OBX is seen: what a walker read from the segments in
  // scope other than the OBX is still valid while it stays the same.
  [[nodiscard]] std::uint64_t generation() const noexcept { return generation_; }

 private:
  // Names are unique in latest_, so its order does not matter: a dropped entry takes the last
  // one's place (std::erase_if here was half of see()'s cost).
  void forget(std::initializer_list<std::string_view> names) {
    for (std::size_t i = 0; i < latest_.size();) {
      bool drop = false;
      for (const std::string_view n : names) drop = drop || same_name(n, latest_[i].first);
      if (!drop) {
        ++i;
        continue;
      }
      latest_[i] = latest_.back();
      latest_.pop_back();
    }
  }
  std::vector<std::pair<std::string_view, std::size_t>> latest_;
  std::uint64_t generation_ = 0;
  // Where the OBX entry is in latest_, valid while generation_ == obx_generation_ (entries move
  // only in see() of another segment, which changes the generation).
  std::size_t obx_slot_ = 0;
  std::uint64_t obx_generation_ = ~std::uint64_t{0};
};

class walker {
 public:
  walker(const message& m, const hl7_options& o, std::string_view device, source_location where,
         hl7_batch& out)
      : m_(m), o_(o), device_(device), where_(where), out_(out) {}

  std::string text(const value_view& v) {
    std::string s;
    assign_text(s, v);
    return s;
  }

  // text(v) written into `out` (a result's member: no temporary string moved in).
  // The common case inlined where it is used (a result makes ten such calls, and entering and
  // leaving the whole function, slow path included, was ~13 instructions each).
  // `plain`: v is known plain ASCII (a field of an OBX whose segment_fields::plain() holds).
  [[gnu::always_inline]] void assign_text(std::string& out, const value_view& v, bool plain = false) {
    // Nearly every value is plain ASCII without an escape: then decoding and transcoding are the
    // identity (ASCII is the same bytes in Latin-1, Windows-1252 and UTF-8) and the value is
    // copied once. The profile of bench_hl7 on OBX-dense messages had decode + to_utf8 (two
    // allocations and a byte-wise copy per value) as the largest part of normalise.
    const std::string_view raw = v.raw();
    if (plain || is_plain_ascii(raw, v.delims().escape)) {
      const std::string_view t = trim_padding(raw);
      // (clear() is inline; assign() is a library call even for nothing: OBX-4, -18 and the
      // name are empty in most results.)
      // (append into the empty member: assign() goes through _M_replace, ~60 instructions a
      // value for its aliasing checks.)
      out.clear();
      if (!t.empty()) out.append(t.data(), t.size());
      return;
    }
    assign_decoded(out, v);
  }

  // assign_text for a value with an escape or a byte >= 0x80.
  [[gnu::noinline]] void assign_decoded(std::string& out, const value_view& v) {
    const std::string bytes = v.decode();
    bool lossy = false;
    out = to_utf8(trim_padding(bytes), out_.encoding, &lossy);
    if (lossy && !lossy_reported_) {
      lossy_reported_ = true;
      warn(normalise_error::lossy_text, current_, 0, "bytes not valid in the message's charset");
    }
  }

  void warn(normalise_error e, std::size_t segment, std::size_t field, std::string detail) {
    out_.diagnostics.push_back({e, segment + 1, field, std::move(detail)});
  }

  value_view read(const field_ref& r) const noexcept {
    std::optional<std::size_t> idx =
        r.segment == "MSH" ? std::optional<std::size_t>{0} : ctx_.get(r.segment);
    if (!idx) return {};
    return at(m_.segment(*idx), r);
  }

  // sample_id() and is_qc() read the group's SPM / OBR / MSH, the same segments for every OBX of
  // a group: each is read once per set of segments in scope, not once per result.
  template <typename Refs>
  std::vector<std::optional<std::size_t>> scope_of(const Refs& refs) const {
    std::vector<std::optional<std::size_t>> key;
    key.reserve(refs.size() + 1);
    key.push_back(ctx_.get("SPM"));
    for (const auto& r : refs) key.push_back(r.segment == "MSH" ? std::optional<std::size_t>{0} : ctx_.get(r.segment));
    return key;
  }

  // Valid until the next call (the result copies it once).
  // The cached id inlined for the OBX of a group after its first (the call was ~70 instructions
  // a result).
  [[gnu::always_inline]] const std::string& sample_id() {
    if (!sample_reads_obx_ && sample_cache_ && sample_generation_ == ctx_.generation()) return *sample_cache_;
    return sample_id_read();
  }
  [[gnu::noinline]] const std::string& sample_id_read() {
    // Without an OBX among the places, the scope changes only with another segment (generation).
    if (!sample_reads_obx_) {
      if (!sample_cache_ || sample_generation_ != ctx_.generation()) {
        sample_cache_ = read_sample_id();
        sample_generation_ = ctx_.generation();
      }
      return *sample_cache_;
    }
    auto key = scope_of(o_.sample_id_from);
    if (!sample_cache_ || key != sample_scope_) {
      sample_cache_ = read_sample_id();
      sample_scope_ = std::move(key);
    }
    return *sample_cache_;
  }

  [[gnu::always_inline]] bool is_qc() {
    if (o_.all_qc) return true;
    if (!qc_reads_obx_ && qc_cache_ && qc_generation_ == ctx_.generation()) return *qc_cache_;
    return is_qc_read();
  }
  [[gnu::noinline]] bool is_qc_read() {
    if (!qc_reads_obx_) {
      if (!qc_cache_ || qc_generation_ != ctx_.generation()) {
        qc_cache_ = read_is_qc();
        qc_generation_ = ctx_.generation();
      }
      return *qc_cache_;
    }
    std::vector<std::optional<std::size_t>> key;
    key.reserve(o_.qc_when.size());
    for (const field_match& q : o_.qc_when)
      key.push_back(q.where.segment == "MSH" ? std::optional<std::size_t>{0} : ctx_.get(q.where.segment));
    if (!qc_cache_ || key != qc_scope_) {
      qc_cache_ = read_is_qc();
      qc_scope_ = std::move(key);
    }
    return *qc_cache_;
  }

  // First non-empty, non-null value from the list of places; SPM-2 read as EIP.
  std::string read_sample_id() {
    for (const field_ref& r : o_.sample_id_from) {
      if (r.segment == "SPM" && r.field == 2) {
        const auto idx = ctx_.get("SPM");
        if (!idx) continue;
        const value_view f = m_.segment(*idx).field(2);
        for (std::size_t c : {1u, 2u}) {
          const value_view id = f.component(c).subcomponent(1);
          if (id.has_value()) {
            std::string s = text(id);
            if (!s.empty()) return s;
          }
        }
        continue;
      }
      const value_view v = read(r);
      if (v.has_value()) {
        std::string s = text(v);
        if (!s.empty()) return s;
      }
    }
    return {};
  }

  bool read_is_qc() const {
    for (const field_match& q : o_.qc_when) {
      const value_view v = read(q.where);
      if (!v.empty() && equals_ci(trim_padding(v.decode()), q.equals)) return true;
    }
    return false;
  }

  source_location loc(std::size_t segment) const noexcept {
    source_location l = where_;
    l.record_index = segment + 1;
    return l;
  }

  void results() {
    // At most one result per OBX: room made once (growing the vector moved every result built so
    // far, 17.6 M of 109 M instructions of normalise on the OBX-dense corpus).
    std::size_t obx_segments = 0;
    // (The first four bytes tested inline: name() is a call per segment.)
    const char sep = m_.delims().field;
    for (const segment_view& s : m_.segments()) {
      const std::string_view raw = s.raw();
      obx_segments += raw.size() >= 3 && raw[0] == 'O' && raw[1] == 'B' && raw[2] == 'X' &&
                              (raw.size() == 3 || raw[3] == sep)
                          ? 1u
                          : 0u;
    }
    out_.results.reserve(out_.results.size() + obx_segments);
    std::size_t group_first = 0;  // first result of the current OBR group
    bool group_rerun = false;
    bool sample_warned = false;
    for (std::size_t i = 0; i < m_.segment_count(); ++i) {
      current_ = i;
      const segment_view& s = m_.segment(i);
      const std::string_view name = s.name();
      ctx_.see(name, i);
      if (same_name(name, "SPM") || same_name(name, "OBR")) {
        group_first = out_.results.size();
        group_rerun = false;
        sample_warned = false;
      } else if (same_name(name, "TCD")) {
        const std::string_view repeat = trim_padding(s.field(8).component(1).raw());
        if (o_.rerun_on_tcd_8 && (repeat == "R" || repeat == "D")) {
          group_rerun = true;
          for (std::size_t k = group_first; k < out_.results.size(); ++k) {
            out_.results[k].rerun_indicator = true;
          }
        }
      } else if (same_name(name, "OBX")) {
        obx(s, i, group_rerun, sample_warned);
      }
    }
    if (o_.obr_results.enabled) obr_results();
    if (out_.results.empty() && obx_seen_ > 0)
      warn(normalise_error::no_results, 0, 0,
           std::to_string(obx_seen_) + " OBX segment(s), none a result: " +
               (skipped_ > 0 ? std::to_string(skipped_) + " name no test (OBX-3 and OBX-4 empty)"
                             : std::string("no value, a skipped value type or supplemental only")) +
               "; nothing forwarded");
    if (out_.results.empty() && obx_seen_ == 0) bare_obr_values();
  }

  // A result message with no OBX whose OBR segments still carry values past OBR-4 (Mindray CL QC
  // puts its result in OBR-13..21, manual §1.2.4 "QC test results"): read only where the options
  // say so (obr_results); otherwise a warning naming the fields, never a silent message.
  void bare_obr_values() {
    std::size_t segments = 0;
    std::string fields;
    std::size_t first_segment = 0;
    for (std::size_t i = 0; i < m_.segment_count(); ++i) {
      const segment_view& s = m_.segment(i);
      if (s.name() != "OBR") continue;
      std::string here;
      // The fields walked once (field(f) for each f walked the segment from its start, and
      // field_count() on every round: quadratic in OBR fields, for every OBR of such a message).
      std::string_view rest = s.raw();
      const char sep = m_.delims().field;
      for (std::size_t f = 0;; ++f) {
        const std::size_t end = rest.find(sep);
        if (f >= 5 && !trim_padding(rest.substr(0, end)).empty()) here += (here.empty() ? "" : ",") + std::to_string(f);
        if (end == std::string_view::npos) break;
        rest.remove_prefix(end + 1);
      }
      if (here.empty()) continue;
      if (segments++ == 0) {
        first_segment = i;
        fields = here;
      }
    }
    if (segments == 0) return;
    warn(normalise_error::no_results, first_segment, 0,
         std::to_string(segments) + " OBR segment(s) with no OBX carry values (OBR-" + fields +
             ") that were not read as results: " +
             (o_.obr_results.enabled ? std::string("the configured OBR result fields are empty")
                                     : std::string("results in OBR fields are read only with a profile that "
                                                   "declares them (obr_results)")) +
             "; nothing forwarded");
  }

  // An OBR with no OBX under it, for analysers that put the result in OBR (obr_result_fields).
  void obr_results() {
    for (std::size_t i = 0; i < m_.segment_count(); ++i) {
      const segment_view& s = m_.segment(i);
      if (s.name() != "OBR") continue;
      bool has_obx = false;
      for (std::size_t k = i + 1; k < m_.segment_count() && m_.segment(k).name() != "OBR"; ++k)
        has_obx = has_obx || m_.segment(k).name() == "OBX";
      if (has_obx) continue;
      current_ = i;
      ctx_.see(s.name(), i);
      const auto& f = o_.obr_results;
      result r;
      r.protocol = protocol::hl7;
      r.device = std::string(device_);
      r.code = text(at(s, f.code));
      r.value = text(at(s, f.value));
      if (r.code.empty() || r.value.empty()) continue;
      r.numeric = parse_number(r.value);
      r.unit = text(at(s, f.unit));
      r.sample_id = text(at(s, f.sample_id));
      r.observed_at = text(at(s, f.observed_at));
      r.qc = is_qc();
      if (r.qc) {
        r.qc_material = text(at(s, f.qc_material));
        r.qc_lot = text(at(s, f.qc_lot));
        r.qc_mean = parse_number(text(at(s, f.qc_mean)));
        r.qc_sd = parse_number(text(at(s, f.qc_sd)));
        series(r);
      }
      r.where = loc(i);
      out_.results.push_back(std::move(r));
    }
  }

  void obx(const segment_view& s, std::size_t i, bool group_rerun, bool& sample_warned) {
    ++obx_seen_;
    segment_fields field(s, m_.delims());
    // (Looked up once per set of segments in scope, not per OBX.)
    if (in_order_generation_ != ctx_.generation()) {
      in_order_ = ctx_.get("OBR") || ctx_.get("SPM");
      in_order_generation_ = ctx_.generation();
    }
    if (!in_order_) {
      warn(normalise_error::obx_outside_order, i, 0, "OBX with no OBR/SPM before it");
    }
    // OBX-3 components 1, 2 and 4 (code, text, alternate code) from one walk.
    const value_view obx_3 = field(3);
    const std::array<value_view, 4> obx_3c = first_components<4>(obx_3);
    const std::string_view alt = obx_3c[3].raw();
    if (!o_.include_supplemental && alt.substr(0, 2) == "S_") return;
    // (After the first read: a segment of up to 256 bytes is split whole by it.)
    const bool plain = field.plain();
    const bool splits = m_.delims().component != '\0' && m_.delims().repetition != '\0';

    // Built in place in the room results() reserved: a result is twenty strings, vectors and
    // optionals, and moving a finished one into the vector cost ~570 instructions per result
    // (callgrind, bench_hl7 --dir tests/bench/corpus/hl7-obx-dense). An OBX that gives no result
    // takes it back (drop below).
    result& r = out_.results.emplace_back();
    const auto drop = [&] { out_.results.pop_back(); };
    r.protocol = protocol::hl7;
    r.device.append(device_);  // (into the empty member: assign() is _M_replace, see assign_text)
    // The OBX in scope is this one: its fields come from the split above.
    const auto here = [&](const field_ref& ref, bool in_obx) __attribute__((always_inline)) {
      if (!in_obx) return read(ref);
      if (ref.field < 0) return value_view{};
      if (ref.field == 3 && ref.subcomponent == 0 && ref.component >= 1 && ref.component <= 4)
        return obx_3c[static_cast<std::size_t>(ref.component) - 1];
      value_view v = field(static_cast<std::size_t>(ref.field));
      if (ref.component > 0) v = v.component(static_cast<std::size_t>(ref.component));
      if (ref.subcomponent > 0) v = v.subcomponent(static_cast<std::size_t>(ref.subcomponent));
      return v;
    };
    assign_text(r.code, here(o_.code, code_in_obx_), plain && code_in_obx_);
    assign_text(r.name, here(o_.name, name_in_obx_), plain && name_in_obx_);
    const bool name_in_obx_4 = name_in_obx_ && o_.name.field == 4;
    // The identifier, else its text (HL7 CE: either identifies the test), else the test named in
    // OBX-4 by analysers that leave OBX-3 empty (Mindray BS 2.3.1: `OBX|1|NM||Glucose|...`).
    if (r.code.empty() && code_in_obx_ && o_.code.field == 3) assign_text(r.code, obx_3c[1], plain);
    if (r.code.empty()) {
      if (name_in_obx_4) r.code = r.name;
      else assign_text(r.code, field(4), plain);
    } else if (!name_in_obx_4) {
      assign_text(r.sub_id, field(4), plain);
    }
    if (r.code.empty()) {
      warn(normalise_error::missing_code, i, static_cast<std::size_t>(o_.code.field),
           "observation identifier is empty and OBX-4 names no test; OBX skipped");
      ++skipped_;
      drop();
      return;
    }
    const std::string_view type = trim_padding(first_component(field(2), splits).raw());
    if (std::any_of(o_.skip_value_types.begin(), o_.skip_value_types.end(),
                    [&](const std::string& t) { return same_text(t, type); })) {
      drop();
      return;
    }
    // (After the value type: a skipped OBX is not split past OBX-4.)
    assign_text(r.status, first_component(field(11), splits), plain);
    const bool coded = same_text(type, "CE") || same_text(type, "CWE") || same_text(type, "CNE");
    const value_view v = field(5);
    if (!v.is_null()) assign_text(r.value, coded ? first_component(v, splits) : v, plain);
    if (r.value.empty() && o_.skip_empty_values && r.status != "X") {
      drop();
      return;
    }
    if (!coded) r.numeric = parse_number(r.value);

    assign_text(r.unit, first_component(field(6), splits), plain);
    assign_text(r.reference_range, field(7), plain);
    const value_view flags = field(8);
    const auto add_flag = [&](const value_view& rep) {
      const value_view f = first_component(rep, splits);
      if (!f.has_value()) return;
      const std::string_view raw = f.raw();
      if (plain || is_plain_ascii(raw, f.delims().escape)) {
        // The flag's text is its trimmed bytes (assign_text): tested before anything is built,
        // and built in its place in the vector (a temporary string moved in, and the vector's
        // general insert path, were ~250 instructions a result: every OBX-dense OBX has a flag).
        const std::string_view t = trim_padding(raw);
        if (t.empty() || std::any_of(o_.drop_flags.begin(), o_.drop_flags.end(),
                                     [&](const std::string& d) { return same_text(d, t); }))
          return;
        if (r.flags.empty()) r.flags.reserve(1);
        r.flags.emplace_back(t);
        return;
      }
      std::string flag = text(f);
      if (flag.empty() ||
          std::find(o_.drop_flags.begin(), o_.drop_flags.end(), flag) != o_.drop_flags.end()) {
        return;
      }
      r.flags.push_back(std::move(flag));
    };
    if (flags.delims().repetition == '\0') {
      add_flag(flags);
    } else if (!flags.empty()) {
      // The repetitions in one walk (repetition(k) walked the field from its start for each k).
      const char rep = flags.delims().repetition;
      std::string_view rest = flags.raw();
      for (;;) {
        std::size_t n = 0;
        while (n < rest.size() && rest[n] != rep) ++n;
        add_flag(value_view(rest.substr(0, n), flags.delims()));
        if (n == rest.size()) break;
        rest.remove_prefix(n + 1);
      }
    }
    assign_text(r.instrument, first_component(field(18), splits), plain);
    // OBX-19 (analysis time, 2.5+), else OBX-14 (observation time, what 2.3.1 Mindray fills),
    // else the order's OBR-7.
    // (OBR-7 is read only when both are empty.)
    for (int k = 0; k < 3 && r.observed_at.empty(); ++k) {
      const value_view t = k == 0 ? first_component(field(19), splits) : k == 1 ? first_component(field(14), splits) : order_time();
      if (t.has_value()) assign_text(r.observed_at, t, plain && k < 2);  // (OBR-7 is not this OBX's)
    }
    r.qc = is_qc();
    if (r.qc) series(r);
    r.rerun_indicator = group_rerun || (o_.rerun_on_obx_11_c && r.status.size() == 1 && r.status[0] == 'C');
    r.sample_id = sample_id();
    if (r.sample_id.empty() && !sample_warned) {
      sample_warned = true;
      warn(normalise_error::missing_sample_id, i, 0, "no sample id for this result");
    }
    r.where = loc(i);
  }

  // A control result's series where options.qc_series says; a key whose places are not all
  // filled is left as it was (qc.controls completes it).
  void series(result& r) {
    const auto read_key = [&](const std::vector<qc_place>& places, std::string& dst) {
      if (places.empty()) return;
      std::string joined;
      for (const qc_place& p : places) {
        std::string v = p.ordinal ? ordinal(p.where.segment) : text(read(p.where));
        if (v.empty()) return;
        if (!joined.empty()) joined += ' ';
        joined += v;
      }
      dst = std::move(joined);
    };
    read_key(o_.qc_series.material, r.qc_material);
    read_key(o_.qc_series.lot, r.qc_lot);
    read_key(o_.qc_series.level, r.qc_level);
  }

  // The 1-based position of the `name` segment in scope among the message's segments of that
  // name; empty when none is in scope.
  std::string ordinal(const std::string& name) const {
    const auto idx = name == "MSH" ? std::optional<std::size_t>{0} : ctx_.get(name);
    if (!idx) return {};
    std::size_t n = 0;
    for (std::size_t k = 0; k <= *idx; ++k) n += same_name(m_.segment(k).name(), name) ? 1u : 0u;
    return std::to_string(n);
  }

  // OBR-7 of the OBR in scope, read once per group: it is the observed_at of every OBX that
  // carries neither OBX-19 nor OBX-14 (Mindray BC, Zybio, Erba), and reading it walked the OBR
  // for each of them (~750 instructions per result on the OBX-dense corpus).
  value_view order_time() {
    if (!obr_7_cache_ || obr_7_generation_ != ctx_.generation()) {
      obr_7_cache_ = read(obr_7);
      obr_7_generation_ = ctx_.generation();
    }
    return *obr_7_cache_;
  }

  void qbp() {
    for (std::size_t i = 0; i < m_.segment_count(); ++i) {
      current_ = i;
      const segment_view& s = m_.segment(i);
      if (!s.is("QPD")) continue;
      query q;
      q.protocol = protocol::hl7;
      q.device = std::string(device_);
      // QPD-1 names the query (`WOS` LAW, `INIBAR` / `RRRBAR` Roche: the latter asks for
      // repeat/rerun/reflex work): kept so rerun/ can tell them apart.
      q.status_code = text(s.field(1).component(1));
      q.tag = text(s.field(2));
      const value_view ids = s.field(3);
      for (std::size_t k = 0; k < ids.repetition_count(); ++k) {
        std::string id = text(ids.repetition(k).component(1).subcomponent(1));
        if (!id.empty()) q.sample_ids.push_back(std::move(id));
      }
      if (q.sample_ids.empty()) warn(normalise_error::missing_sample_id, i, 3, "QPD-3 is empty");
      q.where = loc(i);
      out_.queries.push_back(std::move(q));
    }
  }

  // Mindray 2.3.1 QRY^Q02: QRD-8 (who subject filter) holds the barcode.
  void qry() {
    for (std::size_t i = 0; i < m_.segment_count(); ++i) {
      current_ = i;
      const segment_view& s = m_.segment(i);
      if (!s.is("QRD")) continue;
      query q;
      q.protocol = protocol::hl7;
      q.device = std::string(device_);
      std::string id = text(s.field(8).component(1));
      const auto qrf = m_.find("QRF", i);
      const std::string first_number = qrf ? text(m_.segment(*qrf).field(4).component(1)) : std::string();
      if (id.empty() && first_number.empty()) {
        // Group download by time (QRD-8 and QRF-4 empty, QRF-2/3 the time range; Mindray CL host
        // interface manual §1.2.4 QRD / QRF and §1.3.2): every sample the host has for the device.
        q.all_samples = true;
      } else if (id.empty()) {
        warn(normalise_error::missing_sample_id, i, 8,
             "QRD-8 is empty and QRF-4/5 ask for the analyser's sample numbers " + first_number +
                 "..: the host knows samples by bar code only");
      } else {
        q.sample_ids.push_back(std::move(id));
      }
      q.where = loc(i);
      out_.queries.push_back(std::move(q));
    }
  }

  // OML^O33 `[PID] {SPM {ORC [TQ1] OBR}}` and ORM^O01 `[PID] {ORC OBR}`: one order per specimen
  // and ORC-1 action.
  void orders() {
    std::string patient_id;
    std::string patient_name;
    std::optional<order> cur;
    std::string pending_action;
    auto flush = [&]() {
      if (cur && (!cur->tests.empty() || !cur->sample_id.empty())) {
        if (cur->sample_id.empty()) {
          warn(normalise_error::missing_sample_id, cur->where.record_index - 1, 0,
               "order without a sample id");
        }
        out_.orders.push_back(std::move(*cur));
      }
      cur.reset();
    };
    auto start = [&](std::size_t i) {
      flush();
      cur.emplace();
      cur->protocol = protocol::hl7;
      cur->device = std::string(device_);
      cur->patient_id = patient_id;
      cur->patient_name = patient_name;
      cur->where = loc(i);
    };
    for (std::size_t i = 0; i < m_.segment_count(); ++i) {
      current_ = i;
      const segment_view& s = m_.segment(i);
      const std::string_view name = s.name();
      ctx_.see(name, i);
      if (name == "PID") {
        flush();
        patient_id = text(s.field(3).repetition(0).component(1));
        patient_name = xpn(s.field(5).repetition(0));
      } else if (name == "SPM") {
        start(i);
        cur->sample_id = sample_id();
      } else if (name == "ORC") {
        pending_action = text(s.field(1));
        if (cur && !cur->action_code.empty() && cur->action_code != pending_action &&
            !cur->tests.empty()) {
          std::string sample = cur->sample_id;
          start(i);
          cur->sample_id = std::move(sample);
        }
        if (cur && cur->action_code.empty()) cur->action_code = pending_action;
      } else if (name == "TQ1") {
        if (cur && cur->priority.empty()) cur->priority = text(s.field(9).component(1));
      } else if (name == "OBR") {
        const bool has_spm = ctx_.get("SPM").has_value();
        if (!has_spm) {
          // ORM: the sample id lives in OBR; a new sample starts a new order.
          std::string sample = sample_id();
          if (!cur || cur->sample_id != sample) {
            start(i);
            cur->sample_id = std::move(sample);
            cur->action_code = pending_action;
          }
          if (cur->priority.empty()) cur->priority = text(s.field(27).component(6));
        } else if (!cur) {
          start(i);
        }
        if (cur->action_code.empty()) cur->action_code = pending_action;
        order_test t;
        t.code = text(s.field(4).component(1));
        t.name = text(s.field(4).component(2));
        if (!t.code.empty() || !t.name.empty()) cur->tests.push_back(std::move(t));
      }
    }
    flush();
  }

  // XPN as sent: decoded components joined with '^', trailing empty ones dropped.
  std::string xpn(const value_view& v) {
    std::string out;
    std::size_t n = v.component_count();
    while (n > 0 && v.component(n).empty()) --n;
    for (std::size_t c = 1; c <= n; ++c) {
      if (c > 1) out.push_back('^');
      out += text(v.component(c));
    }
    return out;
  }

 private:
  const message& m_;
  const hl7_options& o_;
  std::string_view device_;
  source_location where_;
  hl7_batch& out_;
  context ctx_;
  std::size_t current_ = 0;
  bool lossy_reported_ = false;
  std::size_t obx_seen_ = 0;  // OBX segments in the message
  std::size_t skipped_ = 0;   // of which named no test
  const field_ref obr_7{"OBR", 7, 1, 0};
  // Where the options read code and name, compared once per message, not per OBX (a string
  // comparison each, ~300 instructions per result on the OBX-dense corpus).
  const bool code_in_obx_ = o_.code.segment == "OBX";
  const bool name_in_obx_ = o_.name.segment == "OBX";
  const bool sample_reads_obx_ = std::any_of(o_.sample_id_from.begin(), o_.sample_id_from.end(),
                                             [](const field_ref& r) { return r.segment == "OBX"; });
  const bool qc_reads_obx_ = std::any_of(o_.qc_when.begin(), o_.qc_when.end(),
                                         [](const field_match& q) { return q.where.segment == "OBX"; });
  bool in_order_ = false;  // an OBR or SPM is in scope, for in_order_generation_
  std::uint64_t in_order_generation_ = ~std::uint64_t{0};
  std::optional<value_view> obr_7_cache_;  // order_time() for obr_7_generation_
  std::uint64_t obr_7_generation_ = 0;
  std::uint64_t sample_generation_ = 0;
  std::uint64_t qc_generation_ = 0;
  std::optional<std::string> sample_cache_;  // sample_id() for the segments in sample_scope_
  std::vector<std::optional<std::size_t>> sample_scope_;
  std::optional<bool> qc_cache_;  // is_qc() for the segments in qc_scope_
  std::vector<std::optional<std::size_t>> qc_scope_;
};

hl7_batch fatal(hl7_batch b, std::error_code e, std::size_t field, std::string detail) {
  b.error = e;
  b.diagnostics.insert(b.diagnostics.begin(), hl7_diagnostic{e, 1, field, std::move(detail)});
  return b;
}

}  // namespace

const std::error_category& normalise_category() noexcept {
  static const normalise_category_impl instance;
  return instance;
}

std::error_code make_error_code(normalise_error e) noexcept {
  return {static_cast<int>(e), normalise_category()};
}

std::optional<text_encoding> charset_encoding(std::string_view msh_18) noexcept {
  const std::string_view s = trim_padding(msh_18);
  // HL7 table 0211. Plain ASCII is a subset of Latin-1. `UNICODE` alone (deprecated, nominally
  // UCS-2) is what Mindray BC analysers send for UTF-8 text (facts §9).
  if (equals_ci(s, "ASCII") || equals_ci(s, "8859/1")) return text_encoding::latin1;
  if (equals_ci(s, "UNICODE UTF-8") || equals_ci(s, "UNICODE") || equals_ci(s, "UTF-8") ||
      equals_ci(s, "UTF8")) {
    return text_encoding::utf8;
  }
  return parse_encoding(s);
}


hl7_batch normalise(const message& m, const hl7_options& options, std::string_view device,
                    source_location where) {
  hl7_batch b;
  b.encoding = options.encoding;
  if (m.segment_count() == 0) {
    return fatal(std::move(b), message_error::no_msh, 0, "no MSH segment");
  }
  const segment_view& msh = m.msh();
  walker w(m, options, device, where, b);
  // MSH-3 to MSH-19 from one walk of the MSH (piece k of the segment is MSH-(k+1), as in
  // segment_view::field for a header segment; absent ones empty): msh.field(n) walks the MSH
  // from its start for each n read, ~45 searches a message for MSH-9, -10, -12 and -18, where
  // this is 18 (callgrind bench_hl7: ~2,000 instructions a message).
  std::array<std::string_view, 19> msh_piece{};
  {
    std::string_view rest = msh.raw();
    const char sep = m.delims().field;
    for (std::string_view& piece : msh_piece) {
      const std::size_t at_sep = rest.find(sep);
      piece = rest.substr(0, at_sep);
      if (at_sep == std::string_view::npos) break;
      rest.remove_prefix(at_sep + 1);
    }
  }
  const auto msh_field = [&](std::size_t n) { return value_view(msh_piece[n - 1], m.delims()); };

  if (options.honour_msh_18) {
    const std::string_view cs = trim_padding(msh_field(18).repetition(0).raw());
    if (!cs.empty()) {
      if (auto enc = charset_encoding(cs)) {
        b.encoding = *enc;
      } else {
        w.warn(normalise_error::unknown_charset, 0, 18, std::string(cs));
      }
    }
  }

  const value_view type = msh_field(9);
  const std::string code = w.text(type.component(1));
  const std::string trigger = w.text(type.component(2));
  b.message_type = trigger.empty() ? code : code + "^" + trigger;
  b.control_id = w.text(msh_field(10));
  b.version = w.text(msh_field(12).component(1));
  if (code.empty()) return fatal(std::move(b), normalise_error::missing_message_type, 9, "");
  if (b.control_id.empty()) return fatal(std::move(b), normalise_error::missing_control_id, 10, "");

  for (const std::string& t : options.ignored_types) {
    if (t == code || t == b.message_type) {
      b.ignored = true;
      return b;
    }
  }
  if (code == "ORU" || code == "OUL") {
    w.results();
  } else if (code == "QBP") {
    w.qbp();
  } else if (code == "QRY") {
    w.qry();
  } else if (code == "OML" || code == "ORM") {
    w.orders();
  } else {
    return fatal(std::move(b), normalise_error::unknown_message_type, 9, b.message_type);
  }
  return b;
}

hl7_batch normalise(std::string_view text, const hl7_options& options, std::string_view device,
                    source_location where) {
  message m;
  if (std::error_code ec = parse_message(text, m)) {
    hl7_batch b;
    b.encoding = options.encoding;
    return fatal(std::move(b), ec, 0, "");
  }
  return normalise(m, options, device, where);
}

}  // namespace interfaced::hl7
