#include "rerun/rerun_state.hpp"

#include <algorithm>

namespace interfaced::rerun {
bool contains(const std::vector<std::string>& names, std::string_view name) noexcept {
  return std::find(names.begin(), names.end(), name) != names.end();
}

namespace {

std::string auto_key(std::string_view sample, std::string_view parameter) {
  std::string k(sample);
  k.push_back('\x1f');
  k.append(parameter);
  return k;
}

}  // namespace

bool report_rerun::is_requested(std::string_view p) const noexcept { return contains(requested, p); }
bool report_rerun::is_fulfilled(std::string_view p) const noexcept { return contains(fulfilled, p); }

bool report_rerun::complete() const noexcept {
  return std::all_of(requested.begin(), requested.end(),
                     [&](const std::string& p) { return contains(fulfilled, p); });
}

int rerun_state::auto_rerun_count(std::string_view sample, std::string_view parameter) const {
  const auto it = auto_reruns.find(auto_key(sample, parameter));
  return it == auto_reruns.end() ? 0 : it->second.count;
}

void rerun_state::count_auto_rerun(std::string_view sample, std::string_view parameter,
                                   timestamp now) {
  auto& r = auto_reruns[auto_key(sample, parameter)];
  ++r.count;
  r.last = now;
}

void rerun_state::uncount_auto_rerun(std::string_view sample, std::string_view parameter) {
  const auto it = auto_reruns.find(auto_key(sample, parameter));
  if (it != auto_reruns.end() && --it->second.count <= 0) auto_reruns.erase(it);
}

}  // namespace interfaced::rerun
