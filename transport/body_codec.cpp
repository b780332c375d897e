#include "transport/body_codec.hpp"

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <utility>

#include <boost/beast/zlib/deflate_stream.hpp>
#include <boost/beast/zlib/inflate_stream.hpp>

namespace interfaced::transport {

namespace {

namespace zlib = boost::beast::zlib;

// Bodies are small: a 4 KiB window (windowBits 12) holds a whole ~640-byte body, and memLevel 5
// keeps the per-body reset (a memset of the hash heads) to 8 KiB. A larger body still packs,
// matching within its last 4 KiB. The reader takes the largest window, so it reads any.
constexpr int window_bits = 12;
constexpr int mem_level = 5;
constexpr int level = 6;
// Below this a body is stored as it is: deflate's block overhead eats what it saves.
constexpr std::size_t min_packed = 64;

// Tag 1's preset dictionary (outbox schema 17): a results body as ingest writes one (the
// contract's keys, backend-api.md, in ingest's order, two optional ones last) with typical values. Deflate matches a body
// against it from its first byte: a 2-result body stores ~100 bytes instead of ~275, and it is
// half the CPU, since the matches are long and few literals are left to code. Part of the stored
// format: it never changes (another dictionary would be another tag).
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

// Beast 1.81's public deflate_stream has no preset dictionary; its base class (Debian 12's Boost,
// the version this build requires) has zlib's deflateSetDictionary as a protected member.
class dict_deflater : private zlib::detail::deflate_stream {
 public:
  dict_deflater() { doReset(level, window_bits, mem_level, zlib::Strategy::normal); }
  // Ready for the next body, the dictionary in its window.
  void start() {
    doReset();
    boost::system::error_code ec;
    doDictionary(reinterpret_cast<const zlib::Byte*>(dictionary_v1.data()), static_cast<zlib::uInt>(dictionary_v1.size()), ec);
    if (ec) throw std::logic_error("pack_body: deflate dictionary: " + ec.message());
  }
  void write(zlib::z_params& zs, boost::system::error_code& ec) { doWrite(zs, zlib::Flush::finish, ec); }
  [[nodiscard]] std::size_t upper_bound(std::size_t n) const { return doUpperBound(n); }
};

// One deflater per thread, its buffers kept between bodies (a reset does not free them).
dict_deflater& deflater() {
  thread_local dict_deflater d;
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
  auto& d = deflater();
  d.start();
  std::string out;
  out.push_back(packed_with_dictionary);
  for (std::uint64_t n = body.size();; n >>= 7) {
    const auto low = static_cast<unsigned char>(n & 0x7f);
    if (n < 0x80) {
      out.push_back(static_cast<char>(low));
      break;
    }
    out.push_back(static_cast<char>(low | 0x80));
  }
  const std::size_t head = out.size();
  out.resize(head + d.upper_bound(body.size()));
  zlib::z_params zs;
  zs.next_in = body.data();
  zs.avail_in = body.size();
  zs.next_out = out.data() + head;
  zs.avail_out = out.size() - head;
  boost::system::error_code ec;
  // upper_bound is room for the whole stream in one call; should it not be, the loop gives more.
  for (;;) {
    d.write(zs, ec);
    if (ec == zlib::error::end_of_stream) break;
    if (ec && ec != zlib::error::need_buffers) throw std::logic_error("pack_body: deflate: " + ec.message());
    const std::size_t used = out.size() - zs.avail_out;
    out.resize(out.size() + 256);
    zs.next_out = out.data() + used;
    zs.avail_out = out.size() - used;
  }
  out.resize(out.size() - zs.avail_out);
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
