#pragma once
// `interfaced qc evaluate --limits FILE SERIES.csv` (issue #14): the pure Westgard evaluation by
// hand. SERIES.csv has the header `observed_at,parameter,level,value` (ISO-8601 times; the same
// time is the same QC event); FILE is a JSON list [{"parameter","level","mean","sd"}] (optionally
// "material", "lot"). One JSON line per row, in input order:
//   {"observed_at","parameter","level","value","z","outcome","rules":[...]}
// outcome: accept, warning, reject, no_limits. Rows are evaluated per parameter in observed_at
// order with the default rule set (1-3s/2-2s/R-4s/4-1s/10-x, 1-2s warning).
// Exit: 0; 1 a row could not be read (named on stderr, the others printed); 66 unreadable file;
// 78 invalid limits.

#include <iosfwd>
#include <string>

namespace interfaced::daemon {

int run_qc_evaluate(const std::string& limits_file, const std::string& series_csv, std::ostream& out,
                    std::ostream& err);

}  // namespace interfaced::daemon
