#include "devices/embedded_histogram.hpp"

#include <zlib.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "devices/file_report.hpp"

namespace interfaced::devices {

const char* to_string(embedded_error e) noexcept {
  switch (e) {
    case embedded_error::none: return "no error";
    case embedded_error::unknown_encoding: return "not FLOATLE-stream/deflate:base64 data";
    case embedded_error::too_large: return "over the size limit";
    case embedded_error::bad_base64: return "not base64";
    case embedded_error::bad_deflate: return "corrupt deflate data";
    case embedded_error::truncated: return "deflate data cut short";
    case embedded_error::not_floats: return "not little-endian floats";
    case embedded_error::bad_layout: return "floats not in the histogram layout";
  }
  return "unknown";
}

inflate_result inflate_raw(std::string_view compressed, std::size_t max_out) {
  inflate_result out;
  z_stream s{};
  // -15: a raw deflate stream, no zlib/gzip header (what the Yumizen sends).
  if (inflateInit2(&s, -15) != Z_OK) {
    out.error = embedded_error::bad_deflate;
    return out;
  }
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  s.avail_in = static_cast<uInt>(compressed.size());
  // Output in bounded chunks: never more than max_out + one chunk is held, whatever the ratio.
  char chunk[16384];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    s.next_out = reinterpret_cast<Bytef*>(chunk);
    s.avail_out = sizeof chunk;
    rc = inflate(&s, Z_NO_FLUSH);
    const std::size_t got = sizeof chunk - s.avail_out;
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      out.error = embedded_error::bad_deflate;
      break;
    }
    if (out.bytes.size() + got > max_out) {
      out.error = embedded_error::too_large;
      break;
    }
    out.bytes.append(chunk, got);
    // No progress with all input used: the stream ended before its final block.
    if (rc == Z_BUF_ERROR || (rc == Z_OK && got == 0 && s.avail_in == 0)) {
      out.error = embedded_error::truncated;
      break;
    }
  }
  inflateEnd(&s);
  if (out.error != embedded_error::none) out.bytes.clear();
  return out;
}

floats_result decode_float_field(std::string_view field, const embedded_limits& limits) {
  floats_result out;
  constexpr std::string_view tag = "FLOATLE-stream/deflate:base64^";
  if (field.substr(0, tag.size()) != tag) {
    out.error = embedded_error::unknown_encoding;
    return out;
  }
  const std::string_view text = field.substr(tag.size());
  if (text.size() > limits.max_encoded) {
    out.error = embedded_error::too_large;
    return out;
  }
  const auto raw = base64_decode(text);
  if (!raw || raw->empty()) {
    out.error = embedded_error::bad_base64;
    return out;
  }
  auto inflated = inflate_raw(*raw, limits.max_inflated);
  if (inflated.error != embedded_error::none) {
    out.error = inflated.error;
    return out;
  }
  if (inflated.bytes.size() % 4 != 0) {
    out.error = embedded_error::not_floats;
    return out;
  }
  out.values.reserve(inflated.bytes.size() / 4);
  for (std::size_t i = 0; i < inflated.bytes.size(); i += 4) {
    const auto* b = reinterpret_cast<const unsigned char*>(inflated.bytes.data() + i);
    const std::uint32_t bits = std::uint32_t{b[0]} | std::uint32_t{b[1]} << 8 | std::uint32_t{b[2]} << 16 |
                               std::uint32_t{b[3]} << 24;
    const float f = std::bit_cast<float>(bits);
    if (!std::isfinite(f)) {
      out.values.clear();
      out.error = embedded_error::not_floats;
      return out;
    }
    out.values.push_back(f);
  }
  return out;
}

namespace {

// Reads the float layout front to back; any count that is not a small whole number, or a length
// that runs past the end, fails the whole field.
class reader {
 public:
  reader(const std::vector<float>& v, std::size_t max_count) : v_(v), max_(max_count) {}
  bool number(double& out) {
    if (i_ >= v_.size()) return false;
    out = v_[i_++];
    return true;
  }
  bool count(std::size_t& out) {
    double d = 0;
    if (!number(d) || d < 0 || d != std::floor(d) || d > static_cast<double>(max_)) return false;
    out = static_cast<std::size_t>(d);
    return true;
  }
  bool list(std::size_t n, std::vector<double>& out) {
    if (n > v_.size() - i_) return false;
    out.assign(v_.begin() + static_cast<std::ptrdiff_t>(i_), v_.begin() + static_cast<std::ptrdiff_t>(i_ + n));
    i_ += n;
    return true;
  }
  [[nodiscard]] bool at_end() const { return i_ == v_.size(); }

 private:
  const std::vector<float>& v_;
  std::size_t max_;
  std::size_t i_ = 0;
};

}  // namespace

histogram_result decode_histogram(std::string_view group, std::string_view name, std::string_view markers_field,
                                  std::string_view curve_field, const embedded_limits& limits) {
  histogram_result out;
  auto fail = [&](embedded_error e, std::string detail) {
    out.value.reset();
    out.error = e;
    out.detail = std::move(detail);
    return out;
  };
  const auto curve = decode_float_field(curve_field, limits);
  if (curve.error != embedded_error::none) return fail(curve.error, std::string("curve (M.7): ") + to_string(curve.error));
  const auto marks = decode_float_field(markers_field, limits);
  if (marks.error != embedded_error::none)
    return fail(marks.error, std::string("markers (M.6): ") + to_string(marks.error));

  histogram h;
  h.group = group;
  h.name = name;
  // Curve: H500 PltAlongRes reads 0 34 0 70 | 4 2 10 20 30 | 0 | 2 255 | x[255] | y[255] (522 floats).
  reader c(curve.values, limits.max_points);
  std::size_t nx = 0, ny = 0, arrays = 0, n = 0;
  if (!c.number(h.x_min) || !c.number(h.x_max) || !c.number(h.y_min) || !c.number(h.y_max) || !c.count(nx) ||
      !c.list(nx, h.x_ticks) || !c.count(ny) || !c.list(ny, h.y_ticks) || !c.count(arrays) || arrays != 2 ||
      !c.count(n) || n == 0 || !c.list(n, h.x) || !c.list(n, h.y) || !c.at_end())
    return fail(embedded_error::bad_layout, "curve (M.7): " + std::to_string(curve.values.size()) +
                                                " floats do not read as range, ticks and 2 arrays of points");
  if (!(h.x_max > h.x_min) || !(h.y_max >= h.y_min))
    return fail(embedded_error::bad_layout, "curve (M.7): an empty display range");
  // Markers: H500 PltAlongRes reads 0 34 0 70 | 2 3 | 3.29 17.75 11.31 | 0 1 2 (12 floats);
  // RbcAlongRes 0 278 0 600 | 2 0 (none).
  reader m(marks.values, limits.max_points);
  double skip = 0;
  std::size_t k = 0, nm = 0;
  std::vector<double> ids;
  if (!m.number(skip) || !m.number(skip) || !m.number(skip) || !m.number(skip) || !m.count(k) || k != 2 ||
      !m.count(nm) || !m.list(nm, h.markers) || !m.list(nm, ids) || !m.at_end())
    return fail(embedded_error::bad_layout, "markers (M.6): " + std::to_string(marks.values.size()) +
                                                " floats do not read as range and 2 arrays of markers");
  for (double id : ids) h.marker_ids.push_back(static_cast<int>(id));
  out.value = std::move(h);
  return out;
}

}  // namespace interfaced::devices

#include "parsers/astm/records.hpp"

namespace interfaced::devices {

std::vector<histogram_record> histogram_records(std::string_view message_text) {
  std::vector<histogram_record> out;
  if (message_text.find("HISTOGRAM") == std::string_view::npos) return out;  // the common case, no parse
  const astm::message m = astm::parse_message(message_text);
  std::size_t scope = 0;
  std::string sample;
  std::size_t first_open = out.size();  // histograms of the current scope whose end is not known yet
  const std::size_t n = m.records.size();
  for (std::size_t i = 0; i < n; ++i) {
    const astm::record_view& r = m.records[i];
    const char t = r.type();
    if (t == 'O' || t == 'P' || t == 'L' || t == 'H') {
      for (std::size_t k = first_open; k < out.size(); ++k) out[k].scope_end = i + 1;
      first_open = out.size();
      scope = t == 'O' ? i + 1 : 0;
      sample.clear();
      if (t == 'O') {
        sample = r.field(3).component(1).decode();
        if (sample.empty()) sample = r.field(4).component(1).decode();
      }
      continue;
    }
    if (t != 'M' || r.field(3).decode() != "HISTOGRAM") continue;
    histogram_record h;
    h.record_index = i + 1;
    h.scope_begin = scope;
    h.o_sample = sample;
    h.group = r.field(4).decode();
    h.name = r.field(5).decode();
    // `encoding^data` with the message's own component delimiter, handed on as `encoding^data`.
    auto data_field = [&](std::size_t f) {
      const astm::field_view v = r.field(f);
      return v.component(1).decode() + "^" + v.component(2).decode();
    };
    h.markers = data_field(6);
    h.curve = data_field(7);
    out.push_back(std::move(h));
  }
  for (std::size_t k = first_open; k < out.size(); ++k) out[k].scope_end = n + 1;
  return out;
}

}  // namespace interfaced::devices
