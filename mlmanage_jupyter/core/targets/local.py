"""The ``local`` target: the scoring engine as a detached child process on 127.0.0.1.

Layout per service (``<workspace>/services/<name>/``)::

    service.log        stdout + stderr of the supervisor and its workers
    run/               MLMANAGE_RUN_DIR: spec.json, keys.json (0600), status.json,
                       telemetry/<worker-pid>.jsonl, prometheus/

The engine's environment is ``req.settings`` with this service's paths (``generation_env``),
plus the listen address for the supervisor. The supervisor (``python -m mlmanage_jupyter.server``, the current interpreter) runs in its
own session (``start_new_session=True``) so the service outlives the notebook kernel.
``runtime`` (stored with the service) is ``{"pid", "port", "run_dir", "log"}``.

Workers die with their supervisor (``server/lifecycle.py``); ``delete()`` and an ``update()``
of a service whose supervisor is gone still stop every process of the service (found by
their ``MLMANAGE_RUN_DIR``, so a reused pid is never hit) and check that the port is free.
Port checks bind with SO_REUSEADDR, as the supervisor's listening socket does, so a port
whose last connections sit in TIME_WAIT (about a minute after a delete) is free.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

from mlmanage_jupyter.core.errors import DeploymentFailedError, ValidationError
from mlmanage_jupyter.core.fsutil import write_json_atomic
from mlmanage_jupyter.core.targets.base import (
    FAILED,
    HEALTHY,
    TRANSITIONING,
    UNHEALTHY,
    DeployRequest,
    DeployResult,
    LocalDeploymentConfig,
    Target,
    TargetStatus,
    register_target,
)
from mlmanage_jupyter.server.config import ENGINE_VARS, ENV_NAMES_VAR, RUN_DIR_VAR

#: how long update() waits for the new generation (seconds)
UPDATE_TIMEOUT_S = 300.0
#: how long delete() waits after SIGTERM before SIGKILL (seconds)
DELETE_GRACE_S = 20.0


#: how long stop_engine() waits for the port to be released once the processes are gone (s)
PORT_RELEASE_S = 10.0


def _bindable(port: int) -> bool:
    """True when a listening socket could take 127.0.0.1:``port`` now. Binds with
    SO_REUSEADDR, as the supervisor's ``socket.create_server`` does: connections of a previous
    server in TIME_WAIT do not hold the port, a listening socket does (socket(7))."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _check_port_free(port: int) -> None:
    if not _bindable(port):
        raise ValidationError(
            f"port {port} on 127.0.0.1 is already in use: pick another port in "
            "LocalWebservice.deploy_configuration(port=...), or port=None for a free one, "
            "or delete the service that uses it"
        )


def _engine_processes(run_dir: str | os.PathLike[str]) -> list[psutil.Process]:
    """The live scoring-engine processes (supervisor, workers, orphans of a killed
    supervisor) of the service whose run folder is ``run_dir``: ``python -m
    mlmanage_jupyter.server[.worker]`` with ``MLMANAGE_RUN_DIR`` equal to it."""
    want = Path(run_dir)
    found = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if "mlmanage_jupyter.server" not in " ".join(p.cmdline()) or p.status() == psutil.STATUS_ZOMBIE:
                continue
            rd = p.environ().get("MLMANAGE_RUN_DIR")
            if rd and Path(rd) == want:
                found.append(p)
    return found


def _port_holders(port: int) -> str:
    """``pid <n> (<command>)`` of the processes listening on ``port``, as far as visible."""
    out = []
    with contextlib.suppress(psutil.Error, OSError):
        for c in psutil.net_connections("tcp"):
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid:
                with contextlib.suppress(psutil.Error):
                    out.append(f"pid {c.pid} ({' '.join(psutil.Process(c.pid).cmdline())[:120]})")
    return ", ".join(sorted(set(out))) or "a process this user cannot see"


def stop_engine(runtime: dict[str, Any], grace_s: float = DELETE_GRACE_S) -> None:
    """Stop every process of the service of ``runtime`` and make sure its port is free.

    SIGTERM to the supervisor's process group and to each engine process of the service
    (:func:`_engine_processes`: found by run folder, so also workers a killed supervisor left
    behind), SIGKILL to what is left after ``grace_s`` seconds. When it stopped anything, it
    then waits until ``runtime["port"]`` is free and raises DeploymentFailedError naming the
    holder when it is still taken :data:`PORT_RELEASE_S` seconds later (by a process that is
    not this service's). With nothing running the port is not checked: another service may
    have it by now."""
    pid = int(runtime.get("pid") or 0)
    procs = _engine_processes(runtime["run_dir"]) if runtime.get("run_dir") else []
    group = bool(pid) and _alive(pid)
    if group:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    deadline = time.monotonic() + grace_s
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    while group and _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if group:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=10)
    if pid:
        _alive(pid)  # reaps the supervisor when it is this process's child
    port = int(runtime.get("port") or 0)
    if not port or not (group or procs):
        return
    deadline = time.monotonic() + PORT_RELEASE_S
    while not _bindable(port):
        if time.monotonic() > deadline:
            raise DeploymentFailedError(
                f"port {port} on 127.0.0.1 is still in use after the service's processes stopped: held by "
                f"{_port_holders(port)}; stop that process to use the port again"
            )
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    """True when ``pid`` runs (not a zombie) and is a scoring-engine supervisor."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our exited child
    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        return "mlmanage_jupyter.server" in " ".join(p.cmdline())
    except Exception:  # noqa: BLE001 - NoSuchProcess, AccessDenied, ...
        return False


class LocalTarget(Target):
    """Runs services as local processes (see the module docstring)."""

    compute_type = "local"

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def generation_env(req: DeployRequest, run_dir: Path, port: int) -> dict[str, str]:
        """The scoring-engine environment of one generation: ``req.settings`` placed in the
        image's build context and ``run_dir``, listening on ``127.0.0.1:port``, with
        ``exit_on_failure`` (a service whose first start fails leaves status.json saying
        Failed and releases its processes and port; rendered with ``Settings.to_env()``)."""
        ctx = Path(req.image.context_path).resolve()
        cfg = req.config
        lifecycle: dict[str, Any] = {}
        if isinstance(cfg, LocalDeploymentConfig):  # memory cap and max-requests recycling
            lifecycle = {
                "memory_gb": cfg.memory_gb,
                "max_requests": cfg.max_requests,
                "max_requests_jitter": cfg.max_requests_jitter,
            }
        return req.engine.replace(
            **lifecycle,
            app_root=ctx / "app",
            model_dir=str(ctx / req.image.model_dir_env),
            keys_file=run_dir / "keys.json",
            run_dir=run_dir,
            host="127.0.0.1",
            port=port,
            exit_on_failure=True,
        ).to_env()

    @staticmethod
    def supervisor_env(gen_env: dict[str, str], req: DeployRequest) -> dict[str, str]:
        """The supervisor's own environment: this process's, without any engine variable it
        may carry, plus the generation's engine settings but not Azure's
        ``environment_variables`` (each generation gets those from ``spec.json``, so an
        update that drops one drops it). Python's bytecode caches go to ``<run dir>/pycache``
        (``PYTHONPYCACHEPREFIX``, unless set already): the image's build context, the service's
        working directory, stays as built (``images.verify_context``)."""
        user = set(req.engine.environment_variables) | {ENV_NAMES_VAR}
        env = {k: v for k, v in os.environ.items() if k not in ENGINE_VARS}
        env.update({k: v for k, v in gen_env.items() if k not in user})
        if not env.get("PYTHONPYCACHEPREFIX") and gen_env.get(RUN_DIR_VAR):
            env["PYTHONPYCACHEPREFIX"] = str(Path(gen_env[RUN_DIR_VAR]) / "pycache")
        return env

    @staticmethod
    def _result(port: int, pid: int, run_dir: Path, log: Path) -> DeployResult:
        base = f"http://127.0.0.1:{port}"
        return DeployResult(
            scoring_uri=f"{base}/score",
            swagger_uri=f"{base}/swagger.json",
            runtime={"pid": pid, "port": port, "run_dir": str(run_dir), "log": str(log)},
        )

    @staticmethod
    def _read_status(runtime: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return json.loads((Path(runtime["run_dir"]) / "status.json").read_text())
        except (OSError, ValueError, KeyError):
            return None

    # -- Target -------------------------------------------------------------------------------
    def preflight(self, req: DeployRequest, released_port: int | None = None) -> None:
        """The configuration valid and a fixed port free (or ``released_port``); raises
        ValidationError naming what holds the port."""
        cfg = req.config
        cfg.validate()
        port = getattr(cfg, "port", None)
        if port is not None and port != released_port and not _bindable(port):
            raise ValidationError(
                f"port {port} on 127.0.0.1 is already in use (held by {_port_holders(port)}): pick another port in "
                "LocalWebservice.deploy_configuration(port=...), or port=None for a free one, "
                "or stop what holds it"
            )

    def deploy(self, req: DeployRequest) -> DeployResult:
        cfg = req.config
        if not isinstance(cfg, LocalDeploymentConfig):
            cfg = LocalDeploymentConfig(**{k: v for k, v in cfg.to_dict().items() if k in LocalDeploymentConfig.__dataclass_fields__})
        cfg.validate()
        if cfg.port is None:
            port = _free_port()
        else:
            _check_port_free(cfg.port)
            port = cfg.port
        sdir = req.service_dir
        sdir.mkdir(parents=True, exist_ok=True)
        run_dir = sdir / "run"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        log = sdir / "service.log"
        write_json_atomic(run_dir / "keys.json", dict(req.keys), mode=0o600)
        gen_env = self.generation_env(req, run_dir, port)
        write_json_atomic(run_dir / "spec.json", {"id": uuid.uuid4().hex, "env": gen_env})
        env = self.supervisor_env(gen_env, req)
        req.progress(f"starting the scoring engine on 127.0.0.1:{port} (log: {log})")
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mlmanage_jupyter.server"],
                env=env,
                cwd=str(run_dir),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self._result(port, proc.pid, run_dir, log)

    def update(self, req: DeployRequest, runtime: dict[str, Any]) -> DeployResult:
        run_dir = Path(runtime["run_dir"])
        pid = int(runtime["pid"])
        if not _alive(pid):
            req.progress("the service's process is gone: starting it again")
            stop_engine(runtime)  # workers a killed supervisor left behind would hold the port
            cfg = req.config
            if isinstance(cfg, LocalDeploymentConfig) and cfg.port is None:
                cfg.port = int(runtime["port"])
            return self.deploy(req)
        req.config.validate()
        write_json_atomic(run_dir / "keys.json", dict(req.keys), mode=0o600)
        spec_id = uuid.uuid4().hex
        write_json_atomic(run_dir / "spec.json", {"id": spec_id, "env": self.generation_env(req, run_dir, int(runtime["port"]))})
        req.progress("starting the new version next to the running one")
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + UPDATE_TIMEOUT_S
        while time.monotonic() < deadline:
            st = self._read_status(runtime) or {}
            if st.get("spec_id") == spec_id and st.get("state") == HEALTHY:
                req.progress("the new version is serving; the old one stopped")
                return self._result(int(runtime["port"]), pid, run_dir, Path(runtime["log"]))
            if st.get("last_update_spec_id") == spec_id and st.get("spec_id") != spec_id:
                err = st.get("last_update_error") or st.get("error") or "the new version failed to start"
                raise DeploymentFailedError(
                    f"the new version of service {req.name!r} failed to start; the previous version keeps serving:\n{err}",
                    logs=self.logs(req.name, runtime, tail=200),
                )
            if not _alive(pid):
                raise DeploymentFailedError(
                    f"the process of service {req.name!r} exited during the update", logs=self.logs(req.name, runtime, tail=200)
                )
            time.sleep(0.1)
        raise DeploymentFailedError(
            f"the new version of service {req.name!r} was not ready within {UPDATE_TIMEOUT_S:.0f} s",
            logs=self.logs(req.name, runtime, tail=200),
        )

    def delete(self, name: str, runtime: dict[str, Any]) -> None:
        """Stop every process of the service (:func:`stop_engine`), then remove its run
        folder; raises DeploymentFailedError when another process holds the port."""
        try:
            stop_engine(runtime)
        finally:
            if runtime.get("run_dir"):
                shutil.rmtree(runtime["run_dir"], ignore_errors=True)

    def status(self, name: str, runtime: dict[str, Any]) -> TargetStatus:
        st = self._read_status(runtime)
        alive = _alive(int(runtime.get("pid") or 0))
        if not alive:
            if st and st.get("state") == FAILED:
                return TargetStatus(FAILED, st.get("error"))
            return TargetStatus(
                UNHEALTHY,
                f"the service's process (pid {runtime.get('pid')}) is gone (stopped, or the machine restarted): "
                "update() or redeploy the service to start it again",
            )
        if st is None:
            return TargetStatus(TRANSITIONING)
        state = st.get("state")
        if state not in (TRANSITIONING, HEALTHY, UNHEALTHY, FAILED):
            return TargetStatus(UNHEALTHY, f"the service is {state}")
        return TargetStatus(state, st.get("error"))

    def logs(self, name: str, runtime: dict[str, Any], *, tail: int | None = None) -> str:
        try:
            text = Path(runtime["log"]).read_text(encoding="utf-8", errors="replace")
        except (OSError, KeyError):
            return ""
        if tail is not None:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-tail:]) if tail > 0 else ""
        return text

    def set_keys(self, name: str, runtime: dict[str, Any], keys: dict[str, str]) -> None:
        write_json_atomic(Path(runtime["run_dir"]) / "keys.json", dict(keys), mode=0o600)


register_target("local", LocalTarget)
