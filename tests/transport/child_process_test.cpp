// transport/child_process: spawning with each kind of output, the environment, exit statuses,
// bounded waits, signals, stop() and the owning handle. The children are /bin/sh one-liners.

#include <catch2/catch.hpp>

#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "support/files.hpp"
#include "support/scratch_dir.hpp"
#include "transport/child_process.hpp"
#include "transport/loopback_port.hpp"

using namespace interfaced::transport;
using namespace std::chrono_literals;
using interfaced::test::file_text;
using interfaced::test::scratch_dir;

namespace {

child_options shell(const std::string& script) {
  child_options o;
  o.argv = {"/bin/sh", "-c", script};
  return o;
}

child_process start(const child_options& o) {
  auto c = child_process::spawn(o);
  if (!c) FAIL("spawn failed: " << c.error().message());
  return std::move(*c);
}

}  // namespace

TEST_CASE("child_process: pipes carry stdout and stderr apart, the exit code is the status") {
  auto o = shell("echo out; echo err >&2; exit 3");
  o.out = child_output::to_pipe();
  o.err = child_output::to_pipe();
  auto c = start(o);
  CHECK(c.pid() > 0);
  CHECK(c.wait_for(5s) == std::optional<int>(3));
  CHECK(c.piped_out() == "out\n");
  CHECK(c.piped_err() == "err\n");
  CHECK_FALSE(c.running());
}

TEST_CASE(
    "child_process: a pipe is drained while waiting, so a child writing more than it holds ends") {
  // A pipe holds 64 KiB by default: a child writing 1 MiB would block forever if nobody read.
  auto o = shell("head -c 1048576 /dev/zero");
  o.out = child_output::to_pipe();
  auto c = start(o);
  CHECK(c.wait_for(10s) == std::optional<int>(0));
  CHECK(c.piped_out().size() == 1048576u);
}

TEST_CASE("child_process: files are truncated or appended to, and 2>&1 keeps the order") {
  scratch_dir dir;
  const auto log = dir / "child.log";
  {
    auto o = shell("echo first");
    o.out = child_output::to_file(log);
    CHECK(start(o).wait_for(5s) == std::optional<int>(0));
  }
  {
    auto o = shell("echo one; echo two >&2; echo three");
    o.out = child_output::to_file(log, true);
    o.err = child_output::to_stdout();
    CHECK(start(o).wait_for(5s) == std::optional<int>(0));
  }
  CHECK(file_text(log) == "first\none\ntwo\nthree\n");
  {
    auto o = shell("echo again");
    o.out = child_output::to_file(log);
    CHECK(start(o).wait_for(5s) == std::optional<int>(0));
  }
  CHECK(file_text(log) == "again\n");
}

TEST_CASE("child_process: discarded output, stdin at end of file") {
  auto o = shell("echo lost; cat; echo after-cat >&2");
  o.out = child_output::discard();
  o.err = child_output::to_pipe();
  auto c = start(o);
  CHECK(c.wait_for(5s) == std::optional<int>(0));  // cat reads /dev/null: ends at once
  CHECK(c.piped_out().empty());
  CHECK(c.piped_err() == "after-cat\n");
}

TEST_CASE("child_process: the environment is the parent's, with entries added or replaced") {
  REQUIRE(::setenv("INTERFACED_CHILD_TEST_INHERITED", "parent", 1) == 0);
  REQUIRE(::setenv("INTERFACED_CHILD_TEST_REPLACED", "parent", 1) == 0);
  auto o = shell("env | grep '^INTERFACED_CHILD_TEST_' | sort");
  o.env = {"INTERFACED_CHILD_TEST_REPLACED=child", "INTERFACED_CHILD_TEST_ADDED=child"};
  o.out = child_output::to_pipe();
  auto c = start(o);
  CHECK(c.wait_for(5s) == std::optional<int>(0));
  CHECK(c.piped_out() ==
        "INTERFACED_CHILD_TEST_ADDED=child\n"
        "INTERFACED_CHILD_TEST_INHERITED=parent\n"
        "INTERFACED_CHILD_TEST_REPLACED=child\n");
  ::unsetenv("INTERFACED_CHILD_TEST_INHERITED");
  ::unsetenv("INTERFACED_CHILD_TEST_REPLACED");
}

TEST_CASE("child_process: `program` runs a file under another argv[0]") {
  auto o = shell("echo \"$0\"");
  o.argv[0] = "not-a-path";
  o.program = "/bin/sh";
  o.out = child_output::to_pipe();
  auto c = start(o);
  CHECK(c.wait_for(5s) == std::optional<int>(0));
  CHECK(c.piped_out() == "not-a-path\n");
}

TEST_CASE("child_process: a program that cannot start is an error, not a child") {
  child_options o;
  o.argv = {"/nonexistent/interfaced-child-test"};
  const auto c = child_process::spawn(o);
  REQUIRE_FALSE(c.has_value());
  CHECK(c.error().value() == ENOENT);

  child_options none;
  CHECK_FALSE(child_process::spawn(none).has_value());  // no argv
  auto bad_file = shell("true");
  bad_file.out = child_output::to_file("/nonexistent/dir/out.log");
  CHECK_FALSE(child_process::spawn(bad_file).has_value());
}

TEST_CASE("child_process: wait_for is bounded, and a signal ends the child with 128 + its number") {
  auto c = start(shell("exec sleep 30"));
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(c.wait_for(100ms).has_value());
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  CHECK(c.running());
  c.signal(SIGTERM);
  CHECK(c.wait_for(5s) == std::optional<int>(128 + SIGTERM));
  c.signal(SIGTERM);  // reaped: nothing is sent
  CHECK(c.wait_for(0ms) == std::optional<int>(128 + SIGTERM));
}

TEST_CASE("child_process: the child starts with no signal blocked or ignored") {
  // Both survive exec; the test thread blocks SIGUSR1 and ignores SIGUSR2 for the spawn.
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigset_t old_mask;
  REQUIRE(::pthread_sigmask(SIG_BLOCK, &usr1, &old_mask) == 0);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction old_usr2 {};
  REQUIRE(::sigaction(SIGUSR2, &ignore, &old_usr2) == 0);
  auto o = shell("exec grep -E '^Sig(Blk|Ign):' /proc/self/status");
  o.out = child_output::to_pipe();
  auto c = start(o);
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGUSR2, &old_usr2, nullptr);
  CHECK(c.wait_for(5s) == std::optional<int>(0));
  // The masks are hex, bit n-1 for signal n. Only the standard signals 1-31 are looked at: glibc
  // keeps its internal real-time signals (32, 33) to itself.
  const std::string& status = c.piped_out();
  INFO(status);
  REQUIRE(status.starts_with("SigBlk:\t"));
  const auto ign_at = status.find("SigIgn:\t");
  REQUIRE(ign_at != std::string::npos);
  const unsigned long long standard = (1ULL << 31) - 1;
  CHECK((std::stoull(status.substr(8), nullptr, 16) & standard) == 0);
  CHECK((std::stoull(status.substr(ign_at + 8), nullptr, 16) & standard) == 0);
}

TEST_CASE("child_process: stop() asks with SIGTERM, then SIGKILLs a child that ignores it") {
  auto polite = start(shell("exec sleep 30"));
  CHECK(polite.stop(5s) == 128 + SIGTERM);

  // The trap makes the shell ignore SIGTERM, and exec keeps an ignored signal ignored.
  auto o = shell("trap '' TERM; echo ready; exec sleep 30");
  o.out = child_output::to_pipe();
  auto stubborn = start(o);
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (stubborn.piped_out().empty() && std::chrono::steady_clock::now() < until)
    (void)stubborn.wait_for(10ms);
  REQUIRE(stubborn.piped_out() == "ready\n");
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(stubborn.stop(200ms) == 128 + SIGKILL);
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
}

TEST_CASE(
    "child_process: the handle owns the child: destroyed or moved onto, a running child is "
    "killed") {
  pid_t pid = -1;
  {
    auto c = start(shell("exec sleep 30"));
    pid = c.pid();
    REQUIRE(::kill(pid, 0) == 0);
  }
  // Killed and reaped: no such process any more (not even a zombie).
  CHECK(::kill(pid, 0) == -1);
  CHECK(errno == ESRCH);

  auto first = start(shell("exec sleep 30"));
  const pid_t first_pid = first.pid();
  auto moved = std::move(first);
  CHECK(moved.pid() == first_pid);
  CHECK(first.pid() == -1);  // NOLINT(bugprone-use-after-move): a moved-from handle owns nothing
  CHECK_FALSE(first.wait_for(0ms).has_value());
  moved = start(shell("exit 0"));
  CHECK(::kill(first_pid, 0) == -1);
  CHECK(moved.wait_for(5s) == std::optional<int>(0));
}

TEST_CASE("unused_loopback_port: a port that can be bound on 127.0.0.1") {
  const auto p = unused_loopback_port();
  REQUIRE(p.has_value());
  CHECK(*p != 0);
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io);
  const boost::asio::ip::tcp::endpoint at(boost::asio::ip::make_address("127.0.0.1"), *p);
  boost::system::error_code ec;
  a.open(at.protocol(), ec);
  REQUIRE_FALSE(ec);
  a.bind(at, ec);
  CHECK_FALSE(ec);
}
