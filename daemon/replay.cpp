#include "daemon/replay.hpp"

#include <fstream>
#include <map>
#include <iostream>
#include <iterator>
#include <optional>

#include "daemon/clock.hpp"
#include "devices/astm_ingest.hpp"
#include "devices/capture_input.hpp"
#include "devices/hl7_ingest.hpp"
#include "daemon/result_json.hpp"
#include "parsers/text.hpp"
#include "rerun/host_query.hpp"
#include "rerun/code_map.hpp"
#include "rerun/process.hpp"
#include "rerun/qc_json.hpp"
#include "rerun/rerun_json.hpp"
#include "rerun/result_store.hpp"
#include "rerun/rules.hpp"
#include "rerun/wall_time.hpp"

namespace interfaced::daemon {
namespace {
using devices::astm_ingest;
using devices::capture_input;
using devices::capture_kind;
using devices::decode_capture;
using devices::hl7_ingest;
using devices::hl7_reply_info;

class printer {
 public:
  printer(std::ostream& out, bool text, rerun::lab_zone zone) : out_(out), text_(text), zone_(zone) {}

  void print(const result& r) {
    if (!text_) {
      out_ << to_json(r, zone_).dump() << '\n';
      return;
    }
    out_ << "result  " << r.sample_id << "  " << r.code << " = " << r.value
         << (r.unit.empty() ? "" : " " + r.unit)
         << (r.flags.empty() ? "" : "  [" + join(r.flags, ",") + "]")
         << (r.qc ? "  QC" : "") << (r.is_rerun ? "  rerun " + std::to_string(r.rerun_number) : "")
         << "  (" << r.device << ")\n";
  }
  void print(const query& q) {
    if (!text_) {
      out_ << to_json(q).dump() << '\n';
      return;
    }
    out_ << "query   " << rerun::queried_samples(q) << "  tests "
         << join(q.tests, ",") << (q.cancel ? "  (cancel)" : "") << "  (" << q.device << ")\n";
  }
  // `reply` for acknowledgements and query answers (ACK, QCK, RSP, ORL), `download` for what the
  // host starts (DSR^Q03); `host` says which side sent it (ACK^Q03 is the analyser's).
  void print(const hl7_reply_info& r) {
    const char* type = r.role.reply ? "reply" : "download";
    if (!text_) {
      out_ << nlohmann::json({{"type", type}, {"protocol", "hl7"}, {"message_type", r.message_type},
                              {"control_id", r.control_id}, {"ack_code", r.ack_code},
                              {"acknowledged_id", r.acknowledged_id}, {"error_code", r.error_code},
                              {"query_status", r.query_status}, {"usable", r.usable},
                              {"findings", r.findings}, {"host", r.role.from_host}})
                  .dump()
           << '\n';
      return;
    }
    out_ << (r.role.reply ? "reply   " : "download ") << r.message_type << "  " << r.ack_code << " for "
         << r.acknowledged_id << (r.role.from_host ? "  (host)" : "  (analyser)")
         << (r.findings.empty() ? "" : "  (" + std::to_string(r.findings.size()) + " findings)") << '\n';
  }
  void print_note(const std::string& type, const std::string& control_id, const std::string& note) {
    if (!text_) {
      out_ << nlohmann::json({{"type", "message"}, {"protocol", "hl7"}, {"message_type", type},
                              {"control_id", control_id}, {"note", note}})
                  .dump()
           << '\n';
      return;
    }
    out_ << "message " << type << "  " << note << '\n';
  }
  void print(const rerun::explain_entry& e) {
    nlohmann::json rules = nlohmann::json::array();
    for (const auto& t : e.rules) {
      nlohmann::json values = nlohmann::json::object();
      for (const auto& [name, v] : t.values) values[name] = rerun::to_json(v);
      rules.push_back({{"rule", t.rule_id}, {"outcome", rerun::to_string(t.outcome)}, {"values", values}});
    }
    if (!text_) {
      out_ << nlohmann::json({{"type", "explain"}, {"sample_id", e.sample_id}, {"parameter", e.parameter},
                              {"decision", e.decision}, {"rules", rules}, {"note", e.note}})
                  .dump()
           << '\n';
      return;
    }
    out_ << "  explain " << e.sample_id << " " << e.parameter << ": " << e.decision;
    for (const auto& t : e.rules) out_ << "; rule " << t.rule_id << " " << rerun::to_string(t.outcome) << " (" << rerun::describe(t.values) << ")";
    if (!e.note.empty()) out_ << "; " << e.note;
    out_ << '\n';
  }
  void print_request(const rerun::outgoing_message& m) {
    const auto body = rerun::body_json(m);
    if (!text_) {
      out_ << nlohmann::json({{"type", "rerun_request"}, {"body", body}}).dump() << '\n';
      return;
    }
    out_ << "rerun request  " << body.dump() << '\n';
  }
  // A control result evaluated against --qc-limits: the fields of `interfaced qc evaluate`, and
  // its series and where its limits came from.
  void print_qc(const rerun::qc_result_value& q, const std::string& device) {
    nlohmann::ordered_json j = {{"type", "qc"},
                        {"observed_at", q.observed_at},
                        {"parameter", q.parameter},
                        {"level", q.level},
                        {"value", q.numeric ? nlohmann::ordered_json(*q.numeric) : nlohmann::ordered_json(q.value)},
                        {"z", q.z ? nlohmann::ordered_json(*q.z) : nlohmann::ordered_json(nullptr)},
                        {"outcome", q.outcome},
                        {"rules", q.rules},
                        {"material", q.material},
                        {"lot", q.lot},
                        {"sample_id", q.sample_id},
                        {"device", device},
                        {"limits_source", q.limits_source}};
    if (!text_) {
      out_ << j.dump() << '\n';
      return;
    }
    out_ << "qc      " << q.parameter << " " << q.material << "/" << q.lot << "/" << q.level << " = " << q.value
         << "  " << q.outcome << "\n";
  }
  void print(const order& o) {
    if (!text_) {
      out_ << to_json(o).dump() << '\n';
      return;
    }
    std::vector<std::string> codes;
    for (const auto& t : o.tests) codes.push_back(t.code);
    out_ << "order   " << o.sample_id << "  tests " << join(codes, ",") << "  (" << o.device << ")\n";
  }

 private:
  std::ostream& out_;
  bool text_;
  rerun::lab_zone zone_;
};

struct file_outcome {
  std::size_t events = 0;
  std::size_t problems = 0;
};

}  // namespace

int run_replay(const replay_options& opt, std::ostream& out, std::ostream& err) {
  if (opt.format != "jsonl" && opt.format != "text") {
    err << "interfaced replay: --format: expected \"jsonl\" or \"text\", got \"" << opt.format << "\"\n";
    return exit_usage;
  }
  devices::profile_catalog catalog;
  try {
    catalog = devices::profile_catalog::load_dir(opt.profile_dir.empty() ? devices::profile_catalog::default_dir()
                                                                         : std::filesystem::path(opt.profile_dir));
  } catch (const devices::profile_error& e) {
    err << "interfaced replay: profile: " << e.what() << '\n';
    return exit_config;
  }
  const devices::device_profile* forced = nullptr;
  if (!opt.profile.empty()) {
    forced = catalog.find(opt.profile);
    if (forced == nullptr) {
      err << "interfaced replay: --profile: no profile \"" << opt.profile << "\" (known:";
      for (const auto& p : catalog.all()) err << ' ' << p.id;
      err << ")\n";
      return exit_config;
    }
  }

  // Times without an offset are read in this zone; an explicit one gives CI the same output on
  // every machine.
  rerun::lab_zone zone;
  if (!opt.timezone.empty()) {
    const auto z = rerun::lab_zone::find(opt.timezone);
    if (!z) {
      err << "interfaced replay: --timezone: unknown time zone \"" << opt.timezone
          << "\" (expected an IANA name such as Europe/Berlin or Asia/Kolkata)\n";
      return exit_config;
    }
    zone = *z;
  } else {
    const auto m = machine_zone();
    if (!m.note.empty()) err << "interfaced replay: time zone: " << m.note << " [TIME-001]\n";
    zone = m.zone;
  }
  printer pr(out, opt.format == "text", zone);
  // The daemon's rerun logic (rerun.md) with no waiting list: one history across all files, as a
  // replay is one lab's day; rules from --rules, evaluated as the daemon evaluates them.
  rerun::memory_result_store history;
  rerun::rerun_state state;
  rerun::code_map codes;
  std::map<const devices::device_profile*, rerun::code_map> profile_codes;
  rerun::rule_set rules;
  if (!opt.rules_file.empty()) {
    std::ifstream rin(opt.rules_file, std::ios::binary);
    if (!rin) {
      err << opt.rules_file << ": cannot read the file\n";
      return exit_no_input;
    }
    const std::string text{std::istreambuf_iterator<char>(rin), std::istreambuf_iterator<char>()};
    rerun::rules_file rf = rerun::load_rules_file(text, opt.rules_file);
    if (!rf.errors.empty()) {
      for (const auto& e : rf.errors) err << e.format() << '\n';
      return exit_config;
    }
    rules = std::move(rf.rules);
  }
  // --qc-limits: control results evaluated against these limits, as the daemon does.
  rerun::qc::qc_config qc_cfg;
  if (!opt.qc_limits_file.empty()) {
    std::ifstream qin(opt.qc_limits_file, std::ios::binary);
    if (!qin) {
      err << opt.qc_limits_file << ": cannot read the file\n";
      return exit_no_input;
    }
    try {
      qc_cfg.configured = rerun::qc::limits_from_json(nlohmann::json::parse(qin));
    } catch (const std::exception& e) {
      err << opt.qc_limits_file << ": " << e.what() << '\n';
      return exit_config;
    }
  }
  rerun::qc::qc_tracker qc_tracker(qc_cfg);
  std::uint64_t batch_seq = 0;
  int status = exit_ok;

  for (const auto& file : opt.files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      err << file << ": cannot read the file\n";
      status = exit_no_input;
      continue;
    }
    const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    const capture_input cap = decode_capture(bytes);
    file_outcome fo;
    const char* where_kind = cap.was_text ? "decoded byte " : "byte ";
    auto problem = [&](std::uint64_t offset, const std::string& what, bool warning = false) {
      err << file << ": " << where_kind << offset << ": " << (warning ? "warning: " : "") << what << '\n';
      if (!warning) ++fo.problems;
    };
    auto emit_results = [&](std::vector<result>& results, const devices::device_profile* profile) {
      if (results.empty()) return;
      rerun::batch b;
      b.device = results.front().device;
      b.batch_id = "replay-" + std::to_string(++batch_seq);
      b.results = std::move(results);
      // Virtual time: the latest observation in the batch (replay never reads the clock).
      rerun::timestamp now{};
      for (const auto& r : b.results)
        if (auto t = rerun::parse_wall_time(r.observed_at); t && *t > now) now = *t;
      // The profile's code map over test identities, built once per profile.
      const rerun::code_map& batch_codes =
          profile ? profile_codes.try_emplace(profile, profile->result_codes).first->second : codes;
      rerun::rerun_inputs inputs{batch_codes, rules, history, state, now, opt.explain, zone, {},
                                 opt.qc_limits_file.empty() ? nullptr : &qc_tracker};
      const rerun::batch_outcome outcome = rerun::process_reports_for_rerun(b, inputs);
      (void)qc_tracker.take_recorded_patients();  // nothing is stored by a replay: not kept either
      for (std::size_t i = 0; i < b.results.size(); ++i) {
        const result& r = b.results[i];
        if (r.duplicate) {
          err << file << ": note: duplicate of an earlier result (sample " << r.sample_id << ", "
              << r.code << ", same value and observation time): reported once\n";
          ++fo.events;  // seen and accounted for: not an empty file
        } else {
          pr.print(r);
          ++fo.events;
        }
        for (const auto& e : outcome.explain)
          if (e.index == i) pr.print(e);
      }
      for (const auto& m : outcome.messages)
        if (m.kind == rerun::endpoint::rerun_request) pr.print_request(m);
      if (!opt.qc_limits_file.empty())
        for (const auto& [i, q] : outcome.controls) pr.print_qc(q, b.device);
    };

    for (const auto& n : cap.notes) problem(0, n, /*warning=*/true);
    switch (cap.kind) {
      case capture_kind::astm_frames:
      case capture_kind::astm_records: {
        astm::link_options lo;
        // Captures log only the analyser's side: the host's ACK to ENQ is not in the file, and
        // many loggers dropped ENQ too. Replay accepts frames on a neutral line; the daemon does not.
        lo.accept_frames_without_enq = true;
        lo.ignore_frame_numbers = opt.ignore_frame_numbers;
        if (opt.ignore_frame_numbers && cap.kind == capture_kind::astm_frames)
          problem(0, "frame numbers not checked (--ignore-frame-numbers): frames taken in file order", true);
        astm_ingest ingest(&catalog, forced, opt.device, lo);
        if (cap.kind == capture_kind::astm_frames) (void)ingest.feed(cap.bytes);
        else ingest.feed_records(cap.bytes);
        ingest.finish();
        for (auto& m : ingest.take_messages()) {
          emit_results(m.batch.results, m.profile);
          for (const auto& q : m.batch.queries) { pr.print(q); ++fo.events; }
          for (const auto& o : m.batch.orders) { pr.print(o); ++fo.events; }
        }
        for (const auto& p : ingest.take_problems()) problem(p.offset, p.what, p.warning);
        if (cap.kind == capture_kind::astm_frames && ingest.frames() == 0)
          problem(0, "not an ASTM E1381 capture: no valid frame (STX FN text ETB|ETX C1 C2) found");
        break;
      }
      case capture_kind::hl7_mllp:
      case capture_kind::hl7_segments: {
        hl7_ingest ingest(&catalog, forced, opt.device);
        if (cap.kind == capture_kind::hl7_mllp) ingest.feed(cap.bytes);
        else ingest.feed_segments(cap.bytes);
        for (auto& m : ingest.take_messages()) {
          if (m.reply) {
            pr.print(*m.reply);
            ++fo.events;
            continue;
          }
          if (!m.note.empty()) {
            pr.print_note(m.message_type, m.control_id, m.note);
            ++fo.events;
            continue;
          }
          emit_results(m.results, m.profile);
          for (const auto& q : m.queries) { pr.print(q); ++fo.events; }
          for (const auto& o : m.orders) { pr.print(o); ++fo.events; }
        }
        for (const auto& p : ingest.take_problems()) problem(p.offset, p.what, p.warning);
        break;
      }
      case capture_kind::unknown:
        problem(0, "not a capture this program reads: expected ASTM frames (STX/ENQ), MLLP (0x0B), "
                   "control-character mnemonics (<STX>, \\x02), or records/segments starting with "
                   "H| or MSH|");
        break;
    }
    if (fo.events == 0 && fo.problems == 0)
      problem(0, "no results, queries or orders found (" + cap.description + ")");
    if (fo.problems > 0 && status == exit_ok) status = exit_bad_input;
  }
  return status;
}

}  // namespace interfaced::daemon
