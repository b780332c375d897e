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
#include "daemon/folder_device.hpp"
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
  made->buffers->limit = d.max_buffered_bytes;
  device_runtime* p = devices_.add(std::move(made));
  if (d.trace) set_trace(p, true);

  if (d.link_type == "tcp-server") {
    transport::tcp_server_options o;
    o.bind_address = d.server.bind;
    o.port = d.server.port;
    o.allowed_peers = d.server.allow;
    o.keepalive = keepalive_of(d.server.ka);
    o.max_sessions = d.max_sessions;
    // The server logs each connection itself ("connection from ..."): not logged twice here.
    p->server = std::make_unique<transport::tcp_server>(
        io_.get_executor(), o, [this, p](asio::ip::tcp::socket s, std::string) { return run_link(p, std::move(s)); },
        device_event_log(p));
    // The first attempt at once, so READY means listening for every port that is free.
    if (!try_listen(p))
      asio::co_spawn(io_, listen_retry(p), asio::bind_cancellation_slot(p->cancel.slot(), asio::detached));
  } else if (d.link_type == "tcp-client") {
    transport::tcp_client_options o;
    o.host = d.client.host;
    o.port = d.client.port;
    o.backoff.initial = d.client.reconnect_initial;
    o.backoff.max = d.client.reconnect_max;
    o.keepalive = keepalive_of(d.client.ka);
    const std::string where = d.client.host + ":" + std::to_string(d.client.port);
    p->down_reason = "connecting to " + where;
    o.on_connect_failed = [p, where](const std::string& why) { p->down_reason = "cannot connect to " + where + ": " + why; };
    // The client logs "connected" itself.
    transport::tcp_session session = [this, p](asio::ip::tcp::socket s, std::string) {
      return run_link(p, std::move(s));
    };
    transport::event_log log = device_event_log(p);
    asio::co_spawn(io_, transport::run_tcp_client(std::move(o), std::move(session), std::move(log)),
                   asio::bind_cancellation_slot(p->cancel.slot(), asio::detached));
  } else if (d.link_type == "folder") {
    start_folder_device(io_, p, catalog_, sink_, device_event_log(p));
  } else if (d.link_type == "serial") {
    asio::co_spawn(io_, serial_loop(p), asio::bind_cancellation_slot(p->cancel.slot(), asio::detached));
  }
  if (d.silent_after)
    asio::co_spawn(io_, silence_watch(p), asio::bind_cancellation_slot(p->cancel_watch.slot(), asio::detached));
}

void device_links::link_down(device_runtime* dev, std::string_view code, const std::string& why) {
  dev->down_reason = why;
  // One line per outage in the device log (the service log gets the alarm's own line); the
  // retries in between are quiet.
  if (alarms_.raise(code, dev->cfg.id, "link down: " + why, std::chrono::system_clock::now()))
    dev->log->error("link down: {}; retrying with backoff [{}]", why, code);
}

void device_links::link_up(device_runtime* dev, std::string_view code) {
  dev->down_reason.clear();
  alarms_.clear(code, dev->cfg.id);
}

bool device_links::try_listen(device_runtime* dev) {
  const auto& c = dev->cfg.server;
  if (auto ec = dev->server->start()) {
    link_down(dev, transport::alarm_code::link_bind,
              "cannot listen on " + c.bind + ":" + std::to_string(c.port) + ": " + ec.message());
    return false;
  }
  link_up(dev, transport::alarm_code::link_bind);
  dev->log->info("listening on {}:{} ({}, at most {} session{})", c.bind, dev->server->port(), dev->cfg.protocol,
                 dev->cfg.max_sessions, dev->cfg.max_sessions == 1 ? "" : "s");
  return true;
}

asio::awaitable<void> device_links::listen_retry(device_runtime* dev) {
  // Binding is cheap: retried often enough that a port freed by another program is taken within
  // seconds, never in a tight loop.
  transport::backoff_policy backoff;
  backoff.initial = std::chrono::milliseconds(500);
  backoff.max = std::chrono::milliseconds(10000);
  asio::steady_timer wait(io_);
  for (unsigned attempt = 0;; ++attempt) {
    wait.expires_after(transport::backoff_delay(backoff, attempt, jitter()));
    auto [ec] = co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec || dev->stopped) co_return;  // cancelled: stopped or shutting down
    if (try_listen(dev)) co_return;
  }
}

asio::awaitable<void> device_links::silence_watch(device_runtime* dev) {
  const std::chrono::seconds limit = *dev->cfg.silent_after;
  const std::string about = std::to_string(limit.count()) + " s";
  asio::steady_timer tick(io_);
  auto last = std::chrono::steady_clock::now();
  std::uint64_t seen = dev->stats.messages;
  for (;;) {
    // Looked at every second (or sooner for a shorter limit): cheap, and the alarm clears within a
    // second of the message that ends the silence.
    tick.expires_after(std::min<std::chrono::steady_clock::duration>(limit, std::chrono::seconds(1)));
    auto [ec] = co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec || dev->stopped) co_return;
    const auto now = std::chrono::steady_clock::now();
    if (dev->stats.messages != seen) {
      seen = dev->stats.messages;
      last = now;
      if (alarms_.clear(transport::alarm_code::device_silent, dev->cfg.id))
        dev->log->info("messages again after a silence longer than silent_after ({})", about);
    } else if (now - last > limit &&
               alarms_.raise(transport::alarm_code::device_silent, dev->cfg.id,
                             "analyser " + dev->cfg.id + " silent: no message for more than " + about + " (silent_after)",
                             std::chrono::system_clock::now())) {
      dev->log->warn("no message for more than {} (silent_after) [{}]", about, transport::alarm_code::device_silent);
    }
  }
}

void device_links::stop(device_runtime* dev, const char* why) {
  dev->log->info("stopping: {}", why);
  dev->stopped = true;
  // A device that is gone (or restarts with new settings) leaves no alarm of its old link behind.
  for (const auto code : {transport::alarm_code::link_down, transport::alarm_code::link_bind,
                          transport::alarm_code::device_silent})
    alarms_.clear(code, dev->cfg.id);
  if (dev->server) {
    dev->server->stop();
    dev->server->close_sessions();
  }
  dev->cancel.emit(asio::cancellation_type::terminal);
  dev->cancel_watch.emit(asio::cancellation_type::terminal);
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
  ++dev->open_links;
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
    lc.device_buffers = dev->buffers;
    lc.total_buffers = total_buffers_;
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
    mc.idle_timeout = std::chrono::seconds(dev->cfg.idle_timeout_s);
    mc.device_buffers = dev->buffers;
    mc.total_buffers = total_buffers_;
    mc.timestamp = [] { return now_hl7(); };  // MSH-7 of our ACKs: the lab's zone, as every time we write
    transport::event_log log = device_event_log(dev);
    co_await transport::run_mllp_session(std::move(traced), std::move(mc), sink_, std::move(log));
  }
  --dev->open_links;
  if (dev->open_links == 0 && dev->cfg.link_type == "tcp-client")
    dev->down_reason = "disconnected; reconnecting to " + dev->cfg.client.host + ":" + std::to_string(dev->cfg.client.port);
  std::erase(dev->activity, activity);
}

asio::awaitable<void> device_links::serial_loop(device_runtime* dev) {
  const transport::serial_settings s = serial_of(dev->cfg.serial);
  // A USB adapter plugged back in (udev re-creates the node) is opened within seconds: opening a
  // missing path costs a failed open() and nothing else.
  transport::backoff_policy backoff;
  backoff.initial = std::chrono::milliseconds(250);
  backoff.max = std::chrono::milliseconds(5000);
  unsigned attempt = 0;
  asio::steady_timer wait(io_);
  for (;;) {
    auto port = transport::open_serial(io_.get_executor(), s);
    if (port) {
      attempt = 0;
      link_up(dev, transport::alarm_code::link_down);
      dev->log->info("serial port {} open ({} baud, {}{}{})", s.device, s.baud, s.data_bits,
                     dev->cfg.serial.parity == "none" ? 'N' : dev->cfg.serial.parity == "even" ? 'E' : 'O', s.stop_bits);
      co_await run_link(dev, std::move(*port));
      if (dev->stopped) co_return;
      dev->log->info("serial link {} ended; reopening", s.device);
    } else {
      std::error_code ec;
      const bool missing = !std::filesystem::exists(s.device, ec);
      link_down(dev, transport::alarm_code::link_down,
                missing ? s.device + " is missing" : "cannot open " + port.error());
    }
    wait.expires_after(transport::backoff_delay(backoff, attempt++, jitter()));
    auto [ec] = co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec || dev->stopped) co_return;  // cancelled: stopped or shutting down
  }
}

double device_links::jitter() {
  seed_ = seed_ * 6364136223846793005ULL + 1442695040888963407ULL;
  return static_cast<double>(seed_ >> 11) / 9007199254740992.0;
}

transport::event_log device_links::device_event_log(device_runtime* dev) {
  return [dev, sink = &sink_](std::string_view line) {
    // The drivers' lines are the technicians' record of the link; problems are counted.
    const bool problem = line.find("NAK") != std::string_view::npos || line.find("discard") != std::string_view::npos ||
                         line.find("checksum") != std::string_view::npos || line.find("bug:") != std::string_view::npos;
    if (problem) ++dev->stats.problems;
    // history.md: device_link_error by kind. The drivers' own wording is the classifier: a NAK
    // sent or received, a checksum mismatch, a wait that ran out.
    // A damaged frame says so twice -- the decoder's "checksum mismatch" and the link's "frame N
    // rejected (NAK)" -- and counts once as each kind.
    const char* kind = line.find("NAK") != std::string_view::npos        ? "nak"
                       : line.find("checksum") != std::string_view::npos ? "checksum"
                       : (line.find("timed out") != std::string_view::npos ||
                          line.find("timeout") != std::string_view::npos ||
                          line.find("no frame or EOT completed") != std::string_view::npos)
                           ? "timeout"
                           : nullptr;
    if (kind != nullptr) {
      rerun::history_event e;
      e.event_type = std::string(rerun::history_events::device_link_error);
      e.dimension_a = dev->cfg.id;
      e.dimension_b = kind;
      e.at = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
      sink->record_events({std::move(e)});
    }
    std::vector<std::string> summaries;
    const bool write = dev->log_limit.admit(line, std::chrono::steady_clock::now(), summaries);
    for (const auto& s : summaries) dev->log->warn("{}", s);
    if (!write) return;
    // Warnings: problems, what the receive pipeline warns about (no sample id, a message that gave
    // no result: ": warning: ... [HL7-1NN]"), and every line that ends with a code ("... [LINK-003]").
    const bool coded = line.ends_with("]") && line.rfind(" [") != std::string_view::npos;
    if (problem || coded || line.find(": warning: ") != std::string_view::npos) dev->log->warn("{}", line);
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
    dev->log->error("wire trace: cannot open {} [TRACE-001]", path.string());
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
