#pragma once
// What `interfaced replay` reads: a capture file in any of the forms labs and vendors write them,
// turned into the byte stream the analyser put on the wire.
//   raw ASTM (E1381 frames, with or without ENQ/EOT) | raw MLLP (0x0B ... 0x1C 0x0D)
//   text with control characters as <STX> / [STX] mnemonics or \x02 escapes: physical line
//     breaks are layout, not data (vendor manuals wrap lines anywhere, even inside <CR>)
//   an interfaced wire trace (devices/wire_trace.hpp): the analyser's (RX) bytes
//   session logs of other middleware whose received bytes can be recovered exactly: base64
//     "Message Received from Analyzer Encoded = " lines (limsmw), Go-quoted `===>"…"` reads
//   records-only ASTM or bare HL7 segments, CR / LF / CRLF separated; `#` and `@` lines are
//     annotations (comments, test-script directives), not data.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace interfaced::devices {

enum class capture_kind { astm_frames, astm_records, hl7_mllp, hl7_segments, unknown };

struct capture_input {
  capture_kind kind = capture_kind::unknown;
  std::string bytes;            // the stream to feed (decoded when the file was text)
  bool was_text = false;        // offsets then refer to the decoded stream, not the file
  std::size_t annotation_lines = 0;
  std::string description;      // "raw ASTM frames", "text with <STX> mnemonics", ...
  std::vector<std::string> notes;  // what the decoding had to leave out, and why (warnings)
};

[[nodiscard]] capture_input decode_capture(std::string_view file_bytes);
[[nodiscard]] const char* to_string(capture_kind k) noexcept;

}  // namespace interfaced::devices
