#!/usr/bin/env bash
# 32 simulators at once against 32 tcp-server devices of one daemon, backend-sim up: results/s
# acknowledged and recorded, and the per-message ACK interval each simulator sees (p50/p90/p99).
# A measurement, not a ctest test.
#   tests/bench/throughput.sh [extra nothing_lost.py options, e.g. --sims 32 --messages 200 --results 2]
# Binary: $INTERFACED (default build-rel/interfaced).
set -u
here="$(cd "$(dirname "$0")" && pwd)"
py=""
cleanup() { [ -n "$py" ] && kill -TERM "$py" 2>/dev/null; wait "$py" 2>/dev/null; }
trap cleanup EXIT INT TERM
python3 "$here/nothing_lost.py" throughput "$@" &
py=$!
wait "$py"; rc=$?; py=""
exit "$rc"
