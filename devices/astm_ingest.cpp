#include "devices/astm_ingest.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <utility>

#include "parsers/number.hpp"
#include "parsers/text.hpp"

namespace interfaced::devices {

const char* astm_frame_code(const std::error_code& e) noexcept {
  if (e.category() != astm::frame_category()) return "ASTM-020";
  switch (static_cast<astm::frame_error>(e.value())) {
    case astm::frame_error::bad_checksum: return "ASTM-012";
    case astm::frame_error::checksum_not_hex: return "ASTM-013";
    case astm::frame_error::bad_frame_number: return "ASTM-014";
    case astm::frame_error::frame_too_long: return "ASTM-015";
    case astm::frame_error::restricted_character: return "ASTM-016";
    case astm::frame_error::interrupted: return "ASTM-017";
    case astm::frame_error::ok: break;
  }
  return "ASTM-020";
}

const char* astm_record_code(const std::error_code& e) noexcept {
  if (e.category() != astm::record_category()) return "ASTM-039";
  switch (static_cast<astm::record_error>(e.value())) {
    case astm::record_error::no_header: return "ASTM-031";
    case astm::record_error::bad_delimiters: return "ASTM-032";
    case astm::record_error::empty_record: return "ASTM-033";
    case astm::record_error::unknown_record_type: return "ASTM-034";
    case astm::record_error::bad_escape: return "ASTM-035";
    case astm::record_error::out_of_order: return "ASTM-036";
    case astm::record_error::too_many_records: return "ASTM-037";
    case astm::record_error::not_text: return "ASTM-038";
    case astm::record_error::lenient_delimiters: return "ASTM-030";
    case astm::record_error::ok: break;
  }
  return "ASTM-039";
}

astm_ingest::astm_ingest(const devices::profile_catalog* catalog,
                         const devices::device_profile* forced, std::string device,
                         astm::link_options options)
    : catalog_(catalog),
      forced_(forced),
      device_(std::move(device)),
      link_(options),
      max_pending_(options.max_message_bytes) {}

namespace {

// End of the first L record in text (just past its terminator), or npos. The search starts at
// `from`, a record start before which text holds no L record; on npos, `from` is moved to the start
// of the last record looked at (it may still grow), so the next search over the same text plus
// more bytes goes on from there. Before: every frame re-scanned the whole message held so far
// (callgrind, bench_astm: end_of_terminator 46 % of all instructions, quadratic in records per
// message).
// The starts of the H records it passes are appended to h_starts (once each, though the last
// record is looked at again by the next search): they are where astm::split_messages would cut
// the text up to the end returned, so the message is not scanned once more for them (split_messages
// on every delivered message was ~4 % of bench_astm).
std::size_t end_of_terminator(std::string_view text, std::size_t& from, std::vector<std::size_t>& h_starts) {
  std::size_t pos = from;
  while (pos < text.size()) {
    from = pos;
    std::size_t end = find_line_end(text, pos);
    const bool last = end == text.size();
    const std::string_view rec = text.substr(pos, end - pos);
    if (!rec.empty() && (rec[0] == 'H' || rec[0] == 'h') && (h_starts.empty() || h_starts.back() < pos))
      h_starts.push_back(pos);
    if (!rec.empty() && (rec[0] == 'L' || rec[0] == 'l') && (rec.size() == 1 || !std::isalnum(static_cast<unsigned char>(rec[1])))) {
      while (end < text.size() && (text[end] == '\r' || text[end] == '\n')) ++end;
      return end;
    }
    if (last) break;
    pos = end + 1;
  }
  return std::string_view::npos;
}

// The options a message is read with: its profile's, else LIS02-A2's defaults.
const astm::astm_options& options_of(const devices::device_profile* profile) {
  static const astm::astm_options defaults{};
  return profile ? profile->astm : defaults;
}

}  // namespace

void astm_ingest::collect(std::string_view text, std::uint64_t offset) {
  if (pending_.empty()) pending_offset_ = offset;
  if (pending_.size() + text.size() > max_pending_) {
    problems_.push_back({pending_offset_, "message longer than " + std::to_string(max_pending_) +
                                              " bytes without an L record: discarded [ASTM-001]"});
    pending_.clear();
    restart_scan();
    return;
  }
  if (pending_.empty()) {
    // Nothing held: the messages these records complete are read where they are, and only what
    // follows the last L is kept (appending every delivered message to pending_ first, growing
    // it, then erasing it, was ~2 % of bench_astm). The same steps as below with before == 0.
    std::string_view rest = text;
    std::size_t end = end_of_terminator(rest, scanned_, h_starts_);
    if (link_.awaiting_confirmation() && end != std::string_view::npos) {
      rollback_.clear();
      rollback_offset_ = pending_offset_;
    }
    while (end != std::string_view::npos) {
      handle_message_text(rest.substr(0, end), pending_offset_, &h_starts_);
      rest.remove_prefix(end);
      pending_offset_ += end;
      restart_scan();
      end = end_of_terminator(rest, scanned_, h_starts_);
    }
    pending_.assign(rest);  // scanned_ and h_starts_ are positions in rest, now in pending_
    return;
  }
  const std::size_t before = pending_.size();
  // At least 1 KB at the first growth (records sent one per frame grew pending_ from empty a
  // doubling at a time, each a reallocation and copy: ~2 % of bench_astm).
  if (const std::size_t need = before + text.size(); need > pending_.capacity())
    pending_.reserve(std::max({need, 2 * pending_.capacity(), std::size_t{1024}}));
  pending_.append(text);
  // Deferred ACK: keep what preceded this end frame, so a NAK (confirm(false)) can be undone.
  if (link_.awaiting_confirmation() && end_of_terminator(pending_, scanned_, h_starts_) != std::string_view::npos) {
    rollback_.assign(pending_, 0, before);
    rollback_offset_ = pending_offset_;
  }
  drain(false);
}

void astm_ingest::restart_scan() {
  scanned_ = 0;
  h_starts_.clear();
}

astm::link_actions astm_ingest::confirm(bool durable) {
  if (!link_.awaiting_confirmation()) return {};
  if (!durable) {
    pending_ = std::move(rollback_);
    pending_offset_ = rollback_offset_;
    restart_scan();
  }
  rollback_.clear();
  return link_.confirm_delivery(durable);
}

void astm_ingest::drain(bool end_of_session) {
  for (;;) {
    const std::size_t end = end_of_terminator(pending_, scanned_, h_starts_);
    if (end == std::string_view::npos) break;
    handle_message_text(std::string_view(pending_).substr(0, end), pending_offset_, &h_starts_);
    pending_.erase(0, end);
    pending_offset_ += end;
    restart_scan();
  }
  if (end_of_session && !pending_.empty()) {
    if (pending_.find_first_not_of("\r\n") != std::string::npos) {
      problems_.push_back({pending_offset_, "message ended without an L record (line released); its records were still read [ASTM-002]"});
      // The search above went to the end of pending_ (no L): h_starts_ holds every H in it.
      handle_message_text(pending_, pending_offset_, &h_starts_);
    }
    pending_.clear();
    restart_scan();
  }
}

void astm_ingest::finish() { drain(true); }

astm::link_actions astm_ingest::feed(std::string_view bytes) {
  astm::link_actions all;
  // Room for the actions of these bytes made once: growing the list moved every action so far (a
  // link_action is three strings), 0.31 M of 3.68 M instructions per pass of bench_astm, which
  // feeds whole captures. A received frame gives two or three actions (ACK, timer, deliver);
  // frames of the captures average ~300 bytes, but some send one record per frame (30-60 bytes:
  // Vitros, cobas c111, Pentra), hence one action per 16 bytes. Bounded, so one large read never
  // reserves more than some 80 KB of actions up front (a read that gives more grows the list).
  all.reserve(std::min<std::size_t>(bytes.size() / 16 + 4, 512));
  while (!bytes.empty()) {
    const astm::put_result r = decoder_.put(bytes);
    bytes.remove_prefix(r.consumed);
    if (r.event.kind == astm::event_kind::none) {
      if (r.consumed == 0) break;  // defensive: a decoder that makes no progress must not spin
      continue;
    }
    if (r.event.kind == astm::event_kind::frame) {
      ++frames_;
      if (!in_message_) {
        in_message_ = true;
        message_start_ = r.event.offset;
      }
    }
    if (r.event.kind == astm::event_kind::error) {
      std::string what = r.event.error.message();
      if (r.event.frame_number_hint >= 0) what += " (frame number " + std::to_string(r.event.frame_number_hint) + ")";
      problems_.push_back({r.event.offset, what + " [" + astm_frame_code(r.event.error) + "]"});
    }
    // One list for the whole feed: the link appends to it (no vector per event).
    const std::size_t first = all.size();
    link_.on_event(r.event, all);
    handle_actions(all, first, r.event.offset);
    if (r.event.kind == astm::event_kind::eot) drain(true);
  }
  return all;
}

astm::link_actions astm_ingest::timeout(astm::timer_id t) {
  astm::link_actions acts = link_.on_timeout(t);
  handle_actions(acts, 0, decoder_.offset());
  return acts;
}

void astm_ingest::handle_actions(astm::link_actions& actions, std::size_t first, std::uint64_t offset) {
  using kind = astm::link_action::kind;
  bool confirm_now = false;
  for (std::size_t i = first; i < actions.size(); ++i) {
    const astm::link_action& a = actions[i];
    switch (a.what) {
      case kind::deliver: {
        const std::size_t before = messages_.size();
        collect(a.message, message_start_);
        in_message_ = false;
        // Deferred ACK: an end frame that completes no H..L message has nothing to persist.
        if (link_.awaiting_confirmation() && messages_.size() == before) confirm_now = true;
        break;
      }
      case kind::discarded:
        problems_.push_back({offset, "incomplete message discarded: " + a.reason + " [ASTM-021]"});
        in_message_ = false;
        break;
      case kind::frame_rejected:
        // -1: the frame was too damaged to read its number; a technician must not see "frame -1".
        problems_.push_back({offset, (a.frame_number >= 0 ? "frame " + std::to_string(a.frame_number)
                                                          : std::string("a frame (number unreadable)")) +
                                         " rejected (NAK): " + a.reason + " [" + astm_frame_code(a.error) + "]"});
        break;
      default:
        break;
    }
  }
  if (confirm_now) {
    rollback_.clear();
    link_.confirm_delivery(true, actions);
  }
}

void astm_ingest::feed_records(std::string_view text, std::uint64_t base_offset) {
  handle_message_text(text, base_offset);
}

void astm_ingest::handle_message_text(std::string_view text, std::uint64_t offset,
                                      const std::vector<std::size_t>* h_starts) {
  const std::vector<std::size_t> split = h_starts ? std::vector<std::size_t>{} : astm::split_messages(text);
  const std::vector<std::size_t>& starts = h_starts ? *h_starts : split;
  if (starts.empty()) {
    problems_.push_back({offset, "no H record: expected a message starting with \"H\" and its delimiters [ASTM-022]"});
    return;
  }
  if (starts.front() != 0) {
    problems_.push_back({offset, std::to_string(starts.front()) + " bytes before the first H record ignored [ASTM-023]"});
  }
  for (std::size_t i = 0; i < starts.size(); ++i) {
    const std::size_t end = i + 1 < starts.size() ? starts[i + 1] : text.size();
    const std::string_view part = text.substr(starts[i], end - starts[i]);
    const astm::message m = astm::parse_message(part);
    // H.5 read once: for the profile, the device name and the batch.
    std::string sender = astm::header_sender(m);
    const devices::device_profile* profile = forced_;
    if (profile == nullptr && catalog_ != nullptr) profile = catalog_->detect(sender);
    astm_message_out out;
    out.profile = profile;
    out.offset = offset + starts[i];
    out.text = std::string(part);
    // Reported device: the configured id; in replay the profile id, else the H.5 sender name.
    std::string device = device_;
    if (device.empty() && profile != nullptr) device = profile->id;
    if (device.empty()) device = sender.substr(0, sender.find('^'));
    if (device.empty()) device = "unknown";
    out.batch = astm::normalise(m, options_of(profile), device, std::move(sender));
    for (const auto& d : out.batch.diagnostics) {
      // A leniency the profile declares is a warning; without the profile it is a problem.
      const bool warning = d.error == astm::record_error::lenient_delimiters && profile != nullptr &&
                           profile->has_leniency("doubled_repeat_in_header");
      problems_.push_back({out.offset + d.byte_offset,
                           "record " + std::to_string(d.record_index) + ": " + d.error.message() +
                               (d.detail.empty() ? "" : ": " + d.detail) + " [" + astm_record_code(d.error) + "]",
                           warning});
    }
    // A message of printable ASCII without escapes cannot give a value with a control character:
    // looking through every sample id, value and unit for one was ~0.08 M of 2.59 M instructions
    // per pass of bench_astm.
    if (!m.printable_ascii) scrub_control_characters(out.batch.results, out.offset, problems_);
    warn_missing_sample_ids(m, out);
    messages_.push_back(std::move(out));
  }
}

namespace {

std::string place(const astm::field_ref& r) {
  return std::string(1, r.record) + "." + std::to_string(r.field) +
         (r.component > 0 ? "." + std::to_string(r.component) : "");
}

std::string places(const std::vector<astm::field_ref>& refs) {
  std::string s;
  for (const auto& r : refs) s += (s.empty() ? "" : ", ") + place(r);
  return s;
}

}  // namespace

void scrub_control_characters(std::vector<result>& results, std::uint64_t offset, std::vector<ingest_problem>& problems) {
  for (auto& r : results) {
    for (auto [field, name] : {std::pair{&r.sample_id, "sample id"}, std::pair{&r.value, "value"}, std::pair{&r.unit, "unit"}}) {
      const int c = remove_control_characters(*field);
      if (c < 0) continue;
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(c)));
      problems.push_back({r.where.byte_offset ? r.where.byte_offset : offset,
                          "record " + std::to_string(r.where.record_index) + ", sample " + (r.sample_id.empty() ? std::string("(none)") : r.sample_id) + ", test " + r.code +
                              ": control character " + hex + " in its " + name + " removed (now \"" + *field +
                              "\") [DATA-001]",
                          true});
      // Only a value that lost a control character is read again as a number ("5\0.0" -> 5.0);
      // the others keep what the normaliser read.
      if (field == &r.value && !r.numeric) r.numeric = parse_number(r.value);
    }
  }
}

// A result without a sample id is forwarded once and flagged (model.hpp); the technician learns
// which records lacked it and, when another known profile reads one there, which profile to set.
void astm_ingest::warn_missing_sample_ids(const astm::message& m, const astm_message_out& out) {
  std::string records;
  std::vector<std::size_t> missing;
  for (const auto& r : out.batch.results) {
    if (!r.sample_id_missing()) continue;
    missing.push_back(r.where.record_index);
    records += (records.empty() ? "" : ", ") + std::to_string(r.where.record_index);
  }
  if (missing.empty()) return;
  const astm::astm_options& used = options_of(out.profile);
  std::string what = "no sample id in record" + std::string(missing.size() > 1 ? "s " : " ") + records + " (looked in " +
                     places(used.sample_id_from) + "): forwarded once each, flagged sample_id_missing, never " +
                     "matched to a waiting list nor taken for a rerun or duplicate";
  // Known profiles that would find it, each with the field that holds it (H.5 did not name one,
  // or this one looks elsewhere): "profile \"euroimmun-analyzer1\" reads it from P.4". Each
  // distinct place the profiles name is tried once, with the options this message was read with
  // (the profiles share a handful of places: one look per place, not per profile and place).
  std::string found;
  if (catalog_ != nullptr) {
    struct tried {
      astm::field_ref ref;
      bool finds = false;
    };
    std::vector<tried> places_tried;
    auto finds = [&](const astm::field_ref& ref) {
      for (const auto& t : places_tried)
        if (t.ref.record == ref.record && t.ref.field == ref.field && t.ref.component == ref.component) return t.finds;
      // Only the sample id at that place, not a whole normalise per place (callgrind,
      // bench_astm: re-normalising was 12 % of all instructions).
      const bool f = astm::finds_sample_id(m, used, ref, missing);
      places_tried.push_back({ref, f});
      return f;
    };
    for (const auto& p : catalog_->all()) {
      if (p.protocol != "astm" || &p == out.profile) continue;
      for (const auto& ref : p.astm.sample_id_from) {
        if (!finds(ref)) continue;
        found += (found.empty() ? "" : ", ") + ("profile \"" + p.id + "\" reads it from " + place(ref));
        break;
      }
    }
  }
  if (!found.empty()) what += "; " + found + ": configure the analyser's profile on the device";
  problems_.push_back({out.offset, what + " [ASTM-040]", true});
}

std::vector<astm_message_out> astm_ingest::take_messages() { return std::exchange(messages_, {}); }
std::vector<ingest_problem> astm_ingest::take_problems() { return std::exchange(problems_, {}); }

}  // namespace interfaced::devices
