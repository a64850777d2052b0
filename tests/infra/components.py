"""Test components: where they are, whether they work, and small process/HTTP helpers.

Shared by ``tests/conftest.py`` and tests (``from infra.components import require, free_port``).
Components are installed and started by ``bash scripts/setup.sh``. :func:`require` skips a
test whose component is missing, or fails it under ``MLMANAGE_REQUIRE_COMPONENTS=1`` (CI).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
BASE_IMAGE = os.environ.get("MLMANAGE_BASE_IMAGE", "local/python:3.11-bookworm")
CHROMIUM = os.environ.get("MLMANAGE_CHROMIUM", "/usr/bin/chromium")
INFRA_DIR = Path(os.environ.get("MLMANAGE_INFRA_DIR") or Path.home() / ".cache" / "mlmanage-infra")
# Azurite's documented development account (public, not a secret)
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
# the test PostgreSQL of scripts/ci/recipes.sh (start_postgres); its role may CREATE DATABASE
POSTGRES_URL = os.environ.get("MLMANAGE_TEST_POSTGRES_URL") or "postgresql+psycopg://mlmanage:mlmanage@127.0.0.1:54329/mlmanage_test"
SETUP_HINT = "run `bash scripts/setup.sh` (installs and starts every test component)"

# fixture name -> marker it implies
FIXTURE_MARKERS = {
    "docker_client": "docker",
    "base_image": "docker",
    "azurite_connection_string": "azurite",
    "blob_container": "azurite",
    "postgres_url": "postgres",
    "jupyter_lab": "browser",
    "browser_page": "browser",
    "screenshot": "browser",
    "run_notebook": "browser",
}


# ---------------------------------------------------------------------------- components
def components_required() -> bool:
    """True under ``MLMANAGE_REQUIRE_COMPONENTS=1`` (CI): a missing component is a failure."""
    return os.environ.get("MLMANAGE_REQUIRE_COMPONENTS", "") not in ("", "0", "false", "no")


def missing(message: str) -> None:
    if components_required():
        pytest.fail(f"required component missing: {message}", pytrace=False)
    pytest.skip(message)


def _check_docker() -> str | None:
    try:
        import docker
    except ImportError:
        return "the docker SDK is not installed (pip install -e '.[all,test]')"
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as e:
        return f"Docker Engine not reachable ({e.__class__.__name__}: {e}); {SETUP_HINT}"
    try:
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        return f"base image {BASE_IMAGE} (MLMANAGE_BASE_IMAGE) is missing; {SETUP_HINT}"
    finally:
        client.close()
    return None


def _check_browser() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium); {SETUP_HINT}"
    for mod in ("playwright", "jupyterlab", "ipywidgets", "ipykernel"):
        try:
            __import__(mod)
        except ImportError:
            return f"Python package {mod} is not installed (pip install -e '.[all,test]')"
    return None


def _check_kmock() -> str | None:
    for mod in ("kmock", "kubernetes"):
        try:
            __import__(mod)
        except ImportError:
            return f"Python package {mod} is not installed (pip install -e '.[all,test]')"
    return None


def azurite_url(conn: str) -> str:
    parts = dict(p.split("=", 1) for p in conn.split(";") if "=" in p)
    return parts.get("BlobEndpoint", "http://127.0.0.1:10000/devstoreaccount1").rstrip("/")


def http_answers(url: str, timeout: float = 2.0) -> bool:
    """True when something answers HTTP at ``url`` (any status)."""
    try:
        urllib.request.urlopen(url, timeout=timeout).close()
        return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def _check_azurite() -> str | None:
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING") or azurite_conn_string(10000)
    if http_answers(azurite_url(conn) + "?comp=list"):
        return None
    if azurite_bin() is not None:
        return None  # the azurite fixture starts one for the session
    return f"Azurite not reachable at {azurite_url(conn)} and not installed in {INFRA_DIR}/azurite; {SETUP_HINT}"


def _check_postgres() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "Python package psycopg is not installed (pip install -e '.[all,test]')"
    try:
        with psycopg.connect(postgres_dsn(POSTGRES_URL), connect_timeout=5) as conn:
            conn.execute("select 1")
    except psycopg.Error as e:
        return f"PostgreSQL not reachable at {POSTGRES_URL.split('@')[-1]} ({str(e).strip()}); {SETUP_HINT}"
    return None


def postgres_dsn(url: str) -> str:
    """A libpq URL (``postgresql://``) from a SQLAlchemy one (``postgresql+psycopg://``)."""
    _scheme, rest = url.split("://", 1)
    return "postgresql://" + rest


_CHECKS: dict[str, Callable[[], str | None]] = {
    "docker": _check_docker,
    "azurite": _check_azurite,
    "postgres": _check_postgres,
    "browser": _check_browser,
    "kmock": _check_kmock,
    "kubernetes": _check_kmock,
}
_check_cache: dict[str, str | None] = {}


def require(component: str) -> None:
    """Skip the calling test (fail it under ``MLMANAGE_REQUIRE_COMPONENTS=1``) unless
    ``component`` works here: ``"docker"`` (engine + base image), ``"azurite"``, ``"postgres"``, ``"browser"``
    (Chromium + JupyterLab + Playwright) or ``"kmock"`` (alias ``"kubernetes"``). The check
    runs once per session."""
    if component not in _CHECKS:
        raise ValueError(f"unknown component {component!r}: use one of {sorted(_CHECKS)}")
    if component not in _check_cache:
        _check_cache[component] = _CHECKS[component]()
    message = _check_cache[component]
    if message:
        missing(message)



def azurite_conn_string(port: int, host: str = "127.0.0.1") -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://{host}:{port}/devstoreaccount1;"
    )


def azurite_bin() -> Path | None:
    p = INFRA_DIR / "azurite" / "node_modules" / ".bin" / "azurite-blob"
    return p if os.access(p, os.X_OK) else None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen[Any] | None = None) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        if http_answers(url, timeout=2):
            return True
        time.sleep(0.2)
    return False


def stop_process_group(proc: subprocess.Popen[Any], timeout_s: float = 10) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout_s)
    except ProcessLookupError:
        pass


