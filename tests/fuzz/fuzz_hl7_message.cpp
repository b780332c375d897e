// libFuzzer target: HL7 message view, normalise, ACK / RSP^K11 builders and the response checker.
#include "hl7_fuzz_drivers.hpp"
#include "fuzz_target.hpp"

INTERFACED_FUZZ_TARGET(interfaced::fuzz::hl7::message_driver)
