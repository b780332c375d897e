#pragma once
// A folder device's I/O (file-reports.md "Folder devices"): watching the export folder for
// complete files, and the filesystem moves that follow.
//   complete = closed after writing or moved in (inotify IN_CLOSE_WRITE / IN_MOVED_TO, driven by
//   asio::posix::stream_descriptor on the inotify fd, on the daemon's one loop), or, where inotify
//   sees nothing (network shares), found by a scan every `scan` with size and mtime unchanged for
//   `settle`. The folder is scanned at start, so files dropped while the daemon was down are taken.
// Files are handed to the caller one at a time, in arrival order; the next waits until the caller
// says the previous one is finished (moved away, or left for a later scan). Dot files (writers'
// temporary names) and sub-folders (done/, failed/) are never taken.

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "transport/durable_file.hpp"  // move_file_durably, write_text_file (folder devices)
#include "transport/event_log.hpp"

namespace interfaced::transport {

struct folder_watch_options {
  std::filesystem::path dir;
  std::string pattern = "*";  // fnmatch(3) glob over the file name
  std::chrono::milliseconds settle{2000};
  std::chrono::seconds scan{10};  // 0: inotify only (and the scan at start)
};

// on_file(path, finished): the caller calls finished() exactly once, on the loop, when it is done
// with the file (possibly later). Runs until cancelled. A missing folder is looked for again with
// backoff; `log` gets a line ending with a FOLDER code for it.
using folder_file_handler = std::function<void(std::filesystem::path, std::function<void()> finished)>;
[[nodiscard]] boost::asio::awaitable<void> watch_folder(folder_watch_options o, folder_file_handler on_file,
                                                       event_log log);

// Whether `name` matches the glob (fnmatch(3), no flags).
[[nodiscard]] bool folder_name_matches(std::string_view pattern, const std::string& name) noexcept;

// The whole file, or nullopt with `error` set (strerror). Files over `max_bytes` are not read
// (`too_big` set).
[[nodiscard]] std::optional<std::string> read_small_file(const std::filesystem::path& file, std::uint64_t max_bytes,
                                                         bool& too_big, std::string& error);

}  // namespace interfaced::transport
