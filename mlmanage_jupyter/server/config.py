"""The scoring engine's environment contract: :class:`Settings`, the ONE definition of every
variable the engine reads (CONTRIBUTING.md, "Scoring engine environment").

Every deployment target renders the engine's environment from one ``Settings`` object
(``Settings.to_env()``): the local target as the child process's environment, the docker
target as the Dockerfile's ``ENV`` and the container's environment, the kubernetes target
as the Deployment's ``env`` list. The engine parses it back with ``Settings.from_env()``;
``Settings.from_env(s.to_env()) == s`` for every valid ``s``.

``environment_variables`` are Azure ML's ``Environment.environment_variables``: passed to
the scoring process verbatim, next to the engine's own variables (whose names they must not
use); their names travel in ``MLMANAGE_ENVIRONMENT_VARIABLES`` (a JSON list) so the round
trip is exact.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting (or the environment variable it comes from) has a value the engine cannot use."""


#: every variable of the contract, by Settings field (both names when Azure has its own)
APP_ROOT_VARS = ("MLMANAGE_APP_ROOT", "AML_APP_ROOT")
ENTRY_SCRIPT_VARS = ("MLMANAGE_ENTRY_SCRIPT", "AZUREML_ENTRY_SCRIPT")
SOURCE_DIRECTORY_VARS = ("MLMANAGE_SOURCE_DIRECTORY", "AZUREML_SOURCE_DIRECTORY")
MODEL_DIR_VARS = ("AZUREML_MODEL_DIR", "MLMANAGE_MODEL_DIR")
MODELS_VAR = "MLMANAGE_MODELS"
SERVICE_NAME_VAR = "MLMANAGE_SERVICE_NAME"
HOST_VAR = "MLMANAGE_HOST"
PORT_VAR = "MLMANAGE_PORT"
WORKERS_VAR = "MLMANAGE_WORKERS"
AUTH_ENABLED_VAR = "MLMANAGE_AUTH_ENABLED"
TOKEN_AUTH_ENABLED_VAR = "MLMANAGE_TOKEN_AUTH_ENABLED"
KEYS_FILE_VAR = "MLMANAGE_KEYS_FILE"
PRIMARY_KEY_VAR = "MLMANAGE_PRIMARY_KEY"
SECONDARY_KEY_VAR = "MLMANAGE_SECONDARY_KEY"
SCORING_TIMEOUT_VAR = "MLMANAGE_SCORING_TIMEOUT_MS"
MAX_REQUEST_BYTES_VAR = "MLMANAGE_MAX_REQUEST_BYTES"
RUN_DIR_VAR = "MLMANAGE_RUN_DIR"
COLLECT_VAR = "MLMANAGE_COLLECT_MODEL_DATA"
DC_DIR_VAR = "MLMANAGE_DATA_COLLECTION_DIR"
DC_CONNECTION_VAR = "AZURE_STORAGE_CONNECTION_STRING"
DC_CONTAINER_VAR = "MLMANAGE_DATA_COLLECTION_CONTAINER"
DC_PREFIX_VAR = "MLMANAGE_DATA_COLLECTION_PREFIX"
DC_FLUSH_VAR = "MLMANAGE_DATA_COLLECTION_FLUSH_MS"
DC_BATCH_VAR = "MLMANAGE_DATA_COLLECTION_BATCH"
DC_MAX_BUFFER_VAR = "MLMANAGE_DATA_COLLECTION_MAX_BUFFER"
REUSEPORT_VAR = "MLMANAGE_REUSEPORT"
INIT_TIMEOUT_VAR = "MLMANAGE_INIT_TIMEOUT_S"
ENV_NAMES_VAR = "MLMANAGE_ENVIRONMENT_VARIABLES"
MAX_BATCH_SIZE_VAR = "MLMANAGE_MAX_BATCH_SIZE"
MAX_LATENCY_VAR = "MLMANAGE_MAX_LATENCY_MS"
EXIT_ON_FAILURE_VAR = "MLMANAGE_EXIT_ON_FAILURE"
TELEMETRY_MAX_BYTES_VAR = "MLMANAGE_TELEMETRY_MAX_BYTES"
TELEMETRY_MAX_FILES_VAR = "MLMANAGE_TELEMETRY_MAX_FILES"
#: HTTP request-head bounds (gunicorn's option names and defaults; server/http_limits.py)
LIMIT_FIELDS_VAR = "MLMANAGE_LIMIT_REQUEST_FIELDS"
LIMIT_FIELD_SIZE_VAR = "MLMANAGE_LIMIT_REQUEST_FIELD_SIZE"
LIMIT_LINE_VAR = "MLMANAGE_LIMIT_REQUEST_LINE"
MAX_REQUESTS_VAR = "MLMANAGE_MAX_REQUESTS"
MAX_REQUESTS_JITTER_VAR = "MLMANAGE_MAX_REQUESTS_JITTER"
MEMORY_GB_VAR = "MLMANAGE_MEMORY_GB"
INLINE_RUN_VAR = "MLMANAGE_INLINE_RUN_MS"

#: names ``environment_variables`` may not use: the engine's own
ENGINE_VARS = frozenset(
    {
        *APP_ROOT_VARS,
        *ENTRY_SCRIPT_VARS,
        *SOURCE_DIRECTORY_VARS,
        *MODEL_DIR_VARS,
        MODELS_VAR,
        SERVICE_NAME_VAR,
        HOST_VAR,
        PORT_VAR,
        WORKERS_VAR,
        AUTH_ENABLED_VAR,
        TOKEN_AUTH_ENABLED_VAR,
        KEYS_FILE_VAR,
        PRIMARY_KEY_VAR,
        SECONDARY_KEY_VAR,
        SCORING_TIMEOUT_VAR,
        MAX_REQUEST_BYTES_VAR,
        RUN_DIR_VAR,
        COLLECT_VAR,
        DC_DIR_VAR,
        DC_CONNECTION_VAR,
        DC_CONTAINER_VAR,
        DC_PREFIX_VAR,
        DC_FLUSH_VAR,
        DC_BATCH_VAR,
        DC_MAX_BUFFER_VAR,
        REUSEPORT_VAR,
        INIT_TIMEOUT_VAR,
        ENV_NAMES_VAR,
        MAX_BATCH_SIZE_VAR,
        MAX_LATENCY_VAR,
        EXIT_ON_FAILURE_VAR,
        TELEMETRY_MAX_BYTES_VAR,
        TELEMETRY_MAX_FILES_VAR,
        LIMIT_FIELDS_VAR,
        LIMIT_FIELD_SIZE_VAR,
        LIMIT_LINE_VAR,
        MAX_REQUESTS_VAR,
        MAX_REQUESTS_JITTER_VAR,
        MEMORY_GB_VAR,
        INLINE_RUN_VAR,
        # set for each worker by the supervisor
        "MLMANAGE_SUPERVISOR_PID",
        "MLMANAGE_LISTEN_FD",
        "MLMANAGE_WORKER_STATUS_FD",
        "MLMANAGE_FAILURE_FILE",
    }
)

#: the engine's tuning knobs (no deployment-config field): the environment of the process that
#: deploys a service passes them on (:func:`tuning_env`)
TUNING_VARS = (
    DC_FLUSH_VAR,
    DC_BATCH_VAR,
    DC_MAX_BUFFER_VAR,
    INIT_TIMEOUT_VAR,
    TELEMETRY_MAX_BYTES_VAR,
    TELEMETRY_MAX_FILES_VAR,
    LIMIT_FIELDS_VAR,
    LIMIT_FIELD_SIZE_VAR,
    LIMIT_LINE_VAR,
    INLINE_RUN_VAR,
)

_TRUE = ("1", "true", "yes")


def tuning_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The :data:`TUNING_VARS` set in ``env`` (default ``os.environ``), to apply with
    ``Settings.update_from_env``: data-collection batching and the ``init()`` bound."""
    env = os.environ if env is None else env
    return {k: env[k] for k in TUNING_VARS if env.get(k)}
DEFAULT_PREFIX = "blobs/modeldata/"


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value > 0:
        raise ConfigError(f"{name} must be > 0, got {raw}")
    return value


def _first(env: Mapping[str, str], *names: str, default: str | None = None) -> str | None:
    for n in names:
        v = env.get(n)
        if v:
            return v
    return default


def _bool(env: Mapping[str, str], name: str) -> bool:
    return (env.get(name) or "0").lower() in _TRUE


def _flag(v: bool) -> str:
    return "1" if v else "0"


@dataclass(frozen=True)
class Settings:
    """What one scoring engine generation runs with. Build it from values (the constructor:
    every field but ``app_root`` has the engine's default) or from the environment
    (:meth:`from_env`); render it with :meth:`to_env`. Invalid values raise ConfigError
    naming the field.

    Attributes:
        app_root: folder with the entry script's source directory (on ``sys.path``, cwd);
            ``MLMANAGE_APP_ROOT`` / ``AML_APP_ROOT``.
        entry_script: entry script path relative to ``app_root``;
            ``MLMANAGE_ENTRY_SCRIPT`` / ``AZUREML_ENTRY_SCRIPT``.
        source_directory: the source directory's folder name under ``app_root`` (Azure's
            layout; ``MLMANAGE_SOURCE_DIRECTORY`` / ``AZUREML_SOURCE_DIRECTORY``) or None.
        model_dir: ``AZUREML_MODEL_DIR`` (= ``MLMANAGE_MODEL_DIR``, absolute) or None.
        models: ``("name:version", ...)`` served (``MLMANAGE_MODELS``, comma separated).
        service_name: service name for telemetry and logs.
        host, port: listen address.
        workers: worker processes sharing the listening socket (>= 1).
        auth_enabled: require ``Authorization: Bearer <key>`` on ``/score``.
        token_auth_enabled: require ``Authorization: Bearer <token>`` on ``/score``, a token
            signed with the keys file's ``tokenSecret`` for this ``service_name``
            (``server/auth.py``); not together with ``auth_enabled`` (Azure's rule).
        keys_file: JSON ``{"primaryKey", "secondaryKey", "tokenSecret"}`` re-read when it changes.
        primary_key, secondary_key: keys used when there is no keys file.
        scoring_timeout_ms: ``run()`` longer than this answers 504 (ms, >= 1).
        max_request_bytes: larger bodies answer 413 (bytes, >= 1).
        run_dir: status file, telemetry records, metrics files; None in a request that a
            target completes (``from_env`` makes a temporary folder when it is unset).
        collect_model_data: collect inputs/predictions (``server/collector.py``).
        data_collection_dir: folder receiving collected data.
        storage_connection_string, data_collection_container, data_collection_prefix: Azure
            Blob Storage for collected data (used when there is no ``data_collection_dir``).
        data_collection_flush_ms, data_collection_batch, data_collection_max_buffer: write a
            batch every N ms / at N records; at most N records buffered.
        reuse_port: bind with SO_REUSEPORT (the docker target's shared-port swap).
        init_timeout_s: bound on ``init()`` (seconds).
        environment_variables: Azure's ``Environment.environment_variables``, given to the
            scoring process verbatim (str -> str; not the engine's own names).
        max_batch_size: rows merged into one ``run()`` by micro-batching
            (``server/batching.py``); 1 = off (the default).
        max_latency_ms: with batching, how long an idle worker waits for company (ms, >= 0).
        exit_on_failure: when the first generation cannot start (``init()`` raises, bad
            entry script), the supervisor writes ``Failed`` with the error to status.json and
            exits, releasing its workers and the port (the local target); False keeps a
            failure process answering 503 with the error on the port (docker, kubernetes:
            the container stays up so its logs and health can be read).
        telemetry_max_bytes: a worker's telemetry file is rotated at this size (bytes, >= 4096;
            default 64 MiB). telemetry_max_files: rotated telemetry files kept (>= 1, default
            4); older ones are deleted (``server/telemetry.py``).
        limit_request_fields, limit_request_field_size, limit_request_line: bounds on a
            request's head, gunicorn's options and defaults (Azure's inference server runs on
            gunicorn): at most 100 header fields of at most 8190 bytes each (name + value), a
            request target (URL) of at most 4094 bytes; beyond them the engine answers 431 /
            414 JSON before any per-header work (``server/http_limits.py``).
        max_requests: a worker is replaced (gracefully: the new one serves before the old one
            drains) after answering this many requests, every route counted; 0 = never
            (gunicorn's ``max_requests``; ``server/lifecycle.py``).
        max_requests_jitter: a random 0..N added to ``max_requests`` per worker, so workers
            are not all replaced at once (gunicorn's ``max_requests_jitter``).
        memory_gb: the service's memory cap in GiB (Azure's ``memory_gb`` name): the
            supervisor replaces, gracefully, a worker whose resident set size passes
            ``memory_gb / workers`` GiB (checked every second); None = no cap.
        inline_run_ms: a ``run()`` whose calls are shorter than this (ms) and CPU-bound is
            called on the worker's event loop instead of a run thread, once 32 calls in a row
            showed it (``server/runner.py``); 0 = always in run threads (>= 0, default 10).
    """

    app_root: Path
    entry_script: str = "score.py"
    source_directory: str | None = None
    model_dir: str | None = None
    models: tuple[str, ...] = ()
    service_name: str = "local"
    host: str = "127.0.0.1"
    port: int = 5001
    workers: int = 1
    auth_enabled: bool = False
    token_auth_enabled: bool = False
    keys_file: Path | None = None
    primary_key: str | None = None
    secondary_key: str | None = None
    scoring_timeout_ms: int = 60_000
    max_request_bytes: int = 100 * 1024 * 1024
    run_dir: Path | None = None
    collect_model_data: bool = False
    data_collection_dir: str | None = None
    storage_connection_string: str | None = None
    data_collection_container: str | None = None
    data_collection_prefix: str = DEFAULT_PREFIX
    data_collection_flush_ms: int = 1000
    data_collection_batch: int = 1000
    data_collection_max_buffer: int = 100_000
    reuse_port: bool = False
    init_timeout_s: float = 600.0
    environment_variables: Mapping[str, str] = field(default_factory=dict)
    max_batch_size: int = 1
    max_latency_ms: int = 2
    exit_on_failure: bool = False
    telemetry_max_bytes: int = 64 * 1024 * 1024
    telemetry_max_files: int = 4
    limit_request_fields: int = 100
    limit_request_field_size: int = 8190
    limit_request_line: int = 4094
    max_requests: int = 0
    max_requests_jitter: int = 0
    memory_gb: float | None = None
    inline_run_ms: int = 10

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "app_root", Path(self.app_root))
        if self.keys_file is not None:
            set_(self, "keys_file", Path(self.keys_file))
        if self.run_dir is not None:
            set_(self, "run_dir", Path(self.run_dir))
        set_(self, "models", tuple(self.models))
        if self.auth_enabled and self.token_auth_enabled:
            raise ConfigError("Invalid configuration, auth_enabled and token_auth_enabled cannot both be true.")
        for name, minimum in (
            ("port", 0),
            ("workers", 1),
            ("scoring_timeout_ms", 1),
            ("max_request_bytes", 1),
            ("data_collection_flush_ms", 1),
            ("data_collection_batch", 1),
            ("data_collection_max_buffer", 1),
            ("max_batch_size", 1),
            ("max_latency_ms", 0),
            ("telemetry_max_bytes", 4096),
            ("telemetry_max_files", 1),
            ("limit_request_fields", 1),
            ("limit_request_field_size", 1),
            ("limit_request_line", 1),
            ("max_requests", 0),
            ("max_requests_jitter", 0),
            ("inline_run_ms", 0),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                raise ConfigError(f"{name} must be an integer >= {minimum}, got {v!r}")
        if not isinstance(self.init_timeout_s, (int, float)) or not self.init_timeout_s > 0:
            raise ConfigError(f"init_timeout_s must be a number > 0, got {self.init_timeout_s!r}")
        if self.memory_gb is not None and (
            isinstance(self.memory_gb, bool) or not isinstance(self.memory_gb, (int, float)) or not self.memory_gb > 0
        ):
            raise ConfigError(f"memory_gb must be a number of GiB > 0 or None, got {self.memory_gb!r}")
        for m in self.models:
            if not isinstance(m, str) or "," in m or not m.strip() or m != m.strip():
                raise ConfigError(f"models must be 'name:version' strings without commas, got {m!r}")
        env = dict(self.environment_variables or {})
        for k, v in env.items():
            if not isinstance(k, str) or not k or "=" in k or "\0" in k:
                raise ConfigError(f"environment_variables: {k!r} is not a valid variable name")
            if not isinstance(v, str):
                raise ConfigError(f"environment_variables[{k!r}] must be a string, got {type(v).__name__}")
            if k in ENGINE_VARS:
                raise ConfigError(
                    f"environment_variables[{k!r}]: {k} is the scoring engine's own variable; "
                    "set it through the deployment configuration, or rename the variable"
                )
        set_(self, "environment_variables", env)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (validated like the constructor)."""
        return dataclasses.replace(self, **changes)

    # -- rendering ---------------------------------------------------------------------------
    def to_env(self) -> dict[str, str]:
        """The environment variables of these settings (``from_env``'s exact inverse).

        Azure's ``environment_variables`` come first, then the engine's variables; a value
        that equals "unset" (None) is left out.
        """
        env: dict[str, str] = dict(self.environment_variables)
        if env:
            env[ENV_NAMES_VAR] = json.dumps(sorted(env))

        def put(names: tuple[str, ...] | str, value: Any) -> None:
            if value is None:
                return
            for n in (names,) if isinstance(names, str) else names:
                env[n] = str(value)

        put(APP_ROOT_VARS, self.app_root)
        put(ENTRY_SCRIPT_VARS, self.entry_script)
        put(SOURCE_DIRECTORY_VARS, self.source_directory)
        put(MODEL_DIR_VARS, self.model_dir)
        put(MODELS_VAR, ",".join(self.models))
        put(SERVICE_NAME_VAR, self.service_name)
        put(HOST_VAR, self.host)
        put(PORT_VAR, self.port)
        put(WORKERS_VAR, self.workers)
        put(AUTH_ENABLED_VAR, _flag(self.auth_enabled))
        put(TOKEN_AUTH_ENABLED_VAR, _flag(self.token_auth_enabled))
        put(KEYS_FILE_VAR, self.keys_file)
        put(PRIMARY_KEY_VAR, self.primary_key)
        put(SECONDARY_KEY_VAR, self.secondary_key)
        put(SCORING_TIMEOUT_VAR, self.scoring_timeout_ms)
        put(MAX_REQUEST_BYTES_VAR, self.max_request_bytes)
        put(RUN_DIR_VAR, self.run_dir)
        put(COLLECT_VAR, _flag(self.collect_model_data))
        put(DC_DIR_VAR, self.data_collection_dir)
        put(DC_CONNECTION_VAR, self.storage_connection_string)
        put(DC_CONTAINER_VAR, self.data_collection_container)
        put(DC_PREFIX_VAR, self.data_collection_prefix)
        put(DC_FLUSH_VAR, self.data_collection_flush_ms)
        put(DC_BATCH_VAR, self.data_collection_batch)
        put(DC_MAX_BUFFER_VAR, self.data_collection_max_buffer)
        put(REUSEPORT_VAR, _flag(self.reuse_port))
        put(INIT_TIMEOUT_VAR, repr(float(self.init_timeout_s)))
        put(MAX_BATCH_SIZE_VAR, self.max_batch_size)
        put(MAX_LATENCY_VAR, self.max_latency_ms)
        put(EXIT_ON_FAILURE_VAR, _flag(self.exit_on_failure))
        put(TELEMETRY_MAX_BYTES_VAR, self.telemetry_max_bytes)
        put(TELEMETRY_MAX_FILES_VAR, self.telemetry_max_files)
        put(LIMIT_FIELDS_VAR, self.limit_request_fields)
        put(LIMIT_FIELD_SIZE_VAR, self.limit_request_field_size)
        put(LIMIT_LINE_VAR, self.limit_request_line)
        put(MAX_REQUESTS_VAR, self.max_requests)
        put(MAX_REQUESTS_JITTER_VAR, self.max_requests_jitter)
        put(INLINE_RUN_VAR, self.inline_run_ms)
        put(MEMORY_GB_VAR, None if self.memory_gb is None else repr(float(self.memory_gb)))
        return env

    # -- parsing -----------------------------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Parse the settings from ``env`` (default ``os.environ``).

        Raises ConfigError naming the bad variable. ``environment_variables`` are the
        variables named in ``MLMANAGE_ENVIRONMENT_VARIABLES`` (those present in ``env``).
        ``MLMANAGE_RUN_DIR`` unset makes a new temporary folder.
        """
        env = os.environ if env is None else env
        return cls._parse(env, make_run_dir=True)

    def update_from_env(self, env: Mapping[str, str]) -> Settings:
        """These settings with the variables of ``env`` (names as in :meth:`to_env`) applied
        on top, e.g. the data-collection destination of a workspace. Raises ConfigError."""
        merged = self.to_env()
        merged.update(env)
        return self._parse(merged, make_run_dir=False)

    @classmethod
    def _parse(cls, env: Mapping[str, str], *, make_run_dir: bool) -> Settings:
        run_dir = env.get(RUN_DIR_VAR) or (tempfile.mkdtemp(prefix="mlmanage-run-") if make_run_dir else None)
        keys_file = env.get(KEYS_FILE_VAR)
        models = tuple(m.strip() for m in (env.get(MODELS_VAR) or "").split(",") if m.strip())
        names_raw = env.get(ENV_NAMES_VAR) or "[]"
        try:
            names = json.loads(names_raw)
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ValueError
        except ValueError:
            raise ConfigError(f"{ENV_NAMES_VAR} must be a JSON list of variable names, got {names_raw!r}") from None
        try:
            return cls(
                app_root=Path(os.path.abspath(_first(env, *APP_ROOT_VARS) or os.getcwd())),
                entry_script=_first(env, *ENTRY_SCRIPT_VARS, default="score.py") or "score.py",
                source_directory=_first(env, *SOURCE_DIRECTORY_VARS),
                model_dir=_first(env, *MODEL_DIR_VARS),
                models=models,
                service_name=env.get(SERVICE_NAME_VAR) or "local",
                host=env.get(HOST_VAR) or "127.0.0.1",
                port=_int(env, PORT_VAR, 5001, minimum=0),
                workers=_int(env, WORKERS_VAR, 1),
                auth_enabled=_bool(env, AUTH_ENABLED_VAR),
                token_auth_enabled=_bool(env, TOKEN_AUTH_ENABLED_VAR),
                keys_file=Path(keys_file) if keys_file else None,
                primary_key=env.get(PRIMARY_KEY_VAR) or None,
                secondary_key=env.get(SECONDARY_KEY_VAR) or None,
                scoring_timeout_ms=_int(env, SCORING_TIMEOUT_VAR, 60_000),
                max_request_bytes=_int(env, MAX_REQUEST_BYTES_VAR, 100 * 1024 * 1024),
                run_dir=Path(run_dir) if run_dir else None,
                collect_model_data=_bool(env, COLLECT_VAR),
                data_collection_dir=env.get(DC_DIR_VAR) or None,
                storage_connection_string=env.get(DC_CONNECTION_VAR) or None,
                data_collection_container=env.get(DC_CONTAINER_VAR) or None,
                data_collection_prefix=env.get(DC_PREFIX_VAR) or DEFAULT_PREFIX,
                data_collection_flush_ms=_int(env, DC_FLUSH_VAR, 1000),
                data_collection_batch=_int(env, DC_BATCH_VAR, 1000),
                data_collection_max_buffer=_int(env, DC_MAX_BUFFER_VAR, 100_000),
                reuse_port=_bool(env, REUSEPORT_VAR),
                init_timeout_s=_float(env, INIT_TIMEOUT_VAR, 600.0),
                environment_variables={n: env[n] for n in names if n in env},
                max_batch_size=_int(env, MAX_BATCH_SIZE_VAR, 1),
                max_latency_ms=_int(env, MAX_LATENCY_VAR, 2, minimum=0),
                exit_on_failure=_bool(env, EXIT_ON_FAILURE_VAR),
                telemetry_max_bytes=_int(env, TELEMETRY_MAX_BYTES_VAR, 64 * 1024 * 1024, minimum=4096),
                telemetry_max_files=_int(env, TELEMETRY_MAX_FILES_VAR, 4),
                limit_request_fields=_int(env, LIMIT_FIELDS_VAR, 100),
                limit_request_field_size=_int(env, LIMIT_FIELD_SIZE_VAR, 8190),
                limit_request_line=_int(env, LIMIT_LINE_VAR, 4094),
                max_requests=_int(env, MAX_REQUESTS_VAR, 0, minimum=0),
                max_requests_jitter=_int(env, MAX_REQUESTS_JITTER_VAR, 0, minimum=0),
                memory_gb=_float(env, MEMORY_GB_VAR, None) if env.get(MEMORY_GB_VAR) else None,
                inline_run_ms=_int(env, INLINE_RUN_VAR, 10, minimum=0),
            )
        except ConfigError as e:
            raise ConfigError(f"{e} (from the environment)") from None
