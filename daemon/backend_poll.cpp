#include "daemon/backend_poll.hpp"

#include "rerun/history.hpp"

#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "daemon/clock.hpp"
#include "parsers/astm/builders.hpp"
#include "parsers/hl7/builders.hpp"
#include "parsers/text.hpp"
#include "rerun/order_download.hpp"
#include "rerun/process.hpp"
#include "rerun/qc_json.hpp"
#include "rerun/rerun_json.hpp"

namespace interfaced::daemon {

namespace asio = boost::asio;
using json = nlohmann::json;

void backend_poller::load(const std::vector<device_config>& devices, rerun::rule_set local_rules) {
  base_rules_ = std::move(local_rules);
  for (const auto& d : devices) {
    // The last parameter configuration the backend sent: auto-rerun rules work while it is down.
    if (auto text = store_.get("parameters:" + d.id)) parameters_text_[d.id] = *text;
    // The last QC limits the backend sent (qc.md: kept locally, like parameters).
    if (auto text = store_.get("qc_limits:" + d.id)) apply_qc_limits(d.id, *text, nullptr);
  }
  rebuild_rules("");
}

// On the outbox worker, like every write: a large delete never stalls the analysers' links.
void backend_poller::prune_history() {
  const auto now = wall_now();
  // Received reruns whose confirmation never came back: the backend's rerun cache TTL is a day.
  const auto dropped = rerun::prune_state(sink_.state(), now - std::chrono::days(1));
  if (dropped > 0) sink_.persist_state(nullptr);
  const unsigned days = history_days_;
  outbox_.prune_history(now - std::chrono::days(days), [dropped, days](std::size_t removed) {
    if (removed > 0 || dropped > 0)
      spdlog::info("rerun history: {} results older than {} days and {} stale reruns forgotten", removed, days, dropped);
  });
}

// The rule set = the local rules file + every device's backend parameter configuration. A
// condition that does not compile is an error naming its parameter, logged when the text that
// holds it is new (`changed_device`, "" at start-up: every device).
void backend_poller::rebuild_rules(const std::string& changed_device) {
  rerun::rule_set rules = base_rules_;
  for (const auto& [device, text] : parameters_text_) {
    std::vector<rerun::parameter_config> params;
    try {
      params = rerun::parameters_from_json(json::parse(text));
    } catch (const std::exception& e) {
      if (changed_device.empty() || changed_device == device)
        spdlog::error("device {}: parameter configuration from the backend rejected: {} [BACKEND-009]", device, e.what());
      continue;
    }
    const auto errors = rules.add_parameters(params);
    if (changed_device.empty() || changed_device == device) {
      for (const auto& e : errors)
        spdlog::error("device {}: auto-rerun condition of parameter {} does not parse, the rule is off: {} [RULES-003]", device,
                      e.rule_id.substr(e.rule_id.find(':') + 1), e.format());
      spdlog::info("device {}: parameter configuration: {} parameters, {} auto-rerun conditions refused", device,
                   params.size(), errors.size());
    }
  }
  sink_.rules() = std::move(rules);
}

void backend_poller::apply_qc_limits(const std::string& device, const std::string& text, spdlog::logger* log) {
  try {
    auto limits = rerun::qc::limits_from_json(json::parse(text));
    const std::size_t n = limits.size();
    sink_.qc().set_backend_limits(device, std::move(limits));
    if (log != nullptr) log->info("QC limits from the backend: {} series", n);
  } catch (const std::exception& e) {
    if (log != nullptr) log->warn("QC limits from the backend rejected, the last good ones stay: {} [QC-004]", e.what());
    else spdlog::warn("device {}: stored QC limits rejected: {} [QC-004]", device, e.what());
  }
}

void backend_poller::start() {
  if (backend_.base_url.empty()) return;
  asio::co_spawn(io_, poll_loop(), asio::bind_cancellation_slot(cancel_.slot(), asio::detached));
}

void backend_poller::stop() {
  stopping_ = true;
  cancel_.emit(asio::cancellation_type::terminal);
  if (client_) client_->close();
}

asio::awaitable<void> backend_poller::poll_loop() {
  std::unique_ptr<transport::http_client> client;
  std::string token, paused_because;
  asio::steady_timer timer(io_);
  for (;;) {
    // The token is read every round: a file created or rotated after start is used at the next
    // poll, and a token that is configured but cannot be read pauses polling -- never a request
    // without the token the daemon was told to use (delivery holds under BACKEND-002 likewise).
    std::optional<std::string> fresh;
    try {
      fresh = transport::load_bearer_token(backend_);
    } catch (const std::exception& e) {
      if (paused_because != e.what()) {
        paused_because = e.what();
        spdlog::warn("waiting-list polling paused: {} [BACKEND-002]", paused_because);
      }
    }
    if (fresh) {
      if (!paused_because.empty()) {
        spdlog::info("waiting-list polling resumed: the backend token is readable again");
        paused_because.clear();
      }
      if (!client || *fresh != token) {
        token = *fresh;
        try {
          transport::event_log log = [](std::string_view line) { spdlog::warn("backend (waiting list): {}", line); };
          client_ = nullptr;
          client = std::make_unique<transport::http_client>(io_.get_executor(),
                                                            transport::client_options(backend_, token, log));
          client_ = client.get();
        } catch (const std::exception& e) {
          spdlog::error("waiting-list polling off: {} [BACKEND-007]", e.what());
          co_return;
        }
      }
      // By id, looked up after every await: a reload may add or retire devices meanwhile.
      std::vector<std::string> ids;
      for (const auto& dev : devices_.running) ids.push_back(dev->cfg.id);
      for (const auto& id : ids) {
        if (stopping_) break;
        if (device_runtime* dev = devices_.find(id)) co_await poll_device(*client, *dev);
      }
    }
    if (stopping_) break;
    prune_history();
    timer.expires_after(backend_.waiting_list_poll);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec || stopping_) break;
  }
  client_ = nullptr;
}

asio::awaitable<void> backend_poller::poll_device(transport::http_client& client, device_runtime& dev) {
  std::string id = dev.cfg.id;
  transport::http_result wl = co_await transport::fetch_waiting_list(client, backend_, std::move(id));
  if (!wl.ok()) {
    if (!dev.backend_down)
      dev.log->warn("waiting list: backend unavailable ({}); working from the last known list [BACKEND-008]",
                    wl.ec ? wl.ec.message() : "HTTP " + std::to_string(wl.status));
    dev.backend_down = true;
  } else {
    if (dev.backend_down) dev.log->info("waiting list: backend reachable again");
    dev.backend_down = false;
    try {
      auto entries = rerun::waiting_list_from_json(json::parse(wl.body));
      const std::size_t n = entries.size();
      auto acts = rerun::refresh_waiting_list(sink_.state(), dev.cfg.id, std::move(entries), wall_now());
      log_actions(*dev.log, acts);
      sink_.persist_state(&dev, rerun::action_history_events(
                                    acts, std::chrono::time_point_cast<std::chrono::milliseconds>(
                                              std::chrono::system_clock::now())));
      if (n != dev.waiting_list_size || !acts.empty()) dev.log->info("waiting list refreshed: {} entries", n);
      dev.waiting_list_size = n;
    } catch (const std::exception& e) {
      dev.log->error("waiting list from the backend rejected: {} [BACKEND-010]", e.what());
    }
  }
  if (dev.order_download) push_orders(dev);  // also from the last known list while the backend is down
  if (stopping_) co_return;
  co_await poll_qc_limits(client, dev);
  if (stopping_) co_return;
  std::string pid = dev.cfg.id;
  transport::http_result pr = co_await transport::fetch_parameters(client, backend_, std::move(pid));
  if (!pr.ok()) co_return;  // the last known configuration stays
  auto& known = parameters_text_[dev.cfg.id];
  if (pr.body == known) co_return;
  known = pr.body;
  transport::state_changes sc;
  sc.documents.emplace_back("parameters:" + dev.cfg.id, pr.body);
  outbox_.write(std::move(sc), [log = dev.log](bool ok) {
    if (!ok) log->error("parameter configuration could not be stored; the daemon keeps using it until restart [OUTBOX-009]");
  });
  rebuild_rules(dev.cfg.id);
}

asio::awaitable<void> backend_poller::poll_qc_limits(transport::http_client& client, device_runtime& dev) {
  std::string id = dev.cfg.id;
  transport::http_result lr = co_await transport::fetch_qc_limits(client, backend_, std::move(id));
  if (!lr.ok()) co_return;  // the last known limits stay (a backend without the endpoint: 404)
  auto& known = qc_limits_text_[dev.cfg.id];
  if (lr.body == known) co_return;
  std::string known_before = std::move(known);
  auto limits_before = sink_.qc().backend_limits(dev.cfg.id);
  known = lr.body;
  apply_qc_limits(dev.cfg.id, lr.body, dev.log.get());
  transport::state_changes sc;
  sc.documents.emplace_back("qc_limits:" + dev.cfg.id, lr.body);
  if (qc_limits_changed_) {
    // Not stored: the limits in force go back to the previous ones and so does the text they are
    // compared with, so the next poll (its answer still differs) tries again. Unless a later
    // answer replaced them meanwhile: that one is being applied.
    qc_limits_changed_(dev.cfg.id, std::move(sc),
                       [this, device = dev.cfg.id, body = lr.body, known_before = std::move(known_before),
                        limits_before = std::move(limits_before)]() mutable {
                         auto& now_known = qc_limits_text_[device];
                         if (now_known != body) return;
                         now_known = std::move(known_before);
                         sink_.qc().restore_backend_limits(device, std::move(limits_before));
                       });
    co_return;
  }
  outbox_.write(std::move(sc), [log = dev.log](bool ok) {
    if (!ok) log->error("QC limits could not be stored; the daemon keeps using them until restart [QC-005]");
  });
}

// Order download (worklist push): the orders new or changed since they were last sent, and
// cancels (rerun/order_download.hpp), each queued for the device's link, which sends it when its
// line is free and says how it ended (transport/push_queue.hpp).
void backend_poller::push_orders(device_runtime& dev) {
  const auto now = wall_now();
  for (const auto& c : sink_.plan_downloads(dev, now)) {
    const bool cancel = c.action == rerun::download_action::cancel;
    std::string what = "sample " + c.sample_id + " tests [" + join(c.codes) + "]" +
                       (c.is_rerun ? " (rerun " + std::to_string(c.rerun_number) + ")" : "");
    order o;
    if (const auto* e = sink_.order_entry_of(dev.cfg.id, c.sample_id)) {
      o = rerun::order_of(*e, c.codes, "");
    } else {  // a cancel for a sample that left the waiting list (or whose reflex was fulfilled)
      o.sample_id = c.sample_id;
      for (const auto& code : c.codes) o.tests.push_back({code, {}, {}});
    }
    std::string text;
    const std::string ts = rerun::format_message_time(now);
    if (dev.cfg.protocol == "astm") {
      // LIS02-A2 O.12: N new specimen, A tests added to a known specimen, C cancel the tests named.
      o.action_code = cancel ? "C" : c.action == rerun::download_action::add_tests ? "A" : "N";
      astm::order_message_header h;
      h.timestamp = ts;
      text = astm::build_order_message({o}, h);
    } else {
      // LAB-28 ORC-1: NW new work order, CA cancel. The AWOS id (OBR-2) is the sample, the test
      // and the rerun round, so a cancel names the very work order it ends.
      o.protocol = protocol::hl7;
      o.device = dev.cfg.id;
      o.action_code = cancel ? "CA" : "NW";
      for (auto& t : o.tests)
        t.awos_id = c.sample_id + "." + t.code + (c.is_rerun ? ".R" + std::to_string(c.rerun_number) : "");
      static std::uint64_t seq = 0;
      const std::string id = "IFO" + std::to_string(std::time(nullptr) % 100000000) + "-" + std::to_string(++seq);
      hl7::oml_o33_header h;
      h.sending_application = "interfaced";
      h.timestamp = ts;
      h.control_id = id;  // MSH-5/6: filled by the session from the analyser's MSH-3/4 once it has spoken
      text = hl7::build_oml_o33(o, h);
    }
    transport::push_message m;
    m.text = std::move(text);
    device_runtime* d = &dev;
    m.done = [d, what, cancel, sample = c.sample_id, round = c.rerun_number](bool sent, const std::string& reason) {
      if (sent) {
        d->log->info("{}: {}", cancel ? "order cancel sent" : "orders sent", what);
        return;
      }
      d->log->warn("analyser refused the {}: {}: {}; not sent again until the order changes (a host query still gets it) [ORDER-001]",
                   cancel ? "order cancel" : "orders", what, reason);
      if (!cancel) rerun::mark_refused(d->downloaded, sample, round);
    };
    if (!dev.orders->push(std::move(m))) {
      dev.log->error("order download: {} messages wait for the analyser already; {} not queued, tried again at the next refresh [ORDER-002]",
                     dev.orders->size(), what);
      if (!cancel) rerun::forget_download(dev.downloaded, c.sample_id);
      continue;
    }
    dev.log->info("{} queued for the analyser: {}", cancel ? "order cancel" : "orders", what);
  }
}

}  // namespace interfaced::daemon
