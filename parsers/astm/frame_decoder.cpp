#include "parsers/astm/frame_decoder.hpp"

#include <algorithm>
#include <bit>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "parsers/astm/control.hpp"
#include "parsers/text.hpp"

namespace interfaced::astm {

namespace {

// The framer compares unsigned bytes.
constexpr auto byte = [](char c) { return static_cast<unsigned char>(c); };
constexpr unsigned char stx = byte(control::stx);
constexpr unsigned char etx = byte(control::etx);
constexpr unsigned char eot = byte(control::eot);
constexpr unsigned char enq = byte(control::enq);
constexpr unsigned char ack = byte(control::ack);
constexpr unsigned char nak = byte(control::nak);
constexpr unsigned char etb = byte(control::etb);

// STX FN ETX/ETB C1 C2 CR LF: the 7 overhead characters LIS1-A 6.3.1 counts in the 64,000.
constexpr std::size_t frame_overhead = 7;

// LIS1-A 6.6: SOH STX ETX EOT ENQ ACK DLE NAK SYN ETB LF DC1-DC4 may not appear in text.
constexpr bool is_restricted(unsigned char c) noexcept {
  switch (c) {
    case 0x01:
    case 0x02:
    case 0x03:
    case 0x04:
    case 0x05:
    case 0x06:
    case 0x0A:
    case 0x10:
    case 0x11:
    case 0x12:
    case 0x13:
    case 0x14:
    case 0x15:
    case 0x16:
    case 0x17:
      return true;
    default:
      return false;
  }
}

// Bytes that cannot occur inside a frame and that start something new: the sender restarted a
// frame (STX), started establishment (ENQ) or terminated (EOT).
constexpr bool interrupts_frame(unsigned char c) noexcept {
  return c == stx || c == enq || c == eot;
}

constexpr int hex_value(char ch) noexcept {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;  // lowercase accepted on receive
  return -1;
}

class frame_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "astm.frame"; }
  std::string message(int ev) const override {
    switch (static_cast<frame_error>(ev)) {
      case frame_error::ok:
        return "ok";
      case frame_error::bad_checksum:
        return "checksum mismatch";
      case frame_error::checksum_not_hex:
        return "checksum characters are not hex digits";
      case frame_error::bad_frame_number:
        return "frame number is not a digit 0-7";
      case frame_error::frame_too_long:
        return "frame longer than the maximum frame size";
      case frame_error::restricted_character:
        return "restricted character in frame text";
      case frame_error::interrupted:
        return "frame interrupted by STX, ENQ or EOT";
    }
    return "unknown astm frame error";
  }
};

}  // namespace

const std::error_category& frame_category() noexcept {
  static const frame_category_impl category;
  return category;
}

std::error_code make_error_code(frame_error e) noexcept {
  return {static_cast<int>(e), frame_category()};
}

frame_decoder::frame_decoder(std::size_t max_frame)
    : max_frame_(std::max(max_frame, frame_overhead + 1)), max_text_(max_frame_ - frame_overhead) {
  buf_.reserve(max_text_);
}

void frame_decoder::reset() noexcept {
  state_ = state::idle;
  buf_.clear();
  number_ = -1;
  sum_ = 0;
  final_ = false;
  restricted_ = false;
  c1_ = 0;
}

put_result frame_decoder::emit(std::size_t consumed, decode_event ev) noexcept {
  offset_ += consumed;
  return {consumed, std::move(ev)};
}

put_result frame_decoder::interrupted(std::size_t at) noexcept {
  decode_event ev;
  ev.kind = event_kind::error;
  ev.error = make_error_code(frame_error::interrupted);
  ev.offset = frame_start_;
  ev.frame_number_hint = number_;
  reset();
  return emit(at, std::move(ev));  // the interrupting byte is not consumed
}

put_result frame_decoder::finish_frame(std::size_t at, char c2) noexcept {
  decode_event ev;
  ev.offset = frame_start_;
  const int h1 = hex_value(c1_);
  const int h2 = hex_value(c2);
  frame_error err = frame_error::ok;
  // The most basic failure wins: a frame whose checksum fails may have any other byte corrupted.
  if (h1 < 0 || h2 < 0) {
    err = frame_error::checksum_not_hex;
  } else if (h1 * 16 + h2 != sum_) {
    err = frame_error::bad_checksum;
  } else if (restricted_) {
    err = frame_error::restricted_character;
  } else if (number_ < 0) {
    err = frame_error::bad_frame_number;
  }
  if (err == frame_error::ok) {
    ev.kind = event_kind::frame;
    ev.f.number = number_;
    ev.f.text = std::string_view(buf_);
    ev.f.final = final_;
    ev.f.checksum = sum_;
  } else {
    ev.kind = event_kind::error;
    ev.error = make_error_code(err);
    ev.frame_number_hint = number_;
  }
  state_ = state::idle;  // buf_ keeps the text alive until the next put()
  return emit(at + 1, std::move(ev));
}

put_result frame_decoder::put(std::string_view bytes) noexcept {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const char ch = bytes[i];
    const auto c = static_cast<unsigned char>(ch);
    switch (state_) {
      case state::idle: {
        // LIS1-A 6.2/6.3: outside a frame only the control characters mean anything; everything
        // else (frame trailers, line noise, a logger's newlines) is skipped.
        event_kind k = event_kind::none;
        if (c == enq)
          k = event_kind::enq;
        else if (c == ack)
          k = event_kind::ack;
        else if (c == nak)
          k = event_kind::nak;
        else if (c == eot)
          k = event_kind::eot;
        if (k != event_kind::none) {
          decode_event ev;
          ev.kind = k;
          ev.offset = offset_ + i;
          return emit(i + 1, std::move(ev));
        }
        if (c == stx) {
          buf_.clear();
          frame_start_ = offset_ + i;
          number_ = -1;
          sum_ = 0;
          final_ = false;
          restricted_ = false;
          state_ = state::number;
        }
        break;
      }
      case state::number:
        if (interrupts_frame(c)) return interrupted(i);
        sum_ = static_cast<std::uint8_t>(sum_ + c);
        if (c == etx || c == etb) {  // no FN at all: still read the checksum, then reject
          final_ = c == etx;
          state_ = state::check1;
        } else {
          number_ = (ch >= '0' && ch <= '7') ? ch - '0' : -1;
          state_ = state::text;
        }
        break;
      case state::text: {
        // The text run up to the next byte below 0x20 in one pass (the frame's body is nearly
        // all of the stream): summed and appended as a block instead of byte by byte. Only a
        // control byte can end the text, interrupt it or be restricted, so each of those still
        // goes through the byte-wise case below.
        std::size_t run = i;
        const std::size_t room = max_text_ - buf_.size();
        const std::size_t limit = bytes.size() - i < room ? bytes.size() : i + room;
        unsigned sum = sum_;
        // Eight bytes a step while none is below 0x20: the byte pairs of each word added into
        // four 16-bit lanes that accumulate over the words, folded into the sum only when the run
        // ends or the lanes could overflow (a lane takes at most 2 * 255 a word, so 128 words
        // fit in 16 bits; folding every word, a multiplication and shift, was a third of the
        // loop). The checksum is the sum mod 256, so adding the lanes' sum is the same.
        constexpr std::uint64_t low_bytes = 0x00FF00FF00FF00FFULL;
        const auto fold = [](std::uint64_t lanes) {
          return static_cast<unsigned>((lanes & 0xFFFFU) + ((lanes >> 16) & 0xFFFFU) + ((lanes >> 32) & 0xFFFFU) + (lanes >> 48));
        };
        std::uint64_t lanes = 0;
        unsigned words = 0;
#if defined(__SSE2__)
        // Sixteen bytes a step where SSE2 is there (every x86-64): the control-byte test is one
        // unsigned min and compare, the sum one psadbw into two 64-bit lanes that cannot overflow
        // (the eight-byte loop below was ~2 instructions a byte, put() a tenth of bench_astm).
        // The block that holds the control byte ending the run (the CR before ETX, nearly always)
        // adds the bytes before it under a lane mask, so the byte loop below has nothing left to do
        // (it was ~15 instructions a frame more).
        bool ended = false;
        {
          const __m128i below = _mm_set1_epi8(0x1F);
          const __m128i lane = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
          __m128i acc = _mm_setzero_si128();
          while (run + 16 <= limit) {
            const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes.data() + run));
            const auto controls = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(x, below), x)));
            if (controls != 0) {  // a byte <= 0x1F: the run ends at the first one
              const int k = std::countr_zero(controls);
              const __m128i before = _mm_cmpgt_epi8(_mm_set1_epi8(static_cast<char>(k)), lane);
              acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_and_si128(x, before), _mm_setzero_si128()));
              run += static_cast<std::size_t>(k);
              ended = true;
              break;
            }
            acc = _mm_add_epi64(acc, _mm_sad_epu8(x, _mm_setzero_si128()));
            run += 16;
          }
          sum += static_cast<unsigned>(_mm_cvtsi128_si32(acc)) +
                 static_cast<unsigned>(_mm_cvtsi128_si32(_mm_unpackhi_epi64(acc, acc)));
        }
#else
        constexpr bool ended = false;
#endif
        while (!ended && run + 8 <= limit) {
          const std::uint64_t x = swar::load(bytes.data() + run);
          if (swar::has_less(x, 0x20)) break;
          lanes += (x & low_bytes) + ((x >> 8) & low_bytes);
          run += 8;
          if (++words == 128) {
            sum += fold(lanes);
            lanes = 0;
            words = 0;
          }
        }
        sum += fold(lanes);
        while (!ended && run < limit && static_cast<unsigned char>(bytes[run]) >= 0x20) sum += static_cast<unsigned char>(bytes[run++]);
        if (run > i) {
          sum_ = static_cast<std::uint8_t>(sum);
          buf_.append(bytes.data() + i, run - i);  // never reallocates: bounded by room
          i = run - 1;
          break;
        }
        if (interrupts_frame(c)) return interrupted(i);
        sum_ = static_cast<std::uint8_t>(sum_ + c);
        if (c == etx || c == etb) {
          final_ = c == etx;
          state_ = state::check1;
        } else {
          if (buf_.size() >= max_text_) {
            decode_event ev;
            ev.kind = event_kind::error;
            ev.error = make_error_code(frame_error::frame_too_long);
            ev.offset = frame_start_;
            ev.frame_number_hint = number_;
            reset();  // resync: idle skips the rest of this frame up to the next control byte
            return emit(i + 1, std::move(ev));
          }
          if (is_restricted(c)) restricted_ = true;
          buf_.push_back(ch);  // never reallocates: size < max_text_ == reserved capacity
        }
        break;
      }
      case state::check1:
        if (interrupts_frame(c)) return interrupted(i);
        c1_ = ch;
        state_ = state::check2;
        break;
      case state::check2:
        if (interrupts_frame(c)) return interrupted(i);
        return finish_frame(i, ch);
    }
  }
  return emit(bytes.size(), {});
}

std::string checksum_hex(std::string_view fn_to_terminator) {
  unsigned sum = 0;
  for (char ch : fn_to_terminator) sum += static_cast<unsigned char>(ch);
  sum &= 0xFFu;
  static constexpr char digits[] = "0123456789ABCDEF";
  return {digits[sum >> 4], digits[sum & 0xFu]};
}

std::string encode_frame(int number, std::string_view text, bool final) {
  std::string out;
  out.reserve(text.size() + frame_overhead);
  out.push_back(static_cast<char>(stx));
  out.push_back(static_cast<char>('0' + (number & 7)));
  out.append(text);
  out.push_back(static_cast<char>(final ? etx : etb));
  out += checksum_hex(std::string_view(out).substr(1));
  out += "\r\n";
  return out;
}

}  // namespace interfaced::astm
