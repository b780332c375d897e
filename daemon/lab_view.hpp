#pragma once
// The lab's view on the health endpoint's address (issue #16): the pages `/`, `/messages`, `/qc`,
// `/stats`, `/help` (assets built into the binary, daemon/assets.hpp) and the JSON they read:
// GET /api/stats (as `interfaced stats`), /api/help, /api/messages. /health carries the devices,
// the outbox and the alarms the dashboard shows. /api/qc/series belongs to the QC work; until it
// exists it answers 404 and the QC page says so.
//
// Reads the outbox file on connections of its own (WAL: readers never block the outbox worker),
// opened on first use. Reads run on the caller's (event-loop) thread: each is bounded (one summary
// range, one sample's messages, at most `max_messages` rows).

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/help_command.hpp"
#include "rerun/lab_time.hpp"
#include "transport/http_server.hpp"

namespace interfaced::transport {
class history_store;
class outbox_admin;
}  // namespace interfaced::transport

namespace interfaced::daemon {

// "a=1&b=x%20y" -> [(a,1), (b,"x y")] ('+' is a space, as forms send it).
[[nodiscard]] std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query);

class lab_view {
 public:
  // admin: health.admin_token_file is set, so the message browser offers retry / set aside (the
  // health endpoint has already checked the bearer token of every POST before it gets here).
  lab_view(std::filesystem::path outbox_file, std::filesystem::path help_file, std::function<rerun::lab_zone()> zone,
           bool admin = false);
  ~lab_view();
  lab_view(const lab_view&) = delete;
  lab_view& operator=(const lab_view&) = delete;

  // The answer for a request this view serves; nullopt: not one of its paths. POST
  // /api/messages/retry and /api/messages/set-aside (JSON {"id","by","reason"}) need the CSRF token
  // GET /api/messages hands out (header X-CSRF-Token), and are audited in the service log.
  [[nodiscard]] std::optional<transport::http_reply> handle(const transport::http_request_view& req,
                                                            std::chrono::system_clock::time_point now);

  // The CSRF token pages send back with their POSTs (X-CSRF-Token); random per start.
  [[nodiscard]] const std::string& csrf() const noexcept { return csrf_; }

  static constexpr std::size_t max_messages = 200;

 private:
  transport::http_reply stats(const std::vector<std::pair<std::string, std::string>>& q,
                              std::chrono::system_clock::time_point now);
  transport::http_reply help(const std::vector<std::pair<std::string, std::string>>& q);
  transport::http_reply messages(const std::vector<std::pair<std::string, std::string>>& q);
  transport::http_reply action(const std::string& path, const transport::http_request_view& req);

  std::filesystem::path outbox_file_;
  std::filesystem::path help_file_;
  std::function<rerun::lab_zone()> zone_;
  std::unique_ptr<transport::history_store> history_;
  std::unique_ptr<transport::outbox_admin> admin_;
  std::optional<help_set> help_;
  bool admin_enabled_;
  std::string csrf_;  // random per start
};

}  // namespace interfaced::daemon
