#!/usr/bin/env python3
# Memory bounded per peer (issue #12 point 3), a measurement, not a ctest test:
#   python3 tests/bench/peers_rss.py BINARY WORKDIR [DEVICES=1]
# 300 peers (distinct loopback addresses) each trying to hold 3.9 MB of an unfinished MLLP message
# on one HL7 device, then on 10 HL7 devices (30 peers each); prints the daemon's peak RSS (VmHWM).
import json, os, socket, subprocess, sys, threading, time, urllib.request
binary, work = sys.argv[1], sys.argv[2]
ndev = int(sys.argv[3]) if len(sys.argv) > 3 else 1
os.makedirs(work, exist_ok=True)
base = 16000 + ndev * 100
devs = [{"id": f"h{i}", "protocol": "hl7", "link": {"type": "tcp-server", "bind": "0.0.0.0", "port": base + i}} for i in range(ndev)]
cfg = {"devices": devs, "outbox": {"path": f"{work}/o.sqlite"}, "logging": {"dir": f"{work}/logs"},
       "health": {"port": base + 99}, "control_socket": f"{work}/c.sock"}
json.dump(cfg, open(f"{work}/cfg.json", "w"))
d = subprocess.Popen([binary, "run", "-c", f"{work}/cfg.json"], stdout=subprocess.DEVNULL, stderr=open(f"{work}/d.err", "w"))
time.sleep(1.5)
def vm(key):
    for line in open(f"/proc/{d.pid}/status"):
        if line.startswith(key): return int(line.split()[1])
print("baseline RSS kB", vm("VmRSS"))
payload = b"\x0bMSH|^~\\&|A|L|||20260101||ORU^R01|1|P|2.5\rOBX|1|ED|IMG||" + b"A" * 3_900_000
socks = []
def peer(i):
    try:
        s = socket.socket(); s.settimeout(5)
        s.bind((f"127.0.{1 + i // 200}.{1 + i % 200}", 0))
        s.connect(("127.0.0.1", base + i % ndev))
        socks.append(s)
        s.sendall(payload)
    except Exception:
        pass
ts = [threading.Thread(target=peer, args=(i,)) for i in range(300)]
t0 = time.time()
for t in ts: t.start()
for t in ts: t.join()
time.sleep(1)
h = json.load(urllib.request.urlopen(f"http://127.0.0.1:{base + 99}/health"))
print(f"300 peers x 3.9 MB on {ndev} device(s): peak RSS kB", vm("VmHWM"), "now", vm("VmRSS"),
      "refused", sum(x.get("sessions_refused", 0) for x in h["devices"]),
      "buffer_refusals", sum(x["buffer_refusals"] for x in h["devices"]),
      "buffered", sum(x["buffered_bytes"] for x in h["devices"]), f"({time.time() - t0:.1f} s)")
for s in socks: s.close()
d.terminate(); d.wait(10)
