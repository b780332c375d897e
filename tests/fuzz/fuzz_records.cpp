// libFuzzer target: E1394 record layer and text decoding (parsers/astm/records.hpp,
// parsers/text_codec.hpp); see run_records for the properties checked.
#include "astm_fuzz_drivers.hpp"
#include "fuzz_target.hpp"

INTERFACED_FUZZ_TARGET(interfaced::fuzz::run_records)
