"""Our scoring engine vs Azure's ``azmlinfsrv`` vs a bare Starlette+uvicorn endpoint, same ``run()``.

One run measures, on loopback with ``wrk`` (Debian package; a Lua script sets the POST body):

* servers: (a) ``mlmanage`` (``python -m mlmanage_jupyter.server``, the local target's engine),
  (b) ``azmlinfsrv`` (azureml-inference-server-http, Azure's v1 inference server),
  (c) ``bare``: a Starlette app under uvicorn (same httptools/uvloop) calling the same
  ``run()`` in the event loop, with no timeout, auth, telemetry or metrics - the practical
  limit of any server built on these libraries, (d) ``mlflow models serve`` on the same fitted
  ``Ridge`` saved with ``mlflow.sklearn.save_model`` (MLflow's own contract: ``POST /invocations``
  with ``{"inputs": [[...]]}``, ``GET /ping``), when ``--mlflow-python`` names a Python that has
  ``mlflow`` (it is not our dependency: its pins clash with ours, so it lives in its own venv,
  e.g. ``python3 -m venv /tmp/mlflow && /tmp/mlflow/bin/pip install mlflow scikit-learn==<ours>``);
  reported as skipped otherwise;
  plus the cost variants of ours: ``mlmanage+auth`` (Bearer key), ``mlmanage+collect``
  (``collect_model_data``) and ``mlmanage+threads`` (``MLMANAGE_INLINE_RUN_MS=0``: every
  ``run()`` in a run thread, the engine's way for long or waiting scripts; by default a short
  CPU-bound ``run()`` like this one is called on the event loop, ``server/runner.py``), at one worker;
* the same Azure-style entry script: ``inference_schema``-decorated ``run(data)`` predicting
  with a scikit-learn ``Ridge`` on the diabetes data (10 features), 1-row and 1,000-row inputs;
* 1 and 2 workers per server;
* per cell: requests/s, p50 and p99 latency (ms, wrk's ``--latency``), CPU per request (ms of
  user+system CPU of the server's whole process tree, psutil, divided by the requests wrk
  counted) and the 1-minute load average;
* ``--rounds`` rounds; within a round the servers run one after the other in an order that
  rotates every round (the machine is shared: alternation spreads the noise), and the
  reported figure of a cell is the median over rounds.

Telemetry cannot be switched off in the engine, so its cost is measured in-process: the
time of one ``TelemetryWriter.record()`` plus its share of a flush.

Writes ``benchmarks/results/server.json`` (every round's raw figures and the medians),
``benchmarks/results/server.png`` (matplotlib) and rewrites the README block between
``<!-- bench_server:begin -->`` and ``<!-- bench_server:end -->`` from the JSON::

    .venv/bin/python benchmarks/bench_server.py [--duration 5] [--rounds 3] [--connections 8]
    .venv/bin/python benchmarks/bench_server.py --readme-only   # README block from the JSON
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
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
BEGIN, END = "<!-- bench_server:begin -->", "<!-- bench_server:end -->"
KEY = "bench-key-0123456789"

SCORE_PY = """
import os
import joblib
import numpy as np
from inference_schema.schema_decorators import input_schema, output_schema
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType

def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"))

@input_schema("data", NumpyParameterType(np.zeros((1, 10), dtype=np.float64)))
@output_schema(NumpyParameterType(np.zeros(1, dtype=np.float64)))
def run(data):
    return model.predict(data).tolist()
"""

# (c): the same run(), called from a Starlette endpoint in the event loop, nothing else.
BARE_PY = """
import json, os, sys
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import score
score.init()

async def health(request):
    return Response("Healthy")

async def score_endpoint(request):
    body = await request.body()
    out = score.run(**json.loads(body))
    return Response(json.dumps(out), media_type="application/json")

app = Starlette(routes=[Route("/", health), Route("/score", score_endpoint, methods=["POST"])])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_context(root: Path, estimator: Any = None) -> tuple[Path, Path, Any]:
    """``root/app`` (``score.py``, ``bare_app.py``) and ``root/azureml-models/diabetes/1/model.pkl``:
    ``estimator`` (default a ``Ridge``) fitted on the diabetes data; returns (app, models, X)."""
    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True)
    app = root / "app"
    models = root / "azureml-models" / "diabetes" / "1"
    app.mkdir(parents=True)
    models.mkdir(parents=True)
    (app / "score.py").write_text(SCORE_PY)
    (app / "bare_app.py").write_text(BARE_PY)
    joblib.dump((Ridge() if estimator is None else estimator).fit(X, y), models / "model.pkl")
    return app, models, X


# Per server: (score path, health path, the JSON key the rows go under). MLflow's scoring server
# has its own contract; every other server takes Azure's {"data": rows} on /score.
PROTOCOL: dict[str, tuple[str, str, str]] = {"mlflow": ("/invocations", "/ping", "inputs")}
AZURE_PROTOCOL = ("/score", "/", "data")


def protocol(name: str) -> tuple[str, str, str]:
    return PROTOCOL.get(name, AZURE_PROTOCOL)


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
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
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def tree_cpu_s(pid: int) -> float:
    """User+system CPU seconds of a process and its descendants (psutil)."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        for p in [root, *root.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
    except psutil.NoSuchProcess:
        pass
    return total


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    assert m, value
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


def wrk_script(path: Path, body: str, headers: dict[str, str]) -> Path:
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"']
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    lines.append(f"wrk.body = {json.dumps(body)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(url: str, script: Path, duration: int, connections: int, pid: int) -> dict[str, float]:
    subprocess.run(["wrk", "-t1", "-c2", "-d1s", "-s", str(script), url], capture_output=True, check=True)  # warm-up
    load = os.getloadavg()[0]
    cpu0 = tree_cpu_s(pid)
    out = subprocess.run(
        ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = tree_cpu_s(pid) - cpu0
    n = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(g) for g in m.groups())
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(re.search(r"\s50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(re.search(r"\s99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "cpu_ms_per_request": round(cpu * 1000 / max(n, 1), 4),
        "requests": n,
        "errors": errors,
        "load_avg_1m": round(load, 2),
    }


def telemetry_cost_us(n: int = 20000) -> dict[str, float]:
    """CPU microseconds per request of TelemetryWriter (process CPU time, so a loaded machine
    does not inflate it): ``record()`` on the request path, and its share of ``flush()``
    (formatting + file append, in a background thread)."""
    from mlmanage_jupyter.server.telemetry import TelemetryWriter

    with tempfile.TemporaryDirectory() as tmp:
        w = TelemetryWriter(Path(tmp), "bench", ("m:1",), max_buffer=n)
        t0 = time.process_time()
        for _ in range(n):
            w.record(request_id="r", route="/score", status=200, latency_ms=1.234, request_bytes=100, response_bytes=20)
        t1 = time.process_time()
        w.flush()
        t2 = time.process_time()
        return {"record_us": round((t1 - t0) / n * 1e6, 2), "flush_us": round((t2 - t1) / n * 1e6, 2)}


# ----------------------------------------------------------------------------------- servers
Starter = Callable[[int, int], subprocess.Popen[bytes]]


def starters(
    work: Path, app: Path, models: Path, mlflow_python: str | None = None
) -> dict[str, tuple[Starter, dict[str, str]]]:
    """name -> (start(port, workers), extra request headers); ``mlflow`` only with ``mlflow_python``."""
    base_env = dict(os.environ, AZUREML_MODEL_DIR=str(models), PYTHONUNBUFFERED="1")
    base_env.pop("WORKER_COUNT", None)
    bindir = Path(sys.executable).parent
    azmlinfsrv = shutil.which("azmlinfsrv") or str(bindir / "azmlinfsrv")

    def log(name: str) -> Any:
        return open(work / f"{name}.log", "ab")

    def ours(extra: dict[str, str], name: str) -> Starter:
        def start(port: int, workers: int) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [sys.executable, "-m", "mlmanage_jupyter.server"],
                env=dict(
                    base_env,
                    MLMANAGE_APP_ROOT=str(app),
                    MLMANAGE_ENTRY_SCRIPT="score.py",
                    MLMANAGE_PORT=str(port),
                    MLMANAGE_WORKERS=str(workers),
                    MLMANAGE_RUN_DIR=str(work / f"run-{name}-{port}"),
                    **extra,
                ),
                stdout=subprocess.DEVNULL,
                stderr=log(name),
                start_new_session=True,
            )

        return start

    def azure(port: int, workers: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [azmlinfsrv, "--entry_script", str(app / "score.py"), "--model_dir", str(models), "--port", str(port),
             "--worker_count", str(workers)],
            env=base_env, cwd=str(app), stdout=subprocess.DEVNULL, stderr=log("azmlinfsrv"), start_new_session=True,
        )  # fmt: skip

    def bare(port: int, workers: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bare_app:app", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
            env=base_env, cwd=str(app), stdout=subprocess.DEVNULL, stderr=log("bare"), start_new_session=True,
        )  # fmt: skip

    out: dict[str, tuple[Starter, dict[str, str]]] = {
        "mlmanage": (ours({}, "mlmanage"), {}),
        "azmlinfsrv": (azure, {}),
        "bare": (bare, {}),
        "mlmanage+auth": (
            ours({"MLMANAGE_AUTH_ENABLED": "1", "MLMANAGE_PRIMARY_KEY": KEY}, "auth"),
            {"Authorization": f"Bearer {KEY}"},
        ),
        "mlmanage+threads": (ours({"MLMANAGE_INLINE_RUN_MS": "0"}, "threads"), {}),
        "mlmanage+collect": (
            ours({"MLMANAGE_COLLECT_MODEL_DATA": "1", "MLMANAGE_DATA_COLLECTION_DIR": str(work / "modeldata")}, "collect"),
            {},
        ),
    }
    if mlflow_python:
        mlflow_model = work / "mlflow-model"
        subprocess.run(
            [mlflow_python, "-c", "import sys, joblib, mlflow.sklearn; mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2])",
             str(models / "model.pkl"), str(mlflow_model)],
            check=True, capture_output=True,
        )  # fmt: skip

        def mlflow(port: int, workers: int) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [mlflow_python, "-m", "mlflow", "models", "serve", "-m", str(mlflow_model), "-h", "127.0.0.1",
                 "-p", str(port), "-w", str(workers), "--env-manager", "local"],
                env=dict(base_env, MLFLOW_TRACKING_URI=(work / "mlruns").as_uri(),  # it execs `uvicorn` from PATH
                         PATH=f"{Path(mlflow_python).parent}{os.pathsep}{base_env.get('PATH', '')}"), cwd=str(work),
                stdout=subprocess.DEVNULL, stderr=log("mlflow"), start_new_session=True,
            )  # fmt: skip

        out["mlflow"] = (mlflow, {})
    return out


# ----------------------------------------------------------------------------------- report
def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def summarize(raw: dict[str, dict[str, list[dict[str, float]]]]) -> dict[str, dict[str, dict[str, float]]]:
    med: dict[str, dict[str, dict[str, float]]] = {}
    for cell, servers in raw.items():
        med[cell] = {}
        for name, runs in servers.items():
            med[cell][name] = {
                k: round(statistics.median(r[k] for r in runs), 3)
                for k in ("requests_per_s", "p50_ms", "p99_ms", "cpu_ms_per_request", "load_avg_1m")
            }
            med[cell][name]["errors"] = sum(r["errors"] for r in runs)
    return med


def ratios(med: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for cell, s in med.items():
        ours, bare, azure, mlflow = s.get("mlmanage"), s.get("bare"), s.get("azmlinfsrv"), s.get("mlflow")
        if not ours:
            continue
        r: dict[str, float | None] = {
            "rps_vs_bare": _ratio(ours["requests_per_s"], bare and bare["requests_per_s"]),
            "rps_vs_azmlinfsrv": _ratio(ours["requests_per_s"], azure and azure["requests_per_s"]),
            "p99_vs_bare": _ratio(ours["p99_ms"], bare and bare["p99_ms"]),
            "rps_vs_mlflow": _ratio(ours["requests_per_s"], mlflow and mlflow["requests_per_s"]),
        }
        for variant in ("mlmanage+auth", "mlmanage+collect", "mlmanage+threads"):
            if variant in s:
                r[f"rps_{variant.split('+')[1]}_vs_plain"] = _ratio(s[variant]["requests_per_s"], ours["requests_per_s"])
        out[cell] = r
    return out


def chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    med = report["medians"]
    cells = list(med)
    names = [n for n in ("mlmanage", "bare", "azmlinfsrv", "mlflow", "mlmanage+auth", "mlmanage+collect", "mlmanage+threads")
             if any(n in med[c] for c in cells)]  # fmt: skip
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        xs = [j + i * width for j, c in enumerate(cells) if name in med[c]]
        ys = [med[c][name]["requests_per_s"] for c in cells if name in med[c]]
        bars = ax.bar(xs, ys, width, label=name)
        for bar, c in zip(bars, [c for c in cells if name in med[c]], strict=True):
            ax.annotate(f"p99 {med[c][name]['p99_ms']:.0f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=6, rotation=90)  # fmt: skip
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(cells))], cells)
    ax.set_ylabel("requests/s (median of rounds)")
    ax.set_title(f"scoring servers, wrk -c{report['load']['connections']}, {report['machine']['cpus']} shared cores, "
                 f"load avg {report['machine']['load_avg_1m_median']}")  # fmt: skip
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def readme_block(report: dict[str, Any]) -> str:
    med, rat = report["medians"], report["ratios"]
    lines = [
        BEGIN,
        f"`bench_server.py` ({report['date']}, {report['rounds']} alternated rounds of {report['load']['duration_s']} s, "
        f"wrk -c{report['load']['connections']}, {report['machine']['cpus']} shared cores, load average "
        f"{report['machine']['load_avg_1m_median']}; generated from `benchmarks/results/server.json`):",
        "",
        "| rows, workers | server | requests/s | p50 ms | p99 ms | CPU ms/request |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for cell, servers in med.items():
        for name, v in servers.items():
            lines.append(
                f"| {cell} | {name} | {v['requests_per_s']:.0f} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} | {v['cpu_ms_per_request']:.3f} |"
            )
    lines.append("")
    for cell, r in rat.items():
        parts = [f"{k} {v}" for k, v in r.items() if v is not None]
        lines.append(f"- {cell}: " + ", ".join(parts))
    first = rat.get("1 row, 1 worker", {})
    checks = [("rps_vs_bare", ">=", 0.9), ("rps_vs_azmlinfsrv", ">=", 3.5), ("p99_vs_bare", "<=", 1.5)]
    verdicts = []
    for key, op, bound in checks:
        v = first.get(key)
        if v is not None:
            ok = v >= bound if op == ">=" else v <= bound
            verdicts.append(f"{key} {v} ({op} {bound}: {'met' if ok else 'NOT met'})")
    if verdicts:
        lines.append("- issue 15's targets, 1 row, 1 worker: " + "; ".join(verdicts))
    tel = report["telemetry_us_per_request"]
    lines.append(
        f"- telemetry (always on; in-process CPU): {tel['record_us']} µs per request on the request path, "
        f"{tel['flush_us']} µs per request in the background flush"
    )
    lines.append(
        "- the machine is shared: under a high load average a server with more busy threads gets more CPU "
        "time, so CPU ms/request is the fairer per-request cost; requests/s the delivered one"
    )
    for name, why in report.get("skipped", {}).items():
        lines.append(f"- {name}: not measured ({why})")
    lines.append(END)
    return "\n".join(lines)


def write_readme(report: dict[str, Any], readme: Path = ROOT / "README.md") -> None:
    text = readme.read_text(encoding="utf-8")
    block = readme_block(report)
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(text, encoding="utf-8")


# ------------------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=5, help="seconds of wrk load per cell and server")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8, help="concurrent keep-alive connections")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--rows", default="1,1000", help="comma-separated input sizes (rows)")
    ap.add_argument("--servers", default="mlmanage,bare,azmlinfsrv,mlmanage+auth,mlmanage+collect,mlmanage+threads")
    ap.add_argument("--mlflow-python", default=os.environ.get("MLMANAGE_BENCH_MLFLOW_PYTHON"),
                    help="a Python interpreter with mlflow installed: adds `mlflow models serve` (d)")  # fmt: skip
    ap.add_argument("--out", default=str(RESULTS / "server.json"))
    ap.add_argument("--readme-only", action="store_true", help="rewrite the README block from --out and exit")
    args = ap.parse_args()

    if args.readme_only:
        write_readme(json.loads(Path(args.out).read_text()))
        return 0
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install wrk (scripts/setup.sh installs it)", file=sys.stderr)
        return 2
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    skipped: dict[str, str] = {}
    if args.mlflow_python:
        wanted.append("mlflow")
    else:
        skipped["mlflow models serve"] = (
            "no --mlflow-python given: mlflow is not a dependency (its pins clash with ours), so it is "
            "measured from its own venv when one is named"
        )
    raw: dict[str, dict[str, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        app, models, X = make_context(work)
        start = starters(work, app, models, args.mlflow_python)
        import numpy as np  # the diabetes data has 442 rows: repeat them for larger inputs

        rows = {n: np.resize(X, (n, X.shape[1])).tolist() for n in (int(r) for r in args.rows.split(","))}

        def body_for(name: str, n: int) -> str:
            return json.dumps({protocol(name)[2]: rows[n]})

        def answers(name: str, r: requests.Response) -> int:
            out = r.json()
            return len(out["predictions"] if isinstance(out, dict) and "predictions" in out else out)
        for workers in (int(w) for w in args.workers.split(",")):
            names = [n for n in wanted if n in start and (workers == 1 or "+" not in n)]
            procs: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
            try:
                for name in names:
                    port = free_port()
                    proc = start[name][0](port, workers)
                    procs[name] = (proc, port)
                for name, (proc, port) in procs.items():
                    score_path, health_path, _ = protocol(name)
                    wait_http(f"http://127.0.0.1:{port}{health_path}", proc)
                    for n in rows:
                        r = requests.post(f"http://127.0.0.1:{port}{score_path}", data=body_for(name, n), timeout=30,
                                          headers={"Content-Type": "application/json", **start[name][1]})  # fmt: skip
                        assert r.status_code == 200 and answers(name, r) == n, (name, r.status_code, r.text[:300])
                for rnd in range(args.rounds):
                    order = names[rnd % len(names) :] + names[: rnd % len(names)]
                    for n in rows:
                        cell = f"{n} row{'s' if n > 1 else ''}, {workers} worker{'s' if workers > 1 else ''}"
                        for name in order:
                            proc, port = procs[name]
                            script = wrk_script(work / f"{name}-{n}.lua", body_for(name, n), start[name][1])
                            url = f"http://127.0.0.1:{port}{protocol(name)[0]}"
                            res = run_wrk(url, script, args.duration, args.connections, proc.pid)
                            raw.setdefault(cell, {}).setdefault(name, []).append(res)
                            print(f"round {rnd + 1} | {cell} | {name}: {res}", flush=True)
            finally:
                for proc, _ in procs.values():
                    stop(proc)

    med = summarize(raw)
    loads = [r["load_avg_1m"] for s in raw.values() for runs in s.values() for r in runs]
    report: dict[str, Any] = {
        "benchmark": "scoring servers on the same inference_schema entry script (Ridge, diabetes), wrk on loopback",
        "command": "python benchmarks/bench_server.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rounds": args.rounds,
        "load": {"tool": "wrk", "duration_s": args.duration, "connections": args.connections, "target": "127.0.0.1"},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m_median": round(statistics.median(loads), 2) if loads else None,
        },
        "medians": med,
        "ratios": ratios(med),
        "telemetry_us_per_request": telemetry_cost_us(),
        "skipped": skipped,
        "targets": "1 row, 1 worker: rps_vs_bare >= 0.9, rps_vs_azmlinfsrv >= 3.5, p99_vs_bare <= 1.5",
        "raw": raw,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    chart(report, out.with_suffix(".png"))
    if out.resolve() == (RESULTS / "server.json").resolve():
        write_readme(report)
    print(json.dumps({"medians": med, "ratios": report["ratios"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
