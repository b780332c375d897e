#include "transport/serial.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <utility>

#include <libserial/SerialPort.h>

namespace interfaced::transport {

struct serial_stream::port {
  LibSerial::SerialPort serial;
};

serial_stream::serial_stream(boost::asio::posix::stream_descriptor fd, std::unique_ptr<port> p) noexcept
    : boost::asio::posix::stream_descriptor(std::move(fd)), port_(std::move(p)) {}
serial_stream::serial_stream(serial_stream&&) noexcept = default;
serial_stream& serial_stream::operator=(serial_stream&&) noexcept = default;
serial_stream::~serial_stream() = default;

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

}  // namespace

boost::system::result<serial_stream, std::string> open_serial(const boost::asio::any_io_executor& ex,
                                                              const serial_settings& s) {
  const auto baud = baud_rate(s.baud);
  if (!baud) return std::string("unsupported baud rate ") + std::to_string(s.baud);
  const auto size = char_size(s.data_bits);
  if (!size) return std::string("data bits must be 5..8, not ") + std::to_string(s.data_bits);
  if (s.stop_bits != 1 && s.stop_bits != 2) return std::string("stop bits must be 1 or 2");
  const std::string where = s.device + ": ";
  auto p = std::make_unique<serial_stream::port>();
  const char* step = "open";
  try {
    p->serial.Open(s.device);
    step = "set baud rate";
    p->serial.SetBaudRate(*baud);
    step = "set data bits";
    p->serial.SetCharacterSize(*size);
    step = "set parity";
    p->serial.SetParity(s.parity == serial_parity::even  ? LibSerial::Parity::PARITY_EVEN
                        : s.parity == serial_parity::odd ? LibSerial::Parity::PARITY_ODD
                                                         : LibSerial::Parity::PARITY_NONE);
    step = "set stop bits";
    p->serial.SetStopBits(s.stop_bits == 2 ? LibSerial::StopBits::STOP_BITS_2 : LibSerial::StopBits::STOP_BITS_1);
    step = "set flow control";
    p->serial.SetFlowControl(s.flow == serial_flow::rts_cts    ? LibSerial::FlowControl::FLOW_CONTROL_HARDWARE
                             : s.flow == serial_flow::xon_xoff ? LibSerial::FlowControl::FLOW_CONTROL_SOFTWARE
                                                               : LibSerial::FlowControl::FLOW_CONTROL_NONE);
    if (s.dtr) {
      step = "set DTR";
      p->serial.SetDTR(*s.dtr);
    }
    if (s.rts) {
      step = "set RTS";
      p->serial.SetRTS(*s.rts);
    }
  } catch (const std::exception& e) {
    return where + step + ": " + e.what();
  }
  // Asio needs a descriptor of its own (it sets O_NONBLOCK and closes it); LibSerial's stays
  // open underneath so its settings hold until the stream is destroyed.
  const int fd = ::fcntl(p->serial.GetFileDescriptor(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return where + "dup: " + std::strerror(errno);
  boost::system::error_code ec;
  boost::asio::posix::stream_descriptor sd(ex);
  sd.assign(fd, ec);
  if (ec) {
    ::close(fd);
    return where + "assign: " + ec.message();
  }
  return serial_stream(std::move(sd), std::move(p));
}

}  // namespace interfaced::transport
