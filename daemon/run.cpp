#include "daemon/run.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <ctime>
#include <deque>
#include <fstream>
#include <iomanip>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sstream>

#include "daemon/config.hpp"
#include "daemon/logging.hpp"
#include "daemon/replay.hpp"
#include "daemon/systemd_notify.hpp"
#include "devices/wire_trace.hpp"
#include "parsers/astm/builders.hpp"
#include "parsers/astm/control.hpp"
#include "parsers/astm/records.hpp"
#include "parsers/hl7/builders.hpp"
#include "parsers/hl7/message.hpp"
#include "parsers/hl7/mllp.hpp"
#include "rerun/code_map.hpp"
#include "rerun/order_download.hpp"
#include "rerun/process.hpp"
#include "rerun/rerun_json.hpp"
#include "rerun/result_store.hpp"
#include "rerun/rules.hpp"
#include "transport/astm_link.hpp"
#include "transport/delivery.hpp"
#include "transport/http_client.hpp"
#include "transport/http_server.hpp"
#include "transport/mllp_session.hpp"
#include "transport/outbox.hpp"
#include "transport/push_queue.hpp"
#include "transport/serial.hpp"
#include "transport/state_store.hpp"
#include "transport/sink.hpp"
#include "transport/tcp.hpp"
#include "transport/traced_stream.hpp"

namespace interfaced::daemon {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;

std::string now_iso_ms() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::ostringstream out;
  out << std::put_time(&tm, "%Y-%m-%dT%H:%M:%S") << '.' << std::setw(3) << std::setfill('0') << ms << 'Z';
  return out.str();
}

// YYYYMMDDHHMMSS, local time: the lab's wall clock, as ASTM timestamps are read (wall_time.hpp).
std::string astm_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  std::ostringstream out;
  out << std::put_time(&tm, "%Y%m%d%H%M%S");
  return out.str();
}

rerun::timestamp wall_now() {
  // The rerun module compares with analyser times, which are local wall-clock times.
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  return rerun::timestamp(std::chrono::seconds(static_cast<long long>(timegm(&tm))));
}

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

// One device-log line per rerun action, with the backend's activity code (rerun.md, "Activity codes").
void log_actions(spdlog::logger& log, const std::vector<rerun::action>& acts) {
  for (const auto& a : acts) {
    std::string params;
    for (const auto& p : a.parameters) params += (params.empty() ? "" : ",") + p;
    const std::string act = a.act ? " activity=" + std::to_string(rerun::code(*a.act)) : std::string();
    log.info("{}: sample {} report {} rerun {} parameters [{}]{}{}", action_name(a.kind), a.sample_id,
             a.lab_report_id, a.rerun_number, params, act, a.note.empty() ? "" : " (" + a.note + ")");
  }
}

// Per device: what technicians and `interfaced status` see.
struct device_stats {
  std::uint64_t messages = 0;
  std::uint64_t results = 0;
  std::uint64_t queries = 0;
  std::uint64_t problems = 0;      // NAKs, checksum errors, discarded messages (from the link log)
  // NAKs sent and received, checksum errors: counted by the link drivers from the link's events.
  std::shared_ptr<transport::link_counters> link = std::make_shared<transport::link_counters>();
  transport::latency_histogram ingest_ack;  // message complete -> durable -> ACK / AA released
  std::uint64_t connections = 0;
  std::uint64_t duplicates = 0;
  std::string last_message_at;
  bool connected = false;
  // "Today" in the lab's local time (technicians ask how many samples an analyser did today).
  int day = -1;                     // local day of year the *_today counters belong to
  std::uint64_t messages_today = 0;
  std::uint64_t results_today = 0;

  void count_today(std::uint64_t results_now) {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    const int today = tm.tm_year * 400 + tm.tm_yday;
    if (today != day) {
      day = today;
      messages_today = results_today = 0;
    }
    ++messages_today;
    results_today += results_now;
  }
};

// Whether a link is inside a transfer, told from its bytes alone so shutdown can wait for exactly
// that: ASTM from the analyser's ENQ to its EOT (neither byte can occur inside a frame, LIS1-A 6.6);
// HL7 from a message's 0x0B until our acknowledgement's 0x1C went out (a message the MLLP decoder
// rejects gets no ACK and keeps the link "busy": shutdown then waits out its bounded grace).
struct transfer_activity {
  explicit transfer_activity(bool is_astm) : astm(is_astm) {}
  void observe(bool rx, std::string_view bytes) {
    for (const char c : bytes) {
      if (astm) {
        if (rx && c == astm::control::enq) in_session = true;
        if (rx && c == astm::control::eot) in_session = false;
      } else if (rx) {
        if (c == hl7::mllp_start) in_message = true;
        if (c == hl7::mllp_end && in_message) {
          in_message = false;
          ++received;
        }
      } else if (c == hl7::mllp_end) {
        ++acknowledged;
      }
    }
  }
  [[nodiscard]] bool busy() const { return astm ? in_session : in_message || received > acknowledged; }

  bool astm;
  bool in_session = false;
  bool in_message = false;
  std::uint64_t received = 0;
  std::uint64_t acknowledged = 0;
};

struct device_runtime {
  device_config cfg;
  std::vector<std::shared_ptr<transfer_activity>> activity;  // one per live link
  std::shared_ptr<spdlog::logger> log;
  std::shared_ptr<transport::trace_tap> tap = std::make_shared<transport::trace_tap>();
  std::unique_ptr<transport::tcp_server> server;
  asio::cancellation_signal cancel;  // tcp-client and serial loops
  device_stats stats;
  bool backend_down = false;        // waiting-list polling: say so once per outage
  std::size_t waiting_list_size = 0;
  const devices::device_profile* profile = nullptr;
  std::ofstream trace_file;
  // Order download (worklist push), when the profile or the configuration says the analyser
  // takes it: messages waiting for its link, and what it was sent. In memory only: after a
  // restart pending orders are sent once more, which an analyser takes as the same order again.
  bool order_download = false;
  std::shared_ptr<transport::push_queue> orders = std::make_shared<transport::push_queue>();
  // HL7: who the analyser last said it is (MSH-3/4), across its connections: the address of pushed orders.
  std::shared_ptr<transport::hl7_peer> hl7_peer = std::make_shared<transport::hl7_peer>();
  rerun::download_state downloaded;
};

// seen(S,P) over the durable history plus the batches whose outbox append is still in flight.
// A batch's history rows commit in the same transaction as its outbox messages: a crash (or a
// failed append) before that leaves the results unseen, so the analyser's resend is forwarded
// again instead of being taken for a duplicate and lost (found by tests/bench/crash_test.sh: 100
// acknowledged messages lost over 110 SIGKILLs when the history committed first), and a crash
// after it leaves both, so the resend is a duplicate, not a second copy under a new key.
class pending_history final : public rerun::result_store {
 public:
  explicit pending_history(rerun::result_store& base) : base_(base) {}

  // Records made until the next open() belong to batch `id`.
  std::uint64_t open() {
    batches_.push_back({++seq_, {}, {}});
    return seq_;
  }
  // The batch's rows, to commit with its messages; the batch stays visible until settle().
  std::vector<transport::history_row> take_rows(std::uint64_t id) {
    auto it = std::find_if(batches_.begin(), batches_.end(), [&](const batch& b) { return b.id == id; });
    return it == batches_.end() ? std::vector<transport::history_row>{} : std::move(it->rows);
  }
  // The batch's commit ended (its rows are in the durable store, or were never written).
  void settle(std::uint64_t id) {
    std::erase_if(batches_, [&](const batch& b) { return b.id == id; });
  }

  [[nodiscard]] bool has(std::string_view s, std::string_view p) const override {
    if (base_.has(s, p)) return true;
    return std::any_of(batches_.begin(), batches_.end(), [&](const batch& b) { return b.seen.has(s, p); });
  }
  [[nodiscard]] bool has_observation(std::string_view s, std::string_view p, std::string_view v,
                                     std::string_view t) const override {
    if (base_.has_observation(s, p, v, t)) return true;
    return std::any_of(batches_.begin(), batches_.end(),
                       [&](const batch& b) { return b.seen.has_observation(s, p, v, t); });
  }
  [[nodiscard]] std::optional<rerun::observation> latest(std::string_view s, std::string_view p) const override {
    for (auto it = batches_.rbegin(); it != batches_.rend(); ++it)
      if (auto o = it->seen.latest(s, p)) return o;
    return base_.latest(s, p);
  }
  void record(std::string_view s, std::string_view p, rerun::observation o) override {
    if (batches_.empty()) open();
    batch& b = batches_.back();
    b.rows.push_back({std::string(s), std::string(p), o});
    b.seen.record(s, p, std::move(o));
  }
  std::size_t prune(rerun::timestamp cutoff) override { return base_.prune(cutoff); }

 private:
  struct batch {
    std::uint64_t id;
    std::vector<transport::history_row> rows;
    rerun::memory_result_store seen;
  };
  rerun::result_store& base_;
  std::deque<batch> batches_;
  std::uint64_t seq_ = 0;
};

// The hand-off from every link: rerun tagging and routing (rerun.md), then the outbox; the
// analyser's final ACK waits for `done(true)` (persist, then acknowledge).
class ingest_sink final : public transport::batch_sink {
 public:
  ingest_sink(transport::outbox& box, std::map<std::string, device_runtime*>& devices, transport::state_store& store)
      : outbox_(box), devices_(devices), store_(store), history_(store) {}

  void hand_off(transport::delivery d, transport::done_callback done) override {
    auto it = devices_.find(d.device);
    device_runtime* dev = it == devices_.end() ? nullptr : it->second;
    rerun::batch b;
    b.device = d.device;
    b.batch_id = d.device + "-" + std::to_string(++batch_seq_) + "-" + std::to_string(std::time(nullptr));
    b.results = std::move(d.results);
    const auto now = wall_now();
    const auto received = std::chrono::steady_clock::now();
    rerun::rerun_inputs in{codes_, rules_, history_, state_, now};
    const std::uint64_t batch_id = history_.open();
    const rerun::batch_outcome out = [&] {
      const transport::state_store::read_scope reads(store_);  // one snapshot for the whole batch
      return rerun::process_reports_for_rerun(b, in);
    }();
    if (dev) {
      log_actions(*dev->log, out.actions);
      for (const auto& m : out.messages) {
        if (m.kind != rerun::endpoint::rerun_request) continue;
        std::string params;
        for (const auto& p : m.request.requested_parameters) params += (params.empty() ? "" : ",") + p;
        dev->log->info("auto-rerun requested: report {} parameters [{}] rule {} activity={}", m.lab_report_id, params,
                       m.request.rule, rerun::code(m.request.act));
      }
    }
    if (dev) {
      ++dev->stats.messages;
      dev->stats.results += out.counts.forwarded;
      dev->stats.duplicates += out.counts.duplicates;
      dev->stats.queries += d.queries.size();
      dev->stats.last_message_at = now_iso_ms();
      dev->stats.count_today(out.counts.forwarded);
      // The journal gets the samples as a structured field (journalctl SAMPLE_ID=...).
      const log_samples samples_field(sample_ids(b.results));
      dev->log->info("message received: {} results ({} first, {} requested reruns, {} instrument-triggered, {} duplicates not forwarded){}",
                     out.counts.results, out.counts.first_results, out.counts.requested_reruns,
                     out.counts.instrument_triggered, out.counts.duplicates,
                     sample_list(b.results));
      for (const auto& q : d.queries)
        dev->log->info("host query for {}{}", q.all_samples ? std::string("ALL") : join(q.sample_ids),
                       q.cancel ? " (cancel)" : "");
    }
    std::vector<transport::new_message> msgs;
    for (const auto& m : out.messages) {
      transport::new_message nm;
      nm.kind = rerun::to_string(m.kind);
      nm.ordering_key = m.lab_report_id.empty() ? "device:" + d.device : m.lab_report_id;
      nm.body = rerun::body_json(m).dump();
      nm.internal_request = m.internal_request;
      msgs.push_back(std::move(nm));
    }
    // Messages, history rows and rerun state in one transaction. Even with nothing to send (only
    // duplicates) the ACK goes through the outbox queue: it then waits for the earlier batches a
    // duplicate was recognised against, which may still be in flight.
    transport::state_changes sc;
    sc.history = history_.take_rows(batch_id);
    state_document(sc);
    std::vector<transport::history_row> duplicates;
    for (std::size_t i = 0; i < b.results.size(); ++i) {
      if (!out.tags[i].duplicate) continue;
      transport::history_row dup{b.results[i].sample_id, out.tags[i].parameter, {}};
      dup.o.value = b.results[i].value;
      dup.o.observed_at = b.results[i].observed_at;
      duplicates.push_back(std::move(dup));
    }
    outbox_.append(std::move(msgs), std::move(sc),
                   [this, batch_id, done = std::move(done), dev, duplicates = std::move(duplicates),
                    received](transport::append_result r) {
                     history_.settle(batch_id);
                     if (dev) dev->stats.ingest_ack.observe(std::chrono::steady_clock::now() - received);
                     if (!r.durable) {
                       state_written_.reset();  // the next batch writes the state again
                       if (dev) dev->log->error("the outbox could not store the message: {}; the analyser resends", r.error);
                       done(false);
                       return;
                     }
                     done(duplicates_durable(duplicates, dev));
                   });
  }

  // A duplicate is acknowledged only when the result it repeats is durable: the batch it was
  // recognised against (queued earlier, so committed or failed by now) may have failed.
  bool duplicates_durable(const std::vector<transport::history_row>& duplicates, device_runtime* dev) {
    for (const auto& r : duplicates) {
      if (store_.has_observation(r.sample, r.parameter, r.o.value, r.o.observed_at)) continue;
      if (dev)
        dev->log->error("sample {} {}: repeats a result that could not be stored; the analyser resends", r.sample,
                        r.parameter);
      return false;
    }
    return true;
  }

  [[nodiscard]] bool accepting() const override { return outbox_.accepting(); }

  rerun::rule_set& rules() noexcept { return rules_; }
  rerun::rerun_state& state() noexcept { return state_; }

  // The rerun state document, when it changed since it was last queued for writing.
  void state_document(transport::state_changes& sc) {
    // A structural comparison, not a serialisation: this runs after every message.
    if (state_written_ && *state_written_ == state_) return;
    state_written_ = state_;
    sc.documents.emplace_back("rerun_state", rerun::to_json(state_).dump());
  }

  // After a waiting-list refresh or a prune: written off the event loop, in order with the batches.
  void persist_state(device_runtime* dev) {
    transport::state_changes sc;
    state_document(sc);
    if (sc.empty()) return;
    outbox_.write(std::move(sc), [this, dev](bool ok) {
      if (ok) return;
      state_written_.reset();
      if (dev) dev->log->error("the rerun state could not be stored; it is written again with the next change");
      else spdlog::error("the rerun state could not be stored; it is written again with the next change");
    });
  }

  // What a query asks for that is pending on the device's waiting list. Pending: the requested
  // parameters of an active rerun not yet fulfilled; for a report without a rerun, its parameters
  // without a result yet. Codes are the instrument's (the profile's "orders"/"codes", else the
  // device's code map; identity otherwise); names are the machine names they stand for.
  struct pending_order {
    const rerun::waiting_list_entry* entry = nullptr;
    bool is_rerun = false;
    std::vector<std::string> codes;
    std::vector<std::string> names;
  };
  std::vector<pending_order> pending(const std::string& device, const query& q) const {
    std::vector<pending_order> out;
    const auto wl = state_.waiting_lists.find(device);
    if (wl == state_.waiting_lists.end()) return out;
    const bool every_test = q.tests.empty() || (q.tests.size() == 1 && q.tests.front() == "ALL");
    for (const auto& e : wl->second) {
      if (!q.all_samples && std::find(q.sample_ids.begin(), q.sample_ids.end(), e.sample_id) == q.sample_ids.end()) continue;
      pending_order p{&e, false, {}, {}};
      std::vector<std::string> tests;
      if (e.rerun_active()) {
        const auto r = state_.reruns.find(e.lab_report_id);
        if (r != state_.reruns.end() && r->second.status == rerun::rerun_status::requested) {
          p.is_rerun = true;
          for (const auto& name : r->second.requested)
            if (!r->second.is_fulfilled(name)) tests.push_back(name);
        }
      } else {
        for (const auto& name : e.parameters)
          if (!rerun::contains(e.valued_parameters, name) && !history_.has(e.sample_id, name)) tests.push_back(name);
      }
      for (const auto& name : tests) {
        std::string code = instrument_code(device, name);
        if (every_test || std::find(q.tests.begin(), q.tests.end(), code) != q.tests.end()) {
          p.codes.push_back(std::move(code));
          p.names.push_back(name);
        }
      }
      if (!p.codes.empty()) out.push_back(std::move(p));
    }
    return out;
  }

  // Order download after a waiting-list refresh: what is pending for every sample of the device
  // (pending() for ALL) against what the analyser was sent (rerun/order_download.hpp).
  std::vector<rerun::download_change> plan_downloads(const std::string& device, rerun::download_state& sent,
                                                     rerun::timestamp now) const {
    query all;
    all.all_samples = true;
    std::vector<rerun::pending_download> wanted;
    for (const auto& p : pending(device, all))
      wanted.push_back({p.entry->sample_id, p.entry->lab_report_id, p.is_rerun, p.is_rerun ? p.entry->rerun_number : 0,
                        p.names, p.codes});
    return rerun::plan_downloads(sent, wanted, history_, now);
  }

  // The order (patient, specimen, priority) for a waiting-list entry with these instrument codes.
  static order order_of(const rerun::waiting_list_entry& e, const std::vector<std::string>& codes, std::string action) {
    order o;
    o.sample_id = e.sample_id;
    o.patient_id = e.patient.id;
    o.patient_name = e.patient.name;
    o.patient_birth_date = e.patient.dob;
    o.patient_sex = e.patient.sex;
    for (const auto& c : codes) o.tests.push_back({c, {}, {}});
    o.priority = e.priority;
    o.action_code = std::move(action);
    return o;
  }

  // The waiting list entry of a sample on the device, if it is still listed.
  const rerun::waiting_list_entry* entry_of(const std::string& device, std::string_view sample) const {
    const auto wl = state_.waiting_lists.find(device);
    if (wl == state_.waiting_lists.end()) return nullptr;
    for (const auto& e : wl->second)
      if (e.sample_id == sample) return &e;
    return nullptr;
  }

  // The answer to an HL7 QBP^Q11 (LAB-27): RSP^K11 with QAK-2 OK when something is pending for
  // the queried samples, NF otherwise; then one OML^O33 work order (LAB-28) per pending sample.
  // Nothing (the usual ACK) for other query messages (QRY^Q02 wants QCK/DSR).
  std::vector<std::string> answer_hl7_query(const std::string& device, spdlog::logger& log, std::string_view text,
                                            const std::vector<query>& queries) {
    hl7::message qbp;
    if (hl7::parse_message(text, qbp)) return {};
    const std::string type = qbp.msh().field(9).component(1).decode();
    if (type != "QBP") return {};
    static std::uint64_t seq = 0;
    auto next_id = [] { return "IFQ" + std::to_string(std::time(nullptr) % 100000000) + "-" + std::to_string(++seq); };
    const std::string ts = astm_now();
    const std::string analyser_app = qbp.msh().field(3).decode();
    const std::string analyser_facility = qbp.msh().field(4).decode();
    const std::string control_id = next_id();  // the RSP's, numbered before the orders it announces
    std::string summary;
    std::vector<std::string> orders;
    for (const auto& q : queries)
      for (const auto& p : pending(device, q)) {
        summary += (summary.empty() ? "" : "; ") + p.entry->sample_id + (p.is_rerun ? " rerun " + std::to_string(p.entry->rerun_number) : "") + ":";
        for (const auto& c : p.codes) summary += " " + c;
        order o = order_of(*p.entry, p.codes, "");  // ORC-1 NW
        o.protocol = protocol::hl7;
        o.device = device;
        const std::string id = next_id();
        hl7::oml_o33_header h;
        h.sending_application = "interfaced";
        h.receiving_application = analyser_app;
        h.receiving_facility = analyser_facility;
        h.timestamp = ts;
        h.control_id = id;
        orders.push_back(hl7::build_oml_o33(o, h));
      }
    hl7::rsp_k11_request req;
    req.control_id = control_id;
    req.timestamp = ts;
    req.code = hl7::ack_code::aa;
    req.status = summary.empty() ? hl7::query_status::not_found : hl7::query_status::ok;
    std::string ids;
    for (const auto& q : queries) ids += (ids.empty() ? "" : ",") + (q.all_samples ? std::string("ALL") : join(q.sample_ids));
    log.info("host query (QBP^Q11) for {}: RSP^K11 {}", ids, summary.empty() ? std::string("NF (nothing pending)") : "OK, pending " + summary);
    std::vector<std::string> out{hl7::build_rsp_k11(qbp, req)};
    out.insert(out.end(), std::make_move_iterator(orders.begin()), std::make_move_iterator(orders.end()));
    return out;
  }

  // The answer to ASTM host queries, from the local waiting list (no backend round trip, so the
  // analyser gets it within its reply window): one order message per query with a P and an O
  // record per sample that has something pending (pending()), or H + `L|1|I` (no information).
  // A cancel query (Q.13 `A`) gets no answer.
  std::vector<std::string> answer_astm_queries(const std::string& device, spdlog::logger& log,
                                               const std::vector<query>& queries) {
    std::vector<std::string> out;
    for (const auto& q : queries) {
      if (q.cancel) {
        log.info("host query for {} cancelled by the analyser: nothing sent", q.all_samples ? std::string("ALL") : join(q.sample_ids));
        continue;
      }
      std::vector<order> orders;
      std::string summary;
      for (const auto& p : pending(device, q)) {
        const auto& e = *p.entry;
        // O.12 action code: A (add tests to a known specimen) for a rerun, N (new) otherwise.
        orders.push_back(order_of(e, p.codes, p.is_rerun ? "A" : "N"));
        summary += (summary.empty() ? "" : "; ") + e.sample_id + (p.is_rerun ? " rerun " + std::to_string(e.rerun_number) : "") + ":";
        for (const auto& c : p.codes) summary += " " + c;
      }
      const std::string ts = astm_now();
      astm::order_message_header h;
      h.timestamp = ts;
      h.termination_code = orders.empty() ? "I" : "N";
      log.info("host query for {}: {}", q.all_samples ? std::string("ALL") : join(q.sample_ids),
               orders.empty() ? std::string("nothing pending (L|1|I)") : "order sent for " + summary);
      out.push_back(astm::build_order_message(orders, h));
    }
    return out;
  }

 private:
  // The analyser's code to order a machine name with: its profile's "orders"/"codes", else the
  // code map (identity when unmapped).
  std::string instrument_code(const std::string& device, const std::string& name) const {
    const auto d = devices_.find(device);
    if (d != devices_.end() && d->second->profile) {
      const auto& m = d->second->profile->order_codes;
      if (const auto it = m.find(name); it != m.end()) return it->second;
    }
    return std::string(codes_.instrument_code(name));
  }

  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
    return s;
  }
  static std::vector<std::string> sample_ids(const std::vector<result>& results) {
    std::vector<std::string> samples;
    for (const auto& r : results)
      if (std::find(samples.begin(), samples.end(), r.sample_id) == samples.end()) samples.push_back(r.sample_id);
    return samples;
  }
  static std::string sample_list(const std::vector<result>& results) {
    std::vector<std::string> samples;
    for (const auto& r : results)
      if (std::find(samples.begin(), samples.end(), r.sample_id) == samples.end()) samples.push_back(r.sample_id);
    if (samples.empty()) return "";
    return ", samples " + join(samples);
  }

  transport::outbox& outbox_;
  std::map<std::string, device_runtime*>& devices_;
  rerun::code_map codes_;
  rerun::rule_set rules_;
  transport::state_store& store_;
  pending_history history_;  // seen(S,P): durable rows + batches not yet durable
  rerun::rerun_state state_;
  std::optional<rerun::rerun_state> state_written_;  // the rerun state last queued for writing
  std::uint64_t batch_seq_ = 0;
};

class service {
 public:
  service(config cfg, std::filesystem::path config_path)
      : cfg_(std::move(cfg)),
        config_path_(std::move(config_path)),
        signals_(io_, SIGINT, SIGTERM, SIGHUP),
        watchdog_(io_) {}

  int run() {
    init_service_log(cfg_.logging);
    try {
      catalog_ = devices::profile_catalog::load_dir(cfg_.profile_dir.empty() ? devices::profile_catalog::default_dir()
                                                                             : cfg_.profile_dir);
    } catch (const devices::profile_error& e) {
      spdlog::critical("device profiles: {}", e.what());
      return exit_config;
    }
    try {
      std::filesystem::create_directories(cfg_.outbox.path.parent_path());
      outbox_ = std::make_unique<transport::outbox>(
          cfg_.outbox, [this](std::function<void()> f) { asio::post(io_, std::move(f)); });
    } catch (const std::exception& e) {
      spdlog::critical("outbox {}: {}", cfg_.outbox.path.string(), e.what());
      return exit_io;
    }
    outbox_->on_alarm([](bool on) {
      if (on) spdlog::error("ALARM: the outbox is full; analysers are refused (NAK / AR) until it drains");
      else spdlog::warn("outbox alarm cleared: accepting transmissions again");
    });
    // The rerun state lives in the outbox's file: it commits with the messages (state_store.hpp).
    try {
      state_ = std::make_unique<transport::state_store>(cfg_.outbox.path);
    } catch (const std::exception& e) {
      spdlog::critical("rerun state {}: {}", cfg_.outbox.path.string(), e.what());
      return exit_io;
    }
    sink_ = std::make_unique<ingest_sink>(*outbox_, by_id_, *state_);
    if (const int rc = load_state(); rc != exit_ok) return rc;
    if (!cfg_.rules_file.empty()) {
      // Local rules: refused at start-up when they do not load or their own test cases fail.
      std::ifstream rin(cfg_.rules_file, std::ios::binary);
      const std::string text{std::istreambuf_iterator<char>(rin), std::istreambuf_iterator<char>()};
      rerun::rules_file rf = rerun::load_rules_file(text, cfg_.rules_file.string());
      for (const auto& e : rf.errors) spdlog::critical("{}", e.format());
      if (!rin || !rf.errors.empty()) return exit_config;
      const auto report = rerun::run_rule_tests(rf);
      for (const auto& f : report.failures) spdlog::critical("{}: {} (rule {}): {}", cfg_.rules_file.string(), f.pointer, f.rule_id, f.message);
      if (!report.passed()) return exit_config;
      spdlog::info("rules: {} loaded from {}, {} test cases passed", rf.rules.rules().size(), cfg_.rules_file.string(), report.run);
      sink_->rules() = std::move(rf.rules);
    }
    base_rules_ = sink_->rules();
    for (const auto& d : cfg_.devices) {
      // The last parameter configuration the backend sent: auto-rerun rules work while it is down.
      if (auto text = state_->get("parameters:" + d.id)) parameters_text_[d.id] = *text;
    }
    rebuild_rules("");
    start_delivery();
    for (const auto& d : cfg_.devices) start_device(d);
    start_polling();
    start_health();
    wait_signals();
    start_watchdog();
    const std::string status_line = std::to_string(devices_.size()) + " devices configured, outbox " +
                                    std::to_string(outbox_->stats().undelivered) + " waiting";
    systemd::ready(status_line);
    spdlog::info("interfaced ready: {}", status_line);
    io_.run();
    outbox_->flush(std::chrono::seconds(10));
    spdlog::info("interfaced stopped");
    return exit_ok;
  }

 private:
  // The persisted rerun state (reruns with their partial fulfilment, the last waiting lists) and
  // the result history's age limit.
  int load_state() {
    try {
      if (auto text = state_->get("rerun_state")) {
        sink_->state() = rerun::rerun_state_from_json(json::parse(*text));
        spdlog::info("rerun state loaded from {}: {} reruns, {} waiting lists", state_->file().string(),
                     sink_->state().reruns.size(), sink_->state().waiting_lists.size());
      }
      prune_history();
    } catch (const std::exception& e) {
      spdlog::critical("rerun state {}: {}", state_->file().string(), e.what());
      return exit_io;  // a state the daemon cannot read is not silently started afresh
    }
    return exit_ok;
  }

  // On the outbox worker, like every write: a large delete never stalls the analysers' links.
  void prune_history() {
    const auto now = wall_now();
    // Received reruns whose confirmation never came back: the backend's rerun cache TTL is a day.
    const auto dropped = rerun::prune_state(sink_->state(), now - std::chrono::days(1));
    if (dropped > 0) sink_->persist_state(nullptr);
    const unsigned days = cfg_.outbox.history_days;
    outbox_->prune_history(now - std::chrono::days(days), [dropped, days](std::size_t removed) {
      if (removed > 0 || dropped > 0)
        spdlog::info("rerun history: {} results older than {} days and {} stale reruns forgotten", removed, days,
                     dropped);
    });
  }

  // The rule set = the local rules file + every device's backend parameter configuration. A
  // condition that does not compile is an error naming its parameter, logged when the text that
  // holds it is new (`changed_device`, "" at start-up: every device).
  void rebuild_rules(const std::string& changed_device) {
    rerun::rule_set rules = base_rules_;
    for (const auto& [device, text] : parameters_text_) {
      std::vector<rerun::parameter_config> params;
      try {
        params = rerun::parameters_from_json(json::parse(text));
      } catch (const std::exception& e) {
        if (changed_device.empty() || changed_device == device)
          spdlog::error("device {}: parameter configuration from the backend rejected: {}", device, e.what());
        continue;
      }
      const auto errors = rules.add_parameters(params);
      if (changed_device.empty() || changed_device == device) {
        for (const auto& e : errors)
          spdlog::error("device {}: auto-rerun condition of parameter {} does not parse, the rule is off: {}", device,
                        e.rule_id.substr(e.rule_id.find(':') + 1), e.format());
        spdlog::info("device {}: parameter configuration: {} parameters, {} auto-rerun conditions refused", device,
                     params.size(), errors.size());
      }
    }
    sink_->rules() = std::move(rules);
  }

  void start_polling() {
    if (cfg_.backend.base_url.empty()) return;
    asio::co_spawn(io_, poll_loop(), asio::bind_cancellation_slot(poll_cancel_.slot(), asio::detached));
  }

  // Waiting lists and parameter configuration, per device, at start and every waiting_list_poll.
  asio::awaitable<void> poll_loop() {
    std::string token;
    try {
      token = transport::load_bearer_token(cfg_.backend);
    } catch (const std::exception&) {
      // start_delivery() already said why; polling goes on without a token.
    }
    std::unique_ptr<transport::http_client> client;
    try {
      transport::event_log log = [](std::string_view line) { spdlog::warn("backend (waiting list): {}", line); };
      client = std::make_unique<transport::http_client>(io_.get_executor(),
                                                        transport::client_options(cfg_.backend, std::move(token), log));
    } catch (const std::exception& e) {
      spdlog::error("waiting-list polling off: {}", e.what());
      co_return;
    }
    poll_client_ = client.get();
    asio::steady_timer timer(io_);
    for (;;) {
      for (auto& dev : devices_) {
        if (stopping_) break;
        co_await poll_device(*client, *dev);
      }
      if (stopping_) break;
      prune_history();
      timer.expires_after(cfg_.backend.waiting_list_poll);
      auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec || stopping_) break;
    }
    poll_client_ = nullptr;
  }

  asio::awaitable<void> poll_device(transport::http_client& client, device_runtime& dev) {
    std::string id = dev.cfg.id;
    transport::http_result wl = co_await transport::fetch_waiting_list(client, cfg_.backend, std::move(id));
    if (!wl.ok()) {
      if (!dev.backend_down)
        dev.log->warn("waiting list: backend unavailable ({}); working from the last known list",
                      wl.ec ? wl.ec.message() : "HTTP " + std::to_string(wl.status));
      dev.backend_down = true;
    } else {
      if (dev.backend_down) dev.log->info("waiting list: backend reachable again");
      dev.backend_down = false;
      try {
        auto entries = rerun::waiting_list_from_json(json::parse(wl.body));
        const std::size_t n = entries.size();
        auto acts = rerun::refresh_waiting_list(sink_->state(), dev.cfg.id, std::move(entries), wall_now());
        log_actions(*dev.log, acts);
        sink_->persist_state(&dev);
        if (n != dev.waiting_list_size || !acts.empty()) dev.log->info("waiting list refreshed: {} entries", n);
        dev.waiting_list_size = n;
      } catch (const std::exception& e) {
        dev.log->error("waiting list from the backend rejected: {}", e.what());
      }
    }
    if (dev.order_download) push_orders(dev);  // also from the last known list while the backend is down
    if (stopping_) co_return;
    std::string pid = dev.cfg.id;
    transport::http_result pr = co_await transport::fetch_parameters(client, cfg_.backend, std::move(pid));
    if (!pr.ok()) co_return;  // the last known configuration stays
    auto& known = parameters_text_[dev.cfg.id];
    if (pr.body == known) co_return;
    known = pr.body;
    transport::state_changes sc;
    sc.documents.emplace_back("parameters:" + dev.cfg.id, pr.body);
    outbox_->write(std::move(sc), [log = dev.log](bool ok) {
      if (!ok) log->error("parameter configuration could not be stored; the daemon keeps using it until restart");
    });
    rebuild_rules(dev.cfg.id);
  }

  // Order download (worklist push): the orders new or changed since they were last sent, and
  // cancels (rerun/order_download.hpp), each queued for the device's link, which sends it when its
  // line is free and says how it ended (transport/push_queue.hpp).
  void push_orders(device_runtime& dev) {
    auto list = [](const std::vector<std::string>& v) {
      std::string s;
      for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
      return s;
    };
    for (const auto& c : sink_->plan_downloads(dev.cfg.id, dev.downloaded, wall_now())) {
      const bool cancel = c.action == rerun::download_action::cancel;
      std::string what = "sample " + c.sample_id + " tests [" + list(c.codes) + "]" +
                         (c.is_rerun ? " (rerun " + std::to_string(c.rerun_number) + ")" : "");
      order o;
      if (const auto* e = sink_->entry_of(dev.cfg.id, c.sample_id)) {
        o = ingest_sink::order_of(*e, c.codes, "");
      } else {  // a cancel for a sample that left the waiting list
        o.sample_id = c.sample_id;
        for (const auto& code : c.codes) o.tests.push_back({code, {}, {}});
      }
      std::string text;
      const std::string ts = astm_now();
      if (dev.cfg.protocol == "astm") {
        // LIS02-A2 O.12: N new specimen, A tests added to a known specimen, C cancel the tests named.
        o.action_code = cancel ? "C" : c.action == rerun::download_action::add_tests ? "A" : "N";
        astm::order_message_header h;
        h.timestamp = ts;
        text = astm::build_order_message({o}, h);
      } else {
        // LAB-28 ORC-1: NW new work order, CA cancel. The AWOS id (OBR-2) is the sample, the test
        // and the rerun round, so a cancel names the very work order it ends.
        o.protocol = protocol::hl7;
        o.device = dev.cfg.id;
        o.action_code = cancel ? "CA" : "NW";
        for (auto& t : o.tests)
          t.awos_id = c.sample_id + "." + t.code + (c.is_rerun ? ".R" + std::to_string(c.rerun_number) : "");
        static std::uint64_t seq = 0;
        const std::string id = "IFO" + std::to_string(std::time(nullptr) % 100000000) + "-" + std::to_string(++seq);
        hl7::oml_o33_header h;
        h.sending_application = "interfaced";
        h.timestamp = ts;
        h.control_id = id;  // MSH-5/6: filled by the session from the analyser's MSH-3/4 once it has spoken
        text = hl7::build_oml_o33(o, h);
      }
      transport::push_message m;
      m.text = std::move(text);
      device_runtime* d = &dev;
      m.done = [d, what, cancel, sample = c.sample_id, round = c.rerun_number](bool sent, const std::string& reason) {
        if (sent) {
          d->log->info("{}: {}", cancel ? "order cancel sent" : "orders sent", what);
          return;
        }
        d->log->warn("analyser refused the {}: {}: {}; not sent again until the order changes (a host query still gets it)",
                     cancel ? "order cancel" : "orders", what, reason);
        if (!cancel) rerun::mark_refused(d->downloaded, sample, round);
      };
      if (!dev.orders->push(std::move(m))) {
        dev.log->error("order download: {} messages wait for the analyser already; {} not queued, tried again at the next refresh",
                       dev.orders->size(), what);
        if (!cancel) rerun::forget_download(dev.downloaded, c.sample_id);
        continue;
      }
      dev.log->info("{} queued for the analyser: {}", cancel ? "order cancel" : "orders", what);
    }
  }

  transport::event_log device_event_log(device_runtime* dev) {
    return [dev](std::string_view line) {
      // The drivers' lines are the technicians' record of the link; problems are counted.
      const bool problem = line.find("NAK") != std::string_view::npos || line.find("discard") != std::string_view::npos ||
                           line.find("checksum") != std::string_view::npos || line.find("bug:") != std::string_view::npos;
      if (problem) {
        ++dev->stats.problems;
        dev->log->warn("{}", line);
      } else {
        dev->log->info("{}", line);
      }
    };
  }

  void open_trace(device_runtime* dev) {
    if (dev->trace_file.is_open()) return;
    std::error_code ec;
    std::filesystem::create_directories(cfg_.logging.dir, ec);
    const auto path = cfg_.logging.dir / (dev->cfg.id + ".trace");
    dev->trace_file.open(path, std::ios::app | std::ios::binary);
    if (!dev->trace_file) {
      dev->log->error("wire trace: cannot open {}", path.string());
      return;
    }
    dev->trace_file << devices::wire_trace_header << ", device " << dev->cfg.id << "\n";
    dev->tap->write = [dev](bool rx, std::string_view bytes) {
      dev->trace_file << devices::format_trace_line(now_iso_ms(), rx, bytes) << '\n';
      dev->trace_file.flush();
    };
  }

  void set_trace(device_runtime* dev, bool on) {
    if (on) open_trace(dev);
    dev->tap->enabled = on;
    dev->log->info("wire trace {} ({})", on ? "on" : "off", (cfg_.logging.dir / (dev->cfg.id + ".trace")).string());
  }

  template <class Stream>
  asio::awaitable<void> run_link(device_runtime* dev, Stream stream) {
    // A second tap, always on, tells shutdown whether a transfer is in progress.
    auto activity = std::make_shared<transfer_activity>(dev->cfg.protocol == "astm");
    auto watch = std::make_shared<transport::trace_tap>();
    watch->enabled = true;
    watch->write = [activity](bool rx, std::string_view bytes) { activity->observe(rx, bytes); };
    dev->activity.push_back(activity);
    transport::traced_stream<transport::traced_stream<Stream>> traced(
        transport::traced_stream<Stream>(std::move(stream), dev->tap), watch);
    ++dev->stats.connections;
    dev->stats.connected = true;
    if (dev->cfg.protocol == "astm") {
      transport::astm_link_config lc;
      lc.catalog = &catalog_;
      lc.forced = dev->profile;
      lc.device = dev->cfg.id;
      if (dev->profile) lc.link.frame_text_size = dev->profile->frame_text_size;
      if (dev->cfg.frame_text_size) lc.link.frame_text_size = dev->cfg.frame_text_size;
      // Named locals moved in: GCC 12 double-frees temporaries passed to a coroutine's by-value
      // parameters (reproduced while building transport/).
      lc.answer_queries = [this, dev](const std::vector<query>& qs) {
        return sink_->answer_astm_queries(dev->cfg.id, *dev->log, qs);
      };
      if (dev->order_download) lc.push = dev->orders;
      lc.counters = dev->stats.link;
      transport::event_log log = device_event_log(dev);
      co_await transport::run_astm_link(std::move(traced), std::move(lc), *sink_, std::move(log));
    } else {
      transport::mllp_session_config mc;
      mc.catalog = &catalog_;
      mc.forced = dev->profile;
      mc.device = dev->cfg.id;
      if (dev->profile) mc.ack = dev->profile->ack;  // the ACK this analyser expects (profile data)
      mc.answer_query = [this, dev](std::string_view text, const std::vector<query>& qs) {
        return sink_->answer_hl7_query(dev->cfg.id, *dev->log, text, qs);
      };
      if (dev->order_download) mc.push = dev->orders;
      mc.counters = dev->stats.link;
      mc.peer = dev->hl7_peer;
      transport::event_log log = device_event_log(dev);
      co_await transport::run_mllp_session(std::move(traced), std::move(mc), *sink_, std::move(log));
    }
    dev->stats.connected = false;
    std::erase(dev->activity, activity);
  }

  static transport::keepalive_settings keepalive_of(const keepalive& k) {
    transport::keepalive_settings s;
    s.enabled = k.enabled;
    s.idle = std::chrono::seconds(k.idle_s);
    s.interval = std::chrono::seconds(k.interval_s);
    s.count = static_cast<int>(k.count);
    return s;
  }

  void start_device(const device_config& d) {
    auto dev = std::make_unique<device_runtime>();
    dev->cfg = d;
    dev->log = device_log(cfg_.logging, d.id);
    if (!d.profile.empty()) dev->profile = catalog_.find(d.profile);
    dev->order_download = d.order_download.value_or(dev->profile != nullptr && dev->profile->order_download);
    if (dev->order_download)
      dev->log->info("order download on ({}): pending orders are sent to the analyser after each waiting-list refresh",
                     d.order_download ? std::string("configuration") : "profile " + dev->profile->id);
    device_runtime* p = dev.get();
    by_id_[d.id] = p;
    devices_.push_back(std::move(dev));
    if (d.trace) set_trace(p, true);

    if (d.link_type == "tcp-server") {
      transport::tcp_server_options o;
      o.bind_address = d.server.bind;
      o.port = d.server.port;
      o.allowed_peers = d.server.allow;
      o.keepalive = keepalive_of(d.server.ka);
      p->server = std::make_unique<transport::tcp_server>(
          io_.get_executor(), o,
          [this, p](asio::ip::tcp::socket s, std::string peer) {
            p->log->info("connected: {}", peer);
            return run_link(p, std::move(s));
          },
          device_event_log(p));
      if (auto ec = p->server->start()) {
        p->log->error("cannot listen on {}:{}: {}", d.server.bind, d.server.port, ec.message());
      } else {
        p->log->info("listening on {}:{} ({})", d.server.bind, p->server->port(), d.protocol);
      }
    } else if (d.link_type == "tcp-client") {
      transport::tcp_client_options o;
      o.host = d.client.host;
      o.port = d.client.port;
      o.backoff.initial = d.client.reconnect_initial;
      o.backoff.max = d.client.reconnect_max;
      o.keepalive = keepalive_of(d.client.ka);
      transport::tcp_session session = [this, p](asio::ip::tcp::socket s, std::string peer) {
        p->log->info("connected to {}", peer);
        return run_link(p, std::move(s));
      };
      transport::event_log log = device_event_log(p);
      asio::co_spawn(io_, transport::run_tcp_client(std::move(o), std::move(session), std::move(log)),
                     asio::bind_cancellation_slot(p->cancel.slot(), asio::detached));
    } else if (d.link_type == "serial") {
      asio::co_spawn(io_, serial_loop(p), asio::bind_cancellation_slot(p->cancel.slot(), asio::detached));
    }
  }

  asio::awaitable<void> serial_loop(device_runtime* dev) {
    transport::serial_settings s;
    s.device = dev->cfg.serial.device;
    s.baud = dev->cfg.serial.baud;
    s.data_bits = static_cast<int>(dev->cfg.serial.data_bits);
    s.parity = dev->cfg.serial.parity == "even" ? transport::serial_parity::even
               : dev->cfg.serial.parity == "odd" ? transport::serial_parity::odd
                                                 : transport::serial_parity::none;
    s.stop_bits = static_cast<int>(dev->cfg.serial.stop_bits);
    s.flow = dev->cfg.serial.flow_control == "rts-cts"    ? transport::serial_flow::rts_cts
             : dev->cfg.serial.flow_control == "xon-xoff" ? transport::serial_flow::xon_xoff
                                                          : transport::serial_flow::none;
    s.dtr = dev->cfg.serial.dtr;
    s.rts = dev->cfg.serial.rts;
    transport::backoff_policy backoff;
    unsigned attempt = 0;
    asio::steady_timer wait(io_);
    for (;;) {
      auto port = transport::open_serial(io_.get_executor(), s);
      if (port) {
        attempt = 0;
        dev->log->info("serial port {} open ({} baud, {}{}{})", s.device, s.baud, s.data_bits,
                       dev->cfg.serial.parity == "none" ? 'N' : dev->cfg.serial.parity == "even" ? 'E' : 'O', s.stop_bits);
        co_await run_link(dev, std::move(*port));
        dev->log->warn("serial link {} ended; reopening", s.device);
      } else {
        dev->log->error("cannot open serial port {}: {}", s.device, port.error());
      }
      wait.expires_after(transport::backoff_delay(backoff, attempt++, jitter()));
      auto [ec] = co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;  // cancelled: shutting down
    }
  }

  double jitter() {
    seed_ = seed_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(seed_ >> 11) / 9007199254740992.0;
  }

  void start_delivery() {
    if (cfg_.backend.base_url.empty()) {
      spdlog::warn("no backend.base_url: results are kept in the outbox until one is configured");
      return;
    }
    std::string token;
    try {
      token = transport::load_bearer_token(cfg_.backend);
    } catch (const std::exception& e) {
      spdlog::error("backend token: {}", e.what());
    }
    auto log = [](std::string_view line) { spdlog::warn("backend: {}", line); };
    if (!cfg_.backend.verify_tls) spdlog::warn("backend: TLS certificate verification is OFF (backend.verify_tls=false)");
    delivery_ = std::make_unique<transport::delivery_service>(
        io_.get_executor(), *outbox_, transport::delivery_options_from(cfg_.backend, std::move(token), log));
    delivery_->start();
    outbox_->on_appended([this] {
      if (delivery_) delivery_->wake();
    });
  }

  json health_json() {
    json devs = json::array();
    for (const auto& d : devices_) {
      devs.push_back({{"id", d->cfg.id},
                      {"protocol", d->cfg.protocol},
                      {"link", d->cfg.link_type},
                      {"up", d->stats.connected || (d->server && d->server->sessions() > 0)},
                      {"listening", d->server != nullptr},
                      {"messages", d->stats.messages},
                      {"messages_today", d->stats.messages_today},
                      {"results_today", d->stats.results_today},
                      {"results", d->stats.results},
                      {"queries", d->stats.queries},
                      {"duplicates", d->stats.duplicates},
                      {"problems", d->stats.problems},
                      {"connections", d->stats.connections},
                      {"last_message_at", d->stats.last_message_at},
                      {"trace", d->tap->enabled.load()}});
    }
    const auto ob = outbox_->stats();
    json alarms = json::array();
    if (ob.alarm) alarms.push_back("outbox full: analysers are refused until it drains");
    json j = {{"ready", true},
              {"devices", devs},
              {"outbox", {{"depth", ob.undelivered}, {"accepting", ob.accepting}, {"alarm", ob.alarm}}},
              {"backend", {{"configured", !cfg_.backend.base_url.empty()}}},
              {"alarms", alarms}};
    if (delivery_) {
      const auto st = delivery_->stats();
      j["backend"]["delivered"] = st.delivered;
      j["backend"]["retried"] = st.retried;
      j["backend"]["dead"] = st.dead;
    }
    return j;
  }

  std::string metrics_text() {
    std::ostringstream m;
    auto per_device = [&](const char* name, const char* help, auto field) {
      m << "# HELP interfaced_" << name << ' ' << help << "\n# TYPE interfaced_" << name << " counter\n";
      for (const auto& d : devices_) m << "interfaced_" << name << "{device=\"" << d->cfg.id << "\"} " << field(*d) << '\n';
    };
    per_device("messages_total", "Messages received", [](const device_runtime& d) { return d.stats.messages; });
    per_device("results_total", "Results forwarded", [](const device_runtime& d) { return d.stats.results; });
    per_device("link_problems_total", "NAKs, checksum errors and discarded messages",
               [](const device_runtime& d) { return d.stats.problems; });
    per_device("naks_total", "NAKs (HL7: AE, AR) sent or received on the link",
               [](const device_runtime& d) { return d.stats.link->naks_sent + d.stats.link->naks_received; });
    per_device("naks_sent_total", "NAKs (HL7: AE, AR) sent to the analyser",
               [](const device_runtime& d) { return d.stats.link->naks_sent; });
    per_device("naks_received_total", "NAKs (HL7: AE, AR) received from the analyser",
               [](const device_runtime& d) { return d.stats.link->naks_received; });
    per_device("checksum_errors_total", "Received frames with a wrong checksum",
               [](const device_runtime& d) { return d.stats.link->checksum_errors; });
    per_device("connections_total", "Connections (reconnects)", [](const device_runtime& d) { return d.stats.connections; });
    m << "# HELP interfaced_ingest_ack_seconds Message complete to ACK released (outbox durable)\n"
         "# TYPE interfaced_ingest_ack_seconds histogram\n";
    for (const auto& d : devices_) d->stats.ingest_ack.write(m, "interfaced_ingest_ack_seconds", "device=\"" + d->cfg.id + "\"");
    const auto ob = outbox_->stats();
    m << "# HELP interfaced_outbox_depth Messages not yet delivered\n# TYPE interfaced_outbox_depth gauge\n"
      << "interfaced_outbox_depth " << ob.undelivered << '\n';
    m << "# HELP interfaced_outbox_alarm 1 when the outbox is full\n# TYPE interfaced_outbox_alarm gauge\n"
      << "interfaced_outbox_alarm " << (ob.alarm ? 1 : 0) << '\n';
    m << "# HELP interfaced_outbox_commit_seconds Outbox group transaction, BEGIN to durable COMMIT (the disk's share of an ACK)\n"
         "# TYPE interfaced_outbox_commit_seconds histogram\n";
    ob.commit_latency.write(m, "interfaced_outbox_commit_seconds");
    if (delivery_) {
      const auto st = delivery_->stats();
      m << "# TYPE interfaced_delivered_total counter\ninterfaced_delivered_total " << st.delivered << '\n'
        << "# TYPE interfaced_retried_total counter\ninterfaced_retried_total " << st.retried << '\n'
        << "# TYPE interfaced_dead_total counter\ninterfaced_dead_total " << st.dead << '\n'
        << "# HELP interfaced_backend_request_seconds Backend HTTP request latency (every attempt)\n"
        << "# TYPE interfaced_backend_request_seconds histogram\n";
      st.request_latency.write(m, "interfaced_backend_request_seconds");
    }
    return m.str();
  }

  transport::http_reply handle_http(const transport::http_request_view& req) {
    const std::string path = req.target.substr(0, req.target.find('?'));
    const std::string query = req.target.find('?') == std::string::npos ? "" : req.target.substr(req.target.find('?') + 1);
    if (req.method == "GET" && path == "/health") return {200, "application/json", health_json().dump(2) + "\n"};
    if (req.method == "GET" && path == "/metrics") return {200, "text/plain; version=0.0.4", metrics_text()};
    if (req.method == "POST" && path == "/trace") {
      // /trace?device=ID&on=1 : switch a device's wire trace at run time.
      std::string device, on;
      std::istringstream qs(query);
      for (std::string kv; std::getline(qs, kv, '&');) {
        const auto eq = kv.find('=');
        const std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
        if (k == "device") device = v;
        if (k == "on") on = v;
      }
      auto it = by_id_.find(device);
      if (it == by_id_.end()) return {404, "application/json", json({{"error", "no device \"" + device + "\""}}).dump() + "\n"};
      set_trace(it->second, on == "1" || on == "true");
      return {200, "application/json", json({{"device", device}, {"trace", it->second->tap->enabled.load()}}).dump() + "\n"};
    }
    return {404, "application/json", "{\"error\":\"not found\"}\n"};
  }

  void start_health() {
    if (cfg_.health.port == 0) return;
    transport::http_server_options ho;
    ho.bind = cfg_.health.bind;
    ho.port = cfg_.health.port;
    ho.log_name = "health endpoint";
    ho.log = [](std::string_view line) { spdlog::warn("{}", line); };
    health_ = std::make_unique<transport::http_server>(
        io_.get_executor(), std::move(ho),
        [this](const transport::http_request_view& r) { return handle_http(r); });
    if (auto ec = health_->start())
      spdlog::error("health endpoint {}:{}: {}", cfg_.health.bind, cfg_.health.port, ec.message());
    else
      spdlog::info("health endpoint on http://{}:{}/health", cfg_.health.bind, health_->port());
  }

  void wait_signals() {
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        reload();
        wait_signals();
        return;
      }
      shutdown(sig == SIGTERM ? "SIGTERM" : "SIGINT");
    });
  }

  void reload() {
    auto r = load_config(config_path_);
    if (!r.ok()) {
      for (const auto& p : r.problems) spdlog::error("reload rejected: {}", format_problem(config_path_, p));
      spdlog::error("SIGHUP: the new configuration is not valid; the running one stays");
      return;
    }
    // Devices whose settings changed restart; new ones start; removed ones stop; the others keep
    // running untouched (their connections too). Other sections (backend, outbox, logging,
    // health) need a restart and are named when they changed.
    std::size_t started = 0, restarted = 0, stopped = 0;
    for (const auto& nd : r.cfg.devices) {
      auto it = by_id_.find(nd.id);
      if (it == by_id_.end()) {
        start_device(nd);
        ++started;
      } else if (!(it->second->cfg == nd)) {
        stop_device(it->second, "settings changed");
        start_device(nd);
        ++restarted;
      }
    }
    std::vector<device_runtime*> gone;
    for (const auto& [id, dev] : by_id_) {
      const bool kept = std::any_of(r.cfg.devices.begin(), r.cfg.devices.end(),
                                    [&, &id_ = id](const device_config& d) { return d.id == id_; });
      if (!kept) gone.push_back(dev);
    }
    for (auto* dev : gone) {
      stop_device(dev, "removed from the configuration");
      ++stopped;
    }
    if (r.cfg.backend.base_url != cfg_.backend.base_url || !(r.cfg.outbox.path == cfg_.outbox.path) ||
        r.cfg.health.port != cfg_.health.port)
      spdlog::warn("SIGHUP: backend, outbox or health settings changed: they apply after a restart");
    cfg_.devices = r.cfg.devices;
    spdlog::info("SIGHUP: configuration {} applied: {} devices started, {} restarted, {} stopped, the others untouched",
                 config_path_.string(), started, restarted, stopped);
    systemd::status(std::to_string(by_id_.size()) + " devices configured");
  }

  // Stops a device's links; its runtime is kept (retired_) because coroutines of its closing
  // sessions may still refer to it until they end.
  void stop_device(device_runtime* dev, const char* why) {
    dev->log->info("stopping: {}", why);
    if (dev->server) {
      dev->server->stop();
      dev->server->close_sessions();
    }
    dev->cancel.emit(asio::cancellation_type::terminal);
    dev->tap->enabled = false;
    by_id_.erase(dev->cfg.id);
    auto it = std::find_if(devices_.begin(), devices_.end(), [&](const auto& d) { return d.get() == dev; });
    if (it != devices_.end()) {
      retired_.push_back(std::move(*it));
      devices_.erase(it);
    }
  }

  void shutdown(const char* why) {
    if (stopping_) return;
    stopping_ = true;
    systemd::stopping(std::string("stopping (") + why + ")");
    spdlog::info("{}: stopping; links finish their current transfer", why);
    for (auto& d : devices_) {
      if (d->server) d->server->stop();
      d->cancel.emit(asio::cancellation_type::terminal);
    }
    if (health_) health_->stop();
    if (delivery_) delivery_->stop();
    poll_cancel_.emit(asio::cancellation_type::terminal);
    if (poll_client_) poll_client_->close();
    watchdog_.cancel();
    signals_.cancel();
    // Bounded grace period: in-flight transfers may finish (5 s at most), then every session is
    // closed. Idle links do not hold the exit up.
    finish_when_idle(std::make_shared<asio::steady_timer>(io_), std::chrono::steady_clock::now() + std::chrono::seconds(5));
  }

  [[nodiscard]] bool transfer_in_progress() const {
    for (const auto& d : devices_)
      for (const auto& a : d->activity)
        if (a->busy()) return true;
    return false;
  }

  void finish_when_idle(std::shared_ptr<asio::steady_timer> grace, std::chrono::steady_clock::time_point deadline) {
    if (transfer_in_progress() && std::chrono::steady_clock::now() < deadline) {
      grace->expires_after(std::chrono::milliseconds(50));
      grace->async_wait([this, grace, deadline](const boost::system::error_code&) { finish_when_idle(grace, deadline); });
      return;
    }
    for (auto& d : devices_)
      if (d->server) d->server->close_sessions();
    outbox_->flush(std::chrono::seconds(10));
    io_.stop();
  }

  void start_watchdog() {
    const auto period = systemd::watchdog_period();
    if (period.count() == 0) return;
    pet(period);
  }
  void pet(std::chrono::microseconds period) {
    systemd::watchdog();
    watchdog_.expires_after(period);
    watchdog_.async_wait([this, period](const boost::system::error_code& ec) {
      if (!ec) pet(period);
    });
  }

  asio::io_context io_{1};
  config cfg_;
  std::filesystem::path config_path_;
  devices::profile_catalog catalog_;
  std::unique_ptr<transport::outbox> outbox_;
  std::unique_ptr<transport::delivery_service> delivery_;
  std::unique_ptr<transport::state_store> state_;
  std::unique_ptr<ingest_sink> sink_;
  rerun::rule_set base_rules_;                          // the local rules file
  std::map<std::string, std::string> parameters_text_;  // by device: the backend's last answer
  asio::cancellation_signal poll_cancel_;
  transport::http_client* poll_client_ = nullptr;
  std::vector<std::unique_ptr<device_runtime>> devices_;
  std::map<std::string, device_runtime*> by_id_;
  std::vector<std::unique_ptr<device_runtime>> retired_;  // stopped by a reload (see stop_device)
  std::unique_ptr<transport::http_server> health_;
  asio::signal_set signals_;
  asio::steady_timer watchdog_;
  bool stopping_ = false;
  std::uint64_t seed_ = 0x9e3779b97f4a7c15ULL ^ static_cast<std::uint64_t>(std::time(nullptr));
};

}  // namespace

int run_service(const run_options& options) {
  auto r = load_config(options.config);
  if (!r.ok()) {
    for (const auto& p : r.problems) std::fprintf(stderr, "%s\n", format_problem(options.config, p).c_str());
    std::fprintf(stderr, "%s: the configuration is not valid; not starting\n", options.config.c_str());
    return exit_config;
  }
  service s(std::move(r.cfg), options.config);
  return s.run();
}

}  // namespace interfaced::daemon
