#include "transport/alarms.hpp"

#include <algorithm>
#include <tuple>

namespace interfaced::transport {

namespace {
bool same(const alarm_entry& a, std::string_view code, std::string_view subject) { return a.code == code && a.subject == subject; }
}  // namespace

bool alarm_board::raise(std::string_view code, std::string_view subject, std::string text,
                        std::chrono::system_clock::time_point now) {
  alarm_entry changed;
  listener f;
  {
    std::lock_guard lock(m_);
    const auto it = std::find_if(alarms_.begin(), alarms_.end(), [&](const alarm_entry& a) { return same(a, code, subject); });
    if (it != alarms_.end()) {
      it->text = std::move(text);
      return false;
    }
    alarm_entry a{std::string(code), std::string(subject), std::move(text), now};
    const auto pos = std::upper_bound(alarms_.begin(), alarms_.end(), a, [](const alarm_entry& x, const alarm_entry& y) {
      return std::tie(x.code, x.subject) < std::tie(y.code, y.subject);
    });
    changed = *alarms_.insert(pos, std::move(a));
    f = listener_;
  }
  if (f) f(changed, true);
  return true;
}

bool alarm_board::clear(std::string_view code, std::string_view subject) {
  alarm_entry changed;
  listener f;
  {
    std::lock_guard lock(m_);
    const auto it = std::find_if(alarms_.begin(), alarms_.end(), [&](const alarm_entry& a) { return same(a, code, subject); });
    if (it == alarms_.end()) return false;
    changed = std::move(*it);
    alarms_.erase(it);
    f = listener_;
  }
  if (f) f(changed, false);
  return true;
}

void alarm_board::clear_code(std::string_view code) {
  std::vector<std::string> subjects;
  {
    std::lock_guard lock(m_);
    for (const auto& a : alarms_)
      if (a.code == code) subjects.push_back(a.subject);
  }
  for (const auto& s : subjects) clear(code, s);
}

bool alarm_board::active(std::string_view code, std::string_view subject) const {
  std::lock_guard lock(m_);
  return std::any_of(alarms_.begin(), alarms_.end(), [&](const alarm_entry& a) { return same(a, code, subject); });
}

bool alarm_board::any(std::string_view code) const {
  std::lock_guard lock(m_);
  return std::any_of(alarms_.begin(), alarms_.end(), [&](const alarm_entry& a) { return a.code == code; });
}

std::vector<alarm_entry> alarm_board::list() const {
  std::lock_guard lock(m_);
  return alarms_;
}

void alarm_board::on_change(listener f) {
  std::lock_guard lock(m_);
  listener_ = std::move(f);
}

std::string describe(const alarm_entry& a) { return a.text + " [" + a.code + "]"; }

}  // namespace interfaced::transport
