// QC benchmarks (issue #14): Westgard evaluations per second on one core with the default rule
// set (1-3s/2-2s/R-4s/4-1s/10-x, 1-2s warning; target >= 5 million), and the time to re-evaluate
// a 100,000-result series after an exclusion at its start (target < 50 ms with the 8-run stop),
// with the worst case without the stop. Usage: bench_qc [seconds=3]

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "rerun/westgard.hpp"

using namespace interfaced::rerun;
using clk = std::chrono::steady_clock;

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::stod(argv[1]) : 3.0;
  // A realistic chart: z ~ N(0, 1), so most results pass every rule (each rule is evaluated).
  std::mt19937 gen(14);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<double> zs(4096);
  for (auto& z : zs) z = nd(gen);
  const qc::rule_set rs = qc::rule_set::defaults();
  const double event[] = {0.4};

  std::size_t n = 0, rejects = 0;
  const auto t0 = clk::now();
  const auto until = t0 + std::chrono::duration<double>(seconds);
  while (clk::now() < until) {
    for (std::size_t i = 12; i < zs.size(); ++i) {
      // The history is the 11 results before i (all a rule set ever reads), the event one other level.
      const auto e = qc::evaluate(zs[i], std::span<const double>(zs.data() + i - 11, 11), event, rs);
      rejects += e.result == qc::outcome::reject ? 1u : 0u;
      ++n;
    }
  }
  const double s = std::chrono::duration<double>(clk::now() - t0).count();
  std::printf("westgard: %zu evaluations in %.2f s = %.2f million/s on one core (default rule set; %zu rejects)\n", n,
              s, static_cast<double>(n) / s / 1e6, rejects);

  // 100,000 control results of one series, one a day-ish; the second is excluded after the fact.
  std::vector<qc::chart_point> pts(100000);
  const auto start = std::chrono::sys_days{std::chrono::year{2026} / 1 / 1};
  for (std::size_t i = 0; i < pts.size(); ++i)
    pts[i] = {timestamp{start} + std::chrono::hours{static_cast<long>(i)}, "L1", nd(gen)};
  pts[1].z = 3.5;  // a 1-3s reject, excluded below
  const auto t1 = clk::now();
  const auto original = qc::evaluate_chart(pts, {});
  const double initial_ms = std::chrono::duration<double, std::milli>(clk::now() - t1).count();
  pts[1].excluded = true;
  const auto t2 = clk::now();
  const auto stop8 = qc::reevaluate(pts, original, pts[1].observed_at, {}, 8);
  const double stop_ms = std::chrono::duration<double, std::milli>(clk::now() - t2).count();
  const auto t3 = clk::now();
  const auto all = qc::reevaluate(pts, original, pts[1].observed_at, {}, 0);
  const double all_ms = std::chrono::duration<double, std::milli>(clk::now() - t3).count();
  std::printf("chart of %zu results: first evaluation %.1f ms\n", pts.size(), initial_ms);
  std::printf("re-evaluate after excluding result 2: %.2f ms with the 8-run stop (%zu runs re-evaluated, %zu changed)\n",
              stop_ms, stop8.runs_reevaluated, stop8.runs_changed);
  std::printf("re-evaluate after excluding result 2: %.2f ms without the stop (worst case: %zu runs, %zu changed)\n",
              all_ms, all.runs_reevaluated, all.runs_changed);
  return 0;
}
