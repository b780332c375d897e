#pragma once
// Files built into the binary (CMake: cmake/embed_assets.cmake over daemon/assets/): the web
// pages of the lab's view and the shipped help items. Nothing is read from disk or a CDN.

#include <string_view>

namespace interfaced::daemon {

struct embedded_asset {
  std::string_view name;          // path under daemon/assets: "web/app.js", "help_items.json"
  std::string_view content_type;  // for HTTP
  std::string_view body;
};

// nullptr when there is no such asset.
[[nodiscard]] const embedded_asset* find_asset(std::string_view name) noexcept;

}  // namespace interfaced::daemon
