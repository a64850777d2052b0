"""Adaptive micro-batching on vs off: a scikit-learn ensemble behind one worker, 16-64 clients.

Same ``inference_schema`` entry script (a ``RandomForestRegressor`` of 100 trees on the
diabetes data, whose per-call cost barely grows with the rows: where batching matters), one
worker, 1-row requests from ``wrk`` with ``--connections`` 16 and 64; ``mlmanage`` (batching
off, the default) and ``mlmanage+batch`` (``MLMANAGE_MAX_BATCH_SIZE``, ``MLMANAGE_MAX_LATENCY_MS``)
alternate within each round; medians over ``--rounds``. Writes requests/s, p50/p99 (ms), CPU
per request and the ratios to ``benchmarks/results/batching.json``::

    .venv/bin/python benchmarks/bench_batching.py [--duration 5] [--rounds 3] [--max-batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_server  # noqa: E402
from bench_server import RESULTS, free_port, run_wrk, stop, wait_http, wrk_script  # noqa: E402


def make_context(root: Path) -> tuple[Path, Path, Any]:
    from sklearn.ensemble import RandomForestRegressor

    return bench_server.make_context(root, RandomForestRegressor(n_estimators=100, max_depth=8, random_state=0))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", default="16,64")
    ap.add_argument("--max-batch-size", type=int, default=64)
    ap.add_argument("--max-latency-ms", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS / "batching.json"))
    args = ap.parse_args()
    raw: dict[str, dict[str, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        app, models, X = make_context(work)
        body = json.dumps({"data": X[:1].tolist()})
        variants = {
            "mlmanage": {},
            "mlmanage+batch": {
                "MLMANAGE_MAX_BATCH_SIZE": str(args.max_batch_size),
                "MLMANAGE_MAX_LATENCY_MS": str(args.max_latency_ms),
            },
        }
        procs: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        try:
            for name, extra in variants.items():
                port = free_port()
                procs[name] = (
                    subprocess.Popen(
                        [sys.executable, "-m", "mlmanage_jupyter.server"],
                        env=dict(
                            os.environ,
                            AZUREML_MODEL_DIR=str(models),
                            MLMANAGE_APP_ROOT=str(app),
                            MLMANAGE_ENTRY_SCRIPT="score.py",
                            MLMANAGE_PORT=str(port),
                            MLMANAGE_WORKERS="1",
                            MLMANAGE_RUN_DIR=str(work / f"run-{port}"),
                            **extra,
                        ),
                        stdout=subprocess.DEVNULL,
                        stderr=open(work / f"{port}.log", "wb"),
                        start_new_session=True,
                    ),
                    port,
                )
            for proc, port in procs.values():
                wait_http(f"http://127.0.0.1:{port}/", proc)
                r = requests.post(f"http://127.0.0.1:{port}/score", data=body, timeout=30)
                assert r.status_code == 200 and len(r.json()) == 1, r.text
            script = wrk_script(work / "post.lua", body, {})
            names = list(procs)
            for rnd in range(args.rounds):
                for c in (int(x) for x in args.connections.split(",")):
                    cell = f"{c} clients"
                    for name in names if rnd % 2 == 0 else names[::-1]:
                        proc, port = procs[name]
                        res = run_wrk(f"http://127.0.0.1:{port}/score", script, args.duration, c, proc.pid)
                        raw.setdefault(cell, {}).setdefault(name, []).append(res)
                        print(f"round {rnd + 1} | {cell} | {name}: {res}", flush=True)
        finally:
            for proc, _ in procs.values():
                stop(proc)
    med = {
        cell: {
            name: {k: round(statistics.median(r[k] for r in runs), 3)
                   for k in ("requests_per_s", "p50_ms", "p99_ms", "cpu_ms_per_request", "load_avg_1m")}
            | {"errors": sum(r["errors"] for r in runs)}
            for name, runs in servers.items()
        }
        for cell, servers in raw.items()
    }  # fmt: skip
    ratios = {
        cell: {
            "rps_batch_vs_off": round(s["mlmanage+batch"]["requests_per_s"] / s["mlmanage"]["requests_per_s"], 2),
            "p99_batch_vs_off": round(s["mlmanage+batch"]["p99_ms"] / s["mlmanage"]["p99_ms"], 2),
        }
        for cell, s in med.items()
    }
    report = {
        "benchmark": "micro-batching on vs off, RandomForestRegressor(100 trees), 1 worker, 1-row requests, wrk",
        "command": "python benchmarks/bench_batching.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rounds": args.rounds,
        "duration_s": args.duration,
        "max_batch_size": args.max_batch_size,
        "max_latency_ms": args.max_latency_ms,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "medians": med,
        "ratios": ratios,
        "raw": raw,
    }
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({"medians": med, "ratios": ratios}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
