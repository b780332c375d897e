#include "rerun/result_store.hpp"

#include <algorithm>

#include "rerun/result_key.hpp"

namespace interfaced::rerun {

std::string memory_result_store::key(std::string_view sample, std::string_view parameter) {
  // Unit separator: neither ASTM nor HL7 sample ids or codes can contain it.
  std::string k;
  k.reserve(sample.size() + parameter.size() + 1);
  k.append(sample).push_back('\x1f');
  k.append(parameter);
  return k;
}

const std::vector<observation>* memory_result_store::find(std::string_view sample,
                                                          std::string_view parameter) const {
  const auto it = by_key_.find(key(sample, parameter));
  return it == by_key_.end() ? nullptr : &it->second;
}

bool memory_result_store::has(std::string_view sample, std::string_view parameter) const {
  const auto* obs = find(sample, parameter);
  return obs != nullptr && !obs->empty();
}

bool memory_result_store::has_observation(std::string_view sample, std::string_view parameter,
                                          std::string_view value,
                                          std::string_view observed_at) const {
  const auto* obs = find(sample, parameter);
  if (obs == nullptr) return false;
  return std::any_of(obs->begin(), obs->end(), [&](const observation& o) {
    return o.value == value && o.observed_at == observed_at;
  });
}

std::optional<observation> memory_result_store::latest(std::string_view sample,
                                                       std::string_view parameter) const {
  const auto* obs = find(sample, parameter);
  if (obs == nullptr || obs->empty()) return std::nullopt;
  return obs->back();
}

std::optional<observation> memory_result_store::latest_of_parameter(std::string_view sample,
                                                                    std::string_view parameter) const {
  // Every key of the parameter starts with key(sample, parameter): one ordered range.
  const std::string prefix = key(sample, parameter);
  const std::size_t name_at = sample.size() + 1;
  std::optional<observation> best;
  for (auto it = by_key_.lower_bound(prefix); it != by_key_.end() && it->first.starts_with(prefix); ++it) {
    if (it->second.empty() || !is_key_of(std::string_view(it->first).substr(name_at), parameter)) continue;
    if (!best || it->second.back().received_at >= best->received_at) best = it->second.back();
  }
  return best;
}

void memory_result_store::record(std::string_view sample, std::string_view parameter, observation o) {
  by_key_[key(sample, parameter)].push_back(std::move(o));
  ++size_;
}

std::size_t memory_result_store::prune(timestamp cutoff) {
  std::size_t removed = 0;
  for (auto it = by_key_.begin(); it != by_key_.end();) {
    auto& obs = it->second;
    const auto old_size = obs.size();
    std::erase_if(obs, [&](const observation& o) { return o.received_at < cutoff; });
    removed += old_size - obs.size();
    it = obs.empty() ? by_key_.erase(it) : std::next(it);
  }
  size_ -= removed;
  return removed;
}

}  // namespace interfaced::rerun
