#include "daemon/ingest_hand_off.hpp"

#include "rerun/history.hpp"

#include <algorithm>
#include <cctype>
#include <array>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "daemon/clock.hpp"
#include "daemon/logging.hpp"
#include "daemon/qc_admin.hpp"
#include "devices/embedded_histogram.hpp"
#include "devices/encapsulated_data.hpp"
#include "devices/file_report.hpp"
#include "devices/histogram_svg.hpp"
#include "parsers/number.hpp"
#include "parsers/text.hpp"
#include "rerun/process.hpp"
#include "rerun/qc_json.hpp"
#include "rerun/rerun_json.hpp"

namespace interfaced::daemon {

namespace {

const char* action_name(rerun::action_kind k) {
  switch (k) {
    case rerun::action_kind::queue_retest_order: return "re-test order queued";
    case rerun::action_kind::rerun_recorded: return "rerun recorded";
    case rerun::action_kind::rerun_received: return "rerun values received";
    case rerun::action_kind::rerun_closed: return "rerun closed";
    case rerun::action_kind::rerun_failed: return "rerun failed";
  }
  return "rerun action";
}

std::vector<std::string> sample_ids(const std::vector<result>& results) {
  std::vector<std::string> samples;
  for (const auto& r : results)
    if (!r.sample_id.empty() && std::find(samples.begin(), samples.end(), r.sample_id) == samples.end())
      samples.push_back(r.sample_id);
  return samples;
}

std::string sample_list(const std::vector<result>& results) {
  const auto samples = sample_ids(results);
  if (samples.empty()) return "";
  return ", samples " + join(samples);
}

// The debug level (logging.level "debug"): one line per result of the message, with what the
// rerun step made of it, so a technician can follow a value from the wire to the outbox.
void log_results(spdlog::logger& log, const rerun::batch& b, const rerun::batch_outcome& out, const rerun::lab_zone& zone) {
  for (std::size_t i = 0; i < b.results.size(); ++i) {
    const result& r = b.results[i];
    const rerun::result_tag& t = out.tags[i];
    std::string what = t.duplicate ? "duplicate, not forwarded" : std::string(rerun::to_string(t.row));
    if (!t.duplicate) what += ", rerun_number " + std::to_string(r.rerun_number);
    if (!t.lab_report_id.empty()) what += ", report " + t.lab_report_id;
    log.debug("result {}/{}: sample {} {} = {}{}{} status {} observed {}: {}", i + 1, b.results.size(),
              r.sample_id.empty() ? "(none)" : r.sample_id, t.parameter, r.value, r.unit.empty() ? "" : " " + r.unit,
              r.flags.empty() ? "" : " [" + join(r.flags, ",") + "]", r.status.empty() ? "-" : r.status,
              r.observed_at.empty() ? "-" : zone.normalise(r.observed_at), what);
  }
}

// Order is kept per lab report, else per sample (backend-api.md "order is kept per report"), never
// per analyser: a results batch goes out as one message per sample, keyed by the sample's lab
// report (so its rerun values follow it) or by the sample id, so a message the backend keeps
// refusing holds its own report only. Results without a sample id are never matched or ordered
// against anything: their batch is their key.
// A message of one sample (the common case: one analyser message is one sample) is copied once,
// as it is; only a batch of several samples is split, each part copied from a shell without the
// results plus its own results. (Taking `m` by value and copying each part from it whole cost two
// copies of every result of every message.)
std::vector<std::pair<std::string, rerun::outgoing_message>> per_report(const rerun::outgoing_message& m,
                                                                      const std::string& device) {
  std::vector<std::pair<std::string, rerun::outgoing_message>> out;
  if (m.kind != rerun::endpoint::results) {
    std::string key = m.lab_report_id.empty() ? "device:" + device : m.lab_report_id;
    out.emplace_back(std::move(key), m);
    return out;
  }
  std::vector<std::string_view> samples;  // first-seen order
  for (const auto& v : m.results.results)
    if (std::find(samples.begin(), samples.end(), v.sample_id) == samples.end()) samples.push_back(v.sample_id);
  const auto key_of = [&](std::string_view sample) {
    std::string report;
    for (const auto& v : m.results.results)
      if (v.sample_id == sample && report.empty()) report = v.lab_report_id;
    return !report.empty()   ? report
           : !sample.empty() ? "sample:" + std::string(sample)
                             : "batch:" + m.results.batch_id;
  };
  if (samples.size() == 1) {
    out.emplace_back(key_of(samples.front()), m);
    return out;
  }
  rerun::outgoing_message shell = m;  // several samples (rare): every field but the results
  shell.results.results.clear();
  for (const auto sample : samples) {
    rerun::outgoing_message part = shell;
    for (const auto& v : m.results.results)
      if (v.sample_id == sample) part.results.results.push_back(v);
    out.emplace_back(key_of(sample), std::move(part));
  }
  return out;
}

// Control results: one line per series result; a reject or no limits is a warning with its code.
void log_controls(spdlog::logger& log, const rerun::batch_outcome& out) {
  for (const auto& [i, q] : out.controls) {
    const std::string series = q.parameter + " " + q.material + "/" + q.lot + "/" + q.level;
    const std::string z = q.z ? fmt::format("{:.2f}", *q.z) : std::string("-");
    std::string rules;
    for (const auto& r : q.rules) rules += (rules.empty() ? "" : ",") + r;
    if (q.outcome == "reject")
      log.warn("control result {} = {} (z {}) observed {}: rejected by {}; patient results of its run are posted "
               "qc_status rejected [QC-001]", series, q.value, z, q.observed_at, rules);
    else if (q.outcome == "no_limits")
      log.warn("control result {} = {} observed {}: no limits for this series (qc.limits, the backend's qc-limits, "
               "or the analyser's own mean/SD), not evaluated [QC-002]", series, q.value, q.observed_at);
    else
      log.info("control result {} = {} (z {}) observed {}: {}{}{}", series, q.value, z, q.observed_at, q.outcome,
               rules.empty() ? "" : " ", rules,
               q.limits_source == "analyser" ? " (limits: the analyser's own mean/SD, nothing configured)" : "");
  }
  for (const auto& m : out.messages)
    if (m.kind == rerun::endpoint::qc_runs)
      log.warn("QC run {}: {} ({}); {} patient result(s) reported [QC-003]", m.qc_run.run_id, m.qc_run.status,
               m.qc_run.reason, m.qc_run.patient_results.size());
}

}  // namespace

void log_actions(spdlog::logger& log, const std::vector<rerun::action>& acts) {
  for (const auto& a : acts) {
    const std::string act = a.act ? " activity=" + std::to_string(rerun::code(*a.act)) : std::string();
    log.info("{}: sample {} report {} rerun {} parameters [{}]{}{}", action_name(a.kind), a.sample_id,
             a.lab_report_id, a.rerun_number, join(a.parameters), act, a.note.empty() ? "" : " (" + a.note + ")");
  }
}

// --- pending_history ---

std::uint64_t pending_history::open() {
  batches_.push_back({++seq_, {}, {}, {}});
  return seq_;
}

std::vector<transport::history_row> pending_history::take_rows(std::uint64_t id) {
  auto it = std::find_if(batches_.begin(), batches_.end(), [&](const batch& b) { return b.id == id; });
  return it == batches_.end() ? std::vector<transport::history_row>{} : std::move(it->rows);
}

void pending_history::settle(std::uint64_t id) {
  auto it = std::find_if(batches_.begin(), batches_.end(), [&](const batch& b) { return b.id == id; });
  if (it == batches_.end()) return;
  for (const auto h : it->samples)
    if (auto n = in_flight_.find(h); n != in_flight_.end() && --n->second == 0) in_flight_.erase(n);
  batches_.erase(it);
}

bool pending_history::has(std::string_view s, std::string_view p) const {
  if (base_.has(s, p)) return true;
  if (!in_flight(s)) return false;
  return std::any_of(batches_.begin(), batches_.end(), [&](const batch& b) { return b.seen.has(s, p); });
}

bool pending_history::has_observation(std::string_view s, std::string_view p, std::string_view v,
                                      std::string_view t) const {
  if (base_.has_observation(s, p, v, t)) return true;
  if (!in_flight(s)) return false;
  return std::any_of(batches_.begin(), batches_.end(),
                     [&](const batch& b) { return b.seen.has_observation(s, p, v, t); });
}

std::optional<rerun::observation> pending_history::latest(std::string_view s, std::string_view p) const {
  if (!in_flight(s)) return base_.latest(s, p);
  for (auto it = batches_.rbegin(); it != batches_.rend(); ++it)
    if (auto o = it->seen.latest(s, p)) return o;
  return base_.latest(s, p);
}

std::optional<rerun::observation> pending_history::latest_of_parameter(std::string_view s, std::string_view p) const {
  if (!in_flight(s)) return base_.latest_of_parameter(s, p);
  for (auto it = batches_.rbegin(); it != batches_.rend(); ++it)
    if (auto o = it->seen.latest_of_parameter(s, p)) return o;
  return base_.latest_of_parameter(s, p);
}

void pending_history::record(std::string_view s, std::string_view p, rerun::observation o) {
  if (batches_.empty()) open();
  batch& b = batches_.back();
  const auto h = std::hash<std::string_view>{}(s);
  ++in_flight_[h];
  b.samples.push_back(h);
  b.rows.push_back({std::string(s), std::string(p), o});
  b.seen.record(s, p, std::move(o));
}

// --- ingest_hand_off ---

void ingest_hand_off::hand_off(transport::delivery d, transport::done_callback done) {
  device_runtime* dev = devices_.find(d.device);
  rerun::batch b;
  b.device = d.device;
  b.batch_id = d.device + "-" + std::to_string(++batch_seq_) + "-" + std::to_string(std::time(nullptr));
  b.results = std::move(d.results);
  // HL7 OBX-2 ED (file-reports.md "Where files come from"): each becomes a result whose value
  // names the file, appended after the message's own results, and the file itself below.
  std::vector<devices::encapsulated_file> encapsulated;
  const std::size_t encapsulated_at = b.results.size();
  if (dev && d.protocol == protocol::hl7 && !spool_dir_.empty() && d.raw.find("|ED") != std::string::npos) {
    static const hl7::hl7_options defaults{};
    encapsulated = devices::encapsulated_files(d.raw, d.profile ? d.profile->hl7 : defaults, d.device);
    for (const auto& f : encapsulated) {
      if (f.error.empty()) {
        b.results.push_back(f.r);
        continue;
      }
      dev->log->warn("sample {} {} (OBX segment {}): encapsulated data not decoded: {}; not forwarded [FILE-013]",
                     f.r.sample_id.empty() ? "(none)" : f.r.sample_id, f.r.code, f.r.where.record_index, f.error);
    }
  }
  // One reading of the clock: the lab's wall clock for the rerun step, the instant with the lab's
  // offset for received_at and last_message_at.
  const auto instant = std::chrono::system_clock::now();
  const auto now = wall_time(instant);
  const std::string received_at = iso_ms(instant);
  const rerun::lab_zone zone = current_lab_zone();
  const auto received = std::chrono::steady_clock::now();
  rerun::rerun_inputs in{codes_for(d.profile), rules_, history_, state_, now, false, zone, received_at, &qc_};
  const std::uint64_t batch_id = history_.open();
  const rerun::batch_outcome out = [&] {
    const transport::state_store::read_scope reads(store_);  // one snapshot for the whole batch
    return rerun::process_reports_for_rerun(b, in);
  }();
  if (dev) {
    log_actions(*dev->log, out.actions);
    for (const auto& m : out.messages) {
      if (m.kind != rerun::endpoint::rerun_request) continue;
      dev->log->info("auto-rerun requested: report {} parameters [{}] rule {} activity={}", m.lab_report_id,
                     join(m.request.requested_parameters), m.request.rule, rerun::code(m.request.act));
    }
    ++dev->stats.messages;
    dev->stats.results += out.counts.forwarded;
    dev->stats.duplicates += out.counts.duplicates;
    dev->stats.queries += d.queries.size();
    dev->stats.last_message_time = instant;
    dev->stats.last_message_at = received_at;
    dev->stats.count_today(out.counts.forwarded);
    // The journal gets the samples as a structured field (journalctl SAMPLE_ID=...).
    const log_samples samples_field(sample_ids(b.results));
    // Duplicates are the one thing the hand-off decides not to forward: coded so they can be found.
    // Its arguments are built only when the line is written (logging.level warn: never).
    if (dev->log->should_log(spdlog::level::info))
      dev->log->info("message received: {} ({}, {}, {}, {} not forwarded){}{}{}", plural(out.counts.results, "result"),
                     plural(out.counts.first_results, "first result"), plural(out.counts.requested_reruns, "requested rerun"),
                     plural(out.counts.instrument_triggered, "instrument-triggered rerun"),
                     plural(out.counts.duplicates, "duplicate"), sample_list(b.results),
                     out.counts.sample_id_missing == 0
                         ? std::string()
                         : "; " + std::to_string(out.counts.sample_id_missing) +
                               " without a sample id (forwarded once each, flagged sample_id_missing)",
                     out.counts.duplicates == 0 ? "" : " [RERUN-001]");
    for (const auto& q : d.queries)
      dev->log->info("host query for {}{}", rerun::queried_samples(q),
                     q.cancel ? " (cancel)" : "");
    if (dev->log->should_log(spdlog::level::debug)) log_results(*dev->log, b, out, zone);
    log_controls(*dev->log, out);
  }
  std::vector<transport::new_message> msgs;
  // (sample id, parameter) -> the message posting that patient result: a QC run's patient results
  // are stored with it (exported_at is that message's delivered_at).
  std::map<std::pair<std::string, std::string>, std::string> posted_in;
  for (const auto& whole : out.messages) {
    for (auto& [key, m] : per_report(whole, d.device)) {
      transport::new_message nm;
      nm.kind = rerun::to_string(m.kind);
      nm.ordering_key = std::move(key);
      nm.body = rerun::body_text(m);
      nm.internal_request = m.internal_request;
      nm.device = d.device;  // rerun bodies name a report: the outbox stores the device for counts and search
      if (m.kind == rerun::endpoint::qc_runs) {
        // "affected" / late-control posts name results posted earlier: when each was exported.
        std::string first, last;
        if (stamp_exported(store_, m.qc_run, first, last) > 0) nm.body = rerun::body_json(m).dump();
      }
      if (m.kind == rerun::endpoint::results || m.kind == rerun::endpoint::rerun_values) {
        nm.id = transport::new_message_id();
        for (const auto& v : m.kind == rerun::endpoint::results ? m.results.results : m.rerun_values.values)
          posted_in.try_emplace({v.sample_id, v.parameter}, nm.id);
      }
      msgs.push_back(std::move(nm));
    }
  }
  // File references (file-reports.md): the result goes as it is, and the file it names becomes a
  // file-type report for its (sample, parameter), stored in the same transaction as the result.
  // Rerun values name files as ordinary results do (an XN rerun sends its scattergrams again):
  // the same mapping, under the rerun's report.
  if (dev && d.profile && !d.profile->file_references.empty() && !dev->cfg.files.root.empty())
    for (const auto& whole : out.messages) {
      const bool rerun = whole.kind == rerun::endpoint::rerun_values;
      if (whole.kind != rerun::endpoint::results && !rerun) continue;
      for (const auto& v : rerun ? whole.rerun_values.values : whole.results.results) {
        const auto rel = devices::file_reference_path(d.profile->file_references, v.value);
        if (!rel) continue;
        const auto& f = dev->cfg.files;
        devices::file_report_request fr;
        fr.device_id = d.device;
        fr.sample_id = v.sample_id;
        fr.lab_report_id = v.lab_report_id.empty() && rerun ? whole.rerun_values.lab_report_id : v.lab_report_id;
        fr.parameter = v.parameter;
        fr.file = (std::filesystem::path(f.root) / *rel).lexically_normal().string();
        fr.filename = std::filesystem::path(*rel).filename().string();
        fr.content_type = devices::content_type_for(fr.filename);
        fr.mode = f.mode;
        fr.max_bytes = f.max_bytes;
        fr.allowed_types = f.allowed_types;
        fr.settle_ms = f.settle_ms;
        fr.wait_s = f.wait_s;
        transport::new_message nm;
        nm.kind = "file_report";
        // Its own key: a file still being written never holds up the results of its report.
        nm.ordering_key = "file:" + v.sample_id + ":" + v.parameter;
        nm.body = devices::file_report_body(fr);
        msgs.push_back(std::move(nm));
        dev->log->info("file-type report for sample {} {}{}: {} (sent when complete)", v.sample_id, v.parameter,
                       rerun ? " (rerun)" : "", fr.file);
      }
    }
  if (dev && d.protocol == protocol::astm && !spool_dir_.empty()) embedded_histograms(d, b, out, *dev, msgs);
  for (std::size_t k = 0, i = encapsulated_at; dev && k < encapsulated.size(); ++k) {
    const auto& f = encapsulated[k];
    if (!f.error.empty()) continue;
    const rerun::result_tag& t = out.tags[i++];
    if (t.duplicate || f.r.sample_id.empty()) continue;  // sent the first time / nothing to attach it to
    spool_file_report(*dev, d.device, b.batch_id, f.r.sample_id, t.lab_report_id, t.parameter, f.filename,
                      f.content_type, f.bytes, msgs);
    dev->log->info("file-type report for sample {} {}: encapsulated {} ({} bytes) written as {}", f.r.sample_id,
                   t.parameter, f.content_type, f.bytes.size(), f.filename);
  }
  for (auto& [key, body] : d.file_reports) {
    transport::new_message nm;
    nm.kind = "file_report";
    nm.ordering_key = std::move(key);
    nm.body = std::move(body);
    msgs.push_back(std::move(nm));
  }
  // Messages, history rows and rerun state in one transaction. Even with nothing to send (only
  // duplicates) the ACK goes through the outbox queue: it then waits for the earlier batches a
  // duplicate was recognised against, which may still be in flight.
  transport::state_changes sc;
  sc.history = history_.take_rows(batch_id);
  // The historical summary's counts commit with the messages that carry them (history.md).
  sc.events = rerun::batch_history_events(b, out, std::chrono::time_point_cast<std::chrono::milliseconds>(instant));
  // qc.md 5.2.1, the re-evaluation row: a late control result changed the qc_status of results
  // posted earlier; the rules run again for them in this transaction (before the state document:
  // rerun_rules writes it with what the rules counted).
  rules_rerun late_rules;
  if (!out.qc_status_changed.empty()) {
    late_rules = rerun_rules(d.device, out.qc_status_changed, sc, msgs);
    if (dev && !late_rules.note.empty())
      dev->log->info("late control result changed the QC status of {}: {}",
                     plural(out.qc_status_changed.size(), "earlier patient result"), late_rules.note);
  }
  state_document(sc);
  for (auto& doc : d.documents) sc.documents.push_back(std::move(doc));
  resends_of_dead_letters(b, out, dev, sc);
  // The QC charts commit with the qc-results post they caused (qc.md: durable with the outbox).
  if (!out.controls.empty()) sc.documents.emplace_back("qc_state", rerun::qc::to_json(qc_).dump());
  // The patient results of QC runs commit with their post: a re-evaluation after a restart names them.
  for (auto& [device, p] : qc_.take_recorded_patients()) {
    const auto it = posted_in.find({p.sample_id, p.parameter});
    sc.qc_patients.push_back({device, p.sample_id, p.parameter, p.observed_at, p.t,
                              it == posted_in.end() ? std::string() : it->second});
  }
  std::vector<transport::history_row> duplicates;
  for (std::size_t i = 0; i < b.results.size(); ++i) {
    if (!out.tags[i].duplicate) continue;
    transport::history_row dup{b.results[i].sample_id, out.tags[i].key, {}};
    dup.o.value = b.results[i].value;
    dup.o.observed_at = b.results[i].observed_at;
    duplicates.push_back(std::move(dup));
  }
  outbox_.append(std::move(msgs), std::move(sc),
                 [this, batch_id, done = std::move(done), dev, duplicates = std::move(duplicates), received,
                  take_back = std::move(late_rules.take_back)](transport::append_result r) {
                   history_.settle(batch_id);
                   if (dev) dev->stats.ingest_ack.observe(std::chrono::steady_clock::now() - received);
                   for (const auto& [id, why] : r.unwritten) {
                     const std::string line = "file report " + id + ": its file could not be written (" + why +
                                              "); not attached, the results are forwarded [FILE-012]";
                     if (dev) dev->log->error("{}", line);
                     else spdlog::error("{}", line);
                   }
                   if (!r.durable) {
                     if (take_back) take_back();  // what the late control's rules re-run counted
                     state_written_.reset();  // the next batch writes the state again
                     if (dev) dev->log->error("the outbox could not store the message: {}; the analyser resends [OUTBOX-006]", r.error);
                     done(false);
                     return;
                   }
                   done(duplicates_durable(duplicates, dev));
                 });
}

// A result the analyser sends again is a duplicate of the first copy, but when that copy is a dead
// letter nobody would ever see the resend: it is recorded against the dead letter (`outbox show`
// lists it), so the person who retries it knows the analyser sent it again.
void ingest_hand_off::resends_of_dead_letters(const rerun::batch& b, const rerun::batch_outcome& out,
                                              device_runtime* dev, transport::state_changes& sc) {
  std::map<std::string, std::vector<std::pair<std::string, nlohmann::json>>, std::less<>> dead_by_sample;
  for (std::size_t i = 0; i < b.results.size(); ++i) {
    if (!out.tags[i].duplicate) continue;
    const auto& r = b.results[i];
    auto it = dead_by_sample.find(r.sample_id);
    if (it == dead_by_sample.end()) {
      std::vector<std::pair<std::string, nlohmann::json>> parsed;
      for (auto& [id, body] : store_.dead_letters_naming(r.sample_id))
        parsed.emplace_back(id, nlohmann::json::parse(body, nullptr, false));
      it = dead_by_sample.emplace(r.sample_id, std::move(parsed)).first;
    }
    for (const auto& [id, body] : it->second) {
      bool carries = false;
      for (const char* list : {"results", "values"}) {
        if (!body.is_object() || !body.contains(list) || !body[list].is_array()) continue;
        for (const auto& v : body[list])
          if (v.is_object() && v.value("sample_id", "") == r.sample_id &&
              v.value("parameter", "") == out.tags[i].parameter && v.value("value", "") == r.value)
            carries = true;
      }
      if (!carries) continue;
      sc.resends.push_back({id, {}, b.device, r.sample_id, out.tags[i].parameter, r.value, r.observed_at});
      if (dev)
        dev->log->warn("sample {} {} = {}: sent again while its earlier copy is a dead letter ({}): recorded against it, "
                       "see `interfaced outbox show {}` [DELIVERY-005]",
                       r.sample_id, out.tags[i].parameter, r.value, id, id);
      break;
    }
  }
}

// A duplicate is acknowledged only when the result it repeats is durable: the batch it was
// recognised against (queued earlier, so committed or failed by now) may have failed.
bool ingest_hand_off::duplicates_durable(const std::vector<transport::history_row>& duplicates, device_runtime* dev) {
  for (const auto& r : duplicates) {
    if (store_.has_observation(r.sample, r.parameter, r.o.value, r.o.observed_at)) continue;
    if (dev)
      dev->log->error("sample {} {}: repeats a result that could not be stored; the analyser resends [OUTBOX-006]", r.sample,
                      r.parameter);
    return false;
  }
  return true;
}

void ingest_hand_off::state_document(transport::state_changes& sc) {
  // A structural comparison, not a serialisation: this runs after every message.
  if (state_written_ && *state_written_ == state_) return;
  state_written_ = state_;
  sc.documents.emplace_back("rerun_state", rerun::to_json(state_).dump());
}

void ingest_hand_off::persist_state(device_runtime* dev, std::vector<rerun::history_event> events) {
  transport::state_changes sc;
  state_document(sc);
  sc.events = std::move(events);
  if (sc.empty()) return;
  outbox_.write(std::move(sc), [this, dev](bool ok) {
    if (ok) return;
    state_written_.reset();
    if (dev) dev->log->error("the rerun state could not be stored; it is written again with the next change [OUTBOX-009]");
    else spdlog::error("the rerun state could not be stored; it is written again with the next change [OUTBOX-009]");
  });
}

namespace {

// A patient result as the message that posted it carries it (rerun/rerun_json.cpp value_json):
// enough for the rules engine to run on it again; nullopt when the body does not name it.
std::optional<rerun::rules_again_result> posted_result(const std::string& body, const std::string& device,
                                                       const rerun::qc::patient_ref& p) {
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  for (const char* list : {"results", "values"}) {
    if (!j.contains(list) || !j[list].is_array()) continue;
    for (const auto& v : j[list]) {
      if (!v.is_object() || v.value("sample_id", "") != p.sample_id || v.value("parameter", "") != p.parameter ||
          v.value("observed_at", "") != p.observed_at)
        continue;
      rerun::rules_again_result x;
      x.device = device;
      x.parameter = p.parameter;
      result& r = x.r;
      r.device = device;
      r.sample_id = p.sample_id;
      r.code = v.value("instrument_code", "");
      r.value = v.value("value", "");
      r.numeric = parse_number(r.value, true);  // replay's rule: plainly a number, comma decimals too
      r.unit = v.value("unit", "");
      if (v.contains("flags") && v["flags"].is_array())
        for (const auto& f : v["flags"])
          if (f.is_string()) r.flags.push_back(f.get<std::string>());
      r.status = v.value("status", "");
      r.reference_range = v.value("reference_range", "");
      r.observed_at = p.observed_at;
      r.rerun_number = v.value("rerun_number", 0);
      r.is_rerun = r.rerun_number != 0;
      x.lab_report_id = v.value("lab_report_id", j.value("lab_report_id", ""));
      return x;
    }
  }
  return std::nullopt;
}

}  // namespace

ingest_hand_off::rules_rerun ingest_hand_off::rerun_rules(const std::string& device,
                                                          const std::vector<rerun::qc::patient_ref>& patients,
                                                          transport::state_changes& sc,
                                                          std::vector<transport::new_message>& msgs) {
  rules_rerun out;
  std::vector<rerun::rules_again_result> again;
  {
    const transport::state_store::read_scope reads(store_);
    for (const auto& p : patients) {
      const bool any_rule = std::any_of(rules_.rules().begin(), rules_.rules().end(),
                                        [&](const rerun::rule& x) { return x.applies_to(p.parameter); });
      if (!any_rule) continue;
      const auto body = store_.qc_patient_body(device, p.sample_id, p.parameter, p.observed_at);
      auto x = body ? posted_result(*body, device, p) : std::nullopt;
      if (!x) {
        ++out.unknown;
        continue;
      }
      // Matched to a report since it was posted (the waiting list is refreshed): its report now.
      if (x->lab_report_id.empty())
        if (const auto* e = rerun::waiting_entry(state_, device, p.sample_id)) x->lab_report_id = e->lab_report_id;
      x->qc_status = qc_.patient_status(device, p.parameter, p.t);
      x->has_skip = qc_.resolution_of(rerun::patient_result_id(device, p.sample_id, p.parameter)).skip;
      again.push_back(std::move(*x));
    }
  }
  if (again.empty() && out.unknown == 0) return out;
  const auto instant = std::chrono::system_clock::now();
  auto o = std::make_shared<rerun::rules_again_outcome>(
      rerun::run_rules_again(again, rules_, state_, wall_time(instant), current_lab_zone()));
  out.results = o->results;
  out.fired = o->fired;
  std::string fired;
  for (const auto& m : o->messages) {
    const std::string what = m.kind == rerun::endpoint::reflex
                                 ? "reflex " + m.reflex.rule + " for " + m.reflex.sample_id + " " + m.reflex.parameter
                                 : "auto-rerun " + m.request.rule + " for report " + m.request.lab_report_id + " " +
                                       join(m.request.requested_parameters);
    fired += (fired.empty() ? "" : ", ") + what;
    for (auto& [key, part] : per_report(m, device)) {
      transport::new_message nm;
      nm.kind = rerun::to_string(part.kind);
      nm.ordering_key = std::move(key);
      nm.body = rerun::body_json(part).dump();
      nm.internal_request = part.internal_request;
      nm.device = device;
      msgs.push_back(std::move(nm));
    }
  }
  for (const auto& a : o->actions)
    if (a.kind == rerun::action_kind::rerun_failed) fired += (fired.empty() ? "" : ", ") + a.note;
  state_document(sc);
  out.note = "rules re-run for " + std::to_string(out.results) + " patient result(s) (a re-evaluation: SKIP bypasses nothing), " +
             std::to_string(out.fired) + " fired" + (fired.empty() ? "" : " (" + fired + ")");
  if (out.unknown > 0) out.note += ", " + std::to_string(out.unknown) + " no longer in the outbox (purged): not re-run";
  out.take_back = [this, o] {
    rerun::take_back(state_, *o);
    state_written_.reset();  // the next write stores the state as it is now
  };
  return out;
}

void ingest_hand_off::record_events(std::vector<rerun::history_event> events) {
  if (events.empty()) return;
  transport::state_changes sc;
  sc.events = std::move(events);
  outbox_.write(std::move(sc), [](bool ok) {
    if (!ok) spdlog::warn("historical summary: a link error could not be counted [HISTORY-001]");
  });
}

namespace {

// A name component for a spool file: letters, digits, '.', '-', '_' kept, anything else '_'.
std::string file_part(std::string_view s) { return devices::file_name_part(s); }

}  // namespace

void ingest_hand_off::spool_file_report(device_runtime& dev, const std::string& device, const std::string& batch_id,
                                        const std::string& sample, const std::string& report,
                                        const std::string& parameter, const std::string& filename,
                                        const std::string& content_type, std::string_view bytes,
                                        std::vector<transport::new_message>& msgs) {
  // One folder per file of the batch: two files of one batch may share a name (two ED OBX of a
  // test with sub-ids), and the name is what the backend is told.
  const auto path = spool_dir_ / file_part(device) / file_part(batch_id) / std::to_string(msgs.size()) / filename;
  const auto& f = dev.cfg.files;
  devices::file_report_request fr;
  fr.device_id = device;
  fr.sample_id = sample;
  fr.lab_report_id = report;
  fr.parameter = parameter;
  fr.file = path.string();
  fr.filename = filename;
  fr.content_type = content_type;
  fr.mode = f.mode;
  fr.max_bytes = f.max_bytes;
  fr.allowed_types = f.allowed_types;
  fr.settle_ms = 0;  // written whole (renamed into place) before the report is stored
  fr.wait_s = f.wait_s;
  fr.spool = true;  // ours: deleted once finalized
  transport::new_message nm;
  nm.kind = "file_report";
  nm.ordering_key = "file:" + sample + ":" + parameter;
  nm.body = devices::file_report_body(fr);
  // The outbox worker writes and fsyncs it before the commit that stores this message, off the
  // event loop; a file it cannot write leaves this message out (logged below, FILE-012).
  nm.file = transport::spool_file{path, std::string(bytes)};
  msgs.push_back(std::move(nm));
}

void ingest_hand_off::embedded_histograms(const transport::delivery& d, const rerun::batch& b,
                                          const rerun::batch_outcome& out, device_runtime& dev,
                                          std::vector<transport::new_message>& msgs) {
  const auto records = devices::histogram_records(d.raw);
  if (records.empty()) return;
  const rerun::code_map& codes = codes_for(d.profile);
  for (const auto& rec : records) {
    // The sample: the results of the M record's O scope (the profile's sample-id rule), else O.3.
    std::string sample = rec.o_sample;
    std::string report;
    bool fresh = false, any = false, control = false;
    for (std::size_t i = 0; i < b.results.size(); ++i) {
      const auto at = b.results[i].where.record_index;
      if (at <= rec.scope_begin || at >= rec.scope_end) continue;
      if (!any) sample = b.results[i].sample_id;
      any = true;
      fresh = fresh || !out.tags[i].duplicate;
      control = control || b.results[i].qc;
      if (report.empty()) report = out.tags[i].lab_report_id;
    }
    const std::string parameter(codes.machine_name(rec.name));
    if (any && !fresh) continue;  // the analyser sent this message again: its drawings went the first time
    // A control's curves belong to no patient report (qc.md posts controls as QC runs): not sent.
    if (control) {
      dev.log->info("histogram {} of control {}: not sent (file-type reports are for patient samples)", rec.name, sample);
      continue;
    }
    if (sample.empty()) {
      dev.log->warn("histogram {} (M record {}): no sample id in its order record; not attached [FILE-011]",
                    rec.name, rec.record_index);
      continue;
    }
    const auto h = devices::decode_histogram(rec.group, rec.name, rec.markers, rec.curve);
    if (!h.value) {
      dev.log->warn("sample {} histogram {} (M record {}): {}; not drawn, the results are forwarded [FILE-010]", sample,
                    rec.name, rec.record_index, h.detail);
      continue;
    }
    const std::string svg = devices::histogram_svg(*h.value, parameter, sample);
    const std::string filename = file_part(sample) + "_" + file_part(parameter) + ".svg";
    spool_file_report(dev, d.device, b.batch_id, sample, report, parameter, filename, "image/svg+xml", svg, msgs);
    dev.log->info("file-type report for sample {} {}: histogram drawn as {} ({} points, {} markers)", sample, parameter,
                  filename, h.value->x.size(), h.value->markers.size());
  }
}

const rerun::code_map& ingest_hand_off::codes_for(const devices::device_profile* profile) {
  return profile ? codes_by_profile_.try_emplace(profile, profile->result_codes).first->second : codes_;
}

rerun::code_lookup ingest_hand_off::codes_of(const device_runtime& dev) const {
  return [this, profile = dev.profile](const std::string& name) {
    if (profile) {
      const auto& m = profile->order_codes;
      if (const auto it = m.find(name); it != m.end()) return it->second;
    }
    return std::string(codes_.instrument_code(name));
  };
}

std::vector<std::string> ingest_hand_off::answer_astm_queries(device_runtime& dev, const std::vector<query>& queries) {
  auto answer = rerun::answer_astm_queries(state_, history_, dev.cfg.id, queries, codes_of(dev), wall_now());
  for (const auto& line : answer.log) dev.log->info("{}", line);
  return std::move(answer.messages);
}

std::vector<std::string> ingest_hand_off::answer_hl7_query(device_runtime& dev, std::string_view text,
                                                           const std::vector<query>& queries) {
  auto next_id = [this] { return "IFQ" + std::to_string(std::time(nullptr) % 100000000) + "-" + std::to_string(++query_seq_); };
  auto answer = rerun::answer_hl7_query(state_, history_, dev.cfg.id, text, queries, codes_of(dev), wall_now(), next_id);
  for (const auto& line : answer.log) dev.log->info("{}", line);
  return std::move(answer.messages);
}

std::vector<rerun::download_change> ingest_hand_off::plan_downloads(device_runtime& dev, rerun::timestamp now) {
  return rerun::plan_device_downloads(state_, history_, dev.cfg.id, dev.downloaded, codes_of(dev), now);
}

}  // namespace interfaced::daemon
