#pragma once
// `interfaced completion`: a bash completion script made from the command tree itself (every
// subcommand and option CLI11 knows), so it cannot drift from the commands. The package installs
// its output; `source <(interfaced completion)` works without the package.

#include <iosfwd>

namespace CLI {
class App;
}

namespace interfaced::daemon {

void write_bash_completion(const CLI::App& app, std::ostream& out);

}  // namespace interfaced::daemon
