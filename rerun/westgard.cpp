#include "rerun/westgard.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>

namespace interfaced::rerun::qc {

namespace {

constexpr std::array<std::string_view, rule_count> names{"1-2s", "1-3s", "2-2s", "R-4s", "4-1s", "10-x",
                                                         "2of3-2s", "3-1s", "8-x", "9-x", "12-x"};

// c and the last n-1 of h all satisfy pred (the window is full only with n-1 earlier values).
template <class Pred>
bool last_n(double c, std::span<const double> h, std::size_t n, Pred pred) noexcept {
  if (h.size() + 1 < n || !pred(c)) return false;
  for (std::size_t i = h.size() - (n - 1); i < h.size(); ++i)
    if (!pred(h[i])) return false;
  return true;
}

// c beyond the limit and at least `need` of the last `n-1` of h beyond the same limit.
template <class Pred>
bool k_of_n(double c, std::span<const double> h, std::size_t n, std::size_t need, Pred pred) noexcept {
  if (h.size() + 1 < n || !pred(c)) return false;
  std::size_t k = 0;
  for (std::size_t i = h.size() - (n - 1); i < h.size(); ++i) k += pred(h[i]) ? std::size_t{1} : std::size_t{0};
  return k >= need;
}

template <class Pred>
bool any_of(std::span<const double> v, Pred pred) noexcept {
  for (double x : v)
    if (pred(x)) return true;
  return false;
}

// n consecutive on one side of the mean (series only: an event has at most a few levels).
bool one_side(double z, std::span<const double> h, std::size_t n) noexcept {
  return last_n(z, h, n, [](double x) { return x > 0; }) || last_n(z, h, n, [](double x) { return x < 0; });
}

}  // namespace

std::string_view to_string(rule r) noexcept { return names[static_cast<std::size_t>(r)]; }

std::optional<rule> rule_from_string(std::string_view s) noexcept {
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == s) return static_cast<rule>(i);
  return std::nullopt;
}

std::vector<std::string> rule_names(rule_mask m) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < rule_count; ++i)
    if ((m & (1u << i)) != 0) out.emplace_back(names[i]);
  return out;
}

rule_set rule_set::defaults() noexcept {
  return {static_cast<rule_mask>(bit(rule::r1_2s) | bit(rule::r1_3s) | bit(rule::r2_2s) | bit(rule::r_4s) |
                                 bit(rule::r4_1s) | bit(rule::r10_x)),
          false};
}

std::string_view to_string(outcome o) noexcept {
  switch (o) {
    case outcome::accept: return "accept";
    case outcome::warning: return "warning";
    case outcome::reject: return "reject";
    case outcome::no_limits: return "no_limits";
  }
  return "?";
}

outcome worst(outcome a, outcome b) noexcept {
  auto rank = [](outcome o) {
    switch (o) {
      case outcome::accept: return 0;
      case outcome::warning: return 1;
      case outcome::no_limits: return 2;
      case outcome::reject: return 3;
    }
    return 3;
  };
  return rank(a) >= rank(b) ? a : b;
}

std::optional<double> z_score(std::optional<double> value, double mean, double sd) noexcept {
  if (!value || !(sd > 0) || !std::isfinite(*value) || !std::isfinite(mean)) return std::nullopt;
  return (*value - mean) / sd;
}

evaluation evaluate(double z, std::span<const double> h, std::span<const double> event, const rule_set& rs) noexcept {
  // beyond{+1, L}: x > L; beyond{-1, L}: x < -L (one predicate type for either side).
  struct beyond {
    double sign;
    double lim;
    bool operator()(double x) const noexcept { return sign * x > lim; }
  };
  const auto above = [](double lim) { return beyond{1, lim}; };
  const auto below = [](double lim) { return beyond{-1, lim}; };
  const double a = std::fabs(z);
  rule_mask fired = 0;
  // Exactly 2.0 SD is inside the limit: the rules say "beyond", so every comparison is strict.
  const bool beyond_2 = a > 2;
  if (rs.gate_on_1_2s && !beyond_2) return {outcome::accept, 0};
  if (rs.has(rule::r1_2s) && beyond_2) fired |= bit(rule::r1_2s);
  if (rs.has(rule::r1_3s) && a > 3) fired |= bit(rule::r1_3s);
  if (rs.has(rule::r2_2s) && beyond_2) {
    const auto same = z > 0 ? above(2) : below(2);
    if ((!h.empty() && same(h.back())) || any_of(event, same)) fired |= bit(rule::r2_2s);
  }
  if (rs.has(rule::r_4s) && beyond_2) {
    const auto other = z > 0 ? below(2) : above(2);
    if (any_of(event, other)) fired |= bit(rule::r_4s);
  }
  if (rs.has(rule::r4_1s)) {
    const auto over = above(1);
    const auto under = below(1);
    if (last_n(z, h, 4, over) || last_n(z, h, 4, under) || last_n(z, event, 4, over) || last_n(z, event, 4, under))
      fired |= bit(rule::r4_1s);
  }
  if (rs.has(rule::r3_1s)) {
    const auto over = above(1);
    const auto under = below(1);
    if (last_n(z, h, 3, over) || last_n(z, h, 3, under) || last_n(z, event, 3, over) || last_n(z, event, 3, under))
      fired |= bit(rule::r3_1s);
  }
  if (rs.has(rule::r2of3_2s) && beyond_2) {
    const auto same = z > 0 ? above(2) : below(2);
    if (k_of_n(z, h, 3, 1, same) || k_of_n(z, event, 3, 1, same)) fired |= bit(rule::r2of3_2s);
  }
  if (rs.has(rule::r8_x) && one_side(z, h, 8)) fired |= bit(rule::r8_x);
  if (rs.has(rule::r9_x) && one_side(z, h, 9)) fired |= bit(rule::r9_x);
  if (rs.has(rule::r10_x) && one_side(z, h, 10)) fired |= bit(rule::r10_x);
  if (rs.has(rule::r12_x) && one_side(z, h, 12)) fired |= bit(rule::r12_x);
  const outcome o = (fired & ~bit(rule::r1_2s)) != 0 ? outcome::reject
                    : fired != 0                      ? outcome::warning
                                                      : outcome::accept;
  return {o, fired};
}

// --- charts ----------------------------------------------------------------------------------

namespace {

// The chart walked in observed_at order, one QC event at a time. Shared by evaluate_chart and
// reevaluate so both see exactly the same histories and events.
class chart_walk {
 public:
  chart_walk(std::span<const chart_point> points, const chart_options& opt) : points_(points), opt_(opt) {
    order_.resize(points.size());
    std::iota(order_.begin(), order_.end(), std::size_t{0});
    std::stable_sort(order_.begin(), order_.end(), [&](std::size_t x, std::size_t y) {
      return points[x].observed_at < points[y].observed_at;
    });
  }

  [[nodiscard]] const std::vector<std::size_t>& order() const noexcept { return order_; }

  // Event index of each point (in walk order), computed up front.
  std::vector<std::size_t> events() const {
    std::vector<std::size_t> ev(points_.size());
    std::size_t n = 0;
    timestamp start{};
    for (std::size_t k = 0; k < order_.size(); ++k) {
      const auto& p = points_[order_[k]];
      if (k == 0) start = p.observed_at;
      else if ((p.observed_at - start).count() > opt_.event_window_s) {
        ++n;
        start = p.observed_at;
      }
      ev[order_[k]] = n;
    }
    return ev;
  }

  // The history of a level (created on first use).
  std::vector<double>& history(const std::string& level) {
    for (auto& [l, h] : histories_)
      if (l == level) return h;
    histories_.emplace_back(level, std::vector<double>{});
    return histories_.back().second;
  }

  // Evaluates point i (other_levels: the z of the event's earlier, not excluded points of other
  // levels) and adds it to its history when it counts.
  evaluation step(std::size_t i, std::span<const double> other_levels, bool evaluate_it) {
    const chart_point& p = points_[i];
    std::vector<double>& h = history(p.level);
    evaluation e{};
    if (!p.z) e = {outcome::no_limits, 0};
    else if (evaluate_it && !(p.skip && !opt_.reevaluation)) e = evaluate(*p.z, h, other_levels, opt_.rules);
    if (p.z && !p.excluded) h.push_back(*p.z);
    return e;
  }

 private:
  std::span<const chart_point> points_;
  const chart_options& opt_;
  std::vector<std::size_t> order_;
  std::vector<std::pair<std::string, std::vector<double>>> histories_;
};

// The z values of the event's earlier points of another level than `level`.
void other_levels(std::span<const chart_point> points, const std::vector<std::size_t>& event_members,
                  const std::string& level, std::vector<double>& out) {
  out.clear();
  for (std::size_t j : event_members) {
    const auto& q = points[j];
    if (q.level != level && q.z && !q.excluded) out.push_back(*q.z);
  }
}

}  // namespace

std::vector<chart_result> evaluate_chart(std::span<const chart_point> points, const chart_options& opt) {
  std::vector<chart_result> out(points.size());
  chart_walk walk(points, opt);
  const auto ev = walk.events();
  std::vector<std::size_t> members;
  std::vector<double> others;
  std::size_t current = static_cast<std::size_t>(-1);
  for (std::size_t i : walk.order()) {
    if (ev[i] != current) {
      members.clear();
      current = ev[i];
    }
    other_levels(points, members, points[i].level, others);
    out[i] = {walk.step(i, others, true), ev[i]};
    members.push_back(i);
  }
  return out;
}

change detect_change(rule_mask original, rule_mask analysed, bool missed) noexcept {
  if (original != 0 && analysed == 0) return change::error_cleared;
  if (original == 0 && analysed != 0) return change::new_error;
  if (original != analysed) return change::error_changed;
  return missed ? change::missed_westgard : change::no_change;
}

std::string_view to_string(change c) noexcept {
  switch (c) {
    case change::no_change: return "NO CHANGE";
    case change::error_changed: return "MARK (error changed)";
    case change::error_cleared: return "MARK (error cleared)";
    case change::new_error: return "MARK (new error)";
    case change::missed_westgard: return "MARK (missed Westgard)";
  }
  return "?";
}

reevaluation reevaluate(std::span<const chart_point> points, std::span<const chart_result> original, timestamp from,
                        const chart_options& opt, std::size_t stop_after, std::span<const bool> missed) {
  reevaluation out;
  out.results.assign(original.begin(), original.end());
  out.results.resize(points.size());
  chart_walk walk(points, opt);
  const auto ev = walk.events();
  std::vector<std::size_t> members;
  std::vector<double> others;
  std::size_t current = static_cast<std::size_t>(-1);
  bool evaluating = false;  // the current event starts at or after `from`
  bool stopped = false;
  std::size_t unchanged = 0;
  run_change run{};
  auto close_run = [&] {
    if (!evaluating || stopped) return;
    const bool m = run.event < missed.size() && missed[run.event];
    run.what = detect_change(run.original, run.analysed, m);
    ++out.runs_reevaluated;
    if (is_mark(run.what)) {
      ++out.runs_changed;
      unchanged = 0;
    } else {
      ++unchanged;
    }
    out.runs.push_back(run);
    if (stop_after != 0 && unchanged >= stop_after) {
      stopped = true;
      out.stopped_early = true;
    }
  };
  for (std::size_t i : walk.order()) {
    if (ev[i] != current) {
      close_run();
      members.clear();
      current = ev[i];
      evaluating = points[i].observed_at >= from;
      run = {current, 0, 0, change::no_change};
    }
    if (stopped) {
      // The 8-run stop: the later runs keep their outcomes; histories are no longer needed.
      break;
    }
    other_levels(points, members, points[i].level, others);
    const evaluation e = walk.step(i, others, evaluating);
    if (evaluating) {
      run.original |= i < original.size() ? original[i].eval.fired : rule_mask{0};
      // An excluded result's rules are withdrawn (qc.md "Exclusion"): it is evaluated for the
      // chart's display but no longer counts in its run.
      if (!points[i].excluded) run.analysed |= e.fired;
      out.results[i] = {e, ev[i]};
    }
    members.push_back(i);
  }
  close_run();
  return out;
}

skip_decision decide_skip(bool has_skip, bool reevaluation, bool handles_skip_ran) noexcept {
  if (!has_skip || reevaluation || handles_skip_ran) return skip_decision::execute;
  return skip_decision::skip;
}

}  // namespace interfaced::rerun::qc
