#include "transport/pty.hpp"

#include <fcntl.h>
#include <pty.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>

namespace interfaced::transport {

boost::system::result<pty_pair> open_pty(const boost::asio::any_io_executor& ex) {
  int master = -1;
  int slave = -1;
  char name[128] = {};
  if (::openpty(&master, &slave, name, nullptr, nullptr) != 0) {
    return boost::system::error_code(errno, boost::system::system_category());
  }
  // Raw mode on top of the slave's own settings: a zeroed termios would also ask for speed 0,
  // which the pty driver refuses.
  termios raw{};
  if (::tcgetattr(slave, &raw) != 0 || (::cfmakeraw(&raw), ::tcsetattr(slave, TCSANOW, &raw)) != 0) {
    const int err = errno;
    ::close(master);
    ::close(slave);
    return boost::system::error_code(err, boost::system::system_category());
  }
  // Close-on-exec: tests spawn helper processes that must not inherit the pty.
  ::fcntl(master, F_SETFD, FD_CLOEXEC);
  ::fcntl(slave, F_SETFD, FD_CLOEXEC);
  pty_pair p{boost::asio::posix::stream_descriptor(ex, master), boost::asio::posix::stream_descriptor(ex, slave),
             name};
  return p;
}

}  // namespace interfaced::transport
