#!/usr/bin/env python3
"""Which b-trees the commits in a SQLite WAL wrote, in pages per commit (issue #17: bytes written
per durable result). A measurement, not a test.

Usage: wal_pages.py DB
  DB and DB-wal as a running daemon left them, e.g. copied by
  `tests/bench/nothing_lost.py throughput --wal-snapshot DIR`. Both are copied to a scratch
  folder first; the originals are never opened by SQLite.

Reads the WAL's frames after its last restart (the frames whose salts match the header), groups
them by commit (a frame with a database size is a commit's last), and names each page's table
or index through SQLite's dbstat view on the copy (the WAL applied). Prints the page size, the
commits and frames, then each b-tree's frames per commit and share.
"""
import collections
import os
import shutil
import sqlite3
import struct
import sys
import tempfile


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    db = sys.argv[1]
    raw = open(db + "-wal", "rb").read()
    if len(raw) < 32:
        sys.exit("%s-wal: no WAL header" % db)
    _, _, page_size, _, salt1, salt2, _, _ = struct.unpack(">IIIIIIII", raw[:32])
    commits, frames = [], []
    at = 32
    while at + 24 + page_size <= len(raw):
        page, db_size, s1, s2 = struct.unpack(">IIII", raw[at:at + 16])
        if (s1, s2) != (salt1, salt2):
            break  # frames of the WAL before its last restart
        frames.append(page)
        if db_size:
            commits.append(frames)
            frames = []
        at += 24 + page_size
    scratch = tempfile.mkdtemp(prefix="wal-pages-")
    try:
        shutil.copy(db, os.path.join(scratch, "x.db"))
        shutil.copy(db + "-wal", os.path.join(scratch, "x.db-wal"))
        con = sqlite3.connect(os.path.join(scratch, "x.db"))
        owner = {page: name for name, page in con.execute("SELECT name, pageno FROM dbstat")}
        con.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    per = collections.Counter(owner.get(page, "(free or past the end)") for c in commits for page in c)
    total = sum(per.values())
    n = max(len(commits), 1)
    print("page size %d, %d commits, %d frames: %.1f frames = %.0f bytes per commit" %
          (page_size, len(commits), total, total / n, total * (page_size + 24) / n))
    for name, count in per.most_common():
        print("  %-32s %8d frames  %6.2f per commit  %5.1f %%" % (name, count, count / n, 100.0 * count / max(total, 1)))


if __name__ == "__main__":
    main()
