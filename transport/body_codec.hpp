#pragma once
// How an outbox message body is stored in message_bodies (outbox schema 13, issue #17: bytes
// written per durable result). A results body is ~640 bytes of JSON whose keys repeat per
// result; deflated it is ~280, and the body was the largest share of the WAL bytes per result.
//
// Stored form: either the body itself (one that deflate does not shrink, e.g. "{}"), or
//   0x00, the body's size as a LEB128 varint, then the body as one raw deflate stream, or
//   0x01, the same, deflated against a preset dictionary (a typical results body, fixed forever:
//   schema 17, issue #17: a 2-result body stores ~95 bytes instead of ~275). pack_body's encoder
//   is its own (fixed Huffman codes, one block): any deflate reader reads what it writes.
// pack_body writes 0x01; 0x00 is read for bodies stored before. A body is JSON text, which never
// starts with byte 0x00 or 0x01; a body that does is always packed, so the first byte alone tells
// the forms apart and every stored value decodes to its body.
// pack and unpack are pure (no I/O); they may run on any thread (streams are per thread).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace interfaced::transport {

// The stored form of `body`.
[[nodiscard]] std::string pack_body(std::string_view body);

// The body a stored form holds; nullopt when a packed form is damaged (it does not inflate to
// exactly its recorded size).
[[nodiscard]] std::optional<std::string> unpack_body(std::string_view stored);

// What a damaged stored body is called wherever it is reported (outbox show, the dead letter's
// reason, an error of a reader that cannot go on without it).
inline constexpr const char* damaged_body = "the stored body is damaged (it does not inflate to its recorded size)";

// unpack_body for the readers of message_bodies: a damaged body throws std::runtime_error naming
// `who` (the worker turns it into a failed op; the CLI prints it).
[[nodiscard]] std::string unpack_body_or_throw(std::string_view stored, const char* who);

inline constexpr char packed_plain = '\x00';
inline constexpr char packed_with_dictionary = '\x01';

// True when `stored` is a packed form (a migration packs only what is not packed yet).
[[nodiscard]] inline bool is_packed_body(std::string_view stored) noexcept {
  return !stored.empty() && (stored.front() == packed_plain || stored.front() == packed_with_dictionary);
}

// message_bodies.samples (outbox schema 15, issue #17: bytes written per durable result): every
// sample id the body names, each followed by a '\n', after a leading one ("\nS-1\nS-2\n"; ""
// for none), written in the body's row. A table of its own (message_samples, schemas 8 to 14)
// cost a b-tree leaf and its splits in every commit (2.4 of 25.4 WAL pages per commit in
// throughput.sh). The ids are spelled as the JSON body spells them, which escapes every
// control character, so none holds a '\n'.
[[nodiscard]] std::string samples_column(const std::vector<std::string_view>& samples);

// The ids a samples column holds, in its order.
[[nodiscard]] std::vector<std::string_view> samples_in_column(std::string_view column);

// SQL that is true when the samples column `column` names the sample bound to `param` (e.g. "?1");
// false for an id holding a '\n' (no stored id does).
[[nodiscard]] std::string names_sample_sql(std::string_view column, std::string_view param);

}  // namespace interfaced::transport
