#include "daemon/demo.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "daemon/replay.hpp"

namespace interfaced::daemon {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

struct child {
  pid_t pid = -1;
  std::string name;
};

child spawn(const std::string& name, const std::vector<std::string>& args, const fs::path& log) {
  child c;
  c.name = name;
  c.pid = ::fork();
  if (c.pid == 0) {
    std::FILE* f = std::fopen(log.c_str(), "a");
    if (f) {
      ::dup2(::fileno(f), 1);
      ::dup2(::fileno(f), 2);
    }
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv("/proc/self/exe", argv.data());
    std::_Exit(127);
  }
  return c;
}

int wait_for(child& c, std::chrono::seconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    int status = 0;
    const pid_t r = ::waitpid(c.pid, &status, WNOHANG);
    if (r == c.pid) {
      c.pid = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -1;
}

void stop(child& c) {
  if (c.pid <= 0) return;
  ::kill(c.pid, SIGTERM);
  if (wait_for(c, std::chrono::seconds(10)) < 0) {
    ::kill(c.pid, SIGKILL);
    (void)wait_for(c, std::chrono::seconds(2));
  }
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
std::size_t print_new_results(const fs::path& record, std::size_t seen_lines, std::size_t& results) {
  std::ifstream in(record);
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    if (n++ < seen_lines) continue;
    const json req = json::parse(line, nullptr, false);
    if (req.is_discarded() || !req.contains("body")) continue;
    json body = req["body"].is_string() ? json::parse(req["body"].get<std::string>(), nullptr, false) : req["body"];
    if (body.is_discarded()) continue;
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
  const std::uint16_t backend_port = free_port(), hl7_port = free_port(), health_port = free_port();
  const fs::path pty = dir / "analyser-chem-1";
  const fs::path record = dir / "backend-requests.jsonl";
  const json cfg = {
      {"devices",
       {{{"id", "chem-1"}, {"protocol", "astm"}, {"trace", true},
         {"link", {{"type", "serial"}, {"device", pty.string()}, {"baud", 9600}}}},
        {{"id", "immuno-1"}, {"protocol", "hl7"}, {"trace", true},
         {"link", {{"type", "tcp-server"}, {"bind", "127.0.0.1"}, {"port", hl7_port}}}}}},
      {"backend", {{"base_url", "http://127.0.0.1:" + std::to_string(backend_port)}}},
      {"outbox", {{"path", (dir / "outbox.sqlite").string()}}},
      {"logging", {{"dir", (dir / "logs").string()}}},
      {"health", {{"bind", "127.0.0.1"}, {"port", health_port}}}};
  std::ofstream(dir / "interfaced.json") << cfg.dump(2) << '\n';

  std::cout << "interfaced demo in " << dir.string() << "\n"
            << "  backend simulator  http://127.0.0.1:" << backend_port << "  (records to " << record.string() << ")\n"
            << "  chem-1   ASTM E1381 over a pty pair: " << pty.string() << "  <- demo-chemistry.astm\n"
            << "  immuno-1 HL7 over MLLP on 127.0.0.1:" << hl7_port << "  <- demo-immuno.hl7\n\n";

  std::vector<child> children;
  children.push_back(spawn("backend-sim", {"interfaced", "backend-sim", "--listen", std::to_string(backend_port), "--record", record.string()},
                           dir / "logs" / "backend-sim.log"));
  // The pty exists before the daemon opens it as a serial port: start that analyser first.
  child astm_sim = spawn("simulate chem-1", {"interfaced", "simulate", "--pty", pty.string(), (samples / "demo-chemistry.astm").string()},
                         dir / "logs" / "simulate-chem-1.log");
  for (int i = 0; i < 100 && !fs::exists(pty); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  children.push_back(spawn("daemon", {"interfaced", "run", "-c", (dir / "interfaced.json").string()}, dir / "logs" / "interfaced.log"));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  child hl7_sim = spawn("simulate immuno-1", {"interfaced", "simulate", "--connect", "127.0.0.1:" + std::to_string(hl7_port),
                                              (samples / "demo-immuno.hl7").string()},
                        dir / "logs" / "simulate-immuno-1.log");

  // demo-chemistry.astm holds 4 results and demo-immuno.hl7 3 (written for this demo).
  constexpr std::size_t expected = 7;
  std::size_t lines = 0, results = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(o.timeout_s);
  while (results < expected && std::chrono::steady_clock::now() < end) {
    lines = print_new_results(record, lines, results);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const int astm_rc = wait_for(astm_sim, std::chrono::seconds(5));
  const int hl7_rc = wait_for(hl7_sim, std::chrono::seconds(5));
  stop(astm_sim);
  stop(hl7_sim);
  for (auto it = children.rbegin(); it != children.rend(); ++it) stop(*it);

  std::cout << "\n" << results << " of " << expected << " results reached the backend"
            << " (analysers: chem-1 " << (astm_rc == 0 ? "acknowledged" : "exit " + std::to_string(astm_rc))
            << ", immuno-1 " << (hl7_rc == 0 ? "acknowledged" : "exit " + std::to_string(hl7_rc)) << ")\n"
            << "  device logs       " << (dir / "logs").string() << "/chem-1.log, immuno-1.log\n"
            << "  wire traces       " << (dir / "logs").string() << "/chem-1.trace (replay it: interfaced replay "
            << (dir / "logs" / "chem-1.trace").string() << ")\n"
            << "  outbox            " << (dir / "outbox.sqlite").string() << " (interfaced outbox --file ... list --all)\n"
            << "  backend requests  " << record.string() << '\n';
  return results >= expected ? exit_ok : exit_bad_input;
}

}  // namespace interfaced::daemon
