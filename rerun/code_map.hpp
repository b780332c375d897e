#pragma once
// Instrument test codes -> machine names for one device (rerun.md, process_reports_for_rerun step 1:
// "maps instrument codes to machine names"). A code the map does not name is its own machine name,
// which is how most analysers are configured (the backend's machine names are the analyser's codes).

#include <map>
#include <string>
#include <string_view>

namespace interfaced::rerun {

class code_map {
 public:
  code_map() = default;
  // From a device profile's "result_codes" (test identity -> machine name).
  explicit code_map(const std::map<std::string, std::string, std::less<>>& to_machine) {
    for (const auto& [code, name] : to_machine) add(code, name);
  }

  void add(std::string instrument_code, std::string machine_name) {
    to_machine_.insert_or_assign(instrument_code, machine_name);
    to_instrument_.insert_or_assign(std::move(machine_name), std::move(instrument_code));
  }

  // The machine name for an instrument code; the code itself when unmapped.
  [[nodiscard]] std::string_view machine_name(std::string_view code) const {
    const auto it = to_machine_.find(code);
    return it == to_machine_.end() ? code : std::string_view(it->second);
  }

  // The instrument code to order a machine name with (re-test orders); the name itself when unmapped.
  [[nodiscard]] std::string_view instrument_code(std::string_view machine) const {
    const auto it = to_instrument_.find(machine);
    return it == to_instrument_.end() ? machine : std::string_view(it->second);
  }

  [[nodiscard]] bool empty() const noexcept { return to_machine_.empty(); }

 private:
  std::map<std::string, std::string, std::less<>> to_machine_;
  std::map<std::string, std::string, std::less<>> to_instrument_;
};

}  // namespace interfaced::rerun
