// Issue #12 point 5 with the real binary: 50 MB of random bytes thrown at an ASTM port must not
// flood the logs -- the device log keeps its history (the lines written before the flood are still
// in <device>.log, no rotation), the flood is summed up ("… N more like this"), and a well-behaved
// transfer afterwards is served as usual.
#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <random>
#include <thread>

#include "e2e_support.hpp"
#include "support/files.hpp"

using namespace interfaced::e2e;

TEST_CASE("log flood: 50 MB of garbage is summed up, the device log keeps its history", "[log-flood]") {
  scratch_dir dir;
  const auto port = free_port();
  daemon_proc d(dir.path());
  d.start(json::array({tcp_server_device("chem-1", "astm", port)}));
  const std::string before = d.device_log("chem-1");
  REQUIRE(before.find("listening on") != std::string::npos);

  {
    tcp_conn c(port);
    REQUIRE(c.ok());
    std::string junk(1 << 20, '\0');
    std::mt19937 rng(50);
    // Drain whatever the daemon answers (NAKs) so neither side blocks on a full buffer.
    std::thread drain([&c] { (void)c.read_all(std::chrono::milliseconds(60000)); });
    for (int mb = 0; mb < 50; ++mb) {
      for (auto& ch : junk) ch = static_cast<char>(rng());
      if (!c.send(junk)) break;  // the daemon may close a peer that only sends garbage
    }
    c.shutdown_write();
    drain.join();
  }
  // The flood's summary comes when its 10 s window ends (the service looks every 5 s).
  std::string log;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(25);
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    log = d.device_log("chem-1");
  } while (log.find("more like this") == std::string::npos && std::chrono::steady_clock::now() < until);
  CHECK(log.find("more like this") != std::string::npos);
  CHECK(log.rfind(before, 0) == 0);  // the history before the flood is intact, at the start of the file
  CHECK_FALSE(fs::exists(dir.path() / "logs" / "chem-1.1.log"));  // nothing rotated away
  std::uintmax_t total = 0;
  for (const auto& e : fs::directory_iterator(dir.path() / "logs")) total += fs::file_size(e.path());
  INFO("log bytes after 50 MB of garbage: " << total << ", service log " << d.log().size());
  CHECK(total < 256 * 1024);
  CHECK(d.log().size() < 256 * 1024);

  // A well-behaved analyser is still served.
  auto sim = simulate(dir.path(), "after", {"--connect", "127.0.0.1:" + std::to_string(port)},
                      interfaced::test::fixture_dir() / ".." / ".." / "packaging" / "samples" / "demo-chemistry.astm");
  CHECK(sim->wait_for(std::chrono::milliseconds(20000)) == std::optional<int>(0));
  CHECK(d.stop().first == 0);
}
