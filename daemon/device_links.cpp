#include "daemon/device_links.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>
#include <spdlog/spdlog.h>

#include "daemon/clock.hpp"
#include "daemon/logging.hpp"
#include "devices/wire_trace.hpp"
#include "transport/astm_link.hpp"
#include "transport/mllp_session.hpp"
#include "transport/serial.hpp"
#include "transport/tcp.hpp"
#include "transport/traced_stream.hpp"

namespace interfaced::daemon {

namespace asio = boost::asio;

namespace {

transport::keepalive_settings keepalive_of(const keepalive& k) {
  transport::keepalive_settings s;
  s.enabled = k.enabled;
  s.idle = std::chrono::seconds(k.idle_s);
  s.interval = std::chrono::seconds(k.interval_s);
  s.count = static_cast<int>(k.count);
  return s;
}

transport::serial_settings serial_of(const serial_link& c) {
  transport::serial_settings s;
  s.device = c.device;
  s.baud = c.baud;
  s.data_bits = static_cast<int>(c.data_bits);
  s.parity = c.parity == "even" ? transport::serial_parity::even
             : c.parity == "odd" ? transport::serial_parity::odd
                                 : transport::serial_parity::none;
  s.stop_bits = static_cast<int>(c.stop_bits);
  s.flow = c.flow_control == "rts-cts"    ? transport::serial_flow::rts_cts
           : c.flow_control == "xon-xoff" ? transport::serial_flow::xon_xoff
                                          : transport::serial_flow::none;
  s.dtr = c.dtr;
  s.rts = c.rts;
  return s;
}

}  // namespace

void device_links::start(const device_config& d) {
  auto made = std::make_unique<device_runtime>();
  made->cfg = d;
  made->log = device_log(logging_, d.id);
  if (!d.profile.empty()) made->profile = catalog_.find(d.profile);
  made->order_download = d.order_download.value_or(made->profile != nullptr && made->profile->order_download);
  if (made->order_download)
    made->log->info("order download on ({}): pending orders are sent to the analyser after each waiting-list refresh",
                    d.order_download ? std::string("configuration") : "profile " + made->profile->id);
  device_runtime* p = devices_.add(std::move(made));
  if (d.trace) set_trace(p, true);

  if (d.link_type == "tcp-server") {
    transport::tcp_server_options o;
    o.bind_address = d.server.bind;
    o.port = d.server.port;
    o.allowed_peers = d.server.allow;
    o.keepalive = keepalive_of(d.server.ka);
    p->server = std::make_unique<transport::tcp_server>(
        io_.get_executor(), o,
        [this, p](asio::ip::tcp::socket s, std::string peer) {
          p->log->info("connected: {}", peer);
          return run_link(p, std::move(s));
        },
        device_event_log(p));
    if (auto ec = p->server->start()) {
      p->log->error("cannot listen on {}:{}: {}", d.server.bind, d.server.port, ec.message());
    } else {
      p->log->info("listening on {}:{} ({})", d.server.bind, p->server->port(), d.protocol);
    }
  } else if (d.link_type == "tcp-client") {
    transport::tcp_client_options o;
    o.host = d.client.host;
    o.port = d.client.port;
    o.backoff.initial = d.client.reconnect_initial;
    o.backoff.max = d.client.reconnect_max;
    o.keepalive = keepalive_of(d.client.ka);
    transport::tcp_session session = [this, p](asio::ip::tcp::socket s, std::string peer) {
      p->log->info("connected to {}", peer);
      return run_link(p, std::move(s));
    };
    transport::event_log log = device_event_log(p);
    asio::co_spawn(io_, transport::run_tcp_client(std::move(o), std::move(session), std::move(log)),
                   asio::bind_cancellation_slot(p->cancel.slot(), asio::detached));
  } else if (d.link_type == "serial") {
    asio::co_spawn(io_, serial_loop(p), asio::bind_cancellation_slot(p->cancel.slot(), asio::detached));
  }
}

void device_links::stop(device_runtime* dev, const char* why) {
  dev->log->info("stopping: {}", why);
  if (dev->server) {
    dev->server->stop();
    dev->server->close_sessions();
  }
  dev->cancel.emit(asio::cancellation_type::terminal);
  dev->tap->enabled = false;
  devices_.retire(dev);
}

template <class Stream>
asio::awaitable<void> device_links::run_link(device_runtime* dev, Stream stream) {
  // A second tap, always on, tells shutdown whether a transfer is in progress.
  auto activity = std::make_shared<transfer_activity>(dev->cfg.protocol == "astm");
  auto watch = std::make_shared<transport::trace_tap>();
  watch->enabled = true;
  watch->write = [activity](bool rx, std::string_view bytes) { activity->observe(rx, bytes); };
  dev->activity.push_back(activity);
  transport::traced_stream<transport::traced_stream<Stream>> traced(
      transport::traced_stream<Stream>(std::move(stream), dev->tap), watch);
  ++dev->stats.connections;
  dev->stats.connected = true;
  if (dev->cfg.protocol == "astm") {
    transport::astm_link_config lc;
    lc.catalog = &catalog_;
    lc.forced = dev->profile;
    lc.device = dev->cfg.id;
    if (dev->profile) lc.link.frame_text_size = dev->profile->frame_text_size;
    if (dev->cfg.frame_text_size) lc.link.frame_text_size = dev->cfg.frame_text_size;
    // Named locals moved in: GCC 12 double-frees temporaries passed to a coroutine's by-value
    // parameters (reproduced while building transport/).
    lc.answer_queries = [this, dev](const std::vector<query>& qs) { return sink_.answer_astm_queries(*dev, qs); };
    if (dev->order_download) lc.push = dev->orders;
    lc.counters = dev->stats.link;
    transport::event_log log = device_event_log(dev);
    co_await transport::run_astm_link(std::move(traced), std::move(lc), sink_, std::move(log));
  } else {
    transport::mllp_session_config mc;
    mc.catalog = &catalog_;
    mc.forced = dev->profile;
    mc.device = dev->cfg.id;
    if (dev->profile) mc.ack = dev->profile->ack;  // the ACK this analyser expects (profile data)
    mc.answer_query = [this, dev](std::string_view text, const std::vector<query>& qs) {
      return sink_.answer_hl7_query(*dev, text, qs);
    };
    if (dev->order_download) mc.push = dev->orders;
    mc.counters = dev->stats.link;
    mc.peer = dev->hl7_peer;
    transport::event_log log = device_event_log(dev);
    co_await transport::run_mllp_session(std::move(traced), std::move(mc), sink_, std::move(log));
  }
  dev->stats.connected = false;
  std::erase(dev->activity, activity);
}

asio::awaitable<void> device_links::serial_loop(device_runtime* dev) {
  const transport::serial_settings s = serial_of(dev->cfg.serial);
  transport::backoff_policy backoff;
  unsigned attempt = 0;
  asio::steady_timer wait(io_);
  for (;;) {
    auto port = transport::open_serial(io_.get_executor(), s);
    if (port) {
      attempt = 0;
      dev->log->info("serial port {} open ({} baud, {}{}{})", s.device, s.baud, s.data_bits,
                     dev->cfg.serial.parity == "none" ? 'N' : dev->cfg.serial.parity == "even" ? 'E' : 'O', s.stop_bits);
      co_await run_link(dev, std::move(*port));
      dev->log->warn("serial link {} ended; reopening", s.device);
    } else {
      dev->log->error("cannot open serial port {}: {}", s.device, port.error());
    }
    wait.expires_after(transport::backoff_delay(backoff, attempt++, jitter()));
    auto [ec] = co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;  // cancelled: shutting down
  }
}

double device_links::jitter() {
  seed_ = seed_ * 6364136223846793005ULL + 1442695040888963407ULL;
  return static_cast<double>(seed_ >> 11) / 9007199254740992.0;
}

transport::event_log device_links::device_event_log(device_runtime* dev) {
  return [dev](std::string_view line) {
    // The drivers' lines are the technicians' record of the link; problems are counted.
    const bool problem = line.find("NAK") != std::string_view::npos || line.find("discard") != std::string_view::npos ||
                         line.find("checksum") != std::string_view::npos || line.find("bug:") != std::string_view::npos;
    if (problem) ++dev->stats.problems;
    std::vector<std::string> summaries;
    const bool write = dev->log_limit.admit(line, std::chrono::steady_clock::now(), summaries);
    for (const auto& s : summaries) dev->log->warn("{}", s);
    if (!write) return;
    // What the receive pipeline warns about (no sample id, a message that gave no result, each
    // with its [HL7-1NN] code) is at warning level too, so it is never lost among the info lines.
    if (problem || line.find(": warning: ") != std::string_view::npos) dev->log->warn("{}", line);
    else dev->log->info("{}", line);
  };
}

void device_links::open_trace(device_runtime* dev) {
  if (dev->trace_file.is_open()) return;
  std::error_code ec;
  std::filesystem::create_directories(logging_.dir, ec);
  const auto path = logging_.dir / (dev->cfg.id + ".trace");
  dev->trace_file.open(path, std::ios::app | std::ios::binary);
  if (!dev->trace_file) {
    dev->log->error("wire trace: cannot open {}", path.string());
    return;
  }
  dev->trace_file << devices::wire_trace_header << ", device " << dev->cfg.id << "\n";
  dev->tap->write = [dev](bool rx, std::string_view bytes) {
    dev->trace_file << devices::format_trace_line(now_iso_ms(), rx, bytes) << '\n';
    dev->trace_file.flush();
  };
}

void device_links::flush_log_summaries() {
  const auto now = std::chrono::steady_clock::now();
  for (const auto& dev : devices_.running) {
    std::vector<std::string> summaries;
    dev->log_limit.flush(now, summaries);
    for (const auto& s : summaries) dev->log->warn("{}", s);
  }
}

void device_links::set_trace(device_runtime* dev, bool on) {
  if (on) open_trace(dev);
  dev->tap->enabled = on;
  dev->log->info("wire trace {} ({})", on ? "on" : "off", (logging_.dir / (dev->cfg.id + ".trace")).string());
}

}  // namespace interfaced::daemon
