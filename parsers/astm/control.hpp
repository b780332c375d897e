#pragma once
// The E1381 (CLSI LIS1-A) transmission control characters, in one place: the framer, the link
// state machine, the simulators and the tests all name them from here (LIS1-A 6.3, 6.6).

namespace interfaced::astm::control {

inline constexpr char stx = '\x02';  // start of a frame
inline constexpr char etx = '\x03';  // end of the last frame of a message
inline constexpr char eot = '\x04';  // end of transmission: the sender releases the line
inline constexpr char enq = '\x05';  // a sender bids for the line
inline constexpr char ack = '\x06';  // frame / bid accepted
inline constexpr char nak = '\x15';  // frame / bid refused
inline constexpr char etb = '\x17';  // end of an intermediate frame
inline constexpr char cr = '\x0d';
inline constexpr char lf = '\x0a';

}  // namespace interfaced::astm::control
