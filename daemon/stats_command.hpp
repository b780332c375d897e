#pragma once
// `interfaced stats` (the historical summary, spec/history.md) and GET /api/stats: one reading
// path, rerun/history.hpp's aggregation over transport/history_store.hpp's rows.

#include <chrono>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "rerun/history.hpp"
#include "rerun/lab_time.hpp"

namespace interfaced::transport {
class history_store;
}

namespace interfaced::daemon {

struct stats_command {
  std::string config;
  std::string file;  // the outbox file itself
  std::string action = "query";  // query | rebuild | prune
  std::vector<std::pair<std::string, std::string>> params;  // as /api/stats names them
  std::string rebuild_from;
  int before_year = 0;
};

int run_stats_command(const stats_command& c, std::ostream& out, std::ostream& err);

struct stats_answer {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};
// The answer to a query (params as named in the issue), read from `store` in `zone`; `now`
// decides "today" for defaults.
[[nodiscard]] stats_answer answer_stats(const transport::history_store& store, const rerun::lab_zone& zone,
                                        const std::vector<std::pair<std::string, std::string>>& params,
                                        std::chrono::system_clock::time_point now, const std::string& default_format);

}  // namespace interfaced::daemon
