#pragma once
// Helpers for the HL7 tests: turning the shared captures into message bytes as SOURCES.md
// documents them, and collecting MLLP decoder events as owned copies.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/hl7/mllp.hpp"

namespace interfaced::hl7::test {

struct owned_event {
  mllp_event_kind kind = mllp_event_kind::none;
  std::string message;
  std::error_code error;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  bool missing_trailer_cr = false;
  bool operator==(const owned_event&) const = default;
};

inline owned_event own(const mllp_event& e) {
  return {e.kind, std::string(e.message), e.error, e.offset, e.length, e.missing_trailer_cr};
}

// Feeds one chunk completely, appending every event.
inline void feed(mllp_decoder& d, std::string_view chunk, std::vector<owned_event>& out) {
  while (!chunk.empty()) {
    const mllp_put_result r = d.put(chunk);
    if (r.event.kind != mllp_event_kind::none) out.push_back(own(r.event));
    // An event may consume nothing (it was reported before the byte that ended it), never twice.
    if (r.consumed == 0 && r.event.kind == mllp_event_kind::none) break;
    chunk.remove_prefix(r.consumed);
  }
}

inline void finish(mllp_decoder& d, std::vector<owned_event>& out) {
  for (int i = 0; i < 4; ++i) {
    const mllp_event e = d.finish();
    if (e.kind == mllp_event_kind::none) break;
    out.push_back(own(e));
  }
}

inline std::vector<owned_event> decode_all(std::string_view bytes, mllp_options o = {}) {
  mllp_decoder d(o);
  std::vector<owned_event> out;
  feed(d, bytes, out);
  finish(d, out);
  return out;
}

inline std::vector<std::string> messages_of(const std::vector<owned_event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    if (e.kind == mllp_event_kind::message) out.push_back(e.message);
  }
  return out;
}

// A `.hl7` capture: raw bytes, with MLLP framing only where the file name says `-mllp`
// (SOURCES.md). Returns the message text (framing removed).
inline std::string unframe(std::string bytes) {
  if (!bytes.empty() && bytes.front() == '\x0B') bytes.erase(0, 1);
  if (bytes.size() >= 2 && bytes.substr(bytes.size() - 2) == "\x1C\r")
    bytes.resize(bytes.size() - 2);
  return bytes;
}

inline void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) {
    s.replace(p, from.size(), to);
  }
}

// The Mindray manual excerpts (SOURCES.md §3): `<SB>` `<CR>` `<EB>` stand for 0x0B 0x0D 0x1C;
// the text's own line ends are PDF wrapping (a field or even `<CR>` can be broken across two
// lines), and `1-30` / `--- PAGE 39 ---` lines are page furniture. So: drop the furniture lines,
// join all lines, then replace the mnemonics. The result is an MLLP byte stream.
inline std::string manual_to_stream(const std::string& text) {
  std::string joined;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line = std::string_view(text).substr(pos, end - pos);
    const bool page_marker = line.substr(0, 9) == "--- PAGE ";
    const bool page_number = !line.empty() &&
                             line.find_first_not_of("0123456789-") == std::string_view::npos &&
                             line.find('-') != std::string_view::npos;
    if (!page_marker && !page_number) joined.append(line);
    pos = end + 1;
  }
  replace_all(joined, "<SB>", "\x0B");
  replace_all(joined, "<CR>", "\r");
  replace_all(joined, "<EB>", "\x1C");
  return joined;
}

// The session-log decoders below (Go quoting, base64) repeat devices/capture_input.cpp on purpose:
// the parser tests read the captures independently of the devices floor, as SOURCES.md describes
// them, so a bug in capture decoding cannot hide the same bug here.
// Go's strconv.Quote escapes as used in the cobas pure trace (SOURCES.md §1).
inline std::string go_unquote(std::string_view q) {
  std::string out;
  for (std::size_t i = 0; i < q.size(); ++i) {
    if (q[i] != '\\' || i + 1 >= q.size()) {
      out.push_back(q[i]);
      continue;
    }
    const char c = q[++i];
    switch (c) {
      case 'v':
        out.push_back('\v');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 't':
        out.push_back('\t');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case '"':
        out.push_back('"');
        break;
      case 'x': {
        const std::string hex(q.substr(i + 1, 2));
        out.push_back(static_cast<char>(std::stoi(hex, nullptr, 16)));
        i += 2;
        break;
      }
      default:
        out.push_back('\\');
        out.push_back(c);
    }
  }
  return out;
}

// The quoted strings of every line of `log` that starts with `prefix` followed by `"`.
inline std::vector<std::string> go_quoted_lines(const std::string& log, std::string_view prefix) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < log.size()) {
    std::size_t end = log.find('\n', pos);
    if (end == std::string::npos) end = log.size();
    std::string_view line = std::string_view(log).substr(pos, end - pos);
    pos = end + 1;
    if (line.substr(0, prefix.size()) != prefix) continue;
    line.remove_prefix(prefix.size());
    if (line.empty() || line.front() != '"') continue;
    // The closing quote is the last unescaped '"' on the line ("..." (201 chars) follows some).
    std::size_t close = std::string_view::npos;
    for (std::size_t i = 1; i < line.size(); ++i) {
      if (line[i] == '\\') {
        ++i;
      } else if (line[i] == '"') {
        close = i;
        break;
      }
    }
    if (close == std::string_view::npos) continue;
    out.push_back(go_unquote(line.substr(1, close - 1)));
  }
  return out;
}

inline std::string base64_decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = val(c);
    if (v < 0) break;  // '=' padding or the end of a cut log line
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFFu));
    }
  }
  return out;
}

// Values after `marker` on each line of a log.
inline std::vector<std::string> after_marker(const std::string& log, std::string_view marker) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while ((pos = log.find(marker, pos)) != std::string::npos) {
    pos += marker.size();
    std::size_t end = log.find('\n', pos);
    if (end == std::string::npos) end = log.size();
    out.push_back(log.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

}  // namespace interfaced::hl7::test
