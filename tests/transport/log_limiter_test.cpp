// A flood of one problem: the first `burst` lines per window, then one summary with the count.
#include <catch2/catch.hpp>

#include "transport/log_limiter.hpp"

using namespace interfaced::transport;
using namespace std::chrono_literals;

TEST_CASE("log limiter: a flood is written up to its burst, then summed up once per window", "[log-limiter]") {
  log_limiter lim({5, 10s, 64});
  const auto t0 = log_limiter::clock::time_point(1000s);
  std::vector<std::string> summaries;
  int written = 0;
  for (int i = 0; i < 100000; ++i)
    if (lim.admit("discarded " + std::to_string(i % 977 + 1) + " bytes outside a frame", t0 + std::chrono::microseconds(i), summaries))
      ++written;
  CHECK(written == 5);
  CHECK(summaries.empty());  // the window has not ended
  // Another kind in the same window has its own burst.
  CHECK(lim.admit("checksum mismatch (frame number 2)", t0 + 1s, summaries));
  lim.flush(t0 + 10s, summaries);
  REQUIRE(summaries.size() == 1);
  CHECK(summaries[0].rfind("... 99995 more like this in the last 10 s (last: discarded ", 0) == 0);
  CHECK(lim.suppressed_total() == 99995);
  // The next window starts afresh.
  summaries.clear();
  CHECK(lim.admit("discarded 3 bytes outside a frame", t0 + 11s, summaries));
  CHECK(log_limiter::kind_of("frame 12 rejected (17 bytes)") == "frame # rejected (# bytes)");
}

TEST_CASE("log limiter: distinct kinds are bounded too", "[log-limiter]") {
  log_limiter lim({1, 10s, 4});
  const auto t0 = log_limiter::clock::time_point(0s);
  std::vector<std::string> summaries;
  int written = 0;
  // Lines that differ in letters, not numbers: after 4 groups they share "(other)".
  for (char c = 'a'; c <= 'z'; ++c)
    if (lim.admit(std::string("garbage ") + c, t0, summaries)) ++written;
  CHECK(written == 5);  // 4 groups + the shared one
}
