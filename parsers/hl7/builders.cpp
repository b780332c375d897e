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

// The MSH of a Mindray answer (builders.hpp): `MSH|^~\&|<5>|<6>|<3>|<4>|ts||TYPE|<id>|P|2.3.1||||||ASCII|||`.
void mindray_msh(segment_writer& w, const message& qry, const mindray_answer& h, std::string_view type) {
  const segment_view& msh = qry.msh();
  w.msh()
      .raw(msh.field(5).raw())
      .raw(msh.field(6).raw())
      .raw(msh.field(3).raw())
      .raw(msh.field(4).raw())
      .field(h.timestamp)
      .raw("")
      .raw(type)
      .raw(msh.field(10).raw())
      .raw(msh.field(11).empty() ? std::string_view("P") : msh.field(11).raw())
      .raw(msh.field(12).empty() ? std::string_view("2.3.1") : msh.field(12).raw());
  for (int f = 13; f <= 17; ++f) w.raw("");
  w.field(h.charset).end(21);
}

// `MSA|AA|<id>|Message accepted|||0|` and `ERR|0|` (manual §1.2.4 MSA status code 0).
void mindray_msa_err(segment_writer& w, const message& qry) {
  w.begin("MSA").raw("AA").raw(qry.msh().field(10).raw()).field("Message accepted").raw("").raw("").raw("0").end(7);
  w.begin("ERR").raw("0").end(2);
}

std::string mindray_type(const delimiters& d, std::string_view code, std::string_view trigger) {
  std::string t(code);
  t.push_back(d.component);
  t += trigger;
  return t;
}

// YYYYMMDDHHmmSS from a date the backend gave (`1962-08-24`, `19620824`, ...): its digits, padded
// with zeros to 14 (manual DSP 4: "19620824000000"); empty stays empty.
std::string mindray_time(std::string_view date) {
  std::string digits;
  for (char c : date)
    if (c >= '0' && c <= '9') digits.push_back(c);
  if (digits.empty()) return digits;
  digits.resize(14, '0');
  return digits;
}

// M / F / O (manual DSP 5) from the backend's sex (`M`, `male`, `F`, `female`, ...).
std::string_view mindray_sex(std::string_view sex) {
  if (sex.empty()) return {};
  const char c = sex.front();
  if (c == 'M' || c == 'm') return "M";
  if (c == 'F' || c == 'f') return "F";
  return "O";
}

bool is_stat(std::string_view priority) {
  return priority == "S" || priority == "s" || priority == "STAT" || priority == "stat" || priority == "Stat";
}

}  // namespace

std::string build_qck_q02(const message& qry, const mindray_answer& header, query_status status) {
  const delimiters d = qry.delims();
  segment_writer w(d);
  mindray_msh(w, qry, header, mindray_type(d, "QCK", "Q02"));
  mindray_msa_err(w, qry);
  w.begin("QAK").raw("SR").field(to_string(status)).end(3);
  return w.take();
}

std::string build_dsr_q03(const message& qry, const mindray_answer& header, const order& o, std::size_t sequence,
                          bool last) {
  const delimiters d = qry.delims();
  segment_writer w(d);
  mindray_msh(w, qry, header, mindray_type(d, "DSR", "Q03"));
  mindray_msa_err(w, qry);
  w.begin("QAK").raw("SR").raw("OK").end(3);
  std::string out = w.take();
  // The query's QRD and QRF, echoed as received (same delimiters, so the bytes stay valid).
  for (std::string_view name : {"QRD", "QRF"}) {
    if (const auto i = qry.find(name)) {
      out.append(qry.segment(*i).raw());
      out.push_back('\r');
    }
  }
  segment_writer dsp(d);
  const std::string birth = mindray_time(o.patient_birth_date);
  const std::string_view stat = is_stat(o.priority) ? "Y" : "N";
  std::string_view lines[28] = {};
  lines[0] = o.patient_id;
  // A display string (max. 40 characters): the XPN's component separators become spaces.
  std::string name = o.patient_name;
  std::replace(name.begin(), name.end(), '^', ' ');
  lines[2] = name;
  lines[3] = birth;
  lines[4] = mindray_sex(o.patient_sex);
  lines[20] = o.sample_id;
  lines[23] = stat;
  std::size_t n = 0;
  for (const std::string_view v : lines) dsp.begin("DSP").raw(std::to_string(++n)).raw("").field(v).end(6);
  for (const order_test& t : o.tests) {
    // `<channel>^^^`: the channel number with name, unit and reference range left blank.
    std::string line = escape(t.code, d);
    line.append(3, d.component);
    dsp.begin("DSP").raw(std::to_string(++n)).raw("").raw(line).end(6);
  }
  dsp.begin("DSC").raw(last ? std::string() : std::to_string(sequence)).end(2);
  out += dsp.take();
  return out;
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
