#pragma once
// A TCP port on 127.0.0.1 that nothing listens on when asked, for configurations written before
// their servers start (`interfaced demo`, the end-to-end tests): the kernel picks an ephemeral
// port for a socket bound to port 0, and the socket is closed again. Nothing reserves the port:
// another process may bind it first, and the kernel may hand the same port out again, so a caller
// that needs several distinct ports keeps track of the ones it was given.

#include <cstdint>

#include <boost/system/result.hpp>

namespace interfaced::transport {

[[nodiscard]] boost::system::result<std::uint16_t> unused_loopback_port();

}  // namespace interfaced::transport
