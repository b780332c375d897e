// Order download (worklist push) over real loopback TCP: the daemon side (ASTM link driver, MLLP
// session) takes messages from a push_queue and sends them unasked; an analyser-side coroutine
// plays its part byte by byte (E1381 turn-taking, MLLP ACKs) and records what it received.

#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "parsers/astm/builders.hpp"
#include "parsers/astm/frame_decoder.hpp"
#include "parsers/hl7/ack.hpp"
#include "parsers/hl7/builders.hpp"
#include "parsers/hl7/mllp.hpp"
#include "transport/astm_link.hpp"
#include "transport/mllp_session.hpp"
#include "transport/push_queue.hpp"
#include "transport/tcp.hpp"
#include "transport_test_support.hpp"

using namespace interfaced;
using namespace interfaced::transport;
using namespace interfaced::transport::test;
using boost::asio::ip::tcp;

namespace {

order rerun_order() {
  order o;
  o.sample_id = "S-RR-1";
  o.patient_id = "PAT-1";
  o.tests = {{"HGB", ""}, {"PLT", ""}};
  return o;
}

std::string astm_order() {
  order o = rerun_order();
  o.action_code = "A";
  astm::order_message_header h;
  h.timestamp = "20260101120000";
  return astm::build_order_message({o}, h);
}

std::string oml(const std::string& control_id) {
  order o = rerun_order();
  hl7::oml_o33_header h;
  h.sending_application = "interfaced";
  h.timestamp = "20260101120000";
  h.control_id = control_id;
  return hl7::build_oml_o33(o, h);
}

// How each pushed message ended.
struct outcome {
  std::vector<std::pair<bool, std::string>> ends;
  push_message message(std::string text) {
    push_message m;
    m.text = std::move(text);
    m.done = [this](bool sent, const std::string& reason) { ends.emplace_back(sent, reason); };
    return m;
  }
};

// The analyser end of an E1381 link: bytes in, one at a time or a frame (up to LF) at a time.
class astm_peer {
 public:
  explicit astm_peer(tcp::socket& s) : s_(s) {}
  asio::awaitable<std::optional<char>> byte() {
    if (buf_.empty() && !co_await more()) co_return std::nullopt;
    const char c = buf_.front();
    buf_.erase(0, 1);
    co_return c;
  }
  // A frame from STX to its LF; nullopt on close.
  asio::awaitable<std::optional<std::string>> frame() {
    for (;;) {
      const auto lf = buf_.find('\n');
      if (lf != std::string::npos) {
        std::string f = buf_.substr(0, lf + 1);
        buf_.erase(0, lf + 1);
        co_return f;
      }
      if (!co_await more()) co_return std::nullopt;
    }
  }
  asio::awaitable<bool> send(std::string_view bytes) { co_return co_await write_all(s_, bytes); }
  // The frame's text (between FN and ETX/ETB).
  static std::string text_of(const std::string& frame) {
    const auto end = frame.find_first_of("\x03\x17");
    return end == std::string::npos || end < 2 ? std::string{} : frame.substr(2, end - 2);
  }

 private:
  asio::awaitable<bool> more() {
    char b[512];
    auto [ec, n] = co_await s_.async_read_some(asio::buffer(b), asio::as_tuple(asio::use_awaitable));
    if (ec) co_return false;
    buf_.append(b, n);
    co_return true;
  }
  tcp::socket& s_;
  std::string buf_;
};

struct astm_fixture : session_fixture<astm_link_config, &run_astm_link<tcp::socket>> {
  std::shared_ptr<push_queue> queue = std::make_shared<push_queue>();

  astm_fixture() {
    cfg.device = "TEST-ASTM";
    cfg.push = queue;
  }
};

// Receives one host session: ACKs the ENQ and every frame; the message text, or "" on failure.
asio::awaitable<void> receive_session(astm_peer& p, std::string& text, bool& ended) {
  const auto first = co_await p.byte();
  if (!first || *first != enq) co_return;
  co_await p.send(std::string(1, ack));
  for (;;) {
    const auto c = co_await p.byte();
    if (!c) co_return;
    if (*c == eot) break;
    if (*c != '\x02') continue;
    const auto rest = co_await p.frame();
    if (!rest) co_return;
    text += astm_peer::text_of(std::string(1, '\x02') + *rest);
    co_await p.send(std::string(1, ack));
  }
  ended = true;
}

}  // namespace

TEST_CASE("astm push: an order queued while no analyser is connected goes out when it connects",
          "[transport][astm][push]") {
  astm_fixture fx;
  fx.start();
  outcome out;
  REQUIRE(fx.queue->push(out.message(astm_order())));
  auto s = fx.connect();
  astm_peer peer(s);
  std::string text;
  bool ended = false;
  bool done = false;
  spawn(fx.io, receive_session(peer, text, ended), done);
  INFO(fx.log.joined());
  REQUIRE(run_until(fx.io, [&] { return done && !out.ends.empty(); }));
  CHECK(ended);
  CHECK(text == astm_order());
  CHECK(text.find("O|1|S-RR-1||^^^HGB\\^^^PLT|R||||||A|") != std::string::npos);
  REQUIRE(out.ends.size() == 1);
  CHECK(out.ends[0].first);
  CHECK(fx.queue->empty());
}

TEST_CASE("astm push: on ENQ contention the host yields, takes the analyser's results, then pushes",
          "[transport][astm][push]") {
  astm_fixture fx;
  fx.start();
  auto s = fx.connect();
  run_for(fx.io, 20ms);  // the link is up and idle
  outcome out;
  REQUIRE(fx.queue->push(out.message(astm_order())));
  astm_peer peer(s);
  std::string replies, text;
  bool ended = false, done = false;
  auto analyser = [&]() -> asio::awaitable<void> {
    // The host bids ...
    const auto bid = co_await peer.byte();
    if (!bid || *bid != enq) co_return;
    // ... and so does the analyser (it had results): the instrument has priority.
    co_await peer.send(std::string(1, enq));
    asio::steady_timer wait(s.get_executor());
    wait.expires_after(50ms);  // LIS1-A: >= 1 s in real life; the host must stay silent meanwhile
    co_await wait.async_wait(asio::use_awaitable);
    co_await peer.send(std::string(1, enq));
    const auto a1 = co_await peer.byte();
    if (!a1) co_return;
    replies.push_back(*a1);
    const std::string result = "H|\\^&|||AN\rP|1\rO|1|S-9||^^^GLU\rR|1|^^^GLU|5.4|mmol/L||N||F\rL|1|N\r";
    co_await peer.send(astm::encode_frame(1, result, true));
    const auto a2 = co_await peer.byte();
    if (!a2) co_return;
    replies.push_back(*a2);
    co_await peer.send(std::string(1, eot));
    // Now the line is neutral: the host bids again and sends its order.
    co_await receive_session(peer, text, ended);
  };
  spawn(fx.io, analyser(), done);
  INFO(fx.log.joined());
  REQUIRE(run_until(fx.io, [&] { return done && !out.ends.empty(); }));
  CHECK(replies == std::string{ack, ack});  // the analyser's ENQ and its frame, nothing else
  REQUIRE(fx.sink.received().size() == 1);
  CHECK(fx.sink.received()[0].results.at(0).sample_id == "S-9");
  CHECK(ended);
  CHECK(text == astm_order());
  REQUIRE(out.ends.size() == 1);
  CHECK(out.ends[0].first);
}

TEST_CASE("astm push: frames NAKed 6 times end the session, the retries are bounded, then given up",
          "[transport][astm][push]") {
  astm_fixture fx;
  fx.cfg.link.retry_wait = 30ms;
  fx.cfg.push_attempts = 2;
  fx.start();
  auto s = fx.connect();
  outcome out;
  REQUIRE(fx.queue->push(out.message(astm_order())));
  astm_peer peer(s);
  int sessions = 0, frames = 0;
  bool done = false;
  auto analyser = [&]() -> asio::awaitable<void> {
    for (;;) {
      const auto c = co_await peer.byte();
      if (!c) co_return;
      if (*c == enq) {
        ++sessions;
        co_await peer.send(std::string(1, ack));
      } else if (*c == '\x02') {
        if (!co_await peer.frame()) co_return;
        ++frames;
        co_await peer.send(std::string(1, nak));  // this analyser refuses the order
      }
    }
  };
  spawn(fx.io, analyser(), done);
  INFO(fx.log.joined());
  REQUIRE(run_until(fx.io, [&] { return !out.ends.empty(); }));
  run_for(fx.io, 150ms);  // several retry waits: no third session
  CHECK(sessions == 2);
  CHECK(frames == 12);  // 6 attempts per session (LIS1-A 6.5.1.2)
  REQUIRE(out.ends.size() == 1);
  CHECK_FALSE(out.ends[0].first);
  CHECK(out.ends[0].second.find("6 attempts") != std::string::npos);
  CHECK(out.ends[0].second.find("(2 attempts)") != std::string::npos);
  CHECK(fx.log.contains("given up after 2 attempts"));
}

TEST_CASE("astm push: a connection lost mid-transfer hands the order to the next connection",
          "[transport][astm][push]") {
  astm_fixture fx;
  fx.start();
  outcome out;
  {
    auto s = fx.connect();
    REQUIRE(fx.queue->push(out.message(astm_order())));
    astm_peer peer(s);
    bool done = false;
    auto analyser = [&]() -> asio::awaitable<void> {
      const auto c = co_await peer.byte();
      if (c && *c == enq) co_await peer.send(std::string(1, ack));
      (void)co_await peer.frame();  // ... and the cable is pulled before the ACK
    };
    spawn(fx.io, analyser(), done);
    REQUIRE(run_until(fx.io, [&] { return done; }));
    s.close();
  }
  REQUIRE(run_until(fx.io, [&] { return fx.queue->size() == 1; }));
  CHECK(out.ends.empty());
  auto s2 = fx.connect();
  astm_peer peer2(s2);
  std::string text;
  bool ended = false, done = false;
  spawn(fx.io, receive_session(peer2, text, ended), done);
  INFO(fx.log.joined());
  REQUIRE(run_until(fx.io, [&] { return !out.ends.empty(); }));
  CHECK(text == astm_order());
  CHECK(out.ends.at(0).first);
}

// ---------------------------------------------------------------- HL7 / MLLP

namespace {

struct mllp_fixture : session_fixture<mllp_session_config, &run_mllp_session<tcp::socket>> {
  std::shared_ptr<push_queue> queue = std::make_shared<push_queue>();

  mllp_fixture() {
    cfg.device = "TEST-HL7";
    cfg.push = queue;
    cfg.push_ack_timeout = 200ms;
    cfg.push_retry_wait = 30ms;
  }
};

// The analyser's application acknowledgement of a work order (LAW: ORL^O34 with MSA).
std::string orl(const std::string& control_id, const std::string& code) {
  return "MSH|^~\\&|AN||interfaced||20260101120001||ORL^O34^ORL_O42|R" + control_id + "|P|2.5.1\rMSA|" + code + "|" +
         control_id + "\r";
}

std::string oul(const std::string& control_id) {
  return "MSH|^~\\&|AN|LAB|HOST|H|20240101120000||OUL^R22^OUL_R22|" + control_id +
         "|P|2.5.1|||NE|AL||UNICODE UTF-8\rSPM|1|S-9||SER\rOBR|1||S-9|GLU^Glucose\r"
         "OBX|1|NM|GLU^Glucose||5.4|mmol/L|3.9-6.1|N|||F\r";
}

// The analyser: reads MLLP messages, answers each with answer(message) (nothing when empty).
template <class Answer>
asio::awaitable<void> hl7_analyser(tcp::socket& s, std::vector<std::string>& got, std::size_t expect, Answer answer) {
  mllp_reader in(s);
  while (got.size() < expect) {
    auto message = co_await in.next();
    if (!message) co_return;
    got.push_back(std::move(*message));
    const std::string reply = answer(got.back());
    if (!reply.empty() && !co_await write_all(s, hl7::mllp_wrap(reply))) co_return;
  }
}

std::string control_id_of(const std::string& message) {
  hl7::message m;
  if (hl7::parse_message(message, m)) return {};
  return std::string(m.msh().field(10).raw());
}

}  // namespace

TEST_CASE("mllp push: an OML^O33 goes out unasked and ends when the analyser answers AA",
          "[transport][mllp][push]") {
  mllp_fixture fx;
  fx.start();
  auto s = fx.connect();
  outcome out;
  REQUIRE(fx.queue->push(out.message(oml("IFO-1"))));
  std::vector<std::string> got;
  bool done = false;
  spawn(fx.io, hl7_analyser(s, got, 1, [](const std::string& m) { return orl(control_id_of(m), "AA"); }), done);
  INFO(fx.log.joined());
  REQUIRE(run_until(fx.io, [&] { return !out.ends.empty(); }));
  REQUIRE(got.size() == 1);
  CHECK(got[0] == oml("IFO-1"));
  CHECK(got[0].find("OML^O33^OML_O33|IFO-1|") != std::string::npos);
  CHECK(got[0].find("\rOBR|1|S-RR-1.1||HGB\r") != std::string::npos);
  CHECK(out.ends[0].first);
  // The analyser's reply is not acknowledged (no ACK of an ACK).
  run_for(fx.io, 50ms);
  CHECK(got.size() == 1);
  CHECK(fx.sink.received().empty());
}

TEST_CASE("mllp push: AE is logged and the order sent again after the retry wait, bounded",
          "[transport][mllp][push]") {
  mllp_fixture fx;
  fx.cfg.push_attempts = 3;
  fx.start();
  auto s = fx.connect();
  outcome out;
  REQUIRE(fx.queue->push(out.message(oml("IFO-2"))));
  SECTION("AE then AA: sent") {
    std::vector<std::string> got;
    bool done = false;
    int n = 0;
    spawn(fx.io,
          hl7_analyser(s, got, 2, [&](const std::string& m) { return orl(control_id_of(m), ++n == 1 ? "AE" : "AA"); }),
          done);
    INFO(fx.log.joined());
    REQUIRE(run_until(fx.io, [&] { return !out.ends.empty(); }));
    REQUIRE(got.size() == 2);
    CHECK(got[1] == got[0]);  // the same message, the same MSH-10
    CHECK(out.ends[0].first);
    CHECK(fx.log.contains("IFO-2 not accepted (MSA-1 AE): sent again"));
  }
  SECTION("AR every time: given up after 3 sends") {
    std::vector<std::string> got;
    bool done = false;
    spawn(fx.io, hl7_analyser(s, got, 10, [](const std::string& m) { return orl(control_id_of(m), "AR"); }), done);
    INFO(fx.log.joined());
    REQUIRE(run_until(fx.io, [&] { return !out.ends.empty(); }));
    run_for(fx.io, 150ms);
    CHECK(got.size() == 3);
    CHECK_FALSE(out.ends[0].first);
    CHECK(out.ends[0].second == "MSA-1 AR (3 attempts)");
  }
  SECTION("no answer: each wait ends after push_ack_timeout") {
    std::vector<std::string> got;
    bool done = false;
    spawn(fx.io, hl7_analyser(s, got, 10, [](const std::string&) { return std::string{}; }), done);
    INFO(fx.log.joined());
    REQUIRE(run_until(fx.io, [&] { return !out.ends.empty(); }, 3000ms));
    CHECK(got.size() == 3);
    CHECK(out.ends[0].second == "no ACK within 200 ms (3 attempts)");
  }
}

TEST_CASE("mllp push: no order is written while a received message waits for its ACK",
          "[transport][mllp][push]") {
  mllp_fixture fx;
  fx.sink.auto_confirm = false;  // the outbox is slow: the OUL's ACK waits
  fx.start();
  auto s = fx.connect();
  std::vector<std::string> got;
  bool done = false;
  spawn(fx.io, hl7_analyser(s, got, 2, [](const std::string& m) {
          return m.find("OML^O33") != std::string::npos ? orl(control_id_of(m), "AA") : std::string{};
        }),
        done);
  bool wrote = false;
  auto send_result = [&]() -> asio::awaitable<void> { co_await write_all(s, hl7::mllp_wrap(oul("C-1"))); };
  spawn(fx.io, send_result(), wrote);
  REQUIRE(run_until(fx.io, [&] { return fx.sink.held() == 1; }));
  outcome out;
  REQUIRE(fx.queue->push(out.message(oml("IFO-3"))));
  run_for(fx.io, 50ms);
  CHECK(got.empty());  // the analyser waits for our ACK: nothing else comes first
  fx.sink.release(true);
  INFO(fx.log.joined());
  REQUIRE(run_until(fx.io, [&] { return !out.ends.empty(); }));
  REQUIRE(got.size() == 2);
  CHECK(hl7::check_response(got[0]).ack_code == "AA");
  CHECK(hl7::check_response(got[0]).acknowledged_id == "C-1");
  CHECK(got[1] == oml("IFO-3"));
  CHECK(out.ends[0].first);
}

TEST_CASE("mllp push: an AA whose ORC refuses an order ends the push as refused, not sent again",
          "[transport][mllp][push]") {
  mllp_fixture fx;
  fx.start();
  auto s = fx.connect();
  outcome out;
  REQUIRE(fx.queue->push(out.message(oml("IFO-6"))));
  std::vector<std::string> got;
  bool done = false;
  spawn(fx.io, hl7_analyser(s, got, 5, [](const std::string& m) {
          return "MSH|^~\\&|AN||interfaced||20260101120001||ORL^O34^ORL_O42|R1|P|2.5.1\rMSA|AA|" + control_id_of(m) +
                 "\rORC|UA|S-RR-1.1\r";
        }),
        done);
  INFO(fx.log.joined());
  REQUIRE(run_until(fx.io, [&] { return !out.ends.empty(); }));
  run_for(fx.io, 150ms);  // five retry waits: nothing is sent again
  CHECK(got.size() == 1);
  CHECK_FALSE(out.ends[0].first);
  CHECK(out.ends[0].second == "MSA-1 AA but the analyser refused order S-RR-1.1 (UA)");
}

TEST_CASE("mllp push: orders are addressed to the analyser (MSH-5/6 = its MSH-3/4) once it has spoken",
          "[transport][mllp][push]") {
  mllp_fixture fx;
  auto peer = std::make_shared<hl7_peer>();
  fx.cfg.peer = peer;
  fx.start();
  auto s = fx.connect();
  std::vector<std::string> got;
  bool done = false;
  spawn(fx.io, hl7_analyser(s, got, 3, [](const std::string& m) {
          return m.find("OML^O33") != std::string::npos ? orl(control_id_of(m), "AA") : std::string{};
        }),
        done);
  auto msh = [](const std::string& m, std::size_t n) {
    hl7::message parsed;
    if (hl7::parse_message(m, parsed)) return std::string("?");
    return std::string(parsed.msh().field(n).raw());
  };
  // Before the analyser has said anything: sent as built, MSH-5/6 empty.
  outcome first;
  REQUIRE(fx.queue->push(first.message(oml("IFO-4"))));
  INFO(fx.log.joined());
  REQUIRE(run_until(fx.io, [&] { return !first.ends.empty(); }));
  REQUIRE(got.size() == 1);
  CHECK(got[0] == oml("IFO-4"));
  // The analyser sends a result (MSH-3 AN, MSH-4 LAB): ACKed, and remembered.
  bool wrote = false;
  auto send_result = [&]() -> asio::awaitable<void> { co_await write_all(s, hl7::mllp_wrap(oul("C-2"))); };
  spawn(fx.io, send_result(), wrote);
  REQUIRE(run_until(fx.io, [&] { return got.size() == 2; }));
  CHECK(hl7::check_response(got[1]).ack_code == "AA");
  CHECK(peer->application == "AN");
  CHECK(peer->facility == "LAB");
  outcome second;
  REQUIRE(fx.queue->push(second.message(oml("IFO-5"))));
  REQUIRE(run_until(fx.io, [&] { return !second.ends.empty(); }));
  REQUIRE(got.size() == 3);
  CHECK(msh(got[2], 5) == "AN");
  CHECK(msh(got[2], 6) == "LAB");
  CHECK(msh(got[2], 10) == "IFO-5");  // the rest as built
  CHECK(second.ends[0].first);        // and the analyser's AA still matches it
}

TEST_CASE("push_queue: bounded, in order, put back first, one driver woken", "[transport][push]") {
  push_queue q(2);
  int woken = 0;
  const auto a = q.attach([&] { ++woken; });
  push_message m;
  m.text = "1";
  CHECK(q.push(m));
  m.text = "2";
  CHECK(q.push(m));
  m.text = "3";
  CHECK_FALSE(q.push(m));  // full: refused, not dropped silently
  CHECK(woken == 2);
  auto first = q.take();
  REQUIRE(first);
  CHECK(first->text == "1");
  q.put_back(std::move(*first));
  CHECK(woken == 3);  // put back: the driver is told too
  CHECK(q.take()->text == "1");
  const auto b = q.attach([&] { woken += 10; });  // a reconnect replaces the driver
  q.detach(a);                                    // the old one's late detach changes nothing
  CHECK(q.attached());
  m.text = "4";
  CHECK(q.push(m));
  CHECK(woken == 13);
  q.detach(b);
  CHECK_FALSE(q.attached());
  CHECK(q.take()->text == "2");
  CHECK(q.take()->text == "4");
  CHECK_FALSE(q.take());
}
