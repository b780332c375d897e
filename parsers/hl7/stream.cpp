#include "parsers/hl7/stream.hpp"

namespace interfaced::hl7 {

std::vector<stream_item> normalise_stream(std::string_view bytes, const hl7_options& options,
                                          std::string_view device, mllp_options framing) {
  std::vector<stream_item> out;
  std::size_t index = 0;
  auto add_message = [&](std::string_view text, std::uint64_t offset) {
    stream_item item;
    item.text = text;
    item.offset = offset;
    item.length = text.size();
    item.batch = normalise(text, options, device,
                           {.message_index = index++,
                            .record_index = 0,
                            .byte_offset = static_cast<std::size_t>(offset)});
    out.push_back(std::move(item));
  };
  auto add_event = [&](const mllp_event& e) {
    if (e.kind == mllp_event_kind::message) {
      // Re-slice from `bytes`: a view into the decoder's own buffer would die with it.
      add_message(
          bytes.substr(static_cast<std::size_t>(e.offset) + 1, static_cast<std::size_t>(e.length)),
          e.offset);
    } else if (e.kind != mllp_event_kind::none) {
      stream_item item;
      item.offset = e.offset;
      item.length = e.length;
      item.framing = e.error;
      out.push_back(std::move(item));
    }
  };

  if (bytes.find(mllp_start) == std::string_view::npos) {
    for (std::string_view m : split_unframed(bytes)) {
      add_message(m, static_cast<std::uint64_t>(m.data() - bytes.data()));
    }
    return out;
  }
  mllp_decoder d(framing);
  std::string_view rest = bytes;
  while (!rest.empty()) {
    const mllp_put_result r = d.put(rest);
    add_event(r.event);
    rest.remove_prefix(r.consumed);
  }
  for (int i = 0; i < 3; ++i) {
    const mllp_event e = d.finish();
    if (e.kind == mllp_event_kind::none) break;
    add_event(e);
  }
  return out;
}

}  // namespace interfaced::hl7
