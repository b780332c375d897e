#pragma once
// A stream adapter that shows every byte read and written to a wire-trace tap, switchable at run
// time. Link drivers are templated on the stream, so tracing is a wrapper, not a code path in
// each driver: traced_stream<tcp::socket>, traced_stream<posix::stream_descriptor>.

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>

namespace interfaced::transport {

// Shared by a device's streams and the control endpoint that switches it.
struct trace_tap {
  std::atomic<bool> enabled{false};
  std::function<void(bool rx, std::string_view bytes)> write;  // called on the I/O thread
};

template <class Stream>
class traced_stream {
 public:
  using executor_type = typename Stream::executor_type;

  traced_stream(Stream next, std::shared_ptr<trace_tap> tap) : next_(std::move(next)), tap_(std::move(tap)) {}

  [[nodiscard]] executor_type get_executor() noexcept { return next_.get_executor(); }
  Stream& next_layer() noexcept { return next_; }
  void close(boost::system::error_code& ec) { next_.close(ec); }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          // The caller's cancellation slot goes down to the real stream: a session cancelled by
          // its server (a replacing connection, shutdown) must see its pending read end.
          auto slot = boost::asio::get_associated_cancellation_slot(handler);
          next_.async_read_some(b, boost::asio::bind_cancellation_slot(slot, [tap = tap_, b, h = std::move(handler)](boost::system::error_code ec,
                                                                           std::size_t n) mutable {
            if (n > 0) show(tap, true, b, n);
            std::move(h)(ec, n);
          }));
        },
        token, buffers);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          // The caller's cancellation slot goes down to the real stream: a session cancelled by
          // its server (a replacing connection, shutdown) must see its pending read end.
          auto slot = boost::asio::get_associated_cancellation_slot(handler);
          next_.async_write_some(b, boost::asio::bind_cancellation_slot(slot, [tap = tap_, b, h = std::move(handler)](boost::system::error_code ec,
                                                                            std::size_t n) mutable {
            if (n > 0) show(tap, false, b, n);
            std::move(h)(ec, n);
          }));
        },
        token, buffers);
  }

 private:
  template <class Buffers>
  static void show(const std::shared_ptr<trace_tap>& tap, bool rx, const Buffers& b, std::size_t n) {
    if (!tap || !tap->enabled.load(std::memory_order_relaxed) || !tap->write) return;
    // One contiguous buffer (every read and write of the link drivers) is shown in place: the
    // daemon's always-on activity tap sees each read and write, and a copy per call was an
    // allocation per ACK and per read. A buffer sequence is gathered into one string.
    std::string gathered;
    std::string_view bytes;
    if constexpr (std::is_convertible_v<const Buffers&, boost::asio::const_buffer>) {
      const boost::asio::const_buffer one(b);
      bytes = std::string_view(static_cast<const char*>(one.data()), std::min(n, one.size()));
    } else {
      gathered.assign(n, '\0');
      boost::asio::buffer_copy(boost::asio::buffer(gathered), b, n);
      bytes = gathered;
    }
    try {
      tap->write(rx, bytes);
    } catch (...) {
      // A trace that cannot be written must never break the link.
    }
  }

  Stream next_;
  std::shared_ptr<trace_tap> tap_;
};

}  // namespace interfaced::transport
