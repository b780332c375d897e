#include "rerun/qualify.hpp"

#include "rerun/waiting_list.hpp"

namespace interfaced::rerun {
namespace {

constexpr qualification first(qualify_row row) noexcept { return {false, 0, false, false, row}; }
constexpr qualification instrument_triggered(qualify_row row) noexcept {
  return {true, instrument_triggered_rerun, true, false, row};
}

}  // namespace

qualification qualify_rerun(const qualify_facts& f) noexcept {
  // Unmatched: "tagged by seen(S,P) alone" (rerun.md, below the table).
  if (!f.matched) return f.seen ? instrument_triggered(qualify_row::unmatched_seen) : first(qualify_row::unmatched_first);
  // Only a positive rerunNumber is a requested rerun: 0 is none, and -1 on an entry is the
  // instrument-triggered sentinel, which nobody requested (the badge rule excludes both).
  const bool rerun_active = f.entry_rerun_number > 0;
  if (rerun_active && f.requested) {
    if (!f.fulfilled) return {true, f.entry_rerun_number, false, true, qualify_row::requested_rerun};
    return instrument_triggered(qualify_row::already_fulfilled);
  }
  if (!f.seen) return first(qualify_row::first_result);
  return instrument_triggered(rerun_active ? qualify_row::unrequested_seen : qualify_row::seen_no_rerun);
}

const char* to_string(qualify_row r) noexcept {
  switch (r) {
    case qualify_row::requested_rerun: return "requested rerun, parameter fulfilled";
    case qualify_row::already_fulfilled: return "requested parameter already fulfilled: instrument-triggered rerun";
    case qualify_row::unrequested_seen: return "seen, not requested in the active rerun: instrument-triggered rerun";
    case qualify_row::first_result: return "first result";
    case qualify_row::seen_no_rerun: return "seen, no rerun requested: instrument-triggered rerun";
    case qualify_row::unmatched_first: return "no waiting-list entry, first result";
    case qualify_row::unmatched_seen: return "no waiting-list entry, seen: instrument-triggered rerun";
  }
  return "?";
}

}  // namespace interfaced::rerun
