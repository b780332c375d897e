// Rule evaluation throughput (rerun/condition.hpp): one 5-clause auto-rerun condition evaluated on
// one core over pre-bound results, the daemon's per-result hot path once a result is bound.
// Target: >= 10 million evaluations/s. Usage: bench_rules [seconds=3]

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "rerun/condition.hpp"
#include "rerun/rules.hpp"

using namespace interfaced;

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::stod(argv[1]) : 3.0;
  // rerun.md's examples joined into one condition: five clauses.
  const std::string src =
      "value > 20 or value < 2 or flag in [\"HH\",\"LL\"] or not is_numeric or "
      "abs(value - previous.value) > 5";
  auto compiled = rerun::condition::compile(src);
  if (!compiled) {
    std::fprintf(stderr, "%s", rerun::format_error("bench", src, compiled.error).c_str());
    return 1;
  }
  const rerun::condition& cond = *compiled.program;

  // Mostly normal results, so every clause is evaluated (the slow path of an `or` chain).
  std::vector<result> results(4);
  const char* values[] = {"13.1", "12.7", "14.0", "25.0"};
  for (std::size_t i = 0; i < results.size(); ++i) {
    results[i].sample_id = "S" + std::to_string(i);
    results[i].code = "HGB";
    results[i].value = values[i];
    results[i].numeric = std::stod(values[i]);
    results[i].flags = {i == 1 ? "H" : "N"};
    results[i].observed_at = "20240301100000";
  }
  const auto now = *rerun::parse_wall_time("2024-03-01T11:00:00");
  const rerun::observation prev{"12.9", 12.9, "20240301080000", now};
  std::vector<rerun::bindings> bound;
  for (const auto& r : results) bound.push_back(rerun::bind_result(r, "HGB", prev, nullptr, now));

  std::size_t evaluations = 0, fired = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    for (int rep = 0; rep < 250'000; ++rep)
      for (const auto& b : bound) fired += cond.evaluate(b) ? 1u : 0u;
    evaluations += std::size_t{250'000} * bound.size();
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < seconds);

  std::string cmd;
  for (int i = 0; i < argc; ++i) (cmd += i ? " " : "") += argv[i];
  std::printf("command: %s\n", cmd.c_str());
  std::printf("condition: %s\n", src.c_str());
  std::printf("evaluations: %zu in %.2f s, fired %zu\n", evaluations, elapsed, fired);
  std::printf("rate: %.1f million evaluations/s (one core; target >= 10)\n", static_cast<double>(evaluations) / elapsed / 1e6);
  return 0;
}
