#pragma once
// The per-device wire trace: every byte in both directions, timestamped, control characters as
// mnemonics (`<STX>1H|\^&…<CR><ETX>3C<CR><LF>`), one line per read or write. `interfaced replay`
// reads a trace back (only the analyser's bytes, RX), which is how a lab records a capture for CI.
//
//   # interfaced wire trace, device xn-1
//   2026-11-23T09:00:01.250+01:00 RX <ENQ>
//   2026-11-23T09:00:01.251+01:00 TX <ACK>
//
// Named mnemonics for STX ETX EOT ENQ ACK NAK ETB CR LF VT FS and friends; any other control
// byte, DEL, and `<` itself are written `<xHH>`, so every byte string round-trips exactly.

#include <string>
#include <string_view>

namespace interfaced::devices {

inline constexpr std::string_view wire_trace_header = "# interfaced wire trace";

// One trace line (without the newline) for `bytes` read (rx) or written at `timestamp`.
[[nodiscard]] std::string format_trace_line(std::string_view timestamp, bool rx, std::string_view bytes);
// Bytes as mnemonics, as in a trace line.
[[nodiscard]] std::string to_mnemonics(std::string_view bytes);
// Whether text is a wire trace (starts with the header line).
[[nodiscard]] bool is_wire_trace(std::string_view text) noexcept;
// The analyser's bytes (RX lines) of a trace, in order, decoded.
[[nodiscard]] std::string trace_rx_bytes(std::string_view text);

}  // namespace interfaced::devices
