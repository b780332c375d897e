#!/usr/bin/env bash
# Instructions the daemon executes per 2-result ASTM message, counted by callgrind: the measure
# that does not move with a shared machine's load (issue #17). Two throughput runs of 8 simulators
# (100 and 400 messages each) with the daemon under `valgrind --tool=callgrind`; the difference
# divided by the 2,400 messages between them, so start-up and shutdown cancel out. Prints the
# total and the parts of the durable path. A measurement, not a ctest test; ~1 minute.
#   tests/tools/instructions_per_message.sh [BINARY=build/interfaced] [TAG]
# Needs valgrind (callgrind_annotate), which is not among the build's dependencies:
#   apt-get install valgrind
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$(dirname "$here")")"
bin="$(realpath "${1:-$repo/build/interfaced}")"
tag="${2:-ipm}"
command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null ||
  { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 77; }
work="$(mktemp -d "${TMPDIR:-/tmp}/interfaced-ipm-XXXXXX")"
trap 'rm -rf "$work"' EXIT
# Only `run` goes under callgrind; the simulators and backend-sim run as they are.
cat > "$work/wrap.sh" <<EOF
#!/bin/sh
if [ "\$1" = run ]; then exec valgrind --tool=callgrind --callgrind-out-file="\$CG_OUT" "$bin" "\$@"; fi
exec "$bin" "\$@"
EOF
chmod +x "$work/wrap.sh"
for n in 100 400; do
  CG_OUT="$work/cg-$n.out" INTERFACED="$work/wrap.sh" python3 "$repo/tests/bench/nothing_lost.py" throughput \
    --dir "$work/run-$n" --sims 8 --messages "$n" > "$work/run-$n.log" 2>&1 ||
    { echo "throughput run of $n messages failed: see below" >&2; tail -20 "$work/run-$n.log" >&2; exit 1; }
  callgrind_annotate --inclusive=yes "$work/cg-$n.out" > "$work/cga-$n.txt" 2>/dev/null
done
python3 - "$work/cga-100.txt" "$work/cga-400.txt" "$tag" <<'PY'
import re, sys

def load(path):
    d = {}
    for line in open(path):
        m = re.match(r"\s*([\d,]+) \([\s\d.]+%\)\s+(.*)$", line)
        if m:
            name = re.sub(r" \[/.*\]$", "", m.group(2))
            d[name] = max(d.get(name, 0), int(m.group(1).replace(",", "")))
    return d

a, b = load(sys.argv[1]), load(sys.argv[2])
messages = 8 * (400 - 100)
rows = sorted(((v - a.get(k, 0)) / messages, k) for k, v in b.items())[::-1]
parts = ["PROGRAM TOTALS", "outbox::run()", "outbox_db::insert(", "outbox_db::mark(", "outbox_db::claim_due(",
         "history_writer::record(", "pack_body", "unpack_body", "ingest_hand_off::hand_off(", "state_writer::write(",
         "process_reports_for_rerun(", "service::run()"]
print("%s: instructions per message (callgrind, 8 x (400 - 100) messages)" % sys.argv[3])
for part in parts:
    for per, name in rows:
        if part in name and not name.startswith("=>"):
            print("%10.0f  %s" % (per, part))
            break
PY
