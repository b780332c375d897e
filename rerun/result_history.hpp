#pragma once
// seen(S,P) from the results this process has already received, and the tag it implies when no
// waiting list is known (../shared/spec/rerun.md, qualify_rerun, rows "any / no / no" and
// "0 / - / - / yes"): a first result is rerun 0; a new observation of a (sample, parameter) seen
// before, or one the analyser marked as a repeat, is an instrument-triggered rerun (-1); the very
// same result delivered again (same value, same observation time) is a duplicate, not a rerun.
// Pure, in memory; bounded by max_entries (oldest samples forgotten first).

#include <cstddef>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "parsers/model.hpp"

namespace interfaced::rerun {

inline constexpr int instrument_triggered_rerun_number = -1;

class result_history {
 public:
  explicit result_history(std::size_t max_entries = 1'000'000) : max_entries_(max_entries) {}

  // Tags r (is_rerun, rerun_number, duplicate) and records it. Results of one batch must be
  // tagged in transmission order (two results for the same (S,P) in one batch: the second is seen).
  void tag(result& r);

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  struct observation {
    std::string value;
    std::string observed_at;
  };
  std::size_t max_entries_;
  std::size_t size_ = 0;
  std::unordered_map<std::string, std::vector<observation>> seen_;
  std::deque<std::string> order_;  // keys in insertion order, for bounding
};

}  // namespace interfaced::rerun
