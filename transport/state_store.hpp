#pragma once
// The daemon's durable rerun state next to the outbox (`<outbox dir>/state.sqlite`): a small
// key/value table for documents the daemon persists whole (rerun_state as JSON, the last
// parameter configuration per device from the backend) and the result history behind seen(S,P)
// (rerun.md, qualify_rerun), implementing rerun::result_store.
//
// Contract:
//  - Opening creates the file and tables; failures throw std::runtime_error naming the file
//    (a start-up error). Later failures of put() / record() throw std::runtime_error too: the
//    caller must not acknowledge a batch whose state could not be stored.
//  - begin() / commit() group the writes of one batch into one transaction (one fsync); without
//    them every write commits on its own.
//  - Calls are synchronous on the caller's thread. The rows are few and small (one batch's
//    results, one JSON document); moving them to a worker like the outbox is future work.
//  - No clock: received_at and prune cutoffs are passed in.

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "rerun/result_store.hpp"

struct sqlite3;

namespace interfaced::transport {

class state_store final : public rerun::result_store {
 public:
  explicit state_store(const std::filesystem::path& file);
  ~state_store() override;
  state_store(const state_store&) = delete;
  state_store& operator=(const state_store&) = delete;

  // Key/value documents.
  [[nodiscard]] std::optional<std::string> get(std::string_view key) const;
  void put(std::string_view key, std::string_view value);

  void begin();
  void commit();
  void rollback() noexcept;

  // rerun::result_store
  [[nodiscard]] bool has(std::string_view sample, std::string_view parameter) const override;
  [[nodiscard]] bool has_observation(std::string_view sample, std::string_view parameter,
                                     std::string_view value, std::string_view observed_at) const override;
  [[nodiscard]] std::optional<rerun::observation> latest(std::string_view sample,
                                                         std::string_view parameter) const override;
  void record(std::string_view sample, std::string_view parameter, rerun::observation o) override;
  std::size_t prune(rerun::timestamp cutoff) override;

  [[nodiscard]] const std::filesystem::path& file() const noexcept { return file_; }

 private:
  void exec(const char* sql) const;

  std::filesystem::path file_;
  sqlite3* db_ = nullptr;
  bool in_tx_ = false;
};

}  // namespace interfaced::transport
