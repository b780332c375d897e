#pragma once
// `interfaced rules test FILE`: loads a local rules file (conditions parsed and type-checked,
// errors with a caret under the column) and runs the test cases it carries. The daemon's start-up
// and `check-config` use the same function, so a file that fails here never runs.

#include <filesystem>
#include <iosfwd>

namespace interfaced::rerun {
struct rules_file;
}

namespace interfaced::daemon {

// Prints problems to err, a summary to out. 0: every case passed; 1: a case failed;
// 78: the file does not load (syntax, unknown variable, type error); 66: unreadable.
int rules_test(const std::filesystem::path& file, std::ostream& out, std::ostream& err);

}  // namespace interfaced::daemon
