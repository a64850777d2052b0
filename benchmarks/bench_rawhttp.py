"""A ``@rawhttp`` entry script on our scoring engine vs Azure's ``azmlinfsrv``.

Same script on both (``azureml.contrib.services``: ``run(request)`` answers
``AMLResponse(request.get_data(), 200)`` with a CORS header, i.e. the raw body echoed), one
worker each, same load on loopback with ``bench_server.py``'s load generators (``wrk``, or
the Python fallback): a 4 KiB body, ``--connections`` keep-alive connections for
``--duration`` seconds. Our engine provides ``azureml.contrib.services`` itself (no Azure
SDK); azmlinfsrv provides its own. Writes requests/s, p50/p99 latency (ms) and their ratios
to ``benchmarks/results/rawhttp.json``.

    .venv/bin/python benchmarks/bench_rawhttp.py [--duration 10] [--connections 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parent))

from bench_server import free_port, load_python, load_wrk, stop, wait_http  # noqa: E402

SCORE_PY = """
from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse

def init():
    pass

@rawhttp
def run(request):
    resp = AMLResponse(request.get_data(), 200)
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds of load per server")
    ap.add_argument("--connections", type=int, default=8, help="concurrent keep-alive connections")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "rawhttp.json"))
    args = ap.parse_args()

    azmlinfsrv = shutil.which("azmlinfsrv") or str(Path(sys.executable).parent / "azmlinfsrv")
    if not Path(azmlinfsrv).exists():
        print("azmlinfsrv not found: pip install azureml-inference-server-http", file=sys.stderr)
        return 2
    tool = "wrk" if shutil.which("wrk") else "python"
    body = "x" * 4096
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        app = work / "app"
        models = work / "azureml-models" / "m" / "1"
        app.mkdir(parents=True)
        models.mkdir(parents=True)
        (app / "score.py").write_text(SCORE_PY)
        base_env = dict(os.environ, AZUREML_MODEL_DIR=str(models), PYTHONUNBUFFERED="1")
        servers = {
            "mlmanage": lambda port: subprocess.Popen(
                [sys.executable, "-m", "mlmanage_jupyter.server"],
                env=dict(base_env, MLMANAGE_APP_ROOT=str(app), MLMANAGE_ENTRY_SCRIPT="score.py", MLMANAGE_PORT=str(port),
                         MLMANAGE_WORKERS="1", MLMANAGE_RUN_DIR=str(work / "run")),
                stdout=subprocess.DEVNULL,
                stderr=open(work / "mlmanage.log", "wb"),
                start_new_session=True,
            ),
            "azmlinfsrv": lambda port: subprocess.Popen(
                [azmlinfsrv, "--entry_script", str(app / "score.py"), "--model_dir", str(models), "--port", str(port),
                 "--worker_count", "1"],
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
                check = requests.post(url, data=body, timeout=10)
                assert check.status_code == 200 and check.text == body, (check.status_code, check.text[:200])
                assert check.headers["Access-Control-Allow-Origin"] == "*"
                if tool == "wrk":
                    results[name] = load_wrk(url, body, args.duration, args.connections, work)
                else:
                    results[name] = load_python(url, body, args.duration, args.connections)
            finally:
                stop(proc)
            print(name, results[name], flush=True)

    ours, azure = results["mlmanage"], results["azmlinfsrv"]
    report = {
        "benchmark": "@rawhttp echo script (4 KiB body): scoring engine vs azureml-inference-server-http, 1 worker",
        "load": {"tool": tool, "duration_s": args.duration, "connections": args.connections, "target": "127.0.0.1"},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "mlmanage": ours,
        "azmlinfsrv": azure,
        "ratio_requests_per_s": round(ours["requests_per_s"] / azure["requests_per_s"], 2),
        "ratio_p50_ms": round(ours["p50_ms"] / azure["p50_ms"], 2),
        "ratio_p99_ms": round(ours["p99_ms"] / azure["p99_ms"], 2),
        "goal": "ratio_requests_per_s >= 1 (raw requests no slower than Azure's server)",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
