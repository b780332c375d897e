#pragma once
// Helpers for the outbox / delivery tests: a scratch directory, bounded io_context runs.

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "transport/outbox.hpp"

namespace interfaced::test {

// A fresh directory under the system temp dir, removed at the end of the test.
class scratch_dir {
 public:
  scratch_dir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("interfaced-outbox-" + std::to_string(rd()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Runs the loop in short slices until pred() holds or limit passes; returns pred().
inline bool run_until(boost::asio::io_context& ioc, const std::function<bool()>& pred,
                      std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    if (ioc.stopped()) ioc.restart();
    ioc.run_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Runs the loop for d (bounded by definition).
inline void run_for(boost::asio::io_context& ioc, std::chrono::milliseconds d) {
  const auto deadline = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ioc.stopped()) ioc.restart();
    ioc.run_until(deadline);
  }
}

// Runs a coroutine to completion on ioc (bounded) and returns its value.
template <class T>
T run_coro(boost::asio::io_context& ioc, boost::asio::awaitable<T> a,
           std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  std::optional<T> out;
  std::exception_ptr error;
  boost::asio::co_spawn(ioc, std::move(a), [&](std::exception_ptr e, T v) {
    error = e;
    out = std::move(v);
  });
  REQUIRE(run_until(ioc, [&] { return out.has_value() || error != nullptr; }, limit));
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

inline std::function<void(std::function<void()>)> poster_for(boost::asio::io_context& ioc) {
  return [&ioc](std::function<void()> f) { boost::asio::post(ioc, std::move(f)); };
}

inline transport::outbox_options config_at(const std::filesystem::path& p, std::size_t max = 1000) {
  transport::outbox_options c;
  c.path = p;
  c.max_messages = max;
  return c;
}

// A message for the outbox; id empty: the outbox assigns a UUID.
inline transport::new_message msg(std::string kind, std::string key, std::string body, std::string id = {}) {
  transport::new_message m;
  m.kind = std::move(kind);
  m.ordering_key = std::move(key);
  m.body = std::move(body);
  m.id = std::move(id);
  return m;
}

// Appends synchronously (test convenience): waits (bounded) for the completion, from any thread.
inline transport::append_result append_wait(transport::outbox& box, std::vector<transport::new_message> v,
                                            transport::state_changes state = {}) {
  std::mutex m;
  std::condition_variable cv;
  std::optional<transport::append_result> r;
  box.append(std::move(v), std::move(state), [&](transport::append_result a) {
    std::lock_guard l(m);
    r = std::move(a);
    cv.notify_all();
  });
  std::unique_lock l(m);
  REQUIRE(cv.wait_for(l, std::chrono::seconds(10), [&] { return r.has_value(); }));
  return *r;
}

}  // namespace interfaced::test
