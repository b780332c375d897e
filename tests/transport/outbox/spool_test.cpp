// Spool files (outbox.hpp "spool files"): the files the daemon makes for file-type reports are
// written by the outbox worker before the commit naming them, deleted only inside the spool
// folder and only after a commit, and swept at start when no live report names them. Real
// SQLite file, real files.

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "devices/file_report.hpp"
#include "outbox_support.hpp"
#include "support/files.hpp"
#include "transport/outbox.hpp"

using namespace interfaced::transport;
using interfaced::test::append_wait;
using interfaced::test::config_at;
using interfaced::test::msg;
using interfaced::test::scratch_dir;
namespace fs = std::filesystem;

namespace {

// A file_report message for `file` (spool flag as given), with its bytes to write when `bytes` is set.
new_message report_for(const fs::path& file, bool spool, std::optional<std::string> bytes = std::nullopt) {
  interfaced::devices::file_report_request r;
  r.device_id = "dev";
  r.sample_id = "S-1";
  r.parameter = "P";
  r.file = file.string();
  r.filename = file.filename().string();
  r.spool = spool;
  new_message m = msg("file_report", "file:S-1:P", interfaced::devices::file_report_body(r));
  if (bytes) m.file = spool_file{file, *bytes};
  return m;
}

template <class T>
T wait_for_result(const std::function<void(std::function<void(T)>)>& start) {
  std::mutex m;
  std::condition_variable cv;
  std::optional<T> out;
  start([&](T v) {
    std::lock_guard l(m);
    out = std::move(v);
    cv.notify_all();
  });
  std::unique_lock l(m);
  REQUIRE(cv.wait_for(l, std::chrono::seconds(10), [&] { return out.has_value(); }));
  return *out;
}

std::string contents(const fs::path& f) {
  std::ifstream in(f, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("spool: a message's file is on disk, whole, once its append is durable and no .part is left") {
  scratch_dir dir;
  outbox box(config_at(dir / "outbox.sqlite"));
  CHECK(box.spool_dir().string() == (dir / "files").string());
  const fs::path f = box.spool_dir() / "dev" / "b-1" / "0" / "S-1_P.svg";
  const std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
  auto r = append_wait(box, {report_for(f, true, svg), msg("results", "R-1", "{}")});
  REQUIRE(r.durable);
  CHECK(r.unwritten.empty());
  CHECK(contents(f) == svg);
  CHECK_FALSE(fs::exists(f.string() + ".part"));
  CHECK(box.stats().undelivered == 2);
}

TEST_CASE("spool: a file that cannot be written leaves its message out, the others are stored") {
  scratch_dir dir;
  outbox box(config_at(dir / "outbox.sqlite"));
  // A plain file where the report's folder should be: create_directories fails.
  fs::create_directories(box.spool_dir() / "dev");
  std::ofstream(box.spool_dir() / "dev" / "blocked") << "x";
  const fs::path bad = box.spool_dir() / "dev" / "blocked" / "0" / "a.svg";
  auto r = append_wait(box, {report_for(bad, true, "<svg/>"), msg("results", "R-1", "{}")});
  REQUIRE(r.durable);
  REQUIRE(r.unwritten.size() == 1);
  CHECK(r.unwritten[0].first == r.ids[0]);
  CHECK(r.unwritten[0].second.find(bad.string()) != std::string::npos);
  CHECK(box.stats().undelivered == 1);
  box.flush(std::chrono::seconds(5));
  outbox_admin admin(dir / "outbox.sqlite");
  const auto list = admin.list();
  REQUIRE(list.size() == 1);
  CHECK(list[0].kind == "results");
}

TEST_CASE("spool: remove_spool_file deletes inside the spool folder only, with its emptied batch folders") {
  scratch_dir dir;
  outbox box(config_at(dir / "outbox.sqlite"));
  const fs::path f = box.spool_dir() / "dev" / "b-1" / "0" / "a.svg";
  REQUIRE(append_wait(box, {report_for(f, true, "<svg/>")}).durable);
  const fs::path theirs = dir / "analyser-share" / "a.png";  // an analyser's file: never ours to delete
  fs::create_directories(theirs.parent_path());
  std::ofstream(theirs) << "png";
  const fs::path sneaky = box.spool_dir() / ".." / "analyser-share" / "a.png";
  auto remove = [&](const fs::path& p) {
    return wait_for_result<bool>([&](std::function<void(bool)> done) { box.remove_spool_file(p, std::move(done)); });
  };
  CHECK(remove(f));
  CHECK_FALSE(fs::exists(f));
  CHECK_FALSE(fs::exists(box.spool_dir() / "dev" / "b-1"));  // per-file and per-batch folders gone
  CHECK(fs::exists(box.spool_dir() / "dev"));                // the device's folder stays
  CHECK_FALSE(remove(theirs));
  CHECK_FALSE(remove(sneaky));
  CHECK(fs::exists(theirs));
}

TEST_CASE("spool: the start sweep keeps the files live reports name and deletes the rest") {
  scratch_dir dir;
  const fs::path spool = dir / "files";
  const fs::path pending = spool / "dev" / "b-1" / "0" / "pending.svg";
  const fs::path dead = spool / "dev" / "b-1" / "1" / "dead.svg";
  const fs::path finalized = spool / "dev" / "b-2" / "0" / "finalized.svg";
  const fs::path delivered = spool / "dev" / "b-2" / "1" / "delivered.svg";
  const fs::path stray = spool / "dev" / "b-3" / "0" / "never-stored.svg.part";
  std::vector<std::string> ids;
  {
    outbox box(config_at(dir / "outbox.sqlite"));
    auto r = append_wait(box, {report_for(pending, true, "1"), report_for(dead, true, "2"),
                               report_for(finalized, true, "3"), report_for(delivered, true, "4")});
    REQUIRE(r.durable);
    ids = r.ids;
    auto wait_bool = [](const std::function<void(std::function<void(bool)>)>& f) { return wait_for_result<bool>(f); };
    CHECK(wait_bool([&](auto done) { box.mark_dead(ids[1], {422, "no"}, std::move(done)); }));
    file_job j;
    j.message_id = ids[2];
    j.stage = "finalized";
    CHECK(wait_bool([&](auto done) { box.save_file_job(j, std::move(done)); }));
    CHECK(wait_bool([&](auto done) { box.mark_delivered(ids[3], {200, "{}"}, std::move(done)); }));
  }
  fs::create_directories(stray.parent_path());
  std::ofstream(stray) << "half";
  outbox box(config_at(dir / "outbox.sqlite"));
  const auto n = wait_for_result<std::size_t>([&](std::function<void(std::size_t)> done) { box.sweep_spool(std::move(done)); });
  CHECK(n == 3);
  CHECK(fs::exists(pending));
  CHECK(fs::exists(dead));  // `outbox retry` sends it again: its file must still be there
  CHECK_FALSE(fs::exists(finalized));
  CHECK_FALSE(fs::exists(delivered));
  CHECK_FALSE(fs::exists(stray));
  CHECK_FALSE(fs::exists(spool / "dev" / "b-3"));  // emptied folders go too
}
