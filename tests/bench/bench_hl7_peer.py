#!/usr/bin/python3
"""Peer reference for bench_hl7: python3-hl7's hl7.parse over the same messages (written by
`bench_hl7 --dump FILE`, 0x1C-separated), timed the same way. Usage: /usr/bin/python3 bench_hl7_peer.py FILE [seconds]
(Debian's python3-hl7 is installed for the system python, /usr/bin/python3)"""
import sys
import time

import hl7

msgs = [m for m in open(sys.argv[1], "rb").read().split(b"\x1c") if m]
texts = [m.decode("utf-8", "replace").replace("\r\n", "\r").replace("\n", "\r") for m in msgs]
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
count = nbytes = obx = 0
start = time.perf_counter()
while True:
    for t, raw in zip(texts, msgs):
        m = hl7.parse(t)
        # The same work as the daemon's: every OBX value and unit read out.
        for seg in m:
            if str(seg[0]) == "OBX":
                _ = (str(seg[3]), str(seg[5]), str(seg[6]))
                obx += 1
        count += 1
        nbytes += len(raw)
    elapsed = time.perf_counter() - start
    if elapsed >= seconds:
        break
print(f"python3-hl7 hl7.parse: {count / elapsed:.0f} messages/s, {nbytes / elapsed / 1e6:.2f} MB/s "
      f"({len(msgs)} messages, {count} parsed in {elapsed:.2f} s)")
