#include "rerun/qc.hpp"

#include <algorithm>
#include <utility>

namespace interfaced::rerun::qc {

const rule_set& qc_config::rules_for(std::string_view parameter) const {
  const auto it = rules.find(parameter);
  return it == rules.end() ? default_rules : it->second;
}

double qc_config::max_interval_for(std::string_view parameter) const {
  const auto it = max_interval_h_per.find(parameter);
  return it == max_interval_h_per.end() ? max_interval_h : it->second;
}

bool glob_match(std::string_view p, std::string_view t) noexcept {
  std::size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == t[ti])) {
      ++pi;
      ++ti;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

const control_rule* match_control(const qc_config& c, std::string_view sample_id) noexcept {
  if (sample_id.empty()) return nullptr;
  for (const auto& r : c.controls)
    if (glob_match(r.sample_id, sample_id)) return &r;
  return nullptr;
}

const limits* find_limits(const std::vector<limits>& list, const series_key& s) noexcept {
  const limits* found = nullptr;
  for (const auto& l : list) {
    if (l.series.parameter != s.parameter || l.series.level != s.level) continue;
    if (!l.series.material.empty() && l.series.material != s.material) continue;
    if (!l.series.lot.empty() && l.series.lot != s.lot) continue;
    found = &l;
  }
  return found;
}

std::optional<limits> qc_tracker::limits_of(const control_result& c, std::string& source) const {
  if (const limits* l = find_limits(cfg_->configured, c.series)) {
    source = "config";
    return *l;
  }
  if (const auto it = backend_.find(c.device); it != backend_.end())
    if (const limits* l = find_limits(it->second, c.series)) {
      source = "backend";
      return *l;
    }
  if (c.analyser_mean && c.analyser_sd && *c.analyser_sd > 0) {
    // Nothing configured: the analyser's own target (Mindray OBR-18/19), and the body says so.
    source = "analyser";
    return limits{c.series, *c.analyser_mean, *c.analyser_sd, c.unit};
  }
  source.clear();
  return std::nullopt;
}

std::vector<chart_point> qc_tracker::points_of(const chart& ch) const {
  std::vector<chart_point> pts;
  pts.reserve(ch.results.size());
  for (std::size_t i = 0; i < ch.results.size(); ++i) {
    const auto& r = ch.results[i];
    const auto f = resolution_of(r.result_id);
    pts.push_back({r.t, r.series.material + '\x1f' + r.series.lot + '\x1f' + r.series.level, ch.verdicts[i].z,
                   f.excluded, f.skip});
  }
  return pts;
}

void qc_tracker::set_resolution(const std::string& result_id, resolution_flags f) {
  if (!f.excluded && !f.skip) resolved_.erase(result_id);
  else resolved_[result_id] = f;
}

qc_tracker::resolution_flags qc_tracker::resolution_of(std::string_view result_id) const {
  const auto it = resolved_.find(result_id);
  return it == resolved_.end() ? resolution_flags{} : it->second;
}

std::optional<qc_tracker::found> qc_tracker::find(std::string_view result_id) const {
  for (const auto& [key, ch] : charts_)
    for (std::size_t i = 0; i < ch.results.size(); ++i)
      if (ch.results[i].result_id == result_id) return found{key, ch.results[i], ch.verdicts[i]};
  return std::nullopt;
}

std::map<std::string, std::pair<outcome, std::string>, std::less<>> qc_tracker::effective_outcomes(
    const std::string& device, std::string_view parameter) const {
  std::map<std::string, std::pair<outcome, std::string>, std::less<>> out;
  const auto it = charts_.find(device + '\x1f' + std::string(parameter));
  if (it == charts_.end()) return out;
  for (std::size_t i = 0; i < it->second.results.size(); ++i) {
    const auto& r = it->second.results[i];
    const outcome o = resolution_of(r.result_id).excluded ? outcome::accept : it->second.verdicts[i].eval.result;
    out.emplace(r.result_id, std::pair{o, r.observed_at});
  }
  return out;
}

std::vector<patient_ref> qc_tracker::run_patients(const std::string& device, std::string_view parameter,
                                                  timestamp start) const {
  const std::string key = device + '\x1f' + std::string(parameter);
  std::optional<timestamp> next;  // the next QC event's start: the first control of another run after start
  if (const auto it = charts_.find(key); it != charts_.end()) {
    const std::int64_t window = cfg_->event_window_s;
    for (const auto& r : it->second.results)
      if (r.t > start + std::chrono::seconds(window) && (!next || r.t < *next)) next = r.t;
  }
  std::vector<patient_ref> out;
  if (const auto it = patients_.find(key); it != patients_.end())
    for (const auto& p : it->second)
      if (p.t >= start && (!next || p.t < *next)) out.push_back(p);
  return out;
}

qc_tracker::reevaluation_report qc_tracker::reevaluate_from(const std::string& device, std::string_view parameter,
                                                            timestamp from, std::size_t stop_after,
                                                            std::string_view toggled) {
  reevaluation_report rep;
  const auto it = charts_.find(device + '\x1f' + std::string(parameter));
  if (it == charts_.end()) return rep;
  chart& ch = it->second;
  const std::vector<chart_point> pts = points_of(ch);
  std::vector<chart_result> original(ch.results.size());
  for (std::size_t i = 0; i < ch.results.size(); ++i) {
    original[i].eval = ch.verdicts[i].eval;
    // What the run was judged with: an excluded result's rules did not count in it.
    const bool excluded_now = pts[i].excluded;
    const bool excluded_before = ch.results[i].result_id == toggled ? !excluded_now : excluded_now;
    if (excluded_before) original[i].eval = {};
  }
  chart_options opt;
  opt.rules = cfg_->rules_for(parameter);
  opt.event_window_s = cfg_->event_window_s;
  opt.reevaluation = true;  // 5.2.1: SKIP does not bypass during a re-evaluation
  const reevaluation r = reevaluate(pts, original, from, opt, stop_after);
  rep.runs_reevaluated = r.runs_reevaluated;
  rep.runs_changed = r.runs_changed;
  rep.stopped_early = r.stopped_early;
  for (std::size_t i = 0; i < ch.results.size(); ++i) ch.verdicts[i].eval = r.results[i].eval;
  for (const auto& run : r.runs) {
    run_report rr;
    rr.what = run.what;
    rr.original = run.original;
    rr.analysed = run.analysed;
    bool first = true;
    for (std::size_t i = 0; i < ch.results.size(); ++i)
      if (r.results[i].event == run.event && (first || ch.results[i].t < rr.start)) {
        rr.start = ch.results[i].t;
        rr.run_id = ch.verdicts[i].run_id;
        first = false;
      }
    rr.status = std::string(is_mark(run.what) ? status_reanalysis_westgard : status_no_resolution);
    if (is_mark(run.what)) rr.patients = run_patients(device, parameter, rr.start);
    rep.runs.push_back(std::move(rr));
  }
  return rep;
}

std::optional<timestamp> qc_tracker::rejudge_limits(const std::string& device, std::string_view parameter) {
  const auto it = charts_.find(device + '\x1f' + std::string(parameter));
  if (it == charts_.end()) return std::nullopt;
  chart& ch = it->second;
  std::optional<timestamp> from;
  for (std::size_t i = 0; i < ch.results.size(); ++i) {
    std::string source;
    const auto l = limits_of(ch.results[i], source);
    auto& v = ch.verdicts[i];
    const std::optional<double> mean = l ? std::optional<double>(l->mean) : std::nullopt;
    const std::optional<double> sd = l ? std::optional<double>(l->sd) : std::nullopt;
    if (v.limits_source == source && v.mean == mean && v.sd == sd) continue;
    v.mean = mean;
    v.sd = sd;
    v.z = l ? z_score(ch.results[i].value, l->mean, l->sd) : std::nullopt;
    v.limits_source = source;
    if (!from || ch.results[i].t < *from) from = ch.results[i].t;
  }
  return from;
}

control_verdict qc_tracker::add(const control_result& c) {
  ++additions_;
  control_verdict v;
  if (auto l = limits_of(c, v.limits_source)) {
    v.mean = l->mean;
    v.sd = l->sd;
    v.z = z_score(c.value, l->mean, l->sd);
  }
  v.late = has_later(c.device, c.series.parameter, c.t);
  chart& ch = charts_[c.device + '\x1f' + c.series.parameter];
  ch.results.push_back(c);
  ch.verdicts.push_back(v);
  // The chart again, in observed_at order: a late result changes the histories of the later ones.
  std::vector<chart_point> pts = points_of(ch);
  chart_options opt;
  opt.rules = cfg_->rules_for(c.series.parameter);
  opt.event_window_s = cfg_->event_window_s;
  const auto res = evaluate_chart(pts, opt);
  // Run ids: the device and the first observed_at of the QC event.
  std::map<std::size_t, std::string> first_of_event;
  std::vector<std::size_t> order(pts.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return pts[a].observed_at < pts[b].observed_at; });
  for (std::size_t i : order) first_of_event.try_emplace(res[i].event, ch.results[i].observed_at);
  for (std::size_t i = 0; i + 1 < ch.results.size(); ++i) {
    if (ch.verdicts[i].eval.fired != res[i].eval.fired || ch.verdicts[i].eval.result != res[i].eval.result)
      ++v.changed_earlier;
    ch.verdicts[i].eval = res[i].eval;
    ch.verdicts[i].run_id = c.device + "@" + first_of_event[res[i].event];
  }
  v.eval = res.back().eval;
  v.run_id = c.device + "@" + first_of_event[res.back().event];
  ch.verdicts.back() = v;
  if (ch.results.size() > max_chart_results) {
    // The oldest by observed_at go (a late result is never the oldest of a full chart).
    const std::size_t drop = ch.results.size() - max_chart_results;
    std::vector<std::size_t> keep(order.begin() + static_cast<std::ptrdiff_t>(drop), order.end());
    std::sort(keep.begin(), keep.end());
    chart kept;
    for (std::size_t i : keep) {
      kept.results.push_back(std::move(ch.results[i]));
      kept.verdicts.push_back(std::move(ch.verdicts[i]));
    }
    ch = std::move(kept);
  }
  return v;
}

std::string qc_tracker::patient_status(const std::string& device, std::string_view parameter, timestamp t) const {
  const auto it = charts_.find(device + '\x1f' + std::string(parameter));
  if (it == charts_.end()) return "missed";
  const chart& ch = it->second;
  // The last QC event at or before t: its first result's time, and the worst outcome of it.
  std::optional<std::string> run;
  timestamp latest{};
  for (std::size_t i = 0; i < ch.results.size(); ++i)
    if (ch.results[i].t <= t && (!run || ch.results[i].t >= latest)) {
      latest = ch.results[i].t;
      run = ch.verdicts[i].run_id;
    }
  if (!run) return "missed";
  const auto age_h = std::chrono::duration<double, std::ratio<3600>>(t - latest).count();
  if (age_h > cfg_->max_interval_for(parameter)) return "missed";
  outcome o = outcome::accept;
  // An excluded control result's rules do not count (as in effective_outcomes): a re-tag after
  // its exclusion reads the run's status without it.
  for (std::size_t i = 0; i < ch.verdicts.size(); ++i)
    if (ch.verdicts[i].run_id == *run && !resolution_of(ch.results[i].result_id).excluded)
      o = worst(o, ch.verdicts[i].eval.result);
  return o == outcome::reject ? "rejected" : o == outcome::no_limits ? "missed" : "accepted";
}

void qc_tracker::record_patient(const std::string& device, patient_ref p) {
  recorded_.emplace_back(device, p);
  auto& list = patients_[device + '\x1f' + p.parameter];
  list.push_back(std::move(p));
  // Bounded: the runs a rejecting control can reach back to are the last few days'.
  constexpr std::size_t keep = 20000;
  if (list.size() > keep) list.erase(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(list.size() - keep));
}

std::vector<std::pair<std::string, patient_ref>> qc_tracker::take_recorded_patients() {
  return std::exchange(recorded_, {});
}

std::vector<patient_ref> qc_tracker::affected(const std::string& device, std::string_view parameter,
                                              timestamp reject_at) const {
  const std::string key = device + '\x1f' + std::string(parameter);
  std::optional<timestamp> since;  // the last accepted QC event before reject_at
  if (const auto it = charts_.find(key); it != charts_.end()) {
    const chart& ch = it->second;
    std::map<std::string, std::pair<timestamp, outcome>> runs;  // run id -> start, worst outcome
    for (std::size_t i = 0; i < ch.results.size(); ++i) {
      if (ch.results[i].t >= reject_at) continue;
      auto [r, fresh] = runs.try_emplace(ch.verdicts[i].run_id, ch.results[i].t, ch.verdicts[i].eval.result);
      if (!fresh) {
        r->second.first = std::min(r->second.first, ch.results[i].t);
        r->second.second = worst(r->second.second, ch.verdicts[i].eval.result);
      }
    }
    for (const auto& [id, run] : runs)
      if ((run.second == outcome::accept || run.second == outcome::warning) && (!since || run.first > *since))
        since = run.first;
  }
  std::vector<patient_ref> out;
  if (const auto it = patients_.find(key); it != patients_.end())
    for (const auto& p : it->second)
      if (p.t < reject_at && (!since || p.t >= *since)) out.push_back(p);
  return out;
}

bool qc_tracker::has_later(const std::string& device, std::string_view parameter, timestamp t) const {
  const auto it = charts_.find(device + '\x1f' + std::string(parameter));
  return it != charts_.end() &&
         std::any_of(it->second.results.begin(), it->second.results.end(), [&](const control_result& r) { return r.t > t; });
}

std::vector<patient_ref> qc_tracker::patients_after(const std::string& device, std::string_view parameter,
                                                    timestamp t) const {
  std::vector<patient_ref> out;
  if (const auto it = patients_.find(device + '\x1f' + std::string(parameter)); it != patients_.end())
    for (const auto& p : it->second)
      if (p.t >= t) out.push_back(p);
  return out;
}

std::vector<std::pair<std::string, std::vector<qc_tracker::point_view>>> qc_tracker::charts() const {
  std::vector<std::pair<std::string, std::vector<point_view>>> out;
  for (const auto& [key, ch] : charts_) {
    std::vector<point_view> pts;
    for (std::size_t i = 0; i < ch.results.size(); ++i) pts.push_back({ch.results[i], ch.verdicts[i]});
    std::stable_sort(pts.begin(), pts.end(), [](const point_view& a, const point_view& b) { return a.c.t < b.c.t; });
    out.emplace_back(key, std::move(pts));
  }
  return out;
}

}  // namespace interfaced::rerun::qc
