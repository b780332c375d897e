// Unfinished bytes bounded per device and daemon-wide: what each session holds is counted in both
// budgets, given back when it ends, and a refusal names the budget that was over.
#include <catch2/catch.hpp>

#include <memory>

#include "transport/buffer_budget.hpp"

using namespace interfaced::transport;

TEST_CASE("buffer budget: shares add up per device and in total, are given back, refusals counted", "[transport][limits]") {
  auto dev_a = std::make_shared<buffer_budget>();
  auto dev_b = std::make_shared<buffer_budget>();
  auto total = std::make_shared<buffer_budget>();
  dev_a->limit = 100;
  dev_b->limit = 100;
  total->limit = 150;
  {
    buffer_share a1(dev_a, total), a2(dev_a, total), b1(dev_b, total);
    CHECK(a1.set(60) == nullptr);
    CHECK(a1.set(40) == nullptr);  // replaces, not adds
    CHECK(dev_a->used == 40);
    const buffer_budget* over = a2.set(61);  // 101 for device a
    REQUIRE(over == dev_a.get());
    CHECK(a2.is_device(over));
    CHECK(dev_a->refused == 1);
    CHECK(a2.set(0) == nullptr);  // the session closed its message
    CHECK(b1.set(90) == nullptr);  // 130 in total
    over = a2.set(30);             // device a: 70, total: 160
    REQUIRE(over == total.get());
    CHECK_FALSE(a2.is_device(over));
    CHECK(dev_a->refused == 2);  // counted on the device whichever limit it hit
    CHECK(total->refused == 1);
    CHECK(total->used == 160);
  }
  CHECK(dev_a->used == 0);  // every share given back when its session ends
  CHECK(dev_b->used == 0);
  CHECK(total->used == 0);
}
