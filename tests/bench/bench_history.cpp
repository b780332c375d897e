// The historical summary and the lab's view at scale (issue #16 acceptance), on demand:
//   build/tests/bench/bench_history [results=1000000] [dir] [keep]
// keep: the directory is kept, and a later run with keep reads the outbox already there (the
// queries again without the write and rebuild, which take minutes).
// 1. Writes `results` patient results through the live path (outbox appends: one message per
//    sample, its history rows and its summary events in the same transaction), 32 devices x 50
//    parameters over 6 months, in Asia/Kolkata.
// 2. `stats rebuild` (history_store::rebuild) and a comparison with the live rows.
// 3. A 6-month query for 32 devices x 50 parameters (by parameter and by device): median of 7.
// 4. Server time of the pages and their JSON through lab_view::handle (no network): /, /stats,
//    /api/stats (6 months), /api/messages?sample=..., /api/help?q=checksum.
#include <time.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>

#include <nlohmann/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "daemon/lab_view.hpp"
#include "daemon/stats_command.hpp"
#include "rerun/history.hpp"
#include "transport/history_store.hpp"
#include "transport/outbox.hpp"

using namespace interfaced;
using clk = std::chrono::steady_clock;

namespace {

double ms_since(clk::time_point t0) { return std::chrono::duration<double, std::milli>(clk::now() - t0).count(); }

double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// The CPU time of the last median_ms run's median: on a shared, loaded machine the wall time
// also counts the time other processes had the core.
double last_cpu_ms = 0;

double median_ms(int n, const std::function<void()>& f) {
  std::vector<std::pair<double, double>> v;
  for (int i = 0; i < n; ++i) {
    const auto t0 = clk::now();
    const double c0 = cpu_ms();
    f();
    v.emplace_back(ms_since(t0), cpu_ms() - c0);
  }
  std::sort(v.begin(), v.end());
  last_cpu_ms = v[v.size() / 2].second;
  return v[v.size() / 2].first;
}

}  // namespace

int main(int argc, char** argv) {
  const long total = argc > 1 ? std::atol(argv[1]) : 1000000;
  const std::filesystem::path dir = argc > 2 ? argv[2] : std::filesystem::temp_directory_path() / "interfaced-bench-history";
  const bool keep = argc > 3 && std::string(argv[3]) == "keep";
  const auto file = dir / "outbox.sqlite";
  const bool reuse = keep && std::filesystem::exists(file);
  if (!reuse) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  const auto zone = *rerun::lab_zone::find("Asia/Kolkata");
  const int devices = 32, params = 50, days = 182, per_sample = 10;
  const auto first_day = std::chrono::sys_days{std::chrono::year{2026} / 6 / 1};

  std::printf("bench_history: %ld results, %d devices x %d parameters over %d days, %s\n", total, devices, params, days,
              file.c_str());
  const auto t_write = clk::now();
  if (!reuse) {
    transport::outbox_options o;
    o.path = file;
    o.max_messages = 10'000'000;
    transport::outbox box(o);
    box.set_lab_zone(zone);
    long written = 0, sample = 0;
    std::vector<transport::new_message> msgs;
    transport::state_changes sc;
    std::size_t queued = 0;
    std::mutex m;
    std::condition_variable cv;
    std::size_t done = 0;
    while (written < total) {
      // One sample: per_sample results on one device, observed at one instant of its day.
      const int dev = static_cast<int>(sample % devices);
      const auto day = first_day + std::chrono::days{(sample * 7919) % days};
      const auto at = std::chrono::sys_seconds{day} + std::chrono::seconds{(sample * 104729) % 86400};
      const std::string observed = rerun::format_message_time(zone.wall_time(at));
      const std::string sid = "S-" + std::to_string(sample);
      std::string body = "{\"device_id\":\"dev" + std::to_string(dev) + "\",\"results\":[";
      for (int k = 0; k < per_sample && written < total; ++k, ++written) {
        const std::string p = "P" + std::to_string((sample + k) % params);
        rerun::history_event e;
        e.event_type = "device_result";
        e.dimension_a = "dev" + std::to_string(dev);
        e.dimension_b = p;
        e.sample = sid;
        e.observed_at = observed;
        sc.events.push_back(e);
        transport::history_row h{sid, p, {}};
        h.o.value = "1.0";
        h.o.observed_at = observed;
        h.o.received_at = at;
        sc.history.push_back(std::move(h));
        body += std::string(k ? "," : "") + "{\"sample_id\":\"" + sid +
                "\",\"parameter\":\"" + p + "\",\"value\":\"1.0\"}";
      }
      body += "]}";
      transport::new_message nm;
      nm.kind = "results";
      nm.ordering_key = "sample:" + sid;
      nm.body = std::move(body);
      nm.device = "dev" + std::to_string(dev);
      msgs.push_back(std::move(nm));
      ++sample;
      if (msgs.size() >= 100 || written >= total) {
        ++queued;
        box.append(std::move(msgs), std::move(sc), [&](transport::append_result r) {
          if (!r.durable) std::fprintf(stderr, "append failed: %s\n", r.error.c_str());
          std::lock_guard l(m);
          ++done;
          cv.notify_all();
        });
        msgs = {};
        sc = {};
        // Keep at most 50 batches in flight (memory), as analysers would.
        std::unique_lock l(m);
        cv.wait(l, [&] { return queued - done < 50; });
      }
    }
    std::unique_lock l(m);
    cv.wait(l, [&] { return done == queued; });
  }
  std::printf("live write: %.1f s (%ld results, outbox messages, history rows and summary events in the same transactions)\n",
              ms_since(t_write) / 1000, total);

  transport::history_store store(file);
  bool equal = true;
  if (!reuse) {
    const auto live = store.all();
    const auto t_rebuild = clk::now();
    const auto replayed = store.rebuild(zone);
    const double rebuild_ms = ms_since(t_rebuild);
    const auto rebuilt = store.all();
    equal = live.size() == rebuilt.size();
    for (std::size_t i = 0; equal && i < live.size(); ++i)
      equal = live[i].day == rebuilt[i].day && live[i].event_type == rebuilt[i].event_type &&
              live[i].dimension_a == rebuilt[i].dimension_a && live[i].dimension_b == rebuilt[i].dimension_b &&
              live[i].value == rebuilt[i].value;
    std::printf("stats rebuild: %zu events in %.1f s; %zu summary rows (days counted); rebuilt == live: %s\n", replayed,
                rebuild_ms / 1000, live.size(), equal ? "yes" : "NO");
  } else {
    std::printf("reusing %s (no write, no rebuild)\n", file.c_str());
  }

  const std::vector<std::pair<std::string, std::string>> six_months = {{"from", "2026-06-01"}, {"to", "2026-11-30"}};
  auto by_device = six_months;
  by_device.emplace_back("by", "device");
  const auto now = std::chrono::system_clock::time_point{std::chrono::sys_days{std::chrono::year{2026} / 12 / 1}};
  const double q_param = median_ms(7, [&] { (void)daemon::answer_stats(store, zone, six_months, now, "json"); });
  const double q_param_cpu = last_cpu_ms;
  const std::size_t rows = nlohmann::json::parse(daemon::answer_stats(store, zone, six_months, now, "json").body)["rows"].size();
  const double q_device = median_ms(7, [&] { (void)daemon::answer_stats(store, zone, by_device, now, "json"); });
  std::printf("6-month query, 32 devices x 50 parameters (%zu rows x 183 buckets, JSON built): by parameter %.1f ms"
              " (CPU %.1f ms), by device %.1f ms (CPU %.1f ms) (median of 7)\n",
              rows, q_param, q_param_cpu, q_device, last_cpu_ms);

  daemon::lab_view view(file, {}, [zone] { return zone; });
  auto page = [&](const std::string& target) {
    transport::http_request_view req;
    req.method = "GET";
    req.target = target;
    std::size_t bytes = 0;
    unsigned status = 0;
    const double t = median_ms(7, [&] {
      const auto r = view.handle(req, now);
      status = r ? r->status : 0;
      bytes = r ? r->body.size() : 0;
    });
    std::printf("  GET %-60s %3u %8zu bytes %7.1f ms (CPU %.1f ms)\n", target.c_str(), status, bytes, t, last_cpu_ms);
  };
  std::printf("pages and their JSON, server time (median of 7), %ld results stored:\n", total);
  page("/");
  page("/stats");
  page("/messages?sample=S-1001");
  page("/help?q=checksum");
  page("/api/stats?by=device&event=device_result&event=device_rerun_requested&event=device_qc_rejected");
  page("/api/stats?from=2026-06-01&to=2026-11-30");
  page("/api/stats?from=2026-06-01&to=2026-11-30&by=device&format=csv");
  page("/api/messages?sample=S-1001");
  page("/api/messages?sample=S-nobody");
  page("/api/messages");
  page("/api/messages?device=dev7");
  page("/api/help?q=checksum");
  std::printf("command: %s %ld %s%s\n", argv[0], total, dir.c_str(), keep ? " keep" : "");
  if (!keep) std::filesystem::remove_all(dir);
  return equal ? 0 : 1;
}
