#pragma once
// A page in headless chromium driven the way a person would use it, for tests that act on a page
// (click, type) rather than read its DOM once (--dump-dom): the Chrome DevTools Protocol over
// --remote-debugging-pipe (fd 3: commands in, fd 4: replies and events out, each message JSON
// ending in NUL), so no WebSocket client is needed. Every wait is bounded; the browser is killed
// when the handle dies.

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

extern char** environ;

namespace interfaced::e2e {

using json = nlohmann::json;

class cdp_page {
 public:
  // Starts chromium (profile and logs under `dir`) with one page at `url`.
  cdp_page(const std::filesystem::path& chromium, const std::filesystem::path& dir, const std::string& url) {
    int in[2], out[2];
    REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 3);
    posix_spawn_file_actions_adddup2(&fa, out[1], 4);
    const std::string log = (dir / "chromium-cdp.log").string();
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<std::string> args{chromium.string(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
                                  "--user-data-dir=" + (dir / "chromium-cdp-profile").string(),
                                  "--remote-debugging-pipe", "about:blank"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // Its own process group: the renderers die with it.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    const int rc = ::posix_spawn(&pid_, argv[0], &fa, &attr, argv.data(), environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    to_ = in[1];
    from_ = out[0];
    REQUIRE(rc == 0);
    const json target = command("Target.createTarget", {{"url", url}});
    const json attached =
        command("Target.attachToTarget", {{"targetId", target.at("targetId")}, {"flatten", true}});
    session_ = attached.at("sessionId").get<std::string>();
  }
  ~cdp_page() {
    if (to_ >= 0) ::close(to_);
    if (from_ >= 0) ::close(from_);
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
  }
  cdp_page(const cdp_page&) = delete;
  cdp_page& operator=(const cdp_page&) = delete;

  // Evaluates `expression` in the page (a promise is awaited) and returns its value as JSON.
  json eval(const std::string& expression) {
    const json r = command("Runtime.evaluate",
                           {{"expression", expression}, {"awaitPromise", true}, {"returnByValue", true}}, session_);
    if (r.contains("exceptionDetails")) FAIL("page script failed: " << r["exceptionDetails"].dump());
    return r.at("result").value("value", json());
  }

  // Waits until the expression is truthy in the page, polled every 50 ms for at most `limit_ms`;
  // false on timeout. A page still loading (its script context replaced) is polled again.
  bool wait_for(const std::string& condition, int limit_ms = 10000) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(limit_ms);
    for (;;) {
      const json r = command("Runtime.evaluate",
                             {{"expression", "!!(" + condition + ")"}, {"returnByValue", true}}, session_, true);
      if (r.contains("result") && r["result"].value("value", json()) == json(true)) return true;
      if (std::chrono::steady_clock::now() >= until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

 private:
  // The command's result; with `tolerant`, an error answer is {} instead of a failed test.
  json command(const std::string& method, const json& params, const std::string& session = {}, bool tolerant = false) {
    const int id = ++next_id_;
    json msg = {{"id", id}, {"method", method}, {"params", params}};
    if (!session.empty()) msg["sessionId"] = session;
    std::string text = msg.dump();
    text.push_back('\0');
    for (std::size_t done = 0; done < text.size();) {
      const ssize_t n = ::write(to_, text.data() + done, text.size() - done);
      REQUIRE(n > 0);
      done += static_cast<std::size_t>(n);
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      for (auto nul = buf_.find('\0'); nul != std::string::npos; nul = buf_.find('\0')) {
        const json reply = json::parse(buf_.substr(0, nul), nullptr, false);
        buf_.erase(0, nul + 1);
        if (!reply.is_object() || reply.value("id", 0) != id) continue;  // events, other replies
        if (reply.contains("error")) {
          if (tolerant) return json::object();
          FAIL(method << ": " << reply["error"].dump());
        }
        return reply.value("result", json::object());
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) FAIL(method << ": no answer from chromium within 30 s");
      pollfd p{from_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[65536];
      const ssize_t n = ::read(from_, chunk, sizeof chunk);
      if (n <= 0) FAIL(method << ": chromium closed its debugging pipe");
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  int next_id_ = 0;
  std::string buf_;
  std::string session_;
};

}  // namespace interfaced::e2e
