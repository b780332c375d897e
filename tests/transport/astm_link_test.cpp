// The ASTM link driver over real loopback TCP, a real pty pair and a pty opened as a serial port:
// an analyser-side coroutine plays an E1381 session byte by byte and records our replies.

#include <termios.h>

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "parsers/astm/frame_decoder.hpp"
#include "transport/astm_link.hpp"
#include "transport/pty.hpp"
#include "transport/serial.hpp"
#include "transport/tcp.hpp"
#include "transport_test_support.hpp"

using namespace interfaced;
using namespace interfaced::transport;
using namespace interfaced::transport::test;
using boost::asio::ip::tcp;

namespace {

const std::vector<std::string> records = {
    "H|\\^&|||DEMO^1.0|||||||P|1\r",
    "P|1\r",
    "O|1|S-1001||^^^GLU\r",
    "R|1|^^^GLU|5.4|mmol/L|3.9-6.1|N||F||||20240101120000\r",
    "L|1|N\r",
};

std::string whole_message() {
  std::string all;
  for (const auto& r : records) all += r;
  return all;
}

// One analyser step: bytes to send, then (reply) one byte to wait for.
struct step {
  std::string bytes;
  bool reply = true;
};

// ENQ, one end frame per record (as many analysers send), EOT.
std::vector<step> per_record_session() {
  std::vector<step> s{{std::string(1, enq)}};
  for (std::size_t i = 0; i < records.size(); ++i) {
    s.push_back({astm::encode_frame(static_cast<int>((i + 1) % 8), records[i], true)});
  }
  s.push_back({std::string(1, eot), false});
  return s;
}

std::string corrupt_checksum(std::string frame) {
  const std::size_t etx = frame.find_first_of("\x03\x17");
  REQUIRE(etx != std::string::npos);
  frame[etx + 1] = frame[etx + 1] == '0' ? '1' : '0';
  return frame;
}

template <class Stream>
asio::awaitable<void> play(Stream& s, std::vector<step> steps, std::string& replies) {
  for (const auto& st : steps) {
    if (!co_await write_all(s, st.bytes)) co_return;
    if (st.reply) {
      const auto c = co_await read_byte(s);
      if (!c) co_return;
      replies.push_back(*c);
    }
  }
}

void check_delivery(const delivery& d) {
  CHECK(d.device == "TEST-ASTM");
  CHECK(d.protocol == protocol::astm);
  CHECK(d.raw == whole_message());
  CHECK(d.sender == "DEMO^1.0");
  REQUIRE(d.results.size() == 1);
  CHECK(d.results[0].sample_id == "S-1001");
  CHECK(d.results[0].code == "GLU");
  CHECK(d.results[0].value == "5.4");
  CHECK(d.results[0].unit == "mmol/L");
}

// Answers done() from a script of booleans (then true), at once.
class scripted_sink final : public batch_sink {
 public:
  explicit scripted_sink(std::deque<bool> answers) : answers_(std::move(answers)) {}
  void hand_off(delivery d, done_callback done) override {
    received.push_back(std::move(d));
    bool ok = true;
    if (!answers_.empty()) {
      ok = answers_.front();
      answers_.pop_front();
    }
    done(ok);
  }
  [[nodiscard]] bool accepting() const override { return true; }
  std::vector<delivery> received;

 private:
  std::deque<bool> answers_;
};

// Started at once: tests change `cfg` and `use` afterwards (each connection copies cfg when it starts).
struct astm_tcp : session_fixture<astm_link_config, &run_astm_link<tcp::socket>> {
  astm_tcp() {
    cfg.device = "TEST-ASTM";
    start();
    REQUIRE(server->port() != 0);
  }
};

}  // namespace

TEST_CASE("astm tcp: ACK per frame, the final ACK only once the outbox said durable", "[transport][astm]") {
  astm_tcp fx;
  fx.sink.auto_confirm = false;  // a slow disk: done() comes when the test says so
  auto s = fx.connect();
  std::string replies;
  bool done = false;
  spawn(fx.io, play(s, per_record_session(), replies), done);

  REQUIRE(run_until(fx.io, [&] { return fx.sink.held() == 1; }));
  run_for(fx.io, 100ms);  // the outbox is still writing: the L frame must stay unanswered
  CHECK(replies == std::string(5, ack));  // ENQ + H, P, O, R
  REQUIRE(fx.sink.received().size() == 1);
  check_delivery(fx.sink.received()[0]);

  CHECK(fx.sink.release(true) == 1);
  INFO(fx.log.joined());
  REQUIRE(run_until(fx.io, [&] { return done; }));
  CHECK(replies == std::string(6, ack));
  run_for(fx.io, 20ms);
  CHECK(fx.sink.received().size() == 1);
}

TEST_CASE("astm tcp: a corrupted checksum is NAKed, the resent frame is delivered exactly once",
          "[transport][astm]") {
  astm_tcp fx;
  const std::string frame = astm::encode_frame(1, whole_message(), true);
  auto s = fx.connect();
  std::string replies;
  bool done = false;
  spawn(fx.io,
        play(s, {{std::string(1, enq)}, {corrupt_checksum(frame)}, {frame}, {std::string(1, eot), false}}, replies),
        done);
  INFO(fx.log.joined());
  REQUIRE(run_until(fx.io, [&] { return done; }));
  CHECK(replies == std::string{ack, nak, ack});
  run_for(fx.io, 20ms);
  REQUIRE(fx.sink.received().size() == 1);
  check_delivery(fx.sink.received()[0]);
  CHECK(fx.log.contains("rejected"));
}

TEST_CASE("astm tcp: outbox failure NAKs the end frame, the resend completes the same message",
          "[transport][astm]") {
  astm_tcp fx;
  scripted_sink flaky({false});
  fx.use = &flaky;
  auto steps = per_record_session();
  steps.pop_back();  // EOT
  const std::string last = steps.back().bytes;
  steps.push_back({last});  // the analyser repeats the NAKed L frame (same FN)
  steps.push_back({std::string(1, eot), false});
  auto s = fx.connect();
  std::string replies;
  bool done = false;
  spawn(fx.io, play(s, steps, replies), done);
  INFO(fx.log.joined());
  REQUIRE(run_until(fx.io, [&] { return done; }));
  CHECK(replies == std::string{ack, ack, ack, ack, ack, nak, ack});
  run_for(fx.io, 20ms);
  // The earlier records (frames already ACKed) were rolled back into the resend: the second
  // hand-off is the whole H..L again, not a lone L record.
  REQUIRE(flaky.received.size() == 2);
  check_delivery(flaky.received[1]);
  CHECK(fx.log.contains("could not store"));
}

TEST_CASE("astm tcp: disconnect mid-message is logged, nothing delivered, the next connection works",
          "[transport][astm]") {
  astm_tcp fx;
  {
    auto s = fx.connect();
    std::string replies;
    bool done = false;
    auto steps = per_record_session();
    steps.resize(3);  // ENQ, H, P
    spawn(fx.io, play(s, steps, replies), done);
    REQUIRE(run_until(fx.io, [&] { return done; }));
    CHECK(replies == std::string(3, ack));
    s.close();
  }
  INFO(fx.log.joined());
  REQUIRE(run_until(fx.io, [&] { return fx.log.contains("mid-transfer"); }));
  run_for(fx.io, 20ms);
  CHECK(fx.sink.received().empty());

  auto s2 = fx.connect();
  std::string replies;
  bool done = false;
  spawn(fx.io, play(s2, per_record_session(), replies), done);
  REQUIRE(run_until(fx.io, [&] { return done && fx.sink.received().size() == 1; }));
  CHECK(replies == std::string(6, ack));
  check_delivery(fx.sink.received()[0]);
}

TEST_CASE("astm tcp: a peer that closes after its message was ACKed, before its EOT, lost nothing: no 'dropped' line",
          "[transport][astm]") {
  astm_tcp fx;
  {
    auto s = fx.connect();
    std::string replies;
    bool done = false;
    auto steps = per_record_session();
    steps.pop_back();  // no EOT
    spawn(fx.io, play(s, steps, replies), done);
    REQUIRE(run_until(fx.io, [&] { return done; }));
    CHECK(replies == std::string(6, ack));
    s.close();
  }
  INFO(fx.log.joined());
  REQUIRE(run_until(fx.io, [&] { return fx.log.contains("peer closed the connection"); }));
  CHECK(fx.sink.received().size() == 1);
  CHECK_FALSE(fx.log.contains("mid-transfer"));
  CHECK_FALSE(fx.log.contains("dropped"));
}

TEST_CASE("astm tcp: a full outbox NAKs ENQ", "[transport][astm]") {
  astm_tcp fx;
  fx.sink.accepting_flag = false;
  auto s = fx.connect();
  std::string replies;
  bool done = false;
  spawn(fx.io, play(s, {{std::string(1, enq)}}, replies), done);
  REQUIRE(run_until(fx.io, [&] { return done; }));
  CHECK(replies == std::string(1, nak));
}

TEST_CASE("astm tcp: link timers run on the loop (receive timeout, outbox deadline)", "[transport][astm]") {
  SECTION("receive timeout discards the incomplete message") {
    astm_tcp fx;
    fx.cfg.link.receive_timeout = 50ms;
    auto s = fx.connect();
    std::string replies;
    bool done = false;
    spawn(fx.io, play(s, {{std::string(1, enq)}, {astm::encode_frame(1, records[0], false)}}, replies), done);
    INFO(fx.log.joined());
    REQUIRE(run_until(fx.io, [&] { return fx.log.contains("discarded"); }, 2000ms));
    CHECK(replies == std::string(2, ack));
    CHECK(fx.sink.received().empty());
  }
  SECTION("a frame trickled in too slowly hits the receive timeout with a line saying so") {
    astm_tcp fx;
    fx.cfg.link.receive_timeout = 50ms;
    auto s = fx.connect();
    std::string replies;
    bool done = false;
    const std::string frame = astm::encode_frame(1, records[0], true);
    spawn(fx.io, play(s, {{std::string(1, enq)}, {frame.substr(0, frame.size() / 2), false}}, replies), done);
    INFO(fx.log.joined());
    REQUIRE(run_until(fx.io, [&] { return fx.log.contains("[LINK-006]"); }, 2000ms));
    CHECK(fx.log.contains("(a frame was still arriving)"));
    CHECK(replies == std::string(1, ack));
    CHECK(fx.sink.received().empty());
  }
  SECTION("an outbox that does not answer in time gets the end frame NAKed") {
    astm_tcp fx;
    fx.cfg.sink_timeout = 50ms;
    fx.sink.auto_confirm = false;
    auto s = fx.connect();
    std::string replies;
    bool done = false;
    spawn(fx.io,
          play(s, {{std::string(1, enq)}, {astm::encode_frame(1, whole_message(), true)}}, replies), done);
    INFO(fx.log.joined());
    REQUIRE(run_until(fx.io, [&] { return done; }, 2000ms));
    CHECK(replies == std::string{ack, nak});
    fx.sink.release(true);  // too late: ignored, no stray ACK
    run_for(fx.io, 30ms);
    CHECK(fx.log.contains("did not answer in time"));
  }
}

TEST_CASE("astm over a pty pair: the same session, the final ACK after durable", "[transport][astm][pty]") {
  asio::io_context io;
  auto pair = open_pty(io.get_executor());
  REQUIRE(pair.has_value());
  memory_sink sink;
  sink.auto_confirm = false;
  event_lines log;
  astm_link_config cfg;
  cfg.device = "TEST-ASTM";
  bool link_done = false;
  spawn(io, run_astm_link(std::move(pair->slave), cfg, sink, log.logger()), link_done);
  std::string replies;
  bool done = false;
  spawn(io, play(pair->master, per_record_session(), replies), done);
  INFO(log.joined());
  REQUIRE(run_until(io, [&] { return sink.held() == 1; }));
  run_for(io, 50ms);
  CHECK(replies == std::string(5, ack));
  sink.release(true);
  REQUIRE(run_until(io, [&] { return done; }));
  CHECK(replies == std::string(6, ack));
  REQUIRE(sink.received().size() == 1);
  check_delivery(sink.received()[0]);
}

TEST_CASE("astm over a serial port (LibSerial on a pty slave)", "[transport][astm][serial]") {
  asio::io_context io;
  auto pair = open_pty(io.get_executor());
  REQUIRE(pair.has_value());
  {
    // Start from a cooked tty (echo, canonical lines, CR -> NL) as a real port may be: LibSerial's
    // configuration must be what the link sees, not what open_pty set.
    termios cooked{};
    REQUIRE(::tcgetattr(pair->slave.native_handle(), &cooked) == 0);
    cooked.c_iflag |= ICRNL;
    cooked.c_lflag |= ICANON | ECHO;
    REQUIRE(::tcsetattr(pair->slave.native_handle(), TCSANOW, &cooked) == 0);
  }
  serial_settings ss;
  ss.device = pair->slave_path;
  ss.baud = 9600;
  auto port = open_serial(io.get_executor(), ss);
  if (!port) {
    WARN("SKIPPED: LibSerial could not open the pty as a serial port: " << port.error());
    return;
  }
  {
    termios now{};
    REQUIRE(::tcgetattr(pair->slave.native_handle(), &now) == 0);
    CHECK((now.c_lflag & (ICANON | ECHO)) == 0);  // LibSerial's raw settings survived its Close()
    CHECK((now.c_iflag & ICRNL) == 0);
    CHECK(cfgetispeed(&now) == B9600);
  }
  memory_sink sink;
  event_lines log;
  astm_link_config cfg;
  cfg.device = "TEST-ASTM";
  bool link_done = false;
  spawn(io, run_astm_link(std::move(*port), cfg, sink, log.logger()), link_done);
  std::string replies;
  bool done = false;
  spawn(io, play(pair->master, per_record_session(), replies), done);
  INFO(log.joined());
  REQUIRE(run_until(io, [&] { return done; }));
  CHECK(replies == std::string(6, ack));  // CR, LF, ETX... crossed the tty unchanged
  REQUIRE(sink.received().size() == 1);
  check_delivery(sink.received()[0]);

  serial_settings bad = ss;
  bad.baud = 12345;
  CHECK(!open_serial(io.get_executor(), bad));
  bad = ss;
  bad.device = "/dev/does-not-exist";
  auto missing = open_serial(io.get_executor(), bad);
  REQUIRE(!missing);
  CHECK(missing.error().find("/dev/does-not-exist") != std::string::npos);
}
