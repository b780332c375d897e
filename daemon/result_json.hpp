#pragma once
// The JSON shapes other tools rely on (`interfaced replay`, later the backend posts): field names
// are a contract -- extend, never rename.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "parsers/model.hpp"
#include "rerun/lab_time.hpp"

namespace interfaced::daemon {

// observed_at as ISO-8601 with the analyser's offset, else `zone`'s at that local time
// (rerun/lab_time.hpp: "20241206140615" in Europe/Berlin -> "2024-12-06T14:06:15+01:00").
[[nodiscard]] nlohmann::json to_json(const result& r, const rerun::lab_zone& zone);
[[nodiscard]] nlohmann::json to_json(const query& q);
[[nodiscard]] nlohmann::json to_json(const order& o);
[[nodiscard]] const char* to_string(protocol p) noexcept;

}  // namespace interfaced::daemon
