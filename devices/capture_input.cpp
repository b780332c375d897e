#include "devices/capture_input.hpp"

#include "devices/wire_trace.hpp"

#include <array>
#include <cctype>
#include <utility>

namespace interfaced::devices {
namespace {

struct mnemonic {
  std::string_view name;
  char byte;
};
constexpr std::array<mnemonic, 16> mnemonics{{{"STX", 0x02}, {"ETX", 0x03}, {"EOT", 0x04},
                                              {"ENQ", 0x05}, {"ACK", 0x06}, {"NAK", 0x15},
                                              {"ETB", 0x17}, {"CR", 0x0D}, {"LF", 0x0A},
                                              {"VT", 0x0B}, {"SB", 0x0B}, {"FS", 0x1C},
                                              {"EB", 0x1C}, {"SOH", 0x01}, {"DLE", 0x10},
                                              {"NUL", 0x00}}};

bool has_control_bytes(std::string_view s, std::string_view which) {
  return s.find_first_of(which) != std::string_view::npos;
}

// "<STX>" / "[STX]" at i: the byte and the length of the mnemonic, or {0, 0}.
std::pair<char, std::size_t> mnemonic_at(std::string_view s, std::size_t i) {
  const char open = s[i];
  const char close = open == '<' ? '>' : ']';
  for (const auto& m : mnemonics) {
    const std::size_t len = m.name.size() + 2;
    if (i + len <= s.size() && s[i + len - 1] == close && s.substr(i + 1, m.name.size()) == m.name)
      return {m.byte, len};
  }
  return {0, 0};
}

bool looks_mnemonic(std::string_view s) {
  for (std::string_view probe : {"<STX>", "[STX]", "<ENQ>", "[ENQ]", "<SB>", "<VT>", "<EB>", "<FS>", "<CR>"})
    if (s.find(probe) != std::string_view::npos) return true;
  return false;
}

bool looks_escaped(std::string_view s) {
  for (std::string_view probe : {"\\x02", "\\x05", "\\x0b", "\\x0B", "\\x0D", "\\x0d"})
    if (s.find(probe) != std::string_view::npos) return true;
  return false;
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Physical line breaks are layout; mnemonics and \xNN escapes are the data.
std::string decode_text(std::string_view s, bool mnem, bool esc) {
  std::string joined;
  joined.reserve(s.size());
  for (char c : s)
    if (c != '\r' && c != '\n') joined += c;
  std::string out;
  out.reserve(joined.size());
  for (std::size_t i = 0; i < joined.size();) {
    const char c = joined[i];
    if (mnem && (c == '<' || c == '[')) {
      auto [byte, len] = mnemonic_at(joined, i);
      if (len) {
        out += byte;
        i += len;
        continue;
      }
    }
    if (esc && c == '\\' && i + 3 < joined.size() && joined[i + 1] == 'x' &&
        hex(joined[i + 2]) >= 0 && hex(joined[i + 3]) >= 0) {
      out += static_cast<char>(hex(joined[i + 2]) * 16 + hex(joined[i + 3]));
      i += 4;
      continue;
    }
    out += c;
    ++i;
  }
  return out;
}

bool is_record_line(std::string_view line) {
  if (line.size() < 2) return false;
  const char t = static_cast<char>(std::toupper(static_cast<unsigned char>(line[0])));
  return std::string_view("HPORCQMSL").find(t) != std::string_view::npos && !std::isalnum(static_cast<unsigned char>(line[1]));
}

capture_input classify(std::string bytes, bool was_text, std::string description) {
  capture_input in;
  in.was_text = was_text;
  in.description = std::move(description);
  if (has_control_bytes(bytes, "\x0b") && has_control_bytes(bytes, "\x1c")) {
    in.kind = capture_kind::hl7_mllp;
  } else if (has_control_bytes(bytes, std::string_view("\x02\x05\x04", 3))) {
    in.kind = capture_kind::astm_frames;
  }
  if (in.kind != capture_kind::unknown) {
    in.bytes = std::move(bytes);
    return in;
  }
  // Records or segments, one per line; annotations dropped.
  std::string out;
  bool hl7 = false, astm = false;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    std::size_t end = bytes.find_first_of("\r\n", pos);
    if (end == std::string::npos) end = bytes.size();
    std::string_view line(bytes.data() + pos, end - pos);
    pos = end;
    while (pos < bytes.size() && (bytes[pos] == '\r' || bytes[pos] == '\n')) {
      // CR LF is one separator; a lone CR or LF is one too. Blank lines vanish either way.
      ++pos;
    }
    if (line.empty()) continue;
    if (line[0] == '#' || line[0] == '@') {
      ++in.annotation_lines;
      continue;
    }
    if (!hl7 && !astm) {
      if (line.starts_with("MSH")) hl7 = true;
      else if (is_record_line(line)) astm = true;
    }
    out.append(line);
    out += '\r';
  }
  in.kind = hl7 ? capture_kind::hl7_segments : astm ? capture_kind::astm_records : capture_kind::unknown;
  in.bytes = std::move(out);
  if (in.annotation_lines) in.description += ", " + std::to_string(in.annotation_lines) + " annotation lines skipped";
  return in;
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::string base64_decode(std::string_view in) {
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = base64_value(c);
    if (v < 0) continue;  // '=' padding, whitespace
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFFu);
    }
  }
  return out;
}

// A middleware's Java log (hmislk/limsmw): "Message Received from Analyzer Encoded = <base64>"
// holds the bytes as read (leading 0x0B already dropped); replies from the LIS are not replayed.
bool is_limsmw_log(std::string_view s) { return s.find("Message Received from Analyzer Encoded = ") != std::string_view::npos; }

std::string limsmw_rx_bytes(std::string_view s, std::vector<std::string>& notes) {
  std::size_t count = 0;
  static constexpr std::string_view marker = "Message Received from Analyzer Encoded = ";
  std::string out;
  for (std::size_t pos = s.find(marker); pos != std::string_view::npos; pos = s.find(marker, pos + 1)) {
    const std::size_t start = pos + marker.size();
    const std::size_t end = s.find_first_of("\r\n", start);
    std::string msg = base64_decode(s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    // The bytes as read end "<segment end> 0x1C 0x0D" (or 0x0A): drop the MLLP trailer, keep the
    // segment ends exactly as the analyser wrote them (this one used LF). A message without the
    // trailer was cut by the middleware's 1024-byte read buffer (SOURCES.md): its last, partial
    // segment is dropped and the cut is reported, so no half-read value is replayed as a result.
    const std::size_t fs = msg.rfind('\x1c');
    if (fs != std::string::npos && msg.find_first_not_of("\r\n", fs + 1) == std::string::npos) {
      msg.resize(fs);
    } else {
      // The cut segment may even end in a line break the logger added: drop the last segment
      // whatever its ending.
      const std::size_t body_end = msg.find_last_not_of("\r\n");
      const std::size_t last_end = body_end == std::string::npos ? std::string::npos : msg.find_last_of("\r\n", body_end);
      const std::size_t kept = last_end == std::string::npos ? 0 : last_end + 1;
      notes.push_back("message " + std::to_string(count + 1) + " was cut at " + std::to_string(msg.size()) +
                      " bytes by the logging middleware: its last partial segment (" +
                      std::to_string(msg.size() - kept) + " bytes) is not replayed");
      msg.resize(kept);
    }
    ++count;
    out += '\x0b';
    out += msg;
    out += "\x1c\r";
  }
  return out;
}

// A Go reader's debug trace (wisemed-labreaders Comm.txt): each TCP read as a Go-quoted string
// after `===>`; host replies after `<----` are not replayed.
bool is_go_quoted_log(std::string_view s) { return s.find("===>\"") != std::string_view::npos; }

std::string go_unquote(std::string_view q) {
  std::string out;
  for (std::size_t i = 0; i < q.size(); ++i) {
    if (q[i] != '\\' || i + 1 >= q.size()) {
      out += q[i];
      continue;
    }
    const char e = q[++i];
    switch (e) {
      case 'v': out += '\x0b'; break;
      case 'r': out += '\r'; break;
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case '\\': out += '\\'; break;
      case '"': out += '"'; break;
      case 'x':
        if (i + 2 < q.size() && hex(q[i + 1]) >= 0 && hex(q[i + 2]) >= 0) {
          out += static_cast<char>(hex(q[i + 1]) * 16 + hex(q[i + 2]));
          i += 2;
        }
        break;
      default: out += e;
    }
  }
  return out;
}

std::string go_log_rx_bytes(std::string_view s) {
  std::string out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t end = s.find('\n', pos);
    if (end == std::string_view::npos) end = s.size();
    std::string_view line = s.substr(pos, end - pos);
    pos = end + 1;
    if (!line.starts_with("===>\"")) continue;
    line.remove_prefix(5);
    const std::size_t close = line.rfind('"');
    out += go_unquote(line.substr(0, close == std::string_view::npos ? line.size() : close));
  }
  return out;
}

}  // namespace

const char* to_string(capture_kind k) noexcept {
  switch (k) {
    case capture_kind::astm_frames: return "ASTM E1381 frames";
    case capture_kind::astm_records: return "ASTM E1394 records";
    case capture_kind::hl7_mllp: return "HL7 over MLLP";
    case capture_kind::hl7_segments: return "HL7 segments";
    case capture_kind::unknown: return "unknown";
  }
  return "unknown";
}

capture_input decode_capture(std::string_view file) {
  if (is_wire_trace(file)) return classify(trace_rx_bytes(file), true, "interfaced wire trace (RX bytes)");
  if (is_limsmw_log(file)) {
    std::vector<std::string> notes;
    std::string bytes = limsmw_rx_bytes(file, notes);
    capture_input in = classify(std::move(bytes), true, "middleware log (base64 messages received from the analyser)");
    in.notes = std::move(notes);
    return in;
  }
  if (is_go_quoted_log(file)) return classify(go_log_rx_bytes(file), true, "debug trace (Go-quoted reads from the analyser)");
  // Raw bytes first: a real control byte means the file is what was on the wire.
  if (has_control_bytes(file, std::string_view("\x02\x05\x04\x0b\x1c", 5)))
    return classify(std::string(file), false, "raw bytes");
  const bool mnem = looks_mnemonic(file);
  const bool esc = looks_escaped(file);
  if (mnem || esc)
    return classify(decode_text(file, mnem, esc), true,
                    mnem ? "text with control-character mnemonics" : "text with \\xNN escapes");
  // Bare records or bare segments: classify() says which (an HL7 message is not "records").
  static constexpr std::string_view records = "records-only text";
  capture_input in = classify(std::string(file), false, std::string(records));
  if (in.kind == capture_kind::hl7_segments) in.description.replace(0, records.size(), "HL7 segments without MLLP framing");
  return in;
}

}  // namespace interfaced::devices
