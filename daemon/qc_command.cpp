#include "daemon/qc_command.hpp"

#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>
#include <vector>

#include "daemon/exit_codes.hpp"
#include "parsers/number.hpp"
#include "rerun/qc_json.hpp"
#include "rerun/wall_time.hpp"
#include "rerun/westgard.hpp"

namespace interfaced::daemon {

namespace {

using json = nlohmann::json;
namespace qc = rerun::qc;

std::vector<std::string> split_csv_line(const std::string& line) {
  // Plain CSV: fields separated by ',', optionally double-quoted ("" an escaped quote).
  std::vector<std::string> out(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') out.back() += '"', ++i;
      else if (c == '"') quoted = false;
      else out.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else if (c != '\r') {
      out.back() += c;
    }
  }
  return out;
}

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t");
  const auto e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

struct row {
  std::string observed_at, parameter, level, value;
  rerun::timestamp t{};
  std::optional<double> numeric;
};

}  // namespace

int run_qc_evaluate(const std::string& limits_file, const std::string& series_csv, std::ostream& out,
                    std::ostream& err) {
  std::ifstream lin(limits_file, std::ios::binary);
  if (!lin) {
    err << limits_file << ": cannot read the file\n";
    return exit_no_input;
  }
  std::vector<qc::limits> limits;
  try {
    const json j = json::parse(lin);
    limits = qc::limits_from_json(j);
  } catch (const json::parse_error& e) {
    err << limits_file << ": not JSON: " << e.what() << '\n';
    return exit_config;
  } catch (const rerun::json_error& e) {
    err << limits_file << ": " << e.what() << '\n';
    return exit_config;
  }
  std::ifstream in(series_csv, std::ios::binary);
  if (!in) {
    err << series_csv << ": cannot read the file\n";
    return exit_no_input;
  }
  std::string line;
  std::size_t line_no = 0;
  int status = exit_ok;
  std::vector<row> rows;
  std::vector<std::size_t> line_of;
  bool header = false;
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) continue;
    auto f = split_csv_line(line);
    for (auto& x : f) x = trim(x);
    if (!header) {
      if (f != std::vector<std::string>{"observed_at", "parameter", "level", "value"}) {
        err << series_csv << ": line " << line_no << ": expected the header observed_at,parameter,level,value\n";
        return exit_bad_input;
      }
      header = true;
      continue;
    }
    if (f.size() != 4) {
      err << series_csv << ": line " << line_no << ": expected 4 fields, found " << f.size() << '\n';
      status = exit_bad_input;
      continue;
    }
    const auto t = rerun::parse_wall_time(f[0]);
    if (!t) {
      err << series_csv << ": line " << line_no << ": observed_at \"" << f[0]
          << "\" is not an ISO-8601 time (2026-11-23T08:00:00+01:00)\n";
      status = exit_bad_input;
      continue;
    }
    rows.push_back({f[0], f[1], f[2], f[3], *t, parse_number(f[3])});
    line_of.push_back(line_no);
  }
  if (!header) {
    err << series_csv << ": empty; expected the header observed_at,parameter,level,value\n";
    return exit_bad_input;
  }
  // One chart per parameter (its levels are the series); the same time is the same QC event.
  std::map<std::string, std::vector<std::size_t>> by_parameter;
  for (std::size_t i = 0; i < rows.size(); ++i) by_parameter[rows[i].parameter].push_back(i);
  std::vector<qc::chart_result> results(rows.size());
  std::vector<std::optional<double>> zs(rows.size());
  qc::chart_options opt;
  opt.event_window_s = 0;
  for (const auto& [parameter, idx] : by_parameter) {
    std::vector<qc::chart_point> pts;
    for (std::size_t i : idx) {
      const row& r = rows[i];
      // Material and lot of a limit are labels here: the CSV names parameter and level only.
      const qc::limits* l = nullptr;
      for (const auto& x : limits)
        if (x.series.parameter == r.parameter && x.series.level == r.level) l = &x;
      zs[i] = l ? qc::z_score(r.numeric, l->mean, l->sd) : std::nullopt;
      pts.push_back({r.t, r.level, zs[i]});
    }
    const auto res = qc::evaluate_chart(pts, opt);
    for (std::size_t k = 0; k < idx.size(); ++k) results[idx[k]] = res[k];
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const row& r = rows[i];
    nlohmann::ordered_json j = {{"observed_at", r.observed_at},
              {"parameter", r.parameter},
              {"level", r.level},
              {"value", r.numeric ? nlohmann::ordered_json(*r.numeric) : nlohmann::ordered_json(r.value)},
              {"z", zs[i] ? nlohmann::ordered_json(*zs[i]) : nlohmann::ordered_json(nullptr)},
              {"outcome", std::string(qc::to_string(results[i].eval.result))},
              {"rules", qc::rule_names(results[i].eval.fired)}};
    out << j.dump() << '\n';
  }
  return status;
}

}  // namespace interfaced::daemon
