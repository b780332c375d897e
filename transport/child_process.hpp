#pragma once
// Child processes, for `interfaced demo` (the backend simulator, the daemon and two simulated
// analysers run as its children) and the end-to-end tests. One way to start one, watch it and end
// it:
//  - spawn() starts a program with posix_spawn (no fork() of a parent that may run threads):
//    stdin from /dev/null; stdout and stderr each inherited, discarded, written to a file or read
//    through a pipe; the parent's environment with the given entries added or replacing the
//    parent's; no signal blocked or ignored (the child is a new program, not part of this one).
//    A program that cannot be started is an error value, not a child that exits 127.
//  - Every wait has a deadline (wait_for). Pipes are drained while waiting, so a child that
//    writes a lot never blocks on a full pipe.
//  - The handle owns the process: destroying it while the child still runs sends SIGKILL and
//    reaps it, so an early return or a failed test never leaves a process behind.
// Exit statuses read as a shell reports them: the exit code, or 128 + the signal's number.
// Blocking and not thread-safe: for tools and tests, never for the daemon's io_context thread.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <boost/system/result.hpp>

namespace interfaced::transport {

// Where a child's stdout or stderr goes.
struct child_output {
  enum class kind {
    inherit,         // the parent's
    discard,         // /dev/null
    file,            // `path`, created if needed (mode 0666 less the umask)
    pipe,            // read by the handle while it waits: child_process::piped_out() / piped_err()
    same_as_stdout,  // stderr only: wherever stdout goes (the shell's 2>&1)
  };
  kind what = kind::inherit;
  std::filesystem::path path;  // kind::file
  bool append = false;         // kind::file: append to it instead of truncating it

  static child_output inherit() { return {}; }
  static child_output discard() { return {kind::discard, {}, false}; }
  static child_output to_file(std::filesystem::path p, bool append = false) {
    return {kind::file, std::move(p), append};
  }
  static child_output to_pipe() { return {kind::pipe, {}, false}; }
  static child_output to_stdout() { return {kind::same_as_stdout, {}, false}; }
};

struct child_options {
  std::vector<std::string> argv;  // argv[0] is the program too, unless `program` is set
  std::filesystem::path program;  // the file to run (e.g. /proc/self/exe); never searched in PATH
  std::vector<std::string> env;   // "NAME=value": added to the parent's environment, replacing NAME
  child_output out;
  child_output err;
};

class child_process {
 public:
  [[nodiscard]] static boost::system::result<child_process> spawn(const child_options& options);

  child_process(child_process&& other) noexcept;
  child_process& operator=(child_process&& other) noexcept;
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process();  // SIGKILL and reap a child that still runs

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

  // Sends `sig`; nothing once the child has been reaped (its pid may be another process's by then).
  void signal(int sig) const noexcept;

  // The exit status once the child has ended, waiting `limit` at most (0: just look); nullopt
  // while it still runs, -1 when its status was lost (reaped elsewhere: SIGCHLD ignored). Reads
  // the pipes meanwhile; once the child has ended, until they close (a grandchild may hold them
  // open) or `limit` passes.
  [[nodiscard]] std::optional<int> wait_for(std::chrono::milliseconds limit);
  [[nodiscard]] bool running() { return !wait_for(std::chrono::milliseconds(0)).has_value(); }

  // SIGTERM, `grace` for the child to end, then SIGKILL: its exit status (-1 for a moved-from
  // handle).
  int stop(std::chrono::milliseconds grace);

  // What the child wrote to a pipe (child_output::pipe) and was read so far.
  [[nodiscard]] const std::string& piped_out() const noexcept { return piped_[0]; }
  [[nodiscard]] const std::string& piped_err() const noexcept { return piped_[1]; }

 private:
  child_process() = default;
  // Reads what the pipes hold, waiting for more until `until`; returns when every pipe is closed
  // by the child or `until` passed.
  void read_pipes(std::chrono::steady_clock::time_point until);
  void close_pipes() noexcept;

  pid_t pid_ = -1;
  std::optional<int> status_;
  int pipe_fd_[2] = {-1, -1};  // read ends for stdout, stderr
  std::string piped_[2];
};

}  // namespace interfaced::transport
