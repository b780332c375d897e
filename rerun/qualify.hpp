#pragma once
// qualify_rerun: rerun.md's decision table, as a pure function of the facts about one result.
// process_reports_for_rerun (process.hpp) gathers the facts -- the waiting-list entry E, the local
// rerun state, seen(S,P) -- and applies the answer.

#include <string_view>

namespace interfaced::rerun {

// Which row of the table decided (named for tests, logs and `replay --explain`).
enum class qualify_row {
  requested_rerun,     // E.rerunNumber N > 0, P requested, not yet fulfilled -> rerun N, fulfils P
  already_fulfilled,   // N > 0, P requested, already fulfilled -> instrument-triggered (-1)
  unrequested_seen,    // N > 0, P not requested, seen -> instrument-triggered (-1)
  first_result,        // any N, P not requested, not seen -> first result (0)
  seen_no_rerun,       // N == 0, seen -> instrument-triggered (-1)
  unmatched_first,     // no waiting-list entry, not seen -> 0 (forwarded, counted unmatched)
  unmatched_seen,      // no waiting-list entry, seen -> -1 (forwarded, counted unmatched)
};

[[nodiscard]] const char* to_string(qualify_row r) noexcept;

struct qualify_facts {
  bool matched = false;       // a waiting-list entry E exists for the result's sample
  int entry_rerun_number = 0; // E.rerunNumber (N); only N > 0 is a requested rerun
  bool requested = false;     // P in E.rerun_params
  bool fulfilled = false;     // P already fulfilled for this rerun (local state)
  bool seen = false;          // seen(S,P): history, waiting list value, or the rerun indicator
};

struct qualification {
  bool is_rerun = false;
  int rerun_number = 0;
  bool machine_triggered_rerun = false;
  bool fulfils = false;  // P becomes fulfilled for rerun N
  qualify_row row = qualify_row::first_result;
};

[[nodiscard]] qualification qualify_rerun(const qualify_facts& f) noexcept;

}  // namespace interfaced::rerun
