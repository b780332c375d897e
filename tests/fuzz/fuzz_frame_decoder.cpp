// libFuzzer target: E1381 frame decoder (see run_frame_decoder for the input layout and checks).
#include <cstdio>
#include <cstdlib>

#include "astm_fuzz_drivers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (const char* failure = interfaced::fuzz::run_frame_decoder(data, size)) {
    std::fprintf(stderr, "invariant violated: %s\n", failure);
    std::abort();
  }
  return 0;
}
