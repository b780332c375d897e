#pragma once
// Helpers shared by the E1381 decoder / link tests: owned copies of decoder events, feeding a
// stream in arbitrary chunks, and the table of raw captures with counts taken from the files.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "parsers/astm/frame_decoder.hpp"
#include "parsers/astm/link.hpp"

namespace interfaced::test::astm {

namespace a = interfaced::astm;

// A decode_event whose frame text is owned (decoder views die at the next put()).
struct owned_event {
  a::event_kind kind = a::event_kind::none;
  int number = 0;
  std::string text;
  bool final = false;
  std::uint8_t checksum = 0;
  std::error_code error;
  std::uint64_t offset = 0;
  int hint = -1;

  static owned_event from(const a::decode_event& ev) {
    owned_event o;
    o.kind = ev.kind;
    o.offset = ev.offset;
    if (ev.kind == a::event_kind::frame) {
      o.number = ev.f.number;
      o.text = std::string(ev.f.text);
      o.final = ev.f.final;
      o.checksum = ev.f.checksum;
    } else if (ev.kind == a::event_kind::error) {
      o.error = ev.error;
      o.hint = ev.frame_number_hint;
    }
    return o;
  }
  // A decode_event viewing this object's text (valid while *this lives).
  [[nodiscard]] a::decode_event view() const {
    a::decode_event ev;
    ev.kind = kind;
    ev.offset = offset;
    ev.f.number = number;
    ev.f.text = text;
    ev.f.final = final;
    ev.f.checksum = checksum;
    ev.error = error;
    ev.frame_number_hint = hint;
    return ev;
  }
  friend bool operator==(const owned_event&, const owned_event&) = default;
};

inline const char* kind_name(a::event_kind k) {
  switch (k) {
    case a::event_kind::none:
      return "none";
    case a::event_kind::enq:
      return "ENQ";
    case a::event_kind::ack:
      return "ACK";
    case a::event_kind::nak:
      return "NAK";
    case a::event_kind::eot:
      return "EOT";
    case a::event_kind::frame:
      return "frame";
    case a::event_kind::error:
      return "error";
  }
  return "?";
}

// Feeds `input` split into chunks at the given cut offsets (ascending), collecting every event.
// Checks the put() contract on the way: progress, and consumed == 0 only with an event.
inline std::vector<owned_event> decode_cuts(a::frame_decoder& d, std::string_view input,
                                            const std::vector<std::size_t>& cuts) {
  std::vector<owned_event> events;
  std::size_t begin = 0;
  auto feed = [&](std::string_view chunk) {
    while (true) {
      auto r = d.put(chunk);
      if (r.consumed > chunk.size()) {
        FAIL("put() consumed more than it was given");
      }
      if (r.event.kind == a::event_kind::none) {
        if (r.consumed != chunk.size()) FAIL("no event but not all bytes consumed");
        return;
      }
      events.push_back(owned_event::from(r.event));
      chunk.remove_prefix(r.consumed);
    }
  };
  for (std::size_t cut : cuts) {
    feed(input.substr(begin, cut - begin));
    begin = cut;
  }
  feed(input.substr(begin));
  return events;
}

inline std::vector<owned_event> decode_whole(
    std::string_view input, std::size_t max_frame = a::frame_decoder::default_max_frame) {
  a::frame_decoder d(max_frame);
  return decode_cuts(d, input, {});
}

inline std::vector<owned_event> decode_bytewise(
    std::string_view input, std::size_t max_frame = a::frame_decoder::default_max_frame) {
  a::frame_decoder d(max_frame);
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < input.size(); ++i) cuts.push_back(i);
  return decode_cuts(d, input, cuts);
}

inline std::vector<owned_event> decode_split(
    std::string_view input, std::size_t at,
    std::size_t max_frame = a::frame_decoder::default_max_frame) {
  a::frame_decoder d(max_frame);
  return decode_cuts(d, input, {at});
}

// Offsets where splitting the input in two at one of `offsets` changes the events (empty:
// chunking-invariant). Without `offsets`: every offset 0..size.
inline std::vector<std::size_t> split_mismatches(
    std::string_view input, std::size_t max_frame = a::frame_decoder::default_max_frame,
    const std::vector<std::size_t>* offsets = nullptr) {
  const auto whole = decode_whole(input, max_frame);
  std::vector<std::size_t> bad;
  auto check = [&](std::size_t at) {
    if (decode_split(input, at, max_frame) != whole) bad.push_back(at);
  };
  if (offsets != nullptr) {
    for (std::size_t at : *offsets) check(at);
  } else {
    for (std::size_t at = 0; at <= input.size(); ++at) check(at);
  }
  return bad;
}

// Split points that matter for a large capture when every offset is too slow (O(n^2) decoder
// steps): every offset from `radius` before to `radius` + 2 after each control byte (STX, FN
// follows; ETB/ETX, then C1 C2; CR/LF trailers; ENQ/EOT; CR record ends inside text), the first
// and last 256 offsets, and every 97th offset.
inline std::vector<std::size_t> interesting_offsets(std::string_view input,
                                                    std::size_t radius = 2) {
  std::vector<bool> mark(input.size() + 1, false);
  for (std::size_t i = 0; i < input.size(); ++i) {
    if (i < 256 || i + 256 > input.size() || i % 97 == 0) mark[i] = true;
    if (static_cast<unsigned char>(input[i]) < 0x20) {
      const std::size_t lo = i > radius ? i - radius : 0;
      const std::size_t hi = std::min(input.size(), i + radius + 2);
      for (std::size_t j = lo; j <= hi; ++j) mark[j] = true;
    }
  }
  mark[input.size()] = true;
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < mark.size(); ++i) {
    if (mark[i]) out.push_back(i);
  }
  return out;
}

inline std::size_t count_kind(const std::vector<owned_event>& evs, a::event_kind k) {
  std::size_t n = 0;
  for (const auto& e : evs) n += e.kind == k ? 1 : 0;
  return n;
}

// Frame text as the receiver sees it for a frame built by hand: STX FN text term C1 C2 trailer.
inline std::string raw_frame(char fn, std::string_view text, bool final,
                             std::string_view trailer = "\r\n") {
  std::string body;
  body.push_back(fn);
  body.append(text);
  body.push_back(final ? '\x03' : '\x17');
  return std::string("\x02") + body + a::checksum_hex(body) + std::string(trailer);
}

// Turns `\xNN` escapes into bytes; every other character (including other backslashes) is kept.
inline std::string unescape_hex(std::string_view in) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\\' && i + 3 < in.size() && in[i + 1] == 'x' && hex(in[i + 2]) >= 0 &&
        hex(in[i + 3]) >= 0) {
      out.push_back(static_cast<char>(hex(in[i + 2]) * 16 + hex(in[i + 3])));
      i += 3;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

// Every raw-frames / raw-session capture in ../shared/captures/astm (files that start with STX
// or ENQ and are ASTM). The numbers were counted from the files with an independent Python
// script (scan STX..ETB/ETX, sum FN..terminator mod 256 against C1C2), not from this code.
// `accepted_end_frames` applies LIS1-A 6.5.1.1 to the files' FN sequence: ETX frames whose FN is
// last accepted + 1, i.e. the messages a receiver delivers.
struct capture_info {
  const char* file;
  std::size_t frames;
  std::size_t end_frames;  // ETX
  bool has_enq_eot;        // raw-session: instrument's ENQ ... EOT logged
  std::size_t accepted_end_frames;
  std::size_t rejected;    // FN neither last nor last + 1
  std::size_t duplicates;  // FN == last accepted
};

inline const std::vector<capture_info>& raw_captures() {
  static const std::vector<capture_info> list = {
      {"abbott-afinion2-hba1c-result.astm", 1, 1, false, 1, 0, 0},
      {"cepheid-genexpert-mtbrif-result-custom-delimiters.astm", 1, 1, false, 1, 0, 0},
      {"erba-xl1000-result-backtick-repeat.astm", 1, 1, true, 1, 0, 0},
      {"erba-xl1000-result-glucose.astm", 1, 1, true, 1, 0, 0},
      {"horiba-pentra_xlr-cbc-result-multiframe.astm", 28, 28, false, 28, 0, 0},
      // senaite re-joined ETB chunks and forced FN=1: FNs 1 2 3 4 5 1 1 1 4 5 6 7 0 ... -> the
      // three 1s and the 4 are rejected, the second 5 is a duplicate.
      {"horiba-yumizen_h500-qc-histograms-multiframe.astm", 31, 31, false, 26, 4, 1},
      {"horiba-yumizen_h500-result-flags-histograms.astm", 125, 36, true, 36, 0, 0},
      {"ortho-vitros3600-hostquery-cancel.astm", 3, 3, true, 3, 0, 0},
      {"ortho-vitros3600-hostquery.astm", 3, 3, true, 3, 0, 0},
      {"ortho-vitros3600-result-small.astm", 7, 7, true, 7, 0, 0},
      {"ortho-vitros3600-result-tsh-lt-values.astm", 9, 9, true, 9, 0, 0},
      {"ortho-vitros3600-result-with-M-records.astm", 16, 16, true, 16, 0, 0},
      {"roche-cobas_c111-qc-result-etb-per-record.astm", 7, 1, false, 1, 0, 0},
      {"roche-cobas_c311-result-single-frame.astm", 1, 1, false, 1, 0, 0},
      {"siemens-dca_vantage-acr-result.astm", 1, 1, false, 1, 0, 0},
      {"sysmex-xn550-cbc-result.astm", 1, 1, false, 1, 0, 0},
      {"sysmex-xp100-cbc-result.astm", 1, 1, false, 1, 0, 0},
  };
  return list;
}

// Non-ASTM files that also start with STX: useful negative input for chunking invariance.
inline const std::vector<const char*>& non_astm_stx_captures() {
  static const std::vector<const char*> list = {
      "arkray-spotchem_el_se1520-result-nonastm.astm",
      "biomerieux-mini_vidas-result-nonastm.astm",
  };
  return list;
}

// --- link helpers ---

inline std::vector<a::link_action> of_kind(const a::link_actions& acts, a::link_action::kind k) {
  std::vector<a::link_action> r;
  for (const auto& x : acts) {
    if (x.what == k) r.push_back(x);
  }
  return r;
}

inline std::string sent_bytes(const a::link_actions& acts) {
  std::string s;
  for (const auto& x : acts) {
    if (x.what == a::link_action::kind::send) s += x.bytes;
  }
  return s;
}

// Replays decoder events through a link the way a driver would; returns every action.
inline a::link_actions replay(a::link& l, const std::vector<owned_event>& events) {
  a::link_actions all;
  for (const auto& e : events) {
    auto acts = l.on_event(e.view());
    all.insert(all.end(), acts.begin(), acts.end());
  }
  return all;
}

}  // namespace interfaced::test::astm

namespace Catch {
template <>
struct StringMaker<interfaced::test::astm::owned_event> {
  static std::string convert(const interfaced::test::astm::owned_event& e) {
    std::ostringstream os;
    os << "{" << interfaced::test::astm::kind_name(e.kind) << " @" << e.offset;
    if (e.kind == interfaced::astm::event_kind::frame) {
      os << " fn=" << e.number << (e.final ? " ETX" : " ETB") << " len=" << e.text.size();
    }
    if (e.kind == interfaced::astm::event_kind::error) {
      os << " " << e.error.message() << " hint=" << e.hint;
    }
    os << "}";
    return os.str();
  }
};
}  // namespace Catch
