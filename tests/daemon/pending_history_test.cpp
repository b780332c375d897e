// seen(S,P) while appends are in flight (daemon/ingest_hand_off.hpp pending_history): a result
// recorded in a batch whose outbox append has not settled is seen, duplicates and the latest
// value included, until that batch settles; then only the durable store answers. Several batches
// may hold the same sample; settling one leaves the others'.
#include <catch2/catch.hpp>

#include <optional>
#include <string>

#include "daemon/ingest_hand_off.hpp"
#include "rerun/result_store.hpp"

using interfaced::daemon::pending_history;
using interfaced::rerun::memory_result_store;
using interfaced::rerun::observation;

namespace {

observation obs(std::string value, std::string at) {
  observation o;
  o.value = std::move(value);
  o.observed_at = std::move(at);
  return o;
}

}  // namespace

TEST_CASE("pending history: in-flight batches are seen until they settle, several holding one sample") {
  memory_result_store durable;
  durable.record("S-0", "GLU", obs("4.0", "20261207080000"));
  pending_history h(durable);

  const auto first = h.open();
  h.record("S-1", "GLU", obs("5.1", "20261207090000"));
  const auto second = h.open();
  h.record("S-1", "GLU", obs("5.4", "20261207091000"));
  h.record("S-2", "NA", obs("140", "20261207091000"));

  CHECK(h.has("S-0", "GLU"));  // the durable store
  CHECK(h.has("S-1", "GLU"));
  CHECK_FALSE(h.has("S-1", "NA"));
  CHECK_FALSE(h.has("S-3", "GLU"));
  CHECK(h.has_observation("S-1", "GLU", "5.1", "20261207090000"));
  CHECK(h.has_observation("S-1", "GLU", "5.4", "20261207091000"));
  CHECK_FALSE(h.has_observation("S-1", "GLU", "5.2", "20261207090000"));
  REQUIRE(h.latest("S-1", "GLU"));
  CHECK(h.latest("S-1", "GLU")->value == "5.4");  // the later batch
  REQUIRE(h.latest_of_parameter("S-2", "NA"));
  CHECK(h.latest_of_parameter("S-2", "NA")->value == "140");
  CHECK(h.latest("S-0", "GLU")->value == "4.0");

  // The first batch settles (committed, or failed: its rows are the durable store's business
  // now). The second still holds S-1.
  h.settle(first);
  CHECK(h.has("S-1", "GLU"));
  CHECK_FALSE(h.has_observation("S-1", "GLU", "5.1", "20261207090000"));
  CHECK(h.has_observation("S-1", "GLU", "5.4", "20261207091000"));
  CHECK(h.latest("S-1", "GLU")->value == "5.4");

  h.settle(second);
  CHECK_FALSE(h.has("S-1", "GLU"));
  CHECK_FALSE(h.has("S-2", "NA"));
  CHECK_FALSE(h.latest("S-1", "GLU"));
  CHECK_FALSE(h.latest_of_parameter("S-2", "NA"));
  CHECK(h.has("S-0", "GLU"));

  // A sample seen again in a new batch after its last batch settled is seen again.
  h.open();
  h.record("S-1", "GLU", obs("5.9", "20261207100000"));
  CHECK(h.has("S-1", "GLU"));
  CHECK(h.latest("S-1", "GLU")->value == "5.9");
}
