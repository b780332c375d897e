#pragma once
// Small helpers shared by the stream-templated sessions.

#include <boost/system/error_code.hpp>

namespace interfaced::transport {

// Closes any Asio stream (socket, stream_descriptor) without throwing; pending operations end
// with operation_aborted. Streams without close(error_code&) (test streams) use close().
template <class Stream>
void close_stream(Stream& s) noexcept {
  if constexpr (requires(boost::system::error_code& ec) { s.close(ec); }) {
    boost::system::error_code ignored;
    s.close(ignored);
  } else {
    try {
      s.close();
    } catch (...) {
    }
  }
}

}  // namespace interfaced::transport
