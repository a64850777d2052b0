"""``mlmanage gc``: the command-line face of the workspace's garbage collection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlmanage_jupyter.core.model import Model
from mlmanage_jupyter.core.workspace import Workspace


def test_gc_reclaims_deleted_models_and_orphan_folders(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    f = tmp_path / "model.pkl"
    f.write_bytes(b"weights" * 100)
    Model.register(ws, f, "m").delete()
    (ws.path / "images" / ".tmp-abandoned").mkdir(parents=True)
    env = dict(os.environ, MLMANAGE_WORKSPACE=str(ws.path))
    r = subprocess.run([sys.executable, "-m", "mlmanage_jupyter.cli", "gc", "-o", "json"], capture_output=True,
                       text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out == {"objects_deleted": 1, "bytes_freed": 700, "contexts_deleted": 0, "temp_deleted": 1}
    r = subprocess.run([sys.executable, "-m", "mlmanage_jupyter.cli", "gc"], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "objects_deleted: 0, bytes_freed: 0, contexts_deleted: 0, temp_deleted: 0"
