#pragma once
// Where the durable outbox lives and how many undelivered messages it holds before analysers are
// refused (transport/outbox.hpp). The daemon's "outbox" section extends it (daemon/config.hpp).

#include <cstddef>
#include <filesystem>

namespace interfaced::transport {

struct outbox_options {
  std::filesystem::path path = "/var/lib/interfaced/outbox.sqlite";
  std::size_t max_messages = 100000;
};

}  // namespace interfaced::transport
