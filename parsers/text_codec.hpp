#pragma once
// Text decoding per device: the bytes analysers send -> UTF-8. Pure.
// Latin-1 is the LIS02-A2 default (5.1); UTF-8 and Windows-1252 occur in the field (Ortho VISION).

#include <optional>
#include <string>
#include <string_view>

namespace interfaced {

enum class text_encoding { latin1, utf8, windows1252 };

// "latin1" | "iso-8859-1" | "8859/1", "utf-8" | "utf8" | "UNICODE UTF-8", "windows-1252" |
// "cp1252". Case-insensitive, surrounding blanks ignored; also "latin-1", "iso8859-1",
// "iso_8859-1", "ascii", "us-ascii" (ASCII is a subset of Latin-1), "windows1252", "cp-1252".
// nullopt otherwise.
[[nodiscard]] std::optional<text_encoding> parse_encoding(std::string_view name) noexcept;

// The canonical name parse_encoding accepts: "latin1", "utf-8", "windows-1252".
[[nodiscard]] std::string_view encoding_name(text_encoding enc) noexcept;

// Converts to UTF-8. Bytes with no meaning become U+FFFD: invalid UTF-8 (one U+FFFD per maximal
// invalid subsequence, as Unicode 3.9 recommends: overlongs, surrogates, > U+10FFFF, truncated)
// and Windows-1252's undefined 0x81 0x8D 0x8F 0x90 0x9D. Latin-1 maps every byte. Sets *lossy to
// true when a U+FFFD was produced; never clears it, so one flag can cover several calls.
[[nodiscard]] std::string to_utf8(std::string_view bytes, text_encoding enc, bool* lossy = nullptr);

// The reverse, for text sent to a device (orders, query answers): UTF-8 -> the device's bytes.
// A character the encoding cannot hold, or invalid UTF-8, becomes '?' and sets *lossy (never
// cleared). For utf8 the output is valid UTF-8 (invalid input -> U+FFFD).
[[nodiscard]] std::string from_utf8(std::string_view utf8, text_encoding enc,
                                    bool* lossy = nullptr);

}  // namespace interfaced
