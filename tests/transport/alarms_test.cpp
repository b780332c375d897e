// The alarm list: what /health, status, /metrics and the service log read.
#include <catch2/catch.hpp>

#include <vector>

#include "transport/alarms.hpp"

using namespace interfaced::transport;
using std::chrono::system_clock;

TEST_CASE("alarms: raised once with its first time, cleared once, listed by code then subject", "[alarms]") {
  alarm_board board;
  std::vector<std::string> seen;
  board.on_change([&](const alarm_entry& a, bool up) { seen.push_back((up ? "+" : "-") + a.code + "/" + a.subject); });
  const auto t1 = system_clock::time_point(std::chrono::seconds(1000));
  const auto t2 = system_clock::time_point(std::chrono::seconds(2000));

  CHECK(board.raise(alarm_code::link_down, "xn", "/dev/ttyUSB0 is missing", t1));
  CHECK_FALSE(board.raise(alarm_code::link_down, "xn", "/dev/ttyUSB0 is still missing", t2));
  CHECK(board.raise(alarm_code::backend_credentials, "", "401 from the backend", t2));
  CHECK(board.raise(alarm_code::link_down, "abl", "/dev/ttyUSB1 is missing", t2));

  const auto l = board.list();
  REQUIRE(l.size() == 3);
  CHECK(l[0].code == "BACKEND-002");
  CHECK(l[1].subject == "abl");
  CHECK(l[2].subject == "xn");
  CHECK(l[2].since == t1);  // a raise while up keeps since-when, updates the text
  CHECK(l[2].text == "/dev/ttyUSB0 is still missing");
  CHECK(describe(l[2]) == "/dev/ttyUSB0 is still missing [LINK-001]");

  CHECK(board.clear(alarm_code::link_down, "xn"));
  CHECK_FALSE(board.clear(alarm_code::link_down, "xn"));
  board.clear_code(alarm_code::link_down);
  CHECK_FALSE(board.any(alarm_code::link_down));
  CHECK(board.active(alarm_code::backend_credentials));
  CHECK(seen == std::vector<std::string>{"+LINK-001/xn", "+BACKEND-002/", "+LINK-001/abl", "-LINK-001/xn", "-LINK-001/abl"});
}
