// The stored form of outbox bodies (transport/body_codec.hpp, outbox schema 13): every body comes
// back byte for byte, a damaged packed form is refused, and a results body is stored smaller.

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "transport/body_codec.hpp"

using interfaced::transport::is_packed_body;
using interfaced::transport::pack_body;
using interfaced::transport::unpack_body;

namespace {

// A results body as ingest writes one (compact JSON, a member list per result).
std::string results_body(int results, int seed) {
  std::string b = R"({"batch_id":"tp02-1-)" + std::to_string(seed) +
                  R"(","device_id":"tp02","received_at":"2026-12-07T07:48:43.510+00:00","results":[)";
  for (int i = 0; i < results; ++i) {
    if (i) b += ',';
    b += R"({"flags":[],"instrument_code":"P)" + std::to_string(i) +
         R"(","is_rerun":false,"machine_triggered_rerun":false,"observed_at":"2026-11-23T07:56:00+00:00","parameter":"P)" +
         std::to_string(i) + R"(","raw":"","reference_range":"","rerun_number":0,"sample_id":"TP02-)" + std::to_string(seed) +
         R"(","status":"","unit":"mmol/L","value":")" + std::to_string(i * 7 % 13) + R"(.1"})";
  }
  return b + "]}";
}

// results_body(2, 2) as schemas 13 to 16 stored it: 0x00, its size (608) as a varint, then one raw
// deflate stream without a dictionary (written once with Python's zlib: level 6, window 12, memLevel 5).
std::string stored_before_17() {
  static const char* hex =
    "00e004bd90bb6ec3300c45ff856bed54725e85bea143866c4520d036ed089064430f7708f2efa5d2a645bb74cb465d91"
    "bce7f2022da6eeac4d0f0ad22c9a5ad60d54d0d3623afa91590ad49159a8d798586c44b3ab65538bfd51ecd5e6456dd6"
    "abad144f4228216edd31db1441bd5d60b03896ea5481f13185ecc827dd4d3df1a243e93651070ad9831ad046aac06177"
    "369e740a661c29b0ebefffa98d14fec030f9bac06c778cf00d3263404789c2dd2be03b9737c481377b8e19d08f7417d9"
    "46fbecda32212a88e866fb7589e3810f546e1113a61c3f27b23785c1b9c93ebff27b419bcb32b19270adfe4b2f1f985e"
    "3e30fdbea43f5d3f00";
  std::string out;
  for (const char* p = hex; p[0] != '\0' && p[1] != '\0'; p += 2) out.push_back(static_cast<char>(std::stoi(std::string(p, 2), nullptr, 16)));
  return out;
}

}  // namespace

TEST_CASE("body codec: a results body is deflated against the preset dictionary: a 2-result body stores under 100 bytes") {
  for (int seed : {1, 2, 99999}) {
    const auto body = results_body(2, seed);
    const auto stored = pack_body(body);
    INFO(body.size() << " bytes stored as " << stored.size());
    REQUIRE(is_packed_body(stored));
    CHECK(stored.front() == interfaced::transport::packed_with_dictionary);
    CHECK(stored.size() < 100);
    REQUIRE(unpack_body(stored));
    CHECK(*unpack_body(stored) == body);
  }
}

TEST_CASE("body codec: a body stored before schema 17 (no dictionary) still reads byte for byte") {
  const auto older = stored_before_17();
  REQUIRE(older.size() == 249);
  CHECK(older.front() == interfaced::transport::packed_plain);
  CHECK(is_packed_body(older));
  const auto back = unpack_body(older);
  REQUIRE(back);
  CHECK(*back == results_body(2, 2));
  // The dictionary stores the same body in less than half of that.
  CHECK(pack_body(results_body(2, 2)).size() * 2 < older.size());
}

TEST_CASE("body codec: results bodies of every size come back byte for byte and are stored smaller") {
  for (int results : {1, 2, 5, 40, 300}) {
    const auto body = results_body(results, results);
    const auto stored = pack_body(body);
    INFO(results << " results, " << body.size() << " bytes");
    CHECK(is_packed_body(stored));
    // The keys repeat per result: deflate at least halves a body of two or more results.
    if (results >= 2) CHECK(stored.size() * 2 < body.size());
    const auto back = unpack_body(stored);
    REQUIRE(back);
    CHECK(*back == body);
  }
}

TEST_CASE("body codec: a body deflate does not shrink is stored as it is and read as it is") {
  for (const std::string& body : {std::string(), std::string("{}"), std::string("[]"), std::string(R"({"n":1})")}) {
    CHECK(pack_body(body) == body);
    REQUIRE(unpack_body(body));
    CHECK(*unpack_body(body) == body);
  }
  // Bodies stored before schema 13 (and plain text a person inserted) read as they are.
  const std::string older = results_body(2, 7);
  REQUIRE(unpack_body(older));
  CHECK(*unpack_body(older) == older);
}

TEST_CASE("body codec: a body starting with a NUL byte (or byte 0x01) is always packed and comes back") {
  for (const std::string& body : {std::string(1, '\0'), std::string("\0{}", 3), std::string(1, '\0') + results_body(3, 3),
                                  std::string(1, '\x01'), std::string("\x01{}", 3), std::string(1, '\x01') + results_body(3, 3)}) {
    const auto stored = pack_body(body);
    CHECK(is_packed_body(stored));
    const auto back = unpack_body(stored);
    REQUIRE(back);
    CHECK(*back == body);
  }
}

TEST_CASE("body codec: random bytes and random JSON of many sizes round trip") {
  std::mt19937 rng(17);
  for (int i = 0; i < 3000; ++i) {
    std::string body;
    if (i % 3 == 0) {
      const auto n = rng() % 9000;
      for (std::size_t k = 0; k < n; ++k) body.push_back(static_cast<char>(rng()));
    } else {
      body = results_body(static_cast<int>(rng() % 30), static_cast<int>(rng() % 100000));
      body.resize(rng() % (body.size() + 1));  // every length, most of them not JSON any more
    }
    const auto back = unpack_body(pack_body(body));
    REQUIRE(back);
    REQUIRE(*back == body);
  }
}

TEST_CASE("body codec: a damaged packed body is refused, not read as another body") {
  const auto body = results_body(4, 4);
  const auto stored = pack_body(body);
  REQUIRE(is_packed_body(stored));
  // Cut anywhere: the recorded size or the stream's end is missing. (Without its last byte a
  // stream may still end: that byte can hold only the end-of-block code's zero bits, which the
  // zero byte unpack_body adds for Beast's inflater restores -- then it is the same body.)
  for (std::size_t n = 1; n + 1 < stored.size(); ++n) CHECK_FALSE(unpack_body(stored.substr(0, n)));
  const auto last_cut = unpack_body(stored.substr(0, stored.size() - 1));
  CHECK((!last_cut || *last_cut == body));
  // Bytes after the stream.
  CHECK_FALSE(unpack_body(stored + "xy"));
  // A recorded size that is not the stream's (the size is the varint after the marker).
  std::string wrong = stored;
  wrong[1] = static_cast<char>(static_cast<unsigned char>(wrong[1]) ^ 0x01);
  CHECK_FALSE(unpack_body(wrong));
  // A size far beyond what the bytes could inflate to is refused before any allocation.
  CHECK_FALSE(unpack_body(std::string("\0\xff\xff\xff\xff\x7f", 6) + stored.substr(3)));
  // A dictionary stream read as a plain one (its tag flipped) does not pass for the body: its
  // matches reach back before its start.
  std::string retagged = stored;
  retagged[0] = interfaced::transport::packed_plain;
  const auto misread = unpack_body(retagged);
  CHECK((!misread || *misread != body));
}

// pack_body's own deflate encoder (fixed Huffman codes, issue #17): every length and distance
// code at its edges, overlapping copies, and the 32 KiB window's limit, read back by the
// inflater unpack_body uses. A leading NUL byte makes pack_body pack even a body of random bytes.
TEST_CASE("body codec: repeats at every length and distance edge come back byte for byte and are stored as copies") {
  std::mt19937 rng(1951);
  const auto random_bytes = [&](std::size_t n) {
    std::string s;
    for (std::size_t k = 0; k < n; ++k) s.push_back(static_cast<char>(rng()));
    return s;
  };
  // The first distance of each distance code (RFC 1951 3.2.5) and the one before it, up to the window.
  std::vector<std::size_t> distances;
  for (std::size_t base = 1, code = 0; code < 30; ++code) {
    distances.push_back(base);
    if (base > 1) distances.push_back(base - 1);
    base += std::size_t{1} << (code < 4 ? 0 : code / 2 - 1);
  }
  distances.push_back(32768);
  for (const std::size_t distance : distances) {
    for (const std::size_t length : {3UL, 4UL, 10UL, 11UL, 12UL, 18UL, 19UL, 34UL, 35UL, 130UL, 131UL, 227UL, 257UL, 258UL}) {
      const auto prefix = random_bytes(distance);
      const std::string body = std::string(1, '\0') + prefix + prefix.substr(0, std::min(length, distance)) + random_bytes(8);
      const auto stored = pack_body(body);
      const auto back = unpack_body(stored);
      INFO("distance " << distance << ", length " << length);
      REQUIRE(back);
      REQUIRE(*back == body);
      // The repeat is stored as a copy: against the same body with fresh bytes in its place,
      // at least a third of its bytes are saved.
      if (length >= 130 && distance >= length) {
        const std::string fresh = std::string(1, '\0') + prefix + random_bytes(length) + random_bytes(8);
        CHECK(stored.size() + length / 3 < pack_body(fresh).size());
      }
    }
  }
  // Beyond the window (32,768 bytes back) a repeat cannot be a copy: it still comes back.
  const auto far = random_bytes(32769);
  const std::string beyond = std::string(1, '\0') + far + far.substr(0, 258);
  REQUIRE(unpack_body(pack_body(beyond)));
  CHECK(*unpack_body(pack_body(beyond)) == beyond);
  // Runs: overlapping copies (distance 1 and 2), long enough for many 258-byte copies.
  for (const std::string& body : {std::string(100000, 'a'), std::string(1, '\0') + std::string(5000, '\0'),
                                  std::string(40001, 'x') + "ab" + std::string(3000, 'y')}) {
    const auto stored = pack_body(body);
    CHECK(stored.size() < body.size() / 50);
    REQUIRE(unpack_body(stored));
    CHECK(*unpack_body(stored) == body);
  }
  std::string ab;
  while (ab.size() < 70000) ab += "ab";
  REQUIRE(unpack_body(pack_body(ab)));
  CHECK(*unpack_body(pack_body(ab)) == ab);
  CHECK(pack_body(ab).size() < ab.size() / 50);
}

TEST_CASE("body codec: one thread packs bodies of every size one after another and each comes back") {
  // The encoder keeps its buffers per thread between bodies: a large body, then small ones, then
  // a large one again must not see each other's bytes.
  std::mt19937 rng(7);
  std::vector<std::string> bodies;
  for (int i = 0; i < 40; ++i) {
    const auto results = (i % 5 == 0) ? 900 + i : i % 7;
    std::string body = results_body(results, i);
    if (i % 3 == 0) body.insert(body.size() / 2, std::string(rng() % 70000, static_cast<char>('a' + i % 26)));
    bodies.push_back(std::move(body));
  }
  for (const auto& body : bodies) {
    const auto back = unpack_body(pack_body(body));
    REQUIRE(back);
    REQUIRE(*back == body);
  }
}
