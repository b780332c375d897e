#pragma once
// Memory held for unfinished messages, bounded per device and for the whole daemon. Each session
// (ASTM link, MLLP session) holds a buffer_share and sets it to the bytes it buffers after every
// read (a partial frame, ETB frames, records without their L, an MLLP message spanning reads);
// when that puts its device's or the daemon's budget over its limit the session refuses by
// closing (its unfinished message is dropped, the analyser -- never acknowledged -- resends),
// with a log line and a count. So the daemon's memory does not grow with the number of peers.
// Touched on the io_context thread only.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

namespace interfaced::transport {

struct buffer_budget {
  std::size_t limit = 0;      // 0: no limit
  std::size_t used = 0;       // bytes the sessions sharing it hold now
  std::uint64_t refused = 0;  // sessions closed because this budget was over its limit
};

class buffer_share {
 public:
  buffer_share() = default;
  buffer_share(std::shared_ptr<buffer_budget> device, std::shared_ptr<buffer_budget> total)
      : device_(std::move(device)), total_(std::move(total)) {}
  ~buffer_share() { set(0); }
  buffer_share(const buffer_share&) = delete;
  buffer_share& operator=(const buffer_share&) = delete;

  // This session now holds `bytes`. Returns the budget that is over its limit, or nullptr when
  // both are within theirs. A refusal is counted on the device's budget whichever limit was hit
  // (and on the daemon's when it was its own).
  const buffer_budget* set(std::size_t bytes) noexcept {
    for (auto* b : {device_.get(), total_.get()})
      if (b) b->used = b->used - held_ + bytes;
    held_ = bytes;
    const buffer_budget* over = nullptr;
    for (auto* b : {device_.get(), total_.get()})
      if (b && b->limit != 0 && b->used > b->limit) {
        over = b;
        break;
      }
    if (over) {
      if (device_) ++device_->refused;
      if (over == total_.get()) ++total_->refused;
    }
    return over;
  }
  [[nodiscard]] bool is_device(const buffer_budget* b) const noexcept { return b == device_.get(); }

 private:
  std::shared_ptr<buffer_budget> device_;
  std::shared_ptr<buffer_budget> total_;
  std::size_t held_ = 0;
};

}  // namespace interfaced::transport
