#pragma once
// The analysers' links: per configured device, a TCP server, a TCP client or a serial port, each
// connection driven by the ASTM link or the MLLP session over a traced stream, handing messages to
// the ingest hand-off. Also the device's wire trace (`interfaced trace`, "trace": true).
// One bad link never stops the others: a serial port that is missing or cannot be opened and a
// port that cannot be listened on (in use) are retried with capped, jittered backoff under an
// alarm (LINK-001, LINK-002, subject the device id) cleared when the link comes up; a device with
// "silent_after" raises DEVICE-001 when no message came for that long.

#include <cstdint>
#include <ctime>
#include <memory>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "daemon/config.hpp"
#include "daemon/device_runtime.hpp"
#include "daemon/ingest_hand_off.hpp"
#include "devices/profile.hpp"
#include "transport/alarms.hpp"
#include "transport/event_log.hpp"

namespace interfaced::daemon {

class device_links {
 public:
  // All references outlive this object (the service owns them).
  device_links(boost::asio::io_context& io, const logging_config& logging, const devices::profile_catalog& catalog,
               ingest_hand_off& sink, device_set& devices, transport::alarm_board& alarms)
      : io_(io), logging_(logging), catalog_(catalog), sink_(sink), devices_(devices), alarms_(alarms) {}

  // Creates the device's runtime and starts its link: listens, connects or opens the port.
  void start(const device_config& d);
  // Stops the device's links and retires its runtime (device_set::retire).
  void stop(device_runtime* dev, const char* why);
  // Writes the summaries of log floods that ended ("… N more like this"); the service calls it
  // every few seconds so a flood that stopped is still summed up.
  void flush_log_summaries();
  // Switches the device's wire trace (<logging.dir>/<id>.trace).
  void set_trace(device_runtime* dev, bool on);
  // The limit on unfinished bytes of every session together ("links.max_buffered_bytes").
  void limit_buffers(std::size_t total) { total_buffers_->limit = total; }
  [[nodiscard]] const transport::buffer_budget& total_buffers() const noexcept { return *total_buffers_; }

 private:
  template <class Stream>
  boost::asio::awaitable<void> run_link(device_runtime* dev, Stream stream);
  boost::asio::awaitable<void> serial_loop(device_runtime* dev);
  // One attempt to listen; false (alarm raised) when the port cannot be bound.
  bool try_listen(device_runtime* dev);
  boost::asio::awaitable<void> listen_retry(device_runtime* dev);
  boost::asio::awaitable<void> silence_watch(device_runtime* dev);
  void link_down(device_runtime* dev, std::string_view code, const std::string& why);
  void link_up(device_runtime* dev, std::string_view code);
  transport::event_log device_event_log(device_runtime* dev);
  void open_trace(device_runtime* dev);
  double jitter();

  boost::asio::io_context& io_;
  const logging_config& logging_;
  const devices::profile_catalog& catalog_;
  ingest_hand_off& sink_;
  device_set& devices_;
  transport::alarm_board& alarms_;
  std::shared_ptr<transport::buffer_budget> total_buffers_ = std::make_shared<transport::buffer_budget>();
  std::uint64_t seed_ = 0x9e3779b97f4a7c15ULL ^ static_cast<std::uint64_t>(std::time(nullptr));
};

}  // namespace interfaced::daemon
