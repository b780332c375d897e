#!/usr/bin/env python3
"""Issue #17's table, before and after, in one run (a measurement, not a ctest test).

Usage: tests/bench/table.py BEFORE_BUILD AFTER_BUILD [--reps 3] [--seconds 3] [--skip-daemon]

Each BUILD is a build directory holding `interfaced` and `tests/bench/bench_*`. For every
repetition the two builds run alternately (before, after), each row's benchmark once, so a load
that comes and goes touches both sides alike. Prints each row as min / median / max over the
repetitions, and the load average at the start and the end: wall-clock figures on a shared
machine mean little without it.

Rows (the issue's table): HL7 parse+normalise MB/s and results/s on the ../shared captures and on
tests/bench/corpus/hl7-obx-dense, the ratios to @medplum/core and python3-hl7 from
tests/bench/hl7_peers.sh (same run), HL7 view-only MB/s, ASTM MB/s and results/s (bench_astm),
rules evaluations/s (bench_rules), and from tests/bench/throughput.sh (32 x 200 x 2): results per
daemon CPU-second, bytes written per result, ACK p99 / fdatasync p99 and its two sides, and the
group commits and KB written per commit; the same again from a 32 x 1,000 x 2 run (--long).
"""
import argparse, os, re, statistics, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))


def run(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit("failed (%d): %s\n%s%s" % (r.returncode, " ".join(cmd), r.stdout[-2000:], r.stderr[-2000:]))
    return r.stdout + r.stderr


def grab(pattern, text, what):
    m = re.search(pattern, text)
    if not m:
        sys.exit("no %s in:\n%s" % (what, text[-3000:]))
    return float(m.group(1))


def hl7_rows(build, seconds, corpus):
    args = ["bash", os.path.join(here, "hl7_peers.sh"), "--seconds", str(seconds),
            "--bench", os.path.join(build, "tests/bench/bench_hl7")]
    if corpus:
        args += ["--dir", corpus]
    out = run(args)
    return {
        "MB/s": grab(r"interfaced parse\+normalise: .*? ([0-9.]+) MB/s", out, "HL7 MB/s"),
        "results/s": grab(r"interfaced parse\+normalise: .*? ([0-9.]+) results/s", out, "HL7 results/s"),
        "view MB/s": grab(r"view only .*?: ([0-9.]+) MB/s", out, "view MB/s"),
        "/ medplum": grab(r"@medplum/core = ([0-9.]+)x", out, "medplum ratio"),
        "/ python3-hl7": grab(r"python3-hl7 = ([0-9.]+)x", out, "python ratio"),
    }


def measure(build, seconds, daemon, long_messages):
    got = {}
    for k, v in hl7_rows(build, seconds, None).items():
        got["HL7 (../shared captures) " + k] = v
    for k, v in hl7_rows(build, seconds, os.path.join(here, "corpus/hl7-obx-dense")).items():
        if k != "view MB/s":
            got["HL7 OBX-dense " + k] = v
    out = run([os.path.join(build, "tests/bench/bench_astm"), str(seconds)])
    got["ASTM MB/s"] = grab(r"normalise: ([0-9.]+) MB/s", out, "ASTM MB/s")
    got["ASTM results/s"] = grab(r"MB/s, ([0-9.]+) results/s", out, "ASTM results/s")
    out = run([os.path.join(build, "tests/bench/bench_rules"), str(seconds)])
    got["rules M evaluations/s"] = grab(r"rate: ([0-9.]+) million", out, "rules rate")
    if daemon:
        got.update(daemon_rows(build, 200, ""))
        if long_messages:
            got.update(daemon_rows(build, long_messages, " (32 x %d x 2)" % long_messages))
    return got


def daemon_rows(build, messages, suffix):
    """throughput.sh with 32 simulators x `messages` x 2 results. Besides the issue's rows: the
    group commits and the bytes written per commit -- bytes per result is that divided by the
    results a commit carries, which falls as the worker gets faster (it commits sooner, with
    fewer messages in each), so the bytes per commit say what a change did to what is written."""
    env = dict(os.environ, INTERFACED=os.path.join(build, "interfaced"))
    out = run(["bash", os.path.join(here, "throughput.sh"), "--sims", "32", "--messages", str(messages),
               "--results", "2"], env)
    got = {}
    got["daemon results per CPU-second" + suffix] = grab(r"= ([0-9.]+) results per daemon CPU-second", out, "CPU")
    got["bytes written per durable result" + suffix] = grab(r"= ([0-9.]+) bytes per result", out, "bytes")
    got["ACK p99 / fdatasync p99" + suffix] = grab(r"fdatasync p99 = ([0-9.]+)", out, "ACK ratio")
    # The ratio's two sides: the probe fsyncs every 10 ms, so the 200-message run's p99 is nearly
    # the largest of ~90 samples and swings the ratio by itself; the ACK p99 is a histogram
    # bucket's upper bound.
    got["ACK p99 ms (bucket bound)" + suffix] = grab(r"ACK released\), .*?p99 <= ([0-9.]+) ms", out, "ACK p99")
    got["fdatasync p99 ms (probe)" + suffix] = grab(r"fdatasync of 4 KiB during the run p50 [0-9.]+ ms, p99 ([0-9.]+) ms",
                                                    out, "fdatasync p99")
    commits = grab(r"group commits .*?, ([0-9]+) transactions", out, "commits")
    got["group commits" + suffix] = commits
    got["KB written per group commit" + suffix] = grab(r"daemon wrote ([0-9.]+) MB", out, "MB") * 1000 / commits
    return got


def cell(values):
    v = sorted(values)
    fmt = (lambda x: "%.2f" % x) if v[-1] < 100 else (lambda x: "{:,.0f}".format(x))
    return " / ".join(fmt(x) for x in (v[0], statistics.median(v), v[-1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--skip-daemon", action="store_true")
    ap.add_argument("--long", type=int, default=1000, metavar="MESSAGES",
                    help="also the daemon rows of a 32 x MESSAGES x 2 run (0: none): the 200-message run "
                         "lasts about a second, too short for a WAL checkpoint or a steady fsync p99")
    a = ap.parse_args()
    print("load average at start: %s" % open("/proc/loadavg").read().strip(), flush=True)
    rows = {"before": {}, "after": {}}
    for rep in range(a.reps):
        for side, build in (("before", a.before), ("after", a.after)):
            print("rep %d %s (%s)" % (rep + 1, side, build), flush=True)
            for k, v in measure(os.path.abspath(build), a.seconds, not a.skip_daemon, a.long).items():
                rows[side].setdefault(k, []).append(v)
    print("load average at end: %s" % open("/proc/loadavg").read().strip())
    print("\n| row | before (min / median / max) | after (min / median / max) |\n|---|---|---|")
    for k in rows["after"]:
        print("| %s | %s | %s |" % (k, cell(rows["before"].get(k, [float("nan")])), cell(rows["after"][k])))


if __name__ == "__main__":
    main()
