#pragma once
// Helpers for transport tests: bounded io_context runs (no sleeps: run_for slices until a
// condition holds or the limit passes), an event-log recorder, and byte-level peers.

#include <catch2/catch.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "transport/event_log.hpp"

namespace interfaced::transport::test {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct event_lines {
  std::vector<std::string> lines;
  event_log logger() {
    return [this](std::string_view l) { lines.emplace_back(l); };
  }
  [[nodiscard]] bool contains(std::string_view s) const {
    for (const auto& l : lines) {
      if (l.find(s) != std::string::npos) return true;
    }
    return false;
  }
  [[nodiscard]] std::string joined() const {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
};

// Runs io in short slices until pred() holds; false when `limit` passed first.
template <class Pred>
bool run_until(asio::io_context& io, Pred pred, std::chrono::milliseconds limit = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    io.restart();
    io.run_for(2ms);
  }
  return true;
}

// Runs io for `d` (bounded; used to show that something does NOT happen in that time).
inline void run_for(asio::io_context& io, std::chrono::milliseconds d) {
  const auto deadline = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_for(2ms);
  }
}

// co_spawn whose exceptions (a failed REQUIRE inside a peer coroutine) surface from run_for.
template <class Awaitable>
void spawn(asio::io_context& io, Awaitable&& a, bool& finished) {
  finished = false;
  asio::co_spawn(io, std::forward<Awaitable>(a), [&finished](std::exception_ptr e) {
    finished = true;
    if (e) std::rethrow_exception(e);
  });
}

template <class Stream>
asio::awaitable<std::optional<char>> read_byte(Stream& s) {
  char c = 0;
  auto [ec, n] = co_await asio::async_read(s, asio::buffer(&c, 1), asio::as_tuple(asio::use_awaitable));
  if (ec || n != 1) co_return std::nullopt;
  co_return c;
}

template <class Stream>
asio::awaitable<bool> write_all(Stream& s, std::string_view bytes) {
  auto [ec, n] = co_await asio::async_write(s, asio::buffer(bytes.data(), bytes.size()),
                                            asio::as_tuple(asio::use_awaitable));
  (void)n;
  co_return !ec;
}

}  // namespace interfaced::transport::test
