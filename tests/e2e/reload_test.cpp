// SIGHUP: a valid new configuration is applied -- changed devices restart, new ones start, removed
// ones stop, untouched ones keep their connection -- and an invalid one is rejected while the
// running configuration stays.

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>

#include "e2e_support.hpp"

using namespace interfaced::e2e;
using namespace std::chrono_literals;

namespace {

bool listening(std::uint16_t port) {
  tcp_conn c(port);
  return c.ok();
}

bool wait_health(daemon_proc& d, const std::function<bool(const json&)>& ok) {
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < until) {
    if (ok(d.health())) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

}  // namespace

TEST_CASE("e2e: SIGHUP applies a valid configuration device by device and rejects an invalid one") {
  scratch_dir dir;
  daemon_proc d(dir.path());
  const std::uint16_t pa = free_port(), pb = free_port(), pa2 = free_port(), pc = free_port();
  d.start(json::array({tcp_server_device("a", "astm", pa), tcp_server_device("b", "hl7", pb),
                       tcp_server_device("keep", "astm", free_port())}));
  const json keep_before = d.device_health("keep");

  // a moves to another port, b goes away, c is new, keep is untouched.
  json cfg = json::parse(file_text(dir.path() / "interfaced.json"));
  cfg["devices"] = json::array({tcp_server_device("a", "astm", pa2), tcp_server_device("c", "astm", pc),
                                cfg["devices"][2]});
  std::ofstream(dir.path() / "interfaced.json") << cfg.dump(2);
  d.process().signal(SIGHUP);
  REQUIRE(wait_health(d, [](const json& h) {
    std::vector<std::string> ids;
    for (const auto& x : h["devices"]) ids.push_back(x["id"]);
    std::sort(ids.begin(), ids.end());
    return ids == std::vector<std::string>{"a", "c", "keep"};
  }));
  CHECK(listening(pa2));
  CHECK(listening(pc));
  CHECK_FALSE(listening(pa));
  CHECK_FALSE(listening(pb));
  CHECK(d.log().find("applied: 1 device started, 1 restarted, 1 stopped") != std::string::npos);
  CHECK(d.device_health("keep")["connections"] == keep_before["connections"]);

  // An invalid file: rejected with its JSON pointer, the running devices stay.
  std::ofstream(dir.path() / "interfaced.json") << R"({"devices": 3})";
  d.process().signal(SIGHUP);
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (d.log().find("the running one stays") == std::string::npos && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(20ms);
  CHECK(d.log().find("/devices: expected an array of devices, found number") != std::string::npos);
  CHECK(listening(pa2));
  CHECK(d.stop().first == 0);
}
