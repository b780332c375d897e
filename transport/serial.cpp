#include "transport/serial.hpp"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <tuple>
#include <utility>

#include <libserial/SerialPort.h>

namespace interfaced::transport {

namespace {

std::optional<LibSerial::BaudRate> baud_rate(unsigned baud) {
  using LibSerial::BaudRate;
  switch (baud) {
    case 1200: return BaudRate::BAUD_1200;
    case 2400: return BaudRate::BAUD_2400;
    case 4800: return BaudRate::BAUD_4800;
    case 9600: return BaudRate::BAUD_9600;
    case 19200: return BaudRate::BAUD_19200;
    case 38400: return BaudRate::BAUD_38400;
    case 57600: return BaudRate::BAUD_57600;
    case 115200: return BaudRate::BAUD_115200;
    case 230400: return BaudRate::BAUD_230400;
    default: return std::nullopt;
  }
}

std::optional<LibSerial::CharacterSize> char_size(int bits) {
  using LibSerial::CharacterSize;
  switch (bits) {
    case 5: return CharacterSize::CHAR_SIZE_5;
    case 6: return CharacterSize::CHAR_SIZE_6;
    case 7: return CharacterSize::CHAR_SIZE_7;
    case 8: return CharacterSize::CHAR_SIZE_8;
    default: return std::nullopt;
  }
}

// Close() that cannot end the process: when it throws, the SerialPort still counts itself open and
// its destructor would throw again (std::terminate), so the object is left undestroyed and only
// its descriptor closed. Happens only when the device vanished during open_serial().
void close_quietly(std::unique_ptr<LibSerial::SerialPort>& port) noexcept {
  try {
    if (port->IsOpen()) port->Close();
  } catch (...) {
    try {
      ::close(port->GetFileDescriptor());
    } catch (...) {
    }
    (void)port.release();  // deliberate leak, see above
  }
}

}  // namespace

boost::system::result<boost::asio::posix::stream_descriptor, std::string> open_serial(const boost::asio::any_io_executor& ex,
                                                              const serial_settings& s) {
  const auto baud = baud_rate(s.baud);
  if (!baud) return std::string("unsupported baud rate ") + std::to_string(s.baud);
  const auto size = char_size(s.data_bits);
  if (!size) return std::string("data bits must be 5..8, not ") + std::to_string(s.data_bits);
  if (s.stop_bits != 1 && s.stop_bits != 2) return std::string("stop bits must be 1 or 2");
  const std::string where = s.device + ": ";
  auto p = std::make_unique<LibSerial::SerialPort>();
  const char* step = "open";
  try {
    p->Open(s.device);
    step = "set baud rate";
    p->SetBaudRate(*baud);
    step = "set data bits";
    p->SetCharacterSize(*size);
    step = "set parity";
    p->SetParity(s.parity == serial_parity::even  ? LibSerial::Parity::PARITY_EVEN
                 : s.parity == serial_parity::odd ? LibSerial::Parity::PARITY_ODD
                                                  : LibSerial::Parity::PARITY_NONE);
    step = "set stop bits";
    p->SetStopBits(s.stop_bits == 2 ? LibSerial::StopBits::STOP_BITS_2 : LibSerial::StopBits::STOP_BITS_1);
    step = "set flow control";
    p->SetFlowControl(s.flow == serial_flow::rts_cts    ? LibSerial::FlowControl::FLOW_CONTROL_HARDWARE
                      : s.flow == serial_flow::xon_xoff ? LibSerial::FlowControl::FLOW_CONTROL_SOFTWARE
                                                        : LibSerial::FlowControl::FLOW_CONTROL_NONE);
    // Modem lines: a port without them (a pty, some USB adapters) answers ENOTTY. LIS01-A uses
    // only TxD, RxD and GND (Table 1), so their absence is not a reason to refuse the port.
    for (const auto& [want, name, is_dtr] : {std::tuple{s.dtr, "set DTR", true}, std::tuple{s.rts, "set RTS", false}}) {
      if (!want) continue;
      step = name;
      try {
        if (is_dtr) p->SetDTR(*want);
        else p->SetRTS(*want);
      } catch (const std::exception&) {
        if (errno != ENOTTY && errno != EINVAL) throw;
      }
    }
  } catch (const std::exception& e) {
    std::string err = where + step + ": " + e.what();
    close_quietly(p);
    return err;
  }
  // Keep our own descriptor with the configured settings, then let go of LibSerial (see header).
  const int fd = ::fcntl(p->GetFileDescriptor(), F_DUPFD_CLOEXEC, 0);
  termios configured{};
  const bool got = fd >= 0 && ::tcgetattr(fd, &configured) == 0;
  const int err = errno;
  close_quietly(p);
  if (!got) {
    if (fd >= 0) ::close(fd);
    return where + "dup: " + std::strerror(err);
  }
  if (::tcsetattr(fd, TCSANOW, &configured) != 0) {
    const int e = errno;
    ::close(fd);
    return where + "restore settings: " + std::strerror(e);
  }
  boost::system::error_code ec;
  boost::asio::posix::stream_descriptor sd(ex);
  sd.assign(fd, ec);
  if (ec) {
    ::close(fd);
    return where + "assign: " + ec.message();
  }
  return sd;
}

}  // namespace interfaced::transport
