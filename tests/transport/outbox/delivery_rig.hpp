#pragma once
// The delivery tests' rig: one io_context running a real outbox file's completions, the backend
// simulator and the delivery loop, and the delivery log collected for assertions.

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "daemon/sim/backend_sim.hpp"
#include "outbox_support.hpp"
#include "transport/alarms.hpp"
#include "transport/delivery.hpp"
#include "transport/outbox.hpp"

namespace interfaced::test {

using namespace std::chrono_literals;

struct log_lines {
  std::vector<std::string> lines;
  transport::event_log sink() {
    return [this](std::string_view l) { lines.emplace_back(l); };
  }
  [[nodiscard]] bool contains(std::string_view s) const {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(s) != std::string::npos; });
  }
};

// One io_context running the outbox completions, the simulator and the delivery loop.
struct rig {
  explicit rig(std::size_t connections = 2) {
    reopen();
    opts.connections = connections;
    opts.backoff = {20ms, 200ms, 2.0, 0.2};
    opts.idle_poll = 200ms;
    opts.client.connect_timeout = 1000ms;
    opts.client.request_timeout = 2000ms;
    opts.log = log.sink();
    opts.alarms = &alarms;
    opts.hold_backoff = {100ms, 400ms, 2.0, 0.2};
  }

  // The outbox closed and opened again, as a restarted daemon opens its file (before delivery starts).
  void reopen() {
    box.reset();
    transport::outbox_options oc;
    oc.path = dir / "outbox.sqlite";
    oc.write_fault_file = fault_file;  // exists only while a test makes the outbox read-only
    box = std::make_unique<transport::outbox>(oc, interfaced::test::poster_for(ioc));
  }

  void start_sim(sim::backend_sim_options so = {}) {
    so.record_file = dir / "requests.jsonl";
    if (sim_port != 0) so.port = sim_port;
    sim = std::make_unique<sim::backend_sim>(ioc.get_executor(), std::move(so));
    REQUIRE_FALSE(sim->start());
    sim_port = sim->port();
  }

  void start_delivery() {
    transport::backend_options bc;
    opts.paths = transport::default_paths(bc);
    if (opts.client.base_url.empty()) opts.client.base_url = "http://127.0.0.1:" + std::to_string(sim_port);
    delivery = std::make_unique<transport::delivery_service>(ioc.get_executor(), *box, opts);
    delivery->start();
  }

  std::vector<std::string> append(std::vector<transport::new_message> v) {
    std::optional<transport::append_result> r;
    box->append(std::move(v), [&](transport::append_result a) { r = std::move(a); });
    REQUIRE(run_until(ioc, [&] { return r.has_value(); }));
    REQUIRE(r->durable);
    return r->ids;
  }

  std::optional<transport::stored_message> show(const std::string& id) { return transport::outbox_admin(dir / "outbox.sqlite").show(id); }

  bool all_delivered(const std::vector<std::string>& ids) {
    transport::outbox_admin admin(dir / "outbox.sqlite");
    return std::all_of(ids.begin(), ids.end(), [&](const std::string& id) {
      auto m = admin.show(id);
      return m && m->state == transport::message_state::delivered;
    });
  }

  // Polls the file at most every 20 ms so the test does not hammer SQLite.
  bool wait_delivered(const std::vector<std::string>& ids, std::chrono::milliseconds limit = 10s) {
    auto last = std::chrono::steady_clock::now() - 1s;
    return run_until(
        ioc,
        [&] {
          auto now = std::chrono::steady_clock::now();
          if (now - last < 20ms) return false;
          last = now;
          return all_delivered(ids);
        },
        limit);
  }

  scratch_dir dir;
  std::filesystem::path fault_file = dir / "outbox.readonly";
  boost::asio::io_context ioc;
  log_lines log;
  transport::alarm_board alarms;
  std::unique_ptr<transport::outbox> box;
  std::unique_ptr<sim::backend_sim> sim;
  std::uint16_t sim_port = 0;
  transport::delivery_options opts;
  std::unique_ptr<transport::delivery_service> delivery;

  ~rig() {
    delivery.reset();
    sim.reset();
  }
};

}  // namespace interfaced::test
