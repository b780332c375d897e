// The MLLP session over real loopback TCP: a peer coroutine writes MLLP bytes in chosen chunks and
// decodes the ACKs that come back with our own mllp_decoder.

#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "parsers/hl7/ack.hpp"
#include "parsers/hl7/mllp.hpp"
#include "transport/mllp_session.hpp"
#include "transport/tcp.hpp"
#include "transport_test_support.hpp"

using namespace interfaced;
using namespace interfaced::transport;
using namespace interfaced::transport::test;
using boost::asio::ip::tcp;

namespace {

std::string oul(const std::string& control_id, const std::string& sample, const std::string& value) {
  return "MSH|^~\\&|AN|LAB|HOST|H|20240101120000||OUL^R22^OUL_R22|" + control_id +
         "|P|2.5.1|||NE|AL||UNICODE UTF-8\r"
         "SPM|1|" + sample + "||SER\r"
         "OBR|1||" + sample + "|GLU^Glucose\r"
         "OBX|1|NM|GLU^Glucose||" + value + "|mmol/L|3.9-6.1|N|||F\r";
}

struct ack_seen {
  std::string code;  // MSA-1
  std::string id;    // MSA-2
  std::string text;  // the whole ACK
};

// Writes the chunks in order, then reads until `expect` ACKs arrived (or the peer closed).
asio::awaitable<void> peer(tcp::socket& s, std::vector<std::string> chunks, std::size_t expect,
                           std::vector<ack_seen>& acks) {
  for (const auto& c : chunks) {
    if (!co_await write_all(s, c)) co_return;
  }
  mllp_reader in(s);
  while (acks.size() < expect) {
    const auto message = co_await in.next();
    if (!message) co_return;
    const auto rep = hl7::check_response(*message);
    acks.push_back({std::string(rep.ack_code), std::string(rep.acknowledged_id), *message});
  }
}

struct mllp_tcp : session_fixture<mllp_session_config, &run_mllp_session<tcp::socket>> {
  mllp_tcp() {
    cfg.device = "TEST-HL7";
    cfg.timestamp = [] { return std::string("20240101120001"); };
  }
  std::vector<ack_seen> exchange(std::vector<std::string> chunks, std::size_t expect) {
    auto s = connect();
    std::vector<ack_seen> acks;
    bool done = false;
    spawn(io, peer(s, std::move(chunks), expect, acks), done);
    INFO(log.joined());
    REQUIRE(run_until(io, [&] { return done; }));
    return acks;
  }
};

}  // namespace

TEST_CASE("mllp tcp: several messages in one write, one AA each, in order", "[transport][mllp]") {
  mllp_tcp fx;
  fx.start();
  const std::string all = hl7::mllp_wrap(oul("C1", "S1", "5.1")) + hl7::mllp_wrap(oul("C2", "S2", "5.2")) +
                          hl7::mllp_wrap(oul("C3", "S3", "5.3"));
  const auto acks = fx.exchange({all}, 3);
  REQUIRE(acks.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(acks[i].code == "AA");
    CHECK(acks[i].id == "C" + std::to_string(i + 1));
  }
  REQUIRE(fx.sink.received().size() == 3);
  const auto& d = fx.sink.received()[1];
  CHECK(d.device == "TEST-HL7");
  CHECK(d.protocol == protocol::hl7);
  CHECK(d.control_id == "C2");
  CHECK(d.message_type == "OUL^R22");
  CHECK(d.raw == oul("C2", "S2", "5.2"));
  REQUIRE(d.results.size() == 1);
  CHECK(d.results[0].sample_id == "S2");
  CHECK(d.results[0].code == "GLU");
  CHECK(d.results[0].value == "5.2");
}

TEST_CASE("mllp tcp: one message split over many writes and reads", "[transport][mllp]") {
  mllp_tcp fx;
  fx.cfg.read_size = 7;  // every read ends somewhere inside the message
  fx.start();
  const std::string wire = hl7::mllp_wrap(oul("SPLIT", "S9", "9.9"));
  std::vector<std::string> chunks;
  for (std::size_t i = 0; i < wire.size(); i += 5) chunks.push_back(wire.substr(i, 5));
  const auto acks = fx.exchange(chunks, 1);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].code == "AA");
  CHECK(acks[0].id == "SPLIT");
  REQUIRE(fx.sink.received().size() == 1);
  CHECK(fx.sink.received()[0].raw == oul("SPLIT", "S9", "9.9"));
}

TEST_CASE("mllp tcp: garbage between frames is skipped and logged", "[transport][mllp]") {
  mllp_tcp fx;
  fx.start();
  const std::string wire = "noise\r\n" + hl7::mllp_wrap(oul("G1", "S1", "1")) + "\x1c junk \x0d" +
                           hl7::mllp_wrap(oul("G2", "S2", "2"));
  const auto acks = fx.exchange({wire}, 2);
  REQUIRE(acks.size() == 2);
  CHECK(acks[0].code == "AA");
  CHECK(acks[1].code == "AA");
  CHECK(acks[1].id == "G2");
  CHECK(fx.sink.received().size() == 2);
  CHECK(fx.log.contains("skipped"));
}

TEST_CASE("mllp tcp: an oversized message is refused AR with its MSH-10 and not stored, the next one gets AA",
          "[transport][mllp]") {
  mllp_tcp fx;
  fx.cfg.mllp.max_message = 300;
  fx.start();
  std::string big = oul("BIG", "S1", "1");
  big += "NTE|1||" + std::string(1000, 'x') + "\r";
  const std::string wire = hl7::mllp_wrap(big) + hl7::mllp_wrap(oul("OK1", "S2", "2"));
  const auto acks = fx.exchange({wire}, 2);
  REQUIRE(acks.size() == 2);
  CHECK(acks[0].code == "AR");  // an analyser must hear why, not wait for an ACK that never comes
  CHECK(acks[0].id == "BIG");
  CHECK(acks[1].code == "AA");
  CHECK(acks[1].id == "OK1");
  REQUIRE(fx.sink.received().size() == 1);
  CHECK(fx.sink.received()[0].control_id == "OK1");
  CHECK(fx.log.contains("refused (AR)"));
}

TEST_CASE("mllp tcp: AE for a wrong message, AE when not stored, AR when the outbox is full",
          "[transport][mllp]") {
  SECTION("missing MSH-10") {
    mllp_tcp fx;
    fx.start();
    const std::string no_id = "MSH|^~\\&|AN|LAB|HOST|H|20240101120000||OUL^R22^OUL_R22||P|2.5.1\rSPM|1|S1\r";
    const auto acks = fx.exchange({hl7::mllp_wrap(no_id)}, 1);
    REQUIRE(acks.size() == 1);
    CHECK(acks[0].code == "AE");
    CHECK(fx.sink.received().empty());
  }
  SECTION("unsupported message type") {
    mllp_tcp fx;
    fx.start();
    const std::string adt = "MSH|^~\\&|AN|LAB|HOST|H|20240101120000||ADT^A01|X7|P|2.5.1\rPID|1\r";
    const auto acks = fx.exchange({hl7::mllp_wrap(adt)}, 1);
    REQUIRE(acks.size() == 1);
    CHECK(acks[0].code == "AE");
    CHECK(acks[0].id == "X7");
    CHECK(acks[0].text.find("200") != std::string::npos);
  }
  SECTION("the outbox could not store it") {
    mllp_tcp fx;
    fx.sink.durable_answer = false;
    fx.start();
    const auto acks = fx.exchange({hl7::mllp_wrap(oul("F1", "S1", "1"))}, 1);
    REQUIRE(acks.size() == 1);
    CHECK(acks[0].code == "AE");
    CHECK(acks[0].id == "F1");
  }
  SECTION("outbox full") {
    mllp_tcp fx;
    fx.sink.accepting_flag = false;
    fx.start();
    const auto acks = fx.exchange({hl7::mllp_wrap(oul("R1", "S1", "1"))}, 1);
    REQUIRE(acks.size() == 1);
    CHECK(acks[0].code == "AR");
    CHECK(acks[0].id == "R1");
    CHECK(fx.sink.received().empty());
  }
  SECTION("AA waits for durable") {
    mllp_tcp fx;
    fx.sink.auto_confirm = false;
    fx.start();
    auto s = fx.connect();
    std::vector<ack_seen> acks;
    bool done = false;
    spawn(fx.io, peer(s, {hl7::mllp_wrap(oul("D1", "S1", "1"))}, 1, acks), done);
    REQUIRE(run_until(fx.io, [&] { return fx.sink.held() == 1; }));
    run_for(fx.io, 50ms);
    CHECK(acks.empty());
    fx.sink.release(true);
    REQUIRE(run_until(fx.io, [&] { return done; }));
    REQUIRE(acks.size() == 1);
    CHECK(acks[0].code == "AA");
  }
}
