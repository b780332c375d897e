#pragma once
// Where the durable outbox lives and how many undelivered messages it holds before analysers are
// refused (transport/outbox.hpp). The daemon's "outbox" section extends it (daemon/config.hpp).

#include <cstddef>
#include <filesystem>

namespace interfaced::transport {

struct outbox_options {
  std::filesystem::path path = "/var/lib/interfaced/outbox.sqlite";
  std::size_t max_messages = 100000;
  // Test hook (fault tests of the real binary run as root, where chmod 0444 stops nothing): while
  // this file exists, every write of the outbox fails as on a read-only file. Empty: none. When it
  // says "unreadable" reads fail too; when it says "pause" nothing fails, but every transaction
  // waits before its COMMIT until the file is gone (crash tests: a kill in mid-transaction).
  std::filesystem::path write_fault_file;
};

}  // namespace interfaced::transport
