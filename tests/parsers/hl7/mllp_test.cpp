#include <catch2/catch.hpp>

#include <string>

#include "hl7_test_helpers.hpp"
#include "parsers/hl7/mllp.hpp"
#include "support/files.hpp"

using namespace interfaced::hl7;
using interfaced::hl7::test::owned_event;

namespace {

const std::string msg1 = "MSH|^~\\&|A|B|C|D|20230101||ORU^R01|1|P|2.3.1\rOBX|1|NM|GLU||5.5\r";
const std::string msg2 = "MSH|^~\\&|A|B|C|D|20230101||ORU^R01|2|P|2.3.1\r";
const std::string msg3 = "MSH|^~\\&|A|B|C|D|20230101||QBP^Q11|3|P|2.5.1\rQPD|WOS|t|S1\r";

owned_event message_event(std::string text, std::uint64_t offset, bool missing_cr = false) {
  owned_event e;
  e.kind = mllp_event_kind::message;
  e.length = text.size();
  e.message = std::move(text);
  e.offset = offset;
  e.missing_trailer_cr = missing_cr;
  return e;
}

owned_event skipped_event(std::uint64_t offset, std::uint64_t length) {
  owned_event e;
  e.kind = mllp_event_kind::skipped;
  e.error = mllp_error::garbage_skipped;
  e.offset = offset;
  e.length = length;
  return e;
}

owned_event error_event(mllp_error err, std::uint64_t offset, std::uint64_t length, std::string head = {}) {
  owned_event e;
  e.message = std::move(head);
  e.kind = mllp_event_kind::error;
  e.error = err;
  e.offset = offset;
  e.length = length;
  return e;
}

// A stream with everything the decoder must survive, and the events it must produce, written by
// hand from the framing rules (offsets counted from the pieces).
struct scenario {
  std::string bytes;
  std::vector<owned_event> expected;
};

scenario mixed_stream() {
  scenario s;
  s.bytes += "junk";  // 0..3: skipped, reported when the 0x0B at 4 arrives
  s.expected.push_back(skipped_event(0, 4));
  const std::uint64_t m1 = s.bytes.size();
  s.bytes += mllp_wrap(msg1);
  s.expected.push_back(message_event(msg1, m1));
  s.bytes += "\r\n";  // newline after a frame: tolerated silently
  const std::uint64_t m2 = s.bytes.size();
  s.bytes += mllp_wrap(msg2);
  s.expected.push_back(message_event(msg2, m2));
  const std::uint64_t g2 = s.bytes.size();
  s.bytes += "\x1C\r garbage \n";
  s.expected.push_back(skipped_event(g2, 12));
  const std::uint64_t m3 = s.bytes.size();
  s.bytes += mllp_wrap(msg3);
  s.expected.push_back(message_event(msg3, m3));
  const std::uint64_t t = s.bytes.size();
  s.bytes += "\x0BMSH|partial";  // truncated by the end of the stream
  s.expected.push_back(error_event(mllp_error::truncated, t, 11));
  return s;
}

}  // namespace

TEST_CASE("mllp: one message in one read is a view into the read", "[hl7][mllp]") {
  const std::string wire = mllp_wrap(msg1);
  REQUIRE(wire.size() == msg1.size() + 3);
  CHECK(wire.front() == '\x0B');
  CHECK(wire.substr(wire.size() - 2) == "\x1C\r");
  mllp_decoder d;
  const auto r = d.put(wire);
  REQUIRE(r.event.kind == mllp_event_kind::message);
  CHECK(r.consumed == wire.size());
  CHECK(r.event.message == msg1);
  CHECK(r.event.message.data() == wire.data() + 1);  // zero copy
  CHECK(r.event.offset == 0);
  CHECK(!r.event.missing_trailer_cr);
  CHECK(d.offset() == wire.size());
  CHECK(!d.in_message());
  CHECK(d.put({}).event.kind == mllp_event_kind::none);
}

TEST_CASE("mllp: several messages in one read come one per call", "[hl7][mllp]") {
  const std::string wire = mllp_wrap(msg1) + mllp_wrap(msg2) + mllp_wrap(msg3);
  mllp_decoder d;
  std::string_view rest = wire;
  std::vector<std::string> got;
  while (!rest.empty()) {
    const auto r = d.put(rest);
    REQUIRE(r.event.kind == mllp_event_kind::message);
    got.emplace_back(r.event.message);
    rest.remove_prefix(r.consumed);
  }
  CHECK(got == std::vector<std::string>{msg1, msg2, msg3});
}

TEST_CASE("mllp: mixed stream gives the expected events", "[hl7][mllp]") {
  const scenario s = mixed_stream();
  CHECK(test::decode_all(s.bytes) == s.expected);
}

TEST_CASE("mllp: split at every offset gives the same events", "[hl7][mllp]") {
  const scenario s = mixed_stream();
  for (std::size_t cut = 0; cut <= s.bytes.size(); ++cut) {
    mllp_decoder d;
    std::vector<owned_event> got;
    test::feed(d, std::string_view(s.bytes).substr(0, cut), got);
    test::feed(d, std::string_view(s.bytes).substr(cut), got);
    test::finish(d, got);
    INFO("cut at " << cut);
    REQUIRE(got == s.expected);
  }
}

TEST_CASE("mllp: split at every pair of offsets gives the same events", "[hl7][mllp]") {
  const scenario s = mixed_stream();
  const std::string_view b = s.bytes;
  for (std::size_t i = 0; i <= b.size(); i += 3) {
    for (std::size_t j = i; j <= b.size(); j += 5) {
      mllp_decoder d;
      std::vector<owned_event> got;
      test::feed(d, b.substr(0, i), got);
      test::feed(d, b.substr(i, j - i), got);
      test::feed(d, b.substr(j), got);
      test::finish(d, got);
      INFO("cuts at " << i << ", " << j);
      REQUIRE(got == s.expected);
    }
  }
}

TEST_CASE("mllp: byte at a time gives the same events", "[hl7][mllp]") {
  const scenario s = mixed_stream();
  mllp_decoder d;
  std::vector<owned_event> got;
  for (char c : s.bytes) test::feed(d, std::string_view(&c, 1), got);
  test::finish(d, got);
  CHECK(got == s.expected);
}

TEST_CASE("mllp: garbage of only CR/LF between frames is not reported", "[hl7][mllp]") {
  const std::string wire = "\r\n\n" + mllp_wrap(msg1) + "\n" + mllp_wrap(msg2) + "\r\n";
  const auto events = test::decode_all(wire);
  REQUIRE(events.size() == 2);
  CHECK(events[0] == message_event(msg1, 3));
  CHECK(events[1].message == msg2);
}

TEST_CASE("mllp: trailing garbage is reported by finish()", "[hl7][mllp]") {
  const std::string wire = mllp_wrap(msg1) + "xyz";
  const auto events = test::decode_all(wire);
  REQUIRE(events.size() == 2);
  CHECK(events[1] == skipped_event(wire.size() - 3, 3));
}

TEST_CASE("mllp: oversized message is an error, the decoder recovers", "[hl7][mllp]") {
  mllp_options o;
  o.max_message = 40;
  const std::string big(100, 'x');
  const std::string wire = mllp_wrap(big) + mllp_wrap(msg2.substr(0, 40)) + mllp_wrap(big) +
                           "\x0B" + std::string(60, 'y') + mllp_wrap(msg1.substr(0, 10));
  std::vector<owned_event> expected;
  // The error carries the message's first max_message + 1 bytes up to its first CR (its MSH).
  expected.push_back(error_event(mllp_error::message_too_long, 0, 41, std::string(41, 'x')));
  expected.push_back(message_event(msg2.substr(0, 40), 103));
  expected.push_back(error_event(mllp_error::message_too_long, 146, 41, std::string(41, 'x')));
  // No 0x1C: the next 0x0B ends the discarding, it is not reported again.
  expected.push_back(error_event(mllp_error::message_too_long, 249, 41, std::string(41, 'y')));
  expected.push_back(message_event(msg1.substr(0, 10), 310));
  CHECK(test::decode_all(wire, o) == expected);
  // Same events whatever the chunking.
  for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
    mllp_decoder d(o);
    std::vector<owned_event> got;
    test::feed(d, std::string_view(wire).substr(0, cut), got);
    test::feed(d, std::string_view(wire).substr(cut), got);
    test::finish(d, got);
    INFO("cut at " << cut);
    REQUIRE(got == expected);
  }
  // Exactly max_message bytes is fine.
  const auto ok = test::decode_all(mllp_wrap(std::string(40, 'z')), o);
  REQUIRE(ok.size() == 1);
  CHECK(ok[0].kind == mllp_event_kind::message);
}

TEST_CASE("mllp: an oversized message's error carries its MSH segment, whatever the chunking", "[hl7][mllp]") {
  mllp_options o;
  o.max_message = 200;
  const std::string msh = "MSH|^~\\&|BC-5380|Mindray|||20261206||ORU^R01|CTRL-9|P|2.3.1";
  const std::string wire = mllp_wrap(msh + "\r" + std::string(500, 'o'));
  for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
    mllp_decoder d(o);
    std::vector<owned_event> got;
    test::feed(d, std::string_view(wire).substr(0, cut), got);
    test::feed(d, std::string_view(wire).substr(cut), got);
    test::finish(d, got);
    INFO("cut at " << cut);
    REQUIRE(got.size() == 1);
    CHECK(got[0].error == mllp_error::message_too_long);
    CHECK(got[0].message == msh);
  }
}

TEST_CASE("mllp: a stream of an endless message stays an error, not growth", "[hl7][mllp]") {
  mllp_options o;
  o.max_message = 1000;
  mllp_decoder d(o);
  std::vector<owned_event> got;
  test::feed(d, "\x0B", got);
  const std::string chunk(4096, 'a');
  for (int i = 0; i < 256; ++i) test::feed(d, chunk, got);  // 1 MiB
  REQUIRE(got.size() == 1);
  CHECK(got[0].error == mllp_error::message_too_long);
  test::feed(d, mllp_wrap(msg2), got);
  REQUIRE(got.size() == 2);
  CHECK(got[1].message == msg2);
}

TEST_CASE("mllp: 0x0B inside a message reports the partial one and resyncs", "[hl7][mllp]") {
  const std::string wire = "\x0BMSH|half" + mllp_wrap(msg1);
  std::vector<owned_event> expected{error_event(mllp_error::interrupted, 0, 8),
                                    message_event(msg1, 9)};
  CHECK(test::decode_all(wire) == expected);
}

TEST_CASE("mllp: 0x1C without 0x0D is lenient by default, an error when strict", "[hl7][mllp]") {
  const std::string wire = "\x0B" + msg1 + "\x1C" + mllp_wrap(msg2);
  {
    std::vector<owned_event> expected{message_event(msg1, 0, true),
                                      message_event(msg2, msg1.size() + 2)};
    CHECK(test::decode_all(wire) == expected);
  }
  {
    mllp_options o;
    o.strict_trailer = true;
    std::vector<owned_event> expected{error_event(mllp_error::bad_trailer, 0, msg1.size()),
                                      message_event(msg2, msg1.size() + 2)};
    CHECK(test::decode_all(wire, o) == expected);
  }
  // At the very end of the stream.
  const auto end = test::decode_all("\x0B" + msg2 + "\x1C");
  REQUIRE(end.size() == 1);
  CHECK(end[0] == message_event(msg2, 0, true));
}

TEST_CASE("mllp: reset() forgets a partial message and the offset", "[hl7][mllp]") {
  mllp_decoder d;
  std::vector<owned_event> got;
  test::feed(d, "\x0BMSH|abc", got);
  CHECK(d.in_message());
  d.reset();
  CHECK(d.offset() == 0);
  test::feed(d, mllp_wrap(msg2), got);
  REQUIRE(got.size() == 1);
  CHECK(got[0] == message_event(msg2, 0));
}

TEST_CASE("mllp: error category names every error", "[hl7][mllp]") {
  CHECK(std::string(mllp_category().name()) == "hl7.mllp");
  for (int e = 0; e <= static_cast<int>(mllp_error::truncated); ++e) {
    CHECK(!make_error_code(static_cast<mllp_error>(e)).message().empty());
  }
  std::error_code ec = mllp_error::message_too_long;
  CHECK(ec.category() == mllp_category());
}

TEST_CASE("mllp capture: cobas pure OUL^R22 arriving as five TCP reads", "[hl7][mllp][capture]") {
  const auto log = interfaced::test::capture("hl7/roche-cobaspure-comm-session-log.txt");
  const auto oul = interfaced::test::capture("hl7/roche-cobaspure-oul-r22-lab29-mllp.hl7");
  const auto esu = interfaced::test::capture("hl7/roche-cobaspure-esu-u01-status-mllp.hl7");
  if (!log || !oul || !esu) return;
  // `===>"..."` lines are the analyser's reads, in order (SOURCES.md §1).
  const auto reads = test::go_quoted_lines(*log, "===>");
  REQUIRE(reads.size() == 6);
  CHECK(reads[0].size() == 2048);
  CHECK(reads[4].size() == 1197);
  std::string joined;
  for (int i = 0; i < 5; ++i) joined += reads[static_cast<std::size_t>(i)];
  CHECK(joined == *oul);  // the .hl7 file is the concatenation of the five reads
  CHECK(reads[5] == *esu);

  mllp_decoder d;
  std::vector<owned_event> got;
  for (std::size_t i = 0; i < reads.size(); ++i) {
    test::feed(d, reads[i], got);
    // The message is complete only after the fifth read.
    CHECK(got.size() == (i < 4 ? 0u : i - 3));
  }
  test::finish(d, got);
  REQUIRE(got.size() == 2);
  CHECK(got[0].kind == mllp_event_kind::message);
  CHECK(got[0].offset == 0);
  CHECK(got[0].message.size() == 9389 - 3);
  CHECK(got[0].message.substr(0, 8) == "MSH|^~\\&");
  CHECK(got[0].message.back() == '\r');
  CHECK(got[1].offset == 9389);
  CHECK(got[1].message.find("ESU^U01^ESU_U01") != std::string::npos);

  // The host's replies (`<----` lines) are framed too.
  const auto replies = test::go_quoted_lines(*log, "<---- ");
  REQUIRE(replies.size() == 2);
  const auto ack = test::decode_all(replies[0]);
  REQUIRE(ack.size() == 1);
  CHECK(ack[0].message.find("ACK^U05^ACK") != std::string::npos);
  CHECK(ack[0].message.back() == '3');  // "MSA|AA|3" then 0x1C: no CR ending the segment
}

TEST_CASE("mllp capture: every framed capture decodes at every split", "[hl7][mllp][capture]") {
  for (const char* name :
       {"roche-cobaspure-oul-r22-lab29-mllp.hl7", "roche-cobaspure-esu-u01-status-mllp.hl7",
        "roche-cobaspure-host-ack-to-oul-r22-mllp.hl7", "roche-cobaspure-host-ack-u01-mllp.hl7"}) {
    const auto bytes = interfaced::test::capture(std::string("hl7/") + name);
    if (!bytes) return;
    INFO(name);
    const auto whole = test::decode_all(*bytes);
    REQUIRE(whole.size() == 1);
    REQUIRE(whole[0].kind == mllp_event_kind::message);
    CHECK(whole[0].message == test::unframe(*bytes));
    const std::size_t step = bytes->size() > 2000 ? 7 : 1;
    for (std::size_t cut = 0; cut <= bytes->size(); cut += step) {
      mllp_decoder d;
      std::vector<owned_event> got;
      test::feed(d, std::string_view(*bytes).substr(0, cut), got);
      test::feed(d, std::string_view(*bytes).substr(cut), got);
      test::finish(d, got);
      REQUIRE(got == whole);
    }
  }
}

TEST_CASE("mllp: memory held for a message spanning reads is counted while it lasts and given back after",
          "[hl7][mllp]") {
  mllp_decoder d;
  CHECK(d.buffered_bytes() == 0);
  const std::string body = "MSH|^~\\&|A|B|C|D|20230101||ORU^R01|9|P|2.5\rOBX|1|ED|IMG||" + std::string(200000, 'A') + "\r";
  auto r = d.put("\x0b" + body.substr(0, 100000));
  CHECK(r.event.kind == mllp_event_kind::none);
  CHECK(d.buffered_bytes() >= 100000);  // what the unfinished message costs
  const std::string rest = body.substr(100000) + "\x1c\r";
  r = d.put(rest);
  REQUIRE(r.event.kind == mllp_event_kind::message);
  CHECK(r.event.message == body);  // the view is valid until the next call
  CHECK(d.buffered_bytes() == 0);
  (void)d.put(std::string_view(rest).substr(r.consumed));
  (void)d.put("\r");  // idle: the large buffer of the last message is released
  auto small = d.put("\x0b" + msg2.substr(0, 10));
  CHECK(small.event.kind == mllp_event_kind::none);
  CHECK(d.buffered_bytes() < 64 * 1024);
}
