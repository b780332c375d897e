// transport/folder_watch: complete files found by inotify (closed after writing, moved in) and
// by the scan (unchanged for `settle`), one at a time; dot files and sub-folders never. A real
// folder and a real inotify fd on a real io_context, bounded run_for.

#include <catch2/catch.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <fstream>
#include <vector>

#include "support/scratch_dir.hpp"
#include "transport/folder_watch.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using interfaced::transport::folder_watch_options;

namespace {

struct watched {
  asio::io_context io;
  asio::cancellation_signal stop;
  std::vector<std::string> taken;
  void start(const folder_watch_options& o, bool move_away = true) {
    asio::co_spawn(io,
                   interfaced::transport::watch_folder(
                       o,
                       [this, move_away](fs::path f, std::function<void()> finished) {
                         taken.push_back(f.filename().string());
                         if (move_away) {
                           std::error_code ec;
                           fs::create_directories(f.parent_path() / "done", ec);
                           REQUIRE_FALSE(interfaced::transport::move_file_durably(f, f.parent_path() / "done" / f.filename()));
                         }
                         finished();
                       },
                       {}),
                   asio::bind_cancellation_slot(stop.slot(), asio::detached));
  }
  void run_until(std::size_t n, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (taken.size() < n && std::chrono::steady_clock::now() < until) io.run_for(20ms);
  }
};

void write(const fs::path& f, const std::string& text) { std::ofstream(f, std::ios::binary) << text; }

}  // namespace

TEST_CASE("folder watch: files present at start and closed after writing and and moved in are taken once each") {
  interfaced::test::scratch_dir dir;
  write(dir.path() / "old.txt", "x");
  fs::last_write_time(dir.path() / "old.txt", fs::file_time_type::clock::now() - 1h);
  folder_watch_options o;
  o.dir = dir.path();
  o.settle = 10s;  // only inotify (or an old mtime) can make these complete within the test
  o.scan = 0s;
  watched w;
  w.start(o);
  w.run_until(1, 2000ms);
  REQUIRE(w.taken == std::vector<std::string>{"old.txt"});
  write(dir.path() / "closed.txt", "abc");
  write(dir.path() / ".hidden.tmp", "abc");
  w.run_until(2, 2000ms);
  fs::rename(dir.path() / ".hidden.tmp", dir.path() / "moved.txt");
  fs::create_directories(dir.path() / "sub");
  w.run_until(3, 2000ms);
  w.io.run_for(200ms);
  CHECK(w.taken == std::vector<std::string>{"old.txt", "closed.txt", "moved.txt"});
  w.stop.emit(asio::cancellation_type::terminal);
  w.io.run_for(100ms);
}

TEST_CASE("folder watch: the pattern filters names  a scan takes a file once it is unchanged for settle") {
  interfaced::test::scratch_dir dir;
  folder_watch_options o;
  o.dir = dir.path();
  o.pattern = "*.pdf";
  o.settle = 300ms;
  o.scan = 1s;
  watched w;
  // A file written before the watcher started and still fresh: only a scan finds it, once settled.
  write(dir.path() / "fresh.pdf", "%PDF");
  write(dir.path() / "other.txt", "no");
  const auto t0 = std::chrono::steady_clock::now();
  w.start(o);
  w.run_until(1, 3000ms);
  REQUIRE(w.taken == std::vector<std::string>{"fresh.pdf"});
  CHECK(std::chrono::steady_clock::now() - t0 >= 250ms);
  w.io.run_for(300ms);
  CHECK(w.taken.size() == 1);
  CHECK(fs::exists(dir.path() / "other.txt"));
  w.stop.emit(asio::cancellation_type::terminal);
  w.io.run_for(100ms);
}

TEST_CASE("folder watch: a file the handler leaves in place is offered again by the next scan") {
  interfaced::test::scratch_dir dir;
  write(dir.path() / "stay.txt", "x");
  fs::last_write_time(dir.path() / "stay.txt", fs::file_time_type::clock::now() - 1h);
  folder_watch_options o;
  o.dir = dir.path();
  o.settle = 100ms;
  o.scan = 1s;
  watched w;
  w.start(o, /*move_away=*/false);
  w.run_until(2, 3000ms);
  CHECK(w.taken == std::vector<std::string>{"stay.txt", "stay.txt"});
  w.stop.emit(asio::cancellation_type::terminal);
  w.io.run_for(100ms);
}
