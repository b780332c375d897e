#pragma once
// `interfaced run`: the service. One io_context, one thread: every configured analyser link,
// the outbox's completions, delivery to the backend, the health endpoint, signals and the
// systemd watchdog. Returns the process exit status (78 for an invalid configuration).

#include <filesystem>

namespace interfaced::daemon {

struct run_options {
  std::filesystem::path config = "/etc/interfaced/interfaced.json";
};

int run_service(const run_options& options);

}  // namespace interfaced::daemon
