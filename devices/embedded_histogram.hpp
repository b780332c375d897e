#pragma once
// Histograms an analyser embeds in its messages (issue #15 point 2, file-reports.md "Where files
// come from"): Horiba Yumizen H500/H550 `M|n|HISTOGRAM|<group>|<name>|<markers>|<curve>` records,
// each data field `FLOATLE-stream/deflate:base64^<base64>`: base64 of a raw deflate stream
// (RFC 1951, no zlib header) of little-endian IEEE-754 floats.
//
// Pure: text in, values or an error out; no I/O, no clock, no log. Every size is bounded
// (embedded_limits): the encoded text, the inflated bytes (a decompression bomb is refused as
// soon as it inflates past the limit, never buffered) and the number of points.
//
// The float layout, read from the real H500 captures (horiba-yumizen_h500-*.astm; the numbers
// in devices/embedded_histogram.cpp's comments) -- not from a vendor manual, which we do not have:
//   curve:   x_min x_max y_min y_max | nx x_tick[nx] | ny y_tick[ny] | 2 n | x[n] | y[n]
//   markers: x_min x_max y_min y_max | 2 n | position[n] | id[n]
// Counts are whole numbers; the length must match exactly, or the data is refused.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace interfaced::devices {

enum class embedded_error {
  none,
  unknown_encoding,   // not `FLOATLE-stream/deflate:base64^...`
  too_large,          // encoded text or inflated bytes over embedded_limits
  bad_base64,         // a character outside the alphabet, or nothing decoded
  bad_deflate,        // the deflate stream is corrupt
  truncated,          // the deflate stream ends before its last block
  not_floats,         // inflated length not a multiple of 4, or a NaN / infinity
  bad_layout,         // the floats do not follow the layout above (counts, lengths)
};
[[nodiscard]] const char* to_string(embedded_error e) noexcept;

struct embedded_limits {
  std::size_t max_encoded = 1u << 20;    // base64 characters of one field
  std::size_t max_inflated = 256u << 10; // bytes after inflate (the real curves: ~2 KiB)
  std::size_t max_points = 8192;         // points of a curve, markers of a record
};

struct inflate_result {
  std::string bytes;
  embedded_error error = embedded_error::none;
};
// A raw deflate stream (no header) inflated into at most `max_out` bytes.
[[nodiscard]] inflate_result inflate_raw(std::string_view compressed, std::size_t max_out);

struct floats_result {
  std::vector<float> values;
  embedded_error error = embedded_error::none;
};
// `FLOATLE-stream/deflate:base64^DATA` (the field as decoded: components split by '^') -> floats.
[[nodiscard]] floats_result decode_float_field(std::string_view field, const embedded_limits& limits = {});

struct histogram {
  std::string group;  // M.4 (`RBC/PLT`)
  std::string name;   // M.5 (`PltAlongRes`)
  double x_min = 0, x_max = 0, y_min = 0, y_max = 0;  // the display range the analyser gives
  std::vector<double> x_ticks, y_ticks;               // graduations (`2 10 20 30` fL for PLT)
  std::vector<double> x, y;                           // the curve, x ascending as sent
  std::vector<double> markers;                        // thresholds, at x positions
  std::vector<int> marker_ids;                        // their ids as sent (0 1 2)
};

struct histogram_result {
  std::optional<histogram> value;
  embedded_error error = embedded_error::none;
  std::string detail;  // which field and what was wrong, for the device log
};

// The two data fields of a HISTOGRAM M record (M.6 markers, M.7 curve) -> the histogram.
[[nodiscard]] histogram_result decode_histogram(std::string_view group, std::string_view name,
                                                std::string_view markers_field, std::string_view curve_field,
                                                const embedded_limits& limits = {});

}  // namespace interfaced::devices

namespace interfaced::devices {

// A HISTOGRAM M record of an E1394 message, as sent (fields decoded, not yet the floats), with
// the O record it belongs to (M attaches to the preceding record; its O scope runs to the next
// O, P or L record): the results of that scope are its sample's.
struct histogram_record {
  std::size_t record_index = 0;  // 1-based, as source_location::record_index
  std::size_t scope_begin = 0;   // the O record (1-based); 0: none before it
  std::size_t scope_end = 0;     // the record that closes the scope (1-based), or records + 1
  std::string o_sample;          // O.3 component 1, else O.4 component 1 (decoded)
  std::string group;             // M.4
  std::string name;              // M.5
  std::string markers;           // M.6
  std::string curve;             // M.7
};
// Every `M|n|HISTOGRAM|...` record of the message text (H..L records). Other M records (MATRIX,
// REAGENT) are not histograms and are left out.
[[nodiscard]] std::vector<histogram_record> histogram_records(std::string_view message_text);

}  // namespace interfaced::devices
