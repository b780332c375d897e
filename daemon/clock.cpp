#include "daemon/clock.hpp"

#include <chrono>
#include <ctime>
#include <iomanip>
#include <sstream>

namespace interfaced::daemon {

std::string now_iso_ms() { return iso_ms(std::chrono::system_clock::now()); }

std::string iso_ms(std::chrono::system_clock::time_point now) {
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::ostringstream out;
  out << std::put_time(&tm, "%Y-%m-%dT%H:%M:%S") << '.' << std::setw(3) << std::setfill('0') << ms << 'Z';
  return out.str();
}

rerun::timestamp wall_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  return rerun::timestamp(std::chrono::seconds(static_cast<long long>(timegm(&tm))));
}

}  // namespace interfaced::daemon
