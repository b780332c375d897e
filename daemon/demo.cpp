#include "daemon/demo.hpp"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/exit_codes.hpp"
#include "transport/child_process.hpp"
#include "transport/loopback_port.hpp"

namespace interfaced::daemon {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using transport::child_output;
using transport::child_process;

std::uint16_t free_port() {
  const auto p = transport::unused_loopback_port();
  return p ? *p : 0;
}

// `interfaced ARGS...` (this very binary) with stdout and stderr appended to `log`.
std::optional<child_process> spawn(const std::vector<std::string>& args, const fs::path& log) {
  transport::child_options o;
  o.argv = args;
  o.program = "/proc/self/exe";
  o.out = child_output::to_file(log, true);
  o.err = child_output::to_stdout();
  auto c = child_process::spawn(o);
  if (!c) {
    std::cerr << "interfaced demo: cannot start `interfaced " << args.at(1) << "`: " << c.error().message() << '\n';
    return std::nullopt;
  }
  return std::move(*c);
}

// The exit status within `limit`, or -1.
int wait_for(std::optional<child_process>& c, std::chrono::seconds limit) {
  if (!c) return -1;
  return c->wait_for(limit).value_or(-1);
}

void stop(std::optional<child_process>& c) {
  if (c) (void)c->stop(std::chrono::seconds(10));
}

fs::path find_samples(const std::string& given) {
  if (!given.empty()) return given;
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  for (const auto& p : {exe.parent_path().parent_path() / "share" / "interfaced" / "samples",
                        fs::path(INTERFACED_SOURCE_DIR) / "packaging" / "samples"})
    if (fs::exists(p / "demo-chemistry.astm", ec)) return p;
  return {};
}

// The results the backend simulator recorded so far, one printed line each.
// A file-type report: the four stages as the backend saw them, the last (finalize) printed with
// the stored object.
std::size_t print_new_results(const fs::path& record, std::size_t seen_lines, std::size_t& results, std::size_t& files,
                              const fs::path& store) {
  std::ifstream in(record);
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    if (n++ < seen_lines) continue;
    const json req = json::parse(line, nullptr, false);
    if (req.is_discarded() || !req.contains("body")) continue;
    const std::string path = req.value("path", "");
    if (path == "/storage/presign" || path == "/store/upload" || path == "/storage/reconcile") {
      std::cout << "  backend received  " << path << "  (" << req.value("idempotency_key", "") << ", HTTP "
                << req.value("status", 0) << ")\n";
      continue;
    }
    // An upload's recorded body is its size, not JSON: only the JSON posts are read further.
    json body = req["body"].is_string() ? json::parse(req["body"].get<std::string>(), nullptr, false) : req["body"];
    if (body.is_discarded()) continue;
    if (path == "/interfacing/file-report" && req.value("status", 0) / 100 == 2) {
      ++files;
      std::error_code ec;
      const auto stored = store / body.value("path", "");
      std::cout << "  backend received  file-type report  " << body.value("sample_id", "") << "  "
                << body.value("parameter", "") << " = " << body.value("filename", "") << "  ("
                << body.value("content_type", "") << ", " << body.value("size", 0) << " bytes, sha256 "
                << body.value("sha256", "").substr(0, 16) << "...)  stored at " << stored.string() << " ("
                << fs::file_size(stored, ec) << " bytes)\n";
      continue;
    }
    const json* list = body.contains("results") ? &body["results"] : body.contains("values") ? &body["values"] : nullptr;
    if (!list) continue;
    for (const auto& r : *list) {
      ++results;
      std::cout << "  backend received  " << body.value("device_id", "") << "  " << r.value("sample_id", "") << "  "
                << r.value("parameter", "") << " = " << r.value("value", "") << " " << r.value("unit", "");
      if (r.contains("flags") && !r["flags"].empty()) std::cout << "  flags " << r["flags"].dump();
      std::cout << "  rerun_number " << r.value("rerun_number", 0) << '\n';
    }
  }
  return n;
}

}  // namespace

int run_demo(const demo_options& o) {
  const fs::path samples = find_samples(o.samples_dir);
  if (samples.empty()) {
    std::cerr << "interfaced demo: the bundled samples were not found (give --samples DIR)\n";
    return exit_no_input;
  }
  fs::path dir = o.dir;
  if (dir.empty()) {
    char tmpl[] = "/tmp/interfaced-demo-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  fs::create_directories(dir / "logs");
  const std::uint16_t backend_port = free_port(), hl7_port = free_port(), health_port = free_port(),
                      hema_port = free_port();
  // The hematology analyser's image share: the Sysmex XN names PNG\20261123\<name> in its result,
  // and the IPU writes the image there (a 1x1 PNG stands in for the scattergram).
  const fs::path share = dir / "xn-share";
  const fs::path image = share / "PNG" / "20261123" / "DEMO_S-1003_WDF.PNG";
  fs::create_directories(image.parent_path());
  {
    static constexpr unsigned char png[] = {
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00,
        0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00,
        0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01,
        0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82};
    std::ofstream(image, std::ios::binary).write(reinterpret_cast<const char*>(png), sizeof png);
  }
  const fs::path pty = dir / "analyser-chem-1";
  const fs::path record = dir / "backend-requests.jsonl";
  const json cfg = {
      {"devices",
       {{{"id", "chem-1"}, {"protocol", "astm"}, {"trace", true},
         {"link", {{"type", "serial"}, {"device", pty.string()}, {"baud", 9600}}}},
        {{"id", "immuno-1"}, {"protocol", "hl7"}, {"trace", true},
         {"link", {{"type", "tcp-server"}, {"bind", "127.0.0.1"}, {"port", hl7_port}}}},
        {{"id", "hema-1"}, {"protocol", "astm"}, {"profile", "sysmex-xn"},
         {"files", {{"root", share.string()}, {"settle_ms", 200}, {"wait_s", 60}}},
         {"link", {{"type", "tcp-server"}, {"bind", "127.0.0.1"}, {"port", hema_port}}}}}},
      {"backend", {{"base_url", "http://127.0.0.1:" + std::to_string(backend_port)}}},
      {"outbox", {{"path", (dir / "outbox.sqlite").string()}}},
      {"logging", {{"dir", (dir / "logs").string()}}},
      {"health", {{"bind", "127.0.0.1"}, {"port", health_port}}}};
  std::ofstream(dir / "interfaced.json") << cfg.dump(2) << '\n';

  std::cout << "interfaced demo in " << dir.string() << "\n"
            << "  backend simulator  http://127.0.0.1:" << backend_port << "  (records to " << record.string() << ")\n"
            << "  chem-1   ASTM E1381 over a pty pair: " << pty.string() << "  <- demo-chemistry.astm\n"
            << "  immuno-1 HL7 over MLLP on 127.0.0.1:" << hl7_port << "  <- demo-immuno.hl7\n"
            << "  hema-1   ASTM over TCP on 127.0.0.1:" << hema_port
            << "  <- demo-hematology.astm, its image under " << share.string() << "\n"
            << "  object store       " << (dir / "store").string() << "  (backend-sim --store)\n\n";

  std::vector<std::optional<child_process>> children;
  children.push_back(spawn({"interfaced", "backend-sim", "--listen", std::to_string(backend_port), "--record", record.string(),
                            "--store", (dir / "store").string()},
                           dir / "logs" / "backend-sim.log"));
  // The pty exists before the daemon opens it as a serial port: start that analyser first.
  auto astm_sim = spawn({"interfaced", "simulate", "--pty", pty.string(), (samples / "demo-chemistry.astm").string()},
                        dir / "logs" / "simulate-chem-1.log");
  for (int i = 0; i < 100 && !fs::exists(pty); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  children.push_back(spawn({"interfaced", "run", "-c", (dir / "interfaced.json").string()}, dir / "logs" / "interfaced.log"));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto hl7_sim = spawn({"interfaced", "simulate", "--connect", "127.0.0.1:" + std::to_string(hl7_port),
                        (samples / "demo-immuno.hl7").string()},
                       dir / "logs" / "simulate-immuno-1.log");
  auto hema_sim = spawn({"interfaced", "simulate", "--connect", "127.0.0.1:" + std::to_string(hema_port),
                         (samples / "demo-hematology.astm").string()},
                        dir / "logs" / "simulate-hema-1.log");

  // demo-chemistry.astm holds 4 results, demo-immuno.hl7 3 and demo-hematology.astm 2, one of
  // them naming an image: one file-type report (written for this demo).
  constexpr std::size_t expected = 9, expected_files = 1;
  std::size_t lines = 0, results = 0, files = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(o.timeout_s);
  while ((results < expected || files < expected_files) && std::chrono::steady_clock::now() < end) {
    lines = print_new_results(record, lines, results, files, dir / "store");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const int astm_rc = wait_for(astm_sim, std::chrono::seconds(5));
  const int hl7_rc = wait_for(hl7_sim, std::chrono::seconds(5));
  const int hema_rc = wait_for(hema_sim, std::chrono::seconds(5));
  stop(astm_sim);
  stop(hl7_sim);
  stop(hema_sim);
  for (auto it = children.rbegin(); it != children.rend(); ++it) stop(*it);

  std::cout << "\n" << results << " of " << expected << " results and " << files << " of " << expected_files
            << " file-type report reached the backend"
            << " (analysers: chem-1 " << (astm_rc == 0 ? "acknowledged" : "exit " + std::to_string(astm_rc))
            << ", immuno-1 " << (hl7_rc == 0 ? "acknowledged" : "exit " + std::to_string(hl7_rc))
            << ", hema-1 " << (hema_rc == 0 ? "acknowledged" : "exit " + std::to_string(hema_rc)) << ")\n"
            << "  device logs       " << (dir / "logs").string() << "/chem-1.log, immuno-1.log\n"
            << "  wire traces       " << (dir / "logs").string() << "/chem-1.trace (replay it: interfaced replay "
            << (dir / "logs" / "chem-1.trace").string() << ")\n"
            << "  outbox            " << (dir / "outbox.sqlite").string() << " (interfaced outbox --file ... list --all)\n"
            << "  backend requests  " << record.string() << '\n';
  return results >= expected && files >= expected_files ? exit_ok : exit_bad_input;
}

}  // namespace interfaced::daemon
