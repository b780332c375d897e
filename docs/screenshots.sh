#!/usr/bin/env bash
# Regenerates docs/screenshots/*.png (shown in the README): a daemon with two simulated analysers
# (the bundled demo captures), a few results on recent lab-local days, then headless chromium at
# 1280x800 on every page of the lab's view.
#   docs/screenshots.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/build}/interfaced
out=$here/docs/screenshots
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
chem=$(port); imm=$(port); hema=$(port); health=$(port)
cat > "$work/interfaced.json" <<JSON
{"devices": [{"id": "chem", "protocol": "astm", "link": {"type": "tcp-server", "bind": "127.0.0.1", "port": $chem}},
             {"id": "immuno", "protocol": "hl7", "link": {"type": "tcp-server", "bind": "127.0.0.1", "port": $imm}},
             {"id": "hema", "protocol": "astm", "link": {"type": "tcp-server", "bind": "127.0.0.1", "port": $hema}}],
 "outbox": {"path": "$work/outbox.sqlite"}, "logging": {"dir": "$work/logs"},
 "health": {"bind": "127.0.0.1", "port": $health}, "control_socket": "$work/control.sock",
 "lab": {"timezone": "Europe/Berlin"},
 "qc": {"limits": [{"parameter": "GLU", "level": "1", "mean": 5.0, "sd": 0.2}],
        "controls": [{"sample_id": "QC-*", "material": "Liquichek", "lot": "L26", "level": "1"}]}}
JSON
"$bin" run -c "$work/interfaced.json" 2>"$work/daemon.err" &
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$health/health" >/dev/null && break; sleep 0.1; done
# Results on the last days (plain LIS2-A2 records; the simulator frames them).
records() {  # DAY SAMPLE...
  local day=$1; shift
  printf 'H|\\^&|||DEMO-CHEM^1.0|||||LIS||P|LIS2-A2|%s080000\r' "$day"
  local i=1
  for s in "$@"; do
    printf 'P|%d|PAT-%s\rO|1|%s||^^^GLU\\^^^CREA\\^^^NA|R\r' $i "$s" "$s"
    printf 'R|1|^^^GLU|5.%d|mmol/L|3.9-6.1|N||F||tech1|%s0756|%s0801\r' $((i % 10)) "$day" "$day"
    printf 'R|2|^^^CREA|%d|umol/L|45-110|N||F||tech1|%s0756|%s0801\r' $((60 + i)) "$day" "$day"
    printf 'R|3|^^^NA|14%d|mmol/L|135-145|N||F||tech1|%s0756|%s0801\r' $((i % 6)) "$day" "$day"
    i=$((i + 1))
  done
  printf 'L|1|N\r'
}
n=1000
for d in 0 1 2 4; do
  day=$(date -d "-$d day" +%Y%m%d)
  samples=(); for _ in $(seq $((4 - d % 3))); do n=$((n + 1)); samples+=("S-$n"); done
  records "$day" "${samples[@]}" > "$work/chem-$d.astm"
  "$bin" simulate --connect "127.0.0.1:$chem" "$work/chem-$d.astm" >/dev/null
done
# Twelve GLU controls on hema over the last six days (z from -1.3 to +3.4: accepts, a 1-2s
# warning, a 1-3s reject) for the Levey-Jennings chart.
k=0
for z in 0.5 -0.4 1.1 -1.3 0.2 2.3 1.0 -0.6 3.4 0.3 -0.8 0.1; do
  d=$((5 - k / 2)); day=$(date -d "-$d day" +%Y%m%d); hour=$((7 + 6 * (k % 2)))
  v=$(python3 -c "print(round(5.0 + 0.2 * $z, 3))")
  printf 'H|\\^&|||DEMO-HEMA^1.0|||||LIS||P|LIS2-A2|%s%02d0000\rP|1|QC\rO|1|QC-%d||^^^GLU|R\rR|1|^^^GLU|%s|mmol/L||N||F||tech1|%s%02d0000|%s%02d0000\rL|1|N\r' \
    "$day" $hour $k "$v" "$day" $hour "$day" $hour > "$work/qc-$k.astm"
  "$bin" simulate --connect "127.0.0.1:$hema" "$work/qc-$k.astm" >/dev/null
  k=$((k + 1))
done
"$bin" simulate --connect "127.0.0.1:$chem" --frame-size 40 --corrupt-frame 2 "$work/chem-0.astm" >/dev/null
"$bin" simulate --connect "127.0.0.1:$imm" "$here/packaging/samples/demo-immuno.hl7" >/dev/null
sleep 1
from=$(date -d "-6 day" +%F); to=$(date +%F)
shot() {
  chromium --headless --disable-gpu --no-sandbox --no-first-run --user-data-dir="$work/chromium" --hide-scrollbars \
    --window-size=1280,800 --virtual-time-budget=4000 --screenshot="$out/$1.png" "http://127.0.0.1:$health$2" 2>/dev/null
}
shot dashboard /
shot messages "/messages?sample=S-1001"
shot stats "/stats?from=$from&to=$to&by=device"
shot help "/help?q=checksum"
shot qc /qc
echo "screenshots in $out"
