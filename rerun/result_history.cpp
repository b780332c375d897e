#include "rerun/result_history.hpp"

#include <algorithm>

namespace interfaced::rerun {

void result_history::tag(result& r) {
  // Device is part of the key: sample ids are only unique per analyser's numbering in practice,
  // but a sample's parameter measured on two analysers is still the same (S,P) for the lab --
  // so the key is sample and code alone, as rerun.md defines seen(S,P).
  std::string key = r.sample_id;
  key += '\x1f';
  key += r.code;
  auto [it, inserted] = seen_.try_emplace(key);
  auto& obs = it->second;
  const bool duplicate = std::any_of(obs.begin(), obs.end(), [&](const observation& o) {
    return o.value == r.value && o.observed_at == r.observed_at;
  });
  if (duplicate) {
    r.duplicate = true;
    return;
  }
  const bool seen = !obs.empty() || r.rerun_indicator;
  r.is_rerun = seen;
  r.rerun_number = seen ? instrument_triggered_rerun_number : 0;
  obs.push_back({r.value, r.observed_at});
  ++size_;
  if (inserted) order_.push_back(std::move(key));
  while (size_ > max_entries_ && !order_.empty()) {
    auto old = seen_.find(order_.front());
    if (old != seen_.end()) {
      size_ -= old->second.size();
      seen_.erase(old);
    }
    order_.pop_front();
  }
}

}  // namespace interfaced::rerun
