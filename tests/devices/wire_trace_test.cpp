// The wire trace: bytes -> mnemonic lines -> bytes, exactly; replay reads only the analyser's side.

#include <catch2/catch.hpp>

#include "devices/capture_input.hpp"
#include "devices/wire_trace.hpp"
#include "parsers/astm/frame_decoder.hpp"

using namespace interfaced::devices;

TEST_CASE("wire trace: mnemonic form as technicians read it") {
  CHECK(to_mnemonics("\x02" "1H|\\^&\r\x03" "3C\r\n") == "<STX>1H|\\^&<CR><ETX>3C<CR><LF>");
  CHECK(to_mnemonics(std::string("<15\x1e\x7f", 5)) == "<x3C>15<x1E><x7F>");
  CHECK(format_trace_line("2026-11-23T08:00:01.250Z", true, "\x05") == "2026-11-23T08:00:01.250Z RX <ENQ>");
  CHECK(format_trace_line("2026-11-23T08:00:01.251Z", false, "\x06") == "2026-11-23T08:00:01.251Z TX <ACK>");
}

TEST_CASE("wire trace: every byte value round-trips, TX lines are not replayed") {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  std::string trace = std::string(wire_trace_header) + ", device t\n";
  trace += format_trace_line("t1", true, all.substr(0, 100)) + "\n";
  trace += format_trace_line("t2", false, "\x06\x15 never replayed") + "\n";
  trace += format_trace_line("t3", true, all.substr(100)) + "\n";
  CHECK(is_wire_trace(trace));
  CHECK(trace_rx_bytes(trace) == all);
}

TEST_CASE("wire trace: replay input detection reads a trace as the analyser's byte stream") {
  const std::string frame = interfaced::astm::encode_frame(1, "H|\\^&\rL|1|N\r", true);
  std::string trace = std::string(wire_trace_header) + ", device t\n";
  trace += format_trace_line("a", true, "\x05") + "\n" + format_trace_line("b", false, "\x06") + "\n";
  trace += format_trace_line("c", true, frame) + "\n" + format_trace_line("d", true, "\x04") + "\n";
  const auto in = decode_capture(trace);
  CHECK(in.kind == capture_kind::astm_frames);
  CHECK(in.bytes == "\x05" + frame + "\x04");
}
