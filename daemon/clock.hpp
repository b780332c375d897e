#pragma once
// The daemon's readings of the clock. Everything below the daemon takes time as an argument
// (style.md): these are the few places that read it.

#include <chrono>
#include <string>

#include "rerun/wall_time.hpp"

namespace interfaced::daemon {

// UTC with milliseconds, "2026-11-23T08:00:01.250Z": wire traces, last-message times.
[[nodiscard]] std::string now_iso_ms();
[[nodiscard]] std::string iso_ms(std::chrono::system_clock::time_point t);
// The lab's wall clock as rerun::timestamp: analysers send local wall-clock times and the rerun
// module compares like with like (rerun/wall_time.hpp).
[[nodiscard]] rerun::timestamp wall_now();

}  // namespace interfaced::daemon
