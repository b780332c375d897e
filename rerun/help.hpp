#pragma once
// Context help (REQ-HELP-001...005): help items as data -- title, description, likely causes,
// what to do, the pages they belong to, tags, order, an optional video URL -- and the pure
// operations on them: read and validate a JSON file, merge a site's overrides over the shipped
// items, search, explain a log code (`[ASTM-012]`) and suggest the nearest one.
//
// Contract: pure (no files, no clock). The daemon reads the shipped file (built into the binary,
// also installed by the package) and the site's override file and hands the text here.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace interfaced::rerun {

struct help_item {
  std::string id;    // unique; for a log code, the code itself
  std::string code;  // "ASTM-012"; empty for page help
  std::string title;
  std::string description;
  std::vector<std::string> causes;   // likely causes
  std::vector<std::string> actions;  // what to do
  std::vector<std::string> pages;    // dashboard | messages | qc | stats | help
  std::vector<std::string> tags;
  int order = 0;
  std::optional<std::string> video_url;
};

// `[A-Z][A-Z0-9]*-[0-9]{3}`.
[[nodiscard]] bool is_log_code(std::string_view s) noexcept;

struct help_file {
  std::vector<help_item> items;
  std::vector<std::string> errors;  // "JSON pointer: problem"; items with errors are left out
};
// {"version": 1, "items": [...]} -> items. Never throws.
[[nodiscard]] help_file parse_help_items(std::string_view json_text);
[[nodiscard]] nlohmann::json to_json(const std::vector<help_item>& items);

// The shipped items with the site's: an override with the same id replaces the item whole, new
// ids are added; sorted by order, then id.
[[nodiscard]] std::vector<help_item> merge_help(std::vector<help_item> shipped, const std::vector<help_item>& site);

// Items of `page` (empty: any) matching every word of `words` (case-insensitive, in title,
// description, tags or the code); no words: every item of the page. Best matches first (title
// and tag hits before description hits), then by order.
[[nodiscard]] std::vector<const help_item*> search_help(const std::vector<help_item>& items, std::string_view words,
                                                        std::string_view page = {});

[[nodiscard]] const help_item* find_code(const std::vector<help_item>& items, std::string_view code);
// The codes closest to `code` (edit distance, case-insensitive), best first, at most n.
[[nodiscard]] std::vector<std::string> nearest_codes(const std::vector<help_item>& items, std::string_view code,
                                                     std::size_t n = 3);
// What `interfaced explain` prints: the title, what it means, likely causes, what to do.
[[nodiscard]] std::string format_explain(const help_item& item);

}  // namespace interfaced::rerun
