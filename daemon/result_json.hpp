#pragma once
// The JSON shapes other tools rely on (`interfaced replay`, later the backend posts): field names
// are a contract -- extend, never rename.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "parsers/model.hpp"

namespace interfaced::daemon {

// "20241206140615" -> "2024-12-06T14:06:15"; "20230226194722+0900" -> "2023-02-26T19:47:22+09:00";
// "20241206" -> "2024-12-06"; anything else is returned as sent.
[[nodiscard]] std::string iso_time(std::string_view as_sent);

[[nodiscard]] nlohmann::json to_json(const result& r);
[[nodiscard]] nlohmann::json to_json(const query& q);
[[nodiscard]] nlohmann::json to_json(const order& o);
[[nodiscard]] const char* to_string(protocol p) noexcept;

}  // namespace interfaced::daemon
