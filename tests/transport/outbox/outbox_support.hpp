#pragma once
// Helpers for the outbox / delivery / state store tests: the outbox's options and messages, a
// poster onto the test's io_context, a synchronous append. Scratch directories and bounded
// io_context runs are the test-support library's (support/), in the same namespace.

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <sqlite3.h>
#include <boost/asio/post.hpp>

#include "support/asio_loop.hpp"
#include "support/scratch_dir.hpp"
#include "transport/outbox.hpp"

namespace interfaced::test {

inline std::function<void(std::function<void()>)> poster_for(boost::asio::io_context& ioc) {
  return [&ioc](std::function<void()> f) { boost::asio::post(ioc, std::move(f)); };
}

inline transport::outbox_options config_at(const std::filesystem::path& p, std::size_t max = 1000) {
  transport::outbox_options c;
  c.path = p;
  c.max_messages = max;
  return c;
}

// SQL that puts the samples the bodies name back into message_samples, a row each keyed by
// (seq, sample) with its trigger, as schemas 12 to 14 kept them (schema 15 keeps them in
// message_bodies.samples, "\nS-1\nS-2\n"), for tests that turn a new file back into an older
// version's.
inline const std::string samples_back_in_table =
    "CREATE TABLE message_samples (seq INTEGER NOT NULL, sample TEXT NOT NULL,"
    " PRIMARY KEY (seq, sample)) WITHOUT ROWID;"
    "WITH RECURSIVE split(seq, rest, sample) AS ("
    " SELECT seq, substr(samples, 2), NULL FROM message_bodies WHERE samples <> ''"
    " UNION ALL SELECT seq, substr(rest, instr(rest, char(10)) + 1), substr(rest, 1, instr(rest, char(10)) - 1)"
    " FROM split WHERE rest <> '')"
    " INSERT INTO message_samples (seq, sample) SELECT seq, sample FROM split WHERE sample IS NOT NULL;"
    "CREATE TRIGGER message_samples_gone AFTER DELETE ON messages"
    " BEGIN DELETE FROM message_samples WHERE seq = old.seq; END;"
    "ALTER TABLE message_bodies DROP COLUMN samples;";

// SQL that puts the bodies back into messages, as every schema before 12 kept them (the column
// at the end, not in its old place: nothing reads it by position), and their samples into
// message_samples, for tests that turn a new file back into an older version's.
inline const std::string bodies_back_in_messages = samples_back_in_table +
    "DROP TRIGGER message_bodies_gone;"
    "ALTER TABLE messages ADD COLUMN body BLOB NOT NULL DEFAULT x'';"
    "UPDATE messages SET body = (SELECT b.body FROM message_bodies b WHERE b.seq = messages.seq);"
    "DROP TABLE message_bodies;";

// A message for the outbox; id empty: the outbox assigns a UUID.
inline transport::new_message msg(std::string kind, std::string key, std::string body, std::string id = {}) {
  transport::new_message m;
  m.kind = std::move(kind);
  m.ordering_key = std::move(key);
  m.body = std::move(body);
  m.id = std::move(id);
  return m;
}

// Appends synchronously (test convenience): waits (bounded) for the completion, from any thread.
inline transport::append_result append_wait(transport::outbox& box, std::vector<transport::new_message> v,
                                            transport::state_changes state = {}) {
  std::mutex m;
  std::condition_variable cv;
  std::optional<transport::append_result> r;
  box.append(std::move(v), std::move(state), [&](transport::append_result a) {
    std::lock_guard l(m);
    r = std::move(a);
    cv.notify_all();
  });
  std::unique_lock l(m);
  REQUIRE(cv.wait_for(l, std::chrono::seconds(10), [&] { return r.has_value(); }));
  return *r;
}

// Runs `sql` on the file through a connection of its own (what a person or a damaged disk does
// to the file behind the outbox's back).
inline void exec_sql(const std::filesystem::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  const std::string what = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  INFO(what);
  REQUIRE(rc == SQLITE_OK);
}

// The first column of the first row `sql` gives, as an integer, through a connection of its own.
inline std::int64_t query_int(const std::filesystem::path& file, const char* sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  const auto v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

}  // namespace interfaced::test
