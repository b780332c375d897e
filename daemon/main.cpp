// interfaced: instrument middleware. One executable, subcommands (CLI11). Exit statuses are a
// documented contract (README, "Exit statuses").

#include <CLI/CLI.hpp>
#include <iostream>
#include <sstream>

#include "daemon/admin_commands.hpp"
#include "daemon/stats_command.hpp"
#include "daemon/help_command.hpp"
#include "daemon/completion.hpp"
#include "daemon/config.hpp"
#include "daemon/demo.hpp"
#include "daemon/qc_command.hpp"
#include "daemon/replay.hpp"
#include "daemon/rules_command.hpp"
#include "daemon/run.hpp"
#include "daemon/sim/analyser_sim.hpp"

int main(int argc, char** argv) {
  using namespace interfaced::daemon;
  using interfaced::exit_bad_input, interfaced::exit_config, interfaced::exit_no_input, interfaced::exit_ok,
      interfaced::exit_usage;
  CLI::App app{"interfaced: laboratory analyser middleware (ASTM E1381/E1394, HL7 v2 over MLLP)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "interfaced " INTERFACED_VERSION);

  replay_options ro;
  auto* replay = app.add_subcommand(
      "replay", "Run capture files through the daemon's parsers, profiles and rerun tagging; "
                "print one JSON object per result, query or order");
  replay->add_option("--profile", ro.profile, "Device profile id (default: detect from the H record)");
  replay->add_option("--profile-dir", ro.profile_dir, "Folder of device profiles (default: built-in)");
  replay->add_option("--format", ro.format, "Output format: jsonl (default) or text")
      ->check(CLI::IsMember({"jsonl", "text"}));
  replay->add_option("--device", ro.device, "Device id to report (default: the profile id)");
  replay->add_option("--rules", ro.rules_file, "Local rules file: auto-rerun rules evaluated as the daemon does");
  replay->add_option("--timezone", ro.timezone,
                     "IANA time zone analyser times without an offset are read in, e.g. Europe/Berlin (default: the machine's)");
  replay->add_flag("--ignore-frame-numbers", ro.ignore_frame_numbers,
                   "Take ASTM frames in file order whatever their numbers (captures re-numbered by other tools)");
  replay->add_option("--qc-limits", ro.qc_limits_file,
                     "QC limits JSON [{parameter, level, mean, sd}]: adds a {\"type\":\"qc\"} line per control result");
  replay->add_flag("--explain", ro.explain, "Per result: the rerun decision, each rule evaluated, its values, what fired");
  replay->add_option("files", ro.files, "Capture files")->required();

  std::string check_file = default_config_path;
  bool check_no_devices = false;
  bool check_strict = false;
  auto* check = app.add_subcommand("check-config", "Validate a configuration file; list every problem with its JSON pointer");
  check->add_option("file", check_file, "Configuration file")->capture_default_str();
  check->add_flag("--no-device-check", check_no_devices, "Do not check that serial devices can be opened");
  check->add_flag("--strict", check_strict,
                  "Warnings (a serial device missing now) make the file invalid too (exit 78)");

  run_options run_opts;
  std::string run_config = default_config_path;
  auto* run = app.add_subcommand("run", "Run the service: every configured analyser link, the outbox, delivery to the backend");
  run->add_option("--config,-c", run_config, "Configuration file")->capture_default_str();

  interfaced::sim::sim_options so;
  std::string sim_capture, sim_protocol;
  long long sim_frame_delay = 0, sim_reply_timeout = 15000, sim_timeout = 300000;
  int sim_listen = -1;
  auto* simulate = app.add_subcommand(
      "simulate", "Play a capture as the analyser would, over a real link to a running daemon "
                  "(ASTM E1381 turn-taking or HL7 MLLP), with optional injected faults");
  simulate->add_option("--connect", so.connect, "Connect to the daemon's tcp-server device (HOST:PORT)");
  simulate->add_option("--listen", sim_listen, "Listen on PORT; the daemon's tcp-client device connects")
      ->check(CLI::Range(0, 65535));
  simulate->add_option("--pty", so.pty_path, "Create a pty and symlink PATH to it (the daemon's serial device)");
  simulate->add_option("--protocol", sim_protocol, "astm or hl7 (default: from the capture)")
      ->check(CLI::IsMember({"astm", "hl7"}));
  simulate->add_option("--frame-size", so.frame_text_size, "ASTM frame text size (default 240; 63993 for LIS01-A)")
      ->check(CLI::Range(1, 63993));
  simulate->add_option("--corrupt-frame", so.corrupt_frame, "Corrupt the checksum of frame N (first transmission)");
  simulate->add_option("--drop-after", so.drop_after, "Cut the connection once after BYTES bytes, then reconnect");
  simulate->add_option("--frame-delay", sim_frame_delay, "Wait MS before every frame / message");
  simulate->add_option("--duplicate-frame", so.duplicate_frame, "Send frame N again after its ACK");
  simulate->add_option("--repeat", so.repeat, "Play the capture K times")->check(CLI::Range(1, 1000000));
  simulate->add_option("--reply-timeout", sim_reply_timeout, "MS to wait for a reply (default 15000, LIS1-A 6.5.2)");
  simulate->add_option("--retries", so.retries, "Times a message the link gave up on is tried again (default 2)");
  simulate->add_option("--timeout", sim_timeout, "MS for the whole run (default 300000)");
  simulate->add_option("capture", sim_capture, "Capture file")->required();

  std::string rules_file;
  auto* rules = app.add_subcommand("rules", "Auto-rerun rules");
  auto* rules_test_cmd = rules->add_subcommand("test", "Load a rules file and run the test cases it carries");
  rules_test_cmd->add_option("file", rules_file, "Rules file (JSON)")->required();
  rules->require_subcommand(1);

  std::string qc_limits_file, qc_series_file;
  auto* qc = app.add_subcommand("qc", "Quality control: Westgard evaluation by hand");
  auto* qc_eval = qc->add_subcommand("evaluate", "Evaluate a CSV of control results (observed_at,parameter,level,value) "
                                                 "against limits; one JSON line per row, in input order");
  qc_eval->add_option("--limits", qc_limits_file, "Limits JSON: [{parameter, level, mean, sd}] (optional material, lot)")
      ->required();
  qc_eval->add_option("series", qc_series_file, "CSV with the header observed_at,parameter,level,value")->required();
  qc_admin_command qa;
  qa.config = default_config_path;
  auto* qc_resolve = qc->add_subcommand("resolve", "Resolve a control result with a configured code (qc.resolution_codes); "
                                                   "the running daemon re-evaluates the later runs");
  qc_resolve->add_option("result_id", qa.id, "The control result's id (GET /api/qc/series)")->required();
  qc_resolve->add_option("--code", qa.code, "A code of qc.resolution_codes")->required();
  qc_resolve->add_option("--by", qa.by, "Who resolves")->required();
  qc_resolve->add_option("--reason", qa.reason, "Why")->required();
  qc_resolve->add_flag("--propose", qa.propose, "Propose a two-step code (another person approves it)");
  auto* qc_approve = qc->add_subcommand("approve", "Approve a proposed two-step resolution (not by its proposer)");
  qc_approve->add_option("proposal_id", qa.id, "The proposal's id")->required();
  qc_approve->add_option("--by", qa.by, "Who approves")->required();
  auto* qc_undo = qc->add_subcommand("undo", "Undo a resolution or proposal (kept in the history, marked undone)");
  qc_undo->add_option("resolution_id", qa.id, "The resolution's id")->required();
  qc_undo->add_option("--by", qa.by, "Who undoes it")->required();
  qc_undo->add_option("--reason", qa.reason, "Why");
  auto* qc_history = qc->add_subcommand("history", "Every resolution, proposal, approval, undo and limit change: who, when, why");
  for (auto* qsub : {qc_resolve, qc_approve, qc_undo, qc_history}) {
    qsub->add_option("--config,-c", qa.config, "Configuration file (for the health endpoint and admin token)")
        ->capture_default_str();
    qsub->add_flag("--json", qa.json, "The daemon's answer as JSON");
  }
  qc->require_subcommand(1);

  outbox_command oc;
  oc.config = default_config_path;
  auto* outbox = app.add_subcommand("outbox", "What waits for the backend, what died and why; re-queue after a fix");
  outbox->add_option("--config,-c", oc.config, "Configuration file (for outbox.path)")->capture_default_str();
  outbox->add_option("--file", oc.file, "The outbox file itself, instead of the configuration's");
  outbox->require_subcommand(1);
  auto* ob_list = outbox->add_subcommand("list", "Messages not yet delivered (pending, dead, set aside)");
  ob_list->add_flag("--all", oc.all, "Delivered ones too");
  ob_list->add_option("--sample", oc.sample, "Only messages carrying this sample id");
  ob_list->add_option("--state", oc.state, "Only this state: pending, delivered, dead or set-aside");
  ob_list->add_option("--since", oc.since, "Only messages stored at or after: 2026-11-23 or 2026-11-23T08:00:00Z");
  ob_list->add_flag("--orphans", oc.orphans,
                    "Only orphan objects: dead file reports whose file is stored (the path to remove)");
  ob_list->add_flag("--json", oc.json, "JSON output");
  auto* ob_show = outbox->add_subcommand("show", "One message: where it stands, the backend's last answer, resends, its body");
  ob_show->add_option("id", oc.id, "Message id (the Idempotency-Key)")->required();
  ob_show->add_flag("--json", oc.json, "JSON output");
  auto* ob_aside = outbox->add_subcommand("set-aside", "Park a message (audited); only `outbox retry ID` sends it again");
  ob_aside->add_option("id", oc.id, "Message id")->required();
  ob_aside->add_option("--by", oc.by, "Who sets it aside")->required();
  ob_aside->add_option("--reason", oc.reason, "Why")->required();
  auto* ob_retry = outbox->add_subcommand("retry", "Queue a dead message again (or every one with --dead)");
  ob_retry->add_option("id", oc.id, "Message id");
  ob_retry->add_flag("--dead", oc.dead, "Every dead letter");
  auto* ob_purge = outbox->add_subcommand("purge", "Remove delivered messages older than a date");
  ob_purge->add_option("--delivered-before", oc.before, "Date: 2026-11-23 or 2026-11-23T08:00:00Z")->required();

  stats_command stc;
  stc.config = default_config_path;
  std::string st_from, st_to, st_gran, st_by, st_format;
  std::vector<std::string> st_events, st_devices;
  auto* stats = app.add_subcommand("stats", "The historical summary: counts per lab-local day, week or month");
  stats->add_option("--config,-c", stc.config, "Configuration file (outbox.path, lab.timezone)")->capture_default_str();
  stats->add_option("--file", stc.file, "The outbox file itself, instead of the configuration's");
  stats->add_option("--from", st_from, "First lab-local date, inclusive (default: 6 days before --to)");
  stats->add_option("--to", st_to, "Last lab-local date, inclusive (default: today)");
  stats->add_option("--granularity", st_gran, "day | week | month")->check(CLI::IsMember({"day", "week", "month"}));
  stats->add_option("--by", st_by, "device | parameter")->check(CLI::IsMember({"device", "parameter"}));
  stats->add_option("--event", st_events, "Only this event type (repeatable)");
  stats->add_option("--device", st_devices, "Only this device (repeatable)");
  stats->add_option("--format", st_format, "table | json | csv")->check(CLI::IsMember({"table", "json", "csv"}));
  stats->require_subcommand(0, 1);
  auto* st_rebuild = stats->add_subcommand("rebuild", "Recompute the summary from its event log (after a time-zone change)");
  st_rebuild->add_option("--from", stc.rebuild_from, "Only days on or after this lab-local date");
  st_rebuild->fallthrough();
  auto* st_prune = stats->add_subcommand("prune", "Drop whole years of the summary");
  st_prune->add_option("--before", stc.before_year, "Drop every year before this one")->required();
  st_prune->fallthrough();

  help_command hc;
  hc.config = default_config_path;
  auto* explain = app.add_subcommand("explain", "What a log code means, its likely causes and what to do: interfaced explain ASTM-012");
  explain->add_option("code", hc.code, "The code at the end of a log line, e.g. ASTM-012")->required();
  explain->add_option("--config,-c", hc.config, "Configuration file (for help.items_file)")->capture_default_str();
  auto* help = app.add_subcommand("help", "Search the help items (title, description, tags): interfaced help checksum");
  help->add_option("--page", hc.page, "Only items of this page: dashboard, messages, qc, stats, help");
  help->add_option("--config,-c", hc.config, "Configuration file (for help.items_file)")->capture_default_str();
  help->add_option("words", hc.words, "Words to find");
  help->require_subcommand(0, 1);
  auto* help_export = help->add_subcommand("export", "Print every help item (shipped and the site's) as one JSON file");
  help_export->fallthrough();
  auto* help_import = help->add_subcommand("import", "Make a JSON file the site's help items (help.items_file)");
  help_import->add_option("file", hc.file, "JSON file, as `help export` writes it")->required();
  help_import->fallthrough();

  status_command sc;
  sc.config = default_config_path;
  auto* status = app.add_subcommand("status", "Ask the running daemon: links, last message per device, counts, outbox, alarms");
  status->add_option("--config,-c", sc.config, "Configuration file (for the health endpoint)")->capture_default_str();
  status->add_flag("--json", sc.json, "The daemon's /health JSON as it is");

  trace_command tc;
  tc.config = default_config_path;
  std::string trace_state;
  auto* trace = app.add_subcommand("trace", "Switch a device's wire trace in the running daemon");
  trace->add_option("device", tc.device, "Device id")->required();
  trace->add_option("state", trace_state, "on | off")->required()->check(CLI::IsMember({"on", "off"}));
  trace->add_option("--config,-c", tc.config, "Configuration file")->capture_default_str();

  backend_sim_command bc;
  auto* bsim = app.add_subcommand("backend-sim", "A lab backend for tests and the demo: records every request, serves a waiting list, fails on demand");
  bsim->add_option("--listen", bc.port, "Port to listen on")->required();
  bsim->add_option("--bind", bc.listen, "Address (default 127.0.0.1)");
  bsim->add_option("--record", bc.record, "Append every request as a JSON line to this file");
  bsim->add_option("--data", bc.data, "JSON file with the waiting list and parameter configuration");
  bsim->add_option("--fail", bc.faults, "Fault, repeatable: status=503,count=3,path=/x,method=POST,body-contains=X,delay=250,retry-after=2,drop");
  bsim->add_option("--tls-cert", bc.tls_cert, "PEM certificate chain (with --tls-key: HTTPS)");
  bsim->add_option("--tls-key", bc.tls_key, "PEM private key");
  bsim->add_option("--s3", bc.s3_url, "Presign real S3 POST policies (SigV4) for this S3-compatible store URL");
  bsim->add_option("--s3-bucket", bc.s3_bucket, "The store's bucket (with --s3)");
  bsim->add_option("--s3-key", bc.s3_key, "The store's access key id (with --s3)");
  bsim->add_option("--s3-secret-file", bc.s3_secret_file, "File holding the store's secret key (with --s3)");
  bsim->add_option("--store", bc.store, "Be the store: presigned uploads written under this folder at their key");
  bsim->add_option("--presign-ttl", bc.presign_ttl_s, "Seconds a presigned policy is valid (default 900)");
  bsim->add_option("--expect-token-env", bc.token_env, "Require this bearer token (read from the named environment variable)");

  demo_options dopt;
  auto* demo = app.add_subcommand("demo", "Backend simulator + daemon + two simulated analysers (ASTM over a pty, HL7 over TCP): watch results arrive");
  demo->add_option("--dir", dopt.dir, "Work folder (default: a new one under /tmp)");
  demo->add_option("--samples", dopt.samples_dir, "Folder with demo-chemistry.astm and demo-immuno.hl7");
  demo->add_option("--timeout", dopt.timeout_s, "Seconds to wait for the results")->capture_default_str();

  auto* completion = app.add_subcommand(
      "completion", "Print the bash completion script (the package installs it; or: source <(interfaced completion))");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return e.get_exit_code() == 0 ? code : exit_usage;
  }
  if (completion->parsed()) {
    write_bash_completion(app, std::cout);
    return exit_ok;
  }
  if (replay->parsed()) return run_replay(ro, std::cout, std::cerr);
  if (simulate->parsed()) {
    namespace tr = interfaced::sim;
    so.frame_delay = std::chrono::milliseconds(sim_frame_delay);
    so.reply_timeout = std::chrono::milliseconds(sim_reply_timeout);
    so.timeout = std::chrono::milliseconds(sim_timeout);
    if (sim_listen >= 0) so.listen = static_cast<std::uint16_t>(sim_listen);
    std::optional<tr::sim_protocol> forced;
    if (!sim_protocol.empty()) forced = sim_protocol == "hl7" ? tr::sim_protocol::hl7 : tr::sim_protocol::astm;
    std::string why;
    const auto script = tr::load_sim_script(sim_capture, forced, why);
    if (!script) {
      std::cerr << "interfaced simulate: " << why << '\n';
      return exit_no_input;
    }
    return tr::run_analyser_sim(*script, so, std::cout, std::cerr);
  }
  if (rules_test_cmd->parsed()) return rules_test(rules_file, std::cout, std::cerr);
  if (qc_eval->parsed()) return run_qc_evaluate(qc_limits_file, qc_series_file, std::cout, std::cerr);
  for (auto [qsub, name] : {std::pair{qc_resolve, "resolve"}, std::pair{qc_approve, "approve"}, std::pair{qc_undo, "undo"},
                          std::pair{qc_history, "history"}})
    if (qsub->parsed()) {
      qa.action = name;
      return run_qc_admin(qa, std::cout, std::cerr);
    }
  if (demo->parsed()) return run_demo(dopt);
  if (outbox->parsed()) {
    oc.action = ob_list->parsed()    ? "list"
                : ob_show->parsed()  ? "show"
                : ob_retry->parsed() ? "retry"
                : ob_aside->parsed() ? "set-aside"
                                     : "purge";
    if (ob_retry->parsed() && oc.id.empty() && !oc.dead) {
      std::cerr << "outbox retry: give a message id or --dead\n";
      return exit_usage;
    }
    return run_outbox_command(oc, std::cout, std::cerr);
  }
  if (explain->parsed() || help->parsed()) {
    hc.action = explain->parsed()       ? "explain"
                : help_export->parsed() ? "export"
                : help_import->parsed() ? "import"
                                        : "search";
    hc.config_given = (explain->parsed() ? explain : help)->count("--config") > 0;
    return run_help_command(hc, std::cout, std::cerr);
  }
  if (stats->parsed()) {
    stc.action = st_rebuild->parsed() ? "rebuild" : st_prune->parsed() ? "prune" : "query";
    auto& p = stc.params;
    if (!st_from.empty()) p.emplace_back("from", st_from);
    if (!st_to.empty()) p.emplace_back("to", st_to);
    if (!st_gran.empty()) p.emplace_back("granularity", st_gran);
    if (!st_by.empty()) p.emplace_back("by", st_by);
    for (const auto& e : st_events) p.emplace_back("event", e);
    for (const auto& d : st_devices) p.emplace_back("device", d);
    if (!st_format.empty()) p.emplace_back("format", st_format);
    // --config given explicitly wins over --file's absence; the default config is only read
    // when no --file names the outbox.
    if (!stc.file.empty() && stats->count("--config") == 0) stc.config.clear();
    return run_stats_command(stc, std::cout, std::cerr);
  }
  if (status->parsed()) return run_status(sc, std::cout, std::cerr);
  if (trace->parsed()) {
    tc.on = trace_state == "on";
    return run_trace(tc, std::cout, std::cerr);
  }
  if (bsim->parsed()) return run_backend_sim_command(bc, std::cerr);
  if (run->parsed()) {
    run_opts.config = run_config;
    return run_service(run_opts);
  }
  if (check->parsed()) {
    auto r = load_config(check_file, !check_no_devices);
    for (const auto& p : r.problems) std::cerr << format_problem(check_file, p) << '\n';
    for (const auto& p : r.warnings)
      std::cerr << (check_strict ? "" : "warning: ") << format_problem(check_file, p) << '\n';
    if (check_strict) r.problems.insert(r.problems.end(), r.warnings.begin(), r.warnings.end());
    if (r.ok() && !r.cfg.rules_file.empty()) {
      // The rules file is part of the configuration: start-up refuses it on the same terms.
      std::ostringstream rules_out;
      if (const int rc = rules_test(r.cfg.rules_file, rules_out, std::cerr); rc != exit_ok) {
        std::cerr << check_file << ": /rules_file: " << r.cfg.rules_file.string() << " is not valid (see above)\n";
        return exit_config;
      }
    }
    if (!r.ok()) {
      std::cerr << check_file << ": " << r.problems.size() << " problem(s); the configuration is not valid\n";
      return exit_config;
    }
    const std::size_t n = r.cfg.devices.size(), nw = r.warnings.size();
    std::cout << check_file << ": valid (" << n << (n == 1 ? " device" : " devices")
              << (nw == 0 ? std::string() : ", " + std::to_string(nw) + (nw == 1 ? " warning" : " warnings")) << ")\n";
    return exit_ok;
  }
  return exit_usage;
}
