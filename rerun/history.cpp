#include "rerun/history.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "rerun/wall_time.hpp"

namespace interfaced::rerun {

using std::chrono::sys_days;

const std::vector<std::string>& history_event_types() {
  static const std::vector<std::string> types = {
      std::string(history_events::device_result),          std::string(history_events::device_sample),
      std::string(history_events::device_rerun_requested), std::string(history_events::device_rerun_received),
      std::string(history_events::device_machine_rerun),   std::string(history_events::device_qc_accepted),
      std::string(history_events::device_qc_rejected),     std::string(history_events::device_file_report),
      std::string(history_events::device_dead_letter),     std::string(history_events::device_link_error)};
  return types;
}

bool is_history_event_type(std::string_view t) noexcept {
  const auto& all = history_event_types();
  return std::find(all.begin(), all.end(), t) != all.end();
}

sys_days history_day(const lab_zone& zone, const history_event& e) {
  if (!e.observed_at.empty())
    if (auto d = zone.local_day(e.observed_at)) return *d;
  return std::chrono::floor<std::chrono::days>(zone.wall_time(e.at));
}

std::vector<history_event> batch_history_events(const batch& b, const batch_outcome& out,
                                                std::chrono::sys_time<std::chrono::milliseconds> at) {
  std::vector<history_event> ev;
  auto add = [&](std::string_view type, const std::string& b_dim, const std::string& sample, const std::string& obs) {
    history_event e;
    e.event_type = std::string(type);
    e.dimension_a = b.device;
    e.dimension_b = b_dim;
    e.sample = sample;
    e.observed_at = obs;
    e.at = at;
    ev.push_back(std::move(e));
  };
  for (std::size_t i = 0; i < b.results.size() && i < out.tags.size(); ++i) {
    const auto& r = b.results[i];
    const auto& t = out.tags[i];
    if (t.duplicate || r.qc) continue;
    add(history_events::device_result, t.parameter, r.sample_id, r.observed_at);
    if (r.rerun_number > 0) add(history_events::device_rerun_received, t.parameter, {}, r.observed_at);
    if (r.rerun_number < 0) add(history_events::device_machine_rerun, t.parameter, {}, r.observed_at);
  }
  // A control result's outcome (history.md): accept and the 1-2s warning keep the run usable,
  // reject does not; no_limits was not judged, so it is neither.
  for (const auto& [i, q] : out.controls) {
    if (q.outcome == "reject") add(history_events::device_qc_rejected, q.parameter, {}, q.observed_at);
    else if (q.outcome == "accept" || q.outcome == "warning")
      add(history_events::device_qc_accepted, q.parameter, {}, q.observed_at);
  }
  for (const auto& m : out.messages)
    if (m.kind == endpoint::rerun_request)
      for (const auto& p : m.request.requested_parameters) add(history_events::device_rerun_requested, p, {}, {});
  for (auto& e : action_history_events(out.actions, at)) {
    if (e.dimension_a.empty()) e.dimension_a = b.device;
    ev.push_back(std::move(e));
  }
  return ev;
}

std::vector<history_event> action_history_events(const std::vector<action>& acts,
                                                 std::chrono::sys_time<std::chrono::milliseconds> at) {
  std::vector<history_event> ev;
  for (const auto& a : acts) {
    if (a.kind != action_kind::rerun_recorded) continue;
    for (const auto& p : a.parameters) {
      history_event e;
      e.event_type = std::string(history_events::device_rerun_requested);
      e.dimension_a = a.device;
      e.dimension_b = p;
      e.at = at;
      ev.push_back(std::move(e));
    }
  }
  return ev;
}

std::string format_day(sys_days d) {
  const std::chrono::year_month_day ymd{d};
  std::string out;
  out.reserve(10);
  append_date(out, static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return out;
}

std::optional<sys_days> parse_day(std::string_view s) noexcept {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  int v[3] = {0, 0, 0};
  const std::size_t starts[3] = {0, 5, 8}, lens[3] = {4, 2, 2};
  for (int i = 0; i < 3; ++i)
    for (std::size_t k = 0; k < lens[i]; ++k) {
      const char c = s[starts[i] + k];
      if (c < '0' || c > '9') return std::nullopt;
      v[i] = v[i] * 10 + (c - '0');
    }
  const std::chrono::year_month_day ymd{std::chrono::year{v[0]}, std::chrono::month{static_cast<unsigned>(v[1])},
                                        std::chrono::day{static_cast<unsigned>(v[2])}};
  if (!ymd.ok()) return std::nullopt;
  return sys_days{ymd};
}

std::optional<granularity> granularity_from(std::string_view s) noexcept {
  if (s == "day") return granularity::day;
  if (s == "week") return granularity::week;
  if (s == "month") return granularity::month;
  return std::nullopt;
}

const char* to_string(granularity g) noexcept {
  switch (g) {
    case granularity::day: return "day";
    case granularity::week: return "week";
    case granularity::month: return "month";
  }
  return "day";
}

sys_days bucket_start(sys_days d, granularity g) noexcept {
  switch (g) {
    case granularity::day: return d;
    case granularity::week: {
      // ISO 8601: weeks start on Monday.
      const std::chrono::weekday wd{d};
      return d - std::chrono::days{(wd.c_encoding() + 6) % 7};
    }
    case granularity::month: {
      const std::chrono::year_month_day ymd{d};
      return sys_days{ymd.year() / ymd.month() / std::chrono::day{1}};
    }
  }
  return d;
}

namespace {
sys_days next_bucket(sys_days start, granularity g) {
  switch (g) {
    case granularity::day: return start + std::chrono::days{1};
    case granularity::week: return start + std::chrono::days{7};
    case granularity::month: {
      const std::chrono::year_month_day ymd{start};
      return sys_days{(ymd.year() / ymd.month() + std::chrono::months{1}) / std::chrono::day{1}};
    }
  }
  return start + std::chrono::days{1};
}
}  // namespace

std::vector<sys_days> bucket_starts(sys_days from, sys_days to, granularity g) {
  std::vector<sys_days> out;
  for (sys_days b = bucket_start(from, g); b <= to; b = next_bucket(b, g)) out.push_back(b);
  return out;
}

resolved_query resolve(const stats_query& q, sys_days today) {
  resolved_query r;
  r.q = q;
  r.to = q.to.value_or(today);
  r.from = q.from.value_or(r.to - std::chrono::days{6});
  if (r.from > r.to) r.error = "--from " + format_day(r.from) + " is after --to " + format_day(r.to);
  for (const auto& e : q.events)
    if (!is_history_event_type(e)) r.error = "unknown event type \"" + e + "\"";
  return r;
}

parsed_stats_params parse_stats_params(const std::vector<std::pair<std::string, std::string>>& params,
                                       std::string default_format) {
  parsed_stats_params p;
  p.format = std::move(default_format);
  for (const auto& [k, v] : params) {
    if (k == "from" || k == "to") {
      auto d = parse_day(v);
      if (!d) {
        p.error = k + ": expected a date like 2026-12-04, got \"" + v + "\"";
        continue;
      }
      (k == "from" ? p.q.from : p.q.to) = *d;
    } else if (k == "granularity") {
      auto g = granularity_from(v);
      if (!g) p.error = "granularity: expected day, week or month, got \"" + v + "\"";
      else p.q.gran = *g;
    } else if (k == "by") {
      if (v == "device") p.q.by = stats_by::device;
      else if (v == "parameter") p.q.by = stats_by::parameter;
      else p.error = "by: expected device or parameter, got \"" + v + "\"";
    } else if (k == "event") {
      if (!is_history_event_type(v)) p.error = "event: unknown event type \"" + v + "\"";
      else p.q.events.push_back(v);
    } else if (k == "device") {
      if (!v.empty()) p.q.devices.push_back(v);
    } else if (k == "format") {
      if (v != "json" && v != "csv" && v != "table") p.error = "format: expected table, json or csv, got \"" + v + "\"";
      else p.format = v;
    }
  }
  return p;
}

stats_table aggregate(const resolved_query& r, std::string_view timezone, const std::vector<summary_span>& spans) {
  stats_table t;
  t.from = r.from;
  t.to = r.to;
  t.gran = r.q.gran;
  t.timezone = std::string(timezone);
  t.buckets = bucket_starts(r.from, r.to, r.q.gran);
  // The bucket of every day of [from, to], computed once: a 6-month answer adds hundreds of
  // thousands of day counts.
  std::vector<std::size_t> bucket_of;
  bucket_of.reserve(static_cast<std::size_t>((r.to - r.from).count() + 1));
  std::size_t at = 0;
  for (sys_days d = r.from; d <= r.to; d += std::chrono::days{1}) {
    while (at + 1 < t.buckets.size() && t.buckets[at + 1] <= d) ++at;
    bucket_of.push_back(at);
  }
  const auto& types = history_event_types();
  auto type_rank = [&](const std::string& e) {
    return static_cast<std::size_t>(std::find(types.begin(), types.end(), e) - types.begin());
  };
  const std::set<std::string, std::less<>> wanted_events(r.q.events.begin(), r.q.events.end());
  const std::set<std::string, std::less<>> wanted_devices(r.q.devices.begin(), r.q.devices.end());
  const bool by_device = r.q.by == stats_by::device;
  // One accumulator per (type rank, a, b) -- b empty when by device -- found through a hash of a
  // reused key buffer.
  struct acc {
    std::size_t rank;
    std::string a, b;
    std::vector<std::int64_t> values;
  };
  std::vector<acc> accs;
  std::unordered_map<std::string, std::size_t> index;
  std::string key;
  auto row_of = [&](std::size_t rank, const std::string& a, const std::string& b) -> std::vector<std::int64_t>& {
    key.assign(1, static_cast<char>('A' + rank));
    key += a;
    key += '\x1f';
    if (!by_device) key += b;
    if (const auto it = index.find(key); it != index.end()) return accs[it->second].values;
    index.emplace(key, accs.size());
    accs.push_back({rank, a, by_device ? std::string() : b, std::vector<std::int64_t>(t.buckets.size(), 0)});
    return accs.back().values;
  };
  std::string last_type;
  std::size_t last_rank = 0;
  for (const auto& s : spans) {
    const sys_days last = s.first + std::chrono::days{static_cast<std::int64_t>(s.values.size()) - 1};
    if (s.values.empty() || last < r.from || s.first > r.to) continue;
    if (!wanted_events.empty() && !wanted_events.contains(s.event_type)) continue;
    if (!wanted_devices.empty() && !wanted_devices.contains(s.dimension_a)) continue;
    if (s.event_type != last_type) {
      last_type = s.event_type;
      last_rank = type_rank(s.event_type);
    }
    auto& values = row_of(last_rank, s.dimension_a, s.dimension_b);
    // The span's days that fall in [from, to].
    const auto skip = std::max<std::int64_t>(0, (r.from - s.first).count());
    const auto stop = std::min<std::int64_t>(static_cast<std::int64_t>(s.values.size()), (r.to - s.first).count() + 1);
    const auto offset = (s.first - r.from).count();
    for (auto i = skip; i < stop; ++i) values[bucket_of[static_cast<std::size_t>(offset + i)]] += s.values[static_cast<std::size_t>(i)];
  }
  // A requested device that sent nothing still has its rows when counted per device, so
  // "silent" reads as zeros, not as a missing line (per parameter there is no parameter to name).
  if (by_device)
    for (const auto& d : r.q.devices)
      for (const auto& e : r.q.events.empty() ? types : r.q.events) row_of(type_rank(e), d, "");
  std::sort(accs.begin(), accs.end(), [](const acc& x, const acc& y) {
    return std::tie(x.rank, x.a, x.b) < std::tie(y.rank, y.a, y.b);
  });
  t.rows.reserve(accs.size());
  for (auto& c : accs) {
    stats_row row;
    row.event_type = types[c.rank];
    row.dimension_a = std::move(c.a);
    if (!by_device) row.dimension_b = std::move(c.b);
    row.values = std::move(c.values);
    t.rows.push_back(std::move(row));
  }
  return t;
}

stats_table aggregate(const resolved_query& r, std::string_view timezone, const std::vector<summary_row>& rows) {
  std::vector<summary_span> spans;
  spans.reserve(rows.size());
  for (const auto& s : rows) spans.push_back({s.day, s.event_type, s.dimension_a, s.dimension_b, {s.value}});
  return aggregate(r, timezone, spans);
}

nlohmann::json to_json(const stats_table& t) {
  nlohmann::json j;
  j["from"] = format_day(t.from);
  j["to"] = format_day(t.to);
  j["granularity"] = to_string(t.gran);
  j["timezone"] = t.timezone;
  j["buckets"] = nlohmann::json::array();
  for (const auto& b : t.buckets) j["buckets"].push_back(format_day(b));
  j["rows"] = nlohmann::json::array();
  for (const auto& r : t.rows) {
    nlohmann::json row;
    row["event_type"] = r.event_type;
    row["dimension_a"] = r.dimension_a;
    row["dimension_b"] = r.dimension_b ? nlohmann::json(*r.dimension_b) : nlohmann::json(nullptr);
    row["values"] = r.values;
    j["rows"].push_back(std::move(row));
  }
  return j;
}

std::string to_json_text(const stats_table& t) {
  auto str = [](const std::string& v) { return nlohmann::json(v).dump(); };
  std::string out;
  std::size_t cells = 0;
  for (const auto& r : t.rows) cells += r.values.size();
  out.reserve(256 + t.buckets.size() * 16 + t.rows.size() * 96 + cells * 3);
  out += "{\"from\":\"" + format_day(t.from) + "\",\"to\":\"" + format_day(t.to) + "\",\"granularity\":\"" +
         to_string(t.gran) + "\",\"timezone\":" + str(t.timezone) + ",\"buckets\":[";
  for (std::size_t i = 0; i < t.buckets.size(); ++i) out += (i ? ",\"" : "\"") + format_day(t.buckets[i]) + "\"";
  out += "],\"rows\":[";
  char num[24];
  for (std::size_t i = 0; i < t.rows.size(); ++i) {
    const auto& r = t.rows[i];
    out += i ? ",{\"event_type\":" : "{\"event_type\":";
    out += str(r.event_type);
    out += ",\"dimension_a\":";
    out += str(r.dimension_a);
    out += ",\"dimension_b\":";
    out += r.dimension_b ? str(*r.dimension_b) : std::string("null");
    out += ",\"values\":[";
    for (std::size_t k = 0; k < r.values.size(); ++k) {
      if (k) out += ',';
      out.append(num, std::to_chars(num, num + sizeof num, r.values[k]).ptr);
    }
    out += "]}";
  }
  out += "]}";
  return out;
}

namespace {
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}
}  // namespace

std::string to_csv(const stats_table& t) {
  std::string out = "event_type,dimension_a,dimension_b";
  for (const auto& b : t.buckets) out += "," + format_day(b);
  out += "\r\n";
  for (const auto& r : t.rows) {
    out += csv_field(r.event_type) + "," + csv_field(r.dimension_a) + "," + csv_field(r.dimension_b.value_or(""));
    char num[24];
    for (auto v : r.values) {
      out += ',';
      out.append(num, std::to_chars(num, num + sizeof num, v).ptr);
    }
    out += "\r\n";
  }
  return out;
}

std::string to_table(const stats_table& t) {
  std::vector<std::vector<std::string>> cells;
  std::vector<std::string> head = {"event_type", "dimension_a", "dimension_b"};
  for (const auto& b : t.buckets) head.push_back(format_day(b));
  cells.push_back(std::move(head));
  for (const auto& r : t.rows) {
    std::vector<std::string> line = {r.event_type, r.dimension_a, r.dimension_b.value_or("-")};
    for (auto v : r.values) line.push_back(std::to_string(v));
    cells.push_back(std::move(line));
  }
  std::vector<std::size_t> width(cells.front().size(), 0);
  for (const auto& line : cells)
    for (std::size_t i = 0; i < line.size(); ++i) width[i] = std::max(width[i], line[i].size());
  std::string out = "from " + format_day(t.from) + " to " + format_day(t.to) + ", per " + to_string(t.gran) + ", " +
                    t.timezone + "\n";
  for (const auto& line : cells) {
    for (std::size_t i = 0; i < line.size(); ++i) {
      const std::string pad(width[i] - line[i].size(), ' ');
      out += i < 3 ? line[i] + pad : pad + line[i];  // names left, counts right
      out += i + 1 < line.size() ? "  " : "\n";
    }
  }
  if (t.rows.empty()) out += "(no events in this range)\n";
  return out;
}

}  // namespace interfaced::rerun
