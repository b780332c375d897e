#pragma once
// `interfaced explain CODE`, `interfaced help [--page PAGE] [WORDS]`, `interfaced help export`,
// `interfaced help import FILE` (REQ-HELP-002, 003, 005), and the help set the dashboard serves:
// the shipped items (built into the binary, daemon/assets/help_items.json) with the site's
// (help.items_file) merged over them by id.

#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "rerun/help.hpp"

namespace interfaced::daemon {

struct help_set {
  std::vector<rerun::help_item> items;
  std::vector<std::string> problems;  // the site file's, "file: /pointer: what"
};
// site_file empty or missing: the shipped items alone.
[[nodiscard]] help_set load_help(const std::filesystem::path& site_file);

struct help_command {
  std::string config;           // for help.items_file; unreadable default: the default path
  bool config_given = false;
  std::string action = "search";  // search | explain | export | import
  std::string page;
  std::vector<std::string> words;
  std::string code;
  std::string file;  // import
};

int run_help_command(const help_command& c, std::ostream& out, std::ostream& err);

}  // namespace interfaced::daemon
