// libFuzzer target: E1381 link state machine driven by decoder events, pseudo-timeouts,
// confirmations and queued messages (see run_link for the input layout and invariants).
#include "astm_fuzz_drivers.hpp"
#include "fuzz_target.hpp"

INTERFACED_FUZZ_TARGET(interfaced::fuzz::run_link)
