#include "devices/hl7_ingest.hpp"

#include "parsers/hl7/builders.hpp"

#include <algorithm>
#include <utility>

#include "parsers/hl7/ack.hpp"
#include "parsers/hl7/message.hpp"
#include "parsers/hl7/mllp.hpp"
#include "parsers/hl7/normalise.hpp"

namespace interfaced::devices {
namespace {

// Where each message starts in bare segment text: at every "MSH" that begins a segment.
std::vector<std::size_t> message_starts(std::string_view text) {
  std::vector<std::size_t> starts;
  for (std::size_t pos = 0; pos < text.size();) {
    if (text.substr(pos, 3) == "MSH") starts.push_back(pos);
    const std::size_t end = text.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) break;
    pos = text.find_first_not_of("\r\n", end);
    if (pos == std::string_view::npos) break;
  }
  return starts;
}

// MSH-3's first component, read with the message's own delimiters (MSH-1 and MSH-2).
std::string sending_application(std::string_view msg) {
  if (msg.size() < 8) return {};  // shorter than "MSH|^~\&": no MSH-3 to read
  const std::string_view app = hl7::sender_of(msg).application;
  return std::string(app.substr(0, app.find(msg[4])));
}

}  // namespace

std::string warning_code(const std::error_code& e) {
  // HL7-1NN, NN = the normalise_error value: stable as long as that enum is (values are never reused).
  const int n = 100 + (e.category() == hl7::normalise_category() ? e.value() : 99);
  return "HL7-" + std::to_string(n);
}

std::string hl7_ingest::suggest_profile(std::string_view bytes, const device_profile* used,
                                        const hl7::hl7_batch& batch) const {
  const std::string_view type = batch.message_type;
  if (catalog_ == nullptr || !(type.starts_with("ORU") || type.starts_with("OUL"))) return {};
  const bool no_results = batch.results.empty();
  std::size_t missing = 0;
  for (const auto& r : batch.results) if (r.sample_id_missing()) ++missing;
  const bool wanted = std::any_of(batch.diagnostics.begin(), batch.diagnostics.end(), [](const hl7::hl7_diagnostic& d) {
    return d.error == hl7::normalise_error::missing_sample_id || d.error == hl7::normalise_error::no_results;
  });
  if (!wanted || (!no_results && missing == 0)) return {};
  // Each other HL7 profile once: does it read results here (none were), or sample ids for the
  // results that had none?
  std::string found;
  for (const auto& p : catalog_->all()) {
    if (p.protocol != "hl7" || &p == used) continue;
    const hl7::hl7_batch b = hl7::normalise(bytes, p.hl7, "");
    if (b.error) continue;
    std::size_t with_id = 0;
    for (const auto& r : b.results) if (!r.sample_id_missing()) ++with_id;
    std::string what;
    if (no_results && !b.results.empty()) {
      what = std::to_string(b.results.size()) + " result(s)";
    } else if (!no_results && missing > 0 && b.results.size() == batch.results.size() &&
               with_id > batch.results.size() - missing) {
      std::string places;
      for (const auto& ref : p.hl7.sample_id_from)
        places += (places.empty() ? "" : ", ") + ref.segment + "-" + std::to_string(ref.field);
      what = "the sample id from " + places;
    }
    if (!what.empty()) found += (found.empty() ? "" : ", ") + ("profile \"" + p.id + "\" reads " + what);
  }
  if (found.empty()) return {};
  return "; " + found + ": configure the analyser's profile on the device";
}

hl7_role role_of(std::string_view code, std::string_view trigger) noexcept {
  if (code == "ACK") {
    // The analyser acknowledges what the host started: a DSR^Q03 download, an OML^O33 / ORM^O01 order.
    const bool answers_host = trigger == "Q03" || trigger == "O33" || trigger == "O01";
    return {!answers_host, true};
  }
  if (code == "QCK" || code == "RSP") return {true, true};
  if (code == "ORL") return {false, true};
  if (code == "DSR" || code == "OML" || code == "ORM") return {true, false};
  return {false, false};
}

hl7_role role_of(std::string_view text) {
  hl7::message m;
  if (hl7::parse_message(text, m)) return {};
  const auto type = m.msh().field(9);
  return role_of(type.component(1).decode(), type.component(2).decode());
}

hl7_ingest::hl7_ingest(const devices::profile_catalog* catalog,
                       const devices::device_profile* forced, std::string device)
    : catalog_(catalog), forced_(forced), device_(std::move(device)) {}

void hl7_ingest::feed(std::string_view bytes) {
  hl7::mllp_decoder decoder;
  auto handle = [&](const hl7::mllp_event& ev) {
    switch (ev.kind) {
      case hl7::mllp_event_kind::message:
        (void)handle_message(ev.message, ev.offset);
        break;
      case hl7::mllp_event_kind::skipped:
      case hl7::mllp_event_kind::error:
        problems_.push_back({ev.offset, "MLLP: " + ev.error.message() +
                                            (ev.length ? " (" + std::to_string(ev.length) + " bytes)" : "") + " [MLLP-002]"});
        break;
      case hl7::mllp_event_kind::none:
        break;
    }
  };
  while (!bytes.empty()) {
    const auto r = decoder.put(bytes);
    bytes.remove_prefix(r.consumed);
    handle(r.event);
    if (r.event.kind == hl7::mllp_event_kind::none && r.consumed == 0) break;
  }
  handle(decoder.finish());
}

void hl7_ingest::feed_segments(std::string_view text, std::uint64_t base_offset) {
  const auto starts = message_starts(text);
  if (starts.empty()) {
    problems_.push_back({base_offset, "no MSH segment: expected an HL7 message starting with MSH [HL7-001]"});
    return;
  }
  for (std::size_t i = 0; i < starts.size(); ++i) {
    const std::size_t end = i + 1 < starts.size() ? starts[i + 1] : text.size();
    (void)handle_message(text.substr(starts[i], end - starts[i]), base_offset + starts[i]);
  }
}

hl7::hl7_diagnostic hl7_ingest::feed_message(std::string_view bytes, std::uint64_t offset) {
  return handle_message(bytes, offset);
}

hl7::hl7_diagnostic hl7_ingest::handle_message(std::string_view bytes, std::uint64_t offset) {
  static const hl7::hl7_options defaults{};
  const std::string sender = sending_application(bytes);
  const devices::device_profile* profile = forced_;
  if (profile == nullptr && catalog_ != nullptr) profile = catalog_->detect(sender, "hl7");
  // Reported device: the configured id; in replay the profile id, else MSH-3 (sending application).
  std::string device = device_.empty() && profile ? profile->id : device_;
  if (device.empty()) device = sender;
  if (device.empty()) device = "unknown";
  source_location where;
  where.byte_offset = static_cast<std::size_t>(offset);
  hl7::hl7_batch batch = hl7::normalise(bytes, profile ? profile->hl7 : defaults, device, where);
  // Host-side replies in a capture (ACK, RSP, QCK, DSR...) are checked against HL7, not
  // forwarded: a malformed one is named precisely (captures/hl7/SOURCES.md has both kinds).
  if (bytes.find("\rMSA|") != std::string_view::npos || bytes.find("\nMSA|") != std::string_view::npos) {
    const hl7::response_report rep = hl7::check_response(bytes);
    hl7_reply_info info;
    info.message_type = std::string(rep.message_type);
    info.control_id = std::string(rep.control_id);
    info.ack_code = std::string(rep.ack_code);
    info.acknowledged_id = std::string(rep.acknowledged_id);
    info.error_code = std::string(rep.error_code);
    info.query_status = std::string(rep.query_status);
    info.usable = rep.usable();
    info.role = role_of(bytes);
    // A message with MSA whose MSH-9 names no known kind (or cannot be read, a shifted MSH): the
    // host's reply, as every such message was taken before.
    if (!info.role.from_host && !info.role.reply) info.role = {true, true};
    for (const auto& o : rep.orders)
      if (o.refused()) info.refused_orders.push_back(std::string(o.placer) + " (" + std::string(o.control) + ")");
    for (const auto& pr : rep.problems) {
      std::string place = pr.segment_index ? "segment " + std::to_string(pr.segment_index) : std::string("message");
      if (pr.field) place += ", field " + std::to_string(pr.field);
      const std::string text = place + ": " + pr.error.message() + (pr.detail.empty() ? "" : ": " + pr.detail);
      info.findings.push_back(text);
      problems_.push_back({offset, "host reply " + info.message_type + ": " + text + " [HL7-002]", !pr.fatal});
    }
    hl7_message_out out;
    out.control_id = info.control_id;
    out.message_type = info.message_type;
    out.offset = offset;
    out.reply = std::move(info);
    messages_.push_back(std::move(out));
    return {};
  }
  if (batch.error) {
    std::string place;
    if (!batch.diagnostics.empty()) {
      const auto& d = batch.diagnostics.front();
      place = "segment " + std::to_string(d.segment_index) + (d.field ? ", field " + std::to_string(d.field) : "") + ": ";
    }
    problems_.push_back({offset, place + batch.error.message() +
                                     (batch.diagnostics.empty() || batch.diagnostics.front().detail.empty()
                                          ? ""
                                          : ": " + batch.diagnostics.front().detail) +
                                     " [" + warning_code(batch.error) + "]"});
    if (!batch.diagnostics.empty()) return batch.diagnostics.front();
    return {batch.error, 1, 0, {}};
  }
  if (batch.ignored) {
    hl7_message_out out;
    out.control_id = batch.control_id;
    out.message_type = batch.message_type;
    out.offset = offset;
    out.note = "carries no results (" + batch.message_type + "): not forwarded";
    messages_.push_back(std::move(out));
    return {};
  }
  // Warnings (a skipped OBX, no sample id, a message that gave no result): logged with their
  // code and place, so an acknowledged message never loses a result without a word. A result or a
  // sample id this message's profile missed but another known profile reads is named with it.
  scrub_control_characters(batch.results, offset, problems_);
  const std::string suggestion = suggest_profile(bytes, profile, batch);
  for (const auto& d : batch.diagnostics) {
    const bool suggest = d.error == hl7::normalise_error::missing_sample_id || d.error == hl7::normalise_error::no_results;
    problems_.push_back({offset, "segment " + std::to_string(d.segment_index) +
                                     (d.field ? ", field " + std::to_string(d.field) : "") + ": " +
                                     d.error.category().name() + ":" + std::to_string(d.error.value()) + " " +
                                     d.error.message() + (d.detail.empty() ? "" : ": " + d.detail) +
                                     (suggest ? suggestion : std::string()) + " [" + warning_code(d.error) + "]",
                         true});
  }
  hl7_message_out out;
  out.profile = profile;
  out.results = std::move(batch.results);
  out.queries = std::move(batch.queries);
  out.orders = std::move(batch.orders);
  out.control_id = batch.control_id;
  out.message_type = batch.message_type;
  out.offset = offset;
  messages_.push_back(std::move(out));
  return {};
}

std::vector<hl7_message_out> hl7_ingest::take_messages() { return std::exchange(messages_, {}); }
std::vector<ingest_problem> hl7_ingest::take_problems() { return std::exchange(problems_, {}); }

}  // namespace interfaced::devices
