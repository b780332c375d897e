#pragma once
// Logs technicians and lab IT read.
// - The service log: journald when running under systemd (structured field DEVICE=), else stderr.
// - One rotating file per device (<logging.dir>/<device>.log, size and count from the config)
//   saying in plain words what happened on that link; its lines also reach the service log.
// Loggers never throw (spdlog's error handler is replaced by a counter).

#include <memory>
#include <string>
#include <vector>

#include "daemon/config.hpp"

namespace spdlog {
class logger;
}

namespace interfaced::daemon {

// Sets up the default (service) logger. Call once at start-up.
void init_service_log(const logging_config& cfg);
// The logger of one device: its own rotating file plus the service log, named after the device.
// A device log that cannot be opened (permissions) falls back to the service log and says so.
[[nodiscard]] std::shared_ptr<spdlog::logger> device_log(const logging_config& cfg, const std::string& device);
// While alive, journal entries logged on this thread carry SAMPLE_ID= fields (one per sample).
// The daemon runs one event-loop thread, so this scopes exactly the lines about one message.
class log_samples {
 public:
  explicit log_samples(std::vector<std::string> samples);
  ~log_samples();
  log_samples(const log_samples&) = delete;
  log_samples& operator=(const log_samples&) = delete;
};
// True when stderr is connected to the journal (systemd sets JOURNAL_STREAM).
[[nodiscard]] bool under_systemd() noexcept;

}  // namespace interfaced::daemon
