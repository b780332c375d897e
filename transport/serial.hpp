#pragma once
// Serial ports (RS-232 analysers): LibSerial opens and configures the port (baud, data bits,
// parity, stop bits, flow control, DTR/RTS); the descriptor is then driven by Asio, so serial and
// TCP links share one io_context and one link driver (no thread per port).
//
// serial_stream is a posix::stream_descriptor (async_read_some / async_write_some, usable by
// run_astm_link) over a dup() of LibSerial's descriptor, and it keeps the LibSerial port open for
// its whole life: closing the SerialPort would restore the settings the port had before.

#include <memory>
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

class serial_stream : public boost::asio::posix::stream_descriptor {
 public:
  struct port;  // LibSerial's SerialPort, kept out of this header

  serial_stream(boost::asio::posix::stream_descriptor fd, std::unique_ptr<port> p) noexcept;
  serial_stream(serial_stream&&) noexcept;
  serial_stream& operator=(serial_stream&&) noexcept;
  ~serial_stream();

 private:
  std::unique_ptr<port> port_;
};

// Opens and configures the port; the error says which step failed (LibSerial reports by
// exception, turned into a value here).
[[nodiscard]] boost::system::result<serial_stream, std::string> open_serial(
    const boost::asio::any_io_executor& ex, const serial_settings& settings);

}  // namespace interfaced::transport
