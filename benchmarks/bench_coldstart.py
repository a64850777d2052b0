"""Cold start and container networking: the docker target next to the local target, same model.

Issue 15 asks for two figures the throughput benchmark (``bench_server.py``) cannot give:

* **cold start**: ``Model.deploy(...)`` called -> first HTTP 200 from ``scoring_uri`` (s), and a
  **code-only update** (the entry script edited, ``service.update(inference_config=...)``)
  -> first answer carrying the new code (s), on the local and the docker target. The docker
  deploy includes its image build; it is measured twice, with a never-seen entry script (new
  top layer, the rest from Docker's layer cache, as a data scientist's day goes) and again for
  the update.
* **container networking cost**: requests/s, p50 and p99 (ms) of the same 1-row request with
  ``wrk`` (``bench_server.run_wrk``) against the local service and the docker service (port
  published on 127.0.0.1 through docker-proxy/iptables), one worker each, alternated over
  ``--rounds`` rounds; the ratios docker/local are the figures (a shared, noisy machine makes
  absolute numbers meaningless).

Run (needs a Docker Engine, ``MLMANAGE_BASE_IMAGE`` built locally, and ``wrk``)::

    MLMANAGE_BASE_IMAGE=local/python:3.11-bookworm .venv/bin/python benchmarks/bench_coldstart.py

Writes ``benchmarks/results/coldstart.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import RESULTS, SCORE_PY, run_wrk, wrk_script  # noqa: E402


def _first_200(url: str, body: str, expect: str | None, deadline_s: float = 600) -> float:
    """Poll ``url`` until it answers 200 (and, when ``expect`` is given, a body containing it);
    returns the monotonic time of that answer."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            r = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
            if r.status_code == 200 and (expect is None or expect in r.text):
                return time.monotonic()
        except requests.RequestException:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"{url} gave no 200{'' if expect is None else ' with ' + expect} in {deadline_s} s")


def _script(tag: str) -> str:
    """bench_server's inference_schema entry script, its answer carrying ``tag``."""
    return SCORE_PY.replace("return model.predict(data).tolist()", f"return {{'tag': {tag!r}, 'y': model.predict(data).tolist()}}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=5, help="seconds of wrk load per cell")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--out", default=str(RESULTS / "coldstart.json"))
    args = ap.parse_args()

    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    from mlmanage_jupyter.core.environment import InferenceConfig
    from mlmanage_jupyter.core.model import Model
    from mlmanage_jupyter.core.webservice import DockerWebservice, LocalWebservice
    from mlmanage_jupyter.core.workspace import Workspace

    os.environ.setdefault("MLMANAGE_BASE_IMAGE", "local/python:3.11-bookworm")
    X, y = load_diabetes(return_X_y=True)
    body = json.dumps({"data": X[:1].tolist()})
    run_id = uuid.uuid4().hex[:8]
    report: dict[str, Any] = {
        "benchmark": "cold start and container networking: docker target vs local target, same model and entry script",
        "command": "python benchmarks/bench_coldstart.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load": {"tool": "wrk", "duration_s": args.duration, "connections": args.connections, "rounds": args.rounds},
        "targets": {},
    }
    services: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="bench-coldstart-") as tmp:
        root = Path(tmp)
        ws = Workspace(root / "ws")
        (root / "model").mkdir()
        joblib.dump(Ridge().fit(X, y), root / "model" / "model.pkl")
        model = Model.register(ws, root / "model" / "model.pkl", "diabetes")
        try:
            for target, cls in (("local", LocalWebservice), ("docker", DockerWebservice)):
                src = root / f"src-{target}"
                src.mkdir()
                (src / "score.py").write_text(_script(f"v1-{run_id}"))
                t0 = time.monotonic()
                svc = Model.deploy(ws, f"cold-{target}-{run_id}", [model], InferenceConfig("score.py", source_directory=str(src)),
                                   cls.deploy_configuration())  # fmt: skip
                services.append(svc)
                deploy_s = _first_200(svc.scoring_uri, body, f"v1-{run_id}") - t0
                (src / "score.py").write_text(_script(f"v2-{run_id}"))
                t1 = time.monotonic()
                svc.update(inference_config=InferenceConfig("score.py", source_directory=str(src)))
                update_s = _first_200(svc.scoring_uri, body, f"v2-{run_id}") - t1
                report["targets"][target] = {"deploy_to_first_200_s": round(deploy_s, 2), "code_update_to_new_answer_s": round(update_s, 2)}
                print(target, report["targets"][target], flush=True)
            script = wrk_script(root / "body.lua", body, {})
            raw: dict[str, list[dict[str, float]]] = {"local": [], "docker": []}
            for rnd in range(args.rounds):
                order = ["local", "docker"] if rnd % 2 == 0 else ["docker", "local"]
                for target in order:
                    svc = services[0 if target == "local" else 1]
                    cell = run_wrk(svc.scoring_uri, script, args.duration, args.connections, os.getpid())
                    cell.pop("cpu_ms_per_request")  # measured on our own pid here: not the server's CPU
                    raw[target].append(cell)
                    print(rnd, target, raw[target][-1], flush=True)
            for target, cells in raw.items():
                report["targets"][target]["rounds"] = cells
                for k in ("requests_per_s", "p50_ms", "p99_ms"):
                    report["targets"][target][k] = round(statistics.median(c[k] for c in cells), 2)
                report["targets"][target]["errors"] = sum(int(c["errors"]) for c in cells)
        finally:
            for svc in services:
                try:
                    svc.delete()
                except Exception as e:  # noqa: BLE001 - report, keep deleting the others
                    print(f"could not delete {svc.name}: {e}", file=sys.stderr)
    loc, dock = report["targets"]["local"], report["targets"]["docker"]
    report["ratios_docker_to_local"] = {
        "requests_per_s": round(dock["requests_per_s"] / loc["requests_per_s"], 3),
        "p99_ms": round(dock["p99_ms"] / loc["p99_ms"], 3),
        "deploy_to_first_200_s": round(dock["deploy_to_first_200_s"] / loc["deploy_to_first_200_s"], 2),
        "code_update_to_new_answer_s": round(dock["code_update_to_new_answer_s"] / loc["code_update_to_new_answer_s"], 2),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "targets"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
