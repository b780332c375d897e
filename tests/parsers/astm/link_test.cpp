// E1381 (LIS1-A) link state machine, computer side. One test per rule, named after its clause.
// Time is an input: timers fire only when a test calls on_timeout().
#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

#include "astm_test_helpers.hpp"
#include "parsers/astm/builders.hpp"
#include "parsers/astm/link.hpp"
#include "support/files.hpp"

namespace a = interfaced::astm;
using a::event_kind;
using a::link_state;
using a::timer_id;
using kind = a::link_action::kind;
using interfaced::test::astm::decode_whole;
using interfaced::test::astm::of_kind;
using interfaced::test::astm::owned_event;
using interfaced::test::astm::sent_bytes;
using namespace std::chrono_literals;

namespace {

const std::string ENQ = "\x05";
const std::string ACK = "\x06";
const std::string NAK = "\x15";
const std::string EOT = "\x04";

// Drives a link like the transport driver will, mirroring its timers from the actions and
// checking the timer contract on every call: at most one timer, stop only for the running one.
struct harness {
  a::link l;
  std::optional<timer_id> mirror;
  a::link_actions log;

  explicit harness(a::link_options o = {}) : l(std::move(o)) {}

  a::link_actions apply(a::link_actions acts) {
    for (const auto& x : acts) {
      if (x.what == kind::start_timer) {
        if (mirror && *mirror != x.timer) FAIL("start_timer while another timer runs");
        mirror = x.timer;
      } else if (x.what == kind::stop_timer) {
        REQUIRE(mirror.has_value());
        REQUIRE(*mirror == x.timer);
        mirror.reset();
      }
    }
    REQUIRE(mirror == l.active_timer());
    if (l.state() == link_state::neutral) REQUIRE(l.queued() == 0);
    log.insert(log.end(), acts.begin(), acts.end());
    return acts;
  }
  a::link_actions event(event_kind k) {
    a::decode_event e;
    e.kind = k;
    return apply(l.on_event(e));
  }
  a::link_actions enq() { return event(event_kind::enq); }
  a::link_actions ack() { return event(event_kind::ack); }
  a::link_actions nak() { return event(event_kind::nak); }
  a::link_actions eot() { return event(event_kind::eot); }
  a::link_actions frame(int fn, std::string_view text, bool final) {
    a::decode_event e;
    e.kind = event_kind::frame;
    e.f.number = fn;
    e.f.text = text;
    e.f.final = final;
    return apply(l.on_event(e));
  }
  a::link_actions error(a::frame_error err, int hint) {
    a::decode_event e;
    e.kind = event_kind::error;
    e.error = make_error_code(err);
    e.frame_number_hint = hint;
    return apply(l.on_event(e));
  }
  a::link_actions timeout(timer_id t) {
    if (mirror == t) mirror.reset();  // the driver's timer fired
    return apply(l.on_timeout(t));
  }
  a::link_actions queue(std::string text, std::uint64_t* id = nullptr) {
    a::link_actions out;
    const auto got = l.queue_message(std::move(text), out);
    if (id != nullptr) *id = got;
    return apply(std::move(out));
  }
  a::link_actions confirm(bool ok) { return apply(l.confirm_delivery(ok)); }
  // ENQ accepted: the link is receiving.
  void open_session() {
    REQUIRE(sent_bytes(enq()) == ACK);
    REQUIRE(l.state() == link_state::receiving);
  }
};

bool starts(const a::link_actions& acts, timer_id t, std::chrono::milliseconds d) {
  for (const auto& x : acts) {
    if (x.what == kind::start_timer && x.timer == t && x.duration == d) return true;
  }
  return false;
}

bool stops(const a::link_actions& acts, timer_id t) {
  for (const auto& x : acts) {
    if (x.what == kind::stop_timer && x.timer == t) return true;
  }
  return false;
}

std::vector<std::string> delivered(const a::link_actions& acts) {
  std::vector<std::string> r;
  for (const auto& x : of_kind(acts, kind::deliver)) r.push_back(x.message);
  return r;
}

// The frames in bytes the link sent, decoded by our own decoder (checksums verified).
std::vector<owned_event> frames_in(const std::string& bytes) {
  std::vector<owned_event> r;
  for (auto& e : decode_whole(bytes)) {
    if (e.kind == event_kind::frame || e.kind == event_kind::error) r.push_back(e);
  }
  return r;
}

}  // namespace

// ---------------------------------------------------------------- receiver

TEST_CASE("LIS1-A 6.2.4: ENQ on a neutral line is ACKed and the 30 s receive timer starts") {
  harness h;
  const auto acts = h.enq();
  CHECK(sent_bytes(acts) == ACK);
  CHECK(starts(acts, timer_id::receive, 30s));
  CHECK(h.l.state() == link_state::receiving);
}

TEST_CASE("LIS1-A 6.2.6: a receiver that cannot take a message (set_busy) NAKs the ENQ") {
  harness h;
  h.l.set_busy(true);
  auto acts = h.enq();
  CHECK(sent_bytes(acts) == NAK);
  CHECK(h.l.state() == link_state::neutral);
  CHECK_FALSE(h.l.active_timer().has_value());
  h.l.set_busy(false);
  acts = h.enq();
  CHECK(sent_bytes(acts) == ACK);
}

TEST_CASE("LIS1-A 6.2.5: the receiver ignores everything but ENQ on a neutral line") {
  harness h;
  CHECK(h.ack().empty());
  CHECK(h.nak().empty());
  CHECK(h.eot().empty());
  CHECK(h.frame(1, "H|\\^&\r", true).empty());
  CHECK(h.error(a::frame_error::bad_checksum, 1).empty());
  CHECK(h.l.state() == link_state::neutral);
}

TEST_CASE("LIS1-A 6.5.1.1: a good frame is ACKed and the receive timer restarts") {
  harness h;
  h.open_session();
  const auto acts = h.frame(1, "H|\\^&\r", false);
  CHECK(sent_bytes(acts) == ACK);
  CHECK(starts(acts, timer_id::receive, 30s));
  CHECK(of_kind(acts, kind::deliver).empty());
}

TEST_CASE("LIS1-A 6.3.2: the first frame of a transfer phase must have FN 1") {
  harness h;
  h.open_session();
  for (int fn : {0, 2, 7}) {
    const auto acts = h.frame(fn, "H|\\^&\r", true);
    CHECK(sent_bytes(acts) == NAK);
    const auto rej = of_kind(acts, kind::frame_rejected);
    REQUIRE(rej.size() == 1);
    CHECK(rej[0].frame_number == fn);
    CHECK(rej[0].reason.find("expected 1") != std::string::npos);
  }
  const auto acts = h.frame(1, "H|\\^&\r", true);
  CHECK(sent_bytes(acts) == ACK);
  CHECK(delivered(acts) == std::vector<std::string>{"H|\\^&\r"});
}

TEST_CASE(
    "LIS1-A 6.5.1.1: a frame with a bad checksum is NAKed with frame_rejected carrying the "
    "reason") {
  harness h;
  h.open_session();
  const auto acts = h.error(a::frame_error::bad_checksum, 1);
  CHECK(sent_bytes(acts) == NAK);
  CHECK(starts(acts, timer_id::receive, 30s));  // 6.5.2: restarted after each reply
  const auto rej = of_kind(acts, kind::frame_rejected);
  REQUIRE(rej.size() == 1);
  CHECK(rej[0].reason == make_error_code(a::frame_error::bad_checksum).message());
  CHECK(rej[0].frame_number == 1);
  // the resent frame is then accepted with the same FN
  CHECK(sent_bytes(h.frame(1, "H|\\^&\r", true)) == ACK);
}

TEST_CASE("LIS1-A 6.5.1.1: character errors reported by the framer are NAKed") {
  for (auto e : {a::frame_error::checksum_not_hex, a::frame_error::bad_frame_number,
                 a::frame_error::frame_too_long, a::frame_error::restricted_character,
                 a::frame_error::interrupted}) {
    harness h;
    h.open_session();
    const auto acts = h.error(e, -1);
    CHECK(sent_bytes(acts) == NAK);
    const auto rej = of_kind(acts, kind::frame_rejected);
    REQUIRE(rej.size() == 1);
    CHECK(rej[0].reason == make_error_code(e).message());
    CHECK(h.l.state() == link_state::receiving);
  }
}

TEST_CASE("a rejected malformed frame carries the framer's error code, so checksum errors are counted exactly") {
  for (auto e : {a::frame_error::bad_checksum, a::frame_error::checksum_not_hex, a::frame_error::frame_too_long}) {
    harness h;
    h.open_session();
    const auto rej = of_kind(h.error(e, 3), kind::frame_rejected);
    REQUIRE(rej.size() == 1);
    CHECK(rej[0].error == make_error_code(e));
  }
  // A frame refused for its number, not its bytes, has no framer error.
  harness h;
  h.open_session();
  const auto rej = of_kind(h.frame(5, "H|\\^&\r", false), kind::frame_rejected);
  REQUIRE(rej.size() == 1);
  CHECK_FALSE(rej[0].error);
}

TEST_CASE("LIS1-A 6.5.1.1: FN neither the last accepted nor last + 1 (mod 8) is NAKed") {
  harness h;
  h.open_session();
  REQUIRE(sent_bytes(h.frame(1, "a", false)) == ACK);
  REQUIRE(sent_bytes(h.frame(2, "b", false)) == ACK);
  for (int fn : {0, 4, 5, 6, 7}) {
    const auto acts = h.frame(fn, "x", false);
    CHECK(sent_bytes(acts) == NAK);
    CHECK(of_kind(acts, kind::frame_rejected).size() == 1);
  }
  const auto acts = h.frame(3, "c", true);
  CHECK(sent_bytes(acts) == ACK);
  CHECK(delivered(acts) == std::vector<std::string>{"abc"});  // rejected frames left no trace
}

TEST_CASE("LIS1-A 6.5.1.1: duplicate frame (same FN as last accepted) is ACKed and ignored") {
  harness h;
  h.open_session();
  REQUIRE(sent_bytes(h.frame(1, "H|\\^&\r", false)) == ACK);
  const auto dup = h.frame(1, "H|\\^&\r", false);  // our ACK was lost; the sender repeated
  CHECK(sent_bytes(dup) == ACK);
  const auto d = of_kind(dup, kind::duplicate_frame);
  REQUIRE(d.size() == 1);
  CHECK(d[0].frame_number == 1);
  CHECK(starts(dup, timer_id::receive, 30s));
  CHECK(h.l.buffered_bytes() == 6);  // not appended twice
  const auto acts = h.frame(2, "L|1|N\r", true);
  CHECK(delivered(acts) == std::vector<std::string>{"H|\\^&\rL|1|N\r"});
  // a duplicate of the end frame is ACKed and not delivered again
  const auto dup_end = h.frame(2, "L|1|N\r", true);
  CHECK(sent_bytes(dup_end) == ACK);
  CHECK(of_kind(dup_end, kind::deliver).empty());
  CHECK(of_kind(dup_end, kind::duplicate_frame).size() == 1);
}

TEST_CASE("LIS1-A 6.3.2: frame numbers wrap from 7 to 0") {
  harness h;
  h.open_session();
  std::string expected;
  int fn = 1;
  for (int i = 0; i < 17; ++i) {
    const std::string text(1, static_cast<char>('a' + i));
    expected += text;
    const bool last = i == 16;
    const auto acts = h.frame(fn, text, last);
    INFO("frame " << i << " fn " << fn);
    REQUIRE(sent_bytes(acts) == ACK);
    if (last) CHECK(delivered(acts) == std::vector<std::string>{expected});
    fn = (fn + 1) % 8;
  }
}

TEST_CASE(
    "LIS1-A 6.3.1.2: ETB frame texts are joined raw (split inside a field), the ETX frame "
    "delivers") {
  harness h;
  h.open_session();
  CHECK(of_kind(h.frame(1, "H|\\^&|||H5", false), kind::deliver).empty());
  CHECK(of_kind(h.frame(2, "00^Horiba\rR|1|^^^W", false), kind::deliver).empty());
  const auto acts = h.frame(3, "BC|5.2\rL|1|N\r", true);
  CHECK(sent_bytes(acts) == ACK);
  CHECK(delivered(acts) ==
        std::vector<std::string>{"H|\\^&|||H500^Horiba\rR|1|^^^WBC|5.2\rL|1|N\r"});
  CHECK(h.l.buffered_bytes() == 0);
}

TEST_CASE("LIS1-A 6.3.1.1: several messages in one session are each delivered, FN continues") {
  harness h;
  h.open_session();
  CHECK(delivered(h.frame(1, "H|1\rL|1\r", true)) == std::vector<std::string>{"H|1\rL|1\r"});
  CHECK(delivered(h.frame(2, "H|2\r", false)).empty());
  CHECK(delivered(h.frame(3, "L|1\r", true)) == std::vector<std::string>{"H|2\rL|1\r"});
  CHECK(delivered(h.frame(4, "H|3\rL|1\r", true)) == std::vector<std::string>{"H|3\rL|1\r"});
  const auto end = h.eot();
  CHECK(of_kind(end, kind::discarded).empty());
  CHECK(h.l.state() == link_state::neutral);
}

TEST_CASE("LIS1-A 6.4: EOT returns the line to neutral, an incomplete message is discarded") {
  harness h;
  h.open_session();
  h.frame(1, "H|\\^&\r", false);
  const auto acts = h.eot();
  CHECK(sent_bytes(acts).empty());
  CHECK(stops(acts, timer_id::receive));
  CHECK(of_kind(acts, kind::discarded).size() == 1);
  CHECK(of_kind(acts, kind::deliver).empty());
  CHECK(h.l.state() == link_state::neutral);
  // a new session starts from FN 1 with an empty message
  h.open_session();
  CHECK(delivered(h.frame(1, "L|1|N\r", true)) == std::vector<std::string>{"L|1|N\r"});
}

TEST_CASE("LIS1-A 6.5.2: receive timeout (30 s) discards the incomplete message and goes neutral") {
  harness h;
  h.open_session();
  h.frame(1, "H|\\^&\r", false);
  const auto acts = h.timeout(timer_id::receive);
  CHECK(sent_bytes(acts).empty());
  CHECK(of_kind(acts, kind::discarded).size() == 1);
  CHECK(of_kind(acts, kind::discarded)[0].reason == "receive timeout");
  CHECK(h.l.state() == link_state::neutral);
  CHECK_FALSE(h.l.active_timer().has_value());
}

TEST_CASE("Empty ENQ..EOT session (Yumizen) delivers nothing and raises nothing") {
  harness h;
  h.open_session();
  const auto acts = h.eot();
  CHECK(acts.size() == 1);  // stop_timer(receive) only
  CHECK(stops(acts, timer_id::receive));
  CHECK(h.l.state() == link_state::neutral);
}

TEST_CASE("max_message_bytes: an over-long message is discarded and NAKed, never grown") {
  a::link_options o;
  o.max_message_bytes = 10;
  harness h(o);
  h.open_session();
  REQUIRE(sent_bytes(h.frame(1, "12345678", false)) == ACK);
  auto acts = h.frame(2, "abc", false);
  CHECK(sent_bytes(acts) == NAK);
  CHECK(of_kind(acts, kind::discarded).size() == 1);
  CHECK(of_kind(acts, kind::frame_rejected).size() == 1);
  CHECK(h.l.buffered_bytes() == 0);
  // The sender repeats the frame: still NAKed (a resend would deliver a message without its
  // start), so the sender gives up after 6 attempts and keeps the message.
  acts = h.frame(2, "abc", false);
  CHECK(sent_bytes(acts) == NAK);
  CHECK(of_kind(acts, kind::discarded).empty());
  CHECK(h.l.buffered_bytes() == 0);
  CHECK(of_kind(h.eot(), kind::discarded).empty());
  // the next session is unaffected; exactly max_message_bytes is fine
  h.open_session();
  h.frame(1, "12345", false);
  CHECK(delivered(h.frame(2, "67890", true)) == std::vector<std::string>{"1234567890"});
}

TEST_CASE(
    "Persist then ACK: with defer_final_ack the end frame's ACK waits for confirm_delivery(true)") {
  a::link_options o;
  o.defer_final_ack = true;
  harness h(o);
  h.open_session();
  CHECK(sent_bytes(h.frame(1, "H|\\^&\r", false)) == ACK);  // intermediate frames: ACK at once
  auto acts = h.frame(2, "L|1|N\r", true);
  CHECK(sent_bytes(acts).empty());
  CHECK(delivered(acts) == std::vector<std::string>{"H|\\^&\rL|1|N\r"});
  CHECK(stops(acts, timer_id::receive));
  CHECK(h.l.awaiting_confirmation());
  // nothing else is answered meanwhile
  CHECK(h.frame(2, "L|1|N\r", true).empty());
  CHECK(h.timeout(timer_id::receive).empty());
  acts = h.confirm(true);
  CHECK(sent_bytes(acts) == ACK);
  CHECK(starts(acts, timer_id::receive, 30s));
  CHECK_FALSE(h.l.awaiting_confirmation());
  CHECK(h.confirm(true).empty());  // nothing pending any more
  // next message in the same session continues from FN 3
  CHECK(delivered(h.frame(3, "H|2\rL|1\r", true)).size() == 1);
  CHECK(sent_bytes(h.confirm(true)) == ACK);
}

TEST_CASE(
    "Persist then ACK: confirm_delivery(false) NAKs, the resent end frame is delivered again "
    "whole") {
  a::link_options o;
  o.defer_final_ack = true;
  harness h(o);
  h.open_session();
  h.frame(1, "H|\\^&\r", false);
  h.frame(2, "R|1|", false);
  CHECK(delivered(h.frame(3, "^^^GLU|5\rL|1\r", true)).size() == 1);
  auto acts = h.confirm(false);
  CHECK(sent_bytes(acts) == NAK);
  CHECK(of_kind(acts, kind::frame_rejected).size() == 1);
  CHECK(of_kind(acts, kind::frame_rejected)[0].frame_number == 3);
  CHECK(starts(acts, timer_id::receive, 30s));
  // LIS1-A 6.5.1.2: the instrument resends only the NAKed frame, same FN
  acts = h.frame(3, "^^^GLU|5\rL|1\r", true);
  CHECK(delivered(acts) == std::vector<std::string>{"H|\\^&\rR|1|^^^GLU|5\rL|1\r"});
  CHECK(of_kind(acts, kind::duplicate_frame).empty());
  CHECK(sent_bytes(h.confirm(true)) == ACK);
}

TEST_CASE(
    "Persist then ACK: EOT while awaiting confirmation goes neutral, a late confirm does nothing") {
  a::link_options o;
  o.defer_final_ack = true;
  harness h(o);
  h.open_session();
  h.frame(1, "H|\\^&\rL|1\r", true);
  const auto acts = h.eot();  // the instrument's 15 s reply timer ran out
  CHECK(of_kind(acts, kind::discarded).empty());
  CHECK(h.l.state() == link_state::neutral);
  CHECK_FALSE(h.l.awaiting_confirmation());
  CHECK(h.confirm(true).empty());
}

TEST_CASE("defer_final_ack off (default): the end frame is ACKed at once, then delivered") {
  harness h;
  h.open_session();
  const auto acts = h.frame(1, "H|\\^&\rL|1\r", true);
  REQUIRE(acts.size() == 3);
  CHECK(acts[0].what == kind::send);
  CHECK(acts[0].bytes == ACK);
  CHECK(acts[1].what == kind::start_timer);
  CHECK(acts[2].what == kind::deliver);
  CHECK_FALSE(h.l.awaiting_confirmation());
  CHECK(h.confirm(true).empty());
}

TEST_CASE(
    "Replay leniency accept_frames_without_enq: a frame on a neutral line acts as after an "
    "accepted ENQ") {
  a::link_options o;
  o.accept_frames_without_enq = true;
  harness h(o);
  auto acts = h.frame(1, "H|\\^&\r", false);
  CHECK(sent_bytes(acts) == ACK);  // the frame's ACK; no ACK for the ENQ that never came
  CHECK(h.l.state() == link_state::receiving);
  CHECK(delivered(h.frame(2, "L|1|N\r", true)) == std::vector<std::string>{"H|\\^&\rL|1|N\r"});
  h.eot();
  // a broken first frame is NAKed the same way
  acts = h.error(a::frame_error::bad_checksum, 1);
  CHECK(sent_bytes(acts) == NAK);
  CHECK(h.l.state() == link_state::receiving);
  // a first frame with the wrong FN is rejected as after a real ENQ
  h.eot();
  CHECK(sent_bytes(h.frame(3, "x", true)) == NAK);
}

TEST_CASE("Replay leniency is off by default and does not apply when busy") {
  CHECK_FALSE(a::link_options{}.accept_frames_without_enq);
  a::link_options o;
  o.accept_frames_without_enq = true;
  harness h(o);
  h.l.set_busy(true);
  const auto acts = h.frame(1, "H|\\^&\r", true);
  CHECK(sent_bytes(acts) == NAK);
  CHECK(of_kind(acts, kind::deliver).empty());
  CHECK(h.l.state() == link_state::neutral);
}

TEST_CASE("LIS1-A 6.2.5: ACK and NAK received while receiving are ignored") {
  harness h;
  h.open_session();
  CHECK(h.ack().empty());
  CHECK(h.nak().empty());
  CHECK(h.l.state() == link_state::receiving);
}

TEST_CASE(
    "ENQ while receiving: the sender restarted establishment, drop the partial message, answer "
    "it") {
  harness h;
  h.open_session();
  h.frame(1, "H|\\^&\r", false);
  const auto acts = h.enq();
  CHECK(of_kind(acts, kind::discarded).size() == 1);
  CHECK(sent_bytes(acts) == ACK);
  CHECK(h.l.state() == link_state::receiving);
  CHECK(sent_bytes(h.frame(1, "H|\\^&\rL|1\r", true)) == ACK);  // FN starts at 1 again
}

// ---------------------------------------------------------------- sender

TEST_CASE(
    "LIS1-A 6.2.4: a message queued on a neutral line sends ENQ and starts the 15 s reply timer") {
  harness h;
  std::uint64_t id = 0;
  const auto acts = h.queue("H|\\^&\rL|1|N\r", &id);
  CHECK(id == 1);
  CHECK(sent_bytes(acts) == ENQ);
  CHECK(starts(acts, timer_id::reply, 15s));
  CHECK(h.l.state() == link_state::sending_enq);
  CHECK(h.l.queued() == 1);
}

TEST_CASE(
    "LIS1-A 6.2.5 / 6.3.1: ACK to ENQ sends the first frame, FN 1, one short message is one ETX "
    "frame") {
  harness h;
  h.queue("H|\\^&\rL|1|N\r");
  const auto acts = h.ack();
  CHECK(sent_bytes(acts) == a::encode_frame(1, "H|\\^&\rL|1|N\r", true));
  CHECK(starts(acts, timer_id::reply, 15s));
  CHECK(h.l.state() == link_state::sending);
}

TEST_CASE(
    "LIS1-A 6.3.1: a message is split into frames of at most frame_text_size (E1381-95: 240)") {
  a::link_options o;
  o.frame_text_size = 240;
  harness h(o);
  std::string msg;
  for (int i = 0; msg.size() < 600; ++i) msg += "R|" + std::to_string(i) + "|^^^WBC|5.2|10*3/uL\r";
  msg.resize(600);
  h.queue(msg);
  std::string all = sent_bytes(h.ack());
  all += sent_bytes(h.ack());
  all += sent_bytes(h.ack());
  const auto frames = frames_in(all);
  REQUIRE(frames.size() == 3);
  CHECK(frames[0].text.size() == 240);
  CHECK(frames[1].text.size() == 240);
  CHECK(frames[2].text.size() == 120);
  CHECK_FALSE(frames[0].final);
  CHECK_FALSE(frames[1].final);
  CHECK(frames[2].final);
  CHECK(frames[0].text + frames[1].text + frames[2].text == msg);
  CHECK(frames[0].number == 1);
  CHECK(frames[2].number == 3);
}

TEST_CASE("LIS1-A 6.3.1: default frame text size is 63,993 (64,000 with overhead)") {
  CHECK(a::link_options{}.frame_text_size == 63993);
  harness h;
  h.queue(std::string(63994, 'x'));
  const auto f1 = frames_in(sent_bytes(h.ack()));
  REQUIRE(f1.size() == 1);
  CHECK(f1[0].kind == event_kind::frame);  // our own decoder accepts a maximal frame
  CHECK(f1[0].text.size() == 63993);
  CHECK_FALSE(f1[0].final);
  const auto f2 = frames_in(sent_bytes(h.ack()));
  REQUIRE(f2.size() == 1);
  CHECK(f2[0].text == "x");
  CHECK(f2[0].final);
}

TEST_CASE("LIS1-A 6.3.2: sent frame numbers start at 1 and wrap from 7 to 0") {
  a::link_options o;
  o.frame_text_size = 1;
  harness h(o);
  h.queue("abcdefghij");
  std::string all;
  for (int i = 0; i < 10; ++i) all += sent_bytes(h.ack());
  const auto frames = frames_in(all);
  REQUIRE(frames.size() == 10);
  const std::vector<int> expected{1, 2, 3, 4, 5, 6, 7, 0, 1, 2};
  for (std::size_t i = 0; i < frames.size(); ++i) CHECK(frames[i].number == expected[i]);
}

TEST_CASE("LIS1-A 6.3.4: each ACKed frame is followed by the next, after the last EOT and sent") {
  a::link_options o;
  o.frame_text_size = 4;
  harness h(o);
  std::uint64_t id = 0;
  h.queue("H|1\rL|1\r", &id);
  h.ack();
  auto acts = h.ack();  // frame 1 accepted
  CHECK(frames_in(sent_bytes(acts)).size() == 1);
  CHECK(of_kind(acts, kind::sent).empty());
  acts = h.ack();  // frame 2 (end frame) accepted
  CHECK(sent_bytes(acts) == EOT);
  const auto sent = of_kind(acts, kind::sent);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].id == id);
  CHECK(stops(acts, timer_id::reply));
  CHECK(h.l.state() == link_state::neutral);
  CHECK(h.l.queued() == 0);
}

TEST_CASE("Messages are sent in queue order, one per ENQ..EOT session") {
  harness h;
  std::uint64_t id1 = 0;
  std::uint64_t id2 = 0;
  h.queue("first\r", &id1);
  auto acts = h.queue("second\r", &id2);
  CHECK(acts.empty());  // line busy with the first
  CHECK(id2 == id1 + 1);
  h.ack();
  acts = h.ack();
  CHECK(sent_bytes(acts) == EOT + ENQ);  // done, then at once the next establishment
  CHECK(of_kind(acts, kind::sent)[0].id == id1);
  acts = h.ack();
  CHECK(sent_bytes(acts) == a::encode_frame(1, "second\r", true));
}

TEST_CASE("LIS1-A 6.2.6: NAK to ENQ -> wait the 10 s busy timer, then ENQ again") {
  harness h;
  h.queue("H|\\^&\rL|1\r");
  auto acts = h.nak();
  CHECK(sent_bytes(acts).empty());
  CHECK(stops(acts, timer_id::reply));
  CHECK(starts(acts, timer_id::busy, 10s));
  CHECK(h.l.state() == link_state::waiting_after_nak);
  acts = h.timeout(timer_id::busy);
  CHECK(sent_bytes(acts) == ENQ);
  CHECK(starts(acts, timer_id::reply, 15s));
  CHECK(h.l.state() == link_state::sending_enq);
  CHECK(h.l.queued() == 1);
}

TEST_CASE(
    "LIS1-A 6.2.5: while waiting for the reply to ENQ, replies other than ACK/NAK/ENQ are "
    "ignored") {
  harness h;
  h.queue("x\r");
  CHECK(h.eot().empty());
  CHECK(h.frame(1, "x", true).empty());
  CHECK(h.error(a::frame_error::bad_checksum, 1).empty());
  CHECK(h.l.state() == link_state::sending_enq);
}

TEST_CASE(
    "LIS1-A 6.2.7.1: contention (ENQ answered by ENQ): computer stops, starts the 20 s timer, ACKs "
    "the next ENQ") {
  harness h;
  h.queue("H|host\rL|1\r");
  auto acts = h.enq();              // the instrument sent ENQ too: it has priority
  CHECK(sent_bytes(acts).empty());  // this ENQ is not answered
  CHECK(stops(acts, timer_id::reply));
  CHECK(starts(acts, timer_id::contention, 20s));
  CHECK(h.l.state() == link_state::contention);
  CHECK(h.ack().empty());  // nothing but ENQ matters now
  acts = h.enq();          // the instrument's next ENQ (>= 1 s later)
  CHECK(sent_bytes(acts) == ACK);
  CHECK(stops(acts, timer_id::contention));
  CHECK(starts(acts, timer_id::receive, 30s));
  CHECK(h.l.state() == link_state::receiving);
  CHECK(delivered(h.frame(1, "H|inst\rL|1\r", true)).size() == 1);
  // once the instrument is done the computer sends its own message
  acts = h.eot();
  CHECK(sent_bytes(acts) == ENQ);
  CHECK(h.l.state() == link_state::sending_enq);
  CHECK(h.l.queued() == 1);
}

TEST_CASE(
    "LIS1-A 6.2.7.1: contention while busy: the instrument's next ENQ is NAKed, then the computer "
    "may send") {
  harness h;
  h.queue("H|host\rL|1\r");
  h.enq();
  h.l.set_busy(true);
  const auto acts = h.enq();
  CHECK(sent_bytes(acts) == NAK + ENQ);
  CHECK(h.l.state() == link_state::sending_enq);
}

TEST_CASE(
    "LIS1-A 6.5.2.2: no ENQ within 20 s after contention -> line neutral, the computer retries") {
  harness h;
  h.queue("H|host\rL|1\r");
  h.enq();
  const auto acts = h.timeout(timer_id::contention);
  CHECK(sent_bytes(acts) == ENQ);
  CHECK(starts(acts, timer_id::reply, 15s));
  CHECK(h.l.state() == link_state::sending_enq);
}

TEST_CASE(
    "LIS1-A 6.2.7.1: instrument role keeps priority on contention: the computer's ENQ is ignored, "
    "ENQ again after 1 s") {
  a::link_options o;
  o.role = a::link_role::instrument;
  harness h(o);
  h.queue("H|inst\rL|1\r");
  auto acts = h.enq();  // the computer sent ENQ too: the instrument does not yield
  CHECK(sent_bytes(acts).empty());
  CHECK(stops(acts, timer_id::reply));
  CHECK(starts(acts, timer_id::contention, 1s));
  CHECK(h.l.state() == link_state::contention);
  CHECK(sent_bytes(h.enq()).empty());  // a repeated computer ENQ does not take the line either
  CHECK(h.l.state() == link_state::contention);
  acts = h.timeout(timer_id::contention);
  CHECK(sent_bytes(acts) == ENQ);
  CHECK(starts(acts, timer_id::reply, 15s));
  CHECK(h.l.state() == link_state::sending_enq);
  acts = h.ack();  // the computer, now receiver, acknowledges
  CHECK(frames_in(sent_bytes(acts)).size() == 1);
  CHECK(h.l.state() == link_state::sending);
}

TEST_CASE("link_options: the computer role is the default") {
  CHECK(a::link_options{}.role == a::link_role::computer);
}

TEST_CASE("LIS1-A 6.5.1.2: a NAKed frame is resent, same frame, same FN") {
  a::link_options o;
  o.frame_text_size = 3;
  harness h(o);
  h.queue("abcdef");
  h.ack();
  const auto first = h.ack();  // frame 2 "def"
  const auto again = h.nak();
  CHECK(sent_bytes(again) == sent_bytes(first));
  CHECK(frames_in(sent_bytes(again))[0].number == 2);
  CHECK(starts(again, timer_id::reply, 15s));
}

TEST_CASE("LIS1-A 6.5.1.2: any reply to a frame other than ACK or EOT counts as NAK") {
  harness h;
  h.queue("abc\r");
  const std::string frame = sent_bytes(h.ack());
  CHECK(sent_bytes(h.enq()) == frame);
  CHECK(sent_bytes(h.frame(1, "zz", true)) == frame);
  CHECK(sent_bytes(h.error(a::frame_error::bad_checksum, -1)) == frame);
  CHECK(h.l.state() == link_state::sending);
}

TEST_CASE("every refusal of our ENQ or frame is reported as a refused action (NAKs received)") {
  harness h;
  h.queue("abc\r");
  auto acts = h.nak();  // our ENQ refused: busy
  auto refused = of_kind(acts, kind::refused);
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].frame_number == -1);
  h.timeout(timer_id::busy);
  h.ack();                      // ENQ accepted, frame 1 sent
  acts = h.nak();               // frame 1 NAKed
  refused = of_kind(acts, kind::refused);
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].frame_number == 1);
  CHECK(of_kind(h.enq(), kind::refused).size() == 1);  // anything but ACK / EOT counts as NAK
  CHECK(of_kind(h.ack(), kind::refused).empty());      // accepted: nothing refused
}

TEST_CASE("LIS1-A 6.5.1.2: after 6 failed attempts: EOT, send_failed, message kept at the front") {
  a::link_options o;
  o.frame_text_size = 2;
  harness h(o);
  std::uint64_t id = 0;
  h.queue("abcd", &id);
  h.queue("second");
  h.ack();
  const std::string frame2 = sent_bytes(h.ack());  // frame 1 accepted; frame 2 attempt 1
  for (int attempt = 2; attempt <= 6; ++attempt) {
    INFO("attempt " << attempt);
    CHECK(sent_bytes(h.nak()) == frame2);
  }
  const auto acts = h.nak();  // the 6th attempt failed too
  CHECK(sent_bytes(acts) == EOT);
  const auto failed = of_kind(acts, kind::send_failed);
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].id == id);
  CHECK(failed[0].reason.find("6 attempts") != std::string::npos);
  CHECK(h.l.queued() == 2);
  CHECK(h.l.state() == link_state::waiting_retry);
  CHECK(starts(acts, timer_id::retry, 30s));
  // later: the whole message again, from frame 1 with FN 1
  CHECK(sent_bytes(h.timeout(timer_id::retry)) == ENQ);
  CHECK(sent_bytes(h.ack()) == a::encode_frame(1, "ab", false));
}

TEST_CASE("LIS1-A 6.5.2: no reply to a frame within 15 s -> EOT, send_failed, message kept") {
  harness h;
  std::uint64_t id = 0;
  h.queue("abc\r", &id);
  h.ack();
  const auto acts = h.timeout(timer_id::reply);
  CHECK(sent_bytes(acts) == EOT);
  REQUIRE(of_kind(acts, kind::send_failed).size() == 1);
  CHECK(of_kind(acts, kind::send_failed)[0].id == id);
  CHECK(h.l.queued() == 1);
  CHECK(h.l.state() == link_state::waiting_retry);
}

TEST_CASE(
    "LIS1-A 6.5.2: no reply to ENQ within 15 s -> EOT (termination), send_failed, message kept") {
  harness h;
  h.queue("abc\r");
  const auto acts = h.timeout(timer_id::reply);
  CHECK(sent_bytes(acts) == EOT);
  CHECK(of_kind(acts, kind::send_failed).size() == 1);
  CHECK(h.l.queued() == 1);
}

TEST_CASE(
    "LIS1-A 6.3.5: EOT in reply to an intermediate frame is a receiver interrupt: EOT, 15 s wait, "
    "whole message kept") {
  a::link_options o;
  o.frame_text_size = 2;
  harness h(o);
  std::uint64_t id = 0;
  h.queue("abcdef", &id);
  h.ack();
  h.ack();                    // frame 1 accepted, frame 2 sent
  const auto acts = h.eot();  // "received OK, please stop"
  CHECK(sent_bytes(acts) == EOT);
  CHECK(starts(acts, timer_id::interrupt, 15s));
  CHECK(h.l.state() == link_state::interrupted);
  // The receiver discards an incomplete message at EOT, so frames 1-2 do not count: the message
  // stays queued and is sent whole later.
  REQUIRE(of_kind(acts, kind::send_failed).size() == 1);
  CHECK(of_kind(acts, kind::sent).empty());
  CHECK(h.l.queued() == 1);
  CHECK(sent_bytes(h.timeout(timer_id::interrupt)) == ENQ);
  CHECK(sent_bytes(h.ack()) == a::encode_frame(1, "ab", false));
}

TEST_CASE(
    "LIS1-A 6.3.5: EOT in reply to the end frame: the message was received, it counts as sent") {
  harness h;
  std::uint64_t id = 0;
  h.queue("abc\r", &id);
  h.ack();
  const auto acts = h.eot();
  CHECK(sent_bytes(acts) == EOT);
  REQUIRE(of_kind(acts, kind::sent).size() == 1);
  CHECK(of_kind(acts, kind::sent)[0].id == id);
  CHECK(h.l.queued() == 0);
  CHECK(h.l.state() == link_state::interrupted);
  CHECK(h.timeout(timer_id::interrupt).empty());  // neutral, nothing to send
  CHECK(h.l.state() == link_state::neutral);
}

TEST_CASE(
    "LIS1-A 6.3.5: during the interrupt wait the instrument's ENQ is answered, we send after it") {
  a::link_options o;
  o.frame_text_size = 2;
  harness h(o);
  h.queue("abcd");
  h.ack();
  h.eot();
  auto acts = h.enq();
  CHECK(sent_bytes(acts) == ACK);
  CHECK(stops(acts, timer_id::interrupt));
  h.frame(1, "H|\rL|1\r", true);
  acts = h.eot();  // "or until the other side has sent"
  CHECK(sent_bytes(acts) == ENQ);
}

TEST_CASE("Messages queued while receiving are sent once the instrument's session ends") {
  harness h;
  h.open_session();
  auto acts = h.queue("H|host\rL|1\r");
  CHECK(acts.empty());
  h.frame(1, "H|\rL|1\r", true);
  acts = h.eot();
  CHECK(sent_bytes(acts) == ENQ);
}

TEST_CASE("Timers: a timeout for a timer that is not running is ignored (stale expiry)") {
  harness h;
  for (auto t : {timer_id::receive, timer_id::reply, timer_id::contention, timer_id::busy,
                 timer_id::interrupt, timer_id::retry}) {
    CHECK(h.l.on_timeout(t).empty());
  }
  h.open_session();
  CHECK(h.l.on_timeout(timer_id::reply).empty());
  CHECK(h.l.state() == link_state::receiving);
}

TEST_CASE("Timer durations come from link_options") {
  a::link_options o;
  o.receive_timeout = 1234ms;
  o.reply_timeout = 55ms;
  harness h(o);
  CHECK(starts(h.enq(), timer_id::receive, 1234ms));
  h.eot();
  CHECK(starts(h.queue("x"), timer_id::reply, 55ms));
}

// ---------------------------------------------------------------- captures

TEST_CASE(
    "captures: the link delivers the expected messages, delivered texts are the frame texts "
    "joined") {
  using interfaced::test::astm::raw_captures;
  using interfaced::test::astm::replay;
  for (const auto& c : raw_captures()) {
    const auto bytes = interfaced::test::capture(std::string("astm/") + c.file);
    if (!bytes) return;
    INFO(c.file);
    const auto events = decode_whole(*bytes);
    a::link_options o;
    o.accept_frames_without_enq = !c.has_enq_eot;  // only the instrument's frames were logged
    a::link l(o);
    const auto acts = replay(l, events);
    CHECK(of_kind(acts, kind::deliver).size() == c.accepted_end_frames);
    CHECK(of_kind(acts, kind::frame_rejected).size() == c.rejected);
    CHECK(of_kind(acts, kind::duplicate_frame).size() == c.duplicates);
    CHECK(of_kind(acts, kind::discarded).empty());
    if (c.rejected == 0 && c.duplicates == 0) {
      std::string frames_joined;
      for (const auto& e : events) {
        if (e.kind == event_kind::frame) frames_joined += e.text;
      }
      std::string delivered_joined;
      for (const auto& m : delivered(acts)) delivered_joined += m;
      CHECK(delivered_joined == frames_joined);
      // one ACK per frame, plus one for the ENQ
      CHECK(sent_bytes(acts) == std::string(c.frames + (c.has_enq_eot ? 1 : 0), '\x06'));
    }
    CHECK(l.state() == (c.has_enq_eot ? link_state::neutral : link_state::receiving));
  }
}

TEST_CASE(
    "Yumizen H500 raw session: 36 messages, the first starts with H|, the last holds the L "
    "record") {
  const auto bytes =
      interfaced::test::capture("astm/horiba-yumizen_h500-result-flags-histograms.astm");
  if (!bytes) return;
  a::link l;  // a real session: ENQ ... EOT, no leniency needed
  const auto msgs = delivered(interfaced::test::astm::replay(l, decode_whole(*bytes)));
  REQUIRE(msgs.size() == 36);
  CHECK(msgs.front().rfind("H|\\^&|||H500", 0) == 0);
  CHECK(msgs.back().rfind("L|1", 0) == 0);
  std::string joined;
  for (const auto& m : msgs) joined += m;
  CHECK(joined.rfind("H|", 0) == 0);
  CHECK(joined.find("\rL|1") != std::string::npos);
  for (const auto& m : msgs) CHECK(m.back() == '\r');  // every message ends a record
}

TEST_CASE("cobas c111: seven ETB-per-record frames are one message") {
  const auto bytes =
      interfaced::test::capture("astm/roche-cobas_c111-qc-result-etb-per-record.astm");
  if (!bytes) return;
  a::link_options o;
  o.accept_frames_without_enq = true;
  a::link l(o);
  const auto msgs = delivered(interfaced::test::astm::replay(l, decode_whole(*bytes)));
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].rfind("H|\\^&", 0) == 0);
  CHECK(msgs[0].find("\rL|1|N\r") != std::string::npos);
}

TEST_CASE(
    "escaped TaqMan session replayed through the link: 7 end frames, 7 messages, H first, L last") {
  const auto text =
      interfaced::test::capture("astm/roche-cobas_taqman_amplilink-result-escaped.txt");
  if (!text) return;
  a::link l;
  const auto acts =
      interfaced::test::astm::replay(l, decode_whole(interfaced::test::astm::unescape_hex(*text)));
  const auto msgs = delivered(acts);
  REQUIRE(msgs.size() == 7);
  CHECK(msgs.front().rfind("H|\\^&|||ALCZC12033KD", 0) == 0);
  CHECK(msgs.back() == "L|1|N\r");
  CHECK(l.state() == link_state::neutral);
}

// ---------------------------------------------------------------- order download (host pushes)

namespace {

// The order download the daemon builds for a rerun (parsers/astm/builders.hpp).
std::string pushed_order() {
  interfaced::order o;
  o.sample_id = "S-RR-1";
  o.patient_id = "PAT-1";
  o.tests = {{"HGB", ""}, {"PLT", ""}};
  o.action_code = "A";
  a::order_message_header h;
  h.timestamp = "20260101120000";
  return a::build_order_message({o}, h);
}

}  // namespace

TEST_CASE(
    "Order download, LIS1-A 6.2.7.1: on contention the host yields, takes the instrument's "
    "message, then bids again and sends H P O L") {
  harness h;
  std::uint64_t id = 0;
  auto acts = h.queue(pushed_order(), &id);
  CHECK(sent_bytes(acts) == ENQ);  // neutral line: the host bids at once
  acts = h.enq();                  // the analyser bid at the same time: it has priority
  CHECK(sent_bytes(acts).empty());
  CHECK(h.l.state() == link_state::contention);
  acts = h.enq();  // its ENQ again (>= 1 s later): answered
  CHECK(sent_bytes(acts) == ACK);
  const std::string result = "H|\\^&\rP|1\rO|1|S-9||^^^GLU\rR|1|^^^GLU|5.4\rL|1|N\r";
  CHECK(delivered(h.frame(1, result, true)) == std::vector<std::string>{result});
  CHECK(of_kind(h.log, kind::sent).empty());
  acts = h.eot();  // the analyser is done: the line is neutral, the order goes now
  CHECK(sent_bytes(acts) == ENQ);
  acts = h.ack();
  const auto frames = frames_in(sent_bytes(acts));
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].number == 1);
  CHECK(frames[0].final);
  CHECK(frames[0].text == pushed_order());
  CHECK(frames[0].text.find("O|1|S-RR-1||^^^HGB\\^^^PLT|R||||||A|") != std::string::npos);
  acts = h.ack();
  CHECK(sent_bytes(acts) == EOT);
  REQUIRE(of_kind(acts, kind::sent).size() == 1);
  CHECK(of_kind(acts, kind::sent)[0].id == id);
  CHECK(h.l.state() == link_state::neutral);
}

TEST_CASE("Order download: longer than the frame text size, it goes out in ETB frames") {
  a::link_options o;
  o.frame_text_size = 16;
  harness h(o);
  h.queue(pushed_order());
  std::string text;
  auto acts = h.ack();
  for (int guard = 0; guard < 64; ++guard) {
    const auto frames = frames_in(sent_bytes(acts));
    if (frames.empty()) break;
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].text.size() <= 16);
    text += frames[0].text;
    acts = h.ack();
  }
  CHECK(sent_bytes(acts) == EOT);
  CHECK(text == pushed_order());
}

TEST_CASE("withdraw(): a queued message is taken back, never the one being sent") {
  harness h;
  std::uint64_t first = 0, second = 0;
  h.queue(pushed_order(), &first);
  h.queue("H|\\^&\rL|1|N\r", &second);
  CHECK(h.l.state() == link_state::sending_enq);
  CHECK_FALSE(h.l.withdraw(first));  // its ENQ is out
  CHECK(h.l.withdraw(second));       // still waiting its turn
  CHECK_FALSE(h.l.withdraw(second));
  CHECK_FALSE(h.l.withdraw(999));
  CHECK(h.l.queued() == 1);
  h.ack();
  CHECK(h.l.state() == link_state::sending);
  CHECK_FALSE(h.l.withdraw(first));  // frames out: the protocol ends the transfer, not the caller
  for (int attempt = 2; attempt <= 6; ++attempt) h.nak();
  const auto acts = h.nak();  // 6 attempts: EOT, kept for a retry
  CHECK(sent_bytes(acts) == EOT);
  CHECK(h.l.state() == link_state::waiting_retry);
  CHECK(h.l.withdraw(first));  // the caller's bound ran out: taken back
  CHECK(h.l.queued() == 0);
  CHECK(sent_bytes(h.timeout(timer_id::retry)).empty());  // nothing left to bid for
  CHECK(h.l.state() == link_state::neutral);
}
