#include "daemon/sim/analyser_sim.hpp"

#include <filesystem>
#include <ostream>
#include <system_error>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "daemon/exit_codes.hpp"
#include "daemon/sim/player.hpp"

namespace interfaced::sim {

namespace asio = boost::asio;
using detail::player;
using detail::sim_clock;

int run_analyser_sim(const sim_script& script, const sim_options& options, std::ostream& out,
                     std::ostream& err) {
  const int links = (options.connect.empty() ? 0 : 1) + (options.listen ? 1 : 0) + (options.pty_path.empty() ? 0 : 1);
  if (links != 1) {
    err << "simulate: give exactly one of --connect HOST:PORT, --listen PORT, --pty PATH\n";
    return exit_usage;
  }
  if (script.protocol == sim_protocol::hl7 && (options.corrupt_frame != 0 || options.duplicate_frame != 0)) {
    err << "simulate: --corrupt-frame and --duplicate-frame apply to ASTM frames only\n";
    return exit_usage;
  }
  if (!options.pty_path.empty() && options.drop_after != 0) {
    err << "simulate: --drop-after needs a TCP link (a serial line cannot be reconnected)\n";
    return exit_usage;
  }
  if (script.messages.empty()) {
    err << "simulate: nothing to play\n";
    return exit_no_input;
  }
  if (const std::string skipped = describe_skipped(script); !skipped.empty()) out << skipped << std::endl;
  asio::io_context io(1);
  player p(io, script, options, out, err);
  const auto started = sim_clock::now();
  asio::co_spawn(io, p.run(), asio::detached);
  io.run_for(options.timeout);
  int status = p.status();
  if (!p.finished()) {
    err << "simulate: timed out after " << options.timeout.count() << " ms with " << p.acknowledged() << "/"
        << p.total() << " messages acknowledged\n";
    status = exit_bad_input;
  }
  if (!p.symlink().empty()) {
    std::error_code ec;
    std::filesystem::remove(p.symlink(), ec);
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(sim_clock::now() - started).count();
  // Refusals are failures, counted apart: "37/1500 messages acknowledged, 1463 refused (AE 1463)".
  out << p.acknowledged() << "/" << p.total() << " messages acknowledged";
  if (p.refused() > 0) out << ", " << p.refused() << " refused (" << p.refusals() << ")";
  if (p.naks() > 0) out << ", " << detail::plural(p.naks(), "NAK") << " on the way";
  out << " in " << ms << " ms" << std::endl;
  return status;
}

}  // namespace interfaced::sim
