"""Soak of a local service: steady load + worker kills + rolling updates + a full disk (issue 16).
Not a test: run by hand (10 minutes by default).

    .venv/bin/python benchmarks/bench_soak.py [--minutes 10] [--clients 4] [--workers 2]
        [--kill-every 120] [--update-every 180] [--no-disk]

Deploys the quickstart model (LinearRegression on scikit-learn's diabetes data, a JSON entry
script) on the local target with ``--workers`` scoring processes, then for ``--minutes``:

* **steady load**: ``--clients`` threads, each a ``requests.Session`` POSTing a 3-row body
  back to back (the load generator shares the machine with the service: read the error
  counts and the memory trend, not the throughput);
* **worker kills**: every ``--kill-every`` s one worker of the supervisor gets SIGKILL; the
  window from the kill until the supervisor has all its workers again (+1 s) is a
  "deliberate kill" window;
* **rolling updates**: every ``--update-every`` s ``service.update()`` with the other of two
  entry scripts (same predictions): no request may fail during it;
* **one full-disk episode** (root only, else skipped with a note): the service's telemetry
  folder is on a 16 MiB tmpfs the bench mounts before the first generation starts; at 45 %
  of the run a file fills it to ENOSPC for 30 s, then is deleted. The service must keep
  answering throughout and after.

Writes ``benchmarks/results/soak.json``: requests, errors split into "during deliberate kills"
and "other" (by status), p50/p99 latency (ms, client side), RSS of the supervisor + workers
(bytes) at start and end, the events with their times, and a per-minute series (requests,
errors, p50, p99, RSS, worker count).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import requests

RESULTS = Path(__file__).parent / "results" / "soak.json"

SCORE_V1 = """
import json, os, joblib
def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"))
def run(raw_data):
    return model.predict(json.loads(raw_data)["data"]).tolist()
"""
SCORE_V2 = SCORE_V1 + "\n# version 2: same predictions, a new generation\n"


def percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class Load:
    """``clients`` threads POSTing ``body`` to ``uri``; every request recorded as
    ``(start time, latency s, status or 0)``."""

    def __init__(self, uri: str, body: bytes, clients: int) -> None:
        self.uri, self.body = uri, body
        self.samples: list[tuple[float, float, int]] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def _client(self) -> None:
        s = requests.Session()
        mine: list[tuple[float, float, int]] = []
        while not self.stop.is_set():
            t0 = time.time()
            try:
                status = s.post(self.uri, data=self.body, headers={"Content-Type": "application/json"}, timeout=30).status_code
            except requests.RequestException:
                status = 0
                s = requests.Session()
            mine.append((t0, time.time() - t0, status))
            if len(mine) >= 500:
                with self.lock:
                    self.samples.extend(mine)
                mine = []
        with self.lock:
            self.samples.extend(mine)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> list[tuple[float, float, int]]:
        self.stop.set()
        for t in self.threads:
            t.join()
        return sorted(self.samples)


def tree(pid: int) -> list[psutil.Process]:
    try:
        p = psutil.Process(pid)
        return [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def rss(pid: int) -> int:
    total = 0
    for p in tree(pid):
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def workers(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=False)
    except psutil.NoSuchProcess:
        return []


def try_mount_tmpfs(path: Path, size: str) -> str | None:
    """Mount a tmpfs of ``size`` at ``path``; None when done, else why not."""
    if os.geteuid() != 0:
        return "not root: the full-disk episode needs to mount a tmpfs"
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    return None if r.returncode == 0 else f"mount -t tmpfs failed: {r.stderr.strip()}"


def fill(path: Path) -> int:
    """Write zeros to ``path/fill.bin`` until ENOSPC; bytes written."""
    n = 0
    chunk = b"\0" * (1 << 20)
    with open(path / "fill.bin", "wb", buffering=0) as f:
        try:
            while True:
                n += f.write(chunk)
        except OSError:
            pass
        try:  # the last partial block
            while True:
                w = f.write(b"\0" * 4096)
                if not w:
                    break
                n += w
        except OSError:
            pass
    return n


def main() -> None:  # noqa: C901 - one linear scenario
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kill-every", type=float, default=120.0)
    ap.add_argument("--update-every", type=float, default=180.0)
    ap.add_argument("--no-disk", action="store_true", help="skip the full-disk episode")
    args = ap.parse_args()
    duration = args.minutes * 60

    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    from mlmanage_jupyter import InferenceConfig, LocalWebservice, Model, Workspace
    from mlmanage_jupyter.core.webservice import deploy

    tmp = Path(tempfile.mkdtemp(prefix="mlmanage-soak-"))
    mounted: Path | None = None
    svc: Any = None
    events: list[dict[str, Any]] = []
    try:
        X, y = load_diabetes(return_X_y=True)
        joblib.dump(LinearRegression().fit(X, y), tmp / "model.pkl")
        ws = Workspace(tmp / "ws")
        model = Model.register(ws, tmp / "model.pkl", "diabetes")
        scripts = [tmp / "score_v1.py", tmp / "score_v2.py"]
        scripts[0].write_text(SCORE_V1)
        scripts[1].write_text(SCORE_V2)
        svc = deploy(ws, "soak", [model], InferenceConfig(entry_script=str(scripts[0])),
                     LocalWebservice.deploy_configuration(workers=args.workers))  # fmt: skip
        svc.wait_for_deployment(timeout_sec=180)
        pid = int(svc.runtime["pid"])
        disk_note = "skipped (--no-disk)" if args.no_disk else None
        tele = Path(svc.runtime["run_dir"]) / "telemetry"
        if not args.no_disk:
            disk_note = try_mount_tmpfs(tele, "16m")
            if disk_note is None:
                mounted = tele
                # a new generation opens its telemetry files on the tmpfs
                svc.update(inference_config=InferenceConfig(entry_script=str(scripts[1])))
                events.append({"t": 0.0, "event": "tmpfs mounted on the telemetry folder; update to start workers on it"})
        body = json.dumps({"data": X[:3].tolist()}).encode()
        load = Load(svc.scoring_uri, body, args.clients)
        rss_start = rss(pid)
        t_start = time.time()
        load.start()
        kill_windows: list[tuple[float, float]] = []
        per_minute_rss: list[tuple[float, int, int]] = []
        next_kill, next_update = args.kill_every, args.update_every
        disk_at = duration * 0.45 if mounted else None
        version = 1 if mounted is not None else 0  # index of the script serving now
        next_sample = 0.0
        while (now := time.time() - t_start) < duration:
            if now >= next_sample:
                per_minute_rss.append((now, rss(pid), len(workers(pid))))
                next_sample += 60.0
            if now >= next_kill:
                ws_ = workers(pid)
                if ws_:
                    victim = ws_[0]
                    t_kill = time.time()
                    os.kill(victim.pid, signal.SIGKILL)
                    deadline = t_kill + 60
                    while time.time() < deadline:
                        alive = [p for p in workers(pid) if p.pid != victim.pid and p.is_running()]
                        if len(alive) >= args.workers:
                            break
                        time.sleep(0.05)
                    t_back = time.time()
                    kill_windows.append((t_kill, t_back + 1.0))
                    events.append({"t": round(t_kill - t_start, 1), "event": f"kill -9 worker {victim.pid}",
                                   "recovered_after_s": round(t_back - t_kill, 2)})  # fmt: skip
                next_kill += args.kill_every
            elif now >= next_update and duration - now > 60:  # an update takes up to a minute here
                t0 = time.time()
                version = 1 - version
                try:
                    svc.update(inference_config=InferenceConfig(entry_script=str(scripts[version])))
                    outcome = "ok"
                except Exception as e:  # recorded: the soak's job is to report it
                    outcome = f"failed: {e}"
                events.append({"t": round(t0 - t_start, 1), "event": f"rolling update to score_v{version + 1}",
                               "took_s": round(time.time() - t0, 2), "outcome": outcome})  # fmt: skip
                next_update += args.update_every
            elif disk_at is not None and now >= disk_at:
                assert mounted is not None
                t0 = time.time()
                written = fill(mounted)
                events.append({"t": round(t0 - t_start, 1), "event": f"disk full: {written} bytes filled the telemetry tmpfs"})
                time.sleep(30)
                (mounted / "fill.bin").unlink()
                events.append({"t": round(time.time() - t_start, 1), "event": "disk freed"})
                disk_at = None
            else:
                time.sleep(0.2)
        samples = load.finish()
        t_end = time.time()
        rss_end = rss(pid)
        per_minute_rss.append((t_end - t_start, rss_end, len(workers(pid))))
        state = svc.state
        final_ok = requests.post(svc.scoring_uri, data=body, timeout=30).status_code == 200
    finally:
        if svc is not None:
            try:
                svc.delete()
            except Exception as e:  # noqa: BLE001
                print(f"delete failed: {e}")
        if mounted is not None:
            subprocess.run(["umount", "-l", str(mounted)], check=False)
        shutil.rmtree(tmp, ignore_errors=True)

    def in_kill(t: float) -> bool:
        return any(a <= t <= b for a, b in kill_windows)

    lat_ok = [lat * 1000 for _, lat, st in samples if st == 200]
    errs_kill: dict[str, int] = {}
    errs_other: dict[str, int] = {}
    other_examples: list[dict[str, Any]] = []
    for t, lat, st in samples:
        if st == 200:
            continue
        bucket = errs_kill if in_kill(t) or in_kill(t + lat) else errs_other
        bucket[str(st)] = bucket.get(str(st), 0) + 1
        if bucket is errs_other and len(other_examples) < 20:
            other_examples.append({"t": round(t - t_start, 2), "status": st, "latency_ms": round(lat * 1000, 1)})
    minutes = []
    for m in range(math.ceil((t_end - t_start) / 60)):
        lo, hi = t_start + 60 * m, t_start + 60 * (m + 1)
        sub = [(lat, st) for t, lat, st in samples if lo <= t < hi]
        ok = [lat * 1000 for lat, st in sub if st == 200]
        r = next((x for x in per_minute_rss if x[0] >= 60 * m), None)
        minutes.append({
            "minute": m + 1, "requests": len(sub), "errors": sum(1 for _, st in sub if st != 200),
            "p50_ms": round(percentile(ok, 0.5) or 0, 2), "p99_ms": round(percentile(ok, 0.99) or 0, 2),
            "rss_bytes": r[1] if r else None, "workers": r[2] if r else None,
        })  # fmt: skip
    out = {
        "minutes": args.minutes, "clients": args.clients, "workers": args.workers,
        "requests": len(samples), "ok": len(lat_ok),
        "errors_during_kills": sum(errs_kill.values()), "errors_during_kills_by_status": errs_kill,
        "errors_other": sum(errs_other.values()), "errors_other_by_status": errs_other,
        "errors_other_examples": other_examples,
        "req_per_s": round(len(samples) / (t_end - t_start), 1),
        "p50_ms": round(percentile(lat_ok, 0.5) or 0, 2), "p99_ms": round(percentile(lat_ok, 0.99) or 0, 2),
        "mean_ms": round(statistics.fmean(lat_ok), 2) if lat_ok else None,
        "rss_start_bytes": rss_start, "rss_end_bytes": rss_end,
        "rss_end_over_start": round(rss_end / rss_start, 3) if rss_start else None,
        "kills": len(kill_windows), "updates": sum(1 for e in events if e["event"].startswith("rolling update")),
        "full_disk": disk_note or "done", "state_at_end": state, "answers_after_soak": final_ok,
        "events": events, "per_minute": minutes,
    }  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k not in ("per_minute", "events", "errors_other_examples")}, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
