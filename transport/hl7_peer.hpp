#pragma once
// Who an HL7 analyser says it is: the address of the orders pushed to it. Its own header so the
// daemon's per-device state can hold one without the MLLP session's templates.

#include <string>

namespace interfaced::transport {

// Who the analyser says it is (MSH-3 / MSH-4 of the last message it sent, raw): the address of
// the orders pushed to it (MSH-5 / MSH-6), which are built before it has necessarily spoken.
// Shared by a device's successive connections; touched on the io_context thread only.
struct hl7_peer {
  std::string application;
  std::string facility;
};

}  // namespace interfaced::transport
