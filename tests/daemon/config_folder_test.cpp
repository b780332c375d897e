// Configuration of folder devices (file-reports.md "Folder devices"): the keys, their defaults,
// and every problem named by its JSON pointer.

#include <catch2/catch.hpp>

#include <algorithm>

#include "daemon/config.hpp"

using namespace interfaced::daemon;

namespace {

std::vector<std::string> folder_problems(const std::string& device) {
  auto r = parse_config(R"({"devices": [)" + device + R"(], "backend": {"base_url": "https://lab.example/api"}})", false);
  std::vector<std::string> out;
  for (const auto& p : r.problems) out.push_back(p.pointer + ": " + p.message);
  return out;
}

bool any_at(const std::vector<std::string>& v, const std::string& pointer) {
  return std::any_of(v.begin(), v.end(), [&](const std::string& s) { return s.starts_with(pointer + ": "); });
}

}  // namespace

TEST_CASE("config: a folder device with its keys and defaults") {
  auto r = parse_config(R"({"devices": [{"id": "pcr-1", "protocol": "files",
      "link": {"type": "folder", "path": "/srv/pcr-export", "pattern": "*.pdf", "scan_s": 3}}],
      "backend": {"base_url": "https://lab.example/api"}})", false);
  INFO((r.problems.empty() ? std::string() : r.problems[0].pointer + ": " + r.problems[0].message));
  REQUIRE(r.ok());
  const auto& d = r.cfg.devices.at(0);
  CHECK(d.protocol == "files");
  CHECK(d.link_type == "folder");
  CHECK(d.folder.path == "/srv/pcr-export");
  CHECK(d.folder.pattern == "*.pdf");
  CHECK(d.folder.done == "done");
  CHECK(d.folder.failed == "failed");
  CHECK(d.folder.scan_s == 3);
  CHECK(d.folder.settle_ms == 2000);
}

TEST_CASE("config: folder device problems name their JSON pointer") {
  CHECK(any_at(folder_problems(R"({"id": "a", "protocol": "files", "link": {"type": "folder"}})"), "/devices/0/link/path"));
  CHECK(any_at(folder_problems(R"({"id": "a", "protocol": "files", "link": {"type": "folder", "path": "rel/dir"}})"),
               "/devices/0/link/path"));
  CHECK(any_at(folder_problems(R"({"id": "a", "protocol": "files", "link": {"type": "folder", "path": "/x", "scan_s": -1}})"),
               "/devices/0/link/scan_s"));
  CHECK(any_at(folder_problems(R"({"id": "a", "protocol": "files", "link": {"type": "folder", "path": "/x", "done": "f", "failed": "f"}})"),
               "/devices/0/link/failed"));
  CHECK(any_at(folder_problems(R"({"id": "a", "protocol": "files", "link": {"type": "tcp-server", "port": 5000}})"),
               "/devices/0/link/type"));
  CHECK(any_at(folder_problems(R"({"id": "a", "protocol": "astm", "link": {"type": "folder", "path": "/x"}})"),
               "/devices/0/link/type"));
  CHECK(any_at(folder_problems(R"({"id": "a", "protocol": "files", "link": {"type": "folder", "path": "/x", "bogus": 1}})"),
               "/devices/0/link/bogus"));
}
