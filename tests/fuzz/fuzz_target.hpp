#pragma once
// A libFuzzer target is one line: INTERFACED_FUZZ_TARGET(driver) defines LLVMFuzzerTestOneInput
// to run a driver of astm_fuzz_drivers.hpp / hl7_fuzz_drivers.hpp and abort on the first broken
// invariant it reports (libFuzzer then keeps the input as a crash; keep it under regressions/,
// which the normal tests replay through the same driver).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace interfaced::fuzz {

using driver_fn = const char* (*)(const std::uint8_t* data, std::size_t size);

inline int run_target(driver_fn driver, const std::uint8_t* data, std::size_t size) {
  if (const char* failure = driver(data, size)) {
    std::fprintf(stderr, "invariant violated: %s\n", failure);
    std::abort();
  }
  return 0;
}

}  // namespace interfaced::fuzz

#define INTERFACED_FUZZ_TARGET(driver)                                                \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { \
    return ::interfaced::fuzz::run_target(driver, data, size);                        \
  }
