#pragma once
// Text decoding per device: the bytes analysers send -> UTF-8. Pure.
// Latin-1 is the LIS02-A2 default (5.1); UTF-8 and Windows-1252 occur in the field (Ortho VISION).

#include <optional>
#include <string>
#include <string_view>

namespace interfaced {

enum class text_encoding { latin1, utf8, windows1252 };

// "latin1" | "iso-8859-1" | "8859/1", "utf-8" | "utf8" | "UNICODE UTF-8", "windows-1252" | "cp1252".
[[nodiscard]] std::optional<text_encoding> parse_encoding(std::string_view name) noexcept;

// Converts to UTF-8. Invalid UTF-8 input bytes become U+FFFD; sets *lossy when that happened.
[[nodiscard]] std::string to_utf8(std::string_view bytes, text_encoding enc, bool* lossy = nullptr);

}  // namespace interfaced
