// The Prometheus histogram behind /metrics' interfaced_ingest_ack_seconds and
// interfaced_backend_request_seconds: cumulative buckets, sum and count, and the quantile bound
// the benchmarks read.

#include <catch2/catch.hpp>

#include <chrono>
#include <sstream>
#include <string>

#include "transport/latency_histogram.hpp"

using interfaced::transport::latency_histogram;
using namespace std::chrono_literals;

TEST_CASE("latency histogram: cumulative buckets, sum, count and quantile bounds in Prometheus form") {
  latency_histogram h;
  CHECK(h.quantile_bound(0.99) == 0);  // empty
  for (int i = 0; i < 98; ++i) h.observe(800us);  // -> le 0.001
  h.observe(4ms);                                 // -> le 0.004
  h.observe(30s);                                 // above every bound: +Inf only
  CHECK(h.count() == 100);
  CHECK(h.quantile_bound(0.5) == Approx(0.001));
  CHECK(h.quantile_bound(0.98) == Approx(0.001));
  CHECK(h.quantile_bound(0.99) == Approx(0.004));
  CHECK(h.quantile_bound(1.0) == std::numeric_limits<double>::infinity());

  std::ostringstream out;
  h.write(out, "x_seconds", "device=\"d1\"");
  const std::string text = out.str();
  INFO(text);
  CHECK(text.find("x_seconds_bucket{device=\"d1\",le=\"0.0005\"} 0\n") != std::string::npos);
  CHECK(text.find("x_seconds_bucket{device=\"d1\",le=\"0.001\"} 98\n") != std::string::npos);
  CHECK(text.find("x_seconds_bucket{device=\"d1\",le=\"0.004\"} 99\n") != std::string::npos);
  CHECK(text.find("x_seconds_bucket{device=\"d1\",le=\"10\"} 99\n") != std::string::npos);
  CHECK(text.find("x_seconds_bucket{device=\"d1\",le=\"+Inf\"} 100\n") != std::string::npos);
  CHECK(text.find("x_seconds_count{device=\"d1\"} 100\n") != std::string::npos);
  CHECK(text.find("x_seconds_sum{device=\"d1\"} 30.0") != std::string::npos);  // 98*0.0008 + 0.004 + 30

  // Between 5 and 25 ms no step is more than a quarter: an 11 ms p99 reads 12.5 ms, not 15.
  latency_histogram fine;
  for (int i = 0; i < 100; ++i) fine.observe(11ms);
  CHECK(fine.quantile_bound(0.99) == Approx(0.0125));
  for (std::size_t i = 1; i < latency_histogram::bounds.size(); ++i) {
    INFO("bound " << latency_histogram::bounds[i]);
    if (latency_histogram::bounds[i] > 0.005 && latency_histogram::bounds[i] <= 0.025)
      CHECK(latency_histogram::bounds[i] <= latency_histogram::bounds[i - 1] * 1.25 + 1e-12);
  }

  std::ostringstream bare;
  h.write(bare, "y");
  CHECK(bare.str().find("y_bucket{le=\"+Inf\"} 100\n") != std::string::npos);
  CHECK(bare.str().find("y_count 100\n") != std::string::npos);
}
