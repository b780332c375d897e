#pragma once
// Bounded runs of an io_context, for tests that drive real sockets, timers and coroutines without
// sleeping: run_until runs the loop in short slices until a condition holds or a limit passes,
// run_for runs it for a fixed time (to show that something does NOT happen in it), run_coro runs
// one coroutine to its end and returns its value, spawn starts one whose exception (a failed
// REQUIRE inside it) surfaces from the run that met it.
// Asio is compiled once, in interfaced::transport (BOOST_ASIO_SEPARATE_COMPILATION): include this
// only in test executables that link it. Parser tests use files.hpp alone and never see Boost.

#include <catch2/catch.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace interfaced::test {

// How long run_until and run_coro wait by default: far above any expected wait, so reaching it
// means a hang, not a slow machine.
inline constexpr std::chrono::milliseconds default_run_limit{10000};

// Runs `io` in short slices until pred() holds; false when `limit` passed first.
template <class Pred>
bool run_until(boost::asio::io_context& io, Pred pred,
               std::chrono::milliseconds limit = default_run_limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    if (io.stopped()) io.restart();
    io.run_for(std::chrono::milliseconds(2));
  }
  return true;
}

// Runs `io` for `d` (bounded by definition).
inline void run_for(boost::asio::io_context& io, std::chrono::milliseconds d) {
  const auto deadline = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < deadline) {
    if (io.stopped()) io.restart();
    io.run_until(deadline);
  }
}

// Runs a coroutine to completion on `io` (REQUIREd within `limit`) and returns its value; its
// exception is rethrown here.
template <class T>
T run_coro(boost::asio::io_context& io, boost::asio::awaitable<T> a,
           std::chrono::milliseconds limit = default_run_limit) {
  std::optional<T> out;
  std::exception_ptr error;
  boost::asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
    error = e;
    out = std::move(v);
  });
  REQUIRE(run_until(
      io, [&] { return out.has_value() || error != nullptr; }, limit));
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

// co_spawn whose exception surfaces from the run_until / run_for that met it; `finished` is set
// when the coroutine ends, either way.
template <class Awaitable>
void spawn(boost::asio::io_context& io, Awaitable&& a, bool& finished) {
  finished = false;
  boost::asio::co_spawn(io, std::forward<Awaitable>(a), [&finished](std::exception_ptr e) {
    finished = true;
    if (e) std::rethrow_exception(e);
  });
}

}  // namespace interfaced::test
