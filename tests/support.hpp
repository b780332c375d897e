#pragma once
// Test helpers: read captures from ../shared (skipped with a clear message when absent) and the
// repo's own fixtures.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

namespace interfaced::test {

inline std::filesystem::path shared_dir() { return INTERFACED_SHARED_DIR; }
inline std::filesystem::path fixture_dir() { return INTERFACED_FIXTURE_DIR; }

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The bytes of ../shared/captures/<rel>, or nullopt (with a Catch2 WARN) when ../shared is absent.
inline std::optional<std::string> capture(const std::string& rel) {
  auto p = shared_dir() / "captures" / rel;
  if (!std::filesystem::exists(p)) {
    WARN("SKIPPED: " << p.string() << " not found (../shared is absent); capture test not run");
    return std::nullopt;
  }
  return read_file(p);
}

}  // namespace interfaced::test
