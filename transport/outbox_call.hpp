#pragma once
// Awaiting an outbox operation from a coroutine: the outbox completes on its worker thread (or
// through its poster); the coroutine resumes on its own executor with the result. Shared by
// delivery and the file-report stages. Include only from translation units that already use Asio.

#include <memory>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace interfaced::transport {

namespace detail_outbox_call {
namespace asio = boost::asio;
// Runs one outbox operation and resumes the coroutine on its own executor with the result (the
// outbox completes on its worker thread, or through its poster).
template <class T, class Start>
asio::awaitable<T> outbox_call_coro(Start start) {
  auto ex = co_await asio::this_coro::executor;
  // A named initiation, holding `start` through a pointer: GCC 12 double-destroys captures of a
  // coroutine parameter in a lambda handed straight to async_initiate inside co_await.
  auto initiation = [ex, s = std::make_shared<Start>(std::move(start))](auto handler) mutable {
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    // dispatch: the daemon's poster already runs the completion on the coroutine's own loop, so
    // it resumes at once instead of through a second queued handler (issue #17); called on the
    // worker thread (an outbox without a poster) it is posted as before.
    (*s)([ex, h](T v) mutable { asio::dispatch(ex, [h, v = std::move(v)]() mutable { (*h)(std::move(v)); }); });
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(T)>(std::move(initiation),
                                                                                 asio::use_awaitable);
}

}  // namespace detail_outbox_call

// Not a coroutine on purpose: GCC 12 destroys a prvalue argument of a coroutine's by-value
// parameter twice (a lambda, an aggregate); here `start` is a named object, moved in.
template <class T, class Start>
boost::asio::awaitable<T> outbox_call(Start start) {
  return detail_outbox_call::outbox_call_coro<T>(std::move(start));
}

}  // namespace interfaced::transport
