#include "daemon/rules_command.hpp"

#include <fstream>
#include <iterator>
#include <ostream>

#include "daemon/replay.hpp"
#include "rerun/rerun_json.hpp"
#include "rerun/rules.hpp"

namespace interfaced::daemon {

int rules_test(const std::filesystem::path& file, std::ostream& out, std::ostream& err) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    err << file.string() << ": cannot read the file\n";
    return exit_no_input;
  }
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const rerun::rules_file f = rerun::load_rules_file(text, file.string());
  if (!f.errors.empty()) {
    for (const auto& e : f.errors) err << e.format() << '\n';
    err << file.string() << ": " << f.errors.size() << " error(s); the rules are not loaded\n";
    return exit_config;
  }
  const rerun::rule_test_report report = rerun::run_rule_tests(f);
  for (const auto& fail : report.failures)
    err << file.string() << ": " << fail.pointer << " (rule \"" << fail.rule_id << "\""
        << (fail.name.empty() ? "" : ", case \"" + fail.name + "\"") << "): " << fail.message << '\n';
  out << file.string() << ": " << f.rules.rules().size() << " rules, " << report.run << " test cases, "
      << report.failures.size() << " failed\n";
  return report.passed() ? exit_ok : exit_bad_input;
}

}  // namespace interfaced::daemon
