#include "daemon/replay.hpp"

#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>

#include "daemon/astm_ingest.hpp"
#include "daemon/capture_input.hpp"
#include "daemon/hl7_ingest.hpp"
#include "daemon/result_json.hpp"
#include "rerun/result_history.hpp"

namespace interfaced::daemon {
namespace {

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

class printer {
 public:
  printer(std::ostream& out, bool text) : out_(out), text_(text) {}

  void print(const result& r) {
    if (!text_) {
      out_ << to_json(r).dump() << '\n';
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
    out_ << "query   " << (q.all_samples ? "ALL" : join(q.sample_ids, ",")) << "  tests "
         << join(q.tests, ",") << (q.cancel ? "  (cancel)" : "") << "  (" << q.device << ")\n";
  }
  void print(const hl7_reply_info& r) {
    if (!text_) {
      out_ << nlohmann::json({{"type", "reply"}, {"protocol", "hl7"}, {"message_type", r.message_type},
                              {"control_id", r.control_id}, {"ack_code", r.ack_code},
                              {"acknowledged_id", r.acknowledged_id}, {"error_code", r.error_code},
                              {"query_status", r.query_status}, {"usable", r.usable},
                              {"findings", r.findings}})
                  .dump()
           << '\n';
      return;
    }
    out_ << "reply   " << r.message_type << "  " << r.ack_code << " for " << r.acknowledged_id
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

  printer pr(out, opt.format == "text");
  rerun::result_history history;  // one history across all files: a replay is one lab's day
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
    auto emit_results = [&](std::vector<result>& results) {
      for (auto& r : results) {
        history.tag(r);
        if (r.duplicate) {
          err << file << ": note: duplicate of an earlier result (sample " << r.sample_id << ", "
              << r.code << ", same value and observation time): reported once\n";
          ++fo.events;  // seen and accounted for: not an empty file
          continue;
        }
        pr.print(r);
        ++fo.events;
      }
    };

    for (const auto& n : cap.notes) problem(0, n, /*warning=*/true);
    switch (cap.kind) {
      case capture_kind::astm_frames:
      case capture_kind::astm_records: {
        astm::link_options lo;
        // Captures log only the analyser's side: the host's ACK to ENQ is not in the file, and
        // many loggers dropped ENQ too. Replay accepts frames on a neutral line; the daemon does not.
        lo.accept_frames_without_enq = true;
        astm_ingest ingest(&catalog, forced, opt.device, lo);
        if (cap.kind == capture_kind::astm_frames) (void)ingest.feed(cap.bytes);
        else ingest.feed_records(cap.bytes);
        ingest.finish();
        for (auto& m : ingest.take_messages()) {
          emit_results(m.batch.results);
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
          emit_results(m.results);
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
