#pragma once
// The exit status of every `interfaced` command: a contract scripts, CI and systemd rely on
// (README "Exit statuses"). The numbers above 1 are sysexits.h's; systemd's unit does not restart
// on 78 (RestartPreventExitStatus=78).

namespace interfaced {

enum exit_code : int {
  exit_ok = 0,
  exit_bad_input = 1,     // a problem in some input (the rest still processed); a rules test case
                          // failed; a message not acknowledged (simulate)
  exit_usage = 64,        // EX_USAGE
  exit_no_input = 66,     // EX_NOINPUT: a file could not be read
  exit_unavailable = 69,  // EX_UNAVAILABLE: the running daemon or the link could not be reached
  exit_io = 74,           // EX_IOERR: the outbox could not be opened, or is damaged or emptied
  exit_tempfail = 75,     // EX_TEMPFAIL: another daemon runs on the same outbox (run); a QC change not stored (qc)
  exit_config = 78,       // EX_CONFIG: invalid configuration, rules file or profile; unknown --profile
};

}  // namespace interfaced
