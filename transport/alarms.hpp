#pragma once
// The service's alarms as one list: each has a stable code (the `[A-Z][A-Z0-9]*-[0-9]{3}` scheme
// of the help codes), the thing it is about (a device id, a message id; empty for the service as a
// whole), a text for a person, and since when it holds. Every part of the service raises and
// clears its own alarms here; /health, `interfaced status`, /metrics (interfaced_alarm gauge) and
// the service log (one line on raise, one on clear) all read this list, so a condition is never
// reported in one place and missing from another.
// Thread-safe: the outbox worker and the event loop both raise alarms.

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace interfaced::transport {

// The codes, in one place (the help catalogue explains each). Stable: tools alert on them.
namespace alarm_code {
inline constexpr std::string_view outbox_full = "OUTBOX-001";          // above its limit: intake refused
inline constexpr std::string_view outbox_write = "OUTBOX-002";         // a write failed: delivery paused
inline constexpr std::string_view outbox_read = "OUTBOX-003";          // a read failed: file damaged?
inline constexpr std::string_view outbox_nearly_full = "OUTBOX-004";   // above 80 % of its limit
inline constexpr std::string_view disk_low = "OUTBOX-005";             // free space under the outbox low
inline constexpr std::string_view backend_unreachable = "BACKEND-001"; // no answer for longer than N
inline constexpr std::string_view backend_credentials = "BACKEND-002"; // 401/403 or the token unreadable
inline constexpr std::string_view backend_endpoint = "BACKEND-003";    // 404/405: endpoint configuration
inline constexpr std::string_view backend_tls = "BACKEND-004";         // TLS verification failed
inline constexpr std::string_view message_stuck = "DELIVERY-001";      // one message pending too long
inline constexpr std::string_view dead_letters = "DELIVERY-002";       // dead letters wait for a person
inline constexpr std::string_view link_down = "LINK-001";              // serial port missing, cannot open
inline constexpr std::string_view link_bind = "LINK-002";              // cannot listen (port in use)
inline constexpr std::string_view device_silent = "DEVICE-001";        // nothing for longer than silent_after
}  // namespace alarm_code

struct alarm_entry {
  std::string code;
  std::string subject;  // device id, message id, or empty
  std::string text;
  std::chrono::system_clock::time_point since;
};

class alarm_board {
 public:
  // Called after every raise (raised = true) and clear (false), outside the board's lock.
  using listener = std::function<void(const alarm_entry&, bool raised)>;

  // Raises (code, subject); a raise of an alarm already up only updates its text (its `since`
  // stays). Returns true when it was not up before.
  bool raise(std::string_view code, std::string_view subject, std::string text,
             std::chrono::system_clock::time_point now);
  // Returns true when it was up.
  bool clear(std::string_view code, std::string_view subject = {});
  // Clears every alarm of `code` (whatever its subject).
  void clear_code(std::string_view code);
  [[nodiscard]] bool active(std::string_view code, std::string_view subject = {}) const;
  [[nodiscard]] bool any(std::string_view code) const;
  // Sorted by code, then subject.
  [[nodiscard]] std::vector<alarm_entry> list() const;
  void on_change(listener f);

 private:
  mutable std::mutex m_;
  std::vector<alarm_entry> alarms_;
  listener listener_;
};

// "text [CODE]": how an alarm reads in a log line and in `status`.
[[nodiscard]] std::string describe(const alarm_entry& a);

}  // namespace interfaced::transport
