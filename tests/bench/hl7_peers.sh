#!/usr/bin/env bash
# bench_hl7 and its two peers over the same messages in one run, with the ratios:
# python3-hl7 (bench_hl7_peer.py, Debian's python3-hl7) and @medplum/core (node/bench_hl7_medplum.js,
# from the npm registry, installed here on demand: `npm ci` of node/package-lock.json into
# $INTERFACED_BENCH_NODE, default ~/.cache/interfaced-bench-node, never into the repository).
#   tests/bench/hl7_peers.sh [--dir DIR] [--seconds S] [--bench PATH/bench_hl7]
# e.g. tests/bench/hl7_peers.sh --dir tests/bench/corpus/hl7-obx-dense
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bench="$repo/build/tests/bench/bench_hl7"
dir=""
seconds=5
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --bench) bench="$2"; shift 2 ;;
    *) echo "usage: $0 [--dir DIR] [--seconds S] [--bench PATH]" >&2; exit 64 ;;
  esac
done
node_dir="${INTERFACED_BENCH_NODE:-$HOME/.cache/interfaced-bench-node}"
if ! cmp -s "$here/node/package-lock.json" "$node_dir/package-lock.json" 2>/dev/null || [ ! -d "$node_dir/node_modules/@medplum/core" ]; then
  mkdir -p "$node_dir"
  cp "$here/node/package.json" "$here/node/package-lock.json" "$node_dir/"
  (cd "$node_dir" && npm ci --no-audit --no-fund --ignore-scripts >&2)
fi
dump="$(mktemp /tmp/interfaced-hl7-peers.XXXXXX)"
trap 'rm -f "$dump"' EXIT
args=("$seconds" --dump "$dump")
[ -n "$dir" ] && args+=(--dir "$dir")
ours="$("$bench" "${args[@]}")"
echo "$ours"
py="$(/usr/bin/python3 "$here/bench_hl7_peer.py" "$dump" "$seconds")"
echo "$py"
js="$(NODE_PATH="$node_dir/node_modules" node "$here/node/bench_hl7_medplum.js" "$dump" "$seconds")"
echo "$js"
mbs() { sed -n 's/.* \([0-9.]*\) MB\/s.*/\1/p' <<<"$1" | head -1; }
o="$(mbs "$(grep 'interfaced parse' <<<"$ours")")"
awk -v o="$o" -v p="$(mbs "$py")" -v j="$(mbs "$js")" \
  'BEGIN { printf "ratio (MB/s): interfaced / @medplum/core = %.1fx, interfaced / python3-hl7 = %.0fx\n", o / j, o / p }'
