#include "daemon/qc_admin.hpp"

#include <optional>

#include <spdlog/spdlog.h>

#include "daemon/clock.hpp"
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

std::optional<transport::http_reply> qc_admin::handle(const transport::http_request_view& req,
                                                      std::chrono::system_clock::time_point now) {
  const std::string path = req.target.substr(0, req.target.find('?'));
  if (req.method == "GET" && path == "/api/qc/history") {
    json entries = json::array();
    for (const auto& e : book_.entries()) entries.push_back(audit_json(e));
    return reply(200, json{{"entries", std::move(entries)}});
  }
  if (req.method != "POST" || (path != "/api/qc/resolve" && path != "/api/qc/approve" && path != "/api/qc/undo"))
    return std::nullopt;
  const json body = json::parse(req.body, nullptr, false);
  if (!body.is_object()) return refused(400, "expected a JSON object body");
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
      if (first == std::string_view::npos || first == last || first == 0 || last + 1 == id.size())
        return refused(400, "a patient result id is \"patient:<device>|<sample id>|<parameter>\"");
      const qc::resolution_code* c = qc::find_code(codes, r.code);
      if (c != nullptr && !c->skip)
        return refused(400, "code \"" + r.code + "\" is not a SKIP code: a patient result can only be resolved SKIP");
      r.device = std::string(id.substr(0, first));
      r.parameter = std::string(id.substr(last + 1));
      return apply(book_.resolve(r, codes, [](const std::string&) { return std::vector<std::string>{}; }),
                   r.propose ? "proposed" : "resolved", now);
    }
    if (!f) return refused(404, "no control result \"" + r.result_id + "\" (see GET /api/qc/series for result ids)");
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
    return apply(book_.resolve(r, codes, affected), r.propose ? "proposed" : "resolved", now);
  }
  if (path == "/api/qc/approve")
    return apply(book_.approve(id_of(body, "proposal_id"), text_of(body, "by"), at, codes), "approved", now);
  return apply(book_.undo(id_of(body, "resolution_id"), text_of(body, "by"), text_of(body, "reason"), at, codes), "undone",
               now);
}

std::string qc_admin::reevaluate(const std::string& device, const std::string& parameter, rerun::timestamp from,
                                 const std::string& toggled, const std::string& cause,
                                 const std::map<std::string, std::pair<qc::outcome, std::string>, std::less<>>& before,
                                 std::chrono::system_clock::time_point now, transport::state_changes& sc,
                                 std::vector<transport::new_message>& msgs, json& summary) {
  // qc.md "Re-evaluation and propagation": the runs from the change on, in observed_at order,
  // compared with the change-detection table; 8 consecutive unchanged runs stop it.
  const auto rep = qc_.reevaluate_from(device, parameter, from, 8, toggled);
  std::size_t results_changed = 0, posts = 0;
  std::string first_posted, last_posted;
  const auto names = [](qc::rule_mask m) {
    std::string s;
    for (const auto& n : qc::rule_names(m)) s += (s.empty() ? "" : ",") + n;
    return s;
  };
  for (const auto& run : rep.runs) {
    if (!qc::is_mark(run.what)) continue;
    rerun::outgoing_message m;
    m.kind = rerun::endpoint::qc_runs;
    const std::string reason = std::string(qc::to_string(run.what)) + " after " + cause + " (rules before: [" +
                               names(run.original) + "], now: [" + names(run.analysed) + "])";
    m.qc_run = {device, run.run_id, run.status, reason, {}};
    // The patient results were posted already: never changed in place, this post corrects their
    // qc_status (qc.md "Exported results are preserved").
    for (const auto& p : run.patients) {
      m.qc_run.patient_results.push_back({p.sample_id, p.parameter, p.observed_at});
      ++results_changed;
      if (first_posted.empty() || p.observed_at < first_posted) first_posted = p.observed_at;
      if (last_posted.empty() || p.observed_at > last_posted) last_posted = p.observed_at;
    }
    transport::new_message nm;
    nm.kind = rerun::to_string(m.kind);
    nm.ordering_key = "device:" + device;
    nm.body = rerun::body_json(m).dump();
    nm.device = device;
    msgs.push_back(std::move(nm));
    ++posts;
  }
  count_moves(device, parameter, before, now, sc);
  summary = {{"runs_reevaluated", rep.runs_reevaluated},
             {"runs_changed", rep.runs_changed},
             {"results_changed", results_changed},
             {"results_exported", results_changed},
             {"stopped", rep.stopped_early ? "8 unchanged" : "end of series"},
             {"qc_runs_posted", posts}};
  return "re-evaluated " + std::to_string(rep.runs_reevaluated) + " run(s) of " + device + " " + parameter + ", " +
         std::to_string(rep.runs_changed) + " changed, " + std::to_string(results_changed) +
         " patient result(s) changed status" +
         (results_changed == 0 ? std::string()
                               : " (all " + std::to_string(results_changed) + " already sent to the backend, observed " +
                                     first_posted + " to " + last_posted + "; corrected by qc-runs posts)") +
         "; stopped: " + (rep.stopped_early ? "8 consecutive unchanged runs" : "end of series");
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

void qc_admin::limits_changed(const std::string& by, const std::string& reason, std::chrono::system_clock::time_point now) {
  // Configured limits win (qc.md "limits"): every stored control result whose configured limits
  // now differ from the ones it was judged with gets its z again, and its series is re-evaluated
  // from the first such result.
  for (auto& [key, ch] : qc_.chart_state()) {
    const std::string device = key.substr(0, key.find('\x1f')), parameter = key.substr(key.find('\x1f') + 1);
    std::optional<rerun::timestamp> from;
    const auto before = qc_.effective_outcomes(device, parameter);
    for (std::size_t i = 0; i < ch.results.size(); ++i) {
      const qc::limits* l = qc::find_limits(qc_.config().configured, ch.results[i].series);
      auto& v = ch.verdicts[i];
      if (l == nullptr || (v.limits_source == "config" && v.mean == l->mean && v.sd == l->sd)) continue;
      v.mean = l->mean;
      v.sd = l->sd;
      v.z = qc::z_score(ch.results[i].value, l->mean, l->sd);
      v.limits_source = "config";
      if (!from || ch.results[i].t < *from) from = ch.results[i].t;
    }
    if (!from) continue;
    transport::state_changes sc;
    std::vector<transport::new_message> msgs;
    json summary;
    const std::string at = iso_ms(now);
    const std::string message = reevaluate(device, parameter, *from, {}, "a limit change (" + reason + ")", before, now, sc,
                                           msgs, summary);
    auto e = book_.limits_changed(device, parameter, by, reason, at, message);
    for (const auto& l : qc_.config().configured)
      if (l.series.parameter == parameter)
        e.detail += "; limits " + l.series.level + ": mean " + std::to_string(l.mean) + " sd " + std::to_string(l.sd);
    book_.append(e);
    sc.qc_audit.push_back(e);
    sc.documents.emplace_back("qc_state", qc::to_json(qc_).dump());
    device_runtime* dev = devices_.find(device);
    if (dev) {
      if (summary["runs_changed"].get<std::size_t>() > 0) dev->log->warn("QC limits changed: {} [QC-007]", message);
      else dev->log->info("QC limits changed: {}", message);
    }
    outbox_.append(std::move(msgs), std::move(sc), [dev, message](transport::append_result r) {
      if (r.durable) return;
      if (dev) dev->log->error("QC limit change could not be stored: {} ({}) [QC-008]", r.error, message);
      else spdlog::error("QC limit change could not be stored: {} ({}) [QC-008]", r.error, message);
    });
  }
}

transport::http_reply qc_admin::apply(qc::decision d, const std::string& action, std::chrono::system_clock::time_point now) {
  if (!d.error.empty()) {
    spdlog::warn("QC resolution refused: {} [QC-006]", d.error);
    return refused(409, d.error);
  }
  const qc::resolution& res = *d.changed;
  device_runtime* dev = devices_.find(res.device);
  const auto& codes = qc_.config().resolution_codes;
  transport::state_changes sc;
  std::vector<transport::new_message> msgs;
  json out = {{"action", action}, {"resolution", resolution_json(res)}, {"result_id", res.result_id}};
  std::string message = std::string(res.result_id.starts_with(rerun::patient_result_prefix) ? "" : "control result ") +
                        res.result_id + ": " + res.code + " " + action + " by " +
                        (action == "approved" ? res.approved_by : d.entries.front().by);
  const auto before_flags = qc_.resolution_of(res.result_id);
  auto after_flags = before_flags;
  if (d.takes_effect)
    after_flags = res.st == qc::resolution::state::undone ? qc::qc_tracker::resolution_flags{} : flags_of(codes, res.code);
  if (before_flags.excluded != after_flags.excluded || before_flags.skip != after_flags.skip) {
    const auto f = qc_.find(res.result_id);
    const auto before = qc_.effective_outcomes(res.device, res.parameter);
    qc_.set_resolution(res.result_id, after_flags);
    if (f && before_flags.excluded != after_flags.excluded) {
      json summary;
      message += "; " + reevaluate(res.device, res.parameter, f->c.t, res.result_id, res.code + " " + action + " on " + res.result_id,
                                   before, now, sc, msgs, summary);
      out["reevaluation"] = summary;
    } else {
      count_moves(res.device, res.parameter, before, now, sc);
    }
    sc.documents.emplace_back("qc_state", qc::to_json(qc_).dump());
  }
  out["message"] = message;
  for (auto& e : d.entries) e.detail = message;
  sc.qc_audit = d.entries;
  book_.apply(d);
  out["entries"] = json::array();
  for (const auto& e : d.entries) out["entries"].push_back(audit_json(e));
  if (dev) {
    if (out.contains("reevaluation") && out["reevaluation"]["runs_changed"].get<std::size_t>() > 0)
      dev->log->warn("{} [QC-007]", message);
    else
      dev->log->info("{}", message);
  }
  outbox_.append(std::move(msgs), std::move(sc), [dev, message](transport::append_result r) {
    if (r.durable) return;
    if (dev) dev->log->error("QC resolution could not be stored: {} ({}) [QC-008]", r.error, message);
    else spdlog::error("QC resolution could not be stored: {} ({}) [QC-008]", r.error, message);
  });
  return reply(200, out);
}

}  // namespace interfaced::daemon
