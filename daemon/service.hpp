#pragma once
// The service's lifecycle: open what it keeps (profiles, outbox, rerun state, rules), start its
// parts (delivery, the analysers' links, backend polling, the health endpoint), then run one
// io_context until SIGTERM / SIGINT; SIGHUP applies a valid new configuration device by device.
// Shutdown: STOPPING=1, stop accepting, let transfers in progress finish (bounded), flush the
// outbox, exit 0. The loop pets the systemd watchdog, so a blocked loop is a restart.

#include <filesystem>
#include <memory>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/backend_poll.hpp"
#include "daemon/config.hpp"
#include "daemon/device_links.hpp"
#include "daemon/device_runtime.hpp"
#include "daemon/health.hpp"
#include "daemon/ingest_hand_off.hpp"
#include "daemon/lab_view.hpp"
#include "daemon/qc_admin.hpp"
#include "devices/profile.hpp"
#include "transport/alarms.hpp"
#include "transport/delivery.hpp"
#include "transport/http_server.hpp"
#include "transport/instance_lock.hpp"
#include "transport/outbox.hpp"
#include "transport/state_store.hpp"

namespace interfaced::daemon {

class service {
 public:
  service(config cfg, std::filesystem::path config_path);
  ~service();

  // Profiles, outbox, rerun state and rules; an exit status (exit_config, exit_io) when one fails.
  [[nodiscard]] int open();
  // Every part, then READY=1.
  void start();
  // Until shutdown; the exit status.
  [[nodiscard]] int run();

 private:
  int load_state();
  int load_rules();
  void start_delivery();
  void start_health();
  void wait_signals();
  void reload();
  void shutdown(const char* why);
  [[nodiscard]] bool transfer_in_progress() const;
  void finish_when_idle(std::shared_ptr<boost::asio::steady_timer> grace,
                        std::chrono::steady_clock::time_point deadline);
  void start_watchdog();
  void housekeeping();
  void pet(std::chrono::microseconds period);

  boost::asio::io_context io_{1};
  config cfg_;
  std::filesystem::path config_path_;
  devices::profile_catalog catalog_;
  transport::alarm_board alarms_;
  std::optional<transport::instance_lock> lock_;  // held for the process's life
  std::string admin_token_;                        // health.admin_token_file's, read at start
  std::unique_ptr<transport::outbox> outbox_;
  std::unique_ptr<transport::delivery_service> delivery_;
  std::unique_ptr<transport::state_store> state_;
  device_set devices_;
  std::unique_ptr<ingest_hand_off> sink_;
  std::unique_ptr<qc_admin> qc_admin_;  // QC resolutions: /api/qc/resolve|approve|undo|history
  std::unique_ptr<device_links> links_;
  std::unique_ptr<backend_poller> poller_;
  std::unique_ptr<lab_view> lab_view_;  // before health_: the server calls it until it is gone
  std::unique_ptr<transport::http_server> health_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer watchdog_;
  boost::asio::steady_timer housekeeping_;
  bool stopping_ = false;
};

}  // namespace interfaced::daemon
