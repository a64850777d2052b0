"""Metadata store benchmarks (issue 10: one Workspace per path; a team workspace on PostgreSQL).
Not a test: run by hand.

    .venv/bin/python benchmarks/bench_store.py [--pg-url postgresql+psycopg://...] [--procs 16]

1. Resolving a workspace path: 100 ``resolve_workspace(path)`` calls (one shared instance)
   against 100 fresh opens of the same folder (a new engine and a schema check each, what
   every call cost before instances were shared).
2. Registering: 50 small models one after the other in one process, then ``--procs``
   processes registering one name at once (the versions must come out 1..N), on SQLite and on
   PostgreSQL (``--pg-url``, default ``$MLMANAGE_TEST_POSTGRES_URL``; a fresh database is made
   and dropped). Artifacts are local in both, so the ratio is the metadata store's.

Figures go to ``benchmarks/results/store.json``. The machine is shared and noisy, so compare
the ratios (PostgreSQL / SQLite, fresh / shared), not absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from mlmanage_jupyter import Model
from mlmanage_jupyter.core import workspace as wsmod
from mlmanage_jupyter.core.store import metadata as md
from mlmanage_jupyter.core.workspace import Workspace, resolve_workspace

RESULTS = Path(__file__).parent / "results" / "store.json"

_REGISTER = """
import sys
from mlmanage_jupyter import Model, Workspace
ws = Workspace(sys.argv[1], metadata_url=sys.argv[2] or None)
Model.list(ws)  # connected and warm
print("ready", flush=True)
sys.stdin.readline()
print(Model.register(ws, sys.argv[3], "shared").version)
"""


def bench_resolve(work: Path, n: int = 100) -> dict[str, float]:
    path = work / "resolve"
    Workspace(path)
    t = time.perf_counter()
    for _ in range(n):
        resolve_workspace(str(path))
    shared = time.perf_counter() - t
    url = f"sqlite:///{path / 'metadata.db'}"
    t = time.perf_counter()
    for _ in range(n):
        engine = md.make_engine(url)
        md.upgrade_schema(engine)
        engine.dispose()
    fresh = time.perf_counter() - t
    return {"calls": n, "shared_ms": shared * 1000, "fresh_engine_ms": fresh * 1000, "fresh_over_shared": fresh / shared}


def bench_register(work: Path, url: str | None, label: str, procs: int, n: int = 50) -> dict[str, float]:
    ws = Workspace(work / f"seq-{label}", metadata_url=url)
    f = work / "m.bin"
    t = time.perf_counter()
    for i in range(n):
        f.write_bytes(f"model {label} {i}".encode())
        Model.register(ws, f, "seq")
    seq = time.perf_counter() - t
    ws.close()
    folder = work / f"conc-{label}"
    Workspace(folder, metadata_url=url).close()  # schema made before the clock starts
    p = [
        subprocess.Popen([sys.executable, "-c", _REGISTER, str(folder), url or "", str(f)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(procs)
    ]  # fmt: skip
    for q in p:  # every process imported, opened the workspace and connected
        assert q.stdout is not None
        assert q.stdout.readline().strip() == "ready", q.stderr.read() if q.stderr else ""
    t = time.perf_counter()
    for q in p:
        assert q.stdin is not None
        q.stdin.write("go\n")
        q.stdin.flush()
    answers = [q.stdout.readline() if q.stdout else "" for q in p]  # each prints its version when done
    conc = time.perf_counter() - t
    errors = [q.communicate(timeout=600)[1][-500:] for q in p]
    versions = sorted(int(a) for a in answers if a.strip())
    assert versions == list(range(1, procs + 1)), (versions, errors)
    return {"sequential_registrations": n, "sequential_ms_each": seq / n * 1000, "processes": procs, "concurrent_s": conc}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg-url", default=os.environ.get("MLMANAGE_TEST_POSTGRES_URL"))
    ap.add_argument("--procs", type=int, default=16)
    args = ap.parse_args()
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        out["resolve"] = bench_resolve(work)
        out["sqlite"] = bench_register(work, None, "sqlite", args.procs)
        if args.pg_url:
            import psycopg

            admin = "postgresql://" + args.pg_url.split("://", 1)[1]
            name = "bench_" + uuid.uuid4().hex[:12]
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{name}"')
            try:
                out["postgres"] = bench_register(work, args.pg_url.rsplit("/", 1)[0] + "/" + name, "pg", args.procs)
            finally:
                wsmod._dispose_all()  # no pooled connection may keep the database from being dropped
                with psycopg.connect(admin, autocommit=True) as c:
                    c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            sq, pg = out["sqlite"], out["postgres"]
            assert isinstance(sq, dict) and isinstance(pg, dict)
            out["postgres_over_sqlite"] = {
                "sequential": pg["sequential_ms_each"] / sq["sequential_ms_each"],
                "concurrent": pg["concurrent_s"] / sq["concurrent_s"],
            }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
