"""Docker image build benchmark: cold build, image size, and the rebuilds a data scientist
does all day — a new model version and an entry-script edit — as ratios to the cold build.

Run: ``MLMANAGE_BASE_IMAGE=local/python:3.11-bookworm .venv/bin/python benchmarks/bench_docker.py``
(needs a Docker Engine and the base image). Writes ``benchmarks/results/docker.json``.

The cold build starts from an empty build cache folder (engine wheel built, wheels
downloaded from the index) on a throw-away copy of the base image (``FROM base`` + a unique
LABEL: same content, new id), so no layer cache applies; the rebuilds then use that chain. Goals: each
rebuild under 10 % of the cold build; the quickstart image under 500 MB on the slim base.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "docker.json"

SCORE = """
import json, os, joblib
def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "sklearn_regression_model.pkl"))
def run(raw_data):
    return {{"edit": {edit}, "predictions": model.predict(json.loads(raw_data)["data"]).tolist()}}
"""


def main() -> int:
    import io
    import uuid

    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression, Ridge

    from mlmanage_jupyter.core.environment import InferenceConfig
    from mlmanage_jupyter.core.image import Image
    from mlmanage_jupyter.core.images import image_spec
    from mlmanage_jupyter.core.model import Model
    from mlmanage_jupyter.core.targets.docker_build import build_image, docker_client
    from mlmanage_jupyter.core.workspace import Workspace

    base = os.environ.setdefault("MLMANAGE_BASE_IMAGE", "local/python:3.11-bookworm")
    client = docker_client()
    tags: list[str] = []
    run_id = uuid.uuid4().hex[:12]
    bench_base = f"mlmanage-bench/base:{run_id}"
    client.images.build(fileobj=io.BytesIO(f"FROM {base}\nLABEL org.mlmanage.bench={run_id}\n".encode()), tag=bench_base, rm=True)
    os.environ["MLMANAGE_BASE_IMAGE"] = bench_base
    with tempfile.TemporaryDirectory(prefix="bench-docker-") as tmp:
        root = Path(tmp)
        os.environ["MLMANAGE_CACHE_DIR"] = str(root / "cache")
        ws = Workspace(root / "ws")
        X, y = load_diabetes(return_X_y=True)
        model_file = root / "model" / "sklearn_regression_model.pkl"
        model_file.parent.mkdir()
        joblib.dump(LinearRegression().fit(X, y), model_file)
        m1 = Model.register(ws, model_file, "diabetes")
        src = root / "src"
        src.mkdir()
        (src / "score.py").write_text(textwrap.dedent(SCORE.format(edit=0)))
        ic = InferenceConfig(entry_script="score.py", source_directory=str(src))

        def timed(img: Image) -> tuple[float, str]:
            t0 = time.perf_counter()
            tag = build_image(image_spec(img), lambda _l: None, client=client, cache_dir=root / "cache")
            tags.append(tag)
            return time.perf_counter() - t0, tag

        img1 = Image.create(ws, "bench", [m1], ic)
        cold_s, tag1 = timed(img1)
        size = client.images.get(tag1).attrs["Size"]

        joblib.dump(Ridge(alpha=0.5).fit(X, y), model_file)  # a new model version
        m2 = Model.register(ws, model_file, "diabetes")
        model_s, _ = timed(Image.create(ws, "bench", [m2], ic))

        (src / "score.py").write_text(textwrap.dedent(SCORE.format(edit=1)))  # an entry-script edit
        script_s, _ = timed(Image.create(ws, "bench", [m2], InferenceConfig(entry_script="score.py", source_directory=str(src))))

        result = {
            "base_image": base,
            "python": f"{sys.version_info.major}.{sys.version_info.minor}",
            "cold_build_s": round(cold_s, 2),
            "image_size_bytes": size,
            "image_size_mb": round(size / 1e6, 1),
            "rebuild_new_model_version_s": round(model_s, 2),
            "rebuild_entry_script_edit_s": round(script_s, 2),
            "ratio_new_model_version_to_cold": round(model_s / cold_s, 4),
            "ratio_entry_script_edit_to_cold": round(script_s / cold_s, 4),
            "goals": {"rebuild_ratio_max": 0.10, "image_size_mb_max": 500},
            "goals_met": model_s / cold_s < 0.10 and script_s / cold_s < 0.10 and size / 1e6 < 500,
        }
    for tag in [*reversed(tags), bench_base]:
        try:
            client.images.remove(tag, force=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
    client.close()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
