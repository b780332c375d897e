#include "devices/wire_trace.hpp"

#include <array>
#include <cstdio>

namespace interfaced::devices {
namespace {

struct name {
  char byte;
  std::string_view text;
};
constexpr std::array<name, 14> names{{{0x02, "STX"}, {0x03, "ETX"}, {0x04, "EOT"}, {0x05, "ENQ"},
                                      {0x06, "ACK"}, {0x15, "NAK"}, {0x17, "ETB"}, {0x0D, "CR"},
                                      {0x0A, "LF"}, {0x0B, "VT"}, {0x1C, "FS"}, {0x01, "SOH"},
                                      {0x10, "DLE"}, {0x00, "NUL"}}};

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes one line's payload: <NAME> and <xHH> mnemonics, everything else literal.
void decode_payload(std::string_view s, std::string& out) {
  for (std::size_t i = 0; i < s.size();) {
    if (s[i] == '<') {
      const std::size_t close = s.find('>', i);
      if (close != std::string_view::npos && close - i <= 4) {
        const std::string_view m = s.substr(i + 1, close - i - 1);
        if (m.size() == 3 && m[0] == 'x' && hex(m[1]) >= 0 && hex(m[2]) >= 0) {
          out += static_cast<char>(hex(m[1]) * 16 + hex(m[2]));
          i = close + 1;
          continue;
        }
        bool found = false;
        for (const auto& n : names) {
          if (n.text == m) {
            out += n.byte;
            found = true;
            break;
          }
        }
        if (found) {
          i = close + 1;
          continue;
        }
      }
    }
    out += s[i++];
  }
}

}  // namespace

std::string to_mnemonics(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + 16);
  for (char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    bool named = false;
    for (const auto& n : names) {
      if (n.byte == c) {
        out += '<';
        out += n.text;
        out += '>';
        named = true;
        break;
      }
    }
    if (named) continue;
    if (u < 0x20 || u == 0x7F || c == '<') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<x%02X>", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_trace_line(std::string_view timestamp, bool rx, std::string_view bytes) {
  std::string line(timestamp);
  line += rx ? " RX " : " TX ";
  line += to_mnemonics(bytes);
  return line;
}

bool is_wire_trace(std::string_view text) noexcept { return text.starts_with(wire_trace_header); }

std::string trace_rx_bytes(std::string_view text) {
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    const std::size_t rx = line.find(" RX ");
    const std::size_t sp = line.find(' ');
    if (rx == std::string_view::npos || rx != sp) continue;  // TX lines: what we sent
    decode_payload(line.substr(rx + 4), out);
  }
  return out;
}

}  // namespace interfaced::devices
