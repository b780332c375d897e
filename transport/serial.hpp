#pragma once
// Serial ports (RS-232 analysers): LibSerial opens and configures the port (baud, data bits,
// parity, stop bits, flow control, DTR/RTS); the descriptor is then driven by Asio, so serial and
// TCP links share one io_context and one link driver (no thread per port).
//
// LibSerial is used only while opening: its SerialPort::Close() throws when the device has gone
// (EIO from a USB adapter pulled out, a pty whose master closed) and its destructor then calls
// Close() again and terminates the process. So open_serial() keeps a dup() of the configured
// descriptor, closes the SerialPort at once (while the device is surely there), re-applies the
// configured termios (Close() restores the old settings) and returns a plain stream_descriptor.
// DTR/RTS stay as set: the line is hung up only on the last close of the tty.

#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/system/result.hpp>

namespace interfaced::transport {

enum class serial_parity { none, even, odd };
enum class serial_flow { none, rts_cts, xon_xoff };

struct serial_settings {
  std::string device;  // /dev/ttyS0, /dev/ttyUSB0, /dev/serial/by-id/...
  unsigned baud = 9600;  // 1200 ... 230400
  int data_bits = 8;     // 5..8 (7 for some older E1381 analysers)
  serial_parity parity = serial_parity::none;
  int stop_bits = 1;     // 1 or 2
  serial_flow flow = serial_flow::none;
  std::optional<bool> dtr;  // unset: left as the driver set it (ptys have no modem lines)
  std::optional<bool> rts;
};

// Opens and configures the port; the error says which step failed (LibSerial reports by
// exception, turned into a value here).
[[nodiscard]] boost::system::result<boost::asio::posix::stream_descriptor, std::string> open_serial(
    const boost::asio::any_io_executor& ex, const serial_settings& settings);

}  // namespace interfaced::transport
