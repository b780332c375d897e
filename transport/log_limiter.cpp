#include "transport/log_limiter.hpp"

namespace interfaced::transport {

std::string log_limiter::kind_of(std::string_view line) {
  std::string k;
  k.reserve(line.size());
  bool in_number = false;
  for (const char c : line) {
    const bool digit = c >= '0' && c <= '9';
    if (digit && !in_number) k += '#';
    else if (!digit) k += c;
    in_number = digit;
    if (k.size() >= 96) break;
  }
  return k;
}

void log_limiter::close_window(group& g, std::vector<std::string>& summaries) const {
  if (g.suppressed > 0)
    summaries.push_back("... " + std::to_string(g.suppressed) + " more like this in the last " +
                        std::to_string(opt_.window.count()) + " s (last: " + g.last + ") [LOG-001]");
  g.written = 0;
  g.suppressed = 0;
  g.last.clear();
}

bool log_limiter::admit(std::string_view line, clock::time_point now, std::vector<std::string>& summaries) {
  flush(now, summaries);
  std::string kind = kind_of(line);
  auto it = groups_.find(kind);
  if (it == groups_.end()) {
    if (groups_.size() >= opt_.max_groups) kind = "(other)";
    it = groups_.try_emplace(std::move(kind)).first;
  }
  group& g = it->second;
  if (g.written == 0 && g.suppressed == 0) g.window_start = now;
  if (g.written < opt_.burst) {
    ++g.written;
    return true;
  }
  ++g.suppressed;
  ++suppressed_total_;
  g.last.assign(line.substr(0, 200));
  return false;
}

void log_limiter::flush(clock::time_point now, std::vector<std::string>& summaries) {
  for (auto it = groups_.begin(); it != groups_.end();) {
    group& g = it->second;
    if (now - g.window_start >= opt_.window) {
      close_window(g, summaries);
      it = groups_.erase(it);  // quiet groups do not accumulate
    } else {
      ++it;
    }
  }
}

}  // namespace interfaced::transport
