#include "parsers/hl7/builders.hpp"

#include "parsers/hl7/writer.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace interfaced::hl7 {

std::string_view to_string(query_status s) noexcept {
  switch (s) {
    case query_status::ok:
      return "OK";
    case query_status::not_found:
      return "NF";
    case query_status::application_error:
      return "AE";
    case query_status::application_reject:
      return "AR";
  }
  return "AE";
}

std::string build_rsp_k11(const message& qbp, const rsp_k11_request& request) {
  const delimiters d = qbp.delims();
  const segment_view& msh = qbp.msh();
  segment_writer w(d);
  std::string type = "RSP";
  type.push_back(d.component);
  type += "K11";
  type.push_back(d.component);
  type += "RSP_K11";

  w.msh()
      .raw(msh.field(5).raw())
      .raw(msh.field(6).raw())
      .raw(msh.field(3).raw())
      .raw(msh.field(4).raw())
      .field(request.timestamp)
      .raw("")
      .raw(type)
      .field(request.control_id)
      .raw(msh.field(11).empty() ? std::string_view("P") : msh.field(11).raw())
      .raw(msh.field(12).raw())
      .raw("")
      .raw("")
      .raw("")  // MSH-15/16 empty on responses (LAW)
      .raw("")
      .raw("")
      .raw(msh.field(18).raw())
      .raw("")
      .raw("")
      .raw(msh.field(21).raw())
      .end();

  w.begin("MSA").field(to_string(request.code)).raw(msh.field(10).raw()).end();
  const auto qpd = qbp.find("QPD");
  const segment_view q = qpd ? qbp.segment(*qpd) : segment_view{};
  w.begin("QAK").raw(q.field(2).raw()).field(to_string(request.status)).raw(q.field(1).raw()).end();
  if (qpd) {
    // Echoed as received: same delimiters, so the bytes stay valid.
    std::string out = w.take();
    out.append(q.raw());
    out.push_back('\r');
    return out;
  }
  return w.take();
}

std::string build_oml_o33(const order& o, const oml_o33_header& h) {
  const delimiters d{};
  segment_writer w(d);
  w.msh()
      .field(h.sending_application)
      .field(h.sending_facility)
      .field(h.receiving_application)
      .field(h.receiving_facility)
      .field(h.timestamp)
      .raw("")
      .raw("OML^O33^OML_O33")
      .field(h.control_id)
      .field(h.processing_id)
      .raw("2.5.1")
      .raw("")
      .raw("")
      .raw("NE")
      .raw("AL")
      .raw("")
      .raw("UNICODE UTF-8")
      .raw("")
      .raw("")
      .raw("LAB-28^IHE")
      .end();

  if (!o.patient_id.empty() || !o.patient_name.empty()) {
    // XPN: the caller's '^' separates name components; each part is escaped on its own.
    std::string name;
    std::string_view rest = o.patient_name;
    while (true) {
      const std::size_t p = rest.find('^');
      name += escape(rest.substr(0, p), d);
      if (p == std::string_view::npos) break;
      name.push_back(d.component);
      rest.remove_prefix(p + 1);
    }
    w.begin("PID").raw("").raw("").field(o.patient_id).raw("").raw(name).end();
  }

  w.begin("SPM").raw("1").field(o.sample_id).raw("").field(h.specimen_type);
  for (int i = 0; i < 6; ++i) w.raw("");
  w.raw("P").end();

  const std::string_view action = o.action_code.empty() ? std::string_view("NW") : o.action_code;
  std::size_t n = 0;
  for (const order_test& t : o.tests) {
    ++n;
    const std::string awos = t.awos_id.empty() ? o.sample_id + "." + std::to_string(n) : t.awos_id;
    w.begin("ORC").field(action).field(awos).end();
    if (!o.priority.empty()) {
      w.begin("TQ1");
      for (int i = 0; i < 8; ++i) w.raw("");
      w.field(o.priority).end();
    }
    w.begin("OBR")
        .raw(std::to_string(n))
        .field(awos)
        .raw("")
        .components({t.code, t.name, h.coding_system})
        .end();
  }
  return w.take();
}

namespace {

// Offsets of the field separators of the MSH segment, MSH-1 included: field n (n >= 2) lies
// between seps[n - 2] and seps[n - 1] (or the segment's end).
std::vector<std::size_t> msh_separators(std::string_view msg) {
  std::vector<std::size_t> seps;
  if (msg.size() < 4 || !msg.starts_with("MSH")) return seps;
  const char fs = msg[3];
  const std::size_t end = std::min(msg.find_first_of("\r\n"), msg.size());
  for (std::size_t i = 3; i < end; ++i)
    if (msg[i] == fs) seps.push_back(i);
  seps.push_back(end);  // the segment's end closes the last field
  return seps;
}

std::string_view field_at(std::string_view msg, const std::vector<std::size_t>& seps, std::size_t n) {
  if (n < 2 || n > seps.size()) return {};
  return msg.substr(seps[n - 2] + 1, seps[n - 1] - seps[n - 2] - 1);
}

}  // namespace

msh_sender sender_of(std::string_view msg) noexcept {
  try {
    const auto seps = msh_separators(msg);
    return {field_at(msg, seps, 3), field_at(msg, seps, 4)};
  } catch (...) {  // allocation: nothing known about the sender
    return {};
  }
}

std::string address_to(std::string_view msg, std::string_view application, std::string_view facility) {
  const auto seps = msh_separators(msg);
  if (seps.size() < 6) return std::string(msg);  // no MSH-6: not an MSH we built
  const char fs = msg[3];
  auto usable = [fs](std::string_view v) { return v.find_first_of(std::string{fs, '\r', '\n'}) == std::string_view::npos; };
  const bool set_app = field_at(msg, seps, 5).empty() && !application.empty() && usable(application);
  const bool set_fac = field_at(msg, seps, 6).empty() && !facility.empty() && usable(facility);
  if (!set_app && !set_fac) return std::string(msg);
  std::string out;
  out.reserve(msg.size() + application.size() + facility.size());
  out.append(msg.substr(0, seps[3] + 1));  // through the separator that opens MSH-5
  out.append(set_app ? application : field_at(msg, seps, 5));
  out.push_back(fs);
  out.append(set_fac ? facility : field_at(msg, seps, 6));
  out.append(msg.substr(seps[5]));  // what follows MSH-6: its separator (or the segment end) on
  return out;
}

}  // namespace interfaced::hl7
