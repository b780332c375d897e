// libFuzzer target: E1381 link state machine driven by decoder events, pseudo-timeouts,
// confirmations and queued messages (see run_link for the input layout and invariants).
#include <cstdio>
#include <cstdlib>

#include "astm_fuzz_drivers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (const char* failure = interfaced::fuzz::run_link(data, size)) {
    std::fprintf(stderr, "invariant violated: %s\n", failure);
    std::abort();
  }
  return 0;
}
