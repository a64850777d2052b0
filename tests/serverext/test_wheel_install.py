"""The built wheel is all a user needs: in a fresh venv with no Node on PATH, ``pip install``
of the wheel makes ``jupyter labextension list`` show the prebuilt extension and
``jupyter server extension list`` the enabled server extension."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_wheel_installs_both_extensions_without_node(tmp_path: Path) -> None:
    assert (REPO / "mlmanage_jupyter" / "labextension" / "package.json").is_file(), "run scripts/setup.sh: it builds the labextension"
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check", "-w", str(dist), str(REPO)],
                   check=True)  # fmt: skip
    (wheel,) = dist.glob("mlmanage_jupyter-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = [n for n in names if ".data/data/" in n]
    assert any(n.endswith("share/jupyter/labextensions/mlmanage-jupyter/package.json") for n in data), data
    assert any(n.endswith("share/jupyter/labextensions/mlmanage-jupyter/install.json") for n in data), data
    assert any("share/jupyter/labextensions/mlmanage-jupyter/static/remoteEntry." in n for n in data), data
    assert any(n.endswith("etc/jupyter/jupyter_server_config.d/mlmanage_jupyter.json") for n in data), data

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "VIRTUAL_ENV", "PYTHON"))}
    env.update(PATH=str(venv / "bin"), HOME=str(tmp_path / "home"))  # only the venv: no node, no npm
    assert shutil.which("node", path=env["PATH"]) is None and shutil.which("npm", path=env["PATH"]) is None
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel), "jupyterlab>=4"],
                   check=True, env=env)  # fmt: skip

    def run(*args: str) -> str:
        r = subprocess.run([str(venv / "bin" / "jupyter"), *args], env=env, capture_output=True, text=True, check=True)
        return re.sub(r"\x1b\[[0-9;]*m", "", r.stdout + r.stderr)  # no colours

    labext = run("labextension", "list")
    assert re.search(r"mlmanage-jupyter v0\.1\.0 enabled\s+OK \(python, mlmanage-jupyter\)", labext), labext
    serverext = run("server", "extension", "list")
    assert re.search(r"mlmanage_jupyter\.serverext enabled", serverext), serverext
    assert re.search(r"mlmanage_jupyter\.serverext\s+OK", serverext), serverext  # it imports and loads
