#include "daemon/run.hpp"

#include <cstdio>
#include <sys/stat.h>

#include "daemon/config.hpp"
#include "daemon/exit_codes.hpp"
#include "daemon/service.hpp"

namespace interfaced::daemon {

int run_service(const run_options& options) {
  // Logs, traces and wire data carry patient data: nothing the service creates is readable by
  // others (files 0640, folders 0750; the outbox is 0600), whether or not the unit sets UMask=.
  ::umask(S_IWGRP | S_IRWXO);
  auto r = load_config(options.config);
  if (!r.ok()) {
    for (const auto& p : r.problems) std::fprintf(stderr, "%s\n", format_problem(options.config, p).c_str());
    std::fprintf(stderr, "%s: the configuration is not valid; not starting\n", options.config.c_str());
    return exit_config;
  }
  service s(std::move(r.cfg), options.config);
  if (const int rc = s.open(); rc != exit_ok) return rc;
  s.start();
  return s.run();
}

}  // namespace interfaced::daemon
