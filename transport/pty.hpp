#pragma once
// A pseudo-terminal pair in raw mode, for tests and bench setups that need a real tty between an
// "analyser" (master) and the daemon side (slave, or its path opened like a serial port).
// Raw mode (cfmakeraw): no echo, no CR/LF translation, no line buffering, every byte (ENQ, STX,
// 0x1C...) passes through unchanged — what a serial line to an analyser carries.

#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/system/result.hpp>

namespace interfaced::transport {

struct pty_pair {
  boost::asio::posix::stream_descriptor master;
  // Kept open even when the test opens slave_path separately: when every slave descriptor is
  // closed, reads on the master fail with EIO.
  boost::asio::posix::stream_descriptor slave;
  std::string slave_path;  // e.g. /dev/pts/7
};

[[nodiscard]] boost::system::result<pty_pair> open_pty(const boost::asio::any_io_executor& ex);

}  // namespace interfaced::transport
