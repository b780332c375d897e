#!/usr/bin/env bash
# The service log under systemd (issue #4): what the daemon sends to journald, read back from a
# real systemd-journald. In a private mount + PID namespace (root only) a tmpfs hides /run and
# /var/log/journal, systemd-journald is started there, and a real daemon (JOURNAL_STREAM set, as
# under systemd) receives demo-chemistry.astm from `interfaced simulate`, with `backend-sim` as its
# backend. The "message received" entry must carry DEVICE=<id>, one SAMPLE_ID= per sample,
# PRIORITY=6 and the plain MESSAGE; no other entry may carry SAMPLE_ID=.
# Exit 77 (ctest SKIP_RETURN_CODE) when not root, or namespaces / mounts / journald are not
# available. Every wait is bounded; the PID namespace dies with the script (unshare --kill-child),
# taking journald, the backend and the daemon with it.
#
# usage: journal_fields_test.sh INTERFACED_BINARY CAPTURE
set -euo pipefail

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

ns_flags=(--mount --pid --fork --mount-proc --kill-child --propagation private)

if [[ "${1:-}" != --inside ]]; then
  [[ $# -eq 2 ]] || { echo "usage: $0 INTERFACED_BINARY CAPTURE" >&2; exit 2; }
  bin=$(realpath "$1")
  capture=$(realpath "$2")
  [[ -x "$bin" ]] || fail "no binary at $1"
  [[ -r "$capture" ]] || fail "no capture at $2"
  [[ $(id -u) -eq 0 ]] || skip "needs root (private mount namespace, tmpfs over /run, systemd-journald)"
  for tool in unshare mount journalctl python3 timeout; do
    command -v "$tool" >/dev/null || skip "$tool not installed"
  done
  journald=
  for j in /lib/systemd/systemd-journald /usr/lib/systemd/systemd-journald; do
    [[ -x "$j" ]] && { journald=$j; break; }
  done
  [[ -n "$journald" ]] || skip "systemd-journald not installed"
  timeout 10 unshare "${ns_flags[@]}" sh -c 'mount -t tmpfs tmpfs /run' >/dev/null 2>&1 \
    || skip "unshare --mount --pid or mounting a tmpfs is not permitted here"
  exec timeout -k 5 150 unshare "${ns_flags[@]}" bash "$0" --inside "$bin" "$capture" "$journald"
fi

# ---- inside the namespaces (we are PID 1 here) ----
bin=$2
capture=$3
journald=$4
device=chem-journal
pids=()
work=$(mktemp -d /tmp/interfaced-journal-XXXXXX)
mount -t tmpfs tmpfs "$work"  # vanishes with the namespace, even when the script is killed
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ $rc -ne 0 && $rc -ne 77 ]]; then
    for f in journald.err backend.err daemon.err sim.out sim.err; do
      if [[ -s "$work/$f" ]]; then echo "--- $f"; tail -n 30 "$work/$f"; fi
    done
    # Under JOURNAL_STREAM the daemon's own log (and its start-up errors) is in the journal.
    echo "--- journal (interfaced)"
    journalctl --no-pager --directory=/run/log/journal SYSLOG_IDENTIFIER=interfaced \
      -o short-precise 2>&1 | tail -n 30 || true
  fi
  umount "$work" 2>/dev/null || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

# Private /run (journald's sockets and volatile journal) and /var/log/journal: nothing leaks to
# the host, no host journal is read.
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/journal
if [[ -d /var/log/journal ]]; then mount -t tmpfs tmpfs /var/log/journal; fi

"$journald" >"$work/journald.out" 2>"$work/journald.err" &
pids+=($!)
for _ in $(seq 100); do [[ -S /run/systemd/journal/socket ]] && break; sleep 0.1; done
[[ -S /run/systemd/journal/socket ]] || skip "systemd-journald did not start in the namespace"

# Three loopback ports nobody uses now; a tiny HTTP wait.
read -r backend_port device_port health_port < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
EOF
)
http_up() {
  python3 - "$1" <<'EOF'
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=1).read()
except Exception:
    sys.exit(1)
EOF
}
wait_http() {  # URL SECONDS PID WHAT
  local until=$((SECONDS + $2))
  until http_up "$1"; do
    kill -0 "$3" 2>/dev/null || fail "$4 exited at start-up"
    ((SECONDS < until)) || fail "$4 did not answer $1 within $2 s"
    sleep 0.1
  done
}

"$bin" backend-sim --listen "$backend_port" --record "$work/backend.jsonl" >"$work/backend.out" 2>"$work/backend.err" &
pids+=($!)
wait_http "http://127.0.0.1:$backend_port/_sim/requests" 10 "${pids[-1]}" backend-sim

cat >"$work/interfaced.json" <<EOF
{
  "devices": [{"id": "$device", "protocol": "astm",
               "link": {"type": "tcp-server", "bind": "127.0.0.1", "port": $device_port}}],
  "backend": {"base_url": "http://127.0.0.1:$backend_port"},
  "outbox": {"path": "$work/outbox.sqlite"},
  "logging": {"dir": "$work/logs", "level": "info"},
  "health": {"bind": "127.0.0.1", "port": $health_port},
  "control_socket": "$work/control.sock"
}
EOF
# As under systemd: JOURNAL_STREAM set (its value is the stderr stream's dev:inode; the daemon only
# looks whether it is set). No NOTIFY_SOCKET: there is no service manager to notify.
env -u NOTIFY_SOCKET JOURNAL_STREAM=0:0 "$bin" run -c "$work/interfaced.json" >"$work/daemon.out" 2>"$work/daemon.err" &
daemon_pid=$!
pids+=("$daemon_pid")
wait_http "http://127.0.0.1:$health_port/health" 15 "$daemon_pid" "the daemon"

# The samples the capture holds (in order of first appearance), from `interfaced replay`.
"$bin" replay "$capture" >"$work/replay.out" 2>"$work/replay.err" || fail "interfaced replay failed"
samples=$(python3 - "$work/replay.out" <<'EOF'
import json, sys
seen = []
for line in open(sys.argv[1]):
    try:
        j = json.loads(line)
    except ValueError:
        continue
    if j.get("type") == "result" and j.get("sample_id") not in seen:
        seen.append(j["sample_id"])
print(" ".join(seen))
EOF
)
[[ -n "$samples" ]] || fail "replay found no samples in $capture"

timeout 60 "$bin" simulate --connect "127.0.0.1:$device_port" --timeout 30000 "$capture" \
  >"$work/sim.out" 2>"$work/sim.err" || fail "interfaced simulate failed (exit $?)"

# The entry is written once the daemon handled the message; journald stores it asynchronously.
journal() { journalctl --no-pager --directory=/run/log/journal -o json "$@"; }
until=$((SECONDS + 15))
until journal SYSLOG_IDENTIFIER=interfaced 2>/dev/null | grep -q '"MESSAGE":"message received'; do
  ((SECONDS < until)) || fail "no \"message received\" entry in the journal within 15 s"
  sleep 0.2
done
journal SYSLOG_IDENTIFIER=interfaced >"$work/journal.json"
journal "DEVICE=$device" >"$work/by_device.json"
journal "SAMPLE_ID=${samples%% *}" >"$work/by_sample.json"

python3 - "$work" "$device" "$daemon_pid" "$samples" <<'EOF'
import json, sys
work, device, daemon_pid, samples = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split()
def entries(name):
    return [json.loads(l) for l in open(f"{work}/{name}") if l.strip()]
def values(e, key):  # journal JSON: one value as a string, a repeated field as a list
    v = e.get(key)
    return [] if v is None else v if isinstance(v, list) else [v]
problems = []
def check(ok, what):
    if not ok: problems.append(what)

all_entries = entries("journal.json")
print("interfaced entries (PRIORITY DEVICE MESSAGE [SAMPLE_ID]):")
for x in all_entries:
    print(f"  {x.get('PRIORITY')} {x.get('DEVICE', '(none)')} {x.get('MESSAGE')} {values(x, 'SAMPLE_ID') or ''}")
received = [e for e in all_entries if str(e.get("MESSAGE", "")).startswith("message received:")]
check(len(received) == 1, f"expected one 'message received' entry, got {len(received)}")
if received:
    e = received[0]
    print("journal entry for 'message received':")
    for k in sorted(e):
        if not k.startswith("__") and k not in ("_BOOT_ID", "_MACHINE_ID", "_HOSTNAME", "_CAP_EFFECTIVE"):
            print(f"  {k}={e[k]}")
    check(values(e, "DEVICE") == [device], f"DEVICE={values(e, 'DEVICE')}, expected [{device}]")
    check(values(e, "SAMPLE_ID") == samples, f"SAMPLE_ID={values(e, 'SAMPLE_ID')}, expected {samples} (one per sample)")
    check(values(e, "PRIORITY") == ["6"], f"PRIORITY={values(e, 'PRIORITY')}, expected ['6'] (info)")
    check(values(e, "SYSLOG_IDENTIFIER") == ["interfaced"], f"SYSLOG_IDENTIFIER={values(e, 'SYSLOG_IDENTIFIER')}")
    msg = values(e, "MESSAGE")
    check(len(msg) == 1 and msg[0].endswith("samples " + ",".join(samples)),
          f"MESSAGE={msg}: expected the plain text ending in 'samples {','.join(samples)}'")
    check(values(e, "_TRANSPORT") == ["journal"], f"_TRANSPORT={values(e, '_TRANSPORT')}, expected journal (native)")
    check(values(e, "_PID") == [daemon_pid], f"_PID={values(e, '_PID')}, expected the daemon's {daemon_pid}")
# journalctl's own matches find it (what a technician types).
check(any(str(x.get("MESSAGE", "")).startswith("message received:") for x in entries("by_device.json")),
      f"journalctl DEVICE={device} does not show the entry")
check(any(str(x.get("MESSAGE", "")).startswith("message received:") for x in entries("by_sample.json")),
      f"journalctl SAMPLE_ID={samples[0]} does not show the entry")
# SAMPLE_ID= is scoped to the lines about the message: nothing else carries it.
stray = [x.get("MESSAGE") for x in all_entries if "SAMPLE_ID" in x and x not in received]
check(not stray, f"entries other than 'message received' carry SAMPLE_ID=: {stray}")
# Every entry of the device has DEVICE= (the device's own lines: link, session).
dev_lines = entries("by_device.json")
check(len(dev_lines) >= 2, f"only {len(dev_lines)} entries with DEVICE={device}")
# Service-wide lines (the default logger, named "interfaced") are about no analyser: no DEVICE=.
ready = [x for x in all_entries if str(x.get("MESSAGE", "")).startswith("interfaced ready")]
check(len(ready) == 1, f"expected one 'interfaced ready' entry, got {len(ready)}")
check(all("DEVICE" not in x for x in ready), f"the service line 'interfaced ready' carries DEVICE={[values(x, 'DEVICE') for x in ready]}")
check(all(set(values(x, "DEVICE")) <= {device} for x in all_entries),
      f"DEVICE= values other than {device}: {sorted({v for x in all_entries for v in values(x, 'DEVICE')} - {device})}")
# CODE_FILE/CODE_LINE/CODE_FUNC, when present, name where the line was logged, not the journal sink.
check(not any(str(x.get("CODE_FUNC")) == "sink_it_" or str(x.get("CODE_FILE", "")).endswith("logging.cpp") for x in all_entries),
      f"CODE_FILE/CODE_FUNC name the journal sink: {received[0].get('CODE_FILE') if received else ''}:{received[0].get('CODE_LINE') if received else ''} {received[0].get('CODE_FUNC') if received else ''}")
# Under systemd the daemon's stderr is the journal too: the line must not also go there.
err = open(f"{work}/daemon.err", errors="replace").read()
check("message received" not in err, "the line was written to stderr as well (it would be journaled twice)")
if problems:
    print("FAIL:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"journal fields ok: DEVICE={device}, SAMPLE_ID x{len(samples)} {samples}, PRIORITY=6")
EOF
