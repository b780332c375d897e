// devices/embedded_histogram and histogram_svg: Yumizen M-record histograms. Expectations come
// from the captures' own numbers (read independently with Python's zlib/struct when the layout
// was worked out: see the header) and from hand-written vectors, never from the code's output.

#include <catch2/catch.hpp>

#include <zlib.h>

#include <cstring>
#include <map>
#include <regex>

#include "devices/astm_ingest.hpp"
#include "devices/capture_input.hpp"
#include "devices/embedded_histogram.hpp"
#include "devices/file_report.hpp"
#include "devices/histogram_svg.hpp"
#include "support/files.hpp"

using namespace interfaced;
using namespace interfaced::devices;

namespace {

// Raw deflate (no header) of `bytes`, made with zlib directly: the test's own encoder.
std::string deflate_raw(const std::string& bytes) {
  z_stream s{};
  REQUIRE(deflateInit2(&s, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&s, bytes.size()), '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  s.avail_in = static_cast<uInt>(bytes.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&s, Z_FINISH) == Z_STREAM_END);
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

std::string floats_le(const std::vector<float>& v) {
  std::string out;
  for (float f : v) {
    std::uint32_t b = 0;
    std::memcpy(&b, &f, 4);
    for (int k = 0; k < 4; ++k) out += static_cast<char>((b >> (8 * k)) & 0xFF);
  }
  return out;
}

std::string field_of(const std::vector<float>& v) {
  return "FLOATLE-stream/deflate:base64^" + base64_encode(deflate_raw(floats_le(v)));
}

// The E1394 messages of a capture file, through the receive path replay uses.
std::vector<std::string> capture_messages(const std::string& file) {
  const auto dir = test::captures_dir("astm", "Yumizen histogram capture test");
  if (!dir) return {};
  const auto in = decode_capture(test::read_file(*dir / file));
  astm_ingest ing(nullptr, nullptr, "t", {});
  if (in.kind == capture_kind::astm_frames) (void)ing.feed(in.bytes);
  else ing.feed_records(in.bytes);
  ing.finish();
  std::vector<std::string> out;
  for (auto& m : ing.take_messages()) out.push_back(m.text);
  return out;
}

// A minimal XML reader for the test: elements with their attributes, in document order; fails
// the test on an unbalanced tag.
struct element {
  std::string name;
  std::map<std::string, std::string> attrs;
  std::string text;  // the text right after the start tag
};
std::vector<element> parse_xml(const std::string& doc) {
  std::vector<element> out;
  std::vector<std::string> open;
  std::size_t i = 0;
  const std::regex attr(R"re(([A-Za-z_:][-A-Za-z0-9_:.]*)="([^"]*)")re");
  while ((i = doc.find('<', i)) != std::string::npos) {
    const std::size_t end = doc.find('>', i);
    REQUIRE(end != std::string::npos);
    std::string tag = doc.substr(i + 1, end - i - 1);
    i = end + 1;
    if (tag.empty() || tag[0] == '?' || tag[0] == '!') continue;
    if (tag[0] == '/') {
      REQUIRE_FALSE(open.empty());
      CHECK(open.back() == tag.substr(1));
      open.pop_back();
      continue;
    }
    const bool self_closing = tag.back() == '/';
    if (self_closing) tag.pop_back();
    element e;
    e.name = tag.substr(0, tag.find_first_of(" \n\t"));
    for (std::sregex_iterator it(tag.begin(), tag.end(), attr), stop; it != stop; ++it) e.attrs[(*it)[1]] = (*it)[2];
    const std::size_t next = doc.find('<', i);
    e.text = doc.substr(i, next == std::string::npos ? std::string::npos : next - i);
    out.push_back(e);
    if (!self_closing) open.push_back(e.name);
  }
  CHECK(open.empty());
  return out;
}

}  // namespace

TEST_CASE("inflate_raw: a hand-made stream round-trips, a cut one is truncated, a bomb is refused") {
  const std::string text = "the quick brown fox jumps over the lazy dog";
  const std::string z = deflate_raw(text);
  CHECK(inflate_raw(z, 1024).bytes == text);
  CHECK(inflate_raw(z, 1024).error == embedded_error::none);
  CHECK(inflate_raw(z.substr(0, z.size() / 2), 1024).error == embedded_error::truncated);
  CHECK(inflate_raw("", 1024).error == embedded_error::truncated);
  // 64 MiB of zeros deflates to ~64 KiB: refused at the limit, never inflated whole.
  const std::string bomb = deflate_raw(std::string(64u << 20, '\0'));
  CHECK(bomb.size() < (128u << 10));
  const auto r = inflate_raw(bomb, 256u << 10);
  CHECK(r.error == embedded_error::too_large);
  CHECK(r.bytes.empty());
  // Not deflate at all: a stored block header with a broken length check (LEN != ~NLEN).
  CHECK(inflate_raw(std::string("\x01\x05\x00\x00\x00", 5), 1024).error == embedded_error::bad_deflate);
}

TEST_CASE("decode_float_field: hand-written vectors") {
  const auto ok = decode_float_field(field_of({0.0f, 34.0f, 1.5f, -2.25f}));
  REQUIRE(ok.error == embedded_error::none);
  CHECK(ok.values == std::vector<float>{0.0f, 34.0f, 1.5f, -2.25f});
  CHECK(decode_float_field("FLOATBE-stream/deflate:base64^AAAA").error == embedded_error::unknown_encoding);
  CHECK(decode_float_field("FLOATLE-stream/deflate:base64^Y2AA!A==").error == embedded_error::bad_base64);
  CHECK(decode_float_field("FLOATLE-stream/deflate:base64^").error == embedded_error::bad_base64);
  // Five bytes: not whole floats.
  CHECK(decode_float_field("FLOATLE-stream/deflate:base64^" + base64_encode(deflate_raw("abcde"))).error ==
        embedded_error::not_floats);
  // A NaN is no point of a curve.
  CHECK(decode_float_field(field_of({1.0f, std::numeric_limits<float>::quiet_NaN()})).error ==
        embedded_error::not_floats);
  embedded_limits small;
  small.max_encoded = 8;
  CHECK(decode_float_field(field_of({1, 2, 3, 4, 5, 6, 7, 8}), small).error == embedded_error::too_large);
  embedded_limits tiny;
  tiny.max_inflated = 12;
  CHECK(decode_float_field(field_of({1, 2, 3, 4}), tiny).error == embedded_error::too_large);
}

TEST_CASE("decode_histogram: the layout, and lengths that do not add up") {
  const std::string marks = field_of({0, 34, 0, 70, 2, 2, 3.5f, 20, 0, 1});
  const std::string curve = field_of({0, 34, 0, 70, 2, 10, 20, 0, 2, 3, 1, 2, 3, 5, 7, 4});
  const auto r = decode_histogram("RBC/PLT", "PltAlongRes", marks, curve);
  REQUIRE(r.error == embedded_error::none);
  const histogram& h = *r.value;
  CHECK(h.x_max == 34);
  CHECK(h.y_max == 70);
  CHECK(h.x_ticks == std::vector<double>{10, 20});
  CHECK(h.x == std::vector<double>{1, 2, 3});
  CHECK(h.y == std::vector<double>{5, 7, 4});
  CHECK(h.markers == std::vector<double>{3.5, 20});
  CHECK(h.marker_ids == std::vector<int>{0, 1});
  // One y short, one float too many, a count that is not whole, three arrays instead of two.
  CHECK(decode_histogram("", "", marks, field_of({0, 34, 0, 70, 0, 0, 2, 3, 1, 2, 3, 5, 7})).error ==
        embedded_error::bad_layout);
  CHECK(decode_histogram("", "", marks, field_of({0, 34, 0, 70, 0, 0, 2, 1, 1, 5, 9})).error ==
        embedded_error::bad_layout);
  CHECK(decode_histogram("", "", marks, field_of({0, 34, 0, 70, 0, 0, 2, 1.5f, 1, 5})).error ==
        embedded_error::bad_layout);
  CHECK(decode_histogram("", "", marks, field_of({0, 34, 0, 70, 0, 0, 3, 1, 1, 5, 6})).error ==
        embedded_error::bad_layout);
  CHECK(decode_histogram("", "", field_of({0, 34, 0, 70, 2, 2, 3.5f, 20, 0}), curve).error ==
        embedded_error::bad_layout);
  const auto bad = decode_histogram("", "", marks, "FLOATLE-stream/deflate:base64^%%%%");
  CHECK(bad.error == embedded_error::bad_base64);
  CHECK(bad.detail.find("M.7") != std::string::npos);
}

TEST_CASE("Yumizen H500 capture: the PLT and RBC histograms decode to the capture's numbers") {
  const auto messages = capture_messages("horiba-yumizen_h500-result-flags-histograms.astm");
  if (messages.empty()) return;  // skipped with a WARN by captures_dir
  REQUIRE(messages.size() == 1);
  const auto recs = histogram_records(messages[0]);
  REQUIRE(recs.size() == 2);  // M|3 is a MATRIX, M|4 REAGENT: not histograms
  CHECK(recs[0].o_sample == "2021679");
  CHECK(recs[0].name == "RbcAlongRes");
  CHECK(recs[1].name == "PltAlongRes");
  CHECK(recs[1].group == "RBC/PLT");
  CHECK(recs[0].scope_begin == 3);  // H P O C M ...
  const auto plt = decode_histogram(recs[1].group, recs[1].name, recs[1].markers, recs[1].curve);
  REQUIRE(plt.error == embedded_error::none);
  const histogram& h = *plt.value;
  // 522 floats: 0 34 0 70 | 4: 2 10 20 30 | 0 | 2 255 | x | y.
  CHECK(h.x_min == 0);
  CHECK(h.x_max == 34);
  CHECK(h.y_max == 70);
  CHECK(h.x_ticks == std::vector<double>{2, 10, 20, 30});
  CHECK(h.x.size() == 255);
  CHECK(h.y.size() == 255);
  // Channels 76, 153 and 230 are exactly 10, 20 and 30 fL: the ticks (Python read the same).
  CHECK(h.x[75] == 10.0);
  CHECK(h.x[152] == 20.0);
  CHECK(h.x[229] == 30.0);
  // Markers 3.2875, 17.7525, 11.309 with ids 0 1 2.
  REQUIRE(h.markers.size() == 3);
  CHECK(h.markers[0] == Approx(3.2875));
  CHECK(h.markers[1] == Approx(17.7525));
  CHECK(h.markers[2] == Approx(11.309));
  CHECK(h.marker_ids == std::vector<int>{0, 1, 2});
  double peak = 0;
  for (double v : h.y) peak = std::max(peak, v);
  CHECK(peak == 16);
  const auto rbc = decode_histogram(recs[0].group, recs[0].name, recs[0].markers, recs[0].curve);
  REQUIRE(rbc.error == embedded_error::none);
  CHECK(rbc.value->x.size() == 254);
  CHECK(rbc.value->markers.empty());
  CHECK(rbc.value->y_max == 600);
  // The curve's mean volume is the MCV the same message reports (79.3 fL), within 3 fL.
  double n = 0, sum = 0;
  for (std::size_t i = 0; i < rbc.value->x.size(); ++i) {
    n += rbc.value->y[i];
    sum += rbc.value->x[i] * rbc.value->y[i];
  }
  CHECK(sum / n == Approx(79.3).margin(3.0));
}

TEST_CASE("Yumizen H550 capture: a curve that does not inflate is refused, its markers still read") {
  const auto messages = capture_messages("horiba-yumizen_h550-qc-result-records.astm");
  if (messages.empty()) return;
  REQUIRE(messages.size() == 1);
  const auto recs = histogram_records(messages[0]);
  REQUIRE(recs.size() == 1);
  CHECK(recs[0].o_sample == "PX449L");
  // The example in go-astm breaks off at byte 97 of 966 (Python's zlib says the same).
  const auto r = decode_histogram(recs[0].group, recs[0].name, recs[0].markers, recs[0].curve);
  CHECK(r.error == embedded_error::bad_deflate);
  const auto marks = decode_float_field(recs[0].markers);
  REQUIRE(marks.error == embedded_error::none);
  CHECK(marks.values.size() == 12);
  CHECK(marks.values[7] == Approx(21.6975));
}

TEST_CASE("histogram_svg: title, one point per channel, one line per marker") {
  histogram h;
  h.name = "PltAlongRes";
  h.x_min = 0;
  h.x_max = 34;
  h.y_min = 0;
  h.y_max = 70;
  h.x_ticks = {2, 10, 20, 30};
  for (int i = 1; i <= 40; ++i) {
    h.x.push_back(i * 0.8);
    h.y.push_back(i % 7);
  }
  h.markers = {3.2875, 17.7525};
  h.marker_ids = {0, 1};
  const std::string svg = histogram_svg(h, "PLT", "S<1&2>");
  const auto els = parse_xml(svg);
  REQUIRE_FALSE(els.empty());
  CHECK(els[0].name == "svg");
  int polylines = 0, markers = 0, titles = 0;
  std::vector<std::string> xs;
  for (const auto& e : els) {
    if (e.name == "title") {
      ++titles;
      CHECK(e.text == "PLT histogram, sample S&lt;1&amp;2&gt;");
    }
    if (e.name == "polyline" && e.attrs.count("class") && e.attrs.at("class") == "curve") {
      ++polylines;
      std::size_t pairs = 0;
      std::string pts = e.attrs.at("points");
      std::regex pair(R"((-?[0-9.]+),(-?[0-9.]+))");
      for (std::sregex_iterator it(pts.begin(), pts.end(), pair), stop; it != stop; ++it) {
        ++pairs;
        const double px = std::stod((*it)[1]), py = std::stod((*it)[2]);
        CHECK(px >= 0);
        CHECK(px <= 640);
        CHECK(py >= 0);
        CHECK(py <= 400);
      }
      CHECK(pairs == 40);
    }
    if (e.name == "line" && e.attrs.count("class") && e.attrs.at("class") == "marker") {
      ++markers;
      xs.push_back(e.attrs.at("data-x"));
    }
  }
  CHECK(titles == 1);
  CHECK(polylines == 1);
  CHECK(markers == 2);
  CHECK(xs == std::vector<std::string>{"3.2875", "17.7525"});
  CHECK(svg.find("PLT \xE2\x80\x94 sample S&lt;1&amp;2&gt;") != std::string::npos);
}
