#pragma once
// The bodies of the HL7 fuzz targets (fuzz_mllp.cpp, fuzz_hl7_message.cpp), shared with
// tests/parsers/hl7/fuzz_regressions_test.cpp (through fuzz_replay.hpp) so every kept crash input
// is replayed by the normal tests through the very same checks. A driver returns nullptr when
// every invariant held, else the first rule that was broken (the fuzz target aborts on it; the
// regression test fails on it).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/hl7/ack.hpp"
#include "parsers/hl7/builders.hpp"
#include "parsers/hl7/message.hpp"
#include "parsers/hl7/mllp.hpp"
#include "parsers/hl7/normalise.hpp"

namespace interfaced::fuzz::hl7 {

namespace detail {

struct flat_event {
  interfaced::hl7::mllp_event_kind kind;
  std::string message;
  int error;
  std::uint64_t offset;
  std::uint64_t length;
  bool missing_cr;
  bool operator==(const flat_event&) const = default;
};

// Feeds `in` in chunks whose sizes cycle through `sizes` (0 or empty: the rest), checking the
// put() contract on every call.
inline const char* decode_chunks(std::string_view in, const interfaced::hl7::mllp_options& o,
                                 const std::vector<std::size_t>& sizes,
                                 std::vector<flat_event>& out) {
  using namespace interfaced::hl7;
  mllp_decoder d(o);
  std::size_t pos = 0;
  std::size_t k = 0;
  std::uint64_t last_offset = 0;
  auto record = [&](const mllp_event& e) -> const char* {
    if (e.kind == mllp_event_kind::message && e.message.size() > o.max_message) {
      return "message longer than max_message delivered";
    }
    if (e.kind == mllp_event_kind::message && e.message.size() != e.length) {
      return "message length does not match its view";
    }
    if (e.kind == mllp_event_kind::message &&
        e.message.find_first_of(std::string_view("\x0B\x1C", 2)) != std::string_view::npos) {
      return "message holds a framing byte";
    }
    if (e.offset < last_offset) return "event offsets went backwards";
    last_offset = e.offset;
    out.push_back({e.kind, std::string(e.message), e.error.value(), e.offset, e.length,
                   e.missing_trailer_cr});
    return nullptr;
  };
  while (pos < in.size()) {
    std::size_t n = sizes.empty() ? in.size() - pos : sizes[k++ % sizes.size()];
    if (n == 0 || n > in.size() - pos) n = in.size() - pos;
    std::string_view chunk = in.substr(pos, n);
    pos += n;
    while (!chunk.empty()) {
      const mllp_put_result r = d.put(chunk);
      if (r.consumed > chunk.size()) return "put() consumed more than it was given";
      if (r.consumed == 0 && r.event.kind == mllp_event_kind::none) return "put() made no progress";
      if (r.event.kind != mllp_event_kind::none) {
        if (const char* bad = record(r.event)) return bad;
      }
      chunk.remove_prefix(r.consumed);
    }
  }
  if (d.offset() != in.size()) return "offset() is not the number of bytes consumed";
  for (int i = 0; i < 3; ++i) {
    const mllp_event e = d.finish();
    if (e.kind == mllp_event_kind::none) return nullptr;
    if (const char* bad = record(e)) return bad;
  }
  return "finish() did not settle";
}

}  // namespace detail

// MLLP decoder: whatever the bytes and the chunking, the events are the same and bounded.
inline const char* mllp_driver(const std::uint8_t* data, std::size_t size) {
  using namespace interfaced::hl7;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  mllp_options o;
  o.max_message = 16 + (size > 0 ? data[0] : 0u);  // small, so overflow paths are reached
  o.strict_trailer = size > 1 && (data[1] & 1u) != 0;
  std::vector<detail::flat_event> whole;
  if (const char* bad = detail::decode_chunks(in, o, {}, whole)) return bad;
  std::vector<std::size_t> sizes;
  for (std::size_t i = 2; i < size && i < 8; ++i) sizes.push_back(data[i] % 23u + 1u);
  std::vector<detail::flat_event> chunked;
  if (const char* bad = detail::decode_chunks(in, o, sizes, chunked)) return bad;
  if (chunked != whole) return "events depend on the chunking";
  std::vector<detail::flat_event> bytewise;
  if (const char* bad = detail::decode_chunks(in, o, {1}, bytewise)) return bad;
  if (bytewise != whole) return "events differ when fed byte at a time";
  // Every delivered message survives a wrap / decode round trip.
  for (const auto& e : whole) {
    if (e.kind != mllp_event_kind::message) continue;
    std::vector<detail::flat_event> again;
    mllp_options big;
    if (const char* bad = detail::decode_chunks(mllp_wrap(e.message), big, {}, again)) return bad;
    if (again.size() != 1 || again[0].message != e.message) return "mllp_wrap round trip failed";
  }
  return nullptr;
}

// Message view + normalise + ACK / RSP builders + response checker on arbitrary text.
inline const char* message_driver(const std::uint8_t* data, std::size_t size) {
  using namespace interfaced::hl7;
  const std::string text(reinterpret_cast<const char*>(data), size);  // exact size for ASan
  message m;
  const std::error_code ec = parse_message(text, m, {.max_segments = 2000});

  // The ACK for raw text always exists and parses, whatever the input.
  const std::string any_ack = build_ack(std::string_view(text), {.code = ack_code::ar,
                                                                 .control_id = "1",
                                                                 .timestamp = "2023",
                                                                 .error_code = "100",
                                                                 .error_text = "x"});
  message parsed_ack;
  if (parse_message(any_ack, parsed_ack)) return "build_ack(text) is not parseable";

  hl7_options o;
  o.include_supplemental = size > 0 && (data[0] & 1u) != 0;
  o.skip_empty_values = size > 0 && (data[0] & 2u) != 0;
  o.all_qc = size > 0 && (data[0] & 4u) != 0;
  const hl7_batch by_text = normalise(std::string_view(text), o, "fuzz");
  if (ec) {
    if (!by_text.error) return "normalise() accepted text parse_message() rejected";
    return nullptr;
  }

  std::size_t budget = 20000;  // bound the walk on huge inputs
  for (const segment_view& s : m.segments()) {
    for (std::size_t f = 0; f <= s.field_count() && budget > 0; ++f, --budget) {
      const value_view v = s.field(f);
      (void)v.decode();
      for (std::size_t r = 0; r < v.repetition_count() && r < 4; ++r) {
        const value_view rep = v.repetition(r);
        for (std::size_t c = 1; c <= rep.component_count() && c <= 6; ++c) {
          (void)rep.component(c).decode();
          (void)rep.component(c).subcomponent(2).decode();
        }
      }
    }
  }

  const hl7_batch b = normalise(m, o, "fuzz");
  if (b.error != by_text.error || b.results.size() != by_text.results.size()) {
    return "normalise(message) and normalise(text) disagree";
  }
  if (b.error && b.diagnostics.empty()) return "fatal error without a diagnostic";
  for (const auto& d : b.diagnostics) {
    if (d.segment_index > m.segment_count()) return "diagnostic names a segment past the end";
  }
  for (const auto& r : b.results) {
    if (r.where.record_index == 0 || r.where.record_index > m.segment_count()) {
      return "result names a segment past the end";
    }
  }

  {
    const ack_decision dec = decide_ack(b);
    if ((dec.code == ack_code::aa) != !b.error) return "decide_ack disagrees with the batch";
    message back;
    if (parse_message(build_ack(m, dec.request("1", "2")), back)) return "decided ACK unparseable";
  }
  const std::string_view id = m.msh().field(10).raw();
  for (const ack_code code : {ack_code::aa, ack_code::ae}) {
    const std::string ack = build_ack(m, {.code = code,
                                          .control_id = "42",
                                          .timestamp = "2023",
                                          .error_code = "207",
                                          .error_text = "a|b^c",
                                          .error_segment = m.segment_count(),
                                          .error_field = 3});
    const response_report rr = check_response(ack, {.control_id = id});
    if (!id.empty() && !rr.usable()) return "our own ACK is not a usable answer";
    if (rr.ack_code != to_string(code)) return "ACK's MSA-1 does not read back";
  }
  if (m.msh().field(9).component(1).raw() == "QBP") {
    const std::string rsp = build_rsp_k11(m, {.control_id = "9", .timestamp = "2023"});
    const response_report rr = check_response(rsp, {.control_id = id});
    if (!id.empty() && !rr.usable()) return "our own RSP^K11 is not a usable answer";
  }
  (void)check_response(text);
  return nullptr;
}

}  // namespace interfaced::fuzz::hl7
