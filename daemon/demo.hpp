#pragma once
// `interfaced demo`: the whole product on one machine in a few seconds. Starts the backend
// simulator, the daemon with a demo configuration, and two simulated analysers replaying the
// bundled samples (ASTM over a pty pair as a serial port, HL7 over TCP); prints each result as the
// backend receives it and where the logs, traces and outbox are; stops everything and exits 0.

#include <string>

namespace interfaced::daemon {

struct demo_options {
  std::string dir;          // work folder; empty: a new one under /tmp
  std::string samples_dir;  // empty: next to the installed binary, else the source tree
  int timeout_s = 60;
};

int run_demo(const demo_options& options);

}  // namespace interfaced::daemon
