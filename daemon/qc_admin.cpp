#include "daemon/qc_admin.hpp"

#include <algorithm>
#include <optional>
#include <string_view>
#include <unordered_set>
#include <utility>

#include <spdlog/spdlog.h>

#include "daemon/clock.hpp"
#include "daemon/ingest_hand_off.hpp"
#include "rerun/history.hpp"
#include "rerun/outgoing.hpp"
#include "rerun/qc_json.hpp"
#include "rerun/rerun_json.hpp"
#include "rerun/rules.hpp"

namespace interfaced::daemon {

using json = nlohmann::json;
namespace qc = rerun::qc;

json audit_json(const qc::audit_entry& e) {
  return {{"id", e.id},         {"kind", e.kind}, {"result_id", e.result_id}, {"device", e.device},
          {"parameter", e.parameter}, {"code", e.code}, {"by", e.by},             {"reason", e.reason},
          {"at", e.at},         {"ref", e.ref},   {"detail", e.detail}};
}

json resolution_json(const qc::resolution& r) {
  json j = {{"id", r.id}, {"code", r.code}, {"by", r.by}, {"reason", r.reason}, {"at", r.at},
            {"state", std::string(qc::to_string(r.st))}};
  if (!r.approved_by.empty()) j["approved_by"] = r.approved_by;
  return j;
}

std::size_t stamp_exported(const transport::state_store& store, rerun::qc_run_body& run, std::string& first,
                           std::string& last) {
  std::size_t exported = 0;
  for (auto& p : run.patient_results) {
    const auto at = store.qc_patient_delivered_at(run.device_id, p.sample_id, p.parameter, p.observed_at);
    if (!at) continue;
    p.exported_at = iso_ms(std::chrono::system_clock::time_point(std::chrono::milliseconds(*at)));
    ++exported;
    // Same offset and format: the text order is the time order.
    if (first.empty() || p.exported_at < first) first = p.exported_at;
    if (last.empty() || p.exported_at > last) last = p.exported_at;
  }
  return exported;
}

namespace {

transport::http_reply reply(unsigned status, const json& j) { return {status, "application/json", j.dump() + "\n"}; }
transport::http_reply refused(unsigned status, const std::string& why) { return reply(status, json{{"error", why}}); }

// The flags a resolution code gives its control result.
qc::qc_tracker::resolution_flags flags_of(const std::vector<qc::resolution_code>& codes, const std::string& code) {
  const qc::resolution_code* c = qc::find_code(codes, code);
  return c ? qc::qc_tracker::resolution_flags{c->excludes_from_westgard, c->skip} : qc::qc_tracker::resolution_flags{};
}

std::string text_of(const json& body, const char* key) {
  return body.contains(key) && body[key].is_string() ? body[key].get<std::string>() : std::string();
}

// A qc-runs post as an outbox message (device: its ordering key, after the device's results).
transport::new_message qc_runs_message(const std::string& device, rerun::qc_run_body run) {
  rerun::outgoing_message m;
  m.kind = rerun::endpoint::qc_runs;
  m.qc_run = std::move(run);
  transport::new_message nm;
  nm.kind = rerun::to_string(m.kind);
  nm.ordering_key = "device:" + device;
  nm.body = rerun::body_json(m).dump();
  nm.device = device;
  return nm;
}

// How many re-tags of [begin, end) the outbox refused (delivery had taken the post): their
// corrections went instead.
std::size_t late_retags(const std::vector<bool>& rewritten, std::size_t begin, std::size_t end) {
  std::size_t n = 0;
  for (std::size_t i = begin; i < end && i < rewritten.size(); ++i)
    if (!rewritten[i]) ++n;
  return n;
}

// An audit entry whose detail holds a re-evaluation's outcome message: written again, in the
// transaction and in the book, once it is known which of its re-tags (rewrites [begin, end))
// became corrections.
struct detail_of_entry {
  std::int64_t id = 0;
  std::string head;  // before the outcome message
  reevaluation_figures figures;
  std::string tail;  // after it
  std::size_t begin = 0, end = 0;
  [[nodiscard]] std::string text(const std::vector<bool>& rewritten) const {
    return head + figures.message(late_retags(rewritten, begin, end)) + tail;
  }
};

// The settle hook of a change's state_changes: each entry's detail as the transaction decided.
void settle_details(transport::state_changes& sc, const std::vector<detail_of_entry>& details) {
  if (details.empty()) return;
  sc.settle = [details](transport::state_changes& c, const std::vector<bool>& rewritten) {
    for (auto& e : c.qc_audit)
      for (const auto& d : details)
        if (d.id == e.id) e.detail = d.text(rewritten);
  };
}

std::int64_t id_of(const json& body, const char* key) {
  if (!body.contains(key)) return 0;
  if (body[key].is_number_integer()) return body[key].get<std::int64_t>();
  if (body[key].is_string()) try {
      return std::stoll(body[key].get<std::string>());
    } catch (const std::exception&) {
    }
  return 0;
}

}  // namespace

void qc_admin::restore() {
  book_.restore(store_.qc_audit());
  for (const auto& r : book_.resolutions())
    if (r.st == qc::resolution::state::active) qc_.set_resolution(r.result_id, flags_of(qc_.config().resolution_codes, r.code));
  if (!book_.entries().empty())
    spdlog::info("QC audit loaded: {} entries, {} resolutions", book_.entries().size(), book_.resolutions().size());
}

bool qc_admin::handle(const transport::http_request_view& req, std::chrono::system_clock::time_point now,
                      const transport::http_responder& respond) {
  const std::string path = req.target.substr(0, req.target.find('?'));
  if (req.method == "GET" && path == "/api/qc/history") {
    json entries = json::array();
    for (const auto& e : book_.entries()) entries.push_back(audit_json(e));
    respond(reply(200, json{{"entries", std::move(entries)}}));
    return true;
  }
  if (req.method != "POST" || (path != "/api/qc/resolve" && path != "/api/qc/approve" && path != "/api/qc/undo"))
    return false;
  const json body = json::parse(req.body, nullptr, false);
  if (!body.is_object()) {
    respond(refused(400, "expected a JSON object body"));
    return true;
  }
  if (storing_) {
    // The next change is judged on the book and charts the pending one leaves: it waits for it.
    auto r = refused(503, "another QC change is being stored; try again in a moment");
    r.headers.push_back({"Retry-After", "1"});
    respond(std::move(r));
    return true;
  }
  const std::string at = iso_ms(now);
  const auto& codes = qc_.config().resolution_codes;
  if (path == "/api/qc/resolve") {
    qc::request r;
    r.result_id = text_of(body, "result_id");
    r.code = text_of(body, "code");
    r.by = text_of(body, "by");
    r.reason = text_of(body, "reason");
    r.at = at;
    r.propose = body.value("propose", false);
    const auto f = qc_.find(r.result_id);
    if (!f && r.result_id.starts_with(rerun::patient_result_prefix)) {
      // qc.md 5.2.1: a patient result resolved SKIP bypasses the rules engine at its initial
      // evaluation (process_reports_for_rerun asks the tracker); only a SKIP code means anything for it.
      const std::string_view id = std::string_view(r.result_id).substr(rerun::patient_result_prefix.size());
      const auto first = id.find('|'), last = id.rfind('|');
      if (first == std::string_view::npos || first == last || first == 0 || last + 1 == id.size()) {
        respond(refused(400, "a patient result id is \"patient:<device>|<sample id>|<parameter>\""));
        return true;
      }
      const qc::resolution_code* c = qc::find_code(codes, r.code);
      if (c != nullptr && !c->skip) {
        respond(refused(400, "code \"" + r.code + "\" is not a SKIP code: a patient result can only be resolved SKIP"));
        return true;
      }
      r.device = std::string(id.substr(0, first));
      r.parameter = std::string(id.substr(last + 1));
      apply(book_.resolve(r, codes, [](const std::string&) { return std::vector<std::string>{}; }),
            r.propose ? "proposed" : "resolved", now, respond);
      return true;
    }
    if (!f) {
      respond(refused(404, "no control result \"" + r.result_id + "\" (see GET /api/qc/series for result ids)"));
      return true;
    }
    r.device = f->c.device;
    r.parameter = f->c.series.parameter;
    // 5.5: the patient results a resolution of a control would change: its run's.
    auto affected = [this](const std::string& id) {
      std::vector<std::string> out;
      if (const auto g = qc_.find(id))
        for (const auto& p : qc_.run_patients(g->c.device, g->c.series.parameter, g->c.t))
          out.push_back(p.sample_id + " " + p.parameter);
      return out;
    };
    apply(book_.resolve(r, codes, affected), r.propose ? "proposed" : "resolved", now, respond);
  } else if (path == "/api/qc/approve") {
    apply(book_.approve(id_of(body, "proposal_id"), text_of(body, "by"), at, codes), "approved", now, respond);
  } else {
    apply(book_.undo(id_of(body, "resolution_id"), text_of(body, "by"), text_of(body, "reason"), at, codes), "undone",
          now, respond);
  }
  return true;
}

std::string reevaluation_figures::message(std::size_t late) const {
  late = std::min(late, results_retagged);
  std::string exported;
  if (results_changed > 0) {
    std::string retagged = std::to_string(results_retagged - late) + " re-tagged in the outbox before delivery";
    if (late > 0)
      retagged += ", " + std::to_string(late) + " corrected by qc-runs posts (delivery had taken their results post)";
    if (results_exported == 0 && results_retagged == results_changed)
      exported = " (" + retagged + ")";
    else if (results_exported == 0)
      exported = " (" + retagged + ", none delivered to the backend yet: the qc-runs posts name the others)";
    else
      exported = " (" + retagged + ", " + std::to_string(results_exported) + " already exported, " +
                 (exported_from == exported_to ? "at " + exported_from : "from " + exported_from + " to " + exported_to) +
                 ": corrected by qc-runs posts)";
  }
  std::string text = "re-evaluated " + std::to_string(runs_reevaluated) + " run(s) of " + device + " " + parameter + ", " +
                     std::to_string(runs_changed) + " changed, " + std::to_string(results_changed) +
                     " patient result(s) changed status" + exported +
                     "; stopped: " + (stopped_early ? "8 consecutive unchanged runs" : "end of series") + rules_note;
  if (late > 0)
    text += "; " + std::to_string(late) +
            " re-tag(s) came after delivery took the results post: corrected by qc-runs posts instead";
  return text;
}

json reevaluation_figures::summary(std::size_t late) const {
  late = std::min(late, results_retagged);
  json j = {{"runs_reevaluated", runs_reevaluated},
            {"runs_changed", runs_changed},
            {"results_changed", results_changed},
            {"results_exported", results_exported},
            {"results_retagged", results_retagged - late},
            {"stopped", stopped_early ? "8 unchanged" : "end of series"},
            {"qc_runs_posted", qc_runs_posted + late}};
  if (late > 0) j["results_corrected_late"] = late;
  if (results_exported > 0) {
    j["exported_from"] = exported_from;
    j["exported_to"] = exported_to;
  }
  if (!rules_rerun.is_null()) j["rules_rerun"] = rules_rerun;
  return j;
}

reevaluation_figures qc_admin::reevaluate(const std::string& device, const std::string& parameter, rerun::timestamp from,
                                          const std::string& toggled, const std::string& cause,
                                          const std::map<std::string, std::pair<qc::outcome, std::string>, std::less<>>& before,
                                          std::chrono::system_clock::time_point now, transport::state_changes& sc,
                                          std::vector<transport::new_message>& msgs,
                                          std::vector<transport::body_rewrite>& rewrites) {
  // qc.md "Re-evaluation and propagation": the runs from the change on, in observed_at order,
  // compared with the change-detection table; 8 consecutive unchanged runs stop it.
  const auto rep = qc_.reevaluate_from(device, parameter, from, 8, toggled);
  reevaluation_figures fig;
  fig.device = device;
  fig.parameter = parameter;
  const auto names = [](qc::rule_mask m) {
    std::string s;
    for (const auto& n : qc::rule_names(m)) s += (s.empty() ? "" : ",") + n;
    return s;
  };
  const transport::state_store::read_scope reads(store_);  // one snapshot for the lookups
  for (const auto& run : rep.runs) {
    if (!qc::is_mark(run.what)) continue;
    const std::string reason = std::string(qc::to_string(run.what)) + " after " + cause + " (rules before: [" +
                               names(run.original) + "], now: [" + names(run.analysed) + "])";
    rerun::qc_run_body body{device, run.run_id, run.status, reason, {}};
    // An exported result is never changed in place: this post corrects its qc_status, saying
    // when it was exported (qc.md "Exported results are preserved").
    // One still in the outbox, never attempted, is re-tagged in its results post instead, in this
    // transaction; the correction names only the others. Whether the post is still rewritable
    // (delivery may have taken it since this lookup) is decided inside the transaction: if not,
    // its own correction post is stored instead (body_rewrite::otherwise) -- never a lost status,
    // never a change refused for it.
    for (const auto& p : run.patients) {
      ++fig.results_changed;
      if (auto id = store_.qc_patient_unsent_message(device, p.sample_id, p.parameter, p.observed_at)) {
        rerun::qc_run_body late{device, run.run_id, run.status,
                                reason + "; its results post was already being sent when it was to be re-tagged",
                                {{p.sample_id, p.parameter, p.observed_at, {}}}};
        transport::body_rewrite rw{std::move(*id),
                                   [p, status = qc_.patient_status(device, p.parameter, p.t)](const std::string& b) {
                                     return rerun::retag_qc_status(b, p.sample_id, p.parameter, p.observed_at, status);
                                   },
                                   false,
                                   {}};
        rw.otherwise.push_back(qc_runs_message(device, std::move(late)));
        rewrites.push_back(std::move(rw));
        ++fig.results_retagged;
        continue;
      }
      body.patient_results.push_back({p.sample_id, p.parameter, p.observed_at, {}});
    }
    fig.results_exported += stamp_exported(store_, body, fig.exported_from, fig.exported_to);
    msgs.push_back(qc_runs_message(device, std::move(body)));
    ++fig.qc_runs_posted;
  }
  count_moves(device, parameter, before, now, sc);
  fig.runs_reevaluated = rep.runs_reevaluated;
  fig.runs_changed = rep.runs_changed;
  fig.stopped_early = rep.stopped_early;
  fig.rules_note = rerun_rules_after(device, rep, sc, msgs, fig.rules_rerun);
  return fig;
}

// history.md: a control moved between rejected and accepted counts on its observed day.
void qc_admin::count_moves(const std::string& device, const std::string& parameter,
                           const std::map<std::string, std::pair<qc::outcome, std::string>, std::less<>>& before,
                           std::chrono::system_clock::time_point now, transport::state_changes& sc) {
  const auto after = qc_.effective_outcomes(device, parameter);
  const auto at = std::chrono::time_point_cast<std::chrono::milliseconds>(now);
  auto counts = [](qc::outcome o) {
    return o == qc::outcome::accept || o == qc::outcome::warning ? 1 : o == qc::outcome::reject ? -1 : 0;
  };
  for (const auto& [id, was] : before) {
    const auto it = after.find(id);
    if (it == after.end() || counts(was.first) == counts(it->second.first)) continue;
    auto ev = [&](std::string_view type, std::int64_t delta) {
      rerun::history_event e;
      e.event_type = std::string(type);
      e.dimension_a = device;
      e.dimension_b = parameter;
      e.observed_at = was.second;
      e.at = at;
      e.delta = delta;
      sc.events.push_back(std::move(e));
    };
    const int from = counts(was.first), to = counts(it->second.first);
    if (from == 1) ev(rerun::history_events::device_qc_accepted, -1);
    if (from == -1) ev(rerun::history_events::device_qc_rejected, -1);
    if (to == 1) ev(rerun::history_events::device_qc_accepted, 1);
    if (to == -1) ev(rerun::history_events::device_qc_rejected, 1);
  }
}

void qc_admin::limits_changed(const std::string& by, const std::string& reason, std::chrono::system_clock::time_point now,
                              transport::state_changes sc, std::function<void()> put_back) {
  if (storing_) {
    // Judged on the charts the pending change leaves (put back if it fails): after it.
    deferred_.push_back([this, by, reason, now, sc = std::move(sc), put_back = std::move(put_back)]() mutable {
      limits_changed(by, reason, now, std::move(sc), std::move(put_back));
    });
    return;
  }
  // The limits that judge a result (qc.md "limits": configured, else the backend's, else the
  // analyser's): every stored control result whose limits now differ from the ones it was
  // judged with gets its z again, and its series is re-evaluated from the first such result.
  // Every series changed, its audit entry and the caller's state (`sc`: the backend's limits
  // document) commit in one transaction.
  std::vector<transport::new_message> msgs;
  std::vector<transport::body_rewrite> rewrites;
  struct changed_series {
    device_runtime* dev;
    std::string message;
    bool runs_changed;
  };
  std::vector<changed_series> logs;
  std::vector<detail_of_entry> details;  // parallel to logs
  // What memory looks like before, put back when the commit fails: the charts this change
  // re-judges (limits, z, outcomes: the patient results' qc_status follows from them) and the book.
  std::map<std::string, qc::qc_tracker::chart, std::less<>> charts_before;
  auto book_before = book_;
  const std::uint64_t additions_before = qc_.additions();
  const std::string at = iso_ms(now);
  for (auto& [key, ch] : qc_.chart_state()) {
    const std::string device = key.substr(0, key.find('\x1f')), parameter = key.substr(key.find('\x1f') + 1);
    const auto before = qc_.effective_outcomes(device, parameter);
    auto saved = ch;
    const auto from = qc_.rejudge_limits(device, parameter);
    if (!from) continue;
    charts_before.emplace(key, std::move(saved));
    detail_of_entry d;
    d.begin = rewrites.size();
    d.figures = reevaluate(device, parameter, *from, {}, "a limit change (" + reason + ")", before, now, sc, msgs, rewrites);
    d.end = rewrites.size();
    const std::string message = d.figures.message();
    for (std::size_t i = 0; i < ch.results.size(); ++i) {
      const auto& v = ch.verdicts[i];
      const std::string level = "; limits " + ch.results[i].series.level + ": ";
      if (v.mean && v.sd && d.tail.find(level) == std::string::npos)
        d.tail += level + "mean " + std::to_string(*v.mean) + " sd " + std::to_string(*v.sd) + " (" + v.limits_source + ")";
    }
    auto e = book_.limits_changed(device, parameter, by, reason, at, message + d.tail);
    d.id = e.id;
    book_.append(e);
    sc.qc_audit.push_back(e);
    logs.push_back({devices_.find(device), message, d.figures.runs_changed > 0});
    details.push_back(std::move(d));
  }
  settle_details(sc, details);
  if (!logs.empty()) sc.documents.emplace_back("qc_state", qc::to_json(qc_).dump());
  if (sc.empty() && msgs.empty()) return;
  // Only a change that re-judged charts holds resolutions off: one that stores just the limits
  // document (nothing judged differently) has no chart or book to put back.
  const bool judged = !charts_before.empty();
  if (judged) storing_ = true;
  outbox_.append(std::move(msgs), std::move(sc), std::move(rewrites),
                 [this, reason, judged, logs = std::move(logs), details = std::move(details), charts_before = std::move(charts_before),
                  book_before = std::move(book_before), put_back = std::move(put_back), additions_before,
                  take_back = std::exchange(rules_take_back_, {})](transport::append_result r) mutable {
                   if (judged) storing_ = false;
                   if (!r.durable) {
                     // Memory goes back to what the file holds (a restart would find the same): the
                     // book, the caller's limits, so the change is tried again (the backend poll:
                     // its next answer still differs; SIGHUP: the next reload), and the charts
                     // judged with them again.
                     book_ = std::move(book_before);
                     if (put_back) put_back();
                     put_back_charts(std::move(charts_before), additions_before);
                     for (const auto& f : take_back) f();  // the rules re-run's counts and reflex orders
                     for (const auto& l : logs) {
                       auto* log = l.dev ? l.dev->log.get() : spdlog::default_logger_raw();
                       log->error("QC limit change ({}) could not be stored: {}; not applied, the previous limits stay ({}) [QC-008]",
                                  reason, r.error, l.message);
                     }
                     if (logs.empty())
                       spdlog::error("QC limit change ({}) could not be stored: {}; not applied, the previous limits stay [QC-008]",
                                     reason, r.error);
                   } else {
                     for (std::size_t i = 0; i < logs.size(); ++i) {
                       const auto& l = logs[i];
                       // The history entry as the transaction stored it: late re-tags counted as corrected.
                       book_.set_detail(details[i].id, details[i].text(r.rewritten));
                       const std::string message = details[i].figures.message(
                           late_retags(r.rewritten, details[i].begin, details[i].end));
                       auto* log = l.dev ? l.dev->log.get() : spdlog::default_logger_raw();
                       if (l.runs_changed) log->warn("QC limits changed: {} [QC-007]", message);
                       else log->info("QC limits changed: {}", message);
                     }
                   }
                   run_deferred();
                 });
}

void qc_admin::put_back_charts(std::map<std::string, qc::qc_tracker::chart, std::less<>> before,
                               std::uint64_t additions_before) {
  const bool arrived = qc_.additions() != additions_before;
  for (auto& [key, ch] : before) {
    qc::qc_tracker::chart& now = qc_.chart_state()[key];
    std::vector<qc::control_result> since;
    if (arrived) {
      // A set of the ids kept, not a search per result: a chart holds up to 2,000 results.
      std::unordered_set<std::string_view> kept;
      for (const auto& x : ch.results) kept.insert(x.result_id);
      for (const auto& r : now.results)
        if (!kept.contains(r.result_id)) since.push_back(r);
    }
    now = std::move(ch);
    for (const auto& r : since) (void)qc_.add(r);
  }
  if (!arrived) return;
  transport::state_changes sc;
  sc.documents.emplace_back("qc_state", qc::to_json(qc_).dump());
  outbox_.write(std::move(sc), [](bool ok) {
    if (!ok)
      spdlog::error("QC charts could not be stored again after a change that was not applied; the next control "
                    "result stores them [QC-008]");
  });
}

void qc_admin::run_deferred() {
  while (!storing_ && !deferred_.empty()) {
    auto next = std::move(deferred_.front());
    deferred_.pop_front();
    next();
  }
}

void qc_admin::apply(qc::decision d, const std::string& action, std::chrono::system_clock::time_point now,
                     const transport::http_responder& respond) {
  if (!d.error.empty()) {
    spdlog::warn("QC resolution refused: {} [QC-006]", d.error);
    respond(refused(409, d.error));
    return;
  }
  const qc::resolution& res = *d.changed;
  device_runtime* dev = devices_.find(res.device);
  const auto& codes = qc_.config().resolution_codes;
  // What memory looks like before: put back when the commit fails.
  const std::string chart_key = res.device + '\x1f' + res.parameter;
  std::optional<qc::qc_tracker::chart> chart_before;
  if (const auto it = qc_.chart_state().find(chart_key); it != qc_.chart_state().end()) chart_before = it->second;
  const bool had_flags = qc_.resolution_state().count(res.result_id) > 0;
  auto book_before = book_;
  const std::uint64_t additions_before = qc_.additions();
  transport::state_changes sc;
  std::vector<transport::new_message> msgs;
  std::vector<transport::body_rewrite> rewrites;
  json out = {{"action", action}, {"resolution", resolution_json(res)}, {"result_id", res.result_id}};
  std::string message = std::string(res.result_id.starts_with(rerun::patient_result_prefix) ? "" : "control result ") +
                        res.result_id + ": " + res.code + " " + action + " by " +
                        (action == "approved" ? res.approved_by : d.entries.front().by);
  const auto before_flags = qc_.resolution_of(res.result_id);
  auto after_flags = before_flags;
  if (d.takes_effect)
    after_flags = res.st == qc::resolution::state::undone ? qc::qc_tracker::resolution_flags{} : flags_of(codes, res.code);
  std::optional<reevaluation_figures> figures;
  if (before_flags.excluded != after_flags.excluded || before_flags.skip != after_flags.skip) {
    const auto f = qc_.find(res.result_id);
    const auto before = qc_.effective_outcomes(res.device, res.parameter);
    qc_.set_resolution(res.result_id, after_flags);
    if (f && before_flags.excluded != after_flags.excluded) {
      figures = reevaluate(res.device, res.parameter, f->c.t, res.result_id, res.code + " " + action + " on " + res.result_id,
                           before, now, sc, msgs, rewrites);
      out["reevaluation"] = figures->summary();
    } else {
      count_moves(res.device, res.parameter, before, now, sc);
    }
    sc.documents.emplace_back("qc_state", qc::to_json(qc_).dump());
  }
  std::string tail;
  if (before_flags.skip && !after_flags.skip) tail = rerun_rules_after_skip_undo(res, sc, msgs, out);
  // The entries' detail: the outcome message; with a re-evaluation, settled in the transaction
  // (its re-tags that became corrections count as corrected).
  std::vector<detail_of_entry> details;
  if (figures)
    for (const auto& e : d.entries) details.push_back({e.id, message + "; ", *figures, tail, 0, rewrites.size()});
  if (figures) message += "; " + figures->message();
  message += tail;
  out["message"] = message;
  for (auto& e : d.entries) e.detail = message;
  sc.qc_audit = d.entries;
  settle_details(sc, details);
  // In the book at once (the next audit id, a SIGHUP's limit entry, count on it); undone below
  // when the commit fails.
  book_.apply(d);
  out["entries"] = json::array();
  for (const auto& e : d.entries) out["entries"].push_back(audit_json(e));
  storing_ = true;
  outbox_.append(std::move(msgs), std::move(sc), std::move(rewrites),
                 [this, dev, message, out = std::move(out), details = std::move(details), respond, chart_key,
                  chart_before = std::move(chart_before),
                  had_flags, before_flags, result_id = res.result_id, book_before = std::move(book_before),
                  additions_before, take_back = std::exchange(rules_take_back_, {})](transport::append_result r) mutable {
                   storing_ = false;
                   if (!r.durable) {
                     for (const auto& f : take_back) f();
                     // Memory goes back to what the file holds: a restart would find the same.
                     if (had_flags) qc_.set_resolution(result_id, before_flags);
                     else qc_.clear_resolution(result_id);
                     if (chart_before) {
                       std::map<std::string, qc::qc_tracker::chart, std::less<>> before;
                       before.emplace(chart_key, std::move(*chart_before));
                       put_back_charts(std::move(before), additions_before);
                     }
                     book_ = std::move(book_before);
                     if (dev) dev->log->error("QC resolution could not be stored: {} ({}); not applied [QC-008]", r.error, message);
                     else spdlog::error("QC resolution could not be stored: {} ({}); not applied [QC-008]", r.error, message);
                     respond(refused(503, "not stored, nothing changed: the outbox could not commit it (" + r.error + ")"));
                     run_deferred();
                     return;
                   }
                   if (!details.empty() && late_retags(r.rewritten, details.front().begin, details.front().end) > 0) {
                     // Decided in the transaction: delivery had taken these posts, so their
                     // correction posts went instead of the re-tag. The entries say so too.
                     const auto& d0 = details.front();
                     out["reevaluation"] = d0.figures.summary(late_retags(r.rewritten, d0.begin, d0.end));
                     message = d0.text(r.rewritten);
                     out["message"] = message;
                     out["entries"] = json::array();
                     for (const auto& de : details) book_.set_detail(de.id, de.text(r.rewritten));
                     for (const auto& e : book_.entries())
                       if (std::any_of(details.begin(), details.end(), [&](const detail_of_entry& de) { return de.id == e.id; }))
                         out["entries"].push_back(audit_json(e));
                   }
                   if (dev) {
                     if (out.contains("reevaluation") && out["reevaluation"]["runs_changed"].get<std::size_t>() > 0)
                       dev->log->warn("{} [QC-007]", message);
                     else
                       dev->log->info("{}", message);
                   }
                   respond(reply(200, out));
                   run_deferred();
                 });
}

std::string qc_admin::rerun_rules_for(const std::string& device, const std::vector<qc::patient_ref>& patients,
                                      transport::state_changes& sc, std::vector<transport::new_message>& msgs,
                                      json& figures) {
  if (rules_ == nullptr || patients.empty()) return {};
  auto r = rules_->rerun_rules(device, patients, sc, msgs);
  if (r.take_back) rules_take_back_.push_back(std::move(r.take_back));
  if (r.note.empty()) return {};
  figures = {{"results", r.results}, {"fired", r.fired}, {"not_found", r.unknown}};
  return "; " + r.note;
}

std::string qc_admin::rerun_rules_after(const std::string& device, const qc::qc_tracker::reevaluation_report& rep,
                                        transport::state_changes& sc, std::vector<transport::new_message>& msgs,
                                        json& figures) {
  // The patient results of the marked runs: the ones whose qc_status this re-evaluation changed.
  std::vector<qc::patient_ref> changed;
  for (const auto& run : rep.runs)
    if (qc::is_mark(run.what)) changed.insert(changed.end(), run.patients.begin(), run.patients.end());
  return rerun_rules_for(device, changed, sc, msgs, figures);
}

std::string qc_admin::rerun_rules_after_skip_undo(const qc::resolution& res, transport::state_changes& sc,
                                                  std::vector<transport::new_message>& msgs, json& out) {
  // "patient:<device>|<sample id>|<parameter>" (rerun::patient_result_id); a control's SKIP undone
  // changes no patient result's rules.
  if (!res.result_id.starts_with(rerun::patient_result_prefix)) return {};
  const std::string_view id = std::string_view(res.result_id).substr(rerun::patient_result_prefix.size());
  const auto first = id.find('|'), last = id.rfind('|');
  if (first == std::string_view::npos || first == last) return {};
  const std::string sample(id.substr(first + 1, last - first - 1));
  std::vector<qc::patient_ref> patients;
  for (auto& p : qc_.patients_after(res.device, res.parameter, rerun::timestamp::min()))
    if (p.sample_id == sample) patients.push_back(std::move(p));
  json figures;
  std::string note = rerun_rules_for(res.device, patients, sc, msgs, figures);
  if (!figures.is_null()) out["rules_rerun"] = std::move(figures);
  return note;
}

}  // namespace interfaced::daemon
