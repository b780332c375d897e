#pragma once
// A SQLite VFS that writes a transaction's WAL frames to the file with one write(2) instead of two
// per frame (issue #17). SQLite writes each frame as its 24-byte header and then its page; with
// 1 KiB pages a group commit of ~20 frames was ~40 pwrite64 calls on the outbox worker, ~5.6 per
// message. Here consecutive writes to a WAL file wait in a buffer until anything else touches
// that file, a write lands elsewhere, 1 MiB waits, or the database file's shared-memory barrier
// runs (the moment SQLite publishes new frames to other connections). Every other call, and every
// other file, goes straight to the default VFS.
//
// What stays true: a commit's frames are in the file before its xSync (so before the fdatasync
// that makes the commit durable, and before any ACK that waits for it), and before any connection
// in this process or another can see them. A write that fails when the buffer is flushed is
// returned by the call that flushed (xSync, xRead, ...) as that call's I/O error, so the commit
// fails as it would have at the frame's own write.

#include <cstdint>

namespace interfaced::transport::sqlite {

// The VFS's name for sqlite3_open_v2, registered on first use (thread-safe, not as the default).
// Throws std::runtime_error when SQLite has no default VFS or refuses the registration.
const char* batched_wal_vfs();

// Process-wide counts since start, for tests and benchmarks: the writes SQLite asked for on WAL
// files opened through this VFS, and the writes that reached the default VFS for them.
struct batched_wal_counts {
  std::uint64_t asked = 0;
  std::uint64_t written = 0;
};
batched_wal_counts batched_wal_stats();

}  // namespace interfaced::transport::sqlite
