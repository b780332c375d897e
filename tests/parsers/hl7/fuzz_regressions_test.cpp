// Replays every input kept under tests/fuzz/regressions/hl7_* through the fuzz targets' checks.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "fuzz_drivers.hpp"
#include "support/files.hpp"

namespace {

std::filesystem::path regressions_dir() {
  return interfaced::test::fuzz_regressions_dir();
}

template <typename Driver>
std::size_t replay(const char* sub, Driver driver) {
  const auto dir = regressions_dir() / sub;
  std::size_t n = 0;
  if (!std::filesystem::exists(dir)) return n;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string bytes = interfaced::test::read_file(entry.path());
    INFO(entry.path().string());
    const char* bad = driver(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    CHECK(bad == nullptr);
    ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("fuzz regressions: hl7_mllp", "[hl7][fuzz]") {
  // The directory holds kept inputs (seeds and any fixed crash); all must replay cleanly.
  CHECK(replay("hl7_mllp", interfaced::fuzz::hl7::mllp_driver) > 0);
}

TEST_CASE("fuzz regressions: hl7_message", "[hl7][fuzz]") {
  CHECK(replay("hl7_message", interfaced::fuzz::hl7::message_driver) > 0);
}

TEST_CASE("fuzz drivers hold on the captures and simple inputs", "[hl7][fuzz][capture]") {
  using interfaced::fuzz::hl7::message_driver;
  using interfaced::fuzz::hl7::mllp_driver;
  auto run = [](auto driver, const std::string& s) {
    return driver(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
  };
  for (const std::string& s :
       {std::string(), std::string("\x0B"), std::string("MSH|^~\\&|"),
        std::string("\x0BMSH|^~\\&|A\r\x1C\r\x0B\x1C"),
        std::string("MSH|^~\\&|A||B||2023||QBP^Q11|1|P|2.5.1\rQPD|W|t|S\r")}) {
    CHECK(run(mllp_driver, s) == nullptr);
    CHECK(run(message_driver, s) == nullptr);
  }
  const auto dir = interfaced::test::shared_dir() / "captures" / "hl7";
  if (!std::filesystem::exists(dir)) {
    WARN("SKIPPED: " << dir.string() << " not found");
    return;
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string bytes = interfaced::test::read_file(entry.path());
    INFO(entry.path().string());
    CHECK(run(mllp_driver, bytes) == nullptr);
    CHECK(run(message_driver, bytes) == nullptr);
  }
}
