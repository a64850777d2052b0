"""Our scoring engine vs Azure's ``azmlinfsrv`` (azureml-inference-server-http) on the same entry script.

Same script (an undecorated ``run()`` predicting with a scikit-learn LinearRegression on the
diabetes data set), one worker each, same load on loopback: ``wrk`` (Debian package) with
``--connections`` keep-alive connections for ``--duration`` seconds, after a short warm-up;
a bounded Python load generator when wrk is missing. Writes requests/s and p50/p99 latency
(ms) of both servers and their ratios to ``benchmarks/results/server.json``.

    .venv/bin/python benchmarks/bench_server.py [--duration 10] [--connections 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

SCORE_PY = """
import json, os, joblib
def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"))
def run(raw_data):
    data = json.loads(raw_data)["data"]
    return model.predict(data).tolist()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_context(root: Path) -> tuple[Path, Path, list[list[float]]]:
    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    X, y = load_diabetes(return_X_y=True)
    app = root / "app"
    models = root / "azureml-models" / "diabetes" / "1"
    app.mkdir(parents=True)
    models.mkdir(parents=True)
    (app / "score.py").write_text(SCORE_PY)
    joblib.dump(LinearRegression().fit(X, y), models / "model.pkl")
    return app, models, X[:2].tolist()


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    assert m, value
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def load_wrk(url: str, body: str, duration: int, connections: int, workdir: Path) -> dict[str, float]:
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n' f"wrk.body = {json.dumps(body)}\n"
    )
    threads = min(2, connections)
    subprocess.run(["wrk", "-t1", "-c2", "-d2s", "-s", str(script), url], capture_output=True, check=True)  # warm-up
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(g) for g in m.groups())
    return {"requests_per_s": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors}


def load_python(url: str, body: str, duration: int, connections: int) -> dict[str, float]:
    """Fallback: keep-alive sessions in threads, bounded by ``duration``."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + duration

    def worker() -> None:
        s = requests.Session()
        mine = []
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            r = s.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
            mine.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    latencies.sort()
    return {
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[int(len(latencies) * 0.99)],
        "errors": errors[0],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds of load per server")
    ap.add_argument("--connections", type=int, default=8, help="concurrent keep-alive connections")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "server.json"))
    args = ap.parse_args()

    azmlinfsrv = shutil.which("azmlinfsrv") or str(Path(sys.executable).parent / "azmlinfsrv")
    if not Path(azmlinfsrv).exists():
        print("azmlinfsrv not found: pip install azureml-inference-server-http", file=sys.stderr)
        return 2
    tool = "wrk" if shutil.which("wrk") else "python"
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        app, models, rows = make_context(work)
        body = json.dumps({"data": rows})
        base_env = dict(os.environ, AZUREML_MODEL_DIR=str(models), PYTHONUNBUFFERED="1")
        servers = {
            "mlmanage": lambda port: subprocess.Popen(
                [sys.executable, "-m", "mlmanage_jupyter.server"],
                env=dict(
                    base_env,
                    MLMANAGE_APP_ROOT=str(app),
                    MLMANAGE_ENTRY_SCRIPT="score.py",
                    MLMANAGE_PORT=str(port),
                    MLMANAGE_WORKERS="1",
                    MLMANAGE_RUN_DIR=str(work / "run"),
                ),
                stdout=subprocess.DEVNULL,
                stderr=open(work / "mlmanage.log", "wb"),
                start_new_session=True,
            ),
            "azmlinfsrv": lambda port: subprocess.Popen(
                [azmlinfsrv, "--entry_script", str(app / "score.py"), "--model_dir", str(models), "--port", str(port), "--worker_count", "1"],
                env=base_env,
                cwd=str(app),
                stdout=subprocess.DEVNULL,
                stderr=open(work / "azmlinfsrv.log", "wb"),
                start_new_session=True,
            ),
        }
        for name, start in servers.items():
            port = free_port()
            proc = start(port)
            try:
                wait_http(f"http://127.0.0.1:{port}/", proc)
                url = f"http://127.0.0.1:{port}/score"
                check = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
                assert check.status_code == 200, check.text
                if tool == "wrk":
                    results[name] = load_wrk(url, body, args.duration, args.connections, work)
                else:
                    results[name] = load_python(url, body, args.duration, args.connections)
            finally:
                stop(proc)
            print(name, results[name], flush=True)

    ours, azure = results["mlmanage"], results["azmlinfsrv"]
    report = {
        "benchmark": "scoring engine vs azureml-inference-server-http, 1 worker, same entry script",
        "load": {"tool": tool, "duration_s": args.duration, "connections": args.connections, "target": "127.0.0.1"},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "mlmanage": ours,
        "azmlinfsrv": azure,
        "ratio_requests_per_s": round(ours["requests_per_s"] / azure["requests_per_s"], 2),
        "ratio_p50_ms": round(ours["p50_ms"] / azure["p50_ms"], 2),
        "ratio_p99_ms": round(ours["p99_ms"] / azure["p99_ms"], 2),
        "goal": "ratio_requests_per_s >= 2",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
