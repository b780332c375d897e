#include "rerun/order_download.hpp"

#include <algorithm>
#include <set>

#include "rerun/rerun_state.hpp"

namespace interfaced::rerun {

namespace {

std::vector<sent_test> sent_now(const pending_download& p, timestamp now) {
  std::vector<sent_test> tests;
  for (std::size_t i = 0; i < p.parameters.size() && i < p.codes.size(); ++i)
    tests.push_back({p.parameters[i], p.codes[i], now});
  return tests;
}

download_change change_of(download_action a, const std::string& sample, const downloaded_order& rec,
                          const std::vector<sent_test>& tests) {
  download_change c;
  c.action = a;
  c.sample_id = sample;
  c.lab_report_id = rec.lab_report_id;
  c.is_rerun = rec.is_rerun;
  c.rerun_number = rec.rerun_number;
  for (const auto& t : tests) {
    c.parameters.push_back(t.parameter);
    c.codes.push_back(t.code);
  }
  return c;
}

bool same_tests(const downloaded_order& rec, const pending_download& p) {
  std::set<std::string_view> sent, wanted(p.parameters.begin(), p.parameters.end());
  for (const auto& t : rec.tests) sent.insert(t.parameter);
  return sent == wanted;
}

}  // namespace

std::vector<download_change> plan_downloads(download_state& state,
                                            const std::vector<pending_download>& pending,
                                            const result_store& history, timestamp now) {
  std::vector<download_change> out;
  // A result for the test arrived after it was sent: the analyser (or another) did it.
  auto fulfilled = [&](std::string_view sample, const sent_test& t) {
    const auto o = history.latest_of_parameter(sample, t.parameter);
    return o && o->received_at >= t.sent_at;
  };
  // Drops the tests of `rec` that `keep` rejects; those neither fulfilled nor refused are
  // cancelled.
  auto cancel_dropped = [&](const std::string& sample, downloaded_order& rec, auto keep) {
    std::vector<sent_test> cancelled;
    std::erase_if(rec.tests, [&](const sent_test& t) {
      if (keep(t)) return false;
      if (!rec.refused && !fulfilled(sample, t)) cancelled.push_back(t);
      return true;
    });
    if (!cancelled.empty())
      out.push_back(change_of(download_action::cancel, sample, rec, cancelled));
  };

  std::set<std::string, std::less<>> wanted;
  for (const auto& p : pending) {
    if (p.codes.empty() || p.parameters.size() != p.codes.size()) continue;
    if (!wanted.insert(p.sample_id).second) continue;  // a sample on two reports: the first one
    auto it = state.find(p.sample_id);
    if (it != state.end() && it->second.refused) {
      const bool unchanged = it->second.is_rerun == p.is_rerun &&
                             it->second.rerun_number == p.rerun_number && same_tests(it->second, p);
      if (unchanged) continue;
      state.erase(it);  // refused, so the analyser does not have it: send what is wanted now afresh
      it = state.end();
    }
    if (it == state.end()) {
      downloaded_order rec{p.lab_report_id, p.is_rerun, p.rerun_number, sent_now(p, now), false};
      // A rerun's specimen is known to the analyser (it ran the first results), and so is a
      // reflex's (it ran the triggering test): tests are added.
      out.push_back(change_of(p.is_rerun || p.reflex ? download_action::add_tests : download_action::new_order,
                              p.sample_id, rec, rec.tests));
      state.emplace(p.sample_id, std::move(rec));
      continue;
    }
    downloaded_order& rec = it->second;
    const bool same_round = rec.is_rerun == p.is_rerun && rec.rerun_number == p.rerun_number;
    cancel_dropped(p.sample_id, rec,
                   [&](const sent_test& t) { return contains(p.parameters, t.parameter); });
    if (!same_round) {
      rec = {p.lab_report_id, p.is_rerun, p.rerun_number, sent_now(p, now), false};
      out.push_back(change_of(download_action::add_tests, p.sample_id, rec, rec.tests));
      continue;
    }
    std::vector<sent_test> added;
    for (const auto& t : sent_now(p, now)) {
      const bool sent = std::any_of(rec.tests.begin(), rec.tests.end(),
                                    [&](const sent_test& s) { return s.parameter == t.parameter; });
      if (!sent) added.push_back(t);
    }
    if (added.empty()) continue;
    rec.tests.insert(rec.tests.end(), added.begin(), added.end());
    out.push_back(change_of(download_action::add_tests, p.sample_id, rec, added));
  }
  for (auto it = state.begin(); it != state.end();) {
    if (wanted.count(it->first) != 0) {
      ++it;
      continue;
    }
    cancel_dropped(it->first, it->second, [](const sent_test&) { return false; });
    it = state.erase(it);
  }
  return out;
}

void mark_refused(download_state& state, std::string_view sample_id, int rerun_number) {
  const auto it = state.find(sample_id);
  if (it != state.end() && it->second.rerun_number == rerun_number) it->second.refused = true;
}

void forget_download(download_state& state, std::string_view sample_id) {
  const auto it = state.find(sample_id);
  if (it != state.end()) state.erase(it);
}

}  // namespace interfaced::rerun
