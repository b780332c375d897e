// Replays every input kept under tests/fuzz/regressions/astm_frame, astm_link and astm_records
// through the same drivers (and invariant checks) as the libFuzzer targets, in the normal test
// build.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "astm_test_helpers.hpp"
#include "fuzz/astm_fuzz_drivers.hpp"
#include "fuzz/fuzz_replay.hpp"
#include "support/files.hpp"

using interfaced::fuzz::replay_regressions;
using interfaced::fuzz::run_driver;

TEST_CASE("fuzz regressions: every kept astm_frame input decodes without violating an invariant") {
  CHECK(replay_regressions("astm_frame", interfaced::fuzz::run_frame_decoder) > 0);
}

TEST_CASE("fuzz regressions: every kept astm_link input runs without violating an invariant") {
  CHECK(replay_regressions("astm_link", interfaced::fuzz::run_link) > 0);
}

TEST_CASE("fuzz regressions: every kept astm_records input parses without violating an invariant") {
  CHECK(replay_regressions("astm_records", interfaced::fuzz::run_records) > 0);
}

TEST_CASE("fuzz drivers: every raw capture passes both drivers' invariants") {
  // A smoke test of the drivers on realistic input, and the seed corpus the fuzzers start from.
  for (const auto& c : interfaced::test::astm::raw_captures()) {
    const auto bytes = interfaced::test::capture(std::string("astm/") + c.file);
    if (!bytes) return;
    INFO(c.file);
    CHECK(run_driver(interfaced::fuzz::run_frame_decoder, std::string("\x80\x00", 2) + *bytes) == "");
    // frame_text_size 40, max message 2,041 bytes, accept_frames_without_enq
    CHECK(run_driver(interfaced::fuzz::run_link, std::string("\x27\xFF\x02", 3) + *bytes) == "");
  }
}

TEST_CASE("fuzz drivers: every ASTM capture passes the records driver's invariants") {
  // Frames, sessions and record text alike: the record layer must hold on any bytes.
  const auto files = interfaced::test::capture_files("astm");
  if (!files) return;
  CHECK(!files->empty());
  for (const auto& p : *files) {
    INFO(p.string());
    CHECK(run_driver(interfaced::fuzz::run_records, interfaced::test::read_file(p)) == "");
  }
}
