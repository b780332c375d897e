#pragma once
// Child processes for the end-to-end tests: the real `interfaced` binary (daemon, simulate,
// replay, backend-sim) with stdout / stderr in files the test reads back, on loopback ports handed
// out once per test run. A child that cannot be started fails the test; one still running when
// its handle dies is killed (transport/child_process.hpp does the work). Include only in test
// executables that link interfaced::transport.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "support/files.hpp"
#include "transport/child_process.hpp"
#include "transport/loopback_port.hpp"

namespace interfaced::test {

// The `interfaced` binary of this build (INTERFACED_BINARY, set by tests/CMakeLists.txt).
inline std::filesystem::path interfaced_binary() { return INTERFACED_BINARY; }

// A child with stdout and stderr in the files `out` and `err` (truncated first), the test's
// environment plus `env` ("NAME=value").
class child {
 public:
  child(const std::vector<std::string>& args, std::filesystem::path out, std::filesystem::path err,
        const std::vector<std::string>& env = {})
      : proc_(start(args, out, err, env)), out_(std::move(out)), err_(std::move(err)) {}

  // Exit status (128 + signal when killed), or nullopt when still running after `limit`.
  std::optional<int> wait_for(std::chrono::milliseconds limit) { return proc_.wait_for(limit); }
  void signal(int sig) const { proc_.signal(sig); }
  [[nodiscard]] bool running() { return proc_.running(); }
  [[nodiscard]] std::string out() const { return file_text(out_); }
  [[nodiscard]] std::string err() const { return file_text(err_); }
  [[nodiscard]] pid_t pid() const noexcept { return proc_.pid(); }

 private:
  static transport::child_process start(const std::vector<std::string>& args,
                                        const std::filesystem::path& out,
                                        const std::filesystem::path& err,
                                        const std::vector<std::string>& env) {
    transport::child_options o;
    o.argv = args;
    o.env = env;
    o.out = transport::child_output::to_file(out);
    o.err = transport::child_output::to_file(err);
    auto proc = transport::child_process::spawn(o);
    if (!proc)
      FAIL("cannot start " << (args.empty() ? std::string() : args.front()) << ": "
                           << proc.error().message());
    return std::move(*proc);
  }

  transport::child_process proc_;
  std::filesystem::path out_;
  std::filesystem::path err_;
};

// A loopback port nobody uses right now. The kernel may hand a released ephemeral port out again,
// so a port is never given twice in one test run.
inline std::uint16_t free_port() {
  static std::set<std::uint16_t> given;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const auto p = transport::unused_loopback_port();
    REQUIRE(p.has_value());
    if (given.insert(*p).second) return *p;
  }
  FAIL("no free loopback port");
  return 0;
}

}  // namespace interfaced::test
