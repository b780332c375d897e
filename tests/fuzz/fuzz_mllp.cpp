// libFuzzer target: the MLLP decoder (chunking independence, bounded messages, wrap round trip).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "../parsers/hl7/fuzz_drivers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (const char* bad = interfaced::fuzz::hl7::mllp_driver(data, size)) {
    std::fprintf(stderr, "invariant broken: %s\n", bad);
    std::abort();
  }
  return 0;
}
