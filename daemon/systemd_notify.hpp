#pragma once
// sd_notify for Type=notify: READY=1 once config, outbox and links are up; STATUS= one human line;
// WATCHDOG=1 petted from the event loop (a blocked loop is a restart); STOPPING=1 on SIGTERM.
// All calls are no-ops outside systemd (no NOTIFY_SOCKET).

#include <chrono>
#include <string_view>

namespace interfaced::daemon::systemd {

void ready(std::string_view status);
void status(std::string_view status);
void stopping(std::string_view status);
void watchdog();
// Half the watchdog interval systemd asked for (WatchdogSec), or zero when there is none.
[[nodiscard]] std::chrono::microseconds watchdog_period() noexcept;

}  // namespace interfaced::daemon::systemd
