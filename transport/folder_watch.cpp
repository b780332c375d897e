#include "transport/folder_watch.hpp"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace interfaced::transport {

namespace asio = boost::asio;
namespace fs = std::filesystem;

bool folder_name_matches(std::string_view pattern, const std::string& name) noexcept {
  const std::string p(pattern);
  return ::fnmatch(p.c_str(), name.c_str(), 0) == 0;
}

namespace {

struct seen_file {
  std::uintmax_t size = 0;
  fs::file_time_type mtime{};
  std::chrono::steady_clock::time_point since{};
};

// What the watcher and its inotify reader share; the reader outlives a cancelled watcher until
// its read completes with an error.
struct watch_state {
  explicit watch_state(const asio::any_io_executor& ex) : wake(ex), inotify(ex) {}
  asio::steady_timer wake;
  asio::posix::stream_descriptor inotify;
  std::deque<std::string> ready;
  std::set<std::string> queued;
  bool rescan = false;  // the inotify queue overflowed: events were lost
  bool closed = false;
  bool busy = false;  // a file is with the caller
};

bool takeable(const folder_watch_options& o, const std::string& name) {
  return !name.empty() && name.front() != '.' && folder_name_matches(o.pattern, name);
}

void enqueue(watch_state& s, const std::string& name) {
  if (s.queued.insert(name).second) s.ready.push_back(name);
}

// Outside the coroutine: inotify_event ends with a flexible array member, which cannot live in a
// coroutine frame.
void take_events(const char* buf, std::size_t n, watch_state& s, const folder_watch_options& o) {
  for (std::size_t at = 0; at + sizeof(inotify_event) <= n;) {
    inotify_event ev{};
    std::memcpy(&ev, buf + at, sizeof ev);
    if ((ev.mask & IN_Q_OVERFLOW) != 0) s.rescan = true;
    if (ev.len > 0 && (ev.mask & IN_ISDIR) == 0) {
      const std::string name(buf + at + sizeof(inotify_event));
      if (takeable(o, name)) enqueue(s, name);
    }
    at += sizeof(inotify_event) + ev.len;
  }
}

asio::awaitable<void> read_inotify(std::shared_ptr<watch_state> s, folder_watch_options o) {
  auto buf = std::make_unique<std::array<char, 16384>>();
  for (;;) {
    auto [ec, n] = co_await s->inotify.async_read_some(asio::buffer(*buf), asio::as_tuple(asio::use_awaitable));
    if (ec || s->closed) co_return;
    take_events(buf->data(), n, *s, o);
    s->wake.cancel();
  }
}

}  // namespace

asio::awaitable<void> watch_folder(folder_watch_options o, folder_file_handler on_file, event_log log) {
  auto ex = co_await asio::this_coro::executor;
  auto s = std::make_shared<watch_state>(ex);
  struct closer {
    std::shared_ptr<watch_state> s;
    ~closer() {
      s->closed = true;
      boost::system::error_code ignored;
      s->inotify.close(ignored);
    }
  } close_on_exit{s};

  // The folder may be a share not mounted yet: looked for again, one line per outage.
  for (unsigned attempt = 0;; ++attempt) {
    std::error_code ec;
    if (fs::is_directory(o.dir, ec)) break;
    if (attempt == 0)
      emit(log, "folder " + o.dir.string() + " is missing or not a folder; looking again every few seconds [FOLDER-001]");
    s->wake.expires_after(std::chrono::milliseconds(std::min(5000u, 250u << std::min(attempt, 5u))));
    auto [wec] = co_await s->wake.async_wait(asio::as_tuple(asio::use_awaitable));
    if (wec) co_return;  // cancelled
  }

  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0 || ::inotify_add_watch(fd, o.dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
    emit(log, "inotify on " + o.dir.string() + " failed (" + std::strerror(errno) + "); the folder is scanned every " +
                  std::to_string(o.scan.count() > 0 ? o.scan.count() : 10) + " s instead [FOLDER-002]");
    if (fd >= 0) ::close(fd);
    if (o.scan.count() == 0) o.scan = std::chrono::seconds(10);
  } else {
    s->inotify.assign(fd);
    asio::co_spawn(ex, read_inotify(s, o), asio::detached);
  }

  std::map<std::string, seen_file> unsettled;  // found by a scan, not complete yet
  auto scan = [&] {
    const auto now = std::chrono::steady_clock::now();
    const auto now_fs = fs::file_time_type::clock::now();
    std::error_code ec;
    std::set<std::string> present;
    for (fs::directory_iterator it(o.dir, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code fec;
      if (!it->is_regular_file(fec)) continue;
      const std::string name = it->path().filename().string();
      if (!takeable(o, name) || s->queued.count(name) != 0) continue;
      present.insert(name);
      const auto size = it->file_size(fec);
      const auto mtime = it->last_write_time(fec);
      if (fec) continue;
      // Unchanged since the last scan for `settle`, or last written `settle` ago already (a file
      // left from before a restart).
      auto [u, fresh] = unsettled.try_emplace(name, seen_file{size, mtime, now});
      if (!fresh && (u->second.size != size || u->second.mtime != mtime)) u->second = {size, mtime, now};
      if (now_fs - mtime >= o.settle || (!fresh && now - u->second.since >= o.settle)) {
        unsettled.erase(u);
        enqueue(*s, name);
      }
    }
    std::erase_if(unsettled, [&](const auto& kv) { return present.count(kv.first) == 0; });
    if (ec) emit(log, "cannot list folder " + o.dir.string() + ": " + ec.message() + " [FOLDER-001]");
  };

  scan();
  auto next_scan = std::chrono::steady_clock::now() + o.scan;
  for (;;) {
    if (s->rescan || (o.scan.count() > 0 && std::chrono::steady_clock::now() >= next_scan)) {
      s->rescan = false;
      scan();
      next_scan = std::chrono::steady_clock::now() + o.scan;
    }
    while (!s->ready.empty()) {
      const std::string name = s->ready.front();
      s->ready.pop_front();
      std::error_code ec;
      const fs::path file = o.dir / name;
      if (!fs::is_regular_file(file, ec)) {  // taken already (an event after the scan found it)
        s->queued.erase(name);
        continue;
      }
      auto done = std::make_shared<bool>(false);
      s->busy = true;
      on_file(file, [s, done] {
        *done = true;
        s->wake.cancel();
      });
      while (!*done) {
        s->wake.expires_after(std::chrono::seconds(1));
        auto [wec] = co_await s->wake.async_wait(asio::as_tuple(asio::use_awaitable));
        if (wec && !*done && (co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none)
          co_return;
      }
      s->busy = false;
      s->queued.erase(name);
    }
    // Files still settling are looked at again soon; otherwise the next scan (or an event).
    auto wait = o.scan.count() > 0 ? std::chrono::duration_cast<std::chrono::milliseconds>(next_scan - std::chrono::steady_clock::now())
                                   : std::chrono::milliseconds(std::chrono::hours(24));
    if (!unsettled.empty())
      wait = std::min(wait, std::max(std::chrono::milliseconds(100), o.settle / 2));
    if (wait.count() > 0) {
      s->wake.expires_after(wait);
      auto [wec] = co_await s->wake.async_wait(asio::as_tuple(asio::use_awaitable));
      if (wec && (co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none) co_return;
    }
    if (!unsettled.empty()) {
      scan();
    }
  }
}

std::optional<std::string> read_small_file(const fs::path& file, std::uint64_t max_bytes, bool& too_big,
                                           std::string& error) {
  too_big = false;
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec) {
    error = ec.message();
    return std::nullopt;
  }
  if (size > max_bytes) {
    too_big = true;
    return std::nullopt;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    error = std::strerror(errno);
    return std::nullopt;
  }
  std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) {
    error = "read error";
    return std::nullopt;
  }
  return bytes;
}

}  // namespace interfaced::transport
