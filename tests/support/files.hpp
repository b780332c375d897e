#pragma once
// Files the tests read: the captures in ../shared (never copied into the repo; a test whose
// capture is absent is skipped with a WARN saying so, not failed), the project's own fixtures
// under tests/fixtures, the kept fuzz inputs under tests/fuzz/regressions, and any file a test or a child process wrote. Standard library and
// Catch2 only, so every test executable (parsers included) can use it; the benchmarks use the
// Catch-free part (shared_dir, file_text).

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

namespace interfaced::test {

// ../shared next to the repository (INTERFACED_SHARED_DIR, set by tests/CMakeLists.txt).
inline std::filesystem::path shared_dir() { return INTERFACED_SHARED_DIR; }

// tests/fixtures: inputs this project wrote (from standards and vendors' manuals), by topic.
inline std::filesystem::path fixture_dir() { return INTERFACED_FIXTURE_DIR; }

// tests/fuzz/regressions: one folder per fuzz target, replayed by the normal tests.
inline std::filesystem::path fuzz_regressions_dir() { return INTERFACED_FUZZ_REGRESSIONS_DIR; }

// The bytes of `p`; empty when it is missing or unreadable (a log a child has not written yet).
inline std::string file_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The bytes of `p`, which must be readable (REQUIREd).
inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  INFO("reading " << p.string());
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// ../shared/captures/<sub>, or nullopt (with a WARN naming `what` was not run) when it is absent.
inline std::optional<std::filesystem::path> captures_dir(const std::string& sub = {},
                                                         const std::string& what = "capture test") {
  auto p = shared_dir() / "captures";
  if (!sub.empty()) p /= sub;
  if (!std::filesystem::exists(p)) {
    WARN("SKIPPED: " << p.string() << " not found (../shared is absent); " << what << " not run");
    return std::nullopt;
  }
  return p;
}

// The files in ../shared/captures/<sub>, sorted by name, or nullopt (with the WARN of
// captures_dir) when it is absent.
inline std::optional<std::vector<std::filesystem::path>> capture_files(
    const std::string& sub, const std::string& what = "capture test") {
  const auto dir = captures_dir(sub, what);
  if (!dir) return std::nullopt;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(*dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

// The path of ../shared/captures/<rel> (whether it exists or not).
inline std::filesystem::path capture_path(const std::string& rel) {
  return shared_dir() / "captures" / rel;
}

// The bytes of ../shared/captures/<rel>, or nullopt (with a WARN) when ../shared is absent.
inline std::optional<std::string> capture(const std::string& rel) {
  const auto p = capture_path(rel);
  if (!std::filesystem::exists(p)) {
    WARN("SKIPPED: " << p.string() << " not found (../shared is absent); capture test not run");
    return std::nullopt;
  }
  return read_file(p);
}

// The kept inputs of tests/fuzz/regressions/<folder> (its README excepted), sorted; the folder
// must exist (REQUIREd).
inline std::vector<std::filesystem::path> fuzz_regression_inputs(const std::string& folder) {
  const auto dir = fuzz_regressions_dir() / folder;
  INFO(dir.string());
  REQUIRE(std::filesystem::is_directory(dir));
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != "README") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace interfaced::test
