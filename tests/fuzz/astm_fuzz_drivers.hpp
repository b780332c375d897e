#pragma once
// The bodies of the ASTM fuzz targets (fuzz_frame_decoder.cpp, fuzz_link.cpp: E1381;
// fuzz_records.cpp: E1394 records and text decoding), shared with
// tests/parsers/astm/fuzz_regressions_test.cpp (through fuzz_replay.hpp) so every kept crash
// input is replayed by the normal tests through the very same checks. Each driver returns nullptr
// when every invariant held, else a description of the first violation (the fuzz target aborts on
// it; the regression test fails on it).

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/astm/frame_decoder.hpp"
#include "parsers/astm/link.hpp"
#include "parsers/astm/normalise.hpp"
#include "parsers/astm/records.hpp"
#include "parsers/text_codec.hpp"

namespace interfaced::fuzz {

namespace detail {

struct flat_event {
  astm::event_kind kind;
  int number;
  std::string text;
  bool final;
  int error;
  std::uint64_t offset;
  int hint;
  bool operator==(const flat_event&) const = default;
};

// Feeds `in` to a fresh decoder in chunks whose sizes come from `sizes` (cycled; 0 = rest),
// checking the put() contract. Returns nullptr or the violated rule.
inline const char* decode_chunks(std::string_view in, std::size_t max_frame,
                                 const std::vector<std::size_t>& sizes,
                                 std::vector<flat_event>& out) {
  astm::frame_decoder d(max_frame);
  const std::size_t max_text = d.max_frame() - 7;
  std::size_t pos = 0;
  std::size_t k = 0;
  std::optional<std::uint64_t> last_offset;
  while (pos < in.size()) {
    std::size_t n = sizes.empty() ? in.size() - pos : sizes[k++ % sizes.size()];
    if (n == 0 || n > in.size() - pos) n = in.size() - pos;
    std::string_view chunk = in.substr(pos, n);
    pos += n;
    while (true) {
      const auto r = d.put(chunk);
      if (r.consumed > chunk.size()) return "put() consumed more than it was given";
      if (r.event.kind == astm::event_kind::none) {
        if (r.consumed != chunk.size()) return "no event, yet bytes left unconsumed";
        break;
      }
      const auto& ev = r.event;
      if (r.consumed == 0 &&
          !(ev.kind == astm::event_kind::error && ev.error == astm::frame_error::interrupted)) {
        return "an event other than interrupted consumed nothing";
      }
      if (last_offset && ev.offset <= *last_offset) return "event offsets not increasing";
      last_offset = ev.offset;
      if (ev.offset >= d.offset()) return "event starts after the consumed bytes";
      flat_event f{ev.kind, 0, {}, false, 0, ev.offset, -1};
      if (ev.kind == astm::event_kind::frame) {
        if (ev.f.number < 0 || ev.f.number > 7) return "frame number outside 0-7";
        if (ev.f.text.size() > max_text) return "frame text longer than max_frame - 7";
        // The checksum must be the sum of FN..terminator (LIS1-A 6.3.3).
        unsigned sum = static_cast<unsigned>('0' + ev.f.number) + (ev.f.final ? 0x03u : 0x17u);
        for (char c : ev.f.text) sum += static_cast<unsigned char>(c);
        if ((sum & 0xFFu) != ev.f.checksum) return "frame accepted with a wrong checksum";
        for (char c : ev.f.text) {
          const auto u = static_cast<unsigned char>(c);
          if (u == 0x02 || u == 0x03 || u == 0x04 || u == 0x05 || u == 0x17 || u == 0x0A) {
            return "control character inside accepted frame text";
          }
        }
        f.number = ev.f.number;
        f.text = std::string(ev.f.text);
        f.final = ev.f.final;
      } else if (ev.kind == astm::event_kind::error) {
        if (ev.error.category() != astm::frame_category() || !ev.error) {
          return "error event without a frame_error";
        }
        f.error = ev.error.value();
        f.hint = ev.frame_number_hint;
      }
      out.push_back(std::move(f));
      chunk.remove_prefix(r.consumed);
    }
  }
  if (d.offset() != in.size()) return "offset() differs from the bytes fed";
  return nullptr;
}

}  // namespace detail

// Input: byte 0 picks max_frame (bit 7 set: the 64,000 default; else 8 + value), byte 1 seeds
// the chunk sizes; the rest is the stream. Checks the put() contract, accepted frames, and that
// whole input, byte at a time and pseudo-random chunks give the same events.
inline const char* run_frame_decoder(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return nullptr;
  const std::size_t max_frame =
      (data[0] & 0x80u) != 0 ? astm::frame_decoder::default_max_frame : 8u + data[0];
  std::uint32_t seed = data[1] * 2654435761u + 1u;
  const std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);

  std::vector<detail::flat_event> whole;
  if (const char* e = detail::decode_chunks(in, max_frame, {}, whole)) return e;
  std::vector<detail::flat_event> bytewise;
  if (const char* e = detail::decode_chunks(in, max_frame, {1}, bytewise)) return e;
  if (bytewise != whole) return "byte-at-a-time events differ from whole-input events";
  std::vector<std::size_t> sizes;
  for (int i = 0; i < 16; ++i) {
    seed = seed * 1103515245u + 12345u;
    sizes.push_back(1 + (seed >> 16) % 37);
  }
  std::vector<detail::flat_event> chunked;
  if (const char* e = detail::decode_chunks(in, max_frame, sizes, chunked)) return e;
  if (chunked != whole) return "chunked events differ from whole-input events";
  return nullptr;
}

// Input: 3 option bytes, then a script. Script bytes below 0xF0 are the instrument's byte
// stream (decoded by frame_decoder, events fed to the link); 0xF0-0xF5 fire timer 0-5 (ignored
// by the link when it is not running), 0xF6 / 0xF7 confirm_delivery(true / false), 0xF8 toggles
// set_busy, 0xF9 n queues a message of 3n+1 bytes, 0xFA fires the running timer, 0xFB n feeds a
// valid frame (FN n&7, ETX if n&8, (n>>4)*7 text bytes) so deep states are reachable without
// the fuzzer having to find checksums, 0xFC-0xFF are stream bytes.
inline const char* run_link(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return nullptr;
  astm::link_options o;
  o.frame_text_size = 1 + data[0] % 64;
  o.max_message_bytes = 1 + static_cast<std::size_t>(data[1]) * 8;
  o.defer_final_ack = (data[2] & 1u) != 0;
  o.accept_frames_without_enq = (data[2] & 2u) != 0;
  o.max_attempts = 1 + (data[2] >> 2) % 8;
  astm::link l(o);
  astm::frame_decoder dec(data[2] & 0x80u ? 64 : astm::frame_decoder::default_max_frame);
  std::optional<astm::timer_id> mirror;
  bool busy = false;
  std::size_t queued_total = 0;
  std::size_t finished = 0;  // sent actions

  auto check = [&](const astm::link_actions& acts) -> const char* {
    for (const auto& x : acts) {
      switch (x.what) {
        case astm::link_action::kind::start_timer:
          if (mirror && *mirror != x.timer) return "start_timer while another timer runs";
          if (x.duration.count() <= 0) return "timer without a duration";
          mirror = x.timer;
          break;
        case astm::link_action::kind::stop_timer:
          if (!mirror || *mirror != x.timer) return "stop_timer for a timer that is not running";
          mirror.reset();
          break;
        case astm::link_action::kind::send: {
          if (x.bytes.size() == 1) {
            const char c = x.bytes[0];
            if (c != '\x04' && c != '\x05' && c != '\x06' && c != '\x15')
              return "odd control byte sent";
            break;
          }
          if (x.bytes.size() > o.frame_text_size + 7)
            return "sent frame larger than frame_text_size + 7";
          astm::frame_decoder check_dec;
          const auto r = check_dec.put(x.bytes);
          if (r.event.kind != astm::event_kind::frame) return "sent bytes are not one valid frame";
          break;
        }
        case astm::link_action::kind::deliver:
          if (x.message.size() > o.max_message_bytes)
            return "delivered more than max_message_bytes";
          break;
        case astm::link_action::kind::sent:
          ++finished;
          break;
        default:
          break;
      }
    }
    if (mirror != l.active_timer()) return "driver's timer mirror differs from active_timer()";
    if (l.buffered_bytes() > o.max_message_bytes) return "receive buffer above max_message_bytes";
    if (l.state() == astm::link_state::neutral && l.queued() != 0)
      return "neutral with messages queued";
    if (l.queued() + finished != queued_total) return "a queued message was lost";
    if (l.awaiting_confirmation() &&
        (l.state() != astm::link_state::receiving || l.active_timer().has_value())) {
      return "awaiting confirmation outside receiving or with a timer";
    }
    using st = astm::link_state;
    using ti = astm::timer_id;
    const auto t = l.active_timer();
    switch (l.state()) {
      case st::neutral:
        if (t) return "timer running on a neutral line";
        break;
      case st::receiving:
        if (t && *t != ti::receive) return "receiving without the receive timer";
        break;
      case st::sending_enq:
      case st::sending:
        if (t != ti::reply) return "sending without the reply timer";
        break;
      case st::waiting_after_nak:
        if (t != ti::busy) return "busy wait without busy timer";
        break;
      case st::contention:
        if (t != ti::contention) return "contention without its timer";
        break;
      case st::interrupted:
        if (t != ti::interrupt) return "interrupt wait without its timer";
        break;
      case st::waiting_retry:
        if (t != ti::retry) return "retry wait without its timer";
        break;
    }
    if (!l.awaiting_confirmation() && l.state() == st::receiving && !t)
      return "receiving without a timer";
    return nullptr;
  };

  auto feed = [&](std::string_view bytes) -> const char* {
    while (true) {
      const auto r = dec.put(bytes);
      if (r.event.kind != astm::event_kind::none) {
        if (const char* e = check(l.on_event(r.event))) return e;
      }
      bytes.remove_prefix(r.consumed);
      if (r.event.kind == astm::event_kind::none) return nullptr;
    }
  };

  std::size_t i = 3;
  while (i < size) {
    const std::uint8_t c = data[i++];
    const char* err = nullptr;
    if (c < 0xF0 || c >= 0xFC) {
      std::size_t j = i;
      while (j < size && (data[j] < 0xF0 || data[j] >= 0xFC)) ++j;
      err = feed(std::string_view(reinterpret_cast<const char*>(data + i - 1), j - i + 1));
      i = j;
    } else if (c <= 0xF5) {
      const auto t = static_cast<astm::timer_id>(c - 0xF0);
      if (mirror == t) mirror.reset();
      err = check(l.on_timeout(t));
    } else if (c == 0xF6 || c == 0xF7) {
      err = check(l.confirm_delivery(c == 0xF6));
    } else if (c == 0xF8) {
      busy = !busy;
      l.set_busy(busy);
    } else if (c == 0xF9) {
      const std::size_t n = i < size ? data[i++] : 0;
      std::string text(3 * n + 1, 'R');
      for (std::size_t k = 0; k < text.size(); k += 10) text[k] = '\r';
      astm::link_actions acts;
      l.queue_message(std::move(text), acts);
      ++queued_total;
      err = check(acts);
    } else if (c == 0xFA) {
      if (const auto t = l.active_timer()) {
        mirror.reset();
        err = check(l.on_timeout(*t));
      }
    } else {  // 0xFB
      const std::uint8_t n = i < size ? data[i++] : 0;
      const std::string text(static_cast<std::size_t>(n >> 4) * 7, 'x');
      err = feed(astm::encode_frame(n & 7, text, (n & 8) != 0));
    }
    if (err != nullptr) return err;
  }
  return nullptr;
}

namespace detail {

// Whether `inner` lies inside `outer` (an empty view anywhere).
inline bool inside(std::string_view outer, std::string_view inner) {
  if (inner.empty()) return true;
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

// parse_message keeps offsets and records in step, and every view lies inside the input.
inline const char* check_records(std::string_view text) {
  const auto m = astm::parse_message(text);
  if (m.offsets.size() != m.records.size()) return "offsets and records out of step";
  for (std::size_t i = 0; i < m.records.size(); ++i) {
    const auto& r = m.records[i];
    if (!inside(text, r.raw())) return "record view outside the input";
    if (static_cast<std::size_t>(r.raw().data() - text.data()) != m.offsets[i]) {
      return "record offset differs from its view";
    }
    for (std::size_t f = 0; f <= r.field_count() + 1; ++f) {
      const auto fv = r.field(f);
      if (!inside(r.raw(), fv.raw())) return "field view outside its record";
      (void)fv.decode();
      for (std::size_t k = 0; k <= fv.repeat_count(); ++k) {
        const auto rep = fv.repeat(k);
        if (!inside(fv.raw(), rep.raw())) return "repeat view outside its field";
        (void)rep.decode();
        for (std::size_t c = 0; c <= rep.component_count() + 1; ++c) {
          const auto comp = rep.component(c);
          if (!inside(rep.raw(), comp.raw())) return "component view outside its repeat";
          (void)comp.decode();
        }
      }
    }
  }
  for (const auto& d : m.diagnostics) {
    if (d.record_index < 1) return "diagnostic names record 0";
    if (d.byte_offset > text.size()) return "diagnostic offset past the end";
  }
  return nullptr;
}

// to_utf8 always returns valid UTF-8 (re-validating it changes nothing and is not lossy), and
// Latin-1 / 1252 bytes survive a trip through UTF-8.
inline const char* check_codec(std::string_view bytes) {
  for (const auto enc : {text_encoding::latin1, text_encoding::utf8, text_encoding::windows1252}) {
    bool lossy = false;
    const auto u = to_utf8(bytes, enc, &lossy);
    bool relossy = false;
    if (to_utf8(u, text_encoding::utf8, &relossy) != u) return "to_utf8 output changes when re-validated";
    if (relossy) return "to_utf8 output is lossy when re-validated";
    if (enc == text_encoding::latin1 && lossy) return "Latin-1 decoding reported a loss";
    bool back_lossy = false;
    const auto back = from_utf8(u, enc, &back_lossy);
    if (!lossy && enc != text_encoding::utf8) {
      if (back_lossy) return "from_utf8 lossy on text to_utf8 decoded without loss";
      if (back != bytes) return "bytes changed on a trip through UTF-8";
    }
  }
  return nullptr;
}

// Delimiter sets seen in captures (astm-facts.md 4.2).
constexpr std::array<astm::delimiters, 4> delimiter_sets{{
    {'|', '\\', '^', '&'},
    {'|', '@', '^', '\\'},
    {'|', '`', '^', '&'},
    {'|', '\\', '!', '~'},
}};

// record_writer: any byte string written as a field value decodes back to itself.
inline const char* check_writer(std::string_view value, std::size_t set) {
  const auto& d = delimiter_sets[set % delimiter_sets.size()];
  astm::record_writer w{d};
  w.header({"", "", "fuzz"});
  w.begin('C').field("1").field(value).components({std::string(value), std::string(value)}).end();
  w.begin('L').field("1").field("N").end();
  const std::string text = w.text();
  const auto m = astm::parse_message(text);
  if (!m.diagnostics.empty()) return "written records parse with diagnostics";
  if (m.records.size() != 3) return "written records do not parse back as three";
  if (m.records[1].field(3).decode() != value) return "written field does not decode back";
  if (m.records[1].field(4).component(1).decode() != value) return "written component 1 does not decode back";
  if (!value.empty() && m.records[1].field(4).component(2).decode() != value) {
    return "written component 2 does not decode back";
  }
  return nullptr;
}

}  // namespace detail

// Input: any bytes, read as E1394 record text (byte 0 also picks the writer's delimiter set).
// Checks the record layer and text decoding beyond "no crash, no sanitizer report": every view
// lies inside the input, split_messages returns increasing offsets of H records, to_utf8 output
// is valid UTF-8, and record_writer round-trips any value.
inline const char* run_records(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);  // own buffer: exact bounds
  const std::string_view text(input);

  if (const char* e = detail::check_records(text)) return e;

  const auto starts = astm::split_messages(text);
  for (std::size_t i = 0; i < starts.size(); ++i) {
    if (starts[i] >= text.size()) return "message start past the end";
    if (text[starts[i]] != 'H' && text[starts[i]] != 'h') return "message start is not an H record";
    if (i > 0 && starts[i] <= starts[i - 1]) return "message starts not increasing";
    const auto end = i + 1 < starts.size() ? starts[i + 1] : text.size();
    if (const char* e = detail::check_records(text.substr(starts[i], end - starts[i]))) return e;
  }

  // message::printable_ascii promises that no value read from the message holds a control
  // character (devices/ skips its scrub then): the sample id, value and unit of every result.
  if (const auto m = astm::parse_message(text); m.printable_ascii) {
    const auto control = [](const std::string& s) {
      return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == '\x7F'; });
    };
    for (const auto& r : astm::normalise(m, {}, "F").results)
      if (control(r.sample_id) || control(r.value) || control(r.unit)) return "control character from a printable_ascii message";
  }

  if (const char* e = detail::check_codec(text)) return e;
  return detail::check_writer(text, size == 0 ? 0 : static_cast<unsigned char>(text[0]));
}

}  // namespace interfaced::fuzz
