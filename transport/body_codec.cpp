#include "transport/body_codec.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

#include <boost/beast/zlib/inflate_stream.hpp>

namespace interfaced::transport {

namespace {

namespace zlib = boost::beast::zlib;

// Below this a body is stored as it is: deflate's block overhead eats what it saves.
constexpr std::size_t min_packed = 64;

// Tag 1's preset dictionary (outbox schema 17): a results body as ingest writes one (the
// contract's keys, backend-api.md, in ingest's order, two optional ones last) with typical values. Deflate matches a body
// against it from its first byte: a 2-result body stores ~95 bytes instead of ~275, since the
// matches are long and few literals are left to code. Part of the stored format: it never
// changes (another dictionary would be another tag).
constexpr std::string_view dictionary_v1 =
    R"({"batch_id":"dev01-1-1796600000","device_id":"dev01","received_at":"2026-01-01T08:00:00.000+00:00","results":[)"
    R"({"flags":[],"instrument_code":"GLU","is_rerun":false,"machine_triggered_rerun":false,)"
    R"("observed_at":"2026-01-01T07:56:00+00:00","parameter":"GLU","raw":"","reference_range":"","rerun_number":0,)"
    R"("sample_id":"S-0000001","status":"","unit":"mmol/L","value":"5.1"},)"
    R"({"flags":["H"],"instrument_code":"CREA","is_rerun":true,"machine_triggered_rerun":true,)"
    R"("observed_at":"2026-01-01T07:56:00+00:00","parameter":"CREA","raw":"","reference_range":"45-84","rerun_number":-1,)"
    R"("sample_id":"S-0000001","status":"F","unit":"umol/L","value":"112","qc_status":"","lab_report_id":""}]})";
// One stored block carries it (dictionary_block): at most 65,535 bytes.
static_assert(dictionary_v1.size() < 65536);

// A Huffman code goes out from its most significant bit (RFC 1951 3.1.1): reversed here.
constexpr std::uint32_t reversed(std::uint32_t c, int n) {
  std::uint32_t r = 0;
  for (int i = 0; i < n; ++i) r |= ((c >> i) & 1U) << (n - 1 - i);
  return r;
}
struct fixed_code {
  std::uint16_t bits = 0;  // reversed
  std::uint8_t length = 0;
};
// The literal/length symbols' fixed code (3.2.6).
constexpr std::array<fixed_code, 288> fixed_codes = [] {
  std::array<fixed_code, 288> t{};
  for (std::uint32_t s = 0; s < 288; ++s) {
    const auto [c, n] = s < 144   ? std::pair{0x30 + s, 8}
                        : s < 256 ? std::pair{0x190 + s - 144, 9}
                        : s < 280 ? std::pair{s - 256, 7}
                                  : std::pair{0xc0 + s - 280, 8};
    t[s] = {static_cast<std::uint16_t>(reversed(c, n)), static_cast<std::uint8_t>(n)};
  }
  return t;
}();

// The deflate encoder of tag 1 (RFC 1951): one final block with the fixed Huffman codes (3.2.6),
// its matches found in dictionary_v1 and the body's own earlier bytes (lazy matching, as zlib's
// levels 4 to 9, over hash chains of 3-byte strings). Written here instead of Beast's deflate
// (issue #17, CPU per durable result): on a results body Beast's level 6 spent ~89k of the outbox
// worker's ~300k instructions per message, a third of it building dynamic Huffman trees that
// a body of ~100 stored bytes never uses (zlib with Z_FIXED stores those bodies in 91.11 bytes
// on average, against 91.10 with its trees), and another third setting up the window and hashing
// the dictionary again for every body.
// Here the dictionary's chains are built once per thread, and a body only adds its own.
// Any inflater reads the stream; unpack_body's is Beast's, as before.
class fixed_deflater {
 public:
  fixed_deflater()
      : buf_(dictionary_v1.begin(), dictionary_v1.end()), prev_(dict_size, none), hashes_(dict_size) {
    head_.fill(none);
    for (std::size_t p = 0; p + min_match <= dict_size; ++p) {
      hashes_[p] = hash(p);
      insert(p);
    }
    dict_head_ = head_;
  }

  // Appends the raw deflate stream of `body` to `out`.
  void pack(std::string_view body, std::string& out) {
    buf_.resize(dict_size);
    buf_.append(body);
    prev_.resize(buf_.size());
    hashes_.resize(buf_.size());
    const std::size_t end = buf_.size();
    for (std::size_t q = dict_size; q + min_match <= end; ++q) hashes_[q] = hash(q);
    bits_ = 0;
    nbits_ = 0;
    out_ = &out;
    put(1, 1);  // BFINAL
    put(1, 2);  // BTYPE 01: the fixed codes
    std::size_t p = dict_size;
    match cur = p + min_match <= end ? find(p, end) : match{};
    while (p < end) {
      if (cur.length < min_match) {
        if (p + min_match <= end) insert(p);
        literal(static_cast<unsigned char>(buf_[p]));
        ++p;
      } else {
        insert(p);
        // Lazy: a longer match one byte on makes this byte a literal (zlib's deflate_slow).
        match next;
        if (cur.length < lazy_limit && p + 1 + min_match <= end) next = find(p + 1, end);
        if (next.length > cur.length) {
          literal(static_cast<unsigned char>(buf_[p]));
          ++p;
          cur = next;
          continue;
        }
        copy(cur);
        for (std::size_t q = p + 1; q < p + cur.length && q + min_match <= end; ++q) insert(q);
        p += cur.length;
      }
      cur = p + min_match <= end ? find(p, end) : match{};
    }
    symbol(256);  // end of block
    if (nbits_ > 0) out.push_back(static_cast<char>(bits_ & 0xff));
    // The chains again as the dictionary left them: only the heads of the body's strings moved.
    for (std::size_t q = dict_size; q + min_match <= end; ++q) head_[hashes_[q]] = dict_head_[hashes_[q]];
    // A large body does not keep its buffers for the rest of the thread's life.
    if (buf_.capacity() > keep_bytes) {
      buf_.resize(dict_size);
      buf_.shrink_to_fit();
      prev_.resize(dict_size);
      prev_.shrink_to_fit();
      hashes_.resize(dict_size);
      hashes_.shrink_to_fit();
    }
    out_ = nullptr;
  }

 private:
  static constexpr std::size_t dict_size = dictionary_v1.size();
  static constexpr std::size_t min_match = 3;
  static constexpr std::size_t max_match = 258;
  static constexpr std::size_t max_distance = 32768;
  static constexpr std::size_t lazy_limit = 32;  // a match this long is taken without looking on
  static constexpr std::size_t nice_match = 128;  // a match this long ends the search
  static constexpr int max_chain = 64;           // candidates tried per position
  static constexpr int hash_bits = 12;
  static constexpr std::uint32_t none = 0xffffffffU;
  // Past this a body's buffers (its bytes, then 4 + 2 bytes per byte for the chains) are released.
  static constexpr std::size_t keep_bytes = std::size_t{1} << 16;

  struct match {
    std::size_t length = 0;
    std::size_t distance = 0;
  };

  // Of the 3 bytes at p; pack computes each body position's once (hashes_).
  [[nodiscard]] std::uint16_t hash(std::size_t p) const noexcept {
    const auto* b = reinterpret_cast<const unsigned char*>(buf_.data()) + p;
    const std::uint32_t v = std::uint32_t{b[0]} | std::uint32_t{b[1]} << 8 | std::uint32_t{b[2]} << 16;
    return static_cast<std::uint16_t>((v * 2654435761U) >> (32 - hash_bits));
  }
  void insert(std::size_t p) noexcept {
    auto& h = head_[hashes_[p]];
    prev_[p] = h;
    h = static_cast<std::uint32_t>(p);
  }
  // The longest earlier string that `p` repeats (at least min_match long, else length 0).
  [[nodiscard]] match find(std::size_t p, std::size_t end) const noexcept {
    const char* b = buf_.data();
    const std::size_t limit = std::min(max_match, end - p);
    match best{min_match - 1, 0};
    int chain = max_chain;
    for (std::uint32_t c = head_[hashes_[p]]; c != none && chain-- > 0; c = prev_[c]) {
      // The chains run to ever older positions; the first check holds whatever the tables hold
      // (an exception in the middle of a body leaves its heads behind).
      if (c >= p || p - c > max_distance) break;
      const std::size_t distance = p - c;
      // best.length < limit here, so both reads are inside the buffer.
      if (b[c + best.length] != b[p + best.length] || b[c] != b[p]) continue;
      const std::size_t n = common_length(b + c, b + p, limit);
      if (n > best.length) {
        best = {n, distance};
        if (n >= nice_match || n == limit) break;
      }
    }
    return best.length >= min_match ? best : match{};
  }

  // How many of the first `limit` bytes at a and b agree: eight at a time.
  static std::size_t common_length(const char* a, const char* b, std::size_t limit) noexcept {
    std::size_t n = 0;
    if constexpr (std::endian::native == std::endian::little) {
      for (; n + 8 <= limit; n += 8) {
        std::uint64_t x = 0;
        std::uint64_t y = 0;
        std::memcpy(&x, a + n, 8);
        std::memcpy(&y, b + n, 8);
        if (x != y) return n + static_cast<std::size_t>(std::countr_zero(x ^ y)) / 8;
      }
    }
    while (n < limit && a[n] == b[n]) ++n;
    return n;
  }

  void put(std::uint32_t value, int n) {
    bits_ |= std::uint64_t{value} << nbits_;
    nbits_ += n;
    while (nbits_ >= 8) {
      out_->push_back(static_cast<char>(bits_ & 0xff));
      bits_ >>= 8;
      nbits_ -= 8;
    }
  }
  void symbol(std::uint32_t s) { put(fixed_codes[s].bits, fixed_codes[s].length); }
  void literal(unsigned char c) { symbol(c); }
  // Length codes 257..285 and distance codes 0..29 with their extra bits (3.2.5).
  void copy(const match& m) {
    const auto l = static_cast<std::uint32_t>(m.length - min_match);  // 0..255
    if (l < 8) {
      symbol(257 + l);
    } else if (l == 255) {
      symbol(285);
    } else {
      const int k = static_cast<int>(std::bit_width(l)) - 1;  // 3..7
      const std::uint32_t top = (l >> (k - 2)) & 3U;
      symbol(257 + 4 * static_cast<std::uint32_t>(k - 1) + top);
      put(l - ((4 + top) << (k - 2)), k - 2);
    }
    const auto d = static_cast<std::uint32_t>(m.distance - 1);  // 0..32767
    if (d < 4) {
      put(reversed(d, 5), 5);
    } else {
      const int k = static_cast<int>(std::bit_width(d)) - 1;  // 2..14
      const std::uint32_t odd = (d >> (k - 1)) & 1U;
      put(reversed(2 * static_cast<std::uint32_t>(k) + odd, 5), 5);
      put(d - ((2 + odd) << (k - 1)), k - 1);
    }
  }

  std::string buf_;                  // the dictionary, then the body being packed
  std::vector<std::uint32_t> prev_;  // per position: the one before it with the same hash
  std::vector<std::uint16_t> hashes_;  // per position: hash() of it
  std::array<std::uint32_t, std::size_t{1} << hash_bits> head_{};       // per hash: the latest position
  std::array<std::uint32_t, std::size_t{1} << hash_bits> dict_head_{};  // head_ after the dictionary
  std::uint64_t bits_ = 0;
  int nbits_ = 0;
  std::string* out_ = nullptr;
};

// One encoder per thread: the dictionary's chains are built once.
fixed_deflater& deflater() {
  thread_local fixed_deflater d;
  return d;
}

// The stored block that puts the dictionary into an inflater's window before a tag-1 stream:
// Beast's inflate_stream has no preset dictionary either, and a non-final stored block (RFC 1951
// 3.2.4) leaves exactly those bytes as the history the stream's matches reach back into.
const std::string& dictionary_block() {
  static const std::string block = [] {
    std::string b;
    const auto n = static_cast<std::uint16_t>(dictionary_v1.size());
    b.push_back('\0');  // BFINAL 0, BTYPE 00, the rest of the byte padding
    b.push_back(static_cast<char>(n & 0xff));
    b.push_back(static_cast<char>(n >> 8));
    b.push_back(static_cast<char>(~n & 0xff));
    b.push_back(static_cast<char>((~n >> 8) & 0xff));
    b.append(dictionary_v1);
    return b;
  }();
  return block;
}



}  // namespace

std::string pack_body(std::string_view body) {
  const bool must_pack = is_packed_body(body);
  if (body.size() < min_packed && !must_pack) return std::string(body);
  std::string out;
  out.reserve(body.size() + body.size() / 8 + 16);  // fixed codes: at most 9 bits a byte, and the head
  out.push_back(packed_with_dictionary);
  for (std::uint64_t n = body.size();; n >>= 7) {
    const auto low = static_cast<unsigned char>(n & 0x7f);
    if (n < 0x80) {
      out.push_back(static_cast<char>(low));
      break;
    }
    out.push_back(static_cast<char>(low | 0x80));
  }
  deflater().pack(body, out);
  if (!must_pack && out.size() >= body.size()) return std::string(body);
  return out;
}

std::optional<std::string> unpack_body(std::string_view stored) {
  if (!is_packed_body(stored)) return std::string(stored);
  std::uint64_t size = 0;
  std::size_t i = 1;
  for (int shift = 0;; shift += 7) {
    if (i >= stored.size() || shift > 56) return std::nullopt;
    const auto b = static_cast<unsigned char>(stored[i++]);
    size |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) break;
  }
  // A damaged size must not make us allocate without bound: deflate expands at most ~1032:1.
  if (size > (stored.size() - i) * 1032 + 64) return std::nullopt;
  // Tag 1: the dictionary's stored block first; its bytes lead the output and are cut off.
  const bool with_dictionary = stored.front() == packed_with_dictionary;
  const std::size_t lead = with_dictionary ? dictionary_v1.size() : 0;
  std::string in = with_dictionary ? dictionary_block() : std::string();
  in.append(stored.substr(i));
  // Beast 1.81's inflate_stream may need one byte past a stream's end to see the end (it
  // reports need_buffers with every byte out otherwise): the input is given one zero byte more.
  in.push_back('\0');
  // One spare output byte: a stream that would inflate past the recorded size is damaged.
  std::string out(lead + static_cast<std::size_t>(size) + 1, '\0');
  zlib::inflate_stream inf;
  zlib::z_params zs;
  zs.next_in = in.data();
  zs.avail_in = in.size();
  zs.next_out = out.data();
  zs.avail_out = out.size();
  boost::system::error_code ec;
  inf.write(zs, zlib::Flush::finish, ec);
  // The whole stored stream read, at most the added byte beyond it: nothing follows the stream.
  if (ec != zlib::error::end_of_stream || zs.total_out != lead + size || zs.avail_in > 1) return std::nullopt;
  out.resize(lead + static_cast<std::size_t>(size));
  if (lead > 0) out.erase(0, lead);
  return out;
}

std::string unpack_body_or_throw(std::string_view stored, const char* who) {
  auto body = unpack_body(stored);
  if (!body) throw std::runtime_error(std::string(who) + ": " + damaged_body);
  return std::move(*body);
}

std::string samples_column(const std::vector<std::string_view>& samples) {
  if (samples.empty()) return {};
  std::string out = "\n";
  for (const auto s : samples) (out += s) += '\n';
  return out;
}

std::vector<std::string_view> samples_in_column(std::string_view column) {
  std::vector<std::string_view> out;
  std::size_t at = column.find('\n');
  while (at != std::string_view::npos) {
    const auto next = column.find('\n', at + 1);
    if (next == std::string_view::npos) break;
    if (next > at + 1) out.push_back(column.substr(at + 1, next - at - 1));
    at = next;
  }
  return out;
}

std::string names_sample_sql(std::string_view column, std::string_view param) {
  const std::string c(column), p(param);
  return "(instr(" + p + ", char(10)) = 0 AND instr(" + c + ", char(10) || " + p + " || char(10)) > 0)";
}

}  // namespace interfaced::transport
