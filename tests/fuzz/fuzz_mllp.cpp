// libFuzzer target: the MLLP decoder (chunking independence, bounded messages, wrap round trip).
#include "hl7_fuzz_drivers.hpp"
#include "fuzz_target.hpp"

INTERFACED_FUZZ_TARGET(interfaced::fuzz::hl7::mllp_driver)
