#pragma once
// The analysers' links: per configured device, a TCP server, a TCP client or a serial port, each
// connection driven by the ASTM link or the MLLP session over a traced stream, handing messages to
// the ingest hand-off. Also the device's wire trace (`interfaced trace`, "trace": true). Serial
// ports that cannot be opened are retried with capped, jittered backoff.

#include <cstdint>
#include <ctime>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "daemon/config.hpp"
#include "daemon/device_runtime.hpp"
#include "daemon/ingest_hand_off.hpp"
#include "devices/profile.hpp"
#include "transport/event_log.hpp"

namespace interfaced::daemon {

class device_links {
 public:
  // All references outlive this object (the service owns them).
  device_links(boost::asio::io_context& io, const logging_config& logging, const devices::profile_catalog& catalog,
               ingest_hand_off& sink, device_set& devices)
      : io_(io), logging_(logging), catalog_(catalog), sink_(sink), devices_(devices) {}

  // Creates the device's runtime and starts its link: listens, connects or opens the port.
  void start(const device_config& d);
  // Stops the device's links and retires its runtime (device_set::retire).
  void stop(device_runtime* dev, const char* why);
  // Writes the summaries of log floods that ended ("… N more like this"); the service calls it
  // every few seconds so a flood that stopped is still summed up.
  void flush_log_summaries();
  // Switches the device's wire trace (<logging.dir>/<id>.trace).
  void set_trace(device_runtime* dev, bool on);

 private:
  template <class Stream>
  boost::asio::awaitable<void> run_link(device_runtime* dev, Stream stream);
  boost::asio::awaitable<void> serial_loop(device_runtime* dev);
  transport::event_log device_event_log(device_runtime* dev);
  void open_trace(device_runtime* dev);
  double jitter();

  boost::asio::io_context& io_;
  const logging_config& logging_;
  const devices::profile_catalog& catalog_;
  ingest_hand_off& sink_;
  device_set& devices_;
  std::uint64_t seed_ = 0x9e3779b97f4a7c15ULL ^ static_cast<std::uint64_t>(std::time(nullptr));
};

}  // namespace interfaced::daemon
