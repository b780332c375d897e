#pragma once
// The one rule by which a result value is "plainly a number" (result::numeric), for every protocol
// and for the rules engine that compares values:
//   [blanks] [+|-] digits with at most one decimal separator, at least one digit [blanks]
// - The decimal separator is '.'; with comma_decimal (an analyser profile's leniency, e.g.
//   `7,41`) ',' is one too. Either way one separator at most: `1,234.5` is not a number.
// - Censored and qualified values (`<15`, `>1000`, `+++`, `-----`, `POS`), exponents (`1e5`),
//   thousands separators and anything else are not numbers: the value stays text only.
// - At most 64 characters after trimming; the number must be finite.
// Pure, noexcept, no locale.

#include <optional>
#include <string_view>

namespace interfaced {

[[nodiscard]] std::optional<double> parse_number(std::string_view text, bool comma_decimal = false) noexcept;

}  // namespace interfaced
