#include "transport/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string_view>
#include <thread>
#include <utility>

namespace interfaced::transport {
namespace {

using steady = std::chrono::steady_clock;

boost::system::error_code sys_error(int err) { return {err, boost::system::system_category()}; }

int status_of(int wait_status) {
  return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

// The parent's environment less the names `extra` sets, then `extra`.
std::vector<std::string> environment_with(const std::vector<std::string>& extra) {
  auto name_of = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const bool replaced = std::any_of(extra.begin(), extra.end(), [&](const std::string& x) {
      return name_of(x) == name_of(entry);
    });
    if (!replaced) out.emplace_back(entry);
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

std::vector<char*> pointers_to(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// posix_spawn's two setup objects, destroyed on every return path; the write ends of the pipes
// the parent closes once the child has its copies.
struct spawn_setup {
  posix_spawn_file_actions_t actions{};
  posix_spawnattr_t attributes{};
  int write_ends[2] = {-1, -1};
  spawn_setup() {
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawnattr_init(&attributes);
  }
  ~spawn_setup() {
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attributes);
    for (const int fd : write_ends)
      if (fd >= 0) ::close(fd);
  }
  spawn_setup(const spawn_setup&) = delete;
  spawn_setup& operator=(const spawn_setup&) = delete;
};

}  // namespace

boost::system::result<child_process> child_process::spawn(const child_options& o) {
  if (o.argv.empty() || o.out.what == child_output::kind::same_as_stdout) return sys_error(EINVAL);
  const std::string program = o.program.empty() ? o.argv.front() : o.program.string();
  std::vector<std::string> args = o.argv;
  std::vector<std::string> env = environment_with(o.env);
  std::vector<char*> argv = pointers_to(args);
  std::vector<char*> envp = pointers_to(env);

  child_process c;
  spawn_setup s;
  // A child reading its stdin would take the terminal's input (or wait on it forever in a test).
  ::posix_spawn_file_actions_addopen(&s.actions, 0, "/dev/null", O_RDONLY, 0);
  for (int i = 0; i < 2; ++i) {
    const child_output& to = i == 0 ? o.out : o.err;
    const int fd = i + 1;
    switch (to.what) {
      case child_output::kind::inherit:
        break;
      case child_output::kind::discard:
        ::posix_spawn_file_actions_addopen(&s.actions, fd, "/dev/null", O_WRONLY, 0);
        break;
      case child_output::kind::file:
        ::posix_spawn_file_actions_addopen(&s.actions, fd, to.path.c_str(),
                                           O_WRONLY | O_CREAT | (to.append ? O_APPEND : O_TRUNC),
                                           0666);
        break;
      case child_output::kind::pipe: {
        // Close-on-exec on both ends: the child keeps only the copy dup2 gives it as fd 1 or 2, and
        // no other child inherits either end (a pipe whose write end leaks never reaches EOF).
        int p[2] = {-1, -1};
        if (::pipe2(p, O_CLOEXEC) != 0) return sys_error(errno);
        c.pipe_fd_[i] = p[0];
        s.write_ends[i] = p[1];
        ::posix_spawn_file_actions_adddup2(&s.actions, p[1], fd);
        break;
      }
      case child_output::kind::same_as_stdout:
        ::posix_spawn_file_actions_adddup2(&s.actions, 1, 2);
        break;
    }
  }
  // Blocked and ignored signals survive exec: a parent that blocks or ignores SIGTERM (a test
  // harness, nohup) would otherwise start a child that never sees the SIGTERM meant to stop it.
  sigset_t none;
  sigemptyset(&none);
  sigset_t all;
  sigfillset(&all);
  ::posix_spawnattr_setsigmask(&s.attributes, &none);
  ::posix_spawnattr_setsigdefault(&s.attributes, &all);
  ::posix_spawnattr_setflags(&s.attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid = -1;
  // glibc reports a failed open, dup2 or exec in the child as posix_spawn's result.
  const int rc =
      ::posix_spawn(&pid, program.c_str(), &s.actions, &s.attributes, argv.data(), envp.data());
  if (rc != 0) return sys_error(rc);
  c.pid_ = pid;
  return c;
}

child_process::child_process(child_process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      status_(std::exchange(other.status_, std::nullopt)),
      pipe_fd_{std::exchange(other.pipe_fd_[0], -1), std::exchange(other.pipe_fd_[1], -1)},
      piped_{std::move(other.piped_[0]), std::move(other.piped_[1])} {}

child_process& child_process::operator=(child_process&& other) noexcept {
  if (this != &other) {
    child_process old(std::move(*this));  // ends what this handle owned
    pid_ = std::exchange(other.pid_, -1);
    status_ = std::exchange(other.status_, std::nullopt);
    pipe_fd_[0] = std::exchange(other.pipe_fd_[0], -1);
    pipe_fd_[1] = std::exchange(other.pipe_fd_[1], -1);
    piped_[0] = std::move(other.piped_[0]);
    piped_[1] = std::move(other.piped_[1]);
  }
  return *this;
}

child_process::~child_process() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
  }
  close_pipes();
}

void child_process::signal(int sig) const noexcept {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

std::optional<int> child_process::wait_for(std::chrono::milliseconds limit) {
  const auto until = steady::now() + limit;
  while (!status_ && pid_ > 0) {
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = status_of(st);
      break;
    }
    if (r < 0 && errno == ECHILD) {
      // Reaped elsewhere (SIGCHLD set to SIG_IGN): ended, with its status lost.
      status_ = -1;
      break;
    }
    const auto now = steady::now();
    if (now >= until) {
      read_pipes(now);
      return std::nullopt;
    }
    // waitpid has no timeout: look again after a short slice, reading the pipes meanwhile.
    const auto slice_end = std::min(until, now + std::chrono::milliseconds(5));
    if (pipe_fd_[0] < 0 && pipe_fd_[1] < 0) {
      std::this_thread::sleep_until(slice_end);
    } else {
      read_pipes(slice_end);
    }
  }
  if (!status_) return std::nullopt;  // never started (a moved-from handle)
  read_pipes(until);
  return status_;
}

int child_process::stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  signal(SIGTERM);
  if (const auto st = wait_for(grace)) return *st;
  signal(SIGKILL);
  // SIGKILL cannot be refused: the child ends as soon as the kernel gets to it.
  int st = 0;
  pid_t r = -1;
  while ((r = ::waitpid(pid_, &st, 0)) < 0 && errno == EINTR) {
  }
  status_ = r == pid_ ? status_of(st) : -1;
  read_pipes(steady::now());
  return *status_;
}

void child_process::read_pipes(steady::time_point until) {
  while (pipe_fd_[0] >= 0 || pipe_fd_[1] >= 0) {
    pollfd fds[2];
    int which[2];
    nfds_t n = 0;
    for (int i = 0; i < 2; ++i) {
      if (pipe_fd_[i] < 0) continue;
      fds[n] = {pipe_fd_[i], POLLIN, 0};
      which[n++] = i;
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - steady::now()).count();
    const int ready = ::poll(fds, n, static_cast<int>(std::max<decltype(left)>(left, 0)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return;
    for (nfds_t k = 0; k < n; ++k) {
      if (fds[k].revents == 0) continue;
      const int i = which[k];
      char buf[65536];
      const ssize_t got = ::read(pipe_fd_[i], buf, sizeof buf);
      if (got > 0) {
        piped_[i].append(buf, static_cast<std::size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        ::close(pipe_fd_[i]);  // the child closed its end (or the pipe failed): nothing more comes
        pipe_fd_[i] = -1;
      }
    }
  }
}

void child_process::close_pipes() noexcept {
  for (int& fd : pipe_fd_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

}  // namespace interfaced::transport
