// The batched-WAL VFS (transport/sqlite_wal_vfs.hpp): a transaction's WAL frames reach the file in
// one write, and every connection — through this VFS or the default one, syncing each commit or
// not — only ever reads frames that are in the file, byte for byte.

#include <sqlite3.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

#include "support/scratch_dir.hpp"
#include "transport/sqlite_wal_vfs.hpp"

namespace {

using interfaced::test::scratch_dir;
namespace sq = interfaced::transport::sqlite;

struct connection {
  sqlite3* db = nullptr;
  connection(const std::filesystem::path& file, const char* vfs) {
    REQUIRE(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs) == SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
  }
  ~connection() { sqlite3_close(db); }
  void exec(const std::string& sql) const {
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    INFO(sql << ": " << (err ? err : ""));
    sqlite3_free(err);
    REQUIRE(rc == SQLITE_OK);
  }
  std::string text(const std::string& sql) const {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
    const int rc = sqlite3_step(st);
    INFO(sql << ": " << sqlite3_errmsg(db));
    REQUIRE(rc == SQLITE_ROW);
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_blob(st, 0));
    std::string out(p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(st, 0)));
    sqlite3_finalize(st);
    return out;
  }
  void insert(std::int64_t id, const std::string& b) const {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO t(id, b) VALUES (?, ?)", -1, &st, nullptr) == SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_blob(st, 2, b.data(), static_cast<int>(b.size()), SQLITE_TRANSIENT);
    const int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    REQUIRE(rc == SQLITE_DONE);
  }
};

// A row's 900 bytes, different for every (id, round): a frame read from the wrong place shows.
std::string payload(std::int64_t id, int round) {
  std::string s(900, '\0');
  std::uint32_t x = static_cast<std::uint32_t>(id * 2654435761u + static_cast<std::uint32_t>(round) * 40503u + 1u);
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

std::string blob_of(const connection& c, std::int64_t id) {
  return c.text("SELECT b FROM t WHERE id = " + std::to_string(id));
}

}  // namespace

TEST_CASE("batched WAL: a transaction's frames reach the WAL file in one write and read back through the default VFS") {
  scratch_dir dir;
  const auto file = dir / "db.sqlite";
  connection a(file, sq::batched_wal_vfs());
  a.exec("PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0");
  a.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)");
  const auto before = sq::batched_wal_stats();
  a.exec("BEGIN");
  for (int id = 1; id <= 40; ++id) a.insert(id, payload(id, 0));
  a.exec("COMMIT");
  const auto after = sq::batched_wal_stats();
  // 40 rows of 900 bytes in 1 KiB pages: at least 40 frames, each a header and a page.
  CHECK(after.asked - before.asked >= 80);
  CHECK(after.written - before.written == 1);
  // The frames are in the file: the header (32 bytes) plus each frame's 24 + 1,024 bytes.
  CHECK(std::filesystem::file_size(dir / "db.sqlite-wal") >= 32 + (after.asked - before.asked) / 2 * 1048);

  connection b(file, nullptr);
  CHECK(b.text("SELECT count(*) FROM t") == std::string("40"));
  for (int id = 1; id <= 40; ++id) {
    INFO("row " << id);
    CHECK(blob_of(b, id) == payload(id, 0));
  }
}

TEST_CASE("batched WAL: a connection that does not sync each commit publishes only frames that are in the file") {
  // synchronous=NORMAL: no xSync at commit, so the frames are flushed at the barrier SQLite runs
  // before it publishes them. A reader through the default VFS checks every commit at once.
  scratch_dir dir;
  const auto file = dir / "db.sqlite";
  connection a(file, sq::batched_wal_vfs());
  a.exec("PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0");
  a.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)");
  connection b(file, nullptr);
  const auto before = sq::batched_wal_stats();
  for (int round = 1; round <= 20; ++round) {
    a.exec("BEGIN");
    for (int k = 0; k < 5; ++k) a.insert(round * 100 + k, payload(round * 100 + k, round));
    a.exec("COMMIT");
    INFO("commit " << round);
    REQUIRE(b.text("SELECT count(*) FROM t") == std::to_string(round * 5));
    for (int k = 0; k < 5; ++k) CHECK(blob_of(b, round * 100 + k) == payload(round * 100 + k, round));
  }
  const auto after = sq::batched_wal_stats();
  CHECK(after.written - before.written <= 20 + 1);  // one per commit (and the WAL header's)
  CHECK(after.asked - before.asked >= 20 * 2 * 5);
}

TEST_CASE("batched WAL: spills inside a transaction, a rollback, checkpoints and a reopen keep the database whole") {
  scratch_dir dir;
  const auto file = dir / "db.sqlite";
  {
    connection a(file, sq::batched_wal_vfs());
    // A page cache of 8 pages: a large transaction spills frames to the WAL before its commit and
    // rewrites some of them in place, which the buffer must write in SQLite's order.
    a.exec("PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=8");
    a.exec("PRAGMA wal_autocheckpoint=50");
    a.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)");
    a.exec("BEGIN");
    for (int id = 1; id <= 300; ++id) a.insert(id, payload(id, 1));
    for (int id = 1; id <= 300; id += 3) a.insert(id, payload(id, 2));  // rewrites pages already spilled
    a.exec("COMMIT");
    a.exec("BEGIN");
    for (int id = 301; id <= 400; ++id) a.insert(id, payload(id, 1));
    a.exec("ROLLBACK");
    a.exec("BEGIN");
    for (int id = 2; id <= 300; id += 3) a.insert(id, payload(id, 3));
    a.exec("COMMIT");
    CHECK(a.text("PRAGMA integrity_check") == "ok");
    a.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    for (int id = 3; id <= 300; id += 3) a.insert(id, payload(id, 4));  // after the WAL restarts
  }
  connection b(file, nullptr);
  CHECK(b.text("PRAGMA integrity_check") == "ok");
  CHECK(b.text("SELECT count(*) FROM t") == "300");
  for (int id = 1; id <= 300; ++id) {
    INFO("row " << id);
    const int round = id % 3 == 1 ? 2 : id % 3 == 2 ? 3 : 4;
    CHECK(blob_of(b, id) == payload(id, round));
  }
}
