#pragma once
// One daemon per outbox: an advisory lock (flock) on "<outbox>.lock", which holds the holder's pid
// so a second `interfaced run` can say who has it. The kernel drops the lock when the holder dies
// (SIGKILL included), so a stale file never blocks a restart.

#include <filesystem>
#include <optional>
#include <string>
#include <utility>

namespace interfaced::transport {

class instance_lock {
 public:
  // Takes the lock or says why not: "held by pid N" or the system error. Never blocks.
  [[nodiscard]] static std::optional<instance_lock> acquire(const std::filesystem::path& file, std::string& why);
  instance_lock(instance_lock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  instance_lock& operator=(instance_lock&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  instance_lock(const instance_lock&) = delete;
  ~instance_lock();

 private:
  explicit instance_lock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace interfaced::transport
