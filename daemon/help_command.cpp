#include "daemon/help_command.hpp"

#include <fstream>
#include <iterator>
#include <ostream>

#include <nlohmann/json.hpp>

#include "daemon/assets.hpp"
#include "daemon/config.hpp"
#include "daemon/exit_codes.hpp"

namespace interfaced::daemon {

namespace {

std::string read_file(const std::filesystem::path& p, bool& ok) {
  std::ifstream in(p, std::ios::binary);
  ok = static_cast<bool>(in);
  return ok ? std::string{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()} : std::string();
}

std::vector<rerun::help_item> shipped_items() {
  const auto* a = find_asset("help_items.json");
  if (a == nullptr) return {};
  return rerun::parse_help_items(a->body).items;  // the help test holds the shipped file valid
}

}  // namespace

help_set load_help(const std::filesystem::path& site_file) {
  help_set s;
  std::vector<rerun::help_item> site;
  std::error_code ec;
  if (!site_file.empty() && std::filesystem::exists(site_file, ec)) {
    bool ok = false;
    const std::string text = read_file(site_file, ok);
    if (!ok) {
      s.problems.push_back(site_file.string() + ": cannot read the file");
    } else {
      auto f = rerun::parse_help_items(text);
      for (const auto& e : f.errors) s.problems.push_back(site_file.string() + ": " + e);
      site = std::move(f.items);
    }
  }
  s.items = rerun::merge_help(shipped_items(), site);
  return s;
}

int run_help_command(const help_command& c, std::ostream& out, std::ostream& err) {
  std::filesystem::path site = help_config{}.items_file;
  {
    auto r = load_config(c.config, /*check_devices=*/false);
    if (r.ok()) {
      site = r.cfg.help.items_file;
    } else if (c.config_given) {
      for (const auto& p : r.problems) err << format_problem(c.config, p) << '\n';
      return exit_config;
    }
  }
  if (c.action == "import") {
    bool ok = false;
    const std::string text = read_file(c.file, ok);
    if (!ok) {
      err << "help import: cannot read " << c.file << '\n';
      return exit_no_input;
    }
    const auto f = rerun::parse_help_items(text);
    if (!f.errors.empty()) {
      for (const auto& e : f.errors) err << c.file << ": " << e << '\n';
      err << "help import: " << f.errors.size() << " problem(s); nothing imported\n";
      return exit_bad_input;
    }
    // Written beside, then renamed: the daemon never reads half a file.
    std::error_code ec;
    if (site.has_parent_path()) std::filesystem::create_directories(site.parent_path(), ec);
    const auto tmp = std::filesystem::path(site.string() + ".tmp");
    {
      std::ofstream o(tmp, std::ios::binary | std::ios::trunc);
      o << rerun::to_json(f.items).dump(1) << '\n';
      if (!o) {
        err << "help import: cannot write " << tmp.string() << '\n';
        return exit_io;
      }
    }
    std::filesystem::rename(tmp, site, ec);
    if (ec) {
      err << "help import: cannot replace " << site.string() << ": " << ec.message() << '\n';
      return exit_io;
    }
    out << f.items.size() << " help items imported into " << site.string()
        << " (they replace shipped items with the same id)\n";
    return exit_ok;
  }
  const auto help = load_help(site);
  for (const auto& p : help.problems) err << "warning: " << p << '\n';
  if (c.action == "export") {
    out << rerun::to_json(help.items).dump(1) << '\n';
    return exit_ok;
  }
  if (c.action == "explain") {
    if (const auto* it = rerun::find_code(help.items, c.code)) {
      out << rerun::format_explain(*it);
      return exit_ok;
    }
    err << "no help for \"" << c.code << "\"";
    const auto near = rerun::nearest_codes(help.items, c.code);
    if (!near.empty()) {
      err << "; did you mean ";
      for (std::size_t i = 0; i < near.size(); ++i) err << (i ? (i + 1 == near.size() ? " or " : ", ") : "") << near[i];
      err << "?";
    }
    err << " (`interfaced help WORDS` searches)\n";
    return exit_bad_input;
  }
  std::string words;
  for (const auto& w : c.words) words += (words.empty() ? "" : " ") + w;
  const auto hits = rerun::search_help(help.items, words, c.page);
  if (hits.empty()) {
    out << "no help item matches" << (words.empty() ? "" : " \"" + words + "\"")
        << (c.page.empty() ? "" : " on page " + c.page) << '\n';
    return exit_bad_input;
  }
  for (const auto* it : hits) out << (it->code.empty() ? it->id : it->code) << "  " << it->title << '\n';
  return exit_ok;
}

}  // namespace interfaced::daemon
