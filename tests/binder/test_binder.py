"""binder/ as repo2docker uses it, on the local base image (no registry here): a container
built from this repository that installs ``binder/requirements.txt``, runs ``binder/postBuild``
and then runs tutorial 01 (``notebooks/01-quickstart.ipynb``) under nbval through
``binder/start``. The packages come from wheels made on the host (``pip wheel``, from its pip
cache), PyPI for the few the image's older Python needs other versions of; the commands are
repo2docker's.

Differences from repo2docker, on purpose: root instead of the ``jovyan`` user, the base image's
venv instead of repo2docker's conda environment, and the prebuilt labextension of this
checkout (repo2docker builds it with Node in postBuild)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.notebook]

REPO = Path(__file__).resolve().parents[2]
SKIP = {".git", ".venv", "artifacts", "node_modules", ".mlmanage", ".pytest_cache", ".ruff_cache", "__pycache__", "dist", "build"}
DOCKERFILE = """FROM {base}
# the host's wheels first; PyPI for what they lack (e.g. versions for this image's Python 3.11.2)
ENV REPO_DIR=/srv/repo PIP_FIND_LINKS=/srv/wheels
COPY wheels /srv/wheels
COPY repo /srv/repo
WORKDIR /srv/repo
# repo2docker's steps for a requirements.txt + postBuild repository
RUN python -m pip install --no-cache-dir -r binder/requirements.txt
RUN chmod +x binder/postBuild && ./binder/postBuild
# the test's own runner (not part of binder/)
RUN python -m pip install --no-cache-dir nbval pytest
ENTRYPOINT ["/srv/repo/binder/start"]
"""


def _copy_repo(dest: Path) -> None:
    shutil.copytree(REPO, dest, ignore=lambda d, names: [n for n in names if n in SKIP or n.endswith(".pyc")])


def test_binder_builds_and_runs_tutorial_01(docker_client: Any, base_image: str, tmp_path: Path) -> None:
    assert (REPO / "mlmanage_jupyter" / "labextension" / "package.json").is_file(), "run scripts/setup.sh: it builds the labextension"
    ctx = tmp_path / "ctx"
    _copy_repo(ctx / "repo")
    wheels = ctx / "wheels"
    # every wheel the container's pip will ask for: binder's requirements, the package's own
    # dependencies and its build backend, the test runner
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "-w", str(wheels),
         "-r", str(REPO / "binder" / "requirements.txt"), f"{ctx / 'repo'}[kubernetes]", "nbval", "pytest",
         "hatchling>=1.18", "hatch-jupyter-builder>=0.9"],
        check=True, cwd=tmp_path,
    )  # fmt: skip
    for w in wheels.glob("mlmanage_jupyter-*.whl"):
        w.unlink()  # postBuild must install it from the clone
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base_image))
    tag = f"mlmanage-test/binder:{uuid.uuid4().hex[:8]}"
    try:
        try:
            docker_client.images.build(path=str(ctx), tag=tag, rm=True, forcerm=True)
        except Exception as e:  # docker.errors.BuildError: show the build log's errors
            log = "".join(x.get("stream", "") for x in getattr(e, "build_log", []) or []).splitlines()
            errors = [ln for ln in log if "ERROR" in ln or "error:" in ln]
            pytest.fail(f"building the binder image failed: {e}\n" + "\n".join(errors[-20:] + log[-40:]), pytrace=False)
        box = docker_client.containers.run(
            tag, ["python", "-m", "pytest", "-p", "no:cacheprovider", "--nbval-lax", "-q", "notebooks/01-quickstart.ipynb"],
            detach=True,
        )  # fmt: skip
        try:
            rc = box.wait(timeout=900)["StatusCode"]
            text = box.logs().decode(errors="replace")
        finally:
            box.remove(force=True)
        assert rc == 0, text[-6000:]
        assert re.search(r"\b\d+ passed\b", text) and not re.search(r"\b\d+ (failed|error)", text), text[-4000:]
        exts = docker_client.containers.run(tag, ["jupyter", "server", "extension", "list"], remove=True, stdout=True, stderr=True)
        assert b"mlmanage_jupyter.serverext" in exts and b"enabled" in exts
    finally:
        try:
            docker_client.images.remove(tag, force=True)
        except Exception:
            pass
