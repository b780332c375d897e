// Issue #14: a QC change (here a limit change; a resolution is put back the same way,
// qc_admin::put_back_charts) whose commit fails is undone in memory --
// only the change. A control result that arrived and was committed between the change's start
// and its failed commit stays in the chart, judged without the change, and the in-memory charts
// equal what a restart loads from the file. The real outbox and state store (SQLite), the real
// hand-off and qc_admin; the outbox's completions run when the test says, as the daemon's loop
// would run them after a busy moment.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/ingest_hand_off.hpp"
#include "daemon/qc_admin.hpp"
#include "rerun/qc_json.hpp"
#include "support/scratch_dir.hpp"
#include "transport/outbox.hpp"
#include "transport/state_store.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;
namespace qc = interfaced::rerun::qc;
namespace transport = interfaced::transport;
namespace daemon_ns = interfaced::daemon;

namespace {

// Completions queued by the outbox worker, run by the test (the daemon's loop, busy meanwhile).
struct held_completions {
  std::mutex m;
  std::vector<std::function<void()>> queue;
  transport::poster poster() {
    return [this](std::function<void()> f) {
      std::lock_guard lock(m);
      queue.push_back(std::move(f));
    };
  }
  void run() {
    std::vector<std::function<void()>> now;
    {
      std::lock_guard lock(m);
      now.swap(queue);
    }
    for (auto& f : now) f();
  }
};

const json qc_section = {
    {"controls", json::array({{{"sample_id", "QC-L1*"}, {"material", "Lyphochek"}, {"lot", "L1"}, {"level", "1"}}})},
    {"resolution_codes", json::array({{{"code", "BAD_VIAL"}, {"excludes_from_westgard", true}}})}};

std::vector<qc::limits> glu_limits(double sd) { return {qc::limits{{"GLU", "", "", "1"}, 5.0, sd, "mmol/L"}}; }

struct rig {
  interfaced::test::scratch_dir dir;
  fs::path file = dir.path() / "outbox.sqlite";
  fs::path fault = dir.path() / "readonly";
  held_completions held;
  std::unique_ptr<transport::outbox> box;
  std::unique_ptr<transport::state_store> store;
  daemon_ns::device_set devices;
  std::unique_ptr<daemon_ns::ingest_hand_off> sink;
  std::unique_ptr<daemon_ns::qc_admin> admin;
  qc::qc_config cfg = qc::qc_config_from_json(qc_section);

  rig() {
    cfg.enabled = true;
    transport::outbox_options oc;
    oc.path = file;
    oc.write_fault_file = fault;
    box = std::make_unique<transport::outbox>(oc, held.poster());
    store = std::make_unique<transport::state_store>(file);
    sink = std::make_unique<daemon_ns::ingest_hand_off>(*box, devices, *store);
    sink->set_qc(cfg);
    sink->qc().set_backend_limits("chem", glu_limits(0.2));
    admin = std::make_unique<daemon_ns::qc_admin>(*box, *store, devices, sink->qc());
  }

  // One control result from analyser "chem", handed off; its commit runs, its completion is held.
  void control(const std::string& observed_at, double value, std::optional<bool>& durable) {
    transport::delivery d;
    d.device = "chem";
    interfaced::result r;
    r.sample_id = "QC-L1";
    r.code = "GLU";
    r.value = std::to_string(value);
    r.numeric = value;
    r.unit = "mmol/L";
    r.observed_at = observed_at;
    d.results.push_back(r);
    sink->hand_off(std::move(d), [&durable](bool ok) { durable = ok; });
    REQUIRE(box->flush(10000ms));
  }
  void control(const std::string& observed_at, double value) {
    std::optional<bool> durable;
    control(observed_at, value, durable);
    held.run();
    REQUIRE(durable == std::optional<bool>(true));
  }

  // The charts as a restart loads them: the file's qc_state document in a fresh tracker.
  json restarted_charts() {
    REQUIRE(box->flush(10000ms));
    transport::state_store fresh_store(file);
    const auto text = fresh_store.get("qc_state");
    REQUIRE(text.has_value());
    qc::qc_tracker fresh(cfg);
    fresh.set_backend_limits("chem", glu_limits(0.2));
    qc::restore(fresh, json::parse(*text));
    return qc::to_json(fresh)["charts"];
  }
  json memory_charts() { return qc::to_json(sink->qc())["charts"]; }
  // The z of every point of the GLU chart, in observed_at order.
  std::vector<double> zs() {
    std::vector<double> out;
    for (const auto& [key, points] : sink->qc().charts())
      for (const auto& p : points) out.push_back(p.v.z.value_or(-99));
    return out;
  }
};

}  // namespace

TEST_CASE("qc rollback: a limit change whose commit fails keeps a control result committed meanwhile",
          "[qc][daemon]") {
  rig g;
  g.control("20261206080000", 5.0);
  g.control("20261206100000", 5.5);  // z 2.5 with SD 0.2

  // The disk refuses the change: the backend narrows the SD to 0.1 (the 10:00 control: z 5).
  { std::ofstream(g.fault) << "x"; }
  g.sink->qc().set_backend_limits("chem", glu_limits(0.1));
  bool put_back = false;
  g.admin->limits_changed("backend", "qc-limits from the backend changed for chem", std::chrono::system_clock::now(), {},
                          [&] {
                            put_back = true;
                            g.sink->qc().set_backend_limits("chem", glu_limits(0.2));
                          });
  REQUIRE(g.box->flush(10000ms));  // failed; its completion waits for the loop
  // Meanwhile the disk is back and the 12:00 control is stored (with the charts as memory had them).
  fs::remove(g.fault);
  std::optional<bool> durable;
  g.control("20261206120000", 5.1, durable);
  g.held.run();  // the change's failure first, then the 12:00 batch's completion
  REQUIRE(put_back);
  REQUIRE(durable == std::optional<bool>(true));

  // Only the change is undone: three results, judged with SD 0.2, and a restart finds the same.
  const auto z = g.zs();
  REQUIRE(z.size() == 3);
  CHECK(z[1] == Approx(2.5));
  CHECK(z[2] == Approx(0.5));
  g.held.run();
  CHECK(g.memory_charts() == g.restarted_charts());
  CHECK(g.admin->book().entries().empty());
}
