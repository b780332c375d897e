#pragma once
// One configured analyser while the service runs: its configuration, logs, counters, trace, live
// links and order-download state; and the set of them the service's parts share (ingest hand-off,
// links, backend polling, health). Lives on the event-loop thread only.

#include <chrono>
#include <cstdint>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/cancellation_signal.hpp>

#include "daemon/config.hpp"
#include "devices/profile.hpp"
#include "parsers/astm/control.hpp"
#include "parsers/hl7/mllp.hpp"
#include "rerun/order_download.hpp"
#include "transport/latency_histogram.hpp"
#include "transport/link_counters.hpp"
#include "transport/log_limiter.hpp"
#include "transport/hl7_peer.hpp"
#include "transport/push_queue.hpp"
#include "transport/tcp.hpp"
#include "transport/traced_stream.hpp"

namespace spdlog {
class logger;
}

namespace interfaced::daemon {

// Per device: what technicians and `interfaced status` see.
struct device_stats {
  std::uint64_t messages = 0;
  std::uint64_t results = 0;
  std::uint64_t queries = 0;
  std::uint64_t problems = 0;      // NAKs, checksum errors, discarded messages (from the link log)
  // NAKs sent and received, checksum errors: counted by the link drivers from the link's events.
  std::shared_ptr<transport::link_counters> link = std::make_shared<transport::link_counters>();
  transport::latency_histogram ingest_ack;  // message complete -> durable -> ACK / AA released
  std::uint64_t connections = 0;
  std::uint64_t duplicates = 0;
  std::string last_message_at;
  std::chrono::system_clock::time_point last_message_time{};  // epoch: none yet
  bool connected = false;
  // "Today" in the lab's local time (technicians ask how many samples an analyser did today).
  int day = -1;                     // local day of year the *_today counters belong to
  std::uint64_t messages_today = 0;
  std::uint64_t results_today = 0;

  void count_today(std::uint64_t results_now) {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    const int today = tm.tm_year * 400 + tm.tm_yday;
    if (today != day) {
      day = today;
      messages_today = results_today = 0;
    }
    ++messages_today;
    results_today += results_now;
  }
};

// Whether a link is inside a transfer, told from its bytes alone so shutdown can wait for exactly
// that: ASTM from the analyser's ENQ to its EOT (neither byte can occur inside a frame, LIS1-A 6.6);
// HL7 from a message's 0x0B until our acknowledgement's 0x1C went out (a message the MLLP decoder
// rejects gets no ACK and keeps the link "busy": shutdown then waits out its bounded grace).
struct transfer_activity {
  explicit transfer_activity(bool is_astm) : astm(is_astm) {}
  void observe(bool rx, std::string_view bytes) {
    for (const char c : bytes) {
      if (astm) {
        if (rx && c == astm::control::enq) in_session = true;
        if (rx && c == astm::control::eot) in_session = false;
      } else if (rx) {
        if (c == hl7::mllp_start) in_message = true;
        if (c == hl7::mllp_end && in_message) {
          in_message = false;
          ++received;
        }
      } else if (c == hl7::mllp_end) {
        ++acknowledged;
      }
    }
  }
  [[nodiscard]] bool busy() const { return astm ? in_session : in_message || received > acknowledged; }

  bool astm;
  bool in_session = false;
  bool in_message = false;
  std::uint64_t received = 0;
  std::uint64_t acknowledged = 0;
};

struct device_runtime {
  device_config cfg;
  std::vector<std::shared_ptr<transfer_activity>> activity;  // one per live link
  std::shared_ptr<spdlog::logger> log;
  // The link's event lines go through it: a flood is written up to a burst, then summed up, so
  // the device log keeps its history (transport/log_limiter.hpp).
  transport::log_limiter log_limit;
  std::shared_ptr<transport::trace_tap> tap = std::make_shared<transport::trace_tap>();
  std::unique_ptr<transport::tcp_server> server;
  boost::asio::cancellation_signal cancel;  // tcp-client and serial loops
  device_stats stats;
  bool backend_down = false;        // waiting-list polling: say so once per outage
  std::size_t waiting_list_size = 0;
  const devices::device_profile* profile = nullptr;
  std::ofstream trace_file;
  // Order download (worklist push), when the profile or the configuration says the analyser
  // takes it: messages waiting for its link, and what it was sent. In memory only: after a
  // restart pending orders are sent once more, which an analyser takes as the same order again.
  bool order_download = false;
  std::shared_ptr<transport::push_queue> orders = std::make_shared<transport::push_queue>();
  // HL7: who the analyser last said it is (MSH-3/4), across its connections: the address of pushed orders.
  std::shared_ptr<transport::hl7_peer> hl7_peer = std::make_shared<transport::hl7_peer>();
  rerun::download_state downloaded;
};

// The running devices, in configuration order, and by id. A device stopped by a reload is
// retired, not destroyed: coroutines of its closing sessions may still refer to it until they end.
struct device_set {
  std::vector<std::unique_ptr<device_runtime>> running;
  std::map<std::string, device_runtime*> by_id;
  std::vector<std::unique_ptr<device_runtime>> retired;

  device_runtime* add(std::unique_ptr<device_runtime> d) {
    device_runtime* p = d.get();
    by_id[p->cfg.id] = p;
    running.push_back(std::move(d));
    return p;
  }
  void retire(device_runtime* dev) {
    by_id.erase(dev->cfg.id);
    for (auto it = running.begin(); it != running.end(); ++it)
      if (it->get() == dev) {
        retired.push_back(std::move(*it));
        running.erase(it);
        return;
      }
  }
  [[nodiscard]] device_runtime* find(const std::string& id) const {
    const auto it = by_id.find(id);
    return it == by_id.end() ? nullptr : it->second;
  }
};

}  // namespace interfaced::daemon
