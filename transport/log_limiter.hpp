#pragma once
// Bounded logging of repeated problems: an analyser sending 50 MB of garbage must not write 50 MB
// of log, nor rotate a device log's history away. Lines are grouped "like this" (the same text
// with its numbers blanked); per group at most `burst` lines per `window` are written, the rest
// are counted and summarised once the window ends:
//   "… 12345 more like this in the last 10 s (last: discarded 17 bytes outside a frame)".
// Pure: time is an argument; the caller writes what it is told to write.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace interfaced::transport {

class log_limiter {
 public:
  using clock = std::chrono::steady_clock;
  struct options {
    std::size_t burst = 20;
    std::chrono::seconds window{10};
    std::size_t max_groups = 64;  // distinct kinds tracked; more share one group
  };

  log_limiter() = default;
  explicit log_limiter(options o) : opt_(o) {}

  // Whether to write `line` now; `summaries` receives the summary lines of windows that ended
  // (write them first).
  [[nodiscard]] bool admit(std::string_view line, clock::time_point now, std::vector<std::string>& summaries);
  // Summaries of windows that ended by `now` (call now and then, so a flood that stopped is
  // still summed up).
  void flush(clock::time_point now, std::vector<std::string>& summaries);
  [[nodiscard]] std::uint64_t suppressed_total() const noexcept { return suppressed_total_; }

  // "frame 12 rejected (17 bytes)" -> "frame # rejected (# bytes)"; at most 96 characters.
  [[nodiscard]] static std::string kind_of(std::string_view line);

 private:
  struct group {
    clock::time_point window_start{};
    std::size_t written = 0;
    std::uint64_t suppressed = 0;
    std::string last;
  };
  void close_window(group& g, std::vector<std::string>& summaries) const;

  options opt_;
  std::map<std::string, group, std::less<>> groups_;
  std::uint64_t suppressed_total_ = 0;
};

}  // namespace interfaced::transport
