#include "parsers/hl7/mllp.hpp"

#include <algorithm>

#include <string>

namespace interfaced::hl7 {

namespace {

class mllp_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "hl7.mllp"; }
  std::string message(int ev) const override {
    switch (static_cast<mllp_error>(ev)) {
      case mllp_error::ok:
        return "ok";
      case mllp_error::garbage_skipped:
        return "bytes outside an MLLP frame were skipped";
      case mllp_error::message_too_long:
        return "MLLP message longer than the configured maximum";
      case mllp_error::interrupted:
        return "MLLP start block (0x0B) inside a message";
      case mllp_error::bad_trailer:
        return "MLLP end block 0x1C not followed by 0x0D";
      case mllp_error::truncated:
        return "stream ended inside an MLLP message";
    }
    return "unknown MLLP error";
  }
};

constexpr std::size_t npos = std::string_view::npos;

}  // namespace

const std::error_category& mllp_category() noexcept {
  static const mllp_category_impl instance;
  return instance;
}

std::error_code make_error_code(mllp_error e) noexcept {
  return {static_cast<int>(e), mllp_category()};
}

void mllp_decoder::reset() noexcept {
  state_ = state::idle;
  buf_.clear();
  offset_ = 0;
  start_ = 0;
  seen_ = 0;
  garbage_start_ = 0;
  garbage_len_ = 0;
  garbage_reportable_ = false;
}

mllp_event mllp_decoder::take_garbage() noexcept {
  mllp_event ev;
  if (garbage_len_ > 0 && garbage_reportable_) {
    ev.kind = mllp_event_kind::skipped;
    ev.error = make_error_code(mllp_error::garbage_skipped);
    ev.offset = garbage_start_;
    ev.length = garbage_len_;
  }
  garbage_len_ = 0;
  garbage_reportable_ = false;
  return ev;
}

mllp_put_result mllp_decoder::put(std::string_view bytes) noexcept {
  // The view of the last message into buf_ ended with this call: a large buffer left by it is
  // given back (swap: no allocation), so an idle connection does not keep a 4 MB message's memory.
  if (state_ == state::idle && buf_.capacity() > (64u << 10)) std::string().swap(buf_);
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  // Where this chunk holds the message body from its first byte, the message is returned as a view
  // into the chunk (no copy); otherwise the body is gathered in buf_.
  std::size_t body_begin = npos;
  mllp_put_result out;

  auto finish_call = [&](std::size_t consumed) {
    if (body_begin != npos && (state_ == state::body || state_ == state::after_fs)) {
      // The message continues in a later chunk: keep what we have (bounded by max_message).
      buf_.assign(bytes.substr(body_begin, static_cast<std::size_t>(seen_)));
    }
    out.consumed = consumed;
    offset_ += consumed;
    return out;
  };

  while (i < n) {
    const char c = bytes[i];
    switch (state_) {
      case state::idle:
        if (c == mllp_start) {
          if (garbage_len_ > 0) {
            mllp_event ev = take_garbage();
            if (ev.kind != mllp_event_kind::none) {
              out.event = ev;
              return finish_call(i);  // the 0x0B is read again by the next call
            }
          }
          state_ = state::body;
          start_ = offset_ + i;
          seen_ = 0;
          buf_.clear();
          ++i;
          body_begin = i;
        } else {
          if (garbage_len_ == 0) garbage_start_ = offset_ + i;
          ++garbage_len_;
          if (c != '\r' && c != '\n') garbage_reportable_ = true;
          ++i;
        }
        break;

      case state::body: {
        std::size_t j = i;
        while (j < n && bytes[j] != mllp_start && bytes[j] != mllp_end) ++j;
        const std::size_t run = j - i;
        const std::uint64_t room = options_.max_message - seen_;
        if (run > room) {
          // The first byte past the limit is consumed with the error; the rest is discarded.
          const std::size_t stop = i + static_cast<std::size_t>(room) + 1;
          out.event.kind = mllp_event_kind::error;
          out.event.error = make_error_code(mllp_error::message_too_long);
          out.event.offset = start_;
          out.event.length = seen_ + room + 1;
          // Keep its first segment (MSH) so the session can refuse it by protocol (AR). Only the
          // first max_message + 1 bytes are sure to have been seen, whatever the chunking.
          const std::size_t head_len = std::min<std::size_t>(1024, options_.max_message + 1);
          if (body_begin == npos) {
            head_.assign(std::string_view(buf_).substr(0, head_len));
            if (head_.size() < head_len) head_.append(bytes.substr(i, head_len - head_.size()));
          } else {
            head_.assign(bytes.substr(body_begin, head_len));
          }
          if (const auto cr = head_.find(mllp_cr); cr != std::string::npos) head_.resize(cr);
          out.event.message = head_;
          state_ = state::discard;
          buf_.clear();
          buf_.shrink_to_fit();
          body_begin = npos;
          return finish_call(stop);
        }
        if (body_begin == npos) buf_.append(bytes.substr(i, run));
        seen_ += run;
        i = j;
        if (i == n) break;
        if (bytes[i] == mllp_end) {
          state_ = state::after_fs;
          ++i;
        } else {
          // 0x0B inside a message: the peer gave up on this one and started again.
          out.event.kind = mllp_event_kind::error;
          out.event.error = make_error_code(mllp_error::interrupted);
          out.event.offset = start_;
          out.event.length = seen_;
          state_ = state::idle;
          body_begin = npos;
          buf_.clear();
          return finish_call(i);
        }
        break;
      }

      case state::after_fs: {
        const bool cr = (c == mllp_cr);
        if (!cr && options_.strict_trailer) {
          out.event.kind = mllp_event_kind::error;
          out.event.error = make_error_code(mllp_error::bad_trailer);
          out.event.offset = start_;
          out.event.length = seen_;
          state_ = state::idle;
          body_begin = npos;
          buf_.clear();
          return finish_call(i);
        }
        out.event.kind = mllp_event_kind::message;
        out.event.offset = start_;
        out.event.length = seen_;
        out.event.missing_trailer_cr = !cr;
        out.event.message = body_begin != npos
                                ? bytes.substr(body_begin, static_cast<std::size_t>(seen_))
                                : std::string_view(buf_);
        state_ = state::idle;
        body_begin = npos;
        return finish_call(cr ? i + 1 : i);
      }

      case state::discard:
        if (c == mllp_start) {
          state_ = state::idle;  // re-read as the start of the next message
        } else {
          if (c == mllp_end) state_ = state::discard_after_fs;
          ++i;
        }
        break;

      case state::discard_after_fs:
        state_ = state::idle;
        if (c == mllp_cr) ++i;
        break;
    }
  }
  return finish_call(n);
}

mllp_event mllp_decoder::finish() noexcept {
  mllp_event ev;
  switch (state_) {
    case state::idle:
      return take_garbage();
    case state::body:
      ev.kind = mllp_event_kind::error;
      ev.error = make_error_code(mllp_error::truncated);
      ev.offset = start_;
      ev.length = seen_;
      break;
    case state::after_fs:
      ev.offset = start_;
      ev.length = seen_;
      if (options_.strict_trailer) {
        ev.kind = mllp_event_kind::error;
        ev.error = make_error_code(mllp_error::bad_trailer);
      } else {
        ev.kind = mllp_event_kind::message;
        ev.message = buf_;
        ev.missing_trailer_cr = true;
      }
      state_ = state::idle;
      return ev;  // buf_ stays until the next call
    case state::discard:
    case state::discard_after_fs:
      break;  // already reported as message_too_long
  }
  state_ = state::idle;
  buf_.clear();
  return ev;
}

std::string mllp_wrap(std::string_view message) {
  std::string out;
  out.reserve(message.size() + 3);
  out.push_back(mllp_start);
  out.append(message);
  out.push_back(mllp_end);
  out.push_back(mllp_cr);
  return out;
}

}  // namespace interfaced::hl7
