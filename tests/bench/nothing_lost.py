#!/usr/bin/env python3
"""Measurements of the "nothing lost" guarantees, run on demand (not ctest tests).

  nothing_lost.py crash        [--cycles 200] [--sims 4] [--messages 1250] [--results 2]
  nothing_lost.py backend-down [--n 100000] [--sims 4] [--results 4]
  nothing_lost.py throughput   [--sims 32] [--messages 200] [--results 2] [--syscalls]

Everything runs on 127.0.0.1 in a fresh temporary directory (kept, its path printed), against
the `interfaced` binary ($INTERFACED, default build-rel/interfaced). Every loop is bounded in
count and time; every child process is ended (by its pid) on exit.

Captures are generated here: records-only ASTM (H, P, O, R..., L), one message per sample, every
sample id unique (so the daemon's duplicate detection - same sample, parameter, value,
observation time - never merges two generated results), one file per simulator.

"Acknowledged" below means: the simulator printed "message i/N acknowledged" for it, i.e. the end
frame of that ENQ..EOT session was ACKed by the daemon, which persists before that ACK.
"Recorded" means: the backend simulator recorded a POST carrying the result and answered it 2xx
(a request it failed on purpose - 503 or dropped - does not count).
"""
import argparse
import collections
import json
import os
import random
import shutil
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("INTERFACED", os.path.join(REPO, "build-rel", "interfaced"))

CHILDREN = []  # Popen objects we started; ended by pid on exit
CHILDREN_LOCK = threading.Lock()
STOP = threading.Event()


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


HANDED_OUT = set()  # the kernel may give a closed port out again: never hand one out twice


def free_port():
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p not in HANDED_OUT:
            HANDED_OUT.add(p)
            return p


PIN = {}  # --pin-daemon CPU: {"daemon": [...], "other": [...]} CPU lists for taskset


def spawn(args, logfile, stdout=None):
    if PIN:
        role = "daemon" if args[:2] == [BIN, "run"] else "other"
        args = ["taskset", "-c", PIN[role]] + args
    f = open(logfile, "ab")
    p = subprocess.Popen(args, stdout=stdout if stdout is not None else f, stderr=f, stdin=subprocess.DEVNULL)
    with CHILDREN_LOCK:
        CHILDREN.append(p)
    return p


def end(p, sig=signal.SIGTERM, wait=10):
    if p is None or p.poll() is not None:
        return
    try:
        p.send_signal(sig)
        p.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=5)
    except ProcessLookupError:
        pass


def cleanup(*_):
    STOP.set()
    with CHILDREN_LOCK:
        kids = list(CHILDREN)
    for p in kids:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    for p in kids:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()


def on_signal(signum, _frame):
    cleanup()
    sys.exit(128 + signum)


# ---- captures ----------------------------------------------------------------------------

# Up to 24 results per message (--results): a chemistry panel, then a blood count's parameters.
PARAMS = ["GLU", "CREA", "UREA", "NA", "K", "CL", "ALT", "AST", "WBC", "RBC", "HGB", "HCT", "MCV", "MCH",
          "MCHC", "PLT", "RDW", "MPV", "NEUT", "LYMPH", "MONO", "EOS", "BASO", "PCT"]


def sample_id(dev, i):
    return "%s-%07d" % (dev.upper(), i)


def message_text(dev, i, nres):
    sid = sample_id(dev, i)
    params = PARAMS[:nres]
    rec = [
        "H|\\^&|||BENCH^1.0^SN%s|||||LIS||P|LIS2-A2|20261123080000" % dev,
        "P|1||PAT-%s" % sid,
        "O|1|%s||%s|R|20261123075500|||||N||||SERUM||||||||||F" % (sid, "\\".join("^^^" + p for p in params)),
    ]
    for k, p in enumerate(params):
        val = "%d.%d" % (1 + (i + k) % 90, (i * 7 + k) % 10)
        rec.append("R|%d|^^^%s|%s|mmol/L|||N||F||tech1|20261123075600|20261123080100|BENCH" % (k + 1, p, val))
    rec.append("L|1|N")
    return "\r\n".join(rec) + "\r\n"


def write_capture(path, dev, indices, nres):
    with open(path, "w", newline="") as f:
        for i in indices:
            f.write(message_text(dev, i, nres))


# ---- daemon / backend ------------------------------------------------------------------------

STATE_DIR = {}  # --state-dir: where the daemon's outbox goes, when not in the run directory


def outbox_file(d):
    return os.path.join(STATE_DIR.get("path") or d, "outbox.sqlite")


def write_config(d, devices, backend_port, max_messages=1000000):
    cfg = {
        "devices": [{"id": dev, "protocol": "astm", "link": {"type": "tcp-server", "bind": "127.0.0.1", "port": port}}
                    for dev, port in devices],
        "backend": {"base_url": "http://127.0.0.1:%d" % backend_port},
        "outbox": {"path": outbox_file(d), "max_messages": max_messages},
        "logging": {"dir": os.path.join(d, "logs"), "level": "warn"},
        "health": {"bind": "127.0.0.1", "port": free_port()},
        "control_socket": os.path.join(d, "control.sock"),
    }
    path = os.path.join(d, "interfaced.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    return path


def wait_listening(port, limit=15.0):
    end_t = time.time() + limit
    while time.time() < end_t:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def start_backend(d, port, record, extra=()):
    p = spawn([BIN, "backend-sim", "--listen", str(port), "--record", record] + list(extra),
              os.path.join(d, "logs", "backend-sim.log"))
    if not wait_listening(port):
        raise SystemExit("backend-sim did not listen on %d" % port)
    return p


def start_daemon(d, config):
    return spawn([BIN, "run", "-c", config], os.path.join(d, "logs", "daemon.out"))


def wait_devices(d, daemon, devs):
    for _, port in devs:
        if not wait_listening(port, 30):
            with open(os.path.join(d, "logs", "daemon.out"), errors="replace") as f:
                tail = f.read()[-2000:]
            raise SystemExit("the daemon does not listen on %d (exit %s):\n%s" % (port, daemon.poll(), tail))


def health_port(config):
    with open(config) as f:
        return json.load(f)["health"]["port"]


def histogram_buckets(config, name):
    """The daemon's own histogram `name` from /metrics, all label sets summed: {upper bound (s):
    cumulative count}."""
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % health_port(config), timeout=10).read().decode()
    buckets = collections.defaultdict(int)
    for line in text.splitlines():
        m = re.match(name + r'_bucket\{(?:[^}]*,)?le="([^"]+)"\} (\d+)', line)
        if m:
            buckets[float(m.group(1))] += int(m.group(2))
    return buckets


def histogram_quantiles(buckets, qs=(0.5, 0.9, 0.99)):
    """For each q, the upper bound (seconds) of the bucket of `buckets` (histogram_buckets) holding
    it, and the count."""
    bounds = sorted(buckets)
    total = buckets[float("inf")] if bounds else 0
    out = {}
    for q in qs:
        rank = q * total
        out[q] = next((b for b in bounds if buckets[b] >= rank), float("nan"))
    return out, total


def share_over(buckets, limit):
    """(bound, share): the largest bucket bound <= limit of `buckets` (histogram_buckets) and the
    share of observations above it, an upper bound on the share above `limit` (not quantised to a
    bucket like a quantile is)."""
    total = buckets.get(float("inf"), 0)
    below = [b for b in buckets if b <= limit]
    if not total or not below:
        return float("nan"), float("nan")
    bound = max(below)
    return bound, (total - buckets[bound]) / total


def post_fault(port, fault):
    req = urllib.request.Request("http://127.0.0.1:%d/_sim/faults" % port, data=json.dumps(fault).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req, timeout=5).read()


class Record:
    """Incremental reader of the backend-sim record file."""

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.lines = 0
        self.delivered = collections.defaultdict(list)  # (dev, sample, param) -> [(seq, idem key, duplicate)]
        self.order = collections.defaultdict(list)      # device -> [(seq, sample)] of 2xx non-duplicate POSTs
        self.faulted = 0
        self.requests = 0
        self.buf = b""

    def poll(self):
        if not os.path.exists(self.path):
            return
        with open(self.path, "rb") as f:
            f.seek(self.pos)
            data = f.read()
        self.pos += len(data)
        self.buf += data
        *complete, self.buf = self.buf.split(b"\n")
        for line in complete:
            if not line.strip():
                continue
            r = json.loads(line)
            self.lines += 1
            if r.get("method") != "POST":
                continue
            self.requests += 1
            if r.get("fault") or not (200 <= r.get("status", 0) < 300):
                self.faulted += 1
                continue
            body = r.get("body")
            if isinstance(body, str):
                try:
                    body = json.loads(body)
                except ValueError:
                    continue
            if not isinstance(body, dict):
                continue
            dev = body.get("device_id", "")
            samples = []
            for res in body.get("results", body.get("values", [])) or []:
                key = (dev, res.get("sample_id", ""), res.get("parameter", ""))
                self.delivered[key].append((r.get("seq"), r.get("idempotency_key", ""), bool(r.get("duplicate"))))
                if res.get("sample_id") not in samples:
                    samples.append(res.get("sample_id"))
            if not r.get("duplicate"):
                for s in samples:
                    self.order[dev].append((r.get("seq"), s))

    def result_count(self):
        return len(self.delivered)


# ---- simulators ---------------------------------------------------------------------------------

ACK_RE = re.compile(rb"^message (\d+)/(\d+) acknowledged")


class Sim(threading.Thread):
    """One analyser: plays its messages; re-plays the not-yet-acknowledged ones after a failed run."""

    def __init__(self, d, dev, port, indices, nres, max_runs=2000, deadline=None, extra=()):
        super().__init__(daemon=True)
        self.d, self.dev, self.port, self.nres = d, dev, port, nres
        self.remaining = list(indices)
        self.acked = []           # message indices, in acknowledgement order
        self.ack_times = []       # time.monotonic() of each ack line
        self.runs = 0
        self.failed_runs = 0
        self.max_runs = max_runs
        self.deadline = deadline
        self.extra = list(extra)
        self.started = self.finished = None
        self.proc = None

    def run(self):
        self.started = time.monotonic()
        while self.remaining and self.runs < self.max_runs and not STOP.is_set():
            if self.deadline and time.monotonic() > self.deadline:
                break
            self.runs += 1
            cap = os.path.join(self.d, "cap-%s-run.astm" % self.dev)
            batch = list(self.remaining)
            write_capture(cap, self.dev, batch, self.nres)
            args = [BIN, "simulate", "--connect", "127.0.0.1:%d" % self.port, "--reply-timeout", "5000",
                    "--timeout", "600000"] + self.extra + [cap]
            p = spawn(args, os.path.join(self.d, "logs", "sim-%s.err" % self.dev), stdout=subprocess.PIPE)
            self.proc = p
            done = set()
            for line in p.stdout:
                m = ACK_RE.match(line)
                if m:
                    k = int(m.group(1)) - 1
                    if 0 <= k < len(batch) and k not in done:
                        done.add(k)
                        self.acked.append(batch[k])
                        self.ack_times.append(time.monotonic())
            rc = p.wait()
            self.remaining = [x for k, x in enumerate(batch) if k not in done]
            if rc != 0:
                self.failed_runs += 1
                time.sleep(0.2)
        self.finished = time.monotonic()


def run_sims(sims, deadline):
    """Starts every simulator, waits for all of them (bounded by deadline); returns the seconds taken."""
    t0 = time.monotonic()
    for s in sims:
        s.start()
    for s in sims:
        s.join(timeout=max(1, deadline - time.monotonic()))
    return time.monotonic() - t0


def stat_cpu(path):
    """(name, utime, stime) from a /proc stat file (a process's or a thread's), seconds."""
    with open(path) as f:
        head, rest = f.read().rsplit(")", 1)
    fields = rest.split()
    tck = os.sysconf("SC_CLK_TCK")
    return head.split("(", 1)[1], int(fields[11]) / tck, int(fields[12]) / tck


def proc_cpu_split(pid):
    """(utime, stime) of a process, seconds."""
    return stat_cpu("/proc/%d/stat" % pid)[1:]


def thread_cpu_split(pid):
    """{thread name: (utime, stime)} of a process's threads, seconds; threads of one name summed."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            name, u, s = stat_cpu("/proc/%d/task/%s/stat" % (pid, tid))
        except OSError:  # the thread ended
            continue
        u0, s0 = out.get(name, (0.0, 0.0))
        out[name] = (u0 + u, s0 + s)
    return out


def log_thread_cpu(pid, threads0, messages, during=""):
    """Each thread's CPU per message since the snapshot threads0 (thread_cpu_split)."""
    threads1 = thread_cpu_split(pid)
    for name, (u, s) in sorted(threads1.items()):
        u0, s0 = threads0.get(name, (0.0, 0.0))
        if messages and u - u0 + s - s0 > 0:
            log("daemon CPU per message%s, thread %s: %.1f us (user %.1f, system %.1f)" %
                (during, name, (u - u0 + s - s0) / messages * 1e6, (u - u0) / messages * 1e6,
                 (s - s0) / messages * 1e6))
    return threads1


def proc_written(pid):
    """Bytes a process caused to be written to storage (/proc/PID/io write_bytes)."""
    with open("/proc/%d/io" % pid) as f:
        io = dict(line.split(": ") for line in f.read().splitlines())
    return int(io["write_bytes"])


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100.0 * (len(xs) - 1))))]


def expected_keys(dev, indices, nres):
    return [(dev, sample_id(dev, i), p) for i in indices for p in PARAMS[:nres]]


def outbox_summary(d):
    out = subprocess.run([BIN, "outbox", "--file", outbox_file(d), "list", "--all", "--json"],
                         capture_output=True, text=True, timeout=300)
    try:
        rows = json.loads(out.stdout)
    except ValueError:
        return None, out.stdout[:300] + out.stderr[:300]
    if isinstance(rows, dict):
        rows = rows.get("messages", rows.get("items", []))
    return rows, None


def loss_report(rec, sims, nres, label=""):
    """Lost / duplicate accounting over every acknowledged message of every simulator."""
    acked_keys, unacked_keys = [], []
    for s in sims:
        acked_keys += expected_keys(s.dev, s.acked, nres)
        unacked_keys += expected_keys(s.dev, s.remaining, nres)
    lost = [k for k in acked_keys if k not in rec.delivered]
    dup = {k: v for k, v in rec.delivered.items() if len(v) > 1}
    same_key = sum(1 for v in dup.values() if len({x[1] for x in v}) == 1)
    answered_dup = sum(1 for v in dup.values() if any(x[2] for x in v))
    unacked_recorded = sum(1 for k in unacked_keys if k in rec.delivered)
    log("%sresults acknowledged %d, never acknowledged %d (of those recorded anyway: %d)" %
        (label, len(acked_keys), len(unacked_keys), unacked_recorded))
    log("%sresults recorded (2xx) %d distinct; POSTs %d (failed on purpose %d)" %
        (label, rec.result_count(), rec.requests, rec.faulted))
    log("%sLOST (acknowledged, not recorded): %d" % (label, len(lost)))
    for k in lost[:20]:
        log("   lost:", k)
    log("%sresults recorded more than once: %d; with the same Idempotency-Key every time: %d; "
        "with a different key (appended twice): %d; answered {duplicate:true} by the backend: %d" %
        (label, len(dup), same_key, len(dup) - same_key, answered_dup))
    for k, v in list((k, v) for k, v in dup.items() if len({x[1] for x in v}) > 1)[:10]:
        log("   different keys:", k, v)
    return lost, dup


# ---- modes --------------------------------------------------------------------------------------

def mode_crash(a, d):
    rnd = random.Random(a.seed)
    bport = free_port()
    devs = [("crash%d" % i, free_port()) for i in range(a.sims)]
    config = write_config(d, devs, bport)
    record = os.path.join(d, "backend-requests.jsonl")
    # A fault at start (CLI), more at run time (POST /_sim/faults) below.
    backend = start_backend(d, bport, record, ["--fail", "status=503,count=5"])
    daemon = start_daemon(d, config)
    wait_devices(d, daemon, devs)
    total_deadline = time.monotonic() + a.max_seconds
    sims = [Sim(d, dev, port, range(a.messages), a.results, deadline=total_deadline) for dev, port in devs]
    t0 = time.monotonic()
    for s in sims:
        s.start()
    rec = Record(record)
    cycles = 0
    faults_posted = collections.Counter()
    while cycles < a.cycles and time.monotonic() < total_deadline:
        time.sleep(rnd.uniform(a.min_up, a.max_up))
        # Random backend faults now and then.
        if rnd.random() < 0.3:
            f = rnd.choice([{"status": 503, "count": rnd.randint(1, 5)},
                            {"drop": True, "count": rnd.randint(1, 3)},
                            {"status": 503, "count": 2, "retry_after": 1},
                            {"status": 200, "delay_ms": 300, "count": 2}])  # slow answers: kills land mid-POST
            try:
                post_fault(bport, f)
                faults_posted[json.dumps(f, sort_keys=True)] += 1
            except OSError as e:
                log("fault post failed:", e)
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
        cycles += 1
        daemon = start_daemon(d, config)
        if cycles % 20 == 0:
            rec.poll()
            log("cycle %d: acknowledged %d messages, backend has %d results" %
                (cycles, sum(len(s.acked) for s in sims), rec.result_count()))
        if all(not s.is_alive() for s in sims):
            log("every simulator finished after %d cycles; the kills stop" % cycles)
            break
    kill_phase = time.monotonic() - t0
    log("kill phase over: %d SIGKILL cycles in %.1f s; letting the simulators finish" % (cycles, kill_phase))
    for s in sims:
        s.join(timeout=max(1, total_deadline + 120 - time.monotonic()))
    want = sum(len(expected_keys(s.dev, s.acked, a.results)) for s in sims)
    drain_end = time.monotonic() + a.drain_seconds
    while time.monotonic() < drain_end:
        rec.poll()
        if all(k in rec.delivered for s in sims for k in expected_keys(s.dev, s.acked, a.results)):
            break
        time.sleep(1)
    rec.poll()
    log("drained %.1f s after the start" % (time.monotonic() - t0))
    log("simulators: runs %d (failed runs %d)" % (sum(s.runs for s in sims), sum(s.failed_runs for s in sims)))
    log("results sent (generated) %d = %d simulators x %d messages x %d results" %
        (a.sims * a.messages * a.results, a.sims, a.messages, a.results))
    log("backend faults posted at run time:", dict(faults_posted))
    lost, dup = loss_report(rec, sims, a.results)
    rows, err = outbox_summary(d)
    if rows is not None:
        log("outbox: %d messages; states %s" % (len(rows), dict(collections.Counter(
            str(r.get("state", r.get("status", "?"))) for r in rows))))
    else:
        log("outbox list failed:", err)
    end(daemon)
    end(backend)
    return 1 if lost or any(s.remaining for s in sims) else 0


def check_order(rec, devs):
    """Order is kept per lab report / sample (issue 18), no longer per analyser, so samples of one
    device may arrive in any order. What is left to check here: the posts of one sample arrive in
    record order. Each simulated message carries its own samples, so this rarely has two posts to
    compare; the order within a key is tested in tests/transport (delivery keeps per-report order)."""
    bad = 0
    for dev in devs:
        by_sample = collections.defaultdict(list)
        for seq, s in rec.order[dev]:
            by_sample[s].append(seq)
        for s, seqs in by_sample.items():
            inversions = sum(1 for x, y in zip(seqs, seqs[1:]) if x > y)
            if inversions:
                log("ORDER broken for sample %s of device %s: %d inversions" % (s, dev, inversions))
            bad += inversions
    return bad


def mode_backend_down(a, d):
    bport = free_port()  # nobody listens here during the ingest
    devs = [("down%d" % i, free_port()) for i in range(a.sims)]
    config = write_config(d, devs, bport)
    record = os.path.join(d, "backend-requests.jsonl")
    daemon = start_daemon(d, config)
    wait_devices(d, daemon, devs)
    per_sim = a.n // (a.sims * a.results)
    deadline = time.monotonic() + a.max_seconds
    sims = [Sim(d, dev, port, range(per_sim), a.results, max_runs=20, deadline=deadline) for dev, port in devs]
    total = per_sim * a.sims * a.results
    log("ingest: %d results (%d simulators x %d messages x %d results), backend down (port %d unused)" %
        (total, a.sims, per_sim, a.results, bport))
    threads0 = thread_cpu_split(daemon.pid)
    t_ingest = run_sims(sims, deadline)
    acked = sum(len(s.acked) for s in sims) * a.results
    log("ingest done: %d results acknowledged in %.1f s = %.0f results/s (%.0f messages/s)" %
        (acked, t_ingest, acked / t_ingest, acked / a.results / t_ingest))
    # The two halves of the durable path priced apart: storing (parse, decide, commit, ACK) with
    # no delivery running, then delivering (claim, POST, mark) with no ingest running.
    threads1 = log_thread_cpu(daemon.pid, threads0, acked // a.results, " stored (ingest, backend down)")
    try:  # the ACK latency with no delivery running beside the ingest
        q, n = histogram_quantiles(histogram_buckets(config, "interfaced_ingest_ack_seconds"))
        log("daemon ingest-to-ACK, backend down, %d messages: p50 <= %.2f ms, p99 <= %.2f ms (histogram bucket bounds)"
            % (n, q[0.5] * 1e3, q[0.99] * 1e3))
    except Exception as e:
        log("metrics not read: %s" % e)
    rec = Record(record)
    t1 = time.monotonic()
    backend = start_backend(d, bport, record)
    first = None
    drain_end = time.monotonic() + a.drain_seconds
    last_report = time.monotonic()
    while time.monotonic() < drain_end:
        rec.poll()
        if first is None and rec.result_count():
            first = time.monotonic() - t1
            log("first delivery %.1f s after the backend came up (the daemon's retry backoff)" % first)
        if rec.result_count() >= acked:
            break
        if time.monotonic() - last_report > 30:
            log("draining: %d/%d results recorded" % (rec.result_count(), acked))
            last_report = time.monotonic()
        time.sleep(0.5)
    rec.poll()
    t_drain = time.monotonic() - t1
    log_thread_cpu(daemon.pid, threads1, acked // a.results, " delivered (drain)")
    log("drain: %d results recorded %.1f s after backend-sim started" % (rec.result_count(), t_drain))
    if first is not None and t_drain > first:
        log("  delivery rate once flowing: %.0f results/s" % (rec.result_count() / max(0.001, t_drain - first)))
    lost, dup = loss_report(rec, sims, a.results)
    inv = check_order(rec, [dev for dev, _ in devs])
    log("ordering: %d inversions (per sample, over %d devices)" % (inv, len(devs)))
    end(daemon)
    end(backend)
    return 1 if lost or inv or acked < total else 0


class FsyncProbe(threading.Thread):
    """The disk's own durable-write latency, measured during the run beside the daemon: every
    `interval` s one 4 KiB write + os.fdatasync of a file in the outbox's directory (the physical
    floor of "acknowledged means on disk" for that disk at that moment, under the same load)."""

    def __init__(self, directory, interval=0.01):
        super().__init__(daemon=True)
        self.path = os.path.join(directory, "fdatasync-probe.tmp")
        self.interval = interval
        self.samples = []
        self.stop = threading.Event()

    def run(self):
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        block = os.urandom(4096)
        try:
            k = 0
            while not self.stop.is_set() and not STOP.is_set():
                os.pwrite(fd, block, (k % 256) * 4096)
                t = time.perf_counter()
                os.fdatasync(fd)
                self.samples.append(time.perf_counter() - t)
                k += 1
                self.stop.wait(self.interval)
        finally:
            os.close(fd)
            os.unlink(self.path)


class SyscallCounter:
    """throughput --syscalls: the daemon's system calls per thread over the CPU window, counted by
    `perf stat --per-thread` on the syscall tracepoints (counts survive the daemon's stop, unlike an
    strace summary, and cost little: no stop per call). Needs perf and root (or
    kernel.perf_event_paranoid <= -1); without them the run goes on with a line saying why."""

    CALLS = ["recvfrom", "sendto", "epoll_wait", "epoll_ctl", "futex", "read", "write", "pread64", "pwrite64",
             "fdatasync", "fcntl", "sendmsg", "recvmsg"]

    def __init__(self, pid, d):
        self.out = os.path.join(d, "syscalls.csv")
        # context-switches: each time a thread sleeps (epoll_wait, a futex) and is woken again.
        events = ["raw_syscalls:sys_enter", "context-switches"] + ["syscalls:sys_enter_" + c for c in self.CALLS]
        try:
            self.proc = subprocess.Popen(["perf", "stat", "--per-thread", "-x", ",", "-e", ",".join(events),
                                          "-p", str(pid), "-o", self.out],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self.error = None
        except OSError as e:
            self.proc, self.error = None, str(e)

    def report(self, messages):
        if self.proc is None:
            log("system calls not counted: %s" % self.error)
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            err = b"perf stat did not stop"
        counts = collections.defaultdict(dict)  # thread name -> call -> count
        tids = collections.defaultdict(set)  # thread name -> the threads of that name that made calls
        if os.path.exists(self.out):
            for line in open(self.out):
                f = line.strip().split(",")
                # thread,count,unit,event,...: thread is "comm-tid"
                if len(f) < 4 or not f[1].isdigit():
                    continue
                thread, tid = f[0].rsplit("-", 1)
                call = f[3].split(":")[-1].replace("sys_enter_", "")
                call = "all" if call == "sys_enter" else call
                counts[thread][call] = counts[thread].get(call, 0) + int(f[1])
                if call == "all" and int(f[1]) > 0:
                    tids[thread].add(tid)
        if not counts:
            log("system calls not counted: %s" % (err.decode(errors="replace").strip()[-300:] or "no perf output"))
            return
        for thread, c in sorted(counts.items()):
            if not c.get("all"):
                continue
            parts = ", ".join("%s %.2f" % (k, v / messages) for k, v in sorted(c.items(), key=lambda kv: -kv[1])
                              if k not in ("all", "context-switches") and v)
            # Threads of one name (an older binary's unnamed worker) are summed: said so.
            many = " (%d threads of that name, summed)" % len(tids[thread]) if len(tids[thread]) > 1 else ""
            log("system calls per message, thread %s%s: %.2f in all (%s); context switches %.2f"
                % (thread, many, c["all"] / messages, parts, c.get("context-switches", 0) / messages))


def mode_throughput(a, d):
    bport = free_port()
    devs = [("tp%02d" % i, free_port()) for i in range(a.sims)]
    config = write_config(d, devs, bport)
    record = os.path.join(d, "backend-requests.jsonl")
    backend = start_backend(d, bport, record)
    daemon = start_daemon(d, config)
    wait_devices(d, daemon, devs)
    deadline = time.monotonic() + a.max_seconds
    extra = ["--frame-delay", str(a.frame_delay)] if a.frame_delay else []
    sims = [Sim(d, dev, port, range(a.messages), a.results, max_runs=3, deadline=deadline, extra=extra)
            for dev, port in devs]
    rec = Record(record)
    probe = FsyncProbe(os.path.dirname(outbox_file(d)))
    probe.start()
    cpu0 = proc_cpu_split(daemon.pid)
    threads0 = thread_cpu_split(daemon.pid)
    io0 = proc_written(daemon.pid)
    counter = SyscallCounter(daemon.pid, d) if a.syscalls else None
    t0 = time.monotonic()
    t_ack = run_sims(sims, deadline)
    probe.stop.set()
    probe.join()
    total = a.sims * a.messages * a.results
    acked = sum(len(s.acked) for s in sims) * a.results
    while time.monotonic() < deadline + 60:
        rec.poll()
        if rec.result_count() >= acked:
            break
        time.sleep(0.2)
    t_rec = time.monotonic() - t0
    # Per-message session time: the gap between consecutive "acknowledged" lines of one simulator
    # (ENQ..EOT of one message incl. the daemon's persist, as seen by the driver reading stdout).
    gaps = []
    for s in sims:
        gaps += [b - x for x, b in zip(s.ack_times, s.ack_times[1:])]
    log("%d simulators x %d messages x %d results = %d results; acknowledged %d in %.2f s = %.0f results/s "
        "(%.0f messages/s)" % (a.sims, a.messages, a.results, total, acked, t_ack, acked / t_ack,
                               acked / a.results / t_ack))
    log("recorded by backend-sim: %d results, all in by %.2f s = %.0f results/s end to end" %
        (rec.result_count(), t_rec, rec.result_count() / t_rec))
    log("per-message ack interval per simulator (ms): p50 %.1f p90 %.1f p99 %.1f max %.1f (n=%d)" %
        (pct(gaps, 50) * 1e3, pct(gaps, 90) * 1e3, pct(gaps, 99) * 1e3, max(gaps) * 1e3 if gaps else 0, len(gaps)))
    try:
        # The daemon's own CPU time (utime + stime) from its start to the end of the delivery
        # (start-up excluded: cpu0 is read once it listens): on a shared 2-core machine the
        # simulators and the backend simulator take most of the CPU, so results per daemon
        # CPU-second is the daemon's capacity figure.
        user, system = (now - then for now, then in zip(proc_cpu_split(daemon.pid), cpu0))
        cpu = user + system
        log("daemon CPU time %.2f s for %d results = %.0f results per daemon CPU-second" %
            (cpu, acked, acked / cpu if cpu else float("nan")))
        log("daemon CPU time split: user %.2f s, system %.2f s (%.0f %% in the kernel: system calls, "
            "page cache, fsync)" % (user, system, 100.0 * system / cpu if cpu else float("nan")))
        log_thread_cpu(daemon.pid, threads0, acked // a.results)
        if counter:
            counter.report(acked // a.results)
        written = proc_written(daemon.pid) - io0
        log("daemon wrote %.1f MB to disk = %.0f bytes per result (outbox WAL and checkpoints, logs)" %
            (written / 1e6, written / acked if acked else float("nan")))
    except Exception as e:
        log("daemon CPU not read: %s" % e)
    fs50, fs99 = pct(probe.samples, 50), pct(probe.samples, 99)
    log("disk of the outbox (%s): fdatasync of 4 KiB during the run p50 %.2f ms, p99 %.2f ms (n=%d)" %
        (os.path.dirname(outbox_file(d)), fs50 * 1e3, fs99 * 1e3, len(probe.samples)))
    try:
        # One reading of the ACK histogram for its quantiles and its share over 2 x fdatasync p99.
        acks = histogram_buckets(config, "interfaced_ingest_ack_seconds")
        q, n = histogram_quantiles(acks)
        log("daemon ingest-to-ACK (message complete -> outbox durable -> ACK released), %d messages: "
            "p50 <= %.2f ms, p90 <= %.2f ms, p99 <= %.2f ms (histogram bucket bounds)" %
            (n, q[0.5] * 1e3, q[0.9] * 1e3, q[0.99] * 1e3))
        log("ingest-to-ACK p99 / disk fdatasync p99 = %.2f (goal <= 2)" % (q[0.99] / fs99 if fs99 else float("nan")))
        # The same goal without the bucket rounding of p99: p99 <= 2 x fdatasync p99 holds when at
        # most 1 % of the ACKs took longer. Counted above the largest bucket bound under 2 x, so
        # the share printed is at least the true one.
        bound, share = share_over(acks, 2 * fs99)
        log("ACKs slower than %.2f ms (the largest bucket bound <= 2 x fdatasync p99): %.2f %% (goal: at most 1 %%)"
            % (bound * 1e3, share * 100))
        q, n = histogram_quantiles(histogram_buckets(config, "interfaced_outbox_commit_seconds"))
        log("outbox group commits (BEGIN -> durable COMMIT), %d transactions: "
            "p50 <= %.2f ms, p90 <= %.2f ms, p99 <= %.2f ms" % (n, q[0.5] * 1e3, q[0.9] * 1e3, q[0.99] * 1e3))
    except Exception as e:  # the measurement line is lost, not the run
        log("metrics not read: %s" % e)
    lost, _ = loss_report(rec, sims, a.results)
    if a.wal_snapshot:
        # Before the daemon stops: a clean stop checkpoints the WAL into the file and deletes it.
        os.makedirs(a.wal_snapshot, exist_ok=True)
        for suffix in ("-wal", ""):
            shutil.copy(outbox_file(d) + suffix, os.path.join(a.wal_snapshot, "outbox.sqlite" + suffix))
        log("outbox and its WAL copied to %s (tests/tools/wal_pages.py %s/outbox.sqlite: the pages each "
            "commit wrote, by table)" % (a.wal_snapshot, a.wal_snapshot))
    end(daemon)
    end(backend)
    return 1 if lost or acked < total else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["crash", "backend-down", "throughput"])
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--sims", type=int, default=None)
    ap.add_argument("--messages", type=int, default=None)
    ap.add_argument("--results", type=int, default=None)
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--min-up", type=float, default=0.3, help="crash: least seconds between kills")
    ap.add_argument("--max-up", type=float, default=1.5, help="crash: most seconds between kills")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--max-seconds", type=float, default=1800, help="bound on the ingest / kill phase")
    ap.add_argument("--drain-seconds", type=float, default=900, help="bound on the final drain")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--state-dir", default=None, metavar="PATH",
                    help="the daemon's outbox here instead of in --dir: e.g. --dir on tmpfs for the "
                         "simulators' and backend-sim's files, so that only the daemon writes to this disk, "
                         "as in a lab where the analysers and the backend are other machines")
    ap.add_argument("--frame-delay", type=int, default=0, metavar="MS",
                    help="throughput: each simulator waits MS between frames (a paced load instead of "
                         "as fast as the daemon answers)")
    ap.add_argument("--wal-snapshot", default=None, metavar="DIR",
                    help="throughput: copy the outbox and its WAL into DIR once every result is recorded, "
                         "before the daemon stops (for tests/tools/wal_pages.py)")
    ap.add_argument("--syscalls", action="store_true",
                    help="throughput: count the daemon's system calls per thread with perf stat and print "
                         "them per message")
    ap.add_argument("--pin-daemon", default=None, metavar="CPU",
                    help="run the daemon on this CPU (taskset) and every other process on the rest, so the "
                         "daemon's latency is not the simulators' CPU contention")
    a = ap.parse_args()
    defaults = {"crash": (4, 1250, 2), "backend-down": (4, 0, 4), "throughput": (32, 200, 2)}[a.mode]
    a.sims = a.sims or defaults[0]
    a.messages = a.messages or defaults[1]
    a.results = a.results or defaults[2]
    if a.seed is None:
        a.seed = int(time.time())
    if not os.access(BIN, os.X_OK):
        raise SystemExit("no interfaced binary at %s (set INTERFACED)" % BIN)
    if a.pin_daemon is not None:
        others = sorted(os.sched_getaffinity(0) - {int(a.pin_daemon)})
        if not others:
            raise SystemExit("--pin-daemon needs a second CPU for the other processes")
        PIN.update(daemon=str(int(a.pin_daemon)), other=",".join(map(str, others)))
        os.sched_setaffinity(0, others)  # this driver too
    d = a.dir or tempfile.mkdtemp(prefix="interfaced-bench-%s-" % a.mode)
    if a.state_dir:
        STATE_DIR["path"] = a.state_dir
    # A previous run's outbox would answer this run's messages as duplicates (same result keys: the
    # simulators send the same samples) without storing or forwarding them, and its backend record
    # would count as this run's deliveries: every figure would be wrong, not just noisy.
    leftovers = [f for f in (outbox_file(d), os.path.join(d, "backend-requests.jsonl")) if os.path.exists(f)]
    if leftovers:
        raise SystemExit("a previous run's files are there (%s): give an empty or new --dir / --state-dir"
                         % ", ".join(leftovers))
    os.makedirs(os.path.join(d, "logs"), exist_ok=True)
    if a.state_dir:
        os.makedirs(a.state_dir, exist_ok=True)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log("mode %s, dir %s, binary %s, seed %d, args %s" % (a.mode, d, BIN, a.seed, vars(a)))
    try:
        rc = {"crash": mode_crash, "backend-down": mode_backend_down, "throughput": mode_throughput}[a.mode](a, d)
    finally:
        cleanup()
    log("exit", rc)
    return rc


if __name__ == "__main__":
    sys.exit(main())
