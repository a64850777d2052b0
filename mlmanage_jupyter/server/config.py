"""Settings of the scoring engine, parsed from environment variables (see CONTRIBUTING.md)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class ConfigError(ValueError):
    """An environment variable has a value the scoring engine cannot use."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _first(env: Mapping[str, str], *names: str, default: str | None = None) -> str | None:
    for n in names:
        v = env.get(n)
        if v:
            return v
    return default


@dataclass(frozen=True)
class Settings:
    """What one scoring engine generation runs with.

    Attributes:
        app_root: folder with the entry script's source directory (on ``sys.path``, cwd).
        entry_script: entry script path relative to ``app_root``.
        model_dir: ``AZUREML_MODEL_DIR`` (absolute) or None.
        models: ``[(name, version)]`` served (from ``MLMANAGE_MODELS``).
        service_name: service name for telemetry and logs.
        host, port: listen address.
        workers: worker processes sharing the listening socket.
        auth_enabled: require ``Authorization: Bearer <key>`` on ``/score``.
        keys_file: JSON ``{"primaryKey", "secondaryKey"}`` re-read when it changes.
        primary_key, secondary_key: keys used when there is no keys file.
        scoring_timeout_ms: ``run()`` longer than this answers 504 (ms).
        max_request_bytes: larger bodies answer 413 (bytes).
        run_dir: status file, telemetry records, metrics files.
        collect_model_data: collect inputs/predictions.
        source_directory: the source directory's folder name under ``app_root``
            (``AZUREML_SOURCE_DIRECTORY``, Azure's layout) or None.
    """

    app_root: Path
    entry_script: str
    model_dir: str | None
    models: tuple[str, ...]
    service_name: str
    host: str
    port: int
    workers: int
    auth_enabled: bool
    keys_file: Path | None
    primary_key: str | None
    secondary_key: str | None
    scoring_timeout_ms: int
    max_request_bytes: int
    run_dir: Path
    collect_model_data: bool
    source_directory: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Parse the settings; raises ConfigError naming the bad variable."""
        env = os.environ if env is None else env
        run_dir = env.get("MLMANAGE_RUN_DIR") or tempfile.mkdtemp(prefix="mlmanage-run-")
        keys_file = env.get("MLMANAGE_KEYS_FILE")
        models = tuple(m.strip() for m in (env.get("MLMANAGE_MODELS") or "").split(",") if m.strip())
        return cls(
            app_root=Path(_first(env, "MLMANAGE_APP_ROOT", "AML_APP_ROOT", default=os.getcwd()) or ".").resolve(),
            entry_script=_first(env, "MLMANAGE_ENTRY_SCRIPT", "AZUREML_ENTRY_SCRIPT", default="score.py") or "score.py",
            model_dir=_first(env, "AZUREML_MODEL_DIR", "MLMANAGE_MODEL_DIR"),
            models=models,
            service_name=env.get("MLMANAGE_SERVICE_NAME") or "local",
            host=env.get("MLMANAGE_HOST") or "127.0.0.1",
            port=_int(env, "MLMANAGE_PORT", 5001, minimum=0),
            workers=_int(env, "MLMANAGE_WORKERS", 1),
            auth_enabled=env.get("MLMANAGE_AUTH_ENABLED", "0").lower() in ("1", "true", "yes"),
            keys_file=Path(keys_file) if keys_file else None,
            primary_key=env.get("MLMANAGE_PRIMARY_KEY") or None,
            secondary_key=env.get("MLMANAGE_SECONDARY_KEY") or None,
            scoring_timeout_ms=_int(env, "MLMANAGE_SCORING_TIMEOUT_MS", 60_000),
            max_request_bytes=_int(env, "MLMANAGE_MAX_REQUEST_BYTES", 100 * 1024 * 1024),
            run_dir=Path(run_dir),
            collect_model_data=env.get("MLMANAGE_COLLECT_MODEL_DATA", "0").lower() in ("1", "true", "yes"),
            source_directory=_first(env, "MLMANAGE_SOURCE_DIRECTORY", "AZUREML_SOURCE_DIRECTORY"),
        )

    def azure_env(self) -> dict[str, str]:
        """Azure's variables as its inference server sets them, for scripts that read them:
        ``AML_APP_ROOT`` (app root), ``AZUREML_ENTRY_SCRIPT`` (relative to it),
        ``AZUREML_SOURCE_DIRECTORY`` (when there is one), ``AZUREML_MODEL_DIR``."""
        out = {"AML_APP_ROOT": str(self.app_root), "AZUREML_ENTRY_SCRIPT": self.entry_script}
        if self.source_directory:
            out["AZUREML_SOURCE_DIRECTORY"] = self.source_directory
        if self.model_dir:
            out["AZUREML_MODEL_DIR"] = self.model_dir
        return out
