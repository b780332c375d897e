// libFuzzer target: HL7 message view, normalise, ACK / RSP^K11 builders and the response checker.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "../parsers/hl7/fuzz_drivers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (const char* bad = interfaced::fuzz::hl7::message_driver(data, size)) {
    std::fprintf(stderr, "invariant broken: %s\n", bad);
    std::abort();
  }
  return 0;
}
