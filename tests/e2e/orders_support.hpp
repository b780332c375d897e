#pragma once
// End-to-end helpers for the order tests (orders_test.cpp: host queries and reruns,
// order_download_test.cpp: orders sent unasked): the analyser end of an ASTM link played on a raw
// loopback socket, ASTM record helpers, waiting-list entries for the backend simulator and the
// simulator itself as a child process, and bounded waits on a log file.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "e2e_support.hpp"
#include "parsers/astm/control.hpp"
#include "parsers/astm/frame_decoder.hpp"

namespace interfaced::e2e {

// E1381 control characters.
using astm::control::ack, astm::control::enq, astm::control::eot, astm::control::etb, astm::control::etx,
    astm::control::stx;

// The analyser end of an ASTM link: one blocking socket, every wait bounded.
class astm_analyser {
 public:
  explicit astm_analyser(std::uint16_t port) : conn_(port) {}
  [[nodiscard]] bool ok() const { return conn_.ok(); }

  // Sends one message (records ending CR) in one ENQ..EOT session; true when every frame was ACKed.
  bool send_message(const std::string& text) {
    if (!conn_.send(std::string(1, enq)) || next_byte(5s) != ack) return false;
    if (!conn_.send(interfaced::astm::encode_frame(1, text, true))) return false;
    // The daemon holds this ACK until the message is durable (persist, then acknowledge).
    if (next_byte(10s) != ack) return false;
    return conn_.send(std::string(1, eot));
  }

  // Waits for the host's ENQ, ACKs it and every frame, until EOT. The message text (frame texts
  // joined), the raw bytes received are appended to raw(); nullopt when no ENQ came in `limit`.
  std::optional<std::string> receive_message(ms limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    recording_ = false;
    for (;;) {
      if (!fill(until)) return std::nullopt;
      const char c = buf_.front();
      buf_.erase(0, 1);
      if (c == enq) break;
    }
    // raw(): the host's bytes from its ENQ on, exactly as received.
    recording_ = true;
    raw_ = std::string(1, enq) + buf_;
    conn_.send(std::string(1, ack));
    std::string text;
    const auto frame_until = std::chrono::steady_clock::now() + 15s;
    for (;;) {
      if (!fill(frame_until)) return std::nullopt;
      if (buf_.front() == eot) {
        buf_.erase(0, 1);
        return text;
      }
      if (buf_.front() != stx) {
        buf_.erase(0, 1);
        continue;
      }
      const auto lf = buf_.find('\n');
      if (lf == std::string::npos) {
        if (!more(frame_until)) return std::nullopt;
        continue;
      }
      const std::string frame = buf_.substr(0, lf + 1);
      buf_.erase(0, lf + 1);
      const auto end = frame.find_first_of(std::string{etx, etb});
      if (end != std::string::npos && end > 2) text += frame.substr(2, end - 2);
      conn_.send(std::string(1, ack));
    }
  }

  [[nodiscard]] const std::string& raw() const { return raw_; }

 private:
  bool more(std::chrono::steady_clock::time_point until) {
    const std::string got = conn_.read_some(until);
    if (got.empty()) return false;
    if (recording_) raw_ += got;
    buf_ += got;
    return true;
  }
  bool fill(std::chrono::steady_clock::time_point until) { return !buf_.empty() || more(until); }
  int next_byte(ms limit) {
    if (!fill(std::chrono::steady_clock::now() + limit)) return -1;
    const char c = buf_.front();
    buf_.erase(0, 1);
    return c;
  }

  tcp_conn conn_;
  std::string buf_;
  std::string raw_;
  bool recording_ = false;
};

// The record lines of a message, for readable failures and exact comparisons.
inline std::vector<std::string> records(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string r; std::getline(in, r, '\r');)
    if (!r.empty()) out.push_back(r);
  return out;
}

// The first record of `type` ('O', 'L' ...), or "".
inline std::string record_of(const std::string& text, char type) {
  for (const auto& r : records(text))
    if (r[0] == type) return r;
  return {};
}

// A waiting-list entry as the backend serves it (backend-api.md); a rerun when `rerun` > 0.
inline json entry(const std::string& sample, const std::string& report, int rerun, std::vector<std::string> params,
                  std::vector<std::string> rerun_params) {
  return {{"sample_id", sample},
          {"lab_report_id", report},
          {"sampleRedrawFlag", rerun > 0 ? 3 : 0},
          {"rerunNumber", rerun},
          {"parameters", params},
          {"rerun_params", rerun_params},
          {"patient", {{"id", "PAT-" + sample}, {"name", "DOE^JANE"}, {"sex", "F"}, {"dob", "19800101"}}},
          {"priority", "R"}};
}

// The backend simulator's data file, written atomically (it may reload it at any time).
inline void write_backend_data(const fs::path& file, const json& data) {
  const fs::path tmp = file.string() + ".tmp";
  std::ofstream(tmp) << data.dump(2);
  fs::rename(tmp, file);
}

// How often `needle` stands in `haystack`.
inline std::size_t occurrences(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1)) ++n;
  return n;
}

// Waits until the text `read()` returns holds `text` `count` times; false when `limit` passed first.
template <class Read>
bool wait_text(Read read, const std::string& text, std::size_t count = 1, ms limit = 10000ms) {
  const auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (occurrences(read(), text) >= count) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(50ms);
  }
}

// Waits until the log file holds `text` `count` times.
inline bool wait_log(const fs::path& log, const std::string& text, std::size_t count = 1, ms limit = 10000ms) {
  return wait_text([&] { return file_text(log); }, text, count, limit);
}

// `interfaced backend-sim` on a free port, serving `data`, every request recorded (in memory and
// in backend.jsonl); ready when its /_sim/requests answers.
class backend_proc {
 public:
  backend_proc(const fs::path& dir, const fs::path& data) : port_(free_port()) {
    proc_ = std::make_unique<child>(
        std::vector<std::string>{test::interfaced_binary().string(), "backend-sim", "--listen", std::to_string(port_), "--record",
                                 (dir / "backend.jsonl").string(), "--data", data.string()},
        dir / "backend.out", dir / "backend.err");
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (!http_get(port_, "/_sim/requests")) {
      if (!proc_->running()) FAIL("backend-sim exited:\n" << proc_->err());
      if (std::chrono::steady_clock::now() >= until) FAIL("backend-sim did not answer within 10 s");
      std::this_thread::sleep_for(20ms);
    }
  }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  // The backend goes down.
  void stop() {
    proc_->signal(SIGTERM);
    REQUIRE(proc_->wait_for(5000ms).has_value());
  }
  [[nodiscard]] json requests() const {
    const auto body = http_get(port_, "/_sim/requests");
    REQUIRE(body.has_value());
    return json::parse(*body);
  }
  [[nodiscard]] std::vector<json> posts(const std::string& path) const {
    std::vector<json> out;
    for (const auto& r : requests())
      if (r.value("method", "") == "POST" && r.value("path", "") == path) out.push_back(r);
    return out;
  }
  // The POSTs to `path` counted by the value of `field` in their JSON body (e.g. lab_report_id).
  [[nodiscard]] std::map<std::string, int> posts_by(const std::string& path, const std::string& field) const {
    std::map<std::string, int> out;
    for (const auto& p : posts(path)) ++out[json::parse(p.value("body", "{}")).value(field, "")];
    return out;
  }
  // Waits until `n` POSTs to `path` were recorded.
  std::vector<json> wait_posts(const std::string& path, std::size_t n, ms limit = 15000ms) const {
    const auto until = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto p = posts(path);
      if (p.size() >= n || std::chrono::steady_clock::now() >= until) return p;
      std::this_thread::sleep_for(50ms);
    }
  }

 private:
  std::uint16_t port_;
  std::unique_ptr<child> proc_;
};

}  // namespace interfaced::e2e
