#pragma once
// The daemon's own durable result history, the first source of seen(S,P) in rerun.md
// ("a result for (S,P) was already received earlier"). Keyed by sample id and machine name.
// An interface so the daemon can back it with SQLite; memory_result_store is the in-memory
// implementation used by tests, replay and rules tests. No clock: times are passed in.

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rerun/wall_time.hpp"

namespace interfaced::rerun {

// One received result of (S,P), as much as duplicate detection and rules need.
struct observation {
  std::string value;                 // the text as sent
  std::optional<double> numeric;     // previous.value for rules
  std::string observed_at;           // as sent; with value, identifies a duplicate delivery
  timestamp received_at{};           // when the daemon received it (for prune)
};

class result_store {
 public:
  virtual ~result_store() = default;

  // seen(S,P): any result for (S,P) recorded.
  [[nodiscard]] virtual bool has(std::string_view sample, std::string_view parameter) const = 0;
  // The very same result (value and observation time) recorded before: a duplicate delivery.
  [[nodiscard]] virtual bool has_observation(std::string_view sample, std::string_view parameter,
                                             std::string_view value,
                                             std::string_view observed_at) const = 0;
  // The most recently recorded result of (S,P), for previous.value / previous.observed_at.
  [[nodiscard]] virtual std::optional<observation> latest(std::string_view sample,
                                                          std::string_view parameter) const = 0;
  // The most recent result of machine name `parameter` under any of its keys (the name alone, or
  // with a sub-id or result type: rerun/result_key.hpp), for what speaks the backend's terms:
  // waiting lists, host queries, order download.
  [[nodiscard]] virtual std::optional<observation> latest_of_parameter(std::string_view sample,
                                                                       std::string_view parameter) const = 0;
  virtual void record(std::string_view sample, std::string_view parameter, observation o) = 0;
  // Forgets results received before `cutoff`; returns how many were removed.
  virtual std::size_t prune(timestamp cutoff) = 0;
};

class memory_result_store final : public result_store {
 public:
  [[nodiscard]] bool has(std::string_view sample, std::string_view parameter) const override;
  [[nodiscard]] bool has_observation(std::string_view sample, std::string_view parameter,
                                     std::string_view value,
                                     std::string_view observed_at) const override;
  [[nodiscard]] std::optional<observation> latest(std::string_view sample,
                                                  std::string_view parameter) const override;
  [[nodiscard]] std::optional<observation> latest_of_parameter(std::string_view sample,
                                                               std::string_view parameter) const override;
  void record(std::string_view sample, std::string_view parameter, observation o) override;
  std::size_t prune(timestamp cutoff) override;

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  static std::string key(std::string_view sample, std::string_view parameter);
  const std::vector<observation>* find(std::string_view sample, std::string_view parameter) const;

  std::map<std::string, std::vector<observation>, std::less<>> by_key_;
  std::size_t size_ = 0;
};

}  // namespace interfaced::rerun
