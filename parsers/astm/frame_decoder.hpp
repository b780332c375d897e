#pragma once
// E1381 (CLSI LIS01-A) low-level stream decoder: bytes -> ENQ / ACK / NAK / EOT / frame events.
//
// Pure and incremental: put() takes any chunk of the stream and returns after at most one event,
// with the number of bytes it consumed; the caller feeds the rest again. Results do not depend on
// how the stream was chunked. Frames are `STX FN text ETB|ETX C1 C2` then an optional CR, LF or
// CR LF (all three trailers occur in real captures). The checksum (sum of FN..ETB/ETX mod 256, two
// hex digits, lowercase accepted) is verified on every frame, intermediate ones too.
//
// The frame event is emitted as soon as C2 arrives (a live link must reply without waiting for a
// trailer that may never come); the trailer, like every byte outside a frame other than
// ENQ/ACK/NAK/EOT, is skipped (LIS1-A 6.3: characters after ETB/ETX are ignored).
// Errors: a broken frame (checksum, FN, restricted character) is one error event after its C2;
// STX/ENQ/EOT before the frame is complete is an `interrupted` error event that does not consume
// that byte, so the next put() starts processing it normally. put() returns consumed == 0 only
// with an event or for empty input. No error is fatal: decoding always continues.
//
// Lifetime: frame::text points into the decoder's own bounded buffer and stays valid until the
// next call to put() or reset().
// Limits: a frame longer than max_frame bytes (STX..trailer, counted as the 7 overhead bytes of
// LIS1-A 6.3.1 plus the text, i.e. text longer than max_frame - 7) is an error event
// (frame_too_long) raised at the first excess byte; the decoder then skips to the next
// STX/control byte, it never grows past max_frame.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace interfaced::astm {

enum class frame_error {
  ok = 0,
  bad_checksum = 1,      // checksum characters do not match the computed sum
  checksum_not_hex,      // C1/C2 are not hex digits
  bad_frame_number,      // FN is not an ASCII digit 0-7
  frame_too_long,        // more than max_frame bytes before ETB/ETX
  restricted_character,  // a restricted control character inside frame text (LIS1-A 6.6)
  interrupted,           // STX/ENQ/EOT arrived before the frame was complete
};
const std::error_category& frame_category() noexcept;
std::error_code make_error_code(frame_error e) noexcept;

enum class event_kind { none, enq, ack, nak, eot, frame, error };

struct frame {
  int number = 0;             // 0..7
  std::string_view text;      // bytes between FN and ETB/ETX, raw
  bool final = false;         // true: ETX (end frame), false: ETB (intermediate frame)
  std::uint8_t checksum = 0;  // as received
};

struct decode_event {
  event_kind kind = event_kind::none;
  frame f;                     // kind == frame
  std::error_code error;       // kind == error
  std::uint64_t offset = 0;    // stream offset of the byte that started this event (STX, ENQ...)
  int frame_number_hint = -1;  // kind == error: FN of the broken frame when it was readable
};

struct put_result {
  std::size_t consumed = 0;
  decode_event event;  // kind == none: all bytes consumed, need more
};

class frame_decoder {
 public:
  static constexpr std::size_t default_max_frame = 64000;
  explicit frame_decoder(std::size_t max_frame = default_max_frame);

  // Consume bytes until one event (or all bytes); see the contract above.
  [[nodiscard]] put_result put(std::string_view bytes) noexcept;
  // Drop any partial frame. offset() keeps counting: it is the position in the stream.
  void reset() noexcept;
  // Stream offset of the next byte put() will consume.
  [[nodiscard]] std::uint64_t offset() const noexcept { return offset_; }
  [[nodiscard]] std::size_t max_frame() const noexcept { return max_frame_; }
  // Inside a frame (STX seen, its CR LF not yet), and the text bytes of it held so far.
  [[nodiscard]] bool in_frame() const noexcept { return state_ != state::idle; }
  [[nodiscard]] std::size_t buffered_bytes() const noexcept { return in_frame() ? buf_.size() : 0; }

 private:
  enum class state { idle, number, text, check1, check2 };
  put_result interrupted(std::size_t at) noexcept;
  put_result finish_frame(std::size_t at, char c2) noexcept;
  put_result emit(std::size_t consumed, decode_event ev) noexcept;

  state state_ = state::idle;
  std::size_t max_frame_;
  std::size_t max_text_;  // max_frame_ - 7 overhead bytes
  std::string buf_;       // reserved to max_text_ once; never grows beyond it
  std::uint64_t offset_ = 0;
  std::uint64_t frame_start_ = 0;
  int number_ = -1;       // -1: FN byte was not '0'..'7'
  std::uint8_t sum_ = 0;  // wraps mod 256 as LIS1-A 6.3.3 wants
  bool final_ = false;
  bool restricted_ = false;  // a restricted character was seen in the text
  char c1_ = 0;
};

// Checksum of FN..ETB/ETX as LIS01-A 6.3.3 defines it, as two uppercase hex digits.
std::string checksum_hex(std::string_view fn_to_terminator);

// Encode one frame for sending: STX FN text ETB|ETX C1 C2 CR LF.
std::string encode_frame(int number, std::string_view text, bool final);

}  // namespace interfaced::astm

template <>
struct std::is_error_code_enum<interfaced::astm::frame_error> : std::true_type {};
