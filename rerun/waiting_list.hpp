#pragma once
// One entry of a device's waiting list as the backend sends it (backend-api.md, "device waiting
// list"; rerun.md, Vocabulary). The backend lists a report while sampleRedrawFlag is 0 (no rerun)
// or 3 (rerun requested); flag 4 (values received) is not listed (seed 000, decision 9).

#include <string>
#include <vector>

namespace interfaced::rerun {

inline constexpr int redraw_flag_none = 0;
inline constexpr int redraw_flag_rerun_requested = 3;
inline constexpr int redraw_flag_rerun_values_received = 4;
inline constexpr int instrument_triggered_rerun = -1;  // INSTRUMENT_TRIGGERED_RERUN_NUMBER

struct patient_info {
  std::string id;
  std::string name;
  std::string sex;
  std::string dob;

  bool operator==(const patient_info&) const = default;
};

struct waiting_list_entry {
  std::string sample_id;
  std::string lab_report_id;
  int sample_redraw_flag = redraw_flag_none;  // sampleRedrawFlag
  int rerun_number = 0;                       // rerunNumber
  std::vector<std::string> parameters;        // machine names the report holds
  std::vector<std::string> rerun_params;      // machine names to re-run (flag 3)
  // Parameters the backend says already have a value (rerun.md: "the waiting list says P already
  // has a value" counts as seen). Not in backend-api.md's sketch: read when the backend sends it.
  std::vector<std::string> valued_parameters;
  patient_info patient;
  std::string priority;

  // rerun.md: a rerun is active when rerunNumber is neither 0 nor -1 (the badge rule).
  [[nodiscard]] bool rerun_active() const noexcept { return rerun_number > 0; }

  bool operator==(const waiting_list_entry&) const = default;
};

}  // namespace interfaced::rerun
