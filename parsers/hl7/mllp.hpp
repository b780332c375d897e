#pragma once
// MLLP (HL7 v2 Minimal Lower Layer Protocol) stream decoder: bytes -> message / skipped / error
// events. Framing is `0x0B message 0x1C 0x0D`; it works on bytes only (no character decoding).
//
// Pure and incremental, in the style of astm::frame_decoder: put() takes any chunk of the stream
// and returns after at most one event with the number of bytes it consumed; the caller feeds the
// rest again. The events do not depend on how the stream was chunked.
//  - Bytes between frames are skipped; a run of them is reported once (kind skipped, with its
//  stream
//    offset and length) when it ends at the next 0x0B or at finish(). Runs made only of CR / LF
//    (peers that append a newline after 0x1C 0x0D) are skipped silently.
//  - 0x0B inside a message means the peer restarted: the partial message is reported as an error
//    (interrupted) and decoding resyncs on that 0x0B.
//  - 0x1C not followed by 0x0D: the message is delivered with missing_trailer_cr set (lenient,
//    default) or rejected with bad_trailer (options.strict_trailer).
//  - A message longer than max_message bytes is an error event (message_too_long) whose `message`
//    is the message's first segment (at most 1 KiB: its MSH, so the peer can be answered AR);
//    the rest of it is discarded up to its 0x1C / the next 0x0B, so memory stays bounded by
//    max_message.
// Lifetime: event.message points either into the chunk passed to the put() call that returned it
// (when the whole message arrived in that chunk) or into the decoder's own buffer. It stays valid
// until the next put() / finish() / reset() call, provided the caller keeps that chunk alive.
// Errors are values (mllp_category()); nothing throws except std::bad_alloc from the buffer.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace interfaced::hl7 {

inline constexpr char mllp_start = '\x0B';  // VT
inline constexpr char mllp_end = '\x1C';    // FS
inline constexpr char mllp_cr = '\x0D';

enum class mllp_error {
  ok = 0,
  garbage_skipped = 1,  // bytes outside a frame were dropped (kind skipped)
  message_too_long,     // more than max_message bytes between 0x0B and 0x1C
  interrupted,          // 0x0B arrived before the message's 0x1C
  bad_trailer,          // 0x1C not followed by 0x0D (strict_trailer only)
  truncated,            // finish(): the stream ended inside a message
};
const std::error_category& mllp_category() noexcept;
std::error_code make_error_code(mllp_error e) noexcept;

enum class mllp_event_kind { none, message, skipped, error };

struct mllp_event {
  mllp_event_kind kind = mllp_event_kind::none;
  std::string_view message;  // kind == message: bytes between 0x0B and 0x1C; message_too_long: its
                             // first segment (<= 1 KiB)
  std::error_code error;     // kind == error or skipped
  std::uint64_t offset = 0;  // stream offset of the 0x0B (message, error) or first skipped byte
  std::uint64_t length = 0;  // skipped: bytes dropped; error: message bytes seen before it
  bool missing_trailer_cr = false;  // kind == message: 0x1C was not followed by 0x0D
};

struct mllp_put_result {
  std::size_t consumed = 0;
  mllp_event event;  // kind == none: all bytes consumed, need more
};

struct mllp_options {
  std::size_t max_message = 4 * 1024 * 1024;  // BC hematology ORUs carry base64 BMPs (facts §9)
  bool strict_trailer = false;
};

class mllp_decoder {
 public:
  explicit mllp_decoder(mllp_options options = {}) noexcept : options_(options) {}

  [[nodiscard]] mllp_put_result put(std::string_view bytes) noexcept;
  // End of stream: reports a pending skipped run or a truncated message (at most one event per
  // call; call until kind == none). The decoder is then idle again.
  [[nodiscard]] mllp_event finish() noexcept;
  void reset() noexcept;
  [[nodiscard]] std::uint64_t offset() const noexcept { return offset_; }
  // True between a 0x0B and the end of its message.
  [[nodiscard]] bool in_message() const noexcept { return state_ != state::idle; }
  // Memory held for a message spanning put() calls (its buffer's capacity: what it costs, growth
  // included); 0 between messages.
  [[nodiscard]] std::size_t buffered_bytes() const noexcept { return in_message() ? buf_.capacity() : 0; }

 private:
  enum class state { idle, body, after_fs, discard, discard_after_fs };
  mllp_event take_garbage() noexcept;

  mllp_options options_;
  state state_ = state::idle;
  std::string buf_;           // message bytes of a message spanning put() calls; <= max_message
  std::string head_;          // message_too_long: the message's first segment, <= 1 KiB
  std::uint64_t offset_ = 0;  // stream offset of the next byte put() will see
  std::uint64_t start_ = 0;   // stream offset of the current message's 0x0B
  std::uint64_t seen_ = 0;    // message bytes seen (also while discarding)
  std::uint64_t garbage_start_ = 0;
  std::uint64_t garbage_len_ = 0;
  bool garbage_reportable_ = false;  // the run holds something other than CR / LF
};

// Frames one message for sending: 0x0B message 0x1C 0x0D.
[[nodiscard]] std::string mllp_wrap(std::string_view message);

}  // namespace interfaced::hl7

template <>
struct std::is_error_code_enum<interfaced::hl7::mllp_error> : std::true_type {};
