#include "transport/durable_file.hpp"

#include <cerrno>

#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

namespace interfaced::transport {

namespace fs = std::filesystem;

namespace {

void fsync_path(const fs::path& p, int flags) {
  const int fd = ::open(p.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace

std::error_code move_file_durably(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  if (ec) return ec;
  fs::rename(from, to, ec);
  if (ec == std::errc::cross_device_link) {
    ec.clear();
    fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
    if (ec) return ec;
    fsync_path(to, O_RDONLY);
    fs::remove(from, ec);
    if (ec) return ec;
  } else if (ec) {
    return ec;
  }
  fsync_path(to.parent_path(), O_RDONLY | O_DIRECTORY);
  fsync_path(from.parent_path(), O_RDONLY | O_DIRECTORY);
  return {};
}

std::error_code write_text_file(const fs::path& file, std::string_view text, unsigned mode) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  if (ec) return ec;
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd < 0) return {errno, std::generic_category()};
  std::size_t at = 0;
  while (at < text.size()) {
    const auto n = ::write(fd, text.data() + at, text.size() - at);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::error_code wec(errno, std::generic_category());
      ::close(fd);
      return wec;
    }
    at += static_cast<std::size_t>(n);
  }
  std::error_code sec;
  if (::fsync(fd) != 0) sec.assign(errno, std::generic_category());
  ::close(fd);
  return sec;
}

std::error_code write_file_durably(const fs::path& file, std::string_view bytes) {
  const fs::path part = file.string() + ".part";
  auto ec = write_text_file(part, bytes, 0640);
  if (!ec) ec = move_file_durably(part, file);
  if (ec) {
    std::error_code ignored;
    fs::remove(part, ignored);
  }
  return ec;
}

}  // namespace interfaced::transport
