#include "devices/histogram_svg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace interfaced::devices {

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // XML 1.0 allows no C0 control but tab, LF, CR.
        if (static_cast<unsigned char>(ch) < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') break;
        out += ch;
    }
  }
  return out;
}

namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string exact(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string px(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// Ticks at 1, 2 or 5 x 10^k, about five over [lo, hi].
std::vector<double> nice_ticks(double lo, double hi) {
  std::vector<double> out;
  const double span = hi - lo;
  if (!(span > 0)) return out;
  const double raw = span / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9 && out.size() < 20; t += step) out.push_back(t);
  return out;
}

}  // namespace

std::string histogram_svg(const histogram& h, std::string_view parameter, std::string_view sample_id,
                          const histogram_svg_options& o) {
  const double left = 56, right = 16, top = 40, bottom = 44;
  const double pw = o.width - left - right, ph = o.height - top - bottom;
  // The analyser's display range; a curve above it (never seen: the H500 raises y_max to the
  // peak) still fits.
  double y_max = h.y_max;
  for (double v : h.y) y_max = std::max(y_max, v);
  const double y_min = std::min(h.y_min, y_max);
  const double x_min = h.x_min, x_max = h.x_max;
  auto sx = [&](double x) { return left + (std::clamp(x, x_min, x_max) - x_min) / (x_max - x_min) * pw; };
  auto sy = [&](double y) {
    const double span = y_max - y_min;
    return top + ph - (span > 0 ? (std::clamp(y, y_min, y_max) - y_min) / span * ph : 0);
  };

  std::string s;
  s.reserve(4096 + h.x.size() * 16);
  s += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(o.width) + "\" height=\"" +
       std::to_string(o.height) + "\" viewBox=\"0 0 " + std::to_string(o.width) + " " + std::to_string(o.height) +
       "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  const std::string title = std::string(parameter) + " histogram, sample " + std::string(sample_id);
  s += "<title>" + xml_escape(title) + "</title>\n";
  s += "<desc>" + xml_escape(h.group + " " + h.name) + ": " + std::to_string(h.x.size()) + " points, " +
       std::to_string(h.markers.size()) + " markers, drawn by interfaced</desc>\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += "<text class=\"title\" x=\"" + px(left) + "\" y=\"22\" font-size=\"15\" font-weight=\"bold\">" +
       xml_escape(std::string(parameter)) + " \xE2\x80\x94 sample " + xml_escape(std::string(sample_id)) + "</text>\n";
  // Axes.
  s += "<g class=\"axes\" stroke=\"black\" stroke-width=\"1\">\n";
  s += "<line class=\"axis x\" x1=\"" + px(left) + "\" y1=\"" + px(top + ph) + "\" x2=\"" + px(left + pw) + "\" y2=\"" +
       px(top + ph) + "\"/>\n";
  s += "<line class=\"axis y\" x1=\"" + px(left) + "\" y1=\"" + px(top) + "\" x2=\"" + px(left) + "\" y2=\"" +
       px(top + ph) + "\"/>\n";
  s += "</g>\n<g class=\"ticks\" font-size=\"10\">\n";
  std::vector<double> xt = h.x_ticks;
  if (xt.empty()) xt = nice_ticks(x_min, x_max);
  for (double t : xt) {
    if (t < x_min || t > x_max) continue;
    s += "<line x1=\"" + px(sx(t)) + "\" y1=\"" + px(top + ph) + "\" x2=\"" + px(sx(t)) + "\" y2=\"" +
         px(top + ph + 4) + "\" stroke=\"black\"/><text x=\"" + px(sx(t)) + "\" y=\"" + px(top + ph + 16) +
         "\" text-anchor=\"middle\">" + num(t) + "</text>\n";
  }
  std::vector<double> yt = h.y_ticks;
  if (yt.empty()) yt = nice_ticks(y_min, y_max);
  for (double t : yt) {
    s += "<line x1=\"" + px(left - 4) + "\" y1=\"" + px(sy(t)) + "\" x2=\"" + px(left) + "\" y2=\"" + px(sy(t)) +
         "\" stroke=\"black\"/><text x=\"" + px(left - 6) + "\" y=\"" + px(sy(t) + 3) + "\" text-anchor=\"end\">" +
         num(t) + "</text>\n";
  }
  s += "<text x=\"" + px(left + pw / 2) + "\" y=\"" + px(o.height - 6.0) + "\" text-anchor=\"middle\">" +
       xml_escape(o.x_unit) + "</text>\n</g>\n";
  // The curve: one point per channel, as sent.
  s += "<polyline class=\"curve\" fill=\"none\" stroke=\"#1f4e9c\" stroke-width=\"1.5\" points=\"";
  for (std::size_t i = 0; i < h.x.size(); ++i) {
    if (i) s += ' ';
    s += px(sx(h.x[i])) + "," + px(sy(h.y[i]));
  }
  s += "\"/>\n";
  // Markers (thresholds) at their x positions.
  s += "<g class=\"markers\" stroke=\"#c0392b\" stroke-dasharray=\"4 3\">\n";
  for (std::size_t i = 0; i < h.markers.size(); ++i) {
    const double x = h.markers[i];
    const int id = i < h.marker_ids.size() ? h.marker_ids[i] : static_cast<int>(i);
    s += "<line class=\"marker\" data-x=\"" + exact(x) + "\" data-id=\"" + std::to_string(id) + "\" x1=\"" + px(sx(x)) +
         "\" y1=\"" + px(top) + "\" x2=\"" + px(sx(x)) + "\" y2=\"" + px(top + ph) + "\"/>\n";
    s += "<text stroke=\"none\" fill=\"#c0392b\" x=\"" + px(sx(x) + 2) + "\" y=\"" + px(top + 10) + "\">" + num(x) +
         "</text>\n";
  }
  s += "</g>\n</svg>\n";
  return s;
}

}  // namespace interfaced::devices
