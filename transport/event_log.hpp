#pragma once
// The per-link event callback: every failure the transport sees (disconnect, garbage, timeout,
// refused peer, a bug caught at a coroutine's edge) is a line handed to it, never an exception.
// Called on the io_context thread; the view lives only for the call. The callback must not throw
// (the daemon's logger never does); an empty callback drops the events.

#include <functional>
#include <string_view>

namespace interfaced::transport {

using event_log = std::function<void(std::string_view)>;

// Calls log when set; swallows anything it throws so a bad logger cannot end a link.
inline void emit(const event_log& log, std::string_view line) noexcept {
  if (!log) return;
  try {
    log(line);
  } catch (...) {
  }
}

}  // namespace interfaced::transport
