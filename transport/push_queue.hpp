#pragma once
// Messages the host starts (order download / worklist push) waiting for one device's link.
//
// The daemon owns one queue per device; it outlives connections. While connected, the device's
// link driver attaches, takes messages when it can send them and ends each one through its done
// callback: sent (the analyser acknowledged it) or given up (the driver's bounded attempts ran
// out; the reason says why). A driver whose connection ends puts the messages it had taken and
// not finished back at the front, in order, for the next connection: such a message may reach the
// analyser twice (it got it, the acknowledgement was lost), which order messages tolerate (the
// same specimen and tests again).
//
// No I/O and no Asio: the io_context's thread calls everything (single-threaded); wake() of the
// attached driver is called inside push() and must only schedule work.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>

namespace interfaced::transport {

struct push_message {
  std::string
      text;  // ASTM: records, each ending CR (framed by the link); HL7: one message, unframed
  // Called once: sent, or given up with the reason (for the device log).
  std::function<void(bool sent, const std::string& reason)> done;
  int attempts = 0;  // failed attempts so far (the driver counts; bounded by its policy)
};

class push_queue {
 public:
  explicit push_queue(std::size_t capacity = 1000) : capacity_(capacity) {}

  // Queues a message; false (done not called, nothing kept) when the queue holds `capacity`.
  bool push(push_message m);
  // The next message, if any; the caller now owns it (done, or put_back()).
  [[nodiscard]] std::optional<push_message> take();
  // A taken message goes back to the front (its link ended, or it waits for a retry). Never
  // refused: it was counted before. Wakes the attached driver like push().
  void put_back(push_message m);

  // The driver that drains the queue: wake is called after every push and put_back. One at a time:
  // the last attached wins (a reconnecting analyser replaces its old connection). Returns a token.
  std::uint64_t attach(std::function<void()> wake);
  // Stops the wake calls of `token`; a later driver's attach is left alone.
  void detach(std::uint64_t token);

  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  [[nodiscard]] bool empty() const noexcept { return items_.empty(); }
  [[nodiscard]] bool attached() const noexcept { return static_cast<bool>(wake_); }

 private:
  std::size_t capacity_;
  std::deque<push_message> items_;
  std::function<void()> wake_;
  std::uint64_t token_ = 0;
};

}  // namespace interfaced::transport
