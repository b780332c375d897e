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
  termios raw{};
  cfmakeraw(&raw);
  if (::openpty(&master, &slave, name, &raw, nullptr) != 0) {
    return boost::system::error_code(errno, boost::system::system_category());
  }
  // openpty's termios argument applies to the slave; set it again explicitly in case a libc
  // ignores it, and make both ends close-on-exec (tests spawn helper processes).
  if (::tcsetattr(slave, TCSANOW, &raw) != 0) {
    const int err = errno;
    ::close(master);
    ::close(slave);
    return boost::system::error_code(err, boost::system::system_category());
  }
  ::fcntl(master, F_SETFD, FD_CLOEXEC);
  ::fcntl(slave, F_SETFD, FD_CLOEXEC);
  pty_pair p{boost::asio::posix::stream_descriptor(ex, master), boost::asio::posix::stream_descriptor(ex, slave),
             name};
  return p;
}

}  // namespace interfaced::transport
