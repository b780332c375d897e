#pragma once
// Where the links hand what they received: the daemon's durable outbox implements batch_sink.
// No Asio here on purpose: daemon code includes this header.
//
// Contract (persist, then acknowledge, style.md):
//  - hand_off() takes one complete message (ASTM H..L or one HL7 message), normalised, with its
//    raw text. The sink calls done(true) once the message is durable, done(false) when it could
//    not be stored; exactly once, on the io_context thread, either inside hand_off() or later.
//  - The link sends the acknowledgement that completes the message only after done(true); on
//    done(false) it answers negatively (ASTM NAK of the end frame, HL7 AE) so the analyser resends.
//  - accepting() false (outbox full) makes the links refuse new transfers (ASTM: NAK to ENQ;
//    HL7: AR) instead of dropping anything.

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "parsers/model.hpp"

namespace interfaced::devices {
struct device_profile;
}

namespace interfaced::transport {

struct delivery {
  std::string device;  // the configured device id of the link
  interfaced::protocol protocol = protocol::astm;
  std::vector<result> results;
  std::vector<query> queries;
  std::vector<order> orders;
  std::string raw;           // as received: ASTM H..L records (CR-separated), HL7 bytes between 0x0B and 0x1C
  std::string sender;        // ASTM H.5
  std::string message_type;  // HL7 MSH-9 (`OUL^R22`)
  std::string control_id;    // HL7 MSH-10
  std::uint64_t offset = 0;  // byte offset of the message in the connection's stream
  // The profile the message was read with (configured, or detected from ASTM H.5); nullptr:
  // the standard's defaults. Its result codes name the parameters, as in replay.
  const devices::device_profile* profile = nullptr;
  // Folder devices (file-reports.md): file-type report bodies (devices/file_report.hpp) with
  // their ordering keys, and state documents (key -> value: the SHA-256 of the file taken),
  // stored in the same transaction as the results.
  std::vector<std::pair<std::string, std::string>> file_reports;
  std::vector<std::pair<std::string, std::string>> documents;
};

using done_callback = std::function<void(bool durable)>;

class batch_sink {
 public:
  virtual ~batch_sink() = default;
  virtual void hand_off(delivery d, done_callback done) = 0;
  [[nodiscard]] virtual bool accepting() const = 0;
};

// For tests: keeps every delivery in memory. auto_confirm: done(durable_answer) inside hand_off;
// otherwise the done callbacks wait in held() until release() (a test's "slow disk").
class memory_sink final : public batch_sink {
 public:
  void hand_off(delivery d, done_callback done) override {
    received_.push_back(std::move(d));
    if (auto_confirm) {
      done(durable_answer);
    } else {
      held_.push_back(std::move(done));
    }
  }
  [[nodiscard]] bool accepting() const override { return accepting_flag; }

  // Answers every held callback with `durable`; returns how many there were.
  std::size_t release(bool durable) {
    auto held = std::move(held_);
    held_.clear();
    for (auto& d : held) d(durable);
    return held.size();
  }
  [[nodiscard]] std::size_t held() const noexcept { return held_.size(); }
  [[nodiscard]] const std::vector<delivery>& received() const noexcept { return received_; }

  bool auto_confirm = true;
  bool durable_answer = true;
  bool accepting_flag = true;

 private:
  std::vector<delivery> received_;
  std::vector<done_callback> held_;
};

}  // namespace interfaced::transport
