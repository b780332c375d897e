#!/usr/bin/env bash
# Folder device soak (issue #15 point 4 acceptance): FILES files (ASTM, HL7, CSV, PNG reports)
# dropped into a folder device's folder by WRITERS writers while the daemon is SIGKILLed KILLS
# times and restarted; then every file must be in done/ exactly once, failed/ empty, every
# result and every report at the backend (backend-sim --store), none twice. On demand, not a
# ctest test.
#   tests/bench/folder_soak.sh [FILES=1000] [WRITERS=4] [KILLS=20]
# Binary: $INTERFACED (default build/interfaced). Exit 0: all checks hold.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
exec python3 "$here/folder_soak.py" --files "${1:-1000}" --writers "${2:-4}" --kills "${3:-20}"
