#include "rerun/process.hpp"

#include <algorithm>
#include <iterator>
#include <optional>
#include <utility>

#include "rerun/host_query.hpp"
#include "rerun/result_key.hpp"

namespace interfaced::rerun {

const char* to_string(endpoint e) noexcept {
  switch (e) {
    case endpoint::results: return "results";
    case endpoint::rerun_values: return "rerun_values";
    case endpoint::rerun_request: return "rerun_request";
    case endpoint::qc_results: return "qc_results";
    case endpoint::qc_runs: return "qc_runs";
    case endpoint::reflex: return "reflex";
  }
  return "?";
}

namespace {

// The waiting-list entry E of the report that owns P for S: the batch's device first, then the
// other devices (a rerun may be fulfilled by another analyser, rerun.md). An entry naming P wins
// over one that only has the sample.
const waiting_list_entry* find_entry(const rerun_state& state, std::string_view device,
                                     std::string_view sample, std::string_view parameter) {
  const waiting_list_entry* sample_only = nullptr;
  auto scan = [&](const std::vector<waiting_list_entry>& list) -> const waiting_list_entry* {
    for (const auto& e : list) {
      if (e.sample_id != sample) continue;
      if (contains(e.parameters, parameter) || contains(e.rerun_params, parameter)) return &e;
      if (sample_only == nullptr) sample_only = &e;
    }
    return nullptr;
  };
  if (const auto it = state.waiting_lists.find(device); it != state.waiting_lists.end())
    if (const auto* e = scan(it->second)) return e;
  for (const auto& [dev, list] : state.waiting_lists) {
    if (dev == device) continue;
    if (const auto* e = scan(list)) return e;
  }
  return sample_only;
}

// A report whose rerun was received has left the waiting lists but is still known here until
// pruned; a later result of its sample belongs to it (the most recently received, should a
// sample have had several).
const report_rerun* find_received(const rerun_state& state, std::string_view sample) {
  const report_rerun* best = nullptr;
  for (const auto& [id, rr] : state.reruns)
    if (rr.status == rerun_status::received && rr.sample_id == sample && (best == nullptr || rr.since > best->since))
      best = &rr;
  return best;
}

// Times a rule saw (lab wall clock, "YYYY-MM-DDTHH:MM:SS") as ISO-8601 with the lab's offset.
void with_offsets(std::vector<std::pair<std::string, seen_value>>& values, const lab_zone& zone) {
  for (auto& [name, v] : values)
    if (v.k == seen_value::kind::time) v.s = zone.normalise(v.s);
}

result_value to_value(const result& r, const result_tag& t, const std::string* raw, const lab_zone& zone) {
  result_value v;
  v.sample_id = r.sample_id;
  v.lab_report_id = t.lab_report_id;
  v.parameter = t.parameter;
  v.value = r.value;
  v.numeric = r.numeric;
  v.unit = r.unit;
  v.flags = r.flags;
  v.reference_range = r.reference_range;
  v.status = r.status;
  v.observed_at = zone.normalise(r.observed_at);
  v.is_rerun = r.is_rerun;
  v.rerun_number = r.rerun_number;
  v.machine_triggered_rerun = t.machine_triggered_rerun;
  v.instrument_code = r.code;
  if (raw != nullptr) v.raw = *raw;
  v.sub_id = r.sub_id;
  v.result_type = r.result_type;
  v.statuses = r.statuses;
  v.qc_status = t.qc_status;
  for (const auto& c : r.companions) v.companions.emplace_back(c.label, c.value);
  return v;
}

// The series of a control result: what the message carries (the profile's qc_series), completed
// by `qc.controls` -- or replaced by it where a rule says `override`.
qc::series_key series_of(const result& r, const std::string& parameter, const qc::qc_tracker* tracker) {
  qc::series_key s{parameter, r.qc_material, r.qc_lot, r.qc_level};
  if (tracker != nullptr)
    if (const qc::control_rule* c = qc::match_control(tracker->config(), r.sample_id)) {
      for (auto [dst, from] : {std::pair{&s.material, &c->material}, std::pair{&s.lot, &c->lot},
                               std::pair{&s.level, &c->level}})
        if (dst->empty() || (c->override && !from->empty())) *dst = *from;
    }
  return s;
}

std::string join_rules(qc::rule_mask m) {
  std::string s;
  for (const auto& n : qc::rule_names(m)) s += (s.empty() ? "" : ", ") + n;
  return s;
}

void remove_from_waiting_lists(rerun_state& state, std::string_view lab_report_id) {
  for (auto& [dev, list] : state.waiting_lists)
    std::erase_if(list, [&](const waiting_list_entry& e) { return e.lab_report_id == lab_report_id; });
}

// Where running the rules on results puts what they asked for. `undo` (may be null) gets what
// was added to the rerun state, so a caller whose commit fails can take it back.
struct rules_effects {
  std::vector<outgoing_message>& requests;  // rerun requests and reflex posts, in firing order
  std::vector<action>& actions;
  rules_again_outcome* undo = nullptr;
  std::size_t auto_rerun_requests = 0;
  std::size_t fired = 0;  // rerun requests and reflex posts
};

struct rules_env {
  const rule_set& rules;
  rerun_state& state;
  timestamp now;
  const lab_zone& zone;
  bool explain;
};

// The rules engine on one patient result (rerun.md step 3, reflex rules, qc.md 5.2.1 `skip`): the
// initial evaluation of a batch and a re-evaluation after a QC change run exactly this.
void apply_rules(const rules_env& env, const std::string& device, const result& r, std::string_view parameter,
                 const std::string& lab_report_id, std::string_view qc_status,
                 const std::optional<observation>& previous, skip_context skip, explain_entry* ex, rules_effects& fx) {
  const bool any_rule = std::any_of(env.rules.rules().begin(), env.rules.rules().end(),
                                    [&](const rule& x) { return x.applies_to(parameter); });
  if (!any_rule) return;
  const bindings bound = bind_result(r, parameter, previous, env.rules.parameter(parameter), env.now, qc_status);
  const auto skips = skip.has_skip ? skip_decisions(env.rules, parameter, skip) : std::vector<qc::skip_decision>{};
  // Reflex rules: added tests, once per sample and rule (counted like automatic reruns, under
  // the rule's own key, so the count is persisted with the rerun state).
  for (std::size_t k = 0; k < env.rules.rules().size(); ++k) {
    const rule& x = env.rules.rules()[k];
    if (x.action != rule_action::reflex || !x.applies_to(parameter)) continue;
    const std::string counter = "reflex:" + x.id;
    const rule_outcome o = !skips.empty() && skips[k] == qc::skip_decision::skip
                               ? rule_outcome::skipped_resolution
                               : evaluate_rule(x, bound, r.rerun_number, env.state.auto_rerun_count(r.sample_id, counter));
    if (ex != nullptr) ex->rules.push_back({x.id, o, seen_values(x.cond, bound)});
    if (o != rule_outcome::fired) continue;
    env.state.count_auto_rerun(r.sample_id, counter, env.now);
    if (fx.undo != nullptr) fx.undo->counted.emplace_back(r.sample_id, counter);
    ++fx.fired;
    outgoing_message m;
    m.kind = endpoint::reflex;
    m.lab_report_id = lab_report_id;
    m.reflex = {lab_report_id, r.sample_id, std::string(parameter), r.value, x.id, x.add_tests};
    fx.requests.push_back(std::move(m));
    fx.actions.push_back({action_kind::queue_retest_order, device, r.sample_id, lab_report_id, 0, x.add_tests,
                          std::nullopt, "reflex rule \"" + x.id + "\": " + std::string(parameter) + " = " + r.value});
    // The added tests go to the analyser the way rerun orders do (host_query.hpp): kept in the
    // state, which is committed with this batch's messages, until a result for each arrives.
    reflex_order ro;
    ro.entry.sample_id = r.sample_id;
    ro.entry.lab_report_id = lab_report_id;
    if (const waiting_list_entry* e = find_entry(env.state, device, r.sample_id, parameter)) {
      ro.entry.patient = e->patient;  // the order names the patient as the report's own orders do
      ro.entry.priority = e->priority;
    }
    ro.rule = x.id;
    ro.tests = x.add_tests;
    ro.since = env.now;
    if (fx.undo != nullptr) fx.undo->reflexes.emplace_back(device, ro);
    env.state.reflex_orders[device].push_back(std::move(ro));
  }
  if (std::none_of(env.rules.rules().begin(), env.rules.rules().end(), [&](const rule& x) {
        return x.action == rule_action::auto_rerun && x.applies_to(parameter);
      }))
    return;
  const int so_far = env.state.auto_rerun_count(r.sample_id, parameter);
  rules_verdict v = evaluate_rules(env.rules, parameter, bound, r.rerun_number, so_far, env.explain, skip);
  // The rules compare wall-clock times; what they saw is shown with the lab's offset.
  with_offsets(v.values, env.zone);
  for (auto& tr : v.trace) with_offsets(tr.values, env.zone);
  if (ex != nullptr)
    ex->rules.insert(ex->rules.end(), std::make_move_iterator(v.trace.begin()), std::make_move_iterator(v.trace.end()));
  if (v.fired == nullptr) return;
  if (lab_report_id.empty()) {
    // The request endpoint needs a lab report; an unmatched sample has none (rerun.md: the
    // backend decides about unsolicited results). Logged as a failed rerun, not counted.
    const std::string note = "rule \"" + v.fired->id + "\" fired but sample " + r.sample_id +
                             " matches no waiting-list entry: no rerun can be requested";
    fx.actions.push_back({action_kind::rerun_failed, device, r.sample_id, {}, 0, {std::string(parameter)},
                          activity::rerun_failed, note});
    if (ex != nullptr) ex->note = note;
    return;
  }
  env.state.count_auto_rerun(r.sample_id, parameter, env.now);
  if (fx.undo != nullptr) fx.undo->counted.emplace_back(r.sample_id, std::string(parameter));
  ++fx.auto_rerun_requests;
  ++fx.fired;
  outgoing_message m;
  m.kind = endpoint::rerun_request;
  m.lab_report_id = lab_report_id;
  m.act = activity::rerun_requested;
  m.internal_request = true;  // system-initiated: the backend sets login_user = -1
  m.request = {lab_report_id, {std::string(parameter)}, v.fired->id, std::move(v.values), activity::rerun_requested};
  fx.requests.push_back(std::move(m));
}

}  // namespace

batch_outcome process_reports_for_rerun(batch& b, const rerun_inputs& in) {
  batch_outcome out;
  out.tags.resize(b.results.size());
  out.counts.results = b.results.size();
  std::vector<std::optional<observation>> previous(b.results.size());
  qc_results_body controls{b.device, {}};
  std::vector<outgoing_message> qc_runs;
  auto run_message = [&](std::string run_id, std::string_view status, std::string reason,
                         std::vector<qc::patient_ref> patients) {
    outgoing_message m;
    m.kind = endpoint::qc_runs;
    m.qc_run = {b.device, std::move(run_id), std::string(status), std::move(reason), {}};
    for (auto& p : patients) m.qc_run.patient_results.push_back({p.sample_id, p.parameter, p.observed_at, {}});
    qc_runs.push_back(std::move(m));
  };

  // Step 2: qualify every result in transmission order, recording each as it goes so a second
  // result for the same (S,P) in this batch is seen.
  for (std::size_t i = 0; i < b.results.size(); ++i) {
    result& r = b.results[i];
    result_tag& t = out.tags[i];
    r.device = r.device.empty() ? b.device : r.device;
    t.parameter = std::string(in.codes.machine_name(r.code));

    // Control results never reach the patient path (qc.md): no rerun tagging (the levels of a
    // Mindray BC QC message share one sample id), no history, no rules.
    if (!r.qc && in.qc != nullptr && qc::match_control(in.qc->config(), r.sample_id) != nullptr) r.qc = true;
    if (r.qc) {
      t.control = true;
      ++out.counts.controls;
      qc::control_result c;
      c.device = b.device;
      c.series = series_of(r, t.parameter, in.qc);
      c.value = r.numeric;
      c.unit = r.unit;
      c.observed_at = in.zone.normalise(r.observed_at);
      c.t = parse_wall_time(r.observed_at).value_or(in.now);
      c.result_id = b.device + "|" + t.parameter + "|" + c.series.material + "|" + c.series.lot + "|" +
                    c.series.level + "|" + c.observed_at;
      c.analyser_mean = r.qc_mean;
      c.analyser_sd = r.qc_sd;
      // A late control result can change the qc_status of patient results posted in earlier
      // batches (its run now judges them): their status before it, to tell which changed.
      std::vector<std::pair<qc::patient_ref, std::string>> status_before;
      if (in.qc != nullptr && in.qc->config().enabled && in.qc->has_later(b.device, t.parameter, c.t))
        for (auto& p : in.qc->patients_after(b.device, t.parameter, c.t)) {
          std::string st = in.qc->patient_status(b.device, p.parameter, p.t);
          status_before.emplace_back(std::move(p), std::move(st));
        }
      qc::control_verdict v;
      if (in.qc != nullptr) v = in.qc->add(c);
      else v.eval.result = qc::outcome::no_limits;
      for (auto& [p, st] : status_before) {
        const auto same = [&](const qc::patient_ref& x) {
          return x.sample_id == p.sample_id && x.parameter == p.parameter && x.observed_at == p.observed_at;
        };
        const bool this_batch = std::any_of(b.results.begin(), b.results.end(), [&](const result& x) {
          return x.sample_id == p.sample_id && in.zone.normalise(x.observed_at) == p.observed_at;
        });
        if (this_batch || in.qc->patient_status(b.device, p.parameter, p.t) == st ||
            std::any_of(out.qc_status_changed.begin(), out.qc_status_changed.end(), same))
          continue;
        out.qc_status_changed.push_back(std::move(p));
      }
      if (v.eval.result == qc::outcome::reject) ++out.counts.qc_rejects;
      qc_result_value q{t.parameter, c.series.material, c.series.lot, c.series.level, r.sample_id, r.value,
                        r.numeric, r.unit, c.observed_at, v.z, v.mean, v.sd, v.limits_source,
                        std::string(qc::to_string(v.eval.result)), qc::rule_names(v.eval.fired), v.run_id,
                        c.result_id, r.code};
      out.controls.emplace_back(i, q);
      controls.results.push_back(std::move(q));
      if (in.qc != nullptr) {
        if (v.eval.result == qc::outcome::reject && in.qc->first_report("affected:" + v.run_id)) {
          // The error may have started before it was seen: the patient results posted since the
          // last accepted QC event are reported as affected (one post).
          auto affected = in.qc->affected(b.device, t.parameter, c.t);
          if (!affected.empty())
            run_message(v.run_id, qc::status_reanalysis_westgard,
                        "affected: posted since the last accepted QC event before a rejecting one (" +
                            join_rules(v.eval.fired) + ")",
                        std::move(affected));
        }
        if (v.late && in.qc->first_report("late:" + v.run_id)) {
          // A control observed before runs already evaluated (an analyser that buffered through
          // an outage): the later runs of its chart.
          auto later = in.qc->patients_after(b.device, t.parameter, c.t);
          run_message(v.run_id, v.changed_earlier > 0 ? qc::status_reanalysis_westgard : qc::status_may_be_affected,
                      "late control result observed " + c.observed_at + ": " + std::to_string(v.changed_earlier) +
                          " later control result(s) changed outcome",
                      std::move(later));
        }
      }
      continue;
    }

    // No sample id, no key: forwarded once, a first result of nobody's (model.hpp). Taking ""
    // for a sample made every such result the duplicate or rerun of the first (issue #19).
    if (r.sample_id_missing()) {
      r.is_rerun = false;
      r.rerun_number = 0;
      t.row = qualify_row::unmatched_first;
      ++out.counts.forwarded;
      ++out.counts.unmatched;
      ++out.counts.sample_id_missing;
      ++out.counts.first_results;
      continue;
    }
    t.key = result_key(t.parameter, r);
    const std::string& key = t.key;

    // The very same result again (same value, same observation time) is a duplicate delivery,
    // never a rerun, and is not forwarded twice.
    if (in.history.has_observation(r.sample_id, key, r.value, r.observed_at)) {
      r.duplicate = true;
      t.duplicate = true;
      ++out.counts.duplicates;
      continue;
    }

    previous[i] = in.history.latest(r.sample_id, key);
    const waiting_list_entry* e = find_entry(in.state, b.device, r.sample_id, t.parameter);
    qualify_facts f;
    f.seen = previous[i].has_value() || r.rerun_indicator;
    report_rerun* rr = nullptr;
    if (e != nullptr) {
      f.matched = true;
      t.matched = true;
      t.lab_report_id = e->lab_report_id;
      f.entry_rerun_number = e->rerun_number;
      f.seen = f.seen || contains(e->valued_parameters, t.parameter);
      if (e->rerun_active()) {
        f.requested = contains(e->rerun_params, t.parameter);
        auto it = in.state.reruns.find(e->lab_report_id);
        if (it == in.state.reruns.end() || it->second.number != e->rerun_number) {
          // The list shows a rerun the local state has not recorded (no refresh ran since it was
          // requested): record it now, exactly as refresh_waiting_list would.
          report_rerun fresh{e->lab_report_id, e->sample_id, e->rerun_number, e->rerun_params, {},
                             rerun_status::requested, in.now};
          it = in.state.reruns.insert_or_assign(e->lab_report_id, std::move(fresh)).first;
          out.actions.push_back({action_kind::rerun_recorded, b.device, e->sample_id, e->lab_report_id,
                                 e->rerun_number, e->rerun_params, activity::rerun_requested,
                                 "recorded from the waiting list while processing a batch"});
        }
        rr = &it->second;
        f.fulfilled = rr->is_fulfilled(t.parameter);
      }
    } else if (const report_rerun* received = find_received(in.state, r.sample_id)) {
      // Not on a waiting list any more, but its report is known: an instrument-triggered rerun
      // then reaches the rerun-values endpoint with its lab report (rerun.md step 4) instead of
      // the results endpoint. The decision-table facts stay those of an unlisted sample.
      t.matched = true;
      t.lab_report_id = received->lab_report_id;
    }
    const qualification q = qualify_rerun(f);
    r.is_rerun = q.is_rerun;
    r.rerun_number = q.rerun_number;
    t.machine_triggered_rerun = q.machine_triggered_rerun;
    t.row = q.row;
    if (q.fulfils && rr != nullptr) rr->fulfilled.push_back(t.parameter);

    in.history.record(r.sample_id, key, {r.value, r.numeric, r.observed_at, in.now});
    if (in.qc != nullptr && in.qc->config().enabled) {
      const timestamp when = parse_wall_time(r.observed_at).value_or(in.now);
      t.qc_status = in.qc->patient_status(b.device, t.parameter, when);
      in.qc->record_patient(b.device, {r.sample_id, t.parameter, in.zone.normalise(r.observed_at), when});
    }
    ++out.counts.forwarded;
    if (!t.matched) ++out.counts.unmatched;
    if (q.rerun_number == 0) ++out.counts.first_results;
    else if (q.rerun_number > 0) ++out.counts.requested_reruns;
    else ++out.counts.instrument_triggered;
  }

  // A control later in this batch but observed before one of its patient results (a late control)
  // changed the status of that result's run after the result was tagged above. Its post is built
  // below, so it leaves with the status its run has once every control of the batch is in -- the
  // same the chart gives a restart or a re-evaluation (qc.md: results re-tagged before delivery).
  if (in.qc != nullptr && in.qc->config().enabled && out.counts.controls > 0)
    for (std::size_t i = 0; i < b.results.size(); ++i) {
      result_tag& t = out.tags[i];
      if (t.control || t.duplicate || t.qc_status.empty()) continue;
      const timestamp when = parse_wall_time(b.results[i].observed_at).value_or(in.now);
      t.qc_status = in.qc->patient_status(b.device, t.parameter, when);
    }

  // Step 3: rules on the tagged results (first results only, capped per sample and parameter).
  std::vector<outgoing_message> requests;
  rules_effects fx{requests, out.actions};
  const rules_env env{in.rules, in.state, in.now, in.zone, in.explain};
  for (std::size_t i = 0; i < b.results.size(); ++i) {
    const result& r = b.results[i];
    const result_tag& t = out.tags[i];
    explain_entry* ex = nullptr;
    if (in.explain) {
      out.explain.push_back({i, r.sample_id, t.parameter,
                             t.duplicate ? "duplicate delivery (not forwarded)" : to_string(t.row), {}, {}});
      ex = &out.explain.back();
    }
    if (t.duplicate || t.control) continue;
    if (r.sample_id_missing()) {
      if (ex != nullptr) ex->note = "no sample id: no rule can request a rerun for it";
      continue;
    }
    // qc.md 5.2.1: a SKIP resolution of this result (made through the QC API before it arrived)
    // bypasses the rules here, its initial evaluation, up to a rule that handles SKIP.
    skip_context skip;
    skip.has_skip = in.qc != nullptr && in.qc->resolution_of(patient_result_id(b.device, r.sample_id, t.parameter)).skip;
    apply_rules(env, b.device, r, t.parameter, t.lab_report_id, t.qc_status, previous[i], skip, ex, fx);
  }
  out.counts.auto_rerun_requests += fx.auto_rerun_requests;

  // Step 4: route.
  results_body first;
  first.device_id = b.device;
  first.batch_id = b.batch_id;
  first.received_at = in.received_at.empty() ? in.zone.format_local(in.now) : in.received_at;
  std::vector<outgoing_message> rerun_values;  // one per (report, rerun number), first-seen order
  for (std::size_t i = 0; i < b.results.size(); ++i) {
    const result& r = b.results[i];
    const result_tag& t = out.tags[i];
    if (t.duplicate || t.control) continue;
    const std::string* raw = i < b.raw.size() ? &b.raw[i] : nullptr;
    // rerun_number 0 -> results. An instrument-triggered rerun without a lab report has nowhere
    // else to go: it is forwarded as a result, tagged, and the backend decides.
    if (r.rerun_number == 0 || t.lab_report_id.empty()) {
      first.results.push_back(to_value(r, t, raw, in.zone));
      continue;
    }
    auto it = std::find_if(rerun_values.begin(), rerun_values.end(), [&](const outgoing_message& m) {
      return m.lab_report_id == t.lab_report_id && m.rerun_values.rerun_number == r.rerun_number;
    });
    if (it == rerun_values.end()) {
      outgoing_message m;
      m.kind = endpoint::rerun_values;
      m.lab_report_id = t.lab_report_id;
      m.act = activity::rerun_values_received;
      m.rerun_values.lab_report_id = t.lab_report_id;
      m.rerun_values.rerun_number = r.rerun_number;
      m.rerun_values.machine_triggered_rerun = t.machine_triggered_rerun;
      rerun_values.push_back(std::move(m));
      it = std::prev(rerun_values.end());
    }
    it->rerun_values.values.push_back(to_value(r, t, raw, in.zone));
    // -1: "immediately fulfilled, no request" -- its fulfilled parameters are what it carries.
    if (t.machine_triggered_rerun && !contains(it->rerun_values.fulfilled_parameters, t.parameter))
      it->rerun_values.fulfilled_parameters.push_back(t.parameter);
  }
  for (auto& m : rerun_values) {
    if (m.rerun_values.machine_triggered_rerun) continue;
    auto& rr = in.state.reruns.at(m.lab_report_id);
    m.rerun_values.requested_parameters = rr.requested;
    m.rerun_values.fulfilled_parameters = rr.fulfilled;
    if (rr.status == rerun_status::requested && rr.complete()) {
      // Every requested parameter arrived: received (sampleRedrawFlag 4), off the waiting lists.
      rr.status = rerun_status::received;
      rr.since = in.now;
      remove_from_waiting_lists(in.state, rr.lab_report_id);
      out.actions.push_back({action_kind::rerun_received, b.device, rr.sample_id, rr.lab_report_id,
                             rr.number, rr.fulfilled, activity::rerun_values_received, {}});
    }
  }
  if (!first.results.empty()) {
    outgoing_message m;
    m.kind = endpoint::results;
    m.results = std::move(first);
    out.messages.push_back(std::move(m));
  }
  for (auto& m : rerun_values) out.messages.push_back(std::move(m));
  for (auto& m : requests) out.messages.push_back(std::move(m));
  if (!controls.results.empty()) {
    outgoing_message m;
    m.kind = endpoint::qc_results;
    m.qc = std::move(controls);
    out.messages.push_back(std::move(m));
  }
  for (auto& m : qc_runs) out.messages.push_back(std::move(m));
  // Reflex orders whose every test has had its result: done.
  if (const auto it = in.state.reflex_orders.find(b.device); it != in.state.reflex_orders.end()) {
    std::erase_if(it->second, [&](const reflex_order& o) { return reflex_tests_pending(o, in.history).empty(); });
    if (it->second.empty()) in.state.reflex_orders.erase(it);
  }
  return out;
}

rules_again_outcome run_rules_again(const std::vector<rules_again_result>& results, const rule_set& rules,
                                    rerun_state& state, timestamp now, const lab_zone& zone) {
  rules_again_outcome out;
  rules_effects fx{out.messages, out.actions, &out};
  const rules_env env{rules, state, now, zone, false};
  for (const auto& x : results) {
    if (x.r.sample_id_missing()) continue;  // nothing a rule could request for it
    ++out.results;
    apply_rules(env, x.device, x.r, x.parameter, x.lab_report_id, x.qc_status, std::nullopt, {x.has_skip, true},
                nullptr, fx);
  }
  out.fired = fx.fired;
  return out;
}

void take_back(rerun_state& state, const rules_again_outcome& o) {
  for (const auto& [sample, counter] : o.counted) state.uncount_auto_rerun(sample, counter);
  for (const auto& [device, order] : o.reflexes) {
    const auto it = state.reflex_orders.find(device);
    if (it == state.reflex_orders.end()) continue;
    if (const auto at = std::find(it->second.begin(), it->second.end(), order); at != it->second.end()) it->second.erase(at);
    if (it->second.empty()) state.reflex_orders.erase(it);
  }
}

std::vector<action> refresh_waiting_list(rerun_state& state, std::string_view device,
                                         std::vector<waiting_list_entry> entries, timestamp now) {
  std::vector<action> actions;
  std::vector<waiting_list_entry> previous;
  if (auto it = state.waiting_lists.find(device); it != state.waiting_lists.end())
    previous = std::move(it->second);
  auto find_in = [](const std::vector<waiting_list_entry>& list, std::string_view id) -> const waiting_list_entry* {
    for (const auto& e : list)
      if (e.lab_report_id == id) return &e;
    return nullptr;
  };
  auto close = [&](std::map<std::string, report_rerun, std::less<>>::iterator it, const char* why) {
    // A received rerun that is closed was confirmed; one still requested was cancelled.
    const bool confirmed = it->second.status == rerun_status::received;
    actions.push_back({action_kind::rerun_closed, std::string(device), it->second.sample_id,
                       it->second.lab_report_id, it->second.number, it->second.requested,
                       confirmed ? activity::rerun_values_confirmed : activity::rerun_cancelled, why});
    state.reruns.erase(it);
  };

  for (const auto& e : entries) {
    auto local = state.reruns.find(e.lab_report_id);
    if (!e.rerun_active()) {
      if (local != state.reruns.end()) close(local, "the waiting list shows no rerun any more");
      continue;
    }
    const bool changed = local == state.reruns.end() || local->second.number != e.rerun_number;
    if (changed) {
      // rerun_number_changed: record the new rerun, nothing fulfilled yet.
      state.reruns.insert_or_assign(
          e.lab_report_id, report_rerun{e.lab_report_id, e.sample_id, e.rerun_number, e.rerun_params,
                                        {}, rerun_status::requested, now});
      actions.push_back({action_kind::rerun_recorded, std::string(device), e.sample_id, e.lab_report_id,
                         e.rerun_number, e.rerun_params, activity::rerun_requested, "rerun_number_changed"});
    }
    const waiting_list_entry* before = find_in(previous, e.lab_report_id);
    // A received rerun the backend still lists (its flag-4 state can lag a poll) was dropped from
    // the stored list, so it is never `before`: without this it would be re-ordered every poll.
    const bool already_received = !changed && local->second.status == rerun_status::received;
    if (!already_received && (changed || before == nullptr || before->rerun_number != e.rerun_number)) {
      actions.push_back({action_kind::queue_retest_order, std::string(device), e.sample_id,
                         e.lab_report_id, e.rerun_number, e.rerun_params, std::nullopt,
                         "re-test exactly the requested parameters"});
    }
  }
  for (const auto& p : previous) {
    if (find_in(entries, p.lab_report_id) != nullptr) continue;
    auto local = state.reruns.find(p.lab_report_id);
    // Gone while requested: cancelled. Gone while received: flag 4 is simply not listed (awaiting
    // confirmation, seed 000 decision 9); kept until it returns at flag 0 or is pruned.
    if (local != state.reruns.end() && local->second.status == rerun_status::requested)
      close(local, "the report left the waiting list");
  }
  std::erase_if(entries, [&](const waiting_list_entry& e) {
    const auto it = state.reruns.find(e.lab_report_id);
    return it != state.reruns.end() && it->second.status == rerun_status::received &&
           it->second.number == e.rerun_number;
  });
  state.waiting_lists.insert_or_assign(std::string(device), std::move(entries));
  return actions;
}

std::size_t prune_state(rerun_state& state, timestamp cutoff) {
  std::size_t n = std::erase_if(state.reruns, [&](const auto& kv) {
    return kv.second.status == rerun_status::received && kv.second.since < cutoff;
  });
  n += std::erase_if(state.auto_reruns, [&](const auto& kv) { return kv.second.last < cutoff; });
  for (auto it = state.reflex_orders.begin(); it != state.reflex_orders.end();) {
    n += std::erase_if(it->second, [&](const reflex_order& o) { return o.since < cutoff; });
    it = it->second.empty() ? state.reflex_orders.erase(it) : std::next(it);
  }
  return n;
}

}  // namespace interfaced::rerun
