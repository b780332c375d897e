// Issue #12 points 2 and 6 with the real binary: a damaged outbox (a page overwritten with random
// bytes), an emptied one (truncated to 0 bytes) and a deleted one are refused at start with exit 74
// and a message saying what to do -- never a silent start with "0 waiting"; a second daemon on the
// same outbox exits 75 naming the first one's pid.
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <random>

#include "e2e_support.hpp"

using namespace interfaced::e2e;

namespace {

// 200 pending messages of ~2 KiB each, written into an outbox the daemon created (so its schema
// and identity are the daemon's own).
void fill(const fs::path& db_path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  const std::string body = "{\"padding\":\"" + std::string(2000, 'x') + "\"}";
  std::string sql = "BEGIN;";
  for (int i = 0; i < 200; ++i)
    sql += "INSERT INTO messages (id, kind, ordering_key, created_at, next_attempt_at) VALUES ('m-" +
           std::to_string(i) + "', 'device-results', 'k" + std::to_string(i) + "', 0, 0);"
           "INSERT INTO message_bodies (seq, body) VALUES (last_insert_rowid(), '" + body + "');";
  sql += "COMMIT;";
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  INFO((err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

// `interfaced run` that must exit at start: its status and stderr.
std::pair<int, std::string> run_to_exit(const fs::path& dir, const std::string& tag) {
  child c({interfaced::test::interfaced_binary().string(), "run", "-c", (dir / "interfaced.json").string()},
          dir / (tag + ".out"), dir / (tag + ".err"));
  const auto st = c.wait_for(std::chrono::milliseconds(15000));
  if (!st) c.signal(SIGKILL);
  REQUIRE(st.has_value());
  return {*st, c.err() + c.out()};
}

}  // namespace

TEST_CASE("outbox guard: damaged, emptied and deleted outboxes are refused with exit 74", "[outbox-guard]") {
  scratch_dir dir;
  const fs::path db = dir.path() / "outbox.sqlite";
  {
    daemon_proc d(dir.path());
    d.start(json::array({tcp_server_device("chem-1", "astm", free_port())}));
    CHECK(d.stop().first == 0);
  }
  fill(db);
  REQUIRE(fs::file_size(db) > 61 * 4096);
  const fs::path pristine = dir.path() / "pristine.sqlite";
  fs::copy_file(db, pristine);

  SECTION("4 KiB of random bytes over page 61") {
    {
      std::fstream f(db, std::ios::in | std::ios::out | std::ios::binary);
      std::mt19937 rng(61);
      std::string junk(4096, '\0');
      for (auto& c : junk) c = static_cast<char>(rng());
      f.seekp(60 * 4096);
      f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
    const auto [rc, err] = run_to_exit(dir.path(), "damaged");
    INFO(err);
    CHECK(rc == 74);
    CHECK(err.find("is damaged") != std::string::npos);
    CHECK(err.find(".dump") != std::string::npos);
  }
  SECTION("truncated to 0 bytes") {
    fs::resize_file(db, 0);
    const auto [rc, err] = run_to_exit(dir.path(), "emptied");
    INFO(err);
    CHECK(rc == 74);
    CHECK(err.find("is empty") != std::string::npos);
  }
  SECTION("deleted") {
    fs::remove(db);
    const auto [rc, err] = run_to_exit(dir.path(), "deleted");
    INFO(err);
    CHECK(rc == 74);
    CHECK(err.find("is missing") != std::string::npos);
    CHECK_FALSE(fs::exists(db));  // refused before SQLite would create a new, empty one
  }
  SECTION("an intact outbox starts, with its 200 messages waiting") {
    daemon_proc d(dir.path());
    d.start(json::array({tcp_server_device("chem-1", "astm", free_port())}));
    CHECK(d.health()["outbox"]["depth"] == 200);
    CHECK(d.stop().first == 0);
  }
}

TEST_CASE("outbox guard: a second daemon on the same outbox exits 75 naming the first one's pid", "[outbox-guard]") {
  scratch_dir dir;
  daemon_proc first(dir.path());
  first.start(json::array({tcp_server_device("chem-1", "astm", free_port())}));
  // The same outbox, another health port and device port (so only the outbox is shared).
  json cfg = daemon_config(dir.path(), json::array({tcp_server_device("chem-2", "astm", free_port())}), free_port());
  const fs::path second_dir = dir.path() / "second";
  fs::create_directories(second_dir);
  cfg["logging"]["dir"] = (second_dir / "logs").string();
  std::ofstream(second_dir / "interfaced.json") << cfg.dump(2);
  const auto [rc, err] = run_to_exit(second_dir, "second");
  INFO(err);
  CHECK(rc == 75);
  CHECK(err.find("held by pid " + std::to_string(first.process().pid())) != std::string::npos);
  CHECK(first.stop().first == 0);
}
