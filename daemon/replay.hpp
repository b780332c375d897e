#pragma once
// `interfaced replay [--profile P] [--format jsonl|text] [--timezone ZONE] FILE...`: a capture through the same
// parsers, profiles and rerun tagging the daemon runs, with virtual time. One JSON object per line
// on stdout; one line per problem on stderr ("FILE: byte N: what was wrong / expected").

#include <iosfwd>
#include <string>
#include <vector>

#include "daemon/exit_codes.hpp"

namespace interfaced::daemon {

struct replay_options {
  std::vector<std::string> files;
  std::string profile;            // profile id; empty: detect from the H record per message
  std::string profile_dir;        // empty: the built-in profile folder
  std::string format = "jsonl";   // jsonl | text
  std::string device;             // device id to report; empty: the profile id
  std::string rules_file;         // local rules (auto-rerun), evaluated as the daemon does
  std::string qc_limits_file;     // QC limits JSON: {"type":"qc"} lines for control results
  std::string timezone;           // IANA zone observed_at without an offset is read in; empty: the machine's
  bool explain = false;               // print, per result, the rerun decision and every rule evaluated
  bool ignore_frame_numbers = false;  // captures whose frame numbers another tool rewrote
};

int run_replay(const replay_options& options, std::ostream& out, std::ostream& err);

}  // namespace interfaced::daemon
