// Configuration of a device's "files" (file-type reports, file-reports.md): defaults, and every
// problem with its JSON pointer.

#include <catch2/catch.hpp>

#include <algorithm>

#include "daemon/config.hpp"

using namespace interfaced::daemon;

namespace {

std::vector<std::string> problems_of(const std::string& text) {
  auto r = parse_config(text, /*check_devices=*/true);
  std::vector<std::string> out;
  for (const auto& p : r.problems) out.push_back((p.pointer.empty() ? "/" : p.pointer) + ": " + p.message);
  return out;
}

std::string device_with(const std::string& files) {
  return R"({"devices": [{"id": "xn-1", "protocol": "astm", "profile": "sysmex-xn", "files": )" + files +
         R"(, "link": {"type": "tcp-server", "port": 5001}}], "outbox": {"path": "/tmp/o.sqlite"}})";
}

}  // namespace

TEST_CASE("config: files defaults (file-reports.md: settle, wait, 64 MiB, presigned)") {
  const auto r = parse_config(device_with(R"({"root": "/srv/xn"})"), true);
  REQUIRE(r.problems.empty());
  const auto& f = r.cfg.devices.at(0).files;
  CHECK(f.root == "/srv/xn");
  CHECK(f.max_bytes == 64ull * 1024 * 1024);
  CHECK(f.mode == "presigned");
  CHECK(f.allowed_types.empty());
}

TEST_CASE("config: files problems name their JSON pointer") {
  const auto p = problems_of(device_with(R"({"root": "relative/dir", "mode": "ftp", "wait_s": 0, "colour": 1})"));
  INFO(p.size());
  auto has_prefix = [&](const std::string& prefix) {
    return std::any_of(p.begin(), p.end(), [&](const std::string& s) { return s.starts_with(prefix); });
  };
  CHECK(has_prefix("/devices/0/files/root: expected an absolute folder path"));
  CHECK(has_prefix("/devices/0/files/mode: expected one of \"presigned\", \"inline\""));
  CHECK(has_prefix("/devices/0/files/wait_s: expected a number from 1"));
  CHECK(has_prefix("/devices/0/files/colour: unknown key"));
  CHECK(has_prefix("/devices/0/files/root") );
  CHECK(problems_of(device_with(R"({"settle_ms": 10})")).size() == 1);  // root is required
}
