#include "parsers/hl7/ack.hpp"

#include <algorithm>
#include <charconv>
#include <initializer_list>

#include "parsers/hl7/writer.hpp"

namespace interfaced::hl7 {

namespace {

class response_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "hl7.response"; }
  std::string message(int ev) const override {
    switch (static_cast<response_error>(ev)) {
      case response_error::ok:
        return "ok";
      case response_error::unparsable:
        return "reply is not an HL7 message (no MSH / delimiters)";
      case response_error::not_a_response:
        return "reply is not an acknowledgement or response";
      case response_error::fields_shifted:
        return "MSH fields shifted: the message type is in MSH-8 (a field is missing)";
      case response_error::missing_msa:
        return "reply has no MSA segment";
      case response_error::bad_ack_code:
        return "MSA-1 is not AA/AE/AR/CA/CE/CR";
      case response_error::missing_acknowledged_id:
        return "MSA-2 (acknowledged id) is empty";
      case response_error::id_mismatch:
        return "MSA-2 does not name the message we sent";
      case response_error::wrong_trigger:
        return "MSH-9 trigger does not match the message sent";
      case response_error::missing_timestamp:
        return "MSH-7 (date/time of message) is empty";
      case response_error::missing_control_id:
        return "MSH-10 (message control id) is empty";
      case response_error::lf_segment_separators:
        return "segments end with LF instead of CR";
      case response_error::unterminated_segment:
        return "last segment is not terminated by CR";
      case response_error::stray_delimiters:
        return "MSH field holds only separators";
      case response_error::ack_type_on_response:
        return "MSH-15/16 set on a response";
      case response_error::wrong_receiver:
        return "MSH-5 does not name our application";
      case response_error::wrong_profile:
        return "MSH-21 is not the expected profile";
      case response_error::missing_qak:
        return "response has no QAK segment";
      case response_error::bad_query_status:
        return "QAK-2 is not OK/NF/AE/AR";
      case response_error::tag_mismatch:
        return "query tag does not match the query sent";
      case response_error::qpd_mismatch:
        return "QPD-3 does not echo the query sent";
    }
    return "unknown HL7 response error";
  }
};

bool one_of(std::string_view v, std::initializer_list<std::string_view> set) noexcept {
  return std::find(set.begin(), set.end(), v) != set.end();
}

// HL7 2.5 added MSH-9.3 (message structure) and the ERR-2/3/4 layout.
bool version_at_least_2_5(std::string_view version) noexcept {
  int major = 0;
  int minor = 0;
  const char* p = version.data();
  const char* e = p + version.size();
  auto r = std::from_chars(p, e, major);
  if (r.ec != std::errc{}) return false;
  if (r.ptr < e && *r.ptr == '.') std::from_chars(r.ptr + 1, e, minor);
  return major > 2 || (major == 2 && minor >= 5);
}

std::string location(const message& m, std::size_t segment, std::size_t field,
                     const delimiters& d) {
  if (segment == 0 || segment > m.segment_count()) return {};
  const std::string_view name = m.segment(segment - 1).name();
  std::size_t seq = 0;
  for (std::size_t i = 0; i < segment; ++i) seq += m.segment(i).name() == name ? 1u : 0u;
  std::string out = escape(name, d);
  out.push_back(d.component);
  out += std::to_string(seq);
  if (field > 0) {
    out.push_back(d.component);
    out += std::to_string(field);
  }
  return out;
}

}  // namespace

std::string_view to_string(ack_code c) noexcept {
  switch (c) {
    case ack_code::aa:
      return "AA";
    case ack_code::ae:
      return "AE";
    case ack_code::ar:
      return "AR";
  }
  return "AR";
}

std::string build_ack(const message& received, const ack_request& request,
                      const ack_options& options) {
  const delimiters d = received.delims();
  const segment_view& msh = received.msh();
  const std::string_view version = msh.field(12).component(1).raw();
  const bool v25 = version_at_least_2_5(version);
  segment_writer w(d);

  w.msh();
  w.raw(options.sending_application.empty() ? std::string(msh.field(5).raw())
                                            : escape(options.sending_application, d));
  w.raw(options.sending_facility.empty() ? std::string(msh.field(6).raw())
                                         : escape(options.sending_facility, d));
  w.raw(msh.field(3).raw());
  w.raw(msh.field(4).raw());
  w.field(request.timestamp);
  w.raw("");  // MSH-8 security
  {
    std::string type = "ACK";
    const std::string trigger = options.trigger.empty()
                                    ? std::string(msh.field(9).component(2).raw())
                                    : escape(options.trigger, d);
    const bool structure = options.structure == structure_mode::always ||
                           (options.structure == structure_mode::by_version && v25);
    if (!trigger.empty() || structure) {
      type.push_back(d.component);
      type += trigger;
    }
    if (structure) {
      type.push_back(d.component);
      type += "ACK";
    }
    w.raw(type);
  }
  w.field(request.control_id);
  const std::string_view processing = msh.field(11).raw();
  w.raw(processing.empty() ? std::string_view("P") : processing);
  w.raw(msh.field(12).raw());
  w.raw("").raw("");  // MSH-13 sequence, MSH-14 continuation
  w.field(options.accept_ack_type);
  if (options.echo_msh_16) {
    w.raw(msh.field(16).raw());
  } else {
    w.field(options.application_ack_type);
  }
  w.raw("");  // MSH-17 country
  w.raw(options.echo_charset ? msh.field(18).raw() : std::string_view{});
  w.raw("").raw("");  // MSH-19 language, MSH-20 alternate charset handling
  w.raw(options.echo_profile ? msh.field(21).raw() : std::string_view{});
  w.end(options.msh_min_fields);

  const bool accepted = request.code == ack_code::aa;
  w.begin("MSA").field(to_string(request.code)).raw(msh.field(10).raw());
  w.field(accepted ? std::string_view(options.accept_text)
                   : (options.text_in_msa_3 ? request.error_text : std::string_view{}));
  w.raw("").raw("");  // MSA-4 expected sequence, MSA-5 delayed ack type
  w.field(accepted ? std::string_view(options.accept_code)
                   : (options.code_in_msa_6 ? request.error_code : std::string_view{}));
  w.end(options.msa_min_fields);

  if (!accepted && options.err_segment) {
    const std::string loc = location(received, request.error_segment, request.error_field, d);
    w.begin("ERR");
    if (v25) {
      // ERR-2 error location (ERL), ERR-3 HL7 error code (CWE, table 0357), ERR-4 severity.
      w.raw("").raw(loc).components({request.error_code, request.error_text, "HL70357"}).field("E");
    } else {
      // 2.3.1: ERR-1 (ELD) segment^sequence^field^code&text&HL70357.
      std::string eld = loc;
      // The code is ELD component 4: pad the location (0, 2 or 3 components) to 3.
      const std::size_t separators = loc.empty() ? 0 : (request.error_field > 0 ? 2 : 1);
      for (std::size_t k = separators; k < 3; ++k) eld.push_back(d.component);
      eld += escape(request.error_code, d);
      eld.push_back(d.subcomponent != '\0' ? d.subcomponent : d.component);
      eld += escape(request.error_text, d);
      eld.push_back(d.subcomponent != '\0' ? d.subcomponent : d.component);
      eld += "HL70357";
      w.raw(eld);
    }
    w.end();
  }
  return w.take();
}

std::string build_ack(std::string_view received_text, const ack_request& request,
                      const ack_options& options) {
  message m;
  if (!parse_message(received_text, m)) return build_ack(m, request, options);
  // Nothing to echo: a bare header with the standard delimiters, so the peer gets an answer.
  static constexpr std::string_view bare = "MSH|^~\\&";
  message fallback;
  (void)parse_message(bare, fallback);
  return build_ack(fallback, request, options);
}

ack_decision decide_ack(const hl7_batch& batch) {
  ack_decision d;
  if (!batch.error) return d;
  const std::error_code e = batch.error;
  d.code = ack_code::ar;
  if (e.category() == message_category()) {
    d.error_code = e == message_error::too_many_segments ? "207" : "100";
  } else if (e == normalise_error::unknown_message_type) {
    d.error_code = "200";
  } else if (e == normalise_error::missing_control_id ||
             e == normalise_error::missing_message_type) {
    d.error_code = "101";
  } else {
    d.code = ack_code::ae;
    d.error_code = "207";
  }
  d.error_text = e.message();
  if (!batch.diagnostics.empty()) {
    d.error_segment = batch.diagnostics.front().segment_index;
    d.error_field = batch.diagnostics.front().field;
  }
  return d;
}

// ---- host replies ----

const std::error_category& response_category() noexcept {
  static const response_category_impl instance;
  return instance;
}

std::error_code make_error_code(response_error e) noexcept {
  return {static_cast<int>(e), response_category()};
}

bool response_report::usable() const noexcept {
  return std::none_of(problems.begin(), problems.end(),
                      [](const response_problem& p) { return p.fatal; });
}

bool response_report::accepted() const noexcept {
  return usable() && (ack_code == "AA" || ack_code == "CA");
}

bool order_reply::refused() const noexcept {
  return one_of(control, {"UA", "UC", "UD", "UF", "UH", "UM", "UR", "UX"});
}

response_report check_response(std::string_view text, const response_expectation& expect) {
  response_report r;
  auto problem = [&](response_error e, std::size_t seg, std::size_t field, bool fatal,
                     std::string detail = {}) {
    r.problems.push_back({e, seg, field, fatal, std::move(detail)});
  };
  message m;
  if (std::error_code ec = parse_message(text, m)) {
    problem(response_error::unparsable, 0, 0, true, ec.message());
    return r;
  }
  const segment_view& msh = m.msh();
  const delimiters& d = m.delims();
  auto is_response_type = [](std::string_view t) {
    return one_of(t, {"ACK", "RSP", "QCK", "ORL", "ORR", "DSR"});
  };
  // A host that drops a field before MSH-9 (hmis RSP^K11: empty MSH-7 and no MSH-8) moves every
  // later field one place back; read them from there so the rest of the report still makes sense.
  std::size_t shift = 0;
  if (!is_response_type(msh.field(9).component(1).raw()) &&
      is_response_type(msh.field(8).component(1).raw())) {
    shift = 1;
    problem(response_error::fields_shifted, 1, 9, true,
            "MSH-8 holds " + std::string(msh.field(8).raw()));
  }
  auto f = [&](std::size_t n) { return n >= 9 ? msh.field(n - shift) : msh.field(n); };
  r.message_type = f(9).raw();
  r.control_id = f(10).raw();
  const std::string_view code = f(9).component(1).raw();
  if (!shift && !is_response_type(code)) {
    problem(response_error::not_a_response, 1, 9, true, std::string(r.message_type));
  }
  const std::string_view trigger = f(9).component(2).raw();
  if (!expect.trigger.empty() && trigger != expect.trigger) {
    problem(response_error::wrong_trigger, 1, 9, false,
            "expected " + std::string(expect.trigger) + ", got " + std::string(trigger));
  }
  if (msh.field(7).empty()) problem(response_error::missing_timestamp, 1, 7, false);
  if (f(10).empty()) problem(response_error::missing_control_id, 1, 10, false);
  if (m.lf_terminated() && m.segment_count() > 1) {
    problem(response_error::lf_segment_separators, 0, 0, false);
  }
  {
    std::string_view t = text;
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    const char want = m.lf_terminated() ? '\n' : '\r';
    if (t.empty() || t.back() != want) {
      problem(response_error::unterminated_segment, m.segment_count(), 0, false);
    }
  }
  for (std::size_t n = 3; n <= msh.field_count() + shift; ++n) {
    const std::string_view v = f(n).raw();
    if (!v.empty() && std::all_of(v.begin(), v.end(), [&](char c) {
          return c == d.component || c == d.repetition || c == d.subcomponent;
        })) {
      problem(response_error::stray_delimiters, 1, n, false, std::string(v));
    }
  }
  if (!f(15).empty()) problem(response_error::ack_type_on_response, 1, 15, false);
  if (!f(16).empty()) problem(response_error::ack_type_on_response, 1, 16, false);
  if (!expect.application.empty() && msh.field(5).component(1).raw() != expect.application) {
    problem(response_error::wrong_receiver, 1, 5, false, std::string(msh.field(5).raw()));
  }
  if (!expect.profile.empty()) {
    const value_view p = f(21).repetition(0);
    std::string got(p.component(1).raw());
    got.push_back('^');
    got += p.component(2).raw();
    if (got != expect.profile) {
      problem(response_error::wrong_profile, 1, 21, false, std::string(p.raw()));
    }
  }

  if (const auto msa = m.find("MSA")) {
    const segment_view& s = m.segment(*msa);
    const std::size_t seg = *msa + 1;
    r.ack_code = s.field(1).raw();
    r.acknowledged_id = s.field(2).raw();
    r.text = s.field(3).raw();
    r.error_code = s.field(6).raw();
    if (!one_of(r.ack_code, {"AA", "AE", "AR", "CA", "CE", "CR"})) {
      problem(response_error::bad_ack_code, seg, 1, true, std::string(r.ack_code));
    }
    if (r.acknowledged_id.empty()) {
      problem(response_error::missing_acknowledged_id, seg, 2, true);
    } else if (!expect.control_id.empty() && r.acknowledged_id != expect.control_id) {
      problem(response_error::id_mismatch, seg, 2, true, std::string(r.acknowledged_id));
    }
  } else {
    problem(response_error::missing_msa, 0, 0, true);
  }
  if (r.error_code.empty()) {
    if (const auto err = m.find("ERR")) {
      const segment_view& s = m.segment(*err);
      r.error_code = s.field(3).component(1).raw();
      if (r.error_code.empty()) r.error_code = s.field(1).component(4).subcomponent(1).raw();
    }
  }

  for (std::size_t i = 0; i < m.segment_count(); ++i) {
    const segment_view& orc = m.segment(i);
    if (orc.is("ORC")) r.orders.push_back({orc.field(1).raw(), orc.field(2).component(1).raw()});
  }

  if (code == "RSP" || code == "QCK") {
    if (const auto qak = m.find("QAK")) {
      const segment_view& s = m.segment(*qak);
      r.query_status = s.field(2).raw();
      if (!one_of(r.query_status, {"OK", "NF", "AE", "AR"})) {
        problem(response_error::bad_query_status, *qak + 1, 2, false, std::string(r.query_status));
      }
      if (!expect.query_tag.empty() && s.field(1).raw() != expect.query_tag) {
        problem(response_error::tag_mismatch, *qak + 1, 1, false, std::string(s.field(1).raw()));
      }
    } else {
      problem(response_error::missing_qak, 0, 0, false);
    }
    if (const auto qpd = m.find("QPD")) {
      const segment_view& s = m.segment(*qpd);
      if (!expect.query_tag.empty() && s.field(2).raw() != expect.query_tag) {
        problem(response_error::tag_mismatch, *qpd + 1, 2, false, std::string(s.field(2).raw()));
      }
      if (!expect.qpd_3.empty() && s.field(3).component(1).raw() != expect.qpd_3) {
        problem(response_error::qpd_mismatch, *qpd + 1, 3, false, std::string(s.field(3).raw()));
      }
    }
  }
  return r;
}

}  // namespace interfaced::hl7
