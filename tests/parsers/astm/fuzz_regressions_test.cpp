// Replays every input kept under tests/fuzz/regressions/astm_frame and astm_link through the
// same drivers (and invariant checks) as the libFuzzer targets, in the normal test build.
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "astm_test_helpers.hpp"
#include "fuzz/astm_fuzz_drivers.hpp"
#include "support/files.hpp"

namespace {

const char* or_empty(const char* s) { return s != nullptr ? s : ""; }

std::vector<std::filesystem::path> inputs(const std::string& folder) {
  const auto dir = interfaced::test::fuzz_regressions_dir() / folder;
  std::vector<std::filesystem::path> files;
  REQUIRE(std::filesystem::is_directory(dir));
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().filename() != "README") files.push_back(e.path());
  }
  return files;
}

template <typename Driver>
void replay_all(const std::string& folder, Driver driver) {
  for (const auto& p : inputs(folder)) {
    const std::string bytes = interfaced::test::read_file(p);
    INFO(p.string());
    const char* failure = driver(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    CHECK(std::string(or_empty(failure)) == "");
  }
}

}  // namespace

TEST_CASE("fuzz regressions: every kept astm_frame input decodes without violating an invariant") {
  replay_all("astm_frame", interfaced::fuzz::run_frame_decoder);
}

TEST_CASE("fuzz regressions: every kept astm_link input runs without violating an invariant") {
  replay_all("astm_link", interfaced::fuzz::run_link);
}

TEST_CASE("fuzz drivers: every raw capture passes both drivers' invariants") {
  // A smoke test of the drivers on realistic input, and the seed corpus the fuzzers start from.
  for (const auto& c : interfaced::test::astm::raw_captures()) {
    const auto bytes = interfaced::test::capture(std::string("astm/") + c.file);
    if (!bytes) return;
    INFO(c.file);
    const std::string frame_input = std::string("\x80\x00", 2) + *bytes;
    CHECK(std::string(or_empty(interfaced::fuzz::run_frame_decoder(
              reinterpret_cast<const std::uint8_t*>(frame_input.data()), frame_input.size()))) ==
          "");
    // frame_text_size 40, max message 2,041 bytes, accept_frames_without_enq
    const std::string link_input = std::string("\x27\xFF\x02", 3) + *bytes;
    CHECK(std::string(or_empty(interfaced::fuzz::run_link(
              reinterpret_cast<const std::uint8_t*>(link_input.data()), link_input.size()))) == "");
  }
}
