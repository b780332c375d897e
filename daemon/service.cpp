#include "daemon/service.hpp"

#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <malloc.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "daemon/clock.hpp"
#include "daemon/exit_codes.hpp"
#include "daemon/logging.hpp"
#include "daemon/systemd_notify.hpp"
#include "parsers/text.hpp"
#include "rerun/process.hpp"
#include "rerun/qc_json.hpp"
#include "rerun/rerun_json.hpp"
#include "rerun/rules.hpp"
#include "transport/http_client.hpp"

namespace interfaced::daemon {

namespace asio = boost::asio;
using json = nlohmann::json;

service::service(config cfg, std::filesystem::path config_path)
    : cfg_(std::move(cfg)), config_path_(std::move(config_path)), signals_(io_, SIGINT, SIGTERM, SIGHUP), watchdog_(io_), housekeeping_(io_) {}

service::~service() = default;

int service::open() {
  const auto zone = lab_zone_of(cfg_.lab.timezone);
  set_lab_zone(zone.zone);  // before the first log line: its time is in the lab's zone
  init_service_log(cfg_.logging);
  if (!zone.note.empty()) spdlog::warn("time zone: {} [TIME-001]", zone.note);
  spdlog::info("time zone {} ({}): times without an offset from analysers are read in it; every time written carries its offset",
               zone.zone.name(), cfg_.lab.timezone.empty() ? "the machine's" : "lab.timezone");
  alarms_.on_change([](const transport::alarm_entry& a, bool raised) {
    const std::string about = a.subject.empty() ? "" : " (" + a.subject + ")";
    if (raised) spdlog::error("ALARM raised{}: {}", about, transport::describe(a));
    else spdlog::warn("alarm cleared{}: {}", about, transport::describe(a));
  });
  try {
    catalog_ = devices::profile_catalog::load_dir(cfg_.profile_dir.empty() ? devices::profile_catalog::default_dir()
                                                                           : cfg_.profile_dir);
  } catch (const devices::profile_error& e) {
    spdlog::critical("device profiles: {} [PROFILE-001]", e.what());
    return exit_config;
  }
  try {
    std::filesystem::create_directories(cfg_.outbox.path.parent_path());
  } catch (const std::exception& e) {
    spdlog::critical("outbox {}: {} [OUTBOX-008]", cfg_.outbox.path.string(), e.what());
    return exit_io;
  }
  // One daemon per outbox: a second one would deliver every message twice and fight over ACKs.
  {
    std::string why;
    const auto lock_file = std::filesystem::path(cfg_.outbox.path.string() + ".lock");
    lock_ = transport::instance_lock::acquire(lock_file, why);
    if (!lock_) {
      spdlog::critical("another interfaced is running on the outbox {} ({} {}); stop it first, e.g. "
                       "`systemctl stop interfaced` [OUTBOX-010]",
                       cfg_.outbox.path.string(), lock_file.string(), why);
      return exit_tempfail;
    }
  }
  // glibc gives a thread arena's free top back to the kernel (madvise) once it passes 128 KiB;
  // the outbox worker's SQLite allocations swing across that line all the time: 1.6 madvise
  // calls and 1.8 page faults per message in throughput.sh (issue #17), the same pages freed and
  // faulted in again. Keeping up to 4 MiB of free top per arena: 0 madvise, 0.19 page faults.
  mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024);
  try {
    // The fault tests' hook (transport/outbox_options.hpp): only from the environment, never the configuration.
    if (const char* f = std::getenv("INTERFACED_TEST_OUTBOX_WRITE_FAULT"); f != nullptr && *f != '\0')
      cfg_.outbox.write_fault_file = f;
    outbox_ = std::make_unique<transport::outbox>(cfg_.outbox,
                                                  [this](std::function<void()> f) { asio::post(io_, std::move(f)); });
  } catch (const std::exception& e) {
    spdlog::critical("outbox {}: {} [OUTBOX-008]", cfg_.outbox.path.string(), e.what());
    return exit_io;
  }
  outbox_->set_lab_zone(current_lab_zone());  // the historical summary's days
  // Spool files left by a crash between a report's finalize commit and the file's deletion, or
  // written for an append that never committed: queued before any append, so nothing new is swept.
  outbox_->sweep_spool([dir = outbox_->spool_dir()](std::size_t n) {
    if (n > 0) spdlog::info("spool {}: {} file(s) no report needs any more deleted at start", dir.string(), n);
  });
  outbox_->on_alarm([this](bool on) {
    if (on)
      alarms_.raise(transport::alarm_code::outbox_full, "",
                    "the outbox is full; analysers are refused (NAK / AR) until it drains",
                    std::chrono::system_clock::now());
    else
      alarms_.clear(transport::alarm_code::outbox_full);
  });
  // The rerun state lives in the outbox's file: it commits with the messages (state_store.hpp).
  try {
    state_ = std::make_unique<transport::state_store>(cfg_.outbox.path);
    state_->follow(outbox_->results_feed());  // the result index catches up from the worker's commits
  } catch (const std::exception& e) {
    spdlog::critical("rerun state {}: {} [OUTBOX-009]", cfg_.outbox.path.string(), e.what());
    return exit_io;
  }
  sink_ = std::make_unique<ingest_hand_off>(*outbox_, devices_, *state_);
  sink_->set_qc(cfg_.qc);
  sink_->set_spool_dir(outbox_->spool_dir());
  qc_admin_ = std::make_unique<qc_admin>(*outbox_, *state_, devices_, sink_->qc());
  qc_admin_->set_rules(*sink_);  // qc.md 5.2.1: a re-evaluation re-runs the rules for the results it changed
  links_ = std::make_unique<device_links>(io_, cfg_.logging, catalog_, *sink_, devices_, alarms_);
  links_->limit_buffers(cfg_.links.max_buffered_bytes);
  poller_ = std::make_unique<backend_poller>(io_, cfg_, devices_, *sink_, *outbox_, *state_);
  // The backend's qc-limits changed: its series are judged again, like qc.limits on SIGHUP.
  poller_->on_qc_limits_changed([this](const std::string& device, transport::state_changes sc, std::function<void()> put_back) {
    qc_admin_->limits_changed("backend", "qc-limits from the backend changed for " + device,
                              std::chrono::system_clock::now(), std::move(sc), std::move(put_back));
  });
  if (const int rc = load_state(); rc != exit_ok) return rc;
  if (const int rc = load_rules(); rc != exit_ok) return rc;
  poller_->load(cfg_.devices, sink_->rules());
  return exit_ok;
}

// The persisted rerun state (reruns with their partial fulfilment, the last waiting lists) and
// the result history's age limit.
int service::load_state() {
  try {
    if (auto text = state_->get("rerun_state")) {
      sink_->state() = rerun::rerun_state_from_json(json::parse(*text));
      spdlog::info("rerun state loaded from {}: {} reruns, {} waiting lists", state_->file().string(),
                   sink_->state().reruns.size(), sink_->state().waiting_lists.size());
    }
    if (auto text = state_->get("qc_state")) {
      // The Westgard charts: a restart judges the next control result on the same history.
      rerun::qc::restore(sink_->qc(), json::parse(*text));
      spdlog::info("QC state loaded: {} charts", sink_->qc().chart_state().size());
    }
    // The patient results of the runs: a re-evaluation after the restart still posts them.
    const auto patients = state_->qc_patients();
    for (const auto& p : patients) sink_->qc().record_patient(p.device, {p.sample_id, p.parameter, p.observed_at, p.t});
    (void)sink_->qc().take_recorded_patients();  // stored already
    if (!patients.empty()) spdlog::info("QC runs' patient results loaded: {}", patients.size());
    qc_admin_->restore();  // resolutions and their exclusions (the qc_audit table)
    poller_->prune_history();
    // The rerun decision's index of the kept results (outbox schema 12), built here rather than at
    // the first analyser message, which would otherwise wait for it.
    const auto t0 = std::chrono::steady_clock::now();
    const std::size_t indexed = state_->load_index();
    spdlog::info("result history: {} results indexed for the rerun decision in {} ms", indexed,
                 std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
  } catch (const std::exception& e) {
    spdlog::critical("rerun state {}: {} [OUTBOX-009]", state_->file().string(), e.what());
    return exit_io;  // a state the daemon cannot read is not silently started afresh
  }
  return exit_ok;
}

// Local rules: refused at start-up when they do not load or their own test cases fail.
int service::load_rules() {
  if (cfg_.rules_file.empty()) return exit_ok;
  std::ifstream rin(cfg_.rules_file, std::ios::binary);
  const std::string text{std::istreambuf_iterator<char>(rin), std::istreambuf_iterator<char>()};
  rerun::rules_file rf = rerun::load_rules_file(text, cfg_.rules_file.string());
  for (const auto& e : rf.errors) spdlog::critical("{} [RULES-001]", e.format());
  if (!rin || !rf.errors.empty()) return exit_config;
  const auto report = rerun::run_rule_tests(rf);
  for (const auto& f : report.failures)
    spdlog::critical("{}: {} (rule {}): {} [RULES-002]", cfg_.rules_file.string(), f.pointer, f.rule_id, f.message);
  if (!report.passed()) return exit_config;
  spdlog::info("rules: {} loaded from {}, {} test cases passed", rf.rules.rules().size(), cfg_.rules_file.string(),
               report.run);
  sink_->rules() = std::move(rf.rules);
  return exit_ok;
}

void service::start() {
  start_delivery();
  for (const auto& d : cfg_.devices) links_->start(d);
  poller_->start();
  start_health();
  wait_signals();
  start_watchdog();
  housekeeping();
  const std::string status_line = plural(devices_.running.size(), "device") + " configured, outbox " +
                                  std::to_string(outbox_->stats().undelivered) + " waiting";
  systemd::ready(status_line);
  spdlog::info("interfaced ready: {}", status_line);
}

int service::run() {
  io_.run();
  outbox_->flush(std::chrono::seconds(10));
  spdlog::info("interfaced stopped");
  return exit_ok;
}

void service::start_delivery() {
  if (cfg_.backend.base_url.empty()) {
    spdlog::warn("no backend.base_url: results are kept in the outbox until one is configured [BACKEND-005]");
    return;
  }
  auto log = [](std::string_view line) { spdlog::warn("backend: {}", line); };
  if (!cfg_.backend.verify_tls) spdlog::warn("backend: TLS certificate verification is OFF (backend.verify_tls=false) [BACKEND-006]");
  // The token is read by delivery itself (delivery_options::load_token): an unreadable token file
  // is a BACKEND-002 alarm and held delivery, never an unauthenticated post.
  auto opts = transport::delivery_options_from(cfg_.backend, {}, log);
  opts.alarms = &alarms_;
  opts.stuck_after = cfg_.delivery.stuck_after;
  opts.unreachable_after = cfg_.delivery.unreachable_after;
  opts.keep_delivered = std::chrono::hours(24 * cfg_.outbox.keep_delivered_days);
  // logging.level "debug": one line per delivered message (the failures are warnings already).
  if (spdlog::should_log(spdlog::level::debug))
    opts.trace = [](std::string_view line) { spdlog::debug("backend: {}", line); };
  // File-type reports refused or dead-lettered: said in the device's log too (file-reports.md).
  opts.device_log = [this](std::string_view device, std::string_view line) {
    if (device_runtime* d = devices_.find(std::string(device)); d && d->log) d->log->warn("{}", line);
  };
  delivery_ = std::make_unique<transport::delivery_service>(io_.get_executor(), *outbox_, std::move(opts));
  delivery_->start();
  outbox_->on_appended([this] {
    if (delivery_) delivery_->wake();
  });
}

void service::start_health() {
  if (cfg_.health.port == 0) return;
  if (!cfg_.health.admin_token_file.empty()) {
    try {
      admin_token_ = load_admin_token(cfg_.health);
    } catch (const std::exception& e) {
      spdlog::error("health endpoint: {}; routes that change anything are refused until it is fixed and the "
                    "daemon reloaded [HEALTH-001]", e.what());
    }
  }
  lab_view_ = std::make_unique<lab_view>(cfg_.outbox.path, cfg_.help.items_file, [] { return current_lab_zone(); },
                                         !admin_token_.empty());
  transport::http_server_options ho;
  ho.bind = cfg_.health.bind;
  ho.port = cfg_.health.port;
  ho.log_name = "health endpoint";
  ho.log = [](std::string_view line) { spdlog::warn("{}", line); };
  health_ = std::make_unique<transport::http_server>(
      io_.get_executor(), std::move(ho), [this](const transport::http_request_view& r, transport::http_responder respond) {
        // A QC change answers once it is durable (qc_admin.hpp): it takes the responder, and
        // health's answer for its route is a placeholder not sent.
        bool qc_answers = false;
        health_sources s{&devices_, outbox_.get(), delivery_.get(), !cfg_.backend.base_url.empty(),
                         &alarms_, std::filesystem::absolute(config_path_).lexically_normal().string(), admin_token_,
                         [this](device_runtime* dev, bool on) { links_->set_trace(dev, on); }, &sink_->qc(),
                         [this](const transport::http_request_view& req) {
                           return lab_view_->handle(req, std::chrono::system_clock::now());
                         },
                         [this, &qc_answers, &respond](const transport::http_request_view& req) {
                           qc_answers = qc_admin_->handle(req, std::chrono::system_clock::now(), respond);
                           return qc_answers ? std::optional<transport::http_reply>(transport::http_reply{}) : std::nullopt;
                         },
                         &qc_admin_->book(), lab_view_->csrf()};
        auto answer = handle_health_request(s, r);
        if (!qc_answers) respond(std::move(answer));
      });
  if (auto ec = health_->start())
    spdlog::error("health endpoint {}:{}: {} [HEALTH-003]", cfg_.health.bind, cfg_.health.port, ec.message());
  else
    spdlog::info("health endpoint on http://{}:{}/health", cfg_.health.bind, health_->port());
}

void service::wait_signals() {
  signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      reload();
      wait_signals();
      return;
    }
    shutdown(sig == SIGTERM ? "SIGTERM" : "SIGINT");
  });
}

void service::reload() {
  auto r = load_config(config_path_);
  if (!r.ok()) {
    for (const auto& p : r.problems) spdlog::error("reload rejected: {} [CONFIG-001]", format_problem(config_path_, p));
    spdlog::error("SIGHUP: the new configuration is not valid; the running one stays [CONFIG-001]");
    return;
  }
  // Devices whose settings changed restart; new ones start; removed ones stop; the others keep
  // running untouched (their connections too). Other sections (backend, outbox, logging,
  // health) need a restart and are named when they changed.
  std::size_t started = 0, restarted = 0, stopped = 0;
  for (const auto& nd : r.cfg.devices) {
    device_runtime* dev = devices_.find(nd.id);
    if (!dev) {
      links_->start(nd);
      ++started;
    } else if (!(dev->cfg == nd)) {
      links_->stop(dev, "settings changed");
      links_->start(nd);
      ++restarted;
    }
  }
  std::vector<device_runtime*> gone;
  for (const auto& [id, dev] : devices_.by_id) {
    const bool kept = std::any_of(r.cfg.devices.begin(), r.cfg.devices.end(),
                                  [&, &id_ = id](const device_config& d) { return d.id == id_; });
    if (!kept) gone.push_back(dev);
  }
  for (auto* dev : gone) {
    links_->stop(dev, "removed from the configuration");
    ++stopped;
  }
  if (r.cfg.backend.base_url != cfg_.backend.base_url || !(r.cfg.outbox.path == cfg_.outbox.path) ||
      r.cfg.health.port != cfg_.health.port)
    spdlog::warn("SIGHUP: backend, outbox or health settings changed: they apply after a restart [CONFIG-002]");
  if (r.cfg.lab.timezone != cfg_.lab.timezone) {
    const auto zone = lab_zone_of(r.cfg.lab.timezone);
    set_lab_zone(zone.zone);
    outbox_->set_lab_zone(zone.zone);  // days already counted stay; `interfaced stats rebuild` moves them
    if (!zone.note.empty()) spdlog::warn("time zone: {} [TIME-001]", zone.note);
    spdlog::info("SIGHUP: time zone now {} ({})", zone.zone.name(),
                 r.cfg.lab.timezone.empty() ? "the machine's" : "lab.timezone");
    cfg_.lab = r.cfg.lab;
  }
  cfg_.devices = r.cfg.devices;
  const auto same_limits = [](const std::vector<rerun::qc::limits>& a, const std::vector<rerun::qc::limits>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!(a[i].series == b[i].series) || a[i].mean != b[i].mean || a[i].sd != b[i].sd) return false;
    return true;
  };
  const bool limits_moved = !same_limits(cfg_.qc.configured, r.cfg.qc.configured);
  auto limits_before = cfg_.qc.configured;
  cfg_.qc = r.cfg.qc;  // limits, controls and rule sets apply to the next control result
  sink_->set_qc(cfg_.qc);
  // qc.md: a limit change re-evaluates the series judged with the old limits, kept in the audit.
  // Its commit failing ([QC-008]) puts the previous qc.limits back in force (the rest of this
  // reload stays): what a restart would find, and still different from the file, so the next
  // SIGHUP tries again -- unless a reload since then set other limits (those are being applied).
  if (limits_moved)
    qc_admin_->limits_changed("configuration reload (SIGHUP)", "qc.limits changed in " + config_path_.string(),
                              std::chrono::system_clock::now(), {},
                              [this, same_limits, limits_before = std::move(limits_before), limits_now = r.cfg.qc.configured] {
                                if (!same_limits(cfg_.qc.configured, limits_now)) return;
                                cfg_.qc.configured = limits_before;
                                sink_->set_qc(cfg_.qc);
                                spdlog::error("SIGHUP: qc.limits not applied (not stored); the previous limits stay until the next reload [QC-008]");
                              });
  spdlog::info("SIGHUP: configuration {} applied: {} started, {} restarted, {} stopped, the others untouched",
               config_path_.string(), plural(started, "device"), restarted, stopped);
  systemd::status(plural(devices_.by_id.size(), "device") + " configured");
}

void service::shutdown(const char* why) {
  if (stopping_) return;
  stopping_ = true;
  systemd::stopping(std::string("stopping (") + why + ")");
  spdlog::info("{}: stopping; links finish their current transfer", why);
  for (auto& d : devices_.running) {
    if (d->server) d->server->stop();
    d->stopped = true;  // a serial link that ends now is not reopened
    d->cancel.emit(asio::cancellation_type::terminal);
    d->cancel_watch.emit(asio::cancellation_type::terminal);
  }
  if (health_) health_->stop();
  if (delivery_) delivery_->stop();
  poller_->stop();
  watchdog_.cancel();
  housekeeping_.cancel();
  signals_.cancel();
  // Bounded grace period: in-flight transfers may finish (5 s at most), then every session is
  // closed. Idle links do not hold the exit up.
  finish_when_idle(std::make_shared<asio::steady_timer>(io_), std::chrono::steady_clock::now() + std::chrono::seconds(5));
}

bool service::transfer_in_progress() const {
  for (const auto& d : devices_.running)
    for (const auto& a : d->activity)
      if (a->busy()) return true;
  return false;
}

void service::finish_when_idle(std::shared_ptr<asio::steady_timer> grace,
                               std::chrono::steady_clock::time_point deadline) {
  if (transfer_in_progress() && std::chrono::steady_clock::now() < deadline) {
    grace->expires_after(std::chrono::milliseconds(50));
    grace->async_wait([this, grace, deadline](const boost::system::error_code&) { finish_when_idle(grace, deadline); });
    return;
  }
  for (auto& d : devices_.running)
    if (d->server) d->server->close_sessions();
  outbox_->flush(std::chrono::seconds(10));
  io_.stop();
}

// Every few seconds: what must happen even when nothing arrives (flood summaries).
void service::housekeeping() {
  housekeeping_.expires_after(std::chrono::seconds(5));
  housekeeping_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    links_->flush_log_summaries();
    housekeeping();
  });
}

void service::start_watchdog() {
  const auto period = systemd::watchdog_period();
  if (period.count() == 0) return;
  pet(period);
}

void service::pet(std::chrono::microseconds period) {
  systemd::watchdog();
  watchdog_.expires_after(period);
  watchdog_.async_wait([this, period](const boost::system::error_code& ec) {
    if (!ec) pet(period);
  });
}

}  // namespace interfaced::daemon
