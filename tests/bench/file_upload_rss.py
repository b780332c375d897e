#!/usr/bin/env python3
"""File-type report memory and throughput (issue #15): one big file through the four stages.

Usage: tests/bench/file_upload_rss.py [--mb 500] [--binary build/interfaced] [--dir D]

A daemon with one Sysmex XN device whose files.root holds a MB-megabyte image, `interfaced
backend-sim --store DIR` as backend and store, the analyser's message played by `interfaced
simulate`. Prints the daemon's RSS before the upload and its peak (VmHWM) after it (the file is
streamed from disk in 256 KiB pieces: the growth must stay under 16 MB), the upload's MB/s as the
simulator saw it (presign answered -> upload stored), and, in the same run, `curl -F` uploading the
same file to the same store with a fresh presign: MB/s and the ratio daemon/curl.
"""
import argparse, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def vm(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=500)
    ap.add_argument("--binary", default="build/interfaced")
    ap.add_argument("--dir")
    a = ap.parse_args()
    exe = os.path.abspath(a.binary)
    d = a.dir or tempfile.mkdtemp(prefix="interfaced-filebench-")
    share = os.path.join(d, "share", "PNG", "20240628")
    os.makedirs(share, exist_ok=True)
    big = os.path.join(share, "BIG.PNG")
    with open(big, "wb") as f:
        for _ in range(a.mb):
            f.write(os.urandom(1 << 20))
    size = os.path.getsize(big)
    store = os.path.join(d, "store")
    bport, hport, aport = free_port(), free_port(), free_port()
    procs = []
    try:
        procs.append(subprocess.Popen([exe, "backend-sim", "--listen", str(bport), "--store", store],
                                      stdout=open(os.path.join(d, "sim.out"), "w"), stderr=subprocess.STDOUT))
        cfg = {"devices": [{"id": "xn", "protocol": "astm", "profile": "sysmex-xn",
                            "files": {"root": os.path.join(d, "share"), "settle_ms": 200, "wait_s": 600,
                                      "max_bytes": 4 << 30},
                            "link": {"type": "tcp-server", "bind": "127.0.0.1", "port": aport}}],
               "backend": {"base_url": f"http://127.0.0.1:{bport}", "waiting_list_poll_s": 3600,
                           "request_timeout_ms": 600000},
               "outbox": {"path": os.path.join(d, "outbox.sqlite")},
               "logging": {"dir": os.path.join(d, "logs")},
               "health": {"bind": "127.0.0.1", "port": hport}}
        with open(os.path.join(d, "interfaced.json"), "w") as f:
            json.dump(cfg, f)
        daemon = subprocess.Popen([exe, "run", "-c", os.path.join(d, "interfaced.json")],
                                  stdout=open(os.path.join(d, "daemon.out"), "w"), stderr=subprocess.STDOUT)
        procs.append(daemon)
        for _ in range(300):
            try:
                get_json(f"http://127.0.0.1:{hport}/health"); get_json(f"http://127.0.0.1:{bport}/_sim/requests"); break
            except Exception:
                time.sleep(0.05)
        time.sleep(0.5)
        rss0 = vm(daemon.pid, "VmRSS")
        hwm0 = vm(daemon.pid, "VmHWM")
        msg = os.path.join(d, "msg.astm")
        with open(msg, "w", newline="") as f:
            f.write("H|\\^&|||XN-550^00-24^22723^^^^BD634545||||||||E1394-97P\rP|1\rO|1||^^S-BIG^M\r"
                    "R|1|^^^^SCAT_WDF|PNG&R&20240628&R&BIG.PNG|||N||F||||20240627135407\rL|1|N\r")
        subprocess.run([exe, "simulate", "--connect", f"127.0.0.1:{aport}", msg], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t_presign = t_upload = None
        peak = 0
        deadline = time.time() + 1800
        while time.time() < deadline:
            peak = max(peak, vm(daemon.pid, "VmRSS"))
            reqs = get_json(f"http://127.0.0.1:{bport}/_sim/requests")
            paths = {r["path"]: r for r in reqs if 200 <= r.get("status", 0) < 300}
            if t_presign is None and "/storage/presign" in paths:
                t_presign = time.time()
            if t_upload is None and "/store/upload" in paths:
                t_upload = time.time()
            if "/interfacing/file-report" in paths:
                break
            time.sleep(0.02)
        else:
            sys.exit("the file report was not finalized within 30 min")
        hwm = vm(daemon.pid, "VmHWM")
        daemon_s = t_upload - t_presign
        # curl -F, same file, same store, a fresh presign.
        with urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{bport}/storage/presign", method="POST",
                data=json.dumps({"file_category": "FileTypeReport", "filename": "BIG-curl.PNG",
                                 "content_type": "image/png", "size": size}).encode(),
                headers={"Content-Type": "application/json", "Idempotency-Key": "curl-bench.presign"})) as r:
            p = json.loads(r.read())
        args = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}"]
        for k, v in p["fields"].items():
            args += ["-F", f"{k}={v}"]
        args += ["-F", f"file=@{big};type=image/png", p["url"]]
        t0 = time.time()
        out = subprocess.run(args, capture_output=True, text=True).stdout.split()
        curl_s = time.time() - t0
        mb = size / 1e6
        print(f"file: {size} bytes ({a.mb} MiB) under files.root, backend-sim --store (same machine, loopback)")
        print(f"daemon RSS before: {rss0/1024:.1f} MiB (VmHWM {hwm0/1024:.1f}); peak during upload (polled VmRSS) "
              f"{peak/1024:.1f} MiB; VmHWM after {hwm/1024:.1f} MiB; growth {(hwm-rss0)/1024:.1f} MiB "
              f"({'under' if (hwm - rss0) < 16 * 1024 else 'OVER'} 16 MB)")
        print(f"daemon upload (presign answered -> stored, as the store saw it): {daemon_s:.2f} s = {mb/daemon_s:.0f} MB/s")
        print(f"curl -F (HTTP {out[0]}): {curl_s:.2f} s = {mb/curl_s:.0f} MB/s")
        print(f"ratio daemon/curl: {(mb/daemon_s)/(mb/curl_s):.2f}")
        print("command: tests/bench/file_upload_rss.py " + " ".join(sys.argv[1:]))
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except Exception:
                p.kill()
        if not a.dir:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
