#!/usr/bin/env python3
"""Folder device soak: see folder_soak.sh."""
import argparse, hashlib, json, os, random, shutil, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("--files", type=int, default=1000)
ap.add_argument("--writers", type=int, default=4)
ap.add_argument("--kills", type=int, default=20)
ap.add_argument("--keep", action="store_true")
a = ap.parse_args()

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
binary = os.environ.get("INTERFACED", os.path.join(root, "build", "interfaced"))
work = tempfile.mkdtemp(prefix="folder-soak-")
folder = os.path.join(work, "export")
os.makedirs(folder)

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.read().decode()
    except Exception:
        return None

be_port, health = free_port(), free_port()
with open(os.path.join(work, "backend-data.json"), "w") as f:
    f.write('{"waiting_list":[],"parameters":[]}')
be = subprocess.Popen([binary, "backend-sim", "--listen", str(be_port), "--data", os.path.join(work, "backend-data.json"),
                       "--store", os.path.join(work, "store")], stdout=open(os.path.join(work, "backend.out"), "w"),
                      stderr=open(os.path.join(work, "backend.err"), "w"))
while get(be_port, "/_sim/requests") is None:
    time.sleep(0.05)

cfg = {"devices": [{"id": "fd", "protocol": "files", "profile": "generic-folder-export",
                    "link": {"type": "folder", "path": folder, "scan_s": 1, "settle_ms": 300},
                    "files": {"root": folder, "settle_ms": 50, "wait_s": 120}}],
       "outbox": {"path": os.path.join(work, "outbox.sqlite")},
       "logging": {"dir": os.path.join(work, "logs"), "level": "info"},
       "health": {"bind": "127.0.0.1", "port": health},
       "control_socket": os.path.join(work, "control.sock"),
       "backend": {"base_url": f"http://127.0.0.1:{be_port}", "waiting_list_poll_s": 3600, "allow_insecure_http": True}}
with open(os.path.join(work, "interfaced.json"), "w") as f:
    json.dump(cfg, f)

starts = 0
def start_daemon():
    global starts
    starts += 1
    p = subprocess.Popen([binary, "run", "-c", os.path.join(work, "interfaced.json")],
                         stdout=open(os.path.join(work, f"daemon-{starts}.out"), "w"),
                         stderr=open(os.path.join(work, f"daemon-{starts}.err"), "w"))
    t0 = time.time()
    while get(health, "/health") is None:
        if p.poll() is not None or time.time() - t0 > 20:
            print("daemon did not start; see", work); sys.exit(2)
        time.sleep(0.02)
    return p

# What each file must produce: results (sample/param=value) or one report (sample).
expected_results, expected_reports, names = set(), {}, []
lock = threading.Lock()

def make(i):
    kind = i % 4
    s = f"S{i:05d}"
    if kind == 0:
        name = f"f{i:05d}.astm"
        body = (f"H|\\^&|||SOAK^1|||||||P|LIS2-A2|20240627135407\rP|1\rO|1|{s}||^^^GLU|||||||||||||||||||||F\r"
                f"R|1|^^^GLU|{i % 97}.{i % 10}|mmol/L||N||F||||20240627135407\rL|1|N\r").encode()
        res = {f"{s}/GLU={i % 97}.{i % 10}"}
    elif kind == 1:
        name = f"f{i:05d}.hl7"
        body = (f"MSH|^~\\&|SOAK|LAB|LIS|LAB|20240627135407||ORU^R01|M{i}|P|2.3.1\rPID|1||P1\r"
                f"OBR|1|{s}|{s}|CRP\rOBX|1|NM|CRP||{i % 50}|mg/L|||||F|||20240627135407\r").encode()
        res = {f"{s}/CRP={i % 50}"}
    elif kind == 2:
        name = f"f{i:05d}.csv"
        body = (f"Sample ID,Test,Result,Unit,Date\r\n{s},HBA1C,{i % 9}.{i % 7},%,20240627\r\n"
                f"{s}B,HBA1C,{i % 8}.{i % 3},%,20240627\r\n").encode()
        res = {f"{s}/HBA1C={i % 9}.{i % 7}", f"{s}B/HBA1C={i % 8}.{i % 3}"}
    else:
        name = f"{s}_20240627.png"
        body = b"\x89PNG\r\n\x1a\n" + random.Random(i).randbytes(2000 + i % 5000)
        res = None
    return name, body, res

def writer(w):
    rnd = random.Random(w)
    for i in range(w, a.files, a.writers):
        name, body, res = make(i)
        with lock:
            names.append(name)
            if res is None: expected_reports[name.split("_")[0]] = hashlib.sha256(body).hexdigest()
            else: expected_results.update(res)
        if i % 2 == 0:  # written in place: taken on IN_CLOSE_WRITE
            with open(os.path.join(folder, name), "wb") as f:
                f.write(body)
        else:           # written under a dot name, renamed in: IN_MOVED_TO
            tmp = os.path.join(folder, "." + name + ".tmp")
            with open(tmp, "wb") as f:
                f.write(body)
            os.rename(tmp, os.path.join(folder, name))
        time.sleep(rnd.uniform(0.0, 0.02))

t_start = time.time()
d = start_daemon()
threads = [threading.Thread(target=writer, args=(w,)) for w in range(a.writers)]
for t in threads: t.start()
kills = 0
rnd = random.Random(42)
while kills < a.kills:
    time.sleep(rnd.uniform(0.2, 0.8))
    d.send_signal(signal.SIGKILL); d.wait(); kills += 1
    d = start_daemon()
for t in threads: t.join()
t_written = time.time()

def backend_state():
    reqs = json.loads(get(be_port, "/_sim/requests") or "[]")
    results, reports = [], []
    for r in reqs:
        st = r.get("status", 0)
        if not (200 <= st < 300) or r.get("duplicate", False): continue
        if r.get("path") == "/interfacing/device-results":
            for v in json.loads(r["body"]).get("results", []):
                results.append(f'{v.get("sample_id")}/{v.get("parameter")}={v.get("value")}')
        elif r.get("path") == "/interfacing/file-report":
            b = json.loads(r["body"]); reports.append((b.get("sample_id"), b.get("sha256")))
    return results, reports

deadline = time.time() + 600
while time.time() < deadline:
    left = [n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n))]
    results, reports = backend_state()
    if not left and len(set(results)) >= len(expected_results) and len(reports) >= len(expected_reports):
        break
    time.sleep(1)
time.sleep(3)  # anything sent twice would show now
t_done = time.time()
d.send_signal(signal.SIGTERM); d.wait()

results, reports = backend_state()
done = sorted(os.listdir(os.path.join(folder, "done")))
failed = os.listdir(os.path.join(folder, "failed"))
left = [n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n))]
dup_results = len(results) - len(set(results))
report_samples = [s for s, _ in reports]
dup_reports = len(report_samples) - len(set(report_samples))
missing_results = expected_results - set(results)
missing_reports = set(expected_reports) - set(report_samples)
wrong_sha = [s for s, h in reports if expected_reports.get(s) != h]
logs = ""
logdir = os.path.join(work, "logs")
for f in os.listdir(logdir):
    if f.startswith("fd"):
        logs += open(os.path.join(logdir, f), errors="replace").read()
already = logs.count("already taken")
print(f"files dropped: {len(names)} by {a.writers} writers; daemon SIGKILLed {kills} times ({starts} starts)")
print(f"done/: {len(done)} files ({len(set(done) & set(names))} of the dropped names, "
      f"{len([n for n in done if n not in names])} other names); failed/: {len(failed)}; left in folder: {len(left)}")
print(f"results at the backend: {len(set(results))} distinct of {len(expected_results)} expected; missing {len(missing_results)}; sent twice {dup_results}")
print(f"reports at the backend: {len(set(report_samples))} distinct of {len(expected_reports)} expected; missing {len(missing_reports)}; finalized twice {dup_reports}; wrong sha256 {len(wrong_sha)}")
print(f"files recognised by SHA-256 after a restart (committed, not yet moved): {already}")
print(f"writing took {t_written - t_start:.1f} s; all done {t_done - t_start:.1f} s after the start")
ok = (len(done) == len(names) and set(done) == set(names) and not failed and not left and not missing_results
      and not dup_results and not missing_reports and not dup_reports and not wrong_sha)
be.send_signal(signal.SIGTERM); be.wait()
print("PASS" if ok else f"FAIL (work dir kept: {work})")
if ok and not a.keep: shutil.rmtree(work, ignore_errors=True)
sys.exit(0 if ok else 1)
