#include "daemon/stats_command.hpp"

#include <chrono>
#include <ostream>

#include <nlohmann/json.hpp>

#include "daemon/clock.hpp"
#include "daemon/config.hpp"
#include "daemon/exit_codes.hpp"
#include "transport/history_store.hpp"
#include "transport/outbox.hpp"

namespace interfaced::daemon {

stats_answer answer_stats(const transport::history_store& store, const rerun::lab_zone& zone,
                          const std::vector<std::pair<std::string, std::string>>& params,
                          std::chrono::system_clock::time_point now, const std::string& default_format) {
  stats_answer a;
  auto p = rerun::parse_stats_params(params, default_format);
  const auto today = std::chrono::floor<std::chrono::days>(zone.wall_time(now));
  auto r = rerun::resolve(p.q, today);
  if (p.error.empty()) p.error = r.error;
  if (!p.error.empty()) {
    a.status = 400;
    a.content_type = "text/plain; charset=utf-8";
    a.body = p.error + "\n";
    return a;
  }
  // aggregate() sums the parameters when by device.
  const auto table = rerun::aggregate(r, zone.name(), store.read(r.from, r.to, r.q.events, r.q.devices));
  if (p.format == "csv") {
    a.content_type = "text/csv; charset=utf-8";
    a.body = rerun::to_csv(table);
  } else if (p.format == "table") {
    a.content_type = "text/plain; charset=utf-8";
    a.body = rerun::to_table(table);
  } else {
    a.body = rerun::to_json_text(table) + "\n";
  }
  return a;
}

int run_stats_command(const stats_command& c, std::ostream& out, std::ostream& err) {
  std::string file = c.file;
  rerun::lab_zone zone;
  if (file.empty() || !c.config.empty()) {
    auto r = load_config(c.config, /*check_devices=*/false);
    if (!r.ok()) {
      for (const auto& p : r.problems) err << format_problem(c.config, p) << '\n';
      return exit_config;
    }
    if (file.empty()) file = r.cfg.outbox.path.string();
    zone = lab_zone_of(r.cfg.lab.timezone).zone;
  }
  try {
    { transport::outbox_admin migrate(file); }  // an older file gets the summary's tables (schema 6)
    transport::history_store store(file);
    if (c.action == "rebuild") {
      std::optional<std::chrono::sys_days> from;
      if (!c.rebuild_from.empty()) {
        from = rerun::parse_day(c.rebuild_from);
        if (!from) {
          err << "stats rebuild: --from: expected a date like 2026-12-04, got \"" << c.rebuild_from << "\"\n";
          return exit_usage;
        }
      }
      const auto n = store.rebuild(zone, from);
      out << "historical summary rebuilt from " << n << " events (time zone " << zone.name() << ")\n";
      return exit_ok;
    }
    if (c.action == "prune") {
      const auto n = store.prune_before(c.before_year);
      out << n << " summary rows before " << c.before_year << " dropped\n";
      return exit_ok;
    }
    const auto a = answer_stats(store, zone, c.params, std::chrono::system_clock::now(), "table");
    if (a.status != 200) {
      err << "stats: " << a.body;
      return exit_usage;
    }
    out << a.body;
    return exit_ok;
  } catch (const std::exception& e) {
    err << "stats: " << e.what() << '\n';
    return exit_io;
  }
}

}  // namespace interfaced::daemon
