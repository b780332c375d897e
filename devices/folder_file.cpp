#include "devices/folder_file.hpp"

#include <algorithm>
#include <cctype>
#include <regex>

#include "devices/astm_ingest.hpp"
#include "devices/capture_input.hpp"
#include "devices/file_report.hpp"
#include "devices/hl7_ingest.hpp"
#include "devices/profile.hpp"

namespace interfaced::devices {

namespace {

bool ends_with_ci(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  return std::equal(suffix.begin(), suffix.end(), s.end() - static_cast<std::ptrdiff_t>(suffix.size()),
                    [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b)); });
}

std::string trim_cell(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) v.remove_suffix(1);
  return std::string(v);
}

// One CSV record (RFC 4180 quoting: "a ""b""" is a "b"; a quoted field may hold the delimiter
// and line breaks). `pos` advances past the record's line end.
std::vector<std::string> csv_record(std::string_view text, std::size_t& pos, char delim) {
  std::vector<std::string> cells;
  std::string cell;
  bool quoted = false;
  bool was_quoted = false;
  for (; pos < text.size(); ++pos) {
    const char c = text[pos];
    if (quoted) {
      if (c == '"') {
        if (pos + 1 < text.size() && text[pos + 1] == '"') {
          cell += '"';
          ++pos;
        } else {
          quoted = false;
        }
      } else {
        cell += c;
      }
    } else if (c == '"' && trim_cell(cell).empty()) {
      quoted = true;
      was_quoted = true;
      cell.clear();
    } else if (c == delim) {
      cells.push_back(was_quoted ? cell : trim_cell(cell));
      cell.clear();
      was_quoted = false;
    } else if (c == '\n') {
      ++pos;
      break;
    } else {
      cell += c;
    }
  }
  cells.push_back(was_quoted ? cell : trim_cell(cell));
  return cells;
}

}  // namespace

const char* to_string(folder_file_kind k) noexcept {
  switch (k) {
    case folder_file_kind::astm: return "ASTM";
    case folder_file_kind::hl7: return "HL7";
    case folder_file_kind::csv: return "CSV";
    case folder_file_kind::report: return "file-type report";
  }
  return "?";
}

folder_file_kind classify_folder_file(std::string_view name, std::string_view bytes, const folder_rule* rule) {
  if (rule && rule->csv.enabled() && ends_with_ci(name, ".csv")) return folder_file_kind::csv;
  // An image or a PDF is a report whatever its bytes look like: random image data holds a 0x0B
  // or an STX now and then, which the capture reader would take for MLLP or E1381 framing. A NUL
  // byte is never in an ASTM or HL7 text file either.
  const std::string type = content_type_for(name);
  if (type.starts_with("image/") || type == "application/pdf" || bytes.find('\0') != std::string_view::npos)
    return folder_file_kind::report;
  switch (decode_capture(bytes).kind) {
    case capture_kind::astm_frames:
    case capture_kind::astm_records: return folder_file_kind::astm;
    case capture_kind::hl7_mllp:
    case capture_kind::hl7_segments: return folder_file_kind::hl7;
    case capture_kind::unknown: break;
  }
  return folder_file_kind::report;
}

std::optional<std::string> sample_from_filename(std::string_view pattern, std::string_view name) {
  if (pattern.empty()) return std::nullopt;
  std::string re;
  bool has_sample = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '{') {
      const auto close = pattern.find('}', i);
      if (close == std::string_view::npos) return std::nullopt;
      const auto field = pattern.substr(i + 1, close - i - 1);
      if (field == "sample_id") {
        re += "(.+?)";
        has_sample = true;
      } else {
        re += "(?:.*?)";
      }
      i = close;
    } else if (c == '*') {
      re += ".*?";
    } else if (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-') {
      re += c;
    } else {
      re += '\\';
      re += c;
    }
  }
  if (!has_sample) return std::nullopt;
  std::match_results<std::string_view::const_iterator> m;
  if (!std::regex_match(name.begin(), name.end(), m, std::regex(re, std::regex::icase))) return std::nullopt;
  std::string id = m[1].str();
  if (id.empty()) return std::nullopt;
  return id;
}

folder_results read_capture_results(std::string_view bytes, const profile_catalog* catalog,
                                    const device_profile* forced, const std::string& device) {
  folder_results out;
  const capture_input cap = decode_capture(bytes);
  for (const auto& n : cap.notes) out.warnings.push_back(n);
  std::vector<ingest_problem> problems;
  auto take = [&](std::vector<result>& rs, const device_profile* p) {
    if (rs.empty()) return;
    if (!out.profile) out.profile = p;
    for (auto& r : rs) out.results.push_back(std::move(r));
  };
  switch (cap.kind) {
    case capture_kind::astm_frames:
    case capture_kind::astm_records: {
      astm::link_options lo;
      // A file holds the analyser's side only, as a capture does (replay.cpp): no ENQ answered.
      lo.accept_frames_without_enq = true;
      // A profile of the other protocol (a folder device's profile may be written for its CSV or
      // file names) is not forced on the file: the file's own header picks one, as on a link.
      astm_ingest ingest(catalog, forced && forced->protocol == "astm" ? forced : nullptr, device, lo);
      if (cap.kind == capture_kind::astm_frames) (void)ingest.feed(cap.bytes);
      else ingest.feed_records(cap.bytes);
      ingest.finish();
      for (auto& m : ingest.take_messages()) take(m.batch.results, m.profile);
      problems = ingest.take_problems();
      break;
    }
    case capture_kind::hl7_mllp:
    case capture_kind::hl7_segments: {
      hl7_ingest ingest(catalog, forced && forced->protocol == "hl7" ? forced : nullptr, device);
      if (cap.kind == capture_kind::hl7_mllp) ingest.feed(cap.bytes);
      else ingest.feed_segments(cap.bytes);
      for (auto& m : ingest.take_messages())
        if (!m.reply) take(m.results, m.profile);
      problems = ingest.take_problems();
      break;
    }
    case capture_kind::unknown:
      out.error = "not an ASTM or HL7 file";
      return out;
  }
  std::string first_problem;
  for (const auto& p : problems) {
    const std::string line = "byte " + std::to_string(p.offset) + ": " + p.what;
    if (p.warning) out.warnings.push_back(line);
    else if (first_problem.empty()) first_problem = line;
  }
  for (auto& r : out.results) r.device = device;
  // A file is taken whole or not at all: results read past a damaged record would be sent
  // without the ones it held.
  if (!first_problem.empty()) {
    out.error = std::string(cap.kind == capture_kind::hl7_mllp || cap.kind == capture_kind::hl7_segments ? "HL7" : "ASTM") +
                " file: " + first_problem;
    out.results.clear();
  } else if (out.results.empty()) {
    out.error = "the file holds no results (" + cap.description + ")";
  }
  return out;
}

folder_results read_csv_results(std::string_view text, const csv_mapping& m, const std::string& device) {
  folder_results out;
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // Excel's UTF-8 byte order mark
  std::size_t pos = 0;
  const auto header = csv_record(text, pos, m.delimiter);
  auto column = [&](const std::string& name) -> std::optional<std::size_t> {
    if (name.empty()) return std::nullopt;
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return i;
    return std::nullopt;
  };
  const auto sample_col = column(m.sample_id);
  if (!sample_col) {
    out.error = "CSV: no column \"" + m.sample_id + "\" (the profile's folder/csv/sample_id) in the header line";
    return out;
  }
  const auto time_col = column(m.observed_at);
  const auto param_col = column(m.parameter);
  const auto value_col = column(m.value);
  const auto unit_col = column(m.unit);
  const bool long_form = !m.parameter.empty();
  if (long_form && (!param_col || !value_col)) {
    out.error = "CSV: the header line lacks the parameter column \"" + m.parameter + "\" or the value column \"" +
                m.value + "\"";
    return out;
  }
  std::vector<std::pair<std::size_t, std::string>> wide;  // column -> test code
  for (const auto& [head, code] : m.columns)
    if (auto c = column(head)) wide.emplace_back(*c, code);
  if (!long_form && wide.empty()) {
    out.error = "CSV: none of the profile's folder/csv/columns is in the header line";
    return out;
  }
  std::size_t line = 1;
  auto cell = [](const std::vector<std::string>& row, std::optional<std::size_t> c) {
    return c && *c < row.size() ? row[*c] : std::string();
  };
  while (pos < text.size()) {
    const auto row = csv_record(text, pos, m.delimiter);
    ++line;
    if (row.size() == 1 && row[0].empty()) continue;  // blank line
    const std::string sample = cell(row, sample_col);
    if (sample.empty()) {
      out.error = "CSV line " + std::to_string(line) + ": no sample id";
      out.results.clear();
      return out;
    }
    auto add = [&](const std::string& code, const std::string& value, const std::string& unit) {
      if (value.empty()) return;
      result r;
      r.device = device;
      r.sample_id = sample;
      r.code = code;
      r.value = value;
      r.unit = unit;
      r.observed_at = cell(row, time_col);
      out.results.push_back(std::move(r));
    };
    if (long_form) add(cell(row, param_col), cell(row, value_col), cell(row, unit_col));
    else
      for (const auto& [c, code] : wide) add(code, cell(row, c), "");
  }
  if (out.results.empty()) out.error = "CSV: no results in the file";
  return out;
}

}  // namespace interfaced::devices
