#include "parsers/astm/builders.hpp"

namespace interfaced::astm {

namespace {

std::vector<std::string> split_components(std::string_view text) {
  std::vector<std::string> parts;
  for (;;) {
    const std::size_t p = text.find('^');
    parts.emplace_back(text.substr(0, p));
    if (p == std::string_view::npos) return parts;
    text.remove_prefix(p + 1);
  }
}

// LIS02-A2 O.6: S stat, A ASAP, R routine, C callback, P preoperative.
std::string_view priority_of(std::string_view p) {
  return p == "S" || p == "A" || p == "R" || p == "C" || p == "P" ? p : std::string_view("R");
}

}  // namespace

std::string build_order_message(const std::vector<order>& orders, const order_message_header& h,
                                const delimiters& d) {
  record_writer w(d);
  w.header({"", "", std::string(h.sender), "", "", "", "", "", "", std::string(h.processing_id),
            "LIS2-A2", std::string(h.timestamp)});
  int patients = 0;
  int in_patient = 0;  // O records under the current P
  const order* previous = nullptr;
  for (const order& o : orders) {
    if (previous == nullptr || previous->sample_id != o.sample_id ||
        previous->patient_id != o.patient_id) {
      ++patients;
      in_patient = 0;
      w.begin('P').field(std::to_string(patients)).field(o.patient_id).field("").field("");
      w.components(split_components(o.patient_name))
          .field("")
          .field(o.patient_birth_date)
          .field(o.patient_sex);
    }
    previous = &o;
    std::vector<std::vector<std::string>> tests;
    for (const order_test& t : o.tests) tests.push_back({"", "", "", t.code, t.name});
    w.begin('O').field(std::to_string(++in_patient)).field(o.sample_id).field("").repeats(tests);
    w.field(priority_of(o.priority));
    for (int i = 7; i <= 11; ++i) w.field("");
    w.field(o.action_code.empty() ? std::string_view("N") : std::string_view(o.action_code));
    for (int i = 13; i <= 25; ++i) w.field("");
    w.field("O");
  }
  w.begin('L').field("1").field(h.termination_code).end();
  return w.take();
}

}  // namespace interfaced::astm
