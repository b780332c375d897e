#!/usr/bin/env bash
# "Nothing lost" under SIGKILL: backend-sim with random faults (503, dropped connections, slow
# answers), the daemon killed with SIGKILL at random moments and restarted CYCLES times (same config,
# same outbox), simulators re-playing what was not acknowledged. Verifies every acknowledged result
# reached the backend; reports duplicates and their Idempotency-Keys. A measurement, not a ctest test.
#   tests/bench/crash_test.sh [CYCLES=200] [extra nothing_lost.py options, e.g. --messages 1250 --sims 4]
# Binary: $INTERFACED (default build-rel/interfaced). Exit 0: nothing lost, everything acknowledged.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
cycles="${1:-200}"; shift || true
py=""
cleanup() { [ -n "$py" ] && kill -TERM "$py" 2>/dev/null; wait "$py" 2>/dev/null; }
trap cleanup EXIT INT TERM
# 4 simulators x 1250 messages x 2 results = 10,000 results by default.
python3 "$here/nothing_lost.py" crash --cycles "$cycles" "$@" &
py=$!
wait "$py"; rc=$?; py=""
exit "$rc"
