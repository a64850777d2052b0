"""The ``docker`` (and ``aci``) target: services as containers on a Docker Engine.

Everything goes through the docker SDK (``docker.from_env()``, so ``DOCKER_HOST`` works).
Images are built by :mod:`.docker_build` (re-exported here: :func:`build_image`,
:func:`write_docker_files`, :func:`export_tarball`).

Per service, two kinds of containers (labels ``org.mlmanage.service=<name>``,
``org.mlmanage.workspace=<workspace id>``, ``org.mlmanage.role=sandbox|app``):

* ``mlm-<name>-<ws id>``: the *sandbox*. A tiny container from the base image (python
  sleeping on ``signal.pause()``) that owns the network namespace and publishes the service
  port (host ``127.0.0.1:<port>`` -> ``5001``), with ``net.ipv4.tcp_migrate_req=1``.
* ``mlm-<name>-<ws id>-g<N>``: the scoring engine of generation N, joined to the sandbox
  (``network_mode="container:<sandbox>"``), listening on 5001 with ``SO_REUSEPORT``
  (``Settings.reuse_port``), limits ``nano_cpus`` / ``mem_limit`` / restart policy from the
  :class:`DockerDeploymentConfig`, the keys file copied in before it starts (never in the image).

``update()`` starts generation N+1 next to N on the same port (the kernel spreads new
connections over both listeners), waits until its engine reports Healthy, then stops N
gracefully: with ``tcp_migrate_req`` the connections still queued on N's socket move to
N+1's instead of being reset, so no request fails. If N+1 fails, it is removed and N keeps
serving.

``runtime`` (stored with the service): ``{"container", "sandbox", "generation", "port",
"host", "image", "workspace_id", "memory_gb"}``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import socket
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mlmanage_jupyter.core.errors import DeploymentFailedError, ValidationError, WebserviceException
from mlmanage_jupyter.core.targets.base import (
    FAILED,
    HEALTHY,
    TRANSITIONING,
    UNHEALTHY,
    DeployRequest,
    DeployResult,
    DockerDeploymentConfig,
    Target,
    TargetStatus,
    register_target,
)
from mlmanage_jupyter.core.targets.docker_build import (
    CONTAINER_UID,
    ENGINE_PORT,
    HEALTHCHECK_CMD,
    KEYS_DIR,
    KEYS_FILE,
    LABEL_PREFIX,
    RUN_DIR,
    ImageBuildError,
    base_image_for,
    build_image,
    docker_client,
    export_tarball,
    image_settings,
    write_docker_files,
)
from mlmanage_jupyter.server.config import Settings

if TYPE_CHECKING:
    import docker

__all__ = [
    "DockerTarget",
    "ImageBuildError",
    "build_image",
    "export_tarball",
    "write_docker_files",
]

#: how long update() waits for the new generation to be Healthy (seconds)
UPDATE_TIMEOUT_S = 300.0
#: restarts after which a running container is reported as crash-looping
CRASH_LOOP_RESTARTS = 3
#: health probe period used for the service containers (the Dockerfile's is slower)
HEALTH_INTERVAL_S = 2
#: where the engine writes collected model data in the container (a bind mount of the workspace's folder)
CONTAINER_MODELDATA_DIR = "/var/mlmanage/modeldata"


def _publish() -> tuple[str, str]:
    """(host ip to publish on, host name for the scoring URI): loopback for a local engine,
    all interfaces and DOCKER_HOST's host for a remote one (``tcp://host:port``)."""
    dh = os.environ.get("DOCKER_HOST") or ""
    if dh.startswith(("tcp://", "ssh://", "http://", "https://")):
        host = urlparse(dh).hostname or "127.0.0.1"
        if host not in ("127.0.0.1", "localhost"):
            return "0.0.0.0", host
    return "127.0.0.1", "127.0.0.1"


def _tar_one(name: str, data: bytes, mode: int = 0o600) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), mode, int(time.time())
        info.uid = info.gid = CONTAINER_UID
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _read_file(container: Any, path: str) -> bytes | None:
    """One file from a container's filesystem (running or not), or None."""
    import docker

    try:
        stream, _stat = container.get_archive(path)
        raw = b"".join(stream)
    except (docker.errors.NotFound, docker.errors.APIError):
        return None
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for m in tar.getmembers():
            if m.isfile():
                f = tar.extractfile(m)
                return f.read() if f else None
    return None


def _oom_kills(container: Any) -> int:
    """How many processes the kernel's OOM killer killed in the container's memory cgroup
    (cgroup v2 ``memory.events`` or v1 ``memory.oom_control``); 0 when unknown."""
    for path in ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"):
        try:
            r = container.exec_run(["cat", path], user="0")
        except Exception:  # noqa: BLE001 - not running, no cat, ...
            return 0
        if r.exit_code == 0:
            for line in r.output.decode(errors="replace").splitlines():
                k, _, v = line.partition(" ")
                if k == "oom_kill" and v.strip().isdigit():
                    return int(v)
    return 0


def _gib(v: float | None) -> str:
    return f"{v:g} GiB" if v else "no limit"


class DockerTarget(Target):
    """Runs services as containers (see the module docstring). Also serves ``compute_type="aci"``."""

    compute_type = "docker"

    def __init__(self) -> None:
        self._client: docker.DockerClient | None = None

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = docker_client()
        return self._client

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _config(req: DeployRequest) -> DockerDeploymentConfig:
        cfg = req.config
        if not isinstance(cfg, DockerDeploymentConfig):
            names = DockerDeploymentConfig.__dataclass_fields__
            cfg = DockerDeploymentConfig(**{k: v for k, v in cfg.to_dict().items() if k in names})
        cfg.validate()
        if cfg.restart_policy not in ("no", "on-failure", "always", "unless-stopped"):
            raise ValidationError(
                f"restart_policy must be 'no', 'on-failure', 'always' or 'unless-stopped', got {cfg.restart_policy!r}"
            )
        return cfg

    @staticmethod
    def _labels(name: str, wsid: str, role: str) -> dict[str, str]:
        return {f"{LABEL_PREFIX}.service": name, f"{LABEL_PREFIX}.workspace": wsid, f"{LABEL_PREFIX}.role": role}

    @staticmethod
    def engine_settings(req: DeployRequest) -> Settings:
        """``req.settings`` placed in the container: the image's paths, ``0.0.0.0:5001`` with
        SO_REUSEPORT, the copied-in keys file, collected data to the bind mount."""
        image = image_settings(req.image)
        s = req.engine.replace(
            app_root=image.app_root,
            model_dir=image.model_dir,
            host=image.host,
            port=image.port,
            run_dir=image.run_dir,
            keys_file=Path(KEYS_FILE),
            reuse_port=True,
        )
        if s.collect_model_data:
            s = s.replace(data_collection_dir=CONTAINER_MODELDATA_DIR, storage_connection_string=None)
        return s

    @staticmethod
    def _collection_volumes(req: DeployRequest) -> dict[str, dict[str, str]]:
        """With ``collect_model_data``, bind-mount the request's collected-data folder for
        this service (``<settings.data_collection_dir>/<service>``) into the container, so
        ``service.get_collected_data()`` reads what the container wrote. The folder is made
        writable for the container's non-root user. Needs a folder on this machine (the
        workspace's local artifact store) and a Docker Engine here (a bind mount); anything
        else is a ValidationError."""
        s = req.engine
        if not s.collect_model_data:
            return {}
        if not s.data_collection_dir:
            raise ValidationError(
                "collect_model_data on the docker target needs the workspace's local artifact store "
                "(this workspace collects into Azure Blob Storage); deploy locally to collect into Azure Blob Storage"
            )
        host = Path(s.data_collection_dir) / req.name
        host.mkdir(parents=True, exist_ok=True)
        host.chmod(0o777)
        return {str(host): {"bind": f"{CONTAINER_MODELDATA_DIR}/{req.name}", "mode": "rw"}}

    def _start_sandbox(self, req: DeployRequest, cfg: DockerDeploymentConfig, wsid: str, port: int | None) -> tuple[Any, int]:
        import docker

        name = f"mlm-{req.name}-{wsid}"
        self._remove_named(name, req.name, wsid)
        host_ip, _ = _publish()
        base = base_image_for(req.image)
        try:
            sandbox = self.client.containers.run(
                base,
                entrypoint=["python3", "-c", "import signal, sys; signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); signal.pause()"],
                command=[],
                name=name,
                detach=True,
                user=str(CONTAINER_UID),
                ports={f"{ENGINE_PORT}/tcp": (host_ip, port)},
                sysctls={"net.ipv4.tcp_migrate_req": "1"},
                labels=self._labels(req.name, wsid, "sandbox"),
                restart_policy={"Name": "unless-stopped"},
                mem_limit="64m",
            )
        except docker.errors.APIError as e:
            text = str(e.explanation or e)
            if "port is already allocated" in text or "address already in use" in text:
                raise ValidationError(
                    f"port {port} is already in use on the Docker host: pick another port in "
                    "DockerWebservice.deploy_configuration(port=...), or port=None for a free one"
                )
            raise WebserviceException(f"could not start the network container of service {req.name}: {text}")
        deadline = time.monotonic() + 30
        host_port = None
        while time.monotonic() < deadline:
            sandbox.reload()
            bindings = (sandbox.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{ENGINE_PORT}/tcp") or []
            if bindings and bindings[0].get("HostPort"):
                host_port = int(bindings[0]["HostPort"])
                break
            if sandbox.status == "exited":
                break
            time.sleep(0.1)
        if host_port is None:
            logs = sandbox.logs().decode(errors="replace")
            sandbox.remove(force=True)
            raise WebserviceException(f"the network container of service {req.name} did not publish its port: {logs[-2000:]}")
        return sandbox, host_port

    def _start_app(self, req: DeployRequest, cfg: DockerDeploymentConfig, tag: str, sandbox_id: str, wsid: str, gen: int) -> Any:
        import docker

        name = f"mlm-{req.name}-{wsid}-g{gen}"
        self._remove_named(name, req.name, wsid)
        restart: dict[str, Any] = {"Name": cfg.restart_policy}
        if cfg.restart_policy == "on-failure":
            restart["MaximumRetryCount"] = 10
        kwargs: dict[str, Any] = {}
        if cfg.cpu_cores:
            kwargs["nano_cpus"] = int(cfg.cpu_cores * 1e9)
        if cfg.memory_gb:
            kwargs["mem_limit"] = int(cfg.memory_gb * 1024**3)
            kwargs["memswap_limit"] = kwargs["mem_limit"]  # no swap: a model too big is OOM-killed, not slowed down
        try:
            c = self.client.containers.create(
                tag,
                name=name,
                environment=self.engine_settings(req).to_env(),
                volumes=self._collection_volumes(req),
                network_mode=f"container:{sandbox_id}",
                labels=self._labels(req.name, wsid, "app"),
                restart_policy=restart,
                healthcheck={
                    "test": ["CMD", *HEALTHCHECK_CMD],
                    "interval": HEALTH_INTERVAL_S * 10**9,
                    "timeout": 5 * 10**9,
                    "retries": 3,
                    "start_period": 300 * 10**9,
                },
                **kwargs,
            )
            c.put_archive(KEYS_DIR, _tar_one("keys.json", json.dumps(dict(req.keys)).encode()))
            c.start()
        except docker.errors.APIError as e:
            with contextlib.suppress(Exception):
                self.client.containers.get(name).remove(force=True)
            raise WebserviceException(f"could not start the container of service {req.name}: {e.explanation or e}")
        return c

    def _remove_named(self, cname: str, service: str, wsid: str) -> None:
        """Remove a leftover container of that name, only if it is ours (same labels)."""
        import docker

        try:
            c = self.client.containers.get(cname)
        except docker.errors.NotFound:
            return
        labels = c.labels or {}
        if labels.get(f"{LABEL_PREFIX}.service") == service and labels.get(f"{LABEL_PREFIX}.workspace") == wsid:
            c.remove(force=True)
        else:
            raise WebserviceException(f"a container named {cname} exists and was not created by mlmanage; remove or rename it")

    def _get(self, cid: str | None) -> Any:
        import docker

        if not cid:
            return None
        try:
            return self.client.containers.get(cid)
        except docker.errors.NotFound:
            return None

    @staticmethod
    def _result(runtime: dict[str, Any], tag: str) -> DeployResult:
        base = f"http://{runtime['host']}:{runtime['port']}"
        return DeployResult(scoring_uri=f"{base}/score", swagger_uri=f"{base}/swagger.json", runtime=runtime, docker_image=tag)

    # -- Target -------------------------------------------------------------------------------
    def preflight(self, req: DeployRequest, released_port: int | None = None) -> None:
        """The configuration valid, the engine reachable, the image built (``deploy`` then
        finds it built) and, on a local engine, a fixed port free on 127.0.0.1 (or
        ``released_port``). Raises ValidationError, WebserviceException, ImageBuildError."""
        cfg = self._config(req)
        build_image(req.image, req.progress, client=self.client, cache_dir=req.cache_dir)
        host_ip, _ = _publish()
        if cfg.port is None or cfg.port == released_port or host_ip != "127.0.0.1":
            return
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host_ip, cfg.port))
            except OSError:
                raise ValidationError(
                    f"port {cfg.port} is already in use on the Docker host: pick another port in "
                    "DockerWebservice.deploy_configuration(port=...), or port=None for a free one"
                ) from None

    def deploy(self, req: DeployRequest) -> DeployResult:
        """Build the image (layers cached), start the sandbox and generation 1. Returns at once
        (``status`` tells when it is Healthy). Raises ImageBuildError, ValidationError (port in use)."""
        cfg = self._config(req)
        tag = build_image(req.image, req.progress, client=self.client, cache_dir=req.cache_dir)
        wsid = req.workspace_id
        sandbox, port = self._start_sandbox(req, cfg, wsid, cfg.port)
        _, host = _publish()
        req.progress(f"starting {tag} as service {req.name} on {host}:{port}")
        try:
            app = self._start_app(req, cfg, tag, sandbox.id, wsid, 1)
        except BaseException:
            sandbox.remove(force=True)
            raise
        runtime = {
            "container": app.id,
            "sandbox": sandbox.id,
            "generation": 1,
            "port": port,
            "host": host,
            "image": tag,
            "workspace_id": wsid,
            "memory_gb": cfg.memory_gb,
        }
        return self._result(runtime, tag)

    def _engine_status(self, container: Any) -> dict[str, Any] | None:
        raw = _read_file(container, f"{RUN_DIR}/status.json")
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def _container_status(self, c: Any, runtime: dict[str, Any]) -> TargetStatus:
        c.reload()
        st = c.attrs.get("State") or {}
        mem = runtime.get("memory_gb")
        oom_msg = (
            f"the service ran out of memory (limit {_gib(mem)}) and the kernel killed it: "
            "deploy with a larger memory_gb, or make the model smaller"
        )
        restarts = int(c.attrs.get("RestartCount") or 0)
        status = st.get("Status")
        if st.get("OOMKilled"):
            return TargetStatus(FAILED, oom_msg)
        if status in ("exited", "dead"):
            code = st.get("ExitCode")
            if code == 137 and mem:
                return TargetStatus(FAILED, oom_msg + " (exit code 137)")
            return TargetStatus(FAILED, f"the container exited with code {code}: see get_logs()")
        if status == "restarting" or (restarts >= CRASH_LOOP_RESTARTS and status != "running"):
            return TargetStatus(UNHEALTHY, f"the container keeps crashing (restarted {restarts} times, last exit code {st.get('ExitCode')}): see get_logs()")
        if status in ("created", "paused"):
            return TargetStatus(TRANSITIONING if status == "created" else UNHEALTHY, None if status == "created" else "the container is paused")
        eng = self._engine_status(c) or {}
        estate, err = eng.get("state"), eng.get("error")
        if estate in (FAILED, UNHEALTHY) and err and "code -9" in err and _oom_kills(c):
            return TargetStatus(FAILED if estate == FAILED else UNHEALTHY, oom_msg + f"\n{err}")
        if estate == FAILED:
            return TargetStatus(FAILED, err or "init() failed: see get_logs()")
        if estate == UNHEALTHY:
            return TargetStatus(UNHEALTHY, err)
        health = (st.get("Health") or {}).get("Status")
        if estate == HEALTHY:
            if health == "unhealthy":
                last = ((st.get("Health") or {}).get("Log") or [{}])[-1]
                return TargetStatus(UNHEALTHY, f"the health check GET / fails: {str(last.get('Output', '')).strip()[-500:]}")
            if restarts >= CRASH_LOOP_RESTARTS:
                return TargetStatus(HEALTHY, None)
            return TargetStatus(HEALTHY)
        return TargetStatus(TRANSITIONING)

    def status(self, name: str, runtime: dict[str, Any]) -> TargetStatus:
        c = self._get(runtime.get("container"))
        if c is None:
            return TargetStatus(
                UNHEALTHY,
                f"the container of service {name} is gone (removed outside mlmanage, or the engine was reset): "
                "update() or redeploy the service",
            )
        sb = self._get(runtime.get("sandbox"))
        if sb is None or sb.status not in ("running", "restarting", "created"):
            return TargetStatus(UNHEALTHY, f"the network container of service {name} is gone: update() or redeploy the service")
        return self._container_status(c, runtime)

    def update(self, req: DeployRequest, runtime: dict[str, Any]) -> DeployResult:
        cfg = self._config(req)
        old = self._get(runtime.get("container"))
        sandbox = self._get(runtime.get("sandbox"))
        if old is None or sandbox is None:
            req.progress(f"service {req.name} is not running: starting it again")
            if old is not None:
                old.remove(force=True)
            if sandbox is not None:
                sandbox.remove(force=True)
            if cfg.port is None:
                cfg.port = int(runtime["port"])
            req.config = cfg
            return self.deploy(req)
        if cfg.port is not None and cfg.port != int(runtime["port"]):
            raise ValidationError(f"can't change the port of service {req.name} ({runtime['port']}) in an update; deploy a new one")
        tag = build_image(req.image, req.progress, client=self.client, cache_dir=req.cache_dir)
        gen = int(runtime.get("generation") or 1) + 1
        wsid = runtime.get("workspace_id") or req.workspace_id
        req.progress(f"starting {tag} next to the running version (generation {gen})")
        new = self._start_app(req, cfg, tag, sandbox.id, wsid, gen)
        new_rt = dict(runtime, container=new.id, generation=gen, image=tag, memory_gb=cfg.memory_gb)
        deadline = time.monotonic() + UPDATE_TIMEOUT_S
        why = f"was not Healthy within {UPDATE_TIMEOUT_S:.0f} s"
        while time.monotonic() < deadline:
            st = self._container_status(new, new_rt)
            if st.state == HEALTHY:
                break
            if st.state in (FAILED, UNHEALTHY) and st.error:
                why = f"failed: {st.error}"
                break
            time.sleep(0.2)
        else:
            st = TargetStatus(TRANSITIONING)
        if st.state != HEALTHY:
            logs = new.logs(tail=300).decode(errors="replace")
            with contextlib.suppress(Exception):
                new.remove(force=True)
            raise DeploymentFailedError(
                f"the new version of service {req.name!r} {why}; the previous version keeps serving", logs=logs
            )
        req.progress("the new version is serving; stopping the previous one (in-flight requests finish)")
        grace = int(cfg.scoring_timeout_ms / 1000 + 10)
        with contextlib.suppress(Exception):
            old.stop(timeout=grace)
        with contextlib.suppress(Exception):
            old.remove(force=True)
        return self._result(new_rt, tag)

    def _owned(self, name: str, runtime: dict[str, Any]) -> list[Any]:
        wsid = runtime.get("workspace_id")
        found = {}
        if wsid:
            for c in self.client.containers.list(
                all=True, filters={"label": [f"{LABEL_PREFIX}.service={name}", f"{LABEL_PREFIX}.workspace={wsid}"]}
            ):
                found[c.id] = c
        for key in ("container", "sandbox"):
            c = self._get(runtime.get(key))
            if c is not None:
                found[c.id] = c
        # app containers first, the network owner last
        return sorted(found.values(), key=lambda c: (c.labels or {}).get(f"{LABEL_PREFIX}.role") == "sandbox")

    def delete(self, name: str, runtime: dict[str, Any]) -> None:
        """Stop (gracefully, 10 s) and remove the service's containers; images stay (other
        services or a later deploy may use them)."""
        import docker

        for c in self._owned(name, runtime):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                if c.status == "running":
                    c.stop(timeout=10)
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True)

    def logs(self, name: str, runtime: dict[str, Any], *, tail: int | None = None) -> str:
        c = self._get(runtime.get("container"))
        if c is None:
            return ""
        return c.logs(tail=tail if tail is not None else "all").decode("utf-8", errors="replace")

    def stream_logs(self, name: str, runtime: dict[str, Any], *, stop: Callable[[], bool]) -> Iterator[str]:
        """Yield the container's log lines as they are written (after the existing ones),
        until ``stop()`` is true (checked at least every 0.25 s)."""
        c = self._get(runtime.get("container"))
        if c is None:
            return
        stream = c.logs(stream=True, follow=True)
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            pending = ""
            try:
                for chunk in stream:
                    pending += chunk.decode("utf-8", errors="replace")
                    *done, pending = pending.split("\n")
                    for line in done:
                        lines.put(line)
            except Exception:  # noqa: BLE001 - stream closed
                pass
            if pending:
                lines.put(pending)
            lines.put(None)

        t = threading.Thread(target=pump, name=f"logs-{name}", daemon=True)
        t.start()
        try:
            while not stop():
                try:
                    line = lines.get(timeout=0.25)
                except queue.Empty:
                    continue
                if line is None:
                    return
                yield line
        finally:
            with contextlib.suppress(Exception):
                stream.close()

    def set_keys(self, name: str, runtime: dict[str, Any], keys: dict[str, str]) -> None:
        """Copy a new keys file into the running container (the engine re-reads it)."""
        c = self._get(runtime.get("container"))
        if c is None:
            raise WebserviceException(f"the container of service {name} is gone: redeploy it")
        c.put_archive(KEYS_DIR, _tar_one("keys.json", json.dumps(dict(keys)).encode()))


class AciTarget(DockerTarget):
    """Azure's ACI target, run on the Docker Engine."""

    compute_type = "aci"


register_target("docker", DockerTarget)
register_target("aci", AciTarget)
