#include "daemon/logging.hpp"

#include <sys/uio.h>
// Without this, sd_journal_sendv is a macro adding CODE_FILE/CODE_LINE/CODE_FUNC of its own call
// site: every entry would claim to come from journal_sink::sink_it_ in this file.
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "daemon/clock.hpp"

namespace interfaced::daemon {
namespace {

std::atomic<unsigned long> log_errors{0};
thread_local std::vector<std::string> current_samples;

// journald with the device as a field, so `journalctl DEVICE=xn-1` shows one analyser. The service
// logger's sink has no DEVICE= (its lines are about no analyser; its logger name is "interfaced").
class journal_sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit journal_sink(bool device_field) : device_field_(device_field) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    static constexpr int priorities[] = {7, 7, 6, 4, 3, 2, 6};  // trace..critical, off
    const auto level = static_cast<std::size_t>(msg.level);
    const int prio = priorities[level < 7 ? level : 6];
    const std::string device(msg.logger_name.data(), msg.logger_name.size());
    // sd_journal_sendv: a field may repeat (one SAMPLE_ID= per sample of the message).
    std::vector<std::string> fields{"MESSAGE=" + std::string(msg.payload.data(), msg.payload.size()),
                                    "PRIORITY=" + std::to_string(prio), "SYSLOG_IDENTIFIER=interfaced"};
    if (device_field_ && !device.empty()) fields.push_back("DEVICE=" + device);
    if (!msg.source.empty()) {  // only SPDLOG_* macros fill it
      fields.push_back(std::string("CODE_FILE=") + msg.source.filename);
      fields.push_back("CODE_LINE=" + std::to_string(msg.source.line));
      fields.push_back(std::string("CODE_FUNC=") + msg.source.funcname);
    }
    for (const auto& s : current_samples) fields.push_back("SAMPLE_ID=" + s);
    std::vector<iovec> iov;
    for (auto& f : fields) iov.push_back({f.data(), f.size()});
    sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
  }
  void flush_() override {}

 private:
  bool device_field_;
};

// %* : the line's time as every time the daemon writes, ISO-8601 with the lab zone's offset
// ("2026-12-06T13:05:01.250+01:00", rerun/lab_time.hpp). spdlog's own %z would give the offset
// of the machine's zone, which is not the lab's when lab.timezone names another.
class lab_time_flag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const std::string s = current_lab_zone().format(msg.time);
    dest.append(s.data(), s.data() + s.size());
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<lab_time_flag>();
  }
};

std::unique_ptr<spdlog::formatter> lab_time_pattern(const std::string& pattern) {
  auto f = std::make_unique<spdlog::pattern_formatter>();
  f->add_flag<lab_time_flag>('*').set_pattern(pattern);
  return f;
}

// The service log: stderr, or journald under systemd (for a device logger: with DEVICE=).
spdlog::sink_ptr service_sink(bool device_logger) {
  static const bool journal = under_systemd();
  if (journal) {
    static spdlog::sink_ptr service = std::make_shared<journal_sink>(false);
    static spdlog::sink_ptr device = std::make_shared<journal_sink>(true);
    return device_logger ? device : service;
  }
  static spdlog::sink_ptr sink = [] {
    auto s = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    s->set_formatter(lab_time_pattern("%* %^%-5l%$ [%n] %v"));
    return s;
  }();
  return sink;
}

spdlog::level::level_enum level_of(const std::string& name) {
  return spdlog::level::from_str(name);
}

}  // namespace

log_samples::log_samples(std::vector<std::string> samples) { current_samples = std::move(samples); }
log_samples::~log_samples() { current_samples.clear(); }

bool under_systemd() noexcept { return std::getenv("JOURNAL_STREAM") != nullptr || std::getenv("NOTIFY_SOCKET") != nullptr; }

void init_service_log(const logging_config& cfg) {
  auto logger = std::make_shared<spdlog::logger>("interfaced", service_sink(false));
  logger->set_level(level_of(cfg.level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::set_error_handler([](const std::string&) { ++log_errors; });
}

std::shared_ptr<spdlog::logger> device_log(const logging_config& cfg, const std::string& device) {
  std::vector<spdlog::sink_ptr> sinks{service_sink(true)};
  std::string problem;
  try {
    std::filesystem::create_directories(cfg.dir);
    auto file = std::make_shared<spdlog::sinks::rotating_file_sink_mt>((cfg.dir / (device + ".log")).string(),
                                                                        cfg.device_file_size, cfg.device_file_count);
    file->set_formatter(lab_time_pattern("%* %-5l %v"));
    sinks.push_back(file);
  } catch (const std::exception& e) {
    problem = e.what();
  }
  auto logger = std::make_shared<spdlog::logger>(device, sinks.begin(), sinks.end());
  logger->set_level(level_of(cfg.level));
  // Technicians tail these files while the analyser runs: every line they asked for is written at once.
  logger->flush_on(std::min(level_of(cfg.level), spdlog::level::info));
  if (!problem.empty()) logger->warn("device log file not available ({}); logging to the service log only [LOG-002]", problem);
  return logger;
}

}  // namespace interfaced::daemon
