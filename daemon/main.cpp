// interfaced: instrument middleware. One executable, subcommands (CLI11). Exit statuses are a
// documented contract (README, "Exit statuses").

#include <CLI/CLI.hpp>
#include <iostream>

#include "daemon/config.hpp"
#include "daemon/replay.hpp"
#include "daemon/run.hpp"

int main(int argc, char** argv) {
  using namespace interfaced::daemon;
  CLI::App app{"interfaced: laboratory analyser middleware (ASTM E1381/E1394, HL7 v2 over MLLP)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "interfaced 0.1.0");

  replay_options ro;
  auto* replay = app.add_subcommand(
      "replay", "Run capture files through the daemon's parsers, profiles and rerun tagging; "
                "print one JSON object per result, query or order");
  replay->add_option("--profile", ro.profile, "Device profile id (default: detect from the H record)");
  replay->add_option("--profile-dir", ro.profile_dir, "Folder of device profiles (default: built-in)");
  replay->add_option("--format", ro.format, "Output format: jsonl (default) or text")
      ->check(CLI::IsMember({"jsonl", "text"}));
  replay->add_option("--device", ro.device, "Device id to report (default: the profile id)");
  replay->add_option("files", ro.files, "Capture files")->required();

  std::string check_file = default_config_path;
  bool check_no_devices = false;
  auto* check = app.add_subcommand("check-config", "Validate a configuration file; list every problem with its JSON pointer");
  check->add_option("file", check_file, "Configuration file")->capture_default_str();
  check->add_flag("--no-device-check", check_no_devices, "Do not check that serial devices can be opened");

  run_options run_opts;
  std::string run_config = default_config_path;
  auto* run = app.add_subcommand("run", "Run the service: every configured analyser link, the outbox, delivery to the backend");
  run->add_option("--config,-c", run_config, "Configuration file")->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return e.get_exit_code() == 0 ? code : exit_usage;
  }
  if (replay->parsed()) return run_replay(ro, std::cout, std::cerr);
  if (run->parsed()) {
    run_opts.config = run_config;
    return run_service(run_opts);
  }
  if (check->parsed()) {
    const auto r = load_config(check_file, !check_no_devices);
    for (const auto& p : r.problems) std::cerr << format_problem(check_file, p) << '\n';
    if (!r.ok()) {
      std::cerr << check_file << ": " << r.problems.size() << " problem(s); the configuration is not valid\n";
      return exit_config;
    }
    std::cout << check_file << ": valid (" << r.cfg.devices.size() << " devices)\n";
    return exit_ok;
  }
  return exit_usage;
}
