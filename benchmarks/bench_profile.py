"""Cost of data collection on the scoring path (issue "Monitoring, data collection and profiling").
Not a test: run by hand.

    .venv/bin/python benchmarks/bench_profile.py [--duration 3] [--concurrency 1,4] [--rounds 2]

Deploys the quickstart model (LinearRegression, diabetes) twice on the local target in one
workspace — ``collect_model_data=False`` (the peer) and ``True`` — and profiles both with the
same samples, alternating A/B per round so machine noise hits both. Reports per concurrency
level the ratios collect/no-collect of throughput and p50/p95 latency (client side), and the
ratio of CPU seconds per request. Figures go to ``benchmarks/results/profile.json``; the
machine is shared and noisy, so read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "profile.json"

SCORE_PY = """
import json, os, joblib
def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"))
def run(raw_data):
    return model.predict(json.loads(raw_data)["data"]).tolist()
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--concurrency", default="1,4")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    from mlmanage_jupyter.core.environment import InferenceConfig
    from mlmanage_jupyter.core.model import Model
    from mlmanage_jupyter.core.webservice import LocalWebservice, deploy
    from mlmanage_jupyter.core.workspace import Workspace

    root = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    ws = Workspace(root / "ws")
    X, y = load_diabetes(return_X_y=True)
    joblib.dump(LinearRegression().fit(X, y), root / "model.pkl")
    model = Model.register(ws, root / "model.pkl", "diabetes")
    (root / "src").mkdir()
    (root / "src" / "score.py").write_text(SCORE_PY)
    ic = InferenceConfig(entry_script="score.py", source_directory=str(root / "src"))
    samples = [{"data": [row.tolist()]} for row in X[:50]]

    services = {}
    try:
        for label, collect in (("off", False), ("on", True)):
            svc = deploy(ws, f"bench-{label}", [model], ic, LocalWebservice.deploy_configuration(collect_model_data=collect))
            svc.wait_for_deployment(timeout_sec=120)
            services[label] = svc
        runs: dict[str, list] = {"off": [], "on": []}
        for _ in range(args.rounds):
            for label in ("off", "on"):
                runs[label].append(services[label].profile(samples, concurrency=levels, duration_s=args.duration))
        out = {"duration_s": args.duration, "rounds": args.rounds, "levels": []}
        for i, c in enumerate(levels):
            def med(label: str, attr: str, i: int = i) -> float:
                return statistics.median(getattr(p.levels[i], attr) for p in runs[label])

            def cpu_per_req(label: str, i: int = i) -> float:
                return statistics.median(p.levels[i].cpu_cores * p.levels[i].duration_s / p.levels[i].requests for p in runs[label])

            row = {
                "concurrency": c,
                "throughput_rps_off": med("off", "throughput_rps"),
                "throughput_rps_on": med("on", "throughput_rps"),
                "p50_ms_off": med("off", "p50_ms"),
                "p50_ms_on": med("on", "p50_ms"),
                "p95_ms_off": med("off", "p95_ms"),
                "p95_ms_on": med("on", "p95_ms"),
                "cpu_ms_per_request_off": cpu_per_req("off") * 1000,
                "cpu_ms_per_request_on": cpu_per_req("on") * 1000,
            }
            row["throughput_ratio_on_off"] = row["throughput_rps_on"] / row["throughput_rps_off"]
            row["p50_ratio_on_off"] = row["p50_ms_on"] / row["p50_ms_off"]
            row["p95_ratio_on_off"] = row["p95_ms_on"] / row["p95_ms_off"]
            row["cpu_per_request_ratio_on_off"] = row["cpu_ms_per_request_on"] / row["cpu_ms_per_request_off"]
            out["levels"].append(row)
        collected = len(services["on"].get_collected_data())
        sent = sum(p.requests_sent for p in runs["on"]) + 5 * args.rounds  # + warm-up requests
        out["collected_records"] = collected
        out["requests_to_collecting_service"] = sent
    finally:
        for svc in services.values():
            svc.delete()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
