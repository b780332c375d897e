#pragma once
// Files that must survive a power cut once a caller is told they exist: written and fsynced,
// renamed into place, the folders fsynced. Blocking calls: run them off the event loop (the
// outbox worker writes spool files, folder devices move their files from their own step).
// No Asio here on purpose: the outbox includes it.

#include <filesystem>
#include <string_view>
#include <system_error>

namespace interfaced::transport {

// rename(2), then fsync of both folders so the move survives a power cut; across file systems
// (EXDEV) a copy, fsync and unlink. Creates the target's folder.
[[nodiscard]] std::error_code move_file_durably(const std::filesystem::path& from, const std::filesystem::path& to);

// Writes `text` to `file` (replacing it; created with `mode`) and fsyncs it; a failed fsync is an error.
[[nodiscard]] std::error_code write_text_file(const std::filesystem::path& file, std::string_view text,
                                              unsigned mode = 0644);

// Whole or not at all: `bytes` to `<file>.part`, fsync, rename to `file`, the folder fsynced.
// On failure the `.part` is removed and `file` is untouched. Mode 0640: spool files carry
// patient data.
[[nodiscard]] std::error_code write_file_durably(const std::filesystem::path& file, std::string_view bytes);

}  // namespace interfaced::transport
