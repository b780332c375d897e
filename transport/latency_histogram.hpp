#pragma once
// A Prometheus histogram of durations in seconds, with fixed buckets from 0.25 ms to 10 s (what a
// link's ingest-to-ACK time, an outbox commit and a backend round trip span). Not thread-safe:
// its owner serialises access (the event loop, or the outbox's mutex).

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string_view>

namespace interfaced::transport {

class latency_histogram {
 public:
  // Finer between 1 and 25 ms: where an ACK after an fsync lands, and where targets are set. From
  // 5 ms on, steps of at most a quarter (6, 9, 12.5, 17.5 added, issue #17): a p99 read as a bucket
  // bound is then at most 25 % above the true one, where 15 -> 20 ms was a third.
  static constexpr std::array<double, 26> bounds{0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.0025, 0.003,
                                                 0.004,   0.005,  0.006, 0.0075, 0.009, 0.01,   0.0125,
                                                 0.015,   0.0175, 0.02,  0.025,  0.05,  0.1,    0.25,
                                                 0.5,     1.0,    2.5,   5.0,    10.0};

  void observe(std::chrono::steady_clock::duration d) noexcept {
    const double s = std::chrono::duration<double>(d).count();
    std::size_t i = 0;
    while (i < bounds.size() && s > bounds[i]) ++i;
    ++counts_[i];  // counts_[bounds.size()]: above the last bound (+Inf only)
    sum_ += s;
    ++count_;
  }

  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }

  // The upper bound of the bucket holding quantile q (0..1); +inf past the last bound; 0 when empty.
  [[nodiscard]] double quantile_bound(double q) const noexcept {
    if (count_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_) + 0.999999);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bounds.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return bounds[i];
    }
    return std::numeric_limits<double>::infinity();
  }

  // name_bucket{labels,le="…"} (cumulative), name_sum, name_count. `labels` is empty or e.g.
  // `device="xn-1"`. The HELP/TYPE lines are the caller's (one per metric family).
  void write(std::ostream& out, std::string_view name, std::string_view labels = {}) const {
    const std::string_view sep = labels.empty() ? "" : ",";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < bounds.size(); ++i) {
      cumulative += counts_[i];
      out << name << "_bucket{" << labels << sep << "le=\"" << bounds[i] << "\"} " << cumulative << '\n';
    }
    out << name << "_bucket{" << labels << sep << "le=\"+Inf\"} " << count_ << '\n';
    const std::string_view open = labels.empty() ? "" : "{";
    const std::string_view close = labels.empty() ? "" : "}";
    out << name << "_sum" << open << labels << close << ' ' << sum_ << '\n';
    out << name << "_count" << open << labels << close << ' ' << count_ << '\n';
  }

 private:
  std::array<std::uint64_t, bounds.size() + 1> counts_{};
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

}  // namespace interfaced::transport
