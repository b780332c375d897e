#include "rerun/host_query.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

#include "parsers/astm/builders.hpp"
#include "parsers/hl7/builders.hpp"
#include "parsers/hl7/message.hpp"
#include "parsers/text.hpp"

namespace interfaced::rerun {

namespace {

// "S-1 rerun 2: GLU NA" for the log.
void describe(std::string& summary, const pending_order& p) {
  summary += (summary.empty() ? "" : "; ") + p.entry->sample_id +
             (p.is_rerun ? " rerun " + std::to_string(p.entry->rerun_number) : "") + (p.reflex ? " reflex" : "") + ":";
  for (const auto& c : p.codes) summary += " " + c;
}

}  // namespace

std::vector<std::string> reflex_tests_pending(const reflex_order& o, const result_store& history) {
  std::vector<std::string> out;
  for (const auto& name : o.tests) {
    const auto seen = history.latest_of_parameter(o.entry.sample_id, name);
    if (!seen || seen->received_at < o.since) out.push_back(name);
  }
  return out;
}

std::string queried_samples(const query& q) { return q.all_samples ? std::string("ALL") : join(q.sample_ids); }

std::vector<pending_order> pending_orders(const rerun_state& state, const result_store& history,
                                          std::string_view device, const query& q, const code_lookup& code_of) {
  std::vector<pending_order> out;
  const bool every_test = q.tests.empty() || (q.tests.size() == 1 && q.tests.front() == "ALL");
  auto wanted_sample = [&](std::string_view sample) {
    return q.all_samples || std::find(q.sample_ids.begin(), q.sample_ids.end(), sample) != q.sample_ids.end();
  };
  const auto reflexes = state.reflex_orders.find(device);
  // Appends the sample's pending reflex tests not already in `tests`; true when one was added.
  auto add_reflex_tests = [&](std::string_view sample, std::vector<std::string>& tests) {
    bool added = false;
    if (reflexes == state.reflex_orders.end()) return added;
    for (const auto& o : reflexes->second) {
      if (o.entry.sample_id != sample) continue;
      for (auto& name : reflex_tests_pending(o, history))
        if (!contains(tests, name)) {
          tests.push_back(std::move(name));
          added = true;
        }
    }
    return added;
  };
  auto keep = [&](pending_order& p, const std::vector<std::string>& tests) {
    for (const auto& name : tests) {
      std::string code = code_of(name);
      if (every_test || std::find(q.tests.begin(), q.tests.end(), code) != q.tests.end()) {
        p.codes.push_back(std::move(code));
        p.names.push_back(name);
      }
    }
    if (!p.codes.empty()) out.push_back(std::move(p));
  };
  static const std::vector<waiting_list_entry> no_entries;
  const auto wl = state.waiting_lists.find(device);
  for (const auto& e : wl == state.waiting_lists.end() ? no_entries : wl->second) {
    if (!wanted_sample(e.sample_id)) continue;
    pending_order p{&e, false, {}, {}, false};
    std::vector<std::string> tests;
    if (e.rerun_active()) {
      const auto r = state.reruns.find(e.lab_report_id);
      if (r != state.reruns.end() && r->second.status == rerun_status::requested) {
        p.is_rerun = true;
        for (const auto& name : r->second.requested)
          if (!r->second.is_fulfilled(name)) tests.push_back(name);
      }
    } else {
      for (const auto& name : e.parameters)
        if (!contains(e.valued_parameters, name) && !history.latest_of_parameter(e.sample_id, name))
          tests.push_back(name);
    }
    if (add_reflex_tests(e.sample_id, tests)) p.reflex = true;
    keep(p, tests);
  }
  // Reflex orders for samples no waiting list of the device names (an unsolicited sample).
  if (reflexes != state.reflex_orders.end())
    for (const auto& o : reflexes->second) {
      if (!wanted_sample(o.entry.sample_id) || waiting_entry(state, device, o.entry.sample_id) != nullptr) continue;
      if (std::any_of(out.begin(), out.end(), [&](const pending_order& p) { return p.entry->sample_id == o.entry.sample_id; }))
        continue;  // a second rule for the same sample: merged into the first
      pending_order p{&o.entry, false, {}, {}, true};
      std::vector<std::string> tests;
      add_reflex_tests(o.entry.sample_id, tests);
      keep(p, tests);
    }
  return out;
}

std::vector<download_change> plan_device_downloads(const rerun_state& state, const result_store& history,
                                                   std::string_view device, download_state& sent,
                                                   const code_lookup& code_of, timestamp now) {
  query all;
  all.all_samples = true;
  std::vector<pending_download> wanted;
  for (const auto& p : pending_orders(state, history, device, all, code_of))
    wanted.push_back({p.entry->sample_id, p.entry->lab_report_id, p.is_rerun, p.is_rerun ? p.entry->rerun_number : 0,
                      p.names, p.codes, p.reflex});
  return plan_downloads(sent, wanted, history, now);
}

order order_of(const waiting_list_entry& e, const std::vector<std::string>& codes, std::string action) {
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

const waiting_list_entry* waiting_entry(const rerun_state& state, std::string_view device, std::string_view sample) {
  const auto wl = state.waiting_lists.find(device);
  if (wl == state.waiting_lists.end()) return nullptr;
  for (const auto& e : wl->second)
    if (e.sample_id == sample) return &e;
  return nullptr;
}

const waiting_list_entry* order_entry(const rerun_state& state, std::string_view device, std::string_view sample) {
  if (const auto* e = waiting_entry(state, device, sample)) return e;
  const auto r = state.reflex_orders.find(device);
  if (r == state.reflex_orders.end()) return nullptr;
  for (const auto& o : r->second)
    if (o.entry.sample_id == sample) return &o.entry;
  return nullptr;
}

query_answer answer_astm_queries(const rerun_state& state, const result_store& history, std::string_view device,
                                 const std::vector<query>& queries, const code_lookup& code_of, timestamp now) {
  query_answer out;
  const std::string ts = format_message_time(now);
  for (const auto& q : queries) {
    if (q.cancel) {
      out.log.push_back("host query for " + queried_samples(q) + " cancelled by the analyser: nothing sent");
      continue;
    }
    std::vector<order> orders;
    std::string summary;
    for (const auto& p : pending_orders(state, history, device, q, code_of)) {
      // O.12 action code: A (add tests to a known specimen) for a rerun, N (new) otherwise.
      orders.push_back(order_of(*p.entry, p.codes, p.is_rerun || p.reflex ? "A" : "N"));
      describe(summary, p);
    }
    astm::order_message_header h;
    h.timestamp = ts;
    h.termination_code = orders.empty() ? "I" : "N";
    out.log.push_back("host query for " + queried_samples(q) + ": " +
                      (orders.empty() ? std::string("nothing pending (L|1|I)") : "order sent for " + summary));
    out.messages.push_back(astm::build_order_message(orders, h));
  }
  return out;
}

namespace {

// Mindray QRY^Q02 (builders.hpp): QCK^Q02 OK then one DSR^Q03 per sample with something pending,
// or QCK^Q02 NF and no DSR ("No DSR message will be sent if a QCK^Q02 message has been sent
// indicating no corresponding sample on LIS", manual §1.3.2).
query_answer answer_mindray_query(const rerun_state& state, const result_store& history, std::string_view device,
                                  const hl7::message& qry, const std::vector<query>& queries,
                                  const code_lookup& code_of, timestamp now) {
  const std::string ts = format_message_time(now);
  hl7::mindray_answer h;
  h.timestamp = ts;
  std::string summary;
  std::vector<order> orders;
  for (const auto& q : queries)
    for (const auto& p : pending_orders(state, history, device, q, code_of)) {
      describe(summary, p);
      orders.push_back(order_of(*p.entry, p.codes, ""));
    }
  query_answer out;
  std::string ids;
  for (const auto& q : queries) ids += (ids.empty() ? "" : ",") + queried_samples(q);
  if (ids.empty()) ids = "no sample";
  out.messages.push_back(
      hl7::build_qck_q02(qry, h, orders.empty() ? hl7::query_status::not_found : hl7::query_status::ok));
  for (std::size_t i = 0; i < orders.size(); ++i)
    out.messages.push_back(hl7::build_dsr_q03(qry, h, orders[i], i + 1, i + 1 == orders.size()));
  out.log.push_back("host query (QRY^Q02) for " + ids + ": QCK^Q02 " +
                    (orders.empty() ? std::string("NF (nothing pending)")
                                    : "OK, DSR^Q03 x" + std::to_string(orders.size()) + " pending " + summary));
  return out;
}

}  // namespace

query_answer answer_hl7_query(const rerun_state& state, const result_store& history, std::string_view device,
                              std::string_view text, const std::vector<query>& queries, const code_lookup& code_of,
                              timestamp now, const id_source& next_id) {
  hl7::message qbp;
  if (hl7::parse_message(text, qbp)) return {};
  const std::string type = qbp.msh().field(9).component(1).decode();
  if (type == "QRY" && qbp.msh().field(9).component(2).decode() == "Q02")
    return answer_mindray_query(state, history, device, qbp, queries, code_of, now);
  if (type != "QBP") return {};
  const std::string ts = format_message_time(now);
  const std::string analyser_app = qbp.msh().field(3).decode();
  const std::string analyser_facility = qbp.msh().field(4).decode();
  const std::string control_id = next_id();  // the RSP's, numbered before the orders it announces
  std::string summary;
  std::vector<std::string> orders;
  for (const auto& q : queries)
    for (const auto& p : pending_orders(state, history, device, q, code_of)) {
      describe(summary, p);
      order o = order_of(*p.entry, p.codes, "");  // ORC-1 NW
      o.protocol = protocol::hl7;
      o.device = std::string(device);
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
  for (const auto& q : queries) ids += (ids.empty() ? "" : ",") + queried_samples(q);
  query_answer out;
  out.log.push_back("host query (QBP^Q11) for " + ids + ": RSP^K11 " +
                    (summary.empty() ? std::string("NF (nothing pending)") : "OK, pending " + summary));
  out.messages.push_back(hl7::build_rsp_k11(qbp, req));
  out.messages.insert(out.messages.end(), std::make_move_iterator(orders.begin()), std::make_move_iterator(orders.end()));
  return out;
}

}  // namespace interfaced::rerun
