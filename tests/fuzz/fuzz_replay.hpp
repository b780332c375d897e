#pragma once
// The fuzz drivers (astm_fuzz_drivers.hpp, hl7_fuzz_drivers.hpp) in the normal tests: every input
// kept under tests/fuzz/regressions/<target> goes through the very driver its libFuzzer target
// runs, so a fixed crash stays fixed and the seeds stay valid. Catch2; no libFuzzer needed.

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "support/files.hpp"

namespace interfaced::fuzz {

// What `driver` says of `bytes`: "" when every invariant held, else the first one broken.
template <class Driver>
std::string run_driver(Driver driver, std::string_view bytes) {
  const char* failure = driver(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  return failure != nullptr ? failure : "";
}

// Runs every kept input of tests/fuzz/regressions/<folder> through `driver` (each CHECKed);
// returns how many there were.
template <class Driver>
std::size_t replay_regressions(const std::string& folder, Driver driver) {
  const auto inputs = test::fuzz_regression_inputs(folder);
  for (const auto& p : inputs) {
    const std::string bytes = test::read_file(p);
    INFO(p.string());
    CHECK(run_driver(driver, bytes) == "");
  }
  return inputs.size();
}

}  // namespace interfaced::fuzz
