#include "daemon/sim/analyser_sim.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <utility>

#include "parsers/astm/frame_decoder.hpp"
#include "parsers/astm/link.hpp"
#include "parsers/astm/records.hpp"
#include "devices/hl7_ingest.hpp"
#include "parsers/hl7/message.hpp"
#include "parsers/hl7/mllp.hpp"

namespace interfaced::sim {

namespace {

// Cut text at every H record (astm::split_messages); text before the first H is not part of a
// message, as in replay.
void cut_astm(std::string_view text, std::vector<std::string>& out) {
  const std::vector<std::size_t> starts = astm::split_messages(text);
  for (std::size_t i = 0; i < starts.size(); ++i) {
    const std::size_t end = i + 1 < starts.size() ? starts[i + 1] : text.size();
    std::string_view part = text.substr(starts[i], end - starts[i]);
    std::string msg;
    msg.reserve(part.size());
    // Records end with CR on the wire; LF may not appear in frame text (LIS1-A 6.6).
    for (std::size_t p = 0; p < part.size();) {
      const std::size_t e = part.find_first_of("\r\n", p);
      const std::string_view rec = part.substr(p, e == std::string_view::npos ? std::string_view::npos : e - p);
      if (!rec.empty()) {
        msg.append(rec);
        msg.push_back('\r');
      }
      if (e == std::string_view::npos) break;
      p = e + 1;
    }
    if (!msg.empty()) out.push_back(std::move(msg));
  }
}

// The texts the analyser sent, recovered the way replay reads a frame capture: a lenient link
// (frames without ENQ accepted) so NAKed and repeated frames count once.
std::string astm_texts_from_frames(std::string_view bytes) {
  astm::frame_decoder dec;
  astm::link_options lo;
  lo.accept_frames_without_enq = true;
  astm::link l(lo);
  std::string all;
  while (!bytes.empty()) {
    const astm::put_result r = dec.put(bytes);
    bytes.remove_prefix(r.consumed);
    if (r.event.kind == astm::event_kind::none) {
      if (r.consumed == 0) break;
      continue;
    }
    for (const auto& a : l.on_event(r.event))
      if (a.what == astm::link_action::kind::deliver) all += a.message;
  }
  return all;
}

}  // namespace

std::optional<sim_script> make_sim_script(devices::capture_kind kind, const std::string& bytes,
                                          std::optional<sim_protocol> forced) {
  using devices::capture_kind;
  if (kind == capture_kind::unknown && forced) {
    kind = *forced == sim_protocol::astm ? capture_kind::astm_records : capture_kind::hl7_segments;
  }
  sim_script s;
  switch (kind) {
    case capture_kind::astm_frames:
      s.protocol = sim_protocol::astm;
      cut_astm(astm_texts_from_frames(bytes), s.messages);
      break;
    case capture_kind::astm_records:
      s.protocol = sim_protocol::astm;
      cut_astm(bytes, s.messages);
      break;
    case capture_kind::hl7_mllp: {
      s.protocol = sim_protocol::hl7;
      hl7::mllp_decoder dec;
      std::string_view rest(bytes);
      while (!rest.empty()) {
        const hl7::mllp_put_result r = dec.put(rest);
        rest.remove_prefix(r.consumed);
        if (r.event.kind == hl7::mllp_event_kind::message) s.messages.emplace_back(r.event.message);
        if (r.event.kind == hl7::mllp_event_kind::none && r.consumed == 0) break;
      }
      break;
    }
    case capture_kind::hl7_segments: {
      s.protocol = sim_protocol::hl7;
      // Messages start at each MSH segment; segments end with CR on the wire.
      std::string current;
      std::string_view text(bytes);
      for (std::size_t p = 0; p < text.size();) {
        const std::size_t e = text.find_first_of("\r\n", p);
        const std::string_view seg = text.substr(p, e == std::string_view::npos ? std::string_view::npos : e - p);
        if (!seg.empty()) {
          if (seg.starts_with("MSH") && !current.empty()) s.messages.push_back(std::exchange(current, {}));
          if (seg.starts_with("MSH") || !current.empty()) {
            current.append(seg);
            current.push_back('\r');
          }
        }
        if (e == std::string_view::npos) break;
        p = e + 1;
      }
      if (!current.empty()) s.messages.push_back(std::move(current));
      break;
    }
    case capture_kind::unknown:
      return std::nullopt;
  }
  if (forced && *forced != s.protocol) return std::nullopt;
  if (s.protocol == sim_protocol::hl7) {
    // Only the analyser's side is played (issue: a real HL7 server got the host's QCK / DSR as
    // messages for unknown control ids); what is left out is counted by type.
    std::erase_if(s.messages, [&s](const std::string& m) {
      const devices::hl7_role role = devices::role_of(m);
      if (!role.from_host && !role.reply) return false;
      std::string type = "?";
      hl7::message parsed;
      if (!hl7::parse_message(m, parsed)) type = std::string(parsed.msh().field(9).raw());
      const auto it = std::find_if(s.skipped.begin(), s.skipped.end(), [&](const auto& k) { return k.first == type; });
      if (it == s.skipped.end()) s.skipped.emplace_back(type, 1);
      else ++it->second;
      return true;
    });
  }
  return s;
}

std::string describe_skipped(const sim_script& script) {
  std::size_t n = 0;
  std::string kinds;
  for (const auto& [type, count] : script.skipped) {
    n += count;
    kinds += (kinds.empty() ? "" : ", ") + type + (count > 1 ? " x" + std::to_string(count) : "");
  }
  if (n == 0) return {};
  return std::to_string(n) + " message" + (n == 1 ? "" : "s") + " not played (the host's side and replies): " + kinds;
}

std::optional<sim_script> load_sim_script(const std::filesystem::path& file, std::optional<sim_protocol> forced,
                                          std::string& why) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    why = file.string() + ": cannot read the file";
    return std::nullopt;
  }
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const devices::capture_input cap = devices::decode_capture(bytes);
  auto script = make_sim_script(cap.kind, cap.bytes, forced);
  if (!script || script->messages.empty()) {
    const std::string skipped = script ? describe_skipped(*script) : std::string();
    why = file.string() + ": no message to play (" + cap.description + (skipped.empty() ? "" : "; " + skipped) + ")";
    return std::nullopt;
  }
  script->description = cap.description;
  return script;
}

}  // namespace interfaced::sim
