#pragma once
// Per-link protocol counters for /metrics, counted by the link drivers from the link's own
// events (not from log text). Touched only on the io_context thread: plain integers.

#include <cstdint>

namespace interfaced::transport {

struct link_counters {
  // ASTM: NAK bytes we sent (a refused ENQ, a rejected frame, an end frame whose message could
  // not be stored). HL7: negative acknowledgements we sent (AE, AR).
  std::uint64_t naks_sent = 0;
  // ASTM: our ENQ or frame answered with NAK, or anything but ACK / EOT (LIS1-A 6.5.1.2).
  // HL7: AE, AR, CE or CR received for a message we sent.
  std::uint64_t naks_received = 0;
  // ASTM: received frames whose checksum was wrong or unreadable (each one is NAKed).
  std::uint64_t checksum_errors = 0;
};

}  // namespace interfaced::transport
