#include "daemon/systemd_notify.hpp"

#include <systemd/sd-daemon.h>

#include <string>

namespace interfaced::daemon::systemd {
namespace {

void notify(const std::string& text) { (void)sd_notify(0, text.c_str()); }

}  // namespace

void ready(std::string_view s) { notify("READY=1\nSTATUS=" + std::string(s)); }
void status(std::string_view s) { notify("STATUS=" + std::string(s)); }
void stopping(std::string_view s) { notify("STOPPING=1\nSTATUS=" + std::string(s)); }
void watchdog() { notify("WATCHDOG=1"); }

std::chrono::microseconds watchdog_period() noexcept {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) return std::chrono::microseconds(usec / 2);
  return std::chrono::microseconds(0);
}

}  // namespace interfaced::daemon::systemd
