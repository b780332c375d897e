#include "transport/sqlite_wal_vfs.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace interfaced::transport::sqlite {

namespace {

constexpr std::size_t max_buffered = 1 << 20;
// The unix VFS writes at most 128 KiB - 1 bytes per pwrite (os_unix.c masks the count with
// 0x1ffff) and reports the rest as SQLITE_FULL: a buffer goes out in pieces of 64 KiB.
constexpr std::size_t max_write = 64 << 10;

std::atomic<std::uint64_t> asked_count{0};
std::atomic<std::uint64_t> written_count{0};

// The frames of one open WAL file not yet handed to the default VFS: bytes [start, start + size).
struct wal_buffer {
  std::mutex m;
  std::string db_path;  // the database whose WAL this is (the WAL's name without "-wal")
  sqlite3_file* real = nullptr;
  std::string bytes;
  sqlite3_int64 start = 0;
  // A flush from xShmBarrier (which returns nothing) failed after SQLite had published frames: every
  // later call on this file returns that error, and the connection must be reopened.
  int failed = SQLITE_OK;

  // Caller holds m.
  int flush() {
    if (bytes.empty()) return failed;
    int rc = SQLITE_OK;
    for (std::size_t at = 0; at < bytes.size() && rc == SQLITE_OK; at += max_write) {
      const std::size_t n = std::min(max_write, bytes.size() - at);
      rc = real->pMethods->xWrite(real, bytes.data() + at, static_cast<int>(n), start + static_cast<sqlite3_int64>(at));
      written_count.fetch_add(1, std::memory_order_relaxed);
    }
    bytes.clear();
    return rc;
  }
};

// Open WAL buffers, for the database file's barrier (another connection's WAL of the same
// database may be the one that holds frames).
std::mutex registry_mutex;
std::vector<wal_buffer*> registry;

sqlite3_vfs* default_vfs = nullptr;

// SQLite allocates szOsFile bytes: this header, then the default VFS's file at real_offset.
struct shim_file {
  sqlite3_file base;
  wal_buffer* wal;       // a WAL file: its buffer; otherwise null
  const char* db_name;   // the main database file: its name (valid until xClose); otherwise null
};
constexpr std::size_t real_offset = (sizeof(shim_file) + 15) / 16 * 16;

sqlite3_file* real_of(sqlite3_file* f) { return reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + real_offset); }
shim_file* shim_of(sqlite3_file* f) { return reinterpret_cast<shim_file*>(f); }

// Flushes a WAL file's buffer before a call other than a contiguous write reaches its file.
int settle(sqlite3_file* f) {
  wal_buffer* w = shim_of(f)->wal;
  if (!w) return SQLITE_OK;
  const std::lock_guard lock(w->m);
  return w->flush();  // a failure is this call's: SQLite rolls the transaction back and rewrites its frames
}

int x_close(sqlite3_file* f) {
  const int flushed = settle(f);
  sqlite3_file* real = real_of(f);
  const int rc = real->pMethods ? real->pMethods->xClose(real) : SQLITE_OK;
  if (wal_buffer* w = shim_of(f)->wal) {
    {
      const std::lock_guard lock(registry_mutex);
      registry.erase(std::remove(registry.begin(), registry.end(), w), registry.end());
    }
    delete w;
  }
  return flushed != SQLITE_OK ? flushed : rc;
}

// A method of the default VFS's file, called as it is.
template <auto method, class... Args>
auto real_call(sqlite3_file* f, Args... args) {
  return (real_of(f)->pMethods->*method)(real_of(f), args...);
}

// The same after the WAL's buffer is flushed (settle): every call on a WAL file but a
// contiguous write, so the file holds each frame before it is read, synced, sized or locked.
template <auto method, class... Args>
int settled(sqlite3_file* f, Args... args) {
  if (const int rc = settle(f); rc != SQLITE_OK) return rc;
  return real_call<method>(f, args...);
}

int x_write(sqlite3_file* f, const void* data, int n, sqlite3_int64 at) {
  wal_buffer* w = shim_of(f)->wal;
  if (!w) return real_call<&sqlite3_io_methods::xWrite>(f, data, n, at);
  asked_count.fetch_add(1, std::memory_order_relaxed);
  const std::lock_guard lock(w->m);
  if (w->failed != SQLITE_OK) return w->failed;
  // Only a write that continues the buffer joins it; any other (SQLite rewriting a frame of the
  // same transaction, or the header at a restart) first flushes, so the file sees every write in
  // the order SQLite made it.
  if (!w->bytes.empty() && at != w->start + static_cast<sqlite3_int64>(w->bytes.size()))
    if (const int rc = w->flush(); rc != SQLITE_OK) return rc;
  if (w->bytes.empty()) w->start = at;
  try {
    w->bytes.append(static_cast<const char*>(data), static_cast<std::size_t>(n));
  } catch (const std::bad_alloc&) {  // no memory for the buffer: this write goes as SQLite made it
    if (const int rc = w->flush(); rc != SQLITE_OK) return rc;
    written_count.fetch_add(1, std::memory_order_relaxed);
    return w->real->pMethods->xWrite(w->real, data, n, at);
  }
  return w->bytes.size() >= max_buffered ? w->flush() : SQLITE_OK;
}

int x_file_control(sqlite3_file* f, int op, void* arg) {
  if (const int rc = settle(f); rc != SQLITE_OK) return rc;
  sqlite3_file* real = real_of(f);
  if (op == SQLITE_FCNTL_VFSNAME) {
    // The default VFS names itself; say that this one wraps it (PRAGMA vfs_list, error reports).
    const int rc = real->pMethods->xFileControl(real, op, arg);
    if (rc == SQLITE_OK && arg) {
      char* inner = *static_cast<char**>(arg);
      *static_cast<char**>(arg) = sqlite3_mprintf("interfaced-batched-wal/%z", inner);
    }
    return rc;
  }
  return real->pMethods->xFileControl(real, op, arg);
}

// SQLite calls the barrier on the database file between writing the new WAL-index header's two
// copies: after it, readers take the new frames as committed. A connection that syncs every
// commit (the outbox: synchronous=FULL) has flushed them at xSync already; one that does not
// (NORMAL) has them flushed here, so no reader ever finds a published frame missing from the file.
void x_shm_barrier(sqlite3_file* f) {
  if (const char* name = shim_of(f)->db_name) {
    const std::lock_guard lock(registry_mutex);
    for (wal_buffer* w : registry) {
      if (w->db_path != name) continue;
      const std::lock_guard wal_lock(w->m);
      if (const int rc = w->flush(); rc != SQLITE_OK && w->failed == SQLITE_OK) w->failed = rc;
    }
  }
  real_call<&sqlite3_io_methods::xShmBarrier>(f);
}

// One table per version, so that SQLite calls no method the default VFS's file lacks.
sqlite3_io_methods methods_of_version(int version) {
  sqlite3_io_methods m{};
  m.iVersion = version;
  using io = sqlite3_io_methods;
  m.xClose = x_close;
  m.xRead = settled<&io::xRead, void*, int, sqlite3_int64>;
  m.xWrite = x_write;
  m.xTruncate = settled<&io::xTruncate, sqlite3_int64>;
  m.xSync = settled<&io::xSync, int>;
  m.xFileSize = settled<&io::xFileSize, sqlite3_int64*>;
  m.xLock = settled<&io::xLock, int>;
  m.xUnlock = settled<&io::xUnlock, int>;
  m.xCheckReservedLock = settled<&io::xCheckReservedLock, int*>;
  m.xFileControl = x_file_control;
  m.xSectorSize = real_call<&io::xSectorSize>;
  m.xDeviceCharacteristics = real_call<&io::xDeviceCharacteristics>;
  if (version >= 2) {
    m.xShmMap = real_call<&io::xShmMap, int, int, int, void volatile**>;
    m.xShmLock = real_call<&io::xShmLock, int, int, int>;
    m.xShmBarrier = x_shm_barrier;
    m.xShmUnmap = real_call<&io::xShmUnmap, int>;
  }
  if (version >= 3) {
    m.xFetch = real_call<&io::xFetch, sqlite3_int64, int, void**>;
    m.xUnfetch = real_call<&io::xUnfetch, sqlite3_int64, void*>;
  }
  return m;
}

const sqlite3_io_methods methods_v1 = methods_of_version(1);
const sqlite3_io_methods methods_v2 = methods_of_version(2);
const sqlite3_io_methods methods_v3 = methods_of_version(3);

int x_open(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  shim_file* s = shim_of(f);
  s->base.pMethods = nullptr;  // SQLite calls no xClose for a failed open
  s->wal = nullptr;
  s->db_name = nullptr;
  sqlite3_file* real = real_of(f);
  const int rc = default_vfs->xOpen(default_vfs, name, real, flags, out_flags);
  if (rc != SQLITE_OK || !real->pMethods) {
    if (real->pMethods) real->pMethods->xClose(real);
    return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
  }
  const int version = std::min(real->pMethods->iVersion, 3);
  s->base.pMethods = version >= 3 ? &methods_v3 : version == 2 ? &methods_v2 : &methods_v1;
  if ((flags & SQLITE_OPEN_MAIN_DB) && name) s->db_name = name;
  const std::string_view wal_name = name ? name : "";
  if ((flags & SQLITE_OPEN_WAL) && wal_name.size() > 4 && wal_name.ends_with("-wal")) {
    // No exception may cross into SQLite's C: out of memory here fails the open.
    wal_buffer* w = nullptr;
    try {
      w = new wal_buffer;
      w->db_path = std::string(wal_name.substr(0, wal_name.size() - 4));
      w->real = real;
      const std::lock_guard lock(registry_mutex);
      registry.push_back(w);
    } catch (const std::exception&) {
      delete w;
      real->pMethods->xClose(real);
      s->base.pMethods = nullptr;
      return SQLITE_NOMEM;
    }
    s->wal = w;
  }
  return SQLITE_OK;
}

// The rest of the VFS is the default one's.
int x_delete(sqlite3_vfs*, const char* name, int sync_dir) { return default_vfs->xDelete(default_vfs, name, sync_dir); }
int x_access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return default_vfs->xAccess(default_vfs, name, flags, out);
}
int x_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return default_vfs->xFullPathname(default_vfs, name, n, out);
}
void* x_dl_open(sqlite3_vfs*, const char* name) { return default_vfs->xDlOpen(default_vfs, name); }
void x_dl_error(sqlite3_vfs*, int n, char* out) { default_vfs->xDlError(default_vfs, n, out); }
void (*x_dl_sym(sqlite3_vfs*, void* h, const char* sym))(void) { return default_vfs->xDlSym(default_vfs, h, sym); }
void x_dl_close(sqlite3_vfs*, void* h) { default_vfs->xDlClose(default_vfs, h); }
int x_randomness(sqlite3_vfs*, int n, char* out) { return default_vfs->xRandomness(default_vfs, n, out); }
int x_sleep(sqlite3_vfs*, int us) { return default_vfs->xSleep(default_vfs, us); }
int x_current_time(sqlite3_vfs*, double* t) { return default_vfs->xCurrentTime(default_vfs, t); }
int x_get_last_error(sqlite3_vfs*, int n, char* out) { return default_vfs->xGetLastError(default_vfs, n, out); }
int x_current_time_int64(sqlite3_vfs*, sqlite3_int64* t) {
  return default_vfs->xCurrentTimeInt64(default_vfs, t);
}

sqlite3_vfs batched_vfs{};

}  // namespace

const char* batched_wal_vfs() {
  static std::once_flag once;
  static std::string failure;
  std::call_once(once, [] {
    default_vfs = sqlite3_vfs_find(nullptr);
    if (!default_vfs) {
      failure = "SQLite has no default VFS";
      return;
    }
    batched_vfs.iVersion = 1;
    batched_vfs.szOsFile = static_cast<int>(real_offset) + default_vfs->szOsFile;
    batched_vfs.mxPathname = default_vfs->mxPathname;
    batched_vfs.zName = "interfaced-batched-wal";
    batched_vfs.xOpen = x_open;
    batched_vfs.xDelete = x_delete;
    batched_vfs.xAccess = x_access;
    batched_vfs.xFullPathname = x_full_pathname;
    batched_vfs.xDlOpen = x_dl_open;
    batched_vfs.xDlError = x_dl_error;
    batched_vfs.xDlSym = x_dl_sym;
    batched_vfs.xDlClose = x_dl_close;
    batched_vfs.xRandomness = x_randomness;
    batched_vfs.xSleep = x_sleep;
    batched_vfs.xCurrentTime = x_current_time;
    batched_vfs.xGetLastError = x_get_last_error;
    if (default_vfs->iVersion >= 2 && default_vfs->xCurrentTimeInt64) {
      batched_vfs.iVersion = 2;
      batched_vfs.xCurrentTimeInt64 = x_current_time_int64;
    }
    if (const int rc = sqlite3_vfs_register(&batched_vfs, 0); rc != SQLITE_OK)
      failure = std::string("cannot register the batched-WAL VFS: ") + sqlite3_errstr(rc);
  });
  if (!failure.empty()) throw std::runtime_error(failure);
  return batched_vfs.zName;
}

batched_wal_counts batched_wal_stats() {
  return {asked_count.load(std::memory_order_relaxed), written_count.load(std::memory_order_relaxed)};
}

}  // namespace interfaced::transport::sqlite
