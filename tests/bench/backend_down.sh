#!/usr/bin/env bash
# Backend down for the whole ingest of N results (the daemon's backend URL points to a free port
# nobody listens on), then backend-sim starts: all delivered? per-key order kept (per lab report / sample)?
# Reports time to ingest and time to drain. A measurement, not a ctest test.
#   tests/bench/backend_down.sh [N=100000] [extra nothing_lost.py options, e.g. --sims 4 --results 4]
# Binary: $INTERFACED (default build-rel/interfaced). Exit 0: all delivered, order kept.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
n="${1:-100000}"; shift || true
py=""
cleanup() { [ -n "$py" ] && kill -TERM "$py" 2>/dev/null; wait "$py" 2>/dev/null; }
trap cleanup EXIT INT TERM
python3 "$here/nothing_lost.py" backend-down --n "$n" "$@" &
py=$!
wait "$py"; rc=$?; py=""
exit "$rc"
