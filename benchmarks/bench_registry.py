"""Registry scale benchmarks (issue "Workspace and model registry"). Not a test: run by hand.

    .venv/bin/python benchmarks/bench_registry.py [--size-mib 1024] [--versions 100,1000,10000]

1. Registering a large file streams it: peak RSS of the registering process (measured in a
   fresh subprocess with psutil/ru_maxrss) stays far below the file size; hashing+storing
   throughput is compared with ``sha256sum`` (and ``cp``) on the same file in the same run.
2. Listing the latest versions stays interactive as the registry grows: time of
   ``Model.list(ws, latest=True)`` and of ``Model(ws, name)`` at 100, 1,000 and 10,000
   registered versions (100 versions per name).
3. Verifying an image's build context (what deploy/update/package/save/export run first) of a
   ``--context-mib`` model: cold (no stat cache: every file hashed) vs warm (stat cache: one
   ``lstat`` per file), as a ratio.

``--parts large,listing,context`` runs some of them (the others' figures stay in the file).

Figures go to ``benchmarks/results/registry.json``. The machine is shared and noisy, so
compare ratios (ours / sha256sum), not absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "registry.json"

_REGISTER_AND_MEASURE = """
import json, resource, sys, time
from mlmanage_jupyter.core.model import Model
from mlmanage_jupyter.core.workspace import Workspace
ws = Workspace(sys.argv[1])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
m = Model.register(ws, sys.argv[2], "big")
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": dt, "peak_rss_kib": peak, "rss_before_kib": base, "sha256": m.sha256}))
"""


def _timed(cmd: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE if cmd[0] != "cat" else subprocess.DEVNULL).stdout
    return time.perf_counter() - t, (out or b"").decode(errors="replace")


def bench_large_file(size_mib: int, work: Path) -> dict[str, object]:
    big = work / "big.bin"
    with open(big, "wb") as f:
        chunk = os.urandom(1 << 20)
        for i in range(size_mib):
            f.write(chunk[:-8] + i.to_bytes(8, "little"))
    subprocess.run(["sync"], check=False)
    # warm the page cache equally for every contender
    _timed(["cat", str(big)])
    t_sha, out = _timed(["sha256sum", str(big)])
    t_cp, _ = _timed(["cp", str(big), str(work / "copy.bin")])
    os.unlink(work / "copy.bin")
    r = subprocess.run(
        [sys.executable, "-c", _REGISTER_AND_MEASURE, str(work / "ws"), str(big)], check=True, capture_output=True, text=True
    )
    ours = json.loads(r.stdout)
    assert ours["sha256"] == out.split()[0], "registry hash differs from sha256sum"
    size = size_mib * (1 << 20)
    return {
        "file_bytes": size,
        "register_seconds": round(ours["seconds"], 3),
        "sha256sum_seconds": round(t_sha, 3),
        "cp_seconds": round(t_cp, 3),
        "register_MiB_per_s": round(size_mib / ours["seconds"], 1),
        "sha256sum_MiB_per_s": round(size_mib / t_sha, 1),
        "ratio_register_to_sha256sum": round(ours["seconds"] / t_sha, 2),
        "ratio_register_to_sha256sum_plus_cp": round(ours["seconds"] / (t_sha + t_cp), 2),
        "peak_rss_MiB": round(ours["peak_rss_kib"] / 1024, 1),
        "peak_rss_fraction_of_file": round(ours["peak_rss_kib"] * 1024 / size, 4),
    }


def bench_listing(counts: list[int], work: Path) -> list[dict[str, object]]:
    from mlmanage_jupyter.core.model import Model
    from mlmanage_jupyter.core.workspace import Workspace

    ws = Workspace(work / "ws-list")
    f = work / "small.bin"
    f.write_bytes(b"m" * 128)
    per_name = 100
    registered = 0
    out = []
    t_reg = 0.0
    for target in sorted(counts):
        t = time.perf_counter()
        while registered < target:
            Model.register(ws, f, f"model-{registered // per_name:04d}", tags={"i": str(registered)})
            registered += 1
        t_reg += time.perf_counter() - t
        lat = []
        for _ in range(5):
            t = time.perf_counter()
            latest = Model.list(ws, latest=True)
            lat.append(time.perf_counter() - t)
        get = []
        for _ in range(20):
            t = time.perf_counter()
            Model(ws, "model-0000")
            get.append(time.perf_counter() - t)
        out.append(
            {
                "versions": registered,
                "names": len(latest),
                "list_latest_ms_median": round(statistics.median(lat) * 1000, 2),
                "get_latest_ms_median": round(statistics.median(get) * 1000, 3),
                "register_ms_mean_so_far": round(t_reg / registered * 1000, 2),
            }
        )
        print(out[-1], flush=True)
    return out


def bench_context_verify(size_mib: int, work: Path, repeats: int = 5) -> dict[str, object]:
    from mlmanage_jupyter.core import images
    from mlmanage_jupyter.core.environment import InferenceConfig
    from mlmanage_jupyter.core.image import Image
    from mlmanage_jupyter.core.model import Model
    from mlmanage_jupyter.core.workspace import Workspace

    ws = Workspace(work / "ws-context")
    big = work / "ctx-model.bin"
    with open(big, "wb") as f:
        chunk = os.urandom(1 << 20)
        for i in range(size_mib):
            f.write(chunk[:-8] + i.to_bytes(8, "little"))
    (work / "ctx-src").mkdir()
    (work / "ctx-src" / "score.py").write_text("def init():\n    pass\n\ndef run(data):\n    return data\n")
    m = Model.register(ws, big, "big-context")
    big.unlink()
    img = Image.create(ws, "bench-context", [m], InferenceConfig(entry_script="score.py", source_directory=str(work / "ctx-src")))
    # the files must be older than the racily-clean window before the cache may hold them
    time.sleep(images.RACY_WINDOW_NS / 1e9 + 0.5)
    cache = img.context_path / images.STAT_CACHE_NAME
    cold, warm = [], []
    for _ in range(repeats):
        cache.unlink(missing_ok=True)
        t = time.perf_counter()
        images.verify_context(img.record)
        cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        images.verify_context(img.record)
        warm.append(time.perf_counter() - t)
    return {
        "context_MiB": size_mib,
        "files": len(json.loads((img.context_path / images.MANIFEST_NAME).read_bytes())),
        "cold_ms_median": round(statistics.median(cold) * 1000, 1),
        "warm_ms_median": round(statistics.median(warm) * 1000, 2),
        "ratio_cold_to_warm": round(statistics.median(cold) / statistics.median(warm), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--versions", default="100,1000,10000")
    ap.add_argument("--context-mib", type=int, default=256)
    ap.add_argument("--parts", default="large,listing,context")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    result = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    with tempfile.TemporaryDirectory(prefix="bench-registry-", dir=os.environ.get("BENCH_TMP")) as tmp:
        work = Path(tmp)
        if "large" in parts:
            result["large_file"] = bench_large_file(args.size_mib, work)
            print(result["large_file"], flush=True)
        if "listing" in parts:
            listing = bench_listing([int(x) for x in args.versions.split(",")], work)
            first, last = listing[0], listing[-1]
            result["listing"] = listing
            result["listing_growth"] = {
                "versions_ratio": last["versions"] / first["versions"],
                "list_latest_time_ratio": round(last["list_latest_ms_median"] / first["list_latest_ms_median"], 1),
                "get_latest_time_ratio": round(last["get_latest_ms_median"] / first["get_latest_ms_median"], 2),
            }
        if "context" in parts:
            result["context_verify"] = bench_context_verify(args.context_mib, work)
            print(result["context_verify"], flush=True)
    result["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
