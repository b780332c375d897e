// libFuzzer target: E1381 frame decoder (see run_frame_decoder for the input layout and checks).
#include "astm_fuzz_drivers.hpp"
#include "fuzz_target.hpp"

INTERFACED_FUZZ_TARGET(interfaced::fuzz::run_frame_decoder)
