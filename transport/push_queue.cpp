#include "transport/push_queue.hpp"

#include <utility>

namespace interfaced::transport {

bool push_queue::push(push_message m) {
  if (items_.size() >= capacity_) return false;
  items_.push_back(std::move(m));
  if (wake_) wake_();
  return true;
}

std::optional<push_message> push_queue::take() {
  if (items_.empty()) return std::nullopt;
  push_message m = std::move(items_.front());
  items_.pop_front();
  return m;
}

void push_queue::put_back(push_message m) {
  items_.push_front(std::move(m));
  if (wake_) wake_();  // a connection that replaced the one that ended takes it now
}

std::uint64_t push_queue::attach(std::function<void()> wake) {
  wake_ = std::move(wake);
  return ++token_;
}

void push_queue::detach(std::uint64_t token) {
  if (token == token_) wake_ = nullptr;
}

}  // namespace interfaced::transport
