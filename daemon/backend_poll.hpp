#pragma once
// What the service asks of the backend on its own schedule: per device, the waiting list and the
// parameter configuration, at start and every backend.waiting_list_poll. A waiting list refreshes
// the rerun state (and, for devices that take order download, queues the orders that changed); a
// parameter configuration rebuilds the rule set (the local rules file + every device's auto-rerun
// conditions). The last answers are kept in the outbox file, so rules work while the backend is
// down. Also the periodic prune of the result history.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>

#include "daemon/config.hpp"
#include "daemon/device_runtime.hpp"
#include "daemon/ingest_hand_off.hpp"
#include "rerun/rules.hpp"
#include "transport/http_client.hpp"
#include "transport/outbox.hpp"
#include "transport/state_store.hpp"

namespace interfaced::daemon {

class backend_poller {
 public:
  // All references outlive this object (the service owns them). `cfg` is the configuration at
  // start: backend and outbox settings apply after a restart.
  backend_poller(boost::asio::io_context& io, const config& cfg, device_set& devices, ingest_hand_off& sink,
                 transport::outbox& box, transport::state_store& store)
      : io_(io), backend_(cfg.backend), history_days_(cfg.outbox.history_days), devices_(devices), sink_(sink),
        outbox_(box), store_(store) {}

  // The rule set from the local rules and the stored parameter configuration of `devices`.
  void load(const std::vector<device_config>& devices, rerun::rule_set local_rules);
  // Forgets history older than outbox.history_days and reruns whose confirmation never came.
  void prune_history();
  // Called when a device's qc-limits answer changed, with the state to store (the limits document):
  // the charts judged with the old limits are re-evaluated (qc_admin::limits_changed) and commit
  // with it. Without one the document is only stored. `put_back`: to call when that commit
  // failed (the previous limits are in force again and the next poll retries).
  using qc_limits_hook =
      std::function<void(const std::string& device, transport::state_changes sc, std::function<void()> put_back)>;
  void on_qc_limits_changed(qc_limits_hook f) { qc_limits_changed_ = std::move(f); }
  // Polls until stop() (nothing without a backend.base_url).
  void start();
  void stop();

 private:
  boost::asio::awaitable<void> poll_loop();
  boost::asio::awaitable<void> poll_device(transport::http_client& client, device_runtime& dev);
  void rebuild_rules(const std::string& changed_device);
  // GET /interfacing/qc-limits: applied to the QC tracker and kept in the state store.
  boost::asio::awaitable<void> poll_qc_limits(transport::http_client& client, device_runtime& dev);
  void apply_qc_limits(const std::string& device, const std::string& text, spdlog::logger* log);
  void push_orders(device_runtime& dev);

  boost::asio::io_context& io_;
  const backend_config backend_;
  const unsigned history_days_;
  device_set& devices_;
  ingest_hand_off& sink_;
  transport::outbox& outbox_;
  transport::state_store& store_;
  rerun::rule_set base_rules_;                          // the local rules file
  std::map<std::string, std::string> parameters_text_;  // by device: the backend's last answer
  std::map<std::string, std::string> qc_limits_text_;   // by device: the backend's last QC limits
  qc_limits_hook qc_limits_changed_;
  boost::asio::cancellation_signal cancel_;
  transport::http_client* client_ = nullptr;
  bool stopping_ = false;
};

}  // namespace interfaced::daemon
