#!/usr/bin/env python3
"""Soak harness: the daemon on a 1 s schedule against the simulator, with random faults
injected through /_sim/faults, a json webhook receiver and a real Alertmanager (behind a
recording proxy), until N syncs. Loopback only; bounded in syncs and in minutes.

Reports crashes, alert flaps, Alertmanager pushes that arrive after the previous push's endsAt,
429s from the simulator's own limits (not injected), RSS at sync 100 and at the last sync, and
/readyz transitions, as Markdown (stderr) and one JSON object (stdout).

    python3 benches/soak.py --bin target/release/ngrok-cert-watchdog --syncs 1000 [--seed N]

Used by benches/soak.sh (1,000 syncs) and tests/soak.rs (100 syncs, fixed seed). Stdlib only.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = "soak-key-0123456789"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
API_TIMEOUT = 2.0
# Alerts whose condition legitimately changes under faults: three failed syncs in a row.
SELF_ALERTS = {"sync_failed"}


def log(msg):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, timeout=5.0, key=None):
    """(status, bytes); status 0 when the connection failed."""
    req = urllib.request.Request(url, data=body, method=method)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, urllib.error.URLError):
        return 0, b""


def parse_time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def wait_until(what, pred, within=30.0):
    deadline = time.time() + within
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise SystemExit(f"soak: {what} did not happen within {within} s")


class Recorder:
    """The receivers: POST /json (a json webhook) and POST /am/api/v2/alerts (forwarded to the
    real Alertmanager). Every alert is kept with its arrival time."""

    def __init__(self, alertmanager_url):
        self.lock = threading.Lock()
        self.json_alerts = []
        self.am_alerts = []
        self.am_url = alertmanager_url
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = recorder.receive(self.path, body, time.time())
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def receive(self, path, body, arrival):
        try:
            parsed = json.loads(body)
        except ValueError:
            return 400
        if path == "/json":
            with self.lock:
                self.json_alerts += [dict(a, arrival=arrival) for a in parsed.get("alerts", [])]
            return 200
        if path == "/am/api/v2/alerts":
            with self.lock:
                self.am_alerts += [dict(a, arrival=arrival) for a in parsed]
            status, _ = http("POST", f"{self.am_url}/api/v2/alerts", body)
            return status or 502
        return 404

    def stop(self):
        self.server.shutdown()


class FaultDriver(threading.Thread):
    """Injects one random fault into the next GET of a random list every 1-3 s."""

    PATHS = ["/tls_certificates", "/reserved_domains", "/credentials"]

    def __init__(self, sim_url, rng):
        super().__init__(daemon=True)
        self.sim_url, self.rng = sim_url, rng
        self.stopping = threading.Event()
        self.injected = {}

    def fault(self):
        kind = self.rng.choice(["5xx", "429", "drop", "latency", "garbage", "truncated"])
        if kind == "5xx":
            spec = {"fault": "status", "status": self.rng.choice([500, 502, 503])}
        elif kind == "429":
            spec = {"fault": "status", "status": 429, "retry_after": 1}
        elif kind == "latency":
            millis = int(API_TIMEOUT * 1000 * self.rng.uniform(0.8, 1.2))
            spec = {"fault": "latency", "millis": millis}
        else:
            spec = {"fault": kind}
        spec.update(path=self.rng.choice(self.PATHS), method="GET", count=1)
        return kind, spec

    def run(self):
        while not self.stopping.wait(self.rng.uniform(1.0, 3.0)):
            kind, spec = self.fault()
            url = f"{self.sim_url}/_sim/faults"
            if http("POST", url, json.dumps(spec).encode(), key=KEY)[0] == 204:
                self.injected[kind] = self.injected.get(kind, 0) + 1

    def stop(self):
        self.stopping.set()
        self.join()
        http("DELETE", f"{self.sim_url}/_sim/faults", key=KEY)


def start_simulator(args, work):
    port = free_port()
    sim = subprocess.Popen(
        [args.bin, "simulate", "--listen", f"127.0.0.1:{port}", "--api-key", KEY,
         "--seed", os.path.join(ROOT, "config/demo-seed.toml"), "--rate-limit", args.sim_rate_limit],
        env=dict(os.environ, RUST_LOG="warn"),
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "sim.log"), "w"))
    url = f"http://127.0.0.1:{port}"
    wait_until("the simulator", lambda: http("GET", f"{url}/_sim/requests", key=KEY)[0] == 200)
    return sim, url


def alertmanager_binary():
    for name in ["prometheus-alertmanager", "alertmanager"]:
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("soak: Alertmanager is not installed (apt-get install prometheus-alertmanager)")


def start_alertmanager(work):
    config = os.path.join(work, "alertmanager.yml")
    with open(config, "w") as f:
        f.write("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
    port = free_port()
    am = subprocess.Popen(
        [alertmanager_binary(), f"--config.file={config}",
         f"--storage.path={os.path.join(work, 'am-data')}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "am.log"), "w"))
    url = f"http://127.0.0.1:{port}"
    wait_until("Alertmanager", lambda: http("GET", f"{url}/-/ready")[0] == 200)
    return am, url


def write_config(args, work, sim_url, receiver_url, metrics_port):
    key_file = os.path.join(work, "api-key")
    with open(key_file, "w") as f:
        f.write(KEY + "\n")
    config = os.path.join(work, "config.toml")
    with open(config, "w") as f:
        f.write(f"""[api]
url = "{sim_url}"
key_file = "{key_file}"
requests_per_minute = {args.requests_per_minute}
timeout = "{API_TIMEOUT}s"
[schedule]
sync = "{args.schedule}"
[metrics]
listen = "127.0.0.1:{metrics_port}"
[state]
dir = "{os.path.join(work, 'state')}"
[dns]
enabled = false
[[webhook]]
name = "json"
url = "{receiver_url}/json"
format = "json"
repeat_interval = "4h"
[[webhook]]
name = "am"
url = "{receiver_url}/am"
format = "alertmanager"
""")
    return config


class Daemon:
    """The `run` binary; restarted (and counted) if it dies on its own."""

    def __init__(self, args, config, work):
        self.cmd = [args.bin, "--config", config, "run"]
        self.log = open(os.path.join(work, "daemon.log"), "a")
        self.crashes = []
        self.start()

    def start(self):
        env = {k: v for k, v in os.environ.items() if k not in ("NGROK_API_KEY", "NOTIFY_SOCKET")}
        env["RUST_LOG"] = "warn"
        self.proc = subprocess.Popen(self.cmd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log)

    def check(self):
        """Restarts a dead daemon; False once it has died too often."""
        code = self.proc.poll()
        if code is None:
            return True
        self.crashes.append(code)
        log(f"the daemon exited with {code}: crash {len(self.crashes)}")
        if len(self.crashes) > 5:
            return False
        self.start()
        return True

    def rss_kib(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Monitor:
    """Polls /metrics (sync counts), /readyz (transitions) and Alertmanager's active alerts
    (an alert that leaves and comes back is a flap as Alertmanager's users see it)."""

    def __init__(self, metrics_url, am_url):
        self.metrics_url, self.am_url = metrics_url, am_url
        self.ready = None
        self.ready_transitions = []
        self.am_state = {}
        self.am_flaps = []
        self.last_am_poll = 0.0

    def syncs(self):
        """(successes, failures) from ngrok_cert_watchdog_syncs_total, or None."""
        status, body = http("GET", f"{self.metrics_url}/metrics", timeout=2.0)
        if status != 200:
            return None
        counts = {"success": 0, "failure": 0}
        for line in body.decode().splitlines():
            for result in counts:
                prefix = f'ngrok_cert_watchdog_syncs_total{{result="{result}"}} '
                if line.startswith(prefix):
                    counts[result] = int(float(line[len(prefix):]))
        return counts["success"], counts["failure"]

    def poll_ready(self):
        status, _ = http("GET", f"{self.metrics_url}/readyz", timeout=2.0)
        if self.ready is not None and status != self.ready:
            self.ready_transitions.append((time.time(), self.ready, status))
        self.ready = status

    def poll_alertmanager(self):
        if time.time() - self.last_am_poll < 1.0:
            return
        self.last_am_poll = time.time()
        status, body = http("GET", f"{self.am_url}/api/v2/alerts?active=true", timeout=2.0)
        if status != 200:
            return
        present = {a["fingerprint"]: a["labels"] for a in json.loads(body)
                   if a["status"]["state"] == "active"}
        for fp, was in list(self.am_state.items()):
            if was and fp not in present:
                self.am_state[fp] = False
        for fp, labels in present.items():
            if self.am_state.get(fp) is False and labels.get("kind") not in SELF_ALERTS:
                self.am_flaps.append((time.time(), labels.get("alertname"), labels.get("domain")))
            self.am_state[fp] = True


def json_flaps(alerts):
    """Per alert fingerprint: a resolved followed by a firing; and resolves at all."""
    flaps, resolves, last = [], [], {}
    for a in sorted(alerts, key=lambda a: a["arrival"]):
        if a["labels"].get("kind") in SELF_ALERTS:
            continue
        fp = a.get("fingerprint") or json.dumps(a["labels"], sort_keys=True)
        if a["status"] == "resolved":
            resolves.append(a["labels"].get("alertname"))
        elif last.get(fp) == "resolved":
            flaps.append((a["arrival"], a["labels"].get("alertname"), a["labels"].get("domain")))
        last[fp] = a["status"]
    return flaps, resolves


def am_pushes(alerts):
    """Per label set: pushes arriving after the previous firing push's endsAt (late), and a
    resolve (endsAt not after its arrival) followed by a firing push (a flap)."""
    late, flaps, previous = [], [], {}
    for a in sorted(alerts, key=lambda a: a["arrival"]):
        key = json.dumps(a["labels"], sort_keys=True)
        ends = parse_time(a["endsAt"])
        firing = ends > a["arrival"]
        prev = previous.get(key)
        if prev is not None and prev["firing"] and a["arrival"] > prev["ends"]:
            late.append({
                "alertname": a["labels"].get("alertname"),
                "late_by": round(a["arrival"] - prev["ends"], 3),
                "since_previous_push": round(a["arrival"] - prev["arrival"], 3),
                # endsAt minus arrival of the previous push: 3 × the interval if endsAt were
                # computed at the push; less when it was computed earlier (at sync start).
                "previous_headroom": round(prev["ends"] - prev["arrival"], 3),
            })
        if prev is not None and not prev["firing"] and firing \
                and a["labels"].get("kind") not in SELF_ALERTS:
            flaps.append((a["arrival"], a["labels"].get("alertname"), a["labels"].get("domain")))
        previous[key] = {"ends": ends, "firing": firing, "arrival": a["arrival"]}
    return late, flaps


def own_429s(sim_url):
    """Requests the simulator answered 429 itself (rate or concurrency limit), and all requests."""
    status, body = http("GET", f"{sim_url}/_sim/requests", key=KEY, timeout=30.0)
    if status != 200:
        raise SystemExit("soak: cannot read the simulator's request log")
    requests = json.loads(body)["requests"]
    own = [r for r in requests if r["status"] == 429 and not r["injected"]]
    return len(own), len(requests), sum(1 for r in requests if r["injected"])


def run_until(args, daemon, monitor):
    """Polls until `args.syncs` syncs; returns (syncs, rss at sync 100, rss at the end)."""
    deadline = time.time() + args.max_minutes * 60
    rss_100, syncs, reported = None, (0, 0), 0
    while time.time() < deadline and daemon.check():
        counts = monitor.syncs()
        syncs = counts or syncs
        total = sum(syncs)
        if rss_100 is None and total >= min(100, args.syncs):
            rss_100 = daemon.rss_kib()
        if total >= args.syncs:
            return syncs, rss_100, daemon.rss_kib(), True
        if total >= reported + 100:
            reported = total - total % 100
            log(f"{total} syncs ({syncs[1]} failed), RSS {daemon.rss_kib()} KiB")
        monitor.poll_ready()
        monitor.poll_alertmanager()
        time.sleep(0.25)
    return syncs, rss_100, daemon.rss_kib(), False


def report(args, seed, outcome, recorder, monitor, daemon, driver, sim_url, elapsed):
    (ok, failed), rss_100, rss_end, completed = outcome
    with recorder.lock:
        json_alerts, am_alerts = list(recorder.json_alerts), list(recorder.am_alerts)
    jflaps, resolves = json_flaps(json_alerts)
    late, aflaps = am_pushes(am_alerts)
    own, requests, injected = own_429s(sim_url)
    return {
        "seed": seed, "completed": completed, "syncs": ok + failed, "syncs_failed": failed,
        "target_syncs": args.syncs, "minutes": round(elapsed / 60, 1),
        "crashes": len(daemon.crashes),
        "flaps": len(jflaps) + len(aflaps) + len(monitor.am_flaps),
        "flaps_json": jflaps, "flaps_am_pushed": aflaps, "flaps_am_active": monitor.am_flaps,
        "json_resolves": resolves, "json_alerts": len(json_alerts), "am_pushes": len(am_alerts),
        "late_pushes": len(late), "late_examples": late[:10],
        # Why: the next push came within 3 intervals (endsAt was computed before the push), or
        # after a longer gap (a sync slower than 3 intervals).
        "late_within_3_intervals": sum(1 for x in late if x["since_previous_push"] <= 3 * args.interval),
        "late_after_longer_gap": sum(1 for x in late if x["since_previous_push"] > 3 * args.interval),
        "own_429s": own, "requests": requests, "injected_answers": injected,
        "faults_injected": driver.injected,
        "rss_kib_at_100": rss_100, "rss_kib_at_end": rss_end,
        "rss_ratio": round(rss_end / rss_100, 3) if rss_100 and rss_end else None,
        "readyz_transitions": len(monitor.ready_transitions),
    }


def markdown(r):
    rows = [
        ("syncs (failed)", f"{r['syncs']} ({r['syncs_failed']}) in {r['minutes']} min", f"{r['target_syncs']}"),
        ("crashes", r["crashes"], 0),
        ("alert flaps (json / Alertmanager pushed / Alertmanager active)",
         f"{r['flaps']} ({len(r['flaps_json'])} / {len(r['flaps_am_pushed'])} / {len(r['flaps_am_active'])})", 0),
        ("pushes after the previous push's endsAt (next push within 3 intervals / after a longer gap)",
         f"{r['late_pushes']} of {r['am_pushes']} ({r['late_within_3_intervals']} / {r['late_after_longer_gap']})", 0),
        ("429s from the simulator's own limits", f"{r['own_429s']} of {r['requests']} requests", 0),
        ("RSS at sync 100 → at the last sync", f"{r['rss_kib_at_100']} → {r['rss_kib_at_end']} KiB (×{r['rss_ratio']})", "≤ ×1.1"),
        ("`/readyz` transitions", r["readyz_transitions"], "—"),
        ("faults injected (answers marked injected)", f"{sum(r['faults_injected'].values())} ({r['injected_answers']}): "
         + ", ".join(f"{k} {v}" for k, v in sorted(r["faults_injected"].items())), "—"),
    ]
    lines = [f"seed {r['seed']}", "", "| measure | result | goal |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", required=True)
    p.add_argument("--syncs", type=int, default=1000)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--schedule", default="* * * * * *")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between scheduled syncs")
    p.add_argument("--requests-per-minute", type=int, default=300)
    p.add_argument("--sim-rate-limit", default="600/60s")
    p.add_argument("--max-minutes", type=float, default=60.0)
    args = p.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    log(f"seed {seed} (replay with --seed {seed}), {args.syncs} syncs, at most {args.max_minutes} min")
    work = tempfile.mkdtemp(prefix="soak-")
    started, procs = time.time(), []
    try:
        am, am_url = start_alertmanager(work)
        procs.append(am)
        sim, sim_url = start_simulator(args, work)
        procs.append(sim)
        recorder = Recorder(am_url)
        metrics_port = free_port()
        config = write_config(args, work, sim_url, recorder.url, metrics_port)
        driver = FaultDriver(sim_url, random.Random(seed))
        daemon = Daemon(args, config, work)
        monitor = Monitor(f"http://127.0.0.1:{metrics_port}", am_url)
        driver.start()
        outcome = run_until(args, daemon, monitor)
        driver.stop()
        daemon.stop()
        r = report(args, seed, outcome, recorder, monitor, daemon, driver, sim_url, time.time() - started)
        recorder.stop()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
    print(markdown(r), file=sys.stderr)
    print(json.dumps(r))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
