// Replays every input kept under tests/fuzz/regressions/hl7_* through the fuzz targets' checks.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "fuzz/fuzz_replay.hpp"
#include "fuzz/hl7_fuzz_drivers.hpp"
#include "support/files.hpp"

using interfaced::fuzz::replay_regressions;
using interfaced::fuzz::run_driver;

TEST_CASE("fuzz regressions: hl7_mllp", "[hl7][fuzz]") {
  // The directory holds kept inputs (seeds and any fixed crash); all must replay cleanly.
  CHECK(replay_regressions("hl7_mllp", interfaced::fuzz::hl7::mllp_driver) > 0);
}

TEST_CASE("fuzz regressions: hl7_message", "[hl7][fuzz]") {
  CHECK(replay_regressions("hl7_message", interfaced::fuzz::hl7::message_driver) > 0);
}

TEST_CASE("fuzz drivers hold on the captures and simple inputs", "[hl7][fuzz][capture]") {
  using interfaced::fuzz::hl7::message_driver;
  using interfaced::fuzz::hl7::mllp_driver;
  for (const std::string& s :
       {std::string(), std::string("\x0B"), std::string("MSH|^~\\&|"),
        std::string("\x0BMSH|^~\\&|A\r\x1C\r\x0B\x1C"),
        std::string("MSH|^~\\&|A||B||2023||QBP^Q11|1|P|2.5.1\rQPD|W|t|S\r")}) {
    CHECK(run_driver(mllp_driver, s) == "");
    CHECK(run_driver(message_driver, s) == "");
  }
  const auto files = interfaced::test::capture_files("hl7");
  if (!files) return;
  for (const auto& p : *files) {
    const std::string bytes = interfaced::test::read_file(p);
    INFO(p.string());
    CHECK(run_driver(mllp_driver, bytes) == "");
    CHECK(run_driver(message_driver, bytes) == "");
  }
}
