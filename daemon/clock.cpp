#include "daemon/clock.hpp"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>

namespace interfaced::daemon {
namespace {

// lab_zone is one pointer into the tz database: copied whole, never torn.
std::atomic<rerun::lab_zone>& zone_slot() {
  static std::atomic<rerun::lab_zone> slot{machine_zone().zone};
  return slot;
}

// "/usr/share/zoneinfo/Europe/Berlin" (or "../usr/share/zoneinfo/posix/Europe/Berlin") ->
// "Europe/Berlin"; "" when the path is not inside a zoneinfo folder.
std::string zone_name_of_path(std::string_view path) {
  const auto at = path.find("zoneinfo/");
  if (at == std::string_view::npos) return {};
  std::string_view name = path.substr(at + 9);
  for (std::string_view prefix : {"posix/", "right/"})
    if (name.starts_with(prefix)) name.remove_prefix(prefix.size());
  return std::string(name);
}

}  // namespace

void set_lab_zone(rerun::lab_zone zone) noexcept { zone_slot().store(zone); }

rerun::lab_zone current_lab_zone() noexcept { return zone_slot().load(); }

machine_zone_result machine_zone() {
  std::string note;
  if (const char* tz = std::getenv("TZ"); tz != nullptr && *tz != '\0') {
    std::string_view name = tz;
    if (name.front() == ':') name.remove_prefix(1);  // POSIX: ":characters" names a zone file
    const std::string from_path = name.starts_with("/") ? zone_name_of_path(name) : std::string(name);
    if (auto z = rerun::lab_zone::find(from_path)) return {*z, {}};
    note = "TZ=" + std::string(tz) + " names no zone of the tz database";
  }
  std::error_code ec;
  const auto target = std::filesystem::read_symlink("/etc/localtime", ec);
  if (!ec) {
    if (auto z = rerun::lab_zone::find(zone_name_of_path(target.string()))) return {*z, {}};
  }
  std::ifstream in("/etc/timezone");
  std::string line;
  if (in && std::getline(in, line)) {
    if (auto z = rerun::lab_zone::find(line)) return {*z, {}};
  }
  if (note.empty()) note = "neither /etc/localtime nor /etc/timezone names a zone of the tz database";
  return {rerun::lab_zone{}, note + ": using UTC"};
}

machine_zone_result lab_zone_of(const std::string& configured) {
  if (configured.empty()) return machine_zone();
  if (auto z = rerun::lab_zone::find(configured)) return {*z, {}};
  return {rerun::lab_zone{}, "lab.timezone \"" + configured + "\" is not a zone of the tz database: using UTC"};
}

std::string now_iso_ms() { return iso_ms(std::chrono::system_clock::now()); }

std::string iso_ms(std::chrono::system_clock::time_point t) { return current_lab_zone().format(t); }

std::string now_hl7() { return current_lab_zone().format_hl7(std::chrono::system_clock::now()); }

rerun::timestamp wall_now() { return wall_time(std::chrono::system_clock::now()); }

rerun::timestamp wall_time(std::chrono::system_clock::time_point t) { return current_lab_zone().wall_time(t); }

}  // namespace interfaced::daemon
