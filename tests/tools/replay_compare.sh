#!/usr/bin/env bash
# `interfaced replay` output of two binaries, byte for byte, over every capture: for a parser change
# that must not change what users see (issue 17). Each file is replayed alone in jsonl, text and
# --explain jsonl, and once all together; stdout, stderr and the exit code are compared.
#   tests/tools/replay_compare.sh BASE/interfaced NEW/interfaced [capture dir or file ...]
# default captures: ../shared/captures/{astm,hl7} beside the repository. Exit 1 on any difference.
set -uo pipefail
base="$1"; new="$2"; shift 2
here="$(cd "$(dirname "$0")" && pwd)"
[ $# -eq 0 ] && set -- "$here/../../../shared/captures/astm" "$here/../../../shared/captures/hl7"
files=()
for a in "$@"; do
  if [ -d "$a" ]; then while IFS= read -r f; do files+=("$f"); done < <(find "$a" -type f ! -name '*.md' | sort)
  else files+=("$a"); fi
done
out="$(mktemp -d /tmp/replay-compare.XXXXXX)"
trap 'rm -rf "$out"' EXIT
run() {  # run BIN TAG ARGS... -> $out/TAG.{out,err,rc}
  local bin="$1" tag="$2"; shift 2
  TZ=UTC "$bin" replay --timezone UTC "$@" >"$out/$tag.out" 2>"$out/$tag.err"; echo $? >"$out/$tag.rc"
}
compared=0; differ=0
check() {  # check NAME ARGS...
  local name="$1"; shift
  run "$base" a "$@"; run "$new" b "$@"
  for s in out err rc; do
    if ! cmp -s "$out/a.$s" "$out/b.$s"; then
      echo "DIFF $name ($s): $*"; diff "$out/a.$s" "$out/b.$s" | head -20; differ=$((differ + 1)); return
    fi
  done
}
for f in "${files[@]}"; do
  check "$(basename "$f") jsonl" "$f"
  check "$(basename "$f") text" --format text "$f"
  check "$(basename "$f") explain" --explain "$f"
  compared=$((compared + 1))
done
check "all files together" "${files[@]}"
echo "files compared: $compared (x3 formats, + all together); differences: $differ"
[ "$differ" -eq 0 ]
