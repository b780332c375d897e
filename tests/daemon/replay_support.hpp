#pragma once
// Runs `interfaced replay` in-process (the same function the CLI calls) and parses its JSON lines.

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/replay.hpp"
#include "support/files.hpp"

namespace interfaced::test {

struct replay_run {
  int status = -1;
  std::vector<nlohmann::json> lines;
  std::string err;

  [[nodiscard]] std::vector<nlohmann::json> of_type(const std::string& type) const {
    std::vector<nlohmann::json> out;
    for (const auto& l : lines)
      if (l.at("type") == type) out.push_back(l);
    return out;
  }
};

inline replay_run replay(std::vector<std::string> files, std::string profile = {},
                         bool ignore_frame_numbers = false) {
  daemon::replay_options o;
  o.ignore_frame_numbers = ignore_frame_numbers;
  o.files = std::move(files);
  o.profile = std::move(profile);
  // A fixed zone: the same observed_at offsets on every machine (CET +01:00 / CEST +02:00).
  o.timezone = "Europe/Berlin";
  std::ostringstream out, err;
  replay_run r;
  r.status = daemon::run_replay(o, out, err);
  r.err = err.str();
  std::istringstream in(out.str());
  for (std::string line; std::getline(in, line);) r.lines.push_back(nlohmann::json::parse(line));
  return r;
}

// The replay of a capture, or nullopt (with a WARN) when ../shared is absent.
inline std::optional<replay_run> replay_capture(const std::string& rel, std::string profile = {}) {
  if (!capture(rel)) return std::nullopt;
  return replay({capture_path(rel)}, std::move(profile));
}

// The result for (sample, code) among replay's result lines; fails the test when absent.
inline nlohmann::json find_result(const std::vector<nlohmann::json>& results, const std::string& sample,
                                  const std::string& code) {
  for (const auto& r : results)
    if (r.at("sample_id") == sample && r.at("code") == code) return r;
  FAIL("no result for sample " << sample << " code " << code);
  return {};
}

// What every per-file capture test checks of a result.
inline void check_result(const nlohmann::json& r, const std::string& protocol, const std::string& value,
                         const std::string& unit, const std::vector<std::string>& flags) {
  INFO(r.dump());
  CHECK(r.at("value") == value);
  CHECK(r.at("unit") == unit);
  CHECK(r.at("flags").get<std::vector<std::string>>() == flags);
  CHECK(r.at("protocol") == protocol);
}

}  // namespace interfaced::test
