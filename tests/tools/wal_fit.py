#!/usr/bin/env python3
"""What a group commit costs in WAL pages, apart from what its messages cost (issue #17: bytes
written per durable result). A measurement, not a test.

Usage: tests/tools/wal_fit.py [--runs 5] [--sims 32] [--messages 200]   ($INTERFACED: the binary)

Bytes per result move with the number of group commits, which the load and the disk decide, not
the change under test: a faster worker commits sooner, with fewer messages in each, and every
commit pays for each b-tree it touches (its last leaf, page 1) whatever it holds. This runs
`tests/bench/nothing_lost.py throughput --wal-snapshot` RUNS times, reads each WAL with
tests/tools/wal_pages.py, and fits frames = a * commits + b * messages over the runs (least
squares): a is the frames a commit costs as such, b the frames each message adds. The runs'
commit counts differ by chance; the wider they spread, the steadier the fit. Also prints, per
run, the commits, frames and the daemon's bytes per result and results per CPU-second.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sims", type=int, default=32)
    ap.add_argument("--messages", type=int, default=200)
    a = ap.parse_args()
    if a.runs < 2:
        sys.exit("--runs: at least 2 (two unknowns)")
    messages = a.sims * a.messages
    points = []
    for i in range(a.runs):
        snap = tempfile.mkdtemp(prefix="interfaced-wal-fit-")
        try:
            out = subprocess.run([sys.executable, os.path.join(repo, "tests", "bench", "nothing_lost.py"), "throughput",
                                  "--sims", str(a.sims), "--messages", str(a.messages), "--wal-snapshot", snap],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit("throughput run failed:\n" + out.stdout[-2000:] + out.stderr[-2000:])
            pages = subprocess.run([sys.executable, os.path.join(here, "wal_pages.py"), os.path.join(snap, "outbox.sqlite")],
                                   capture_output=True, text=True, check=True).stdout
        finally:
            shutil.rmtree(snap, ignore_errors=True)
        m = re.search(r"(\d+) commits, (\d+) frames", pages)
        commits, frames = int(m.group(1)), int(m.group(2))
        per_result = re.search(r"= (\d+) bytes per result", out.stdout)
        cpu = re.search(r"= (\d+) results per daemon CPU-second", out.stdout)
        points.append((commits, frames))
        print("run %d: %d commits, %d frames (%.2f per commit), %s bytes per result, %s results per daemon CPU-second"
              % (i + 1, commits, frames, frames / commits, per_result.group(1) if per_result else "?",
                 cpu.group(1) if cpu else "?"), flush=True)
    # Normal equations of frames = a * commits + b * messages.
    s11 = sum(c * c for c, _ in points)
    s12 = sum(c * messages for c, _ in points)
    s22 = len(points) * messages * messages
    t1 = sum(c * f for c, f in points)
    t2 = sum(messages * f for _, f in points)
    det = s11 * s22 - s12 * s12
    if det == 0:
        sys.exit("every run made the same number of commits: no fit")
    per_commit = (t1 * s22 - s12 * t2) / det
    per_message = (s11 * t2 - s12 * t1) / det
    print("fit: %.2f frames per commit + %.3f frames per message (%d messages per run)" % (per_commit, per_message, messages))
    print("at 1,000 commits: %.0f frames" % (1000 * per_commit + messages * per_message))


if __name__ == "__main__":
    main()
