// Interop against a peer nobody here wrote: python3-hl7's mllp_send (Debian package python3-hl7)
// sends every analyser->host capture to our MLLP listener on an ephemeral loopback port. Each must
// be answered MSA|AA, and the sink must hold what a direct normalise of the same file gives.
//
// mllp_send reads its file as an MLLP stream (messages split on 0x1C, 0x0B / CR stripped from
// the ends) and prints each reply it receives; it blocks on each reply, so the io_context runs on
// a thread of its own here while the test waits for the process.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "parsers/hl7/normalise.hpp"
#include "support/files.hpp"
#include "support/scratch_dir.hpp"
#include "transport/child_process.hpp"
#include "transport/mllp_session.hpp"
#include "transport/tcp.hpp"
#include "transport_test_support.hpp"

using namespace interfaced;
using namespace interfaced::transport;
using boost::asio::ip::tcp;
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

const char* const mllp_send_path = "/usr/bin/mllp_send";

// Thread-safe: hand_off runs on the io thread, the test reads after joining it.
class locked_sink final : public batch_sink {
 public:
  void hand_off(delivery d, done_callback done) override {
    {
      std::lock_guard lock(mutex_);
      received_.push_back(std::move(d));
    }
    done(true);
  }
  [[nodiscard]] bool accepting() const override { return true; }
  std::vector<delivery> take() {
    std::lock_guard lock(mutex_);
    return std::move(received_);
  }

 private:
  std::mutex mutex_;
  std::vector<delivery> received_;
};

// The message text as mllp_send delivers it: framing removed.
std::string unframed(std::string bytes) {
  if (!bytes.empty() && bytes.front() == '\x0b') bytes.erase(0, 1);
  const auto fs_pos = bytes.find('\x1c');
  if (fs_pos != std::string::npos) bytes.erase(fs_pos);
  return bytes;
}

// Runs `argv` with stdout and stderr in one pipe (2>&1); what it printed. `status`: its exit
// status, -1 when it could not start or did not end within 60 s (it was killed then).
std::string run_and_capture(const std::vector<std::string>& argv, int& status) {
  child_options o;
  o.argv = argv;
  o.out = child_output::to_pipe();
  o.err = child_output::to_stdout();
  auto c = child_process::spawn(o);
  if (!c) {
    status = -1;
    return "cannot start: " + c.error().message();
  }
  status = c->wait_for(std::chrono::seconds(60)).value_or(-1);
  return c->piped_out();
}

}  // namespace

TEST_CASE("interop: mllp_send (python3-hl7) gets MSA|AA for every analyser capture", "[transport][mllp][interop]") {
  const auto captures = interfaced::test::capture_files("hl7", "interop test");
  if (!captures) return;
  if (!fs::exists(mllp_send_path)) {
    WARN("SKIPPED: " << mllp_send_path << " not installed (Debian package python3-hl7); interop test not run");
    return;
  }

  // Analyser -> host messages only (SOURCES.md): results and queries; host replies are not sent.
  struct capture_case {
    std::string name;
    std::string text;  // unframed
    hl7::hl7_batch expected;
  };
  std::vector<capture_case> cases;
  for (const auto& f : *captures) {
    if (f.extension() != ".hl7") continue;
    const std::string text = unframed(interfaced::test::read_file(f));
    hl7::hl7_batch b = hl7::normalise(text, {}, "INTEROP");
    if (b.message_type != "OUL^R22" && b.message_type != "QBP^Q11") continue;
    cases.push_back({f.filename().string(), text, std::move(b)});
  }
  REQUIRE(cases.size() >= 2);

  asio::io_context io;
  locked_sink sink;
  std::mutex log_mutex;
  std::vector<std::string> lines;
  event_log log = [&](std::string_view l) {
    std::lock_guard lock(log_mutex);
    lines.emplace_back(l);
  };
  mllp_session_config cfg;
  cfg.device = "INTEROP";
  tcp_server_options o;
  o.bind_address = "127.0.0.1";
  tcp_server server(
      io.get_executor(), o, [&](tcp::socket s, std::string) { return run_mllp_session(std::move(s), cfg, sink, log); },
      log);
  REQUIRE(!server.start());
  auto guard = asio::make_work_guard(io);
  std::thread loop([&] { io.run_for(std::chrono::seconds(120)); });  // bounded even if a peer hangs

  const interfaced::test::scratch_dir tmp;
  std::vector<std::string> outputs;
  std::vector<int> statuses;
  for (const auto& c : cases) {
    // mllp_send splits its input on 0x1C: give it the message framed as on the wire.
    const fs::path file = tmp / c.name;
    {
      std::ofstream out(file, std::ios::binary);
      out << '\x0b' << c.text << '\x1c' << '\x0d';
    }
    int status = 0;
    outputs.push_back(run_and_capture(
        {mllp_send_path, "--port", std::to_string(server.port()), "--file", file.string(), "127.0.0.1"}, status));
    statuses.push_back(status);
  }
  asio::post(io, [&] {
    server.stop();
    server.close_sessions();
    guard.reset();
  });
  loop.join();

  std::vector<delivery> got = sink.take();
  std::string all_lines;
  for (const auto& l : lines) all_lines += l + "\n";
  INFO("event log:\n" << all_lines);
  REQUIRE(got.size() == cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const auto& d = got[i];
    INFO(c.name << ": mllp_send printed: " << outputs[i]);
    CHECK(statuses[i] == 0);
    CHECK(outputs[i].find("MSA|AA|" + c.expected.control_id) != std::string::npos);
    CHECK(d.control_id == c.expected.control_id);
    CHECK(d.message_type == c.expected.message_type);
    REQUIRE(d.results.size() == c.expected.results.size());
    for (std::size_t r = 0; r < d.results.size(); ++r) {
      CHECK(d.results[r].sample_id == c.expected.results[r].sample_id);
      CHECK(d.results[r].code == c.expected.results[r].code);
      CHECK(d.results[r].value == c.expected.results[r].value);
      CHECK(d.results[r].unit == c.expected.results[r].unit);
      CHECK(d.results[r].observed_at == c.expected.results[r].observed_at);
    }
    REQUIRE(d.queries.size() == c.expected.queries.size());
    for (std::size_t q = 0; q < d.queries.size(); ++q) {
      CHECK(d.queries[q].sample_ids == c.expected.queries[q].sample_ids);
      CHECK(d.queries[q].tag == c.expected.queries[q].tag);
    }
  }
}
