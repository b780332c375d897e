#pragma once
// A histogram (devices/embedded_histogram.hpp) drawn as a standalone SVG document: the daemon's
// own drawing of what a Yumizen M record carries, uploaded as a file-type report.
// Pure: values in, text out. The drawing: a title naming the parameter and the sample, the axes
// over the display range the analyser gives (x ticks as it sends them, y ticks from the range),
// the curve as one <polyline class="curve"> with one point per channel, and each marker
// (threshold) as a dashed <line class="marker"> with data-x (its position, as sent) and data-id.

#include <string>
#include <string_view>

#include "devices/embedded_histogram.hpp"

namespace interfaced::devices {

struct histogram_svg_options {
  int width = 640;
  int height = 400;
  std::string x_unit = "fL";  // the Yumizen's RBC and PLT curves are cell volume
};

[[nodiscard]] std::string histogram_svg(const histogram& h, std::string_view parameter, std::string_view sample_id,
                                        const histogram_svg_options& o = {});

// Text for an SVG/XML text node or attribute value: & < > " ' escaped, control bytes dropped.
[[nodiscard]] std::string xml_escape(std::string_view s);

}  // namespace interfaced::devices
