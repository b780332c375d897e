// Prometheus text format 0.0.4: a label value with a backslash, a double quote or a line feed is
// escaped (\\, \", \n) so one odd name cannot break every scrape.
#include <catch2/catch.hpp>

#include "daemon/health.hpp"

using interfaced::daemon::prometheus_label_value;

TEST_CASE("metrics: label values are escaped as the text format requires", "[metrics]") {
  CHECK(prometheus_label_value("chem-1") == "chem-1");
  CHECK(prometheus_label_value("a\"b") == "a\\\"b");
  CHECK(prometheus_label_value("a\\b") == "a\\\\b");
  CHECK(prometheus_label_value("a\nb") == "a\\nb");
  CHECK(prometheus_label_value("\\\"\n") == "\\\\\\\"\\n");
}
