#pragma once
// Whole-buffer convenience for replay and tests: every HL7 message in a byte buffer, framed or
// not, normalised in order. The daemon's live path uses mllp_decoder + normalise() directly;
// this runs the very same code over a file (style.md: replay uses the daemon's parsers).
//
// Pure. Views (item.text) point into `bytes`, which must outlive the items.

#include <cstdint>
#include <string_view>
#include <system_error>
#include <vector>

#include "parsers/hl7/mllp.hpp"
#include "parsers/hl7/normalise.hpp"

namespace interfaced::hl7 {

struct stream_item {
  std::string_view text;     // the message (empty for a framing event)
  std::uint64_t offset = 0;  // of the 0x0B, the skipped bytes or the unframed message
  std::uint64_t length = 0;  // framing events: bytes concerned
  std::error_code framing;   // mllp_error for skipped bytes / oversize / truncation
  hl7_batch batch;           // normalise(text); where.message_index / byte_offset filled
};

// `bytes` holding a 0x0B is read as an MLLP stream (framing events become items with `framing`
// set); otherwise as unframed messages split at each segment starting `MSH` (split_unframed).
// message_index counts messages only (0-based).
[[nodiscard]] std::vector<stream_item> normalise_stream(std::string_view bytes,
                                                        const hl7_options& options,
                                                        std::string_view device,
                                                        mllp_options framing = {});

}  // namespace interfaced::hl7
