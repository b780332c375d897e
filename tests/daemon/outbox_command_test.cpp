// `interfaced outbox purge --delivered-before DATE` and `outbox list --since DATE` as a contract:
// a UTC date or date-time (rerun::parse_wall_time) is accepted, anything else is refused with
// exit 64 and the line that shows the expected form. Real outbox file.

#include <catch2/catch.hpp>

#include <chrono>
#include <sstream>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "daemon/admin_commands.hpp"
#include "daemon/exit_codes.hpp"
#include "support/scratch_dir.hpp"
#include "transport/outbox.hpp"

using namespace interfaced;

namespace {

struct command_result {
  int status = -1;
  std::string out;
  std::string err;
};

command_result run(const daemon::outbox_command& c) {
  std::ostringstream out, err;
  const int status = daemon::run_outbox_command(c, out, err);
  return {status, out.str(), err.str()};
}

}  // namespace

TEST_CASE("outbox purge and list --since take a UTC date or date-time and refuse anything else naming the form") {
  interfaced::test::scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  {
    transport::outbox_options o;
    o.path = file;
    transport::outbox box(o);
    transport::new_message m;
    m.kind = "results";
    m.ordering_key = "R-1";
    m.body = "{}";
    box.append(std::move(m), {});
    REQUIRE(box.flush(std::chrono::seconds(10)));
  }
  daemon::outbox_command list;
  list.file = file.string();
  list.action = "list";
  list.json = true;
  daemon::outbox_command purge = list;
  purge.action = "purge";
  purge.json = false;

  SECTION("a date and a date-time are accepted: the message, stored now, is after the one and before the other") {
    list.since = "2000-01-01";
    auto r = run(list);
    REQUIRE(r.status == exit_ok);
    CHECK(nlohmann::json::parse(r.out).size() == 1);
    list.since = "2999-01-01T08:30:00Z";
    r = run(list);
    REQUIRE(r.status == exit_ok);
    CHECK(nlohmann::json::parse(r.out).empty());
    purge.before = "2999-01-01T08:30:00Z";
    r = run(purge);
    CHECK(r.status == exit_ok);
    CHECK(r.out == "0 delivered message(s) removed\n");  // pending: never purged
  }
  SECTION("not a date, an impossible day, a thirteenth month: refused with the expected form") {
    for (const std::string bad : {"yesterday", "2026-02-30", "2026-13-01"}) {
      purge.before = bad;
      auto r = run(purge);
      CHECK(r.status == exit_usage);
      CHECK(r.err == "--delivered-before: expected a date like 2026-11-23 or 2026-11-23T08:00:00Z, got \"" + bad + "\"\n");
      list.since = bad;
      r = run(list);
      CHECK(r.status == exit_usage);
      CHECK(r.err == "--since: expected a date like 2026-11-23 or 2026-11-23T08:00:00Z (UTC), got \"" + bad + "\"\n");
    }
  }
}
