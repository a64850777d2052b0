"""Telemetry of web services and collected model data, as pandas DataFrames.

Telemetry records are written by the scoring engine (``mlmanage_jupyter/server/telemetry.py``),
one per request: ``time`` (UTC), ``request_id``, ``route``, ``status``, ``latency_ms``,
``request_bytes``, ``response_bytes``, ``models``, ``service``, ``worker``. They are read

* for the ``local`` target, from the service's run folder (``runtime["run_dir"]``);
* for every other target (container, pod), over HTTP from the engine's
  ``GET /telemetry?since=`` route (with the service key when auth is on). On Kubernetes that
  route answers from the one pod the Service picked: with several replicas the records are
  those of that pod.

Collected model data (``collect_model_data=True``) is written by the engine
(``mlmanage_jupyter/server/collector.py``) into the workspace's artifact store as keyed
blobs ``modeldata/<service>/<model>/<version>/<yyyy>/<mm>/<dd>/<worker>-<seq>.jsonl`` and
read back here with ``ArtifactStore.list_blobs/read_blob``, whichever store it is (local
folder or Azure Blob Storage). :func:`data_collection_env` gives the engine's variables.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from mlmanage_jupyter.core.client import ScoringClient
from mlmanage_jupyter.core.entities.records import ServiceRecord
from mlmanage_jupyter.core.errors import ValidationError, WebserviceException
from mlmanage_jupyter.core.store.artifacts import LocalArtifactStore
from mlmanage_jupyter.core.workspace import Workspace
from mlmanage_jupyter.server.collector import read_telemetry

if TYPE_CHECKING:
    import pandas as pd

#: the blob-key prefix of collected model data in the artifact store
MODELDATA_PREFIX = "modeldata/"

TELEMETRY_COLUMNS = [
    "time",
    "request_id",
    "route",
    "status",
    "latency_ms",
    "request_bytes",
    "response_bytes",
    "models",
    "service",
    "worker",
]
COLLECTED_COLUMNS = [
    "time",
    "request_id",
    "service",
    "model",
    "model_version",
    "models",
    "worker",
    "seq",
    "input",
    "prediction",
    # records of an entry script's azureml.monitoring.ModelDataCollector (None on the engine's own)
    "designation",
    "correlation_id",
    "feature_names",
]


# ------------------------------------------------------------------ time helpers
def to_utc(value: Any, what: str = "time") -> datetime | None:
    """``None``, a datetime (naive = UTC), a ``date`` (its midnight UTC), an ISO 8601 string
    or a pandas Timestamp -> an aware UTC datetime. Raises ValidationError otherwise."""
    if value is None:
        return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            return to_utc(datetime.fromisoformat(value.replace("Z", "+00:00")), what)
        except ValueError:
            pass
    raise ValidationError(f"{what} must be a datetime, a date or an ISO 8601 string, got {value!r}")


# ------------------------------------------------------------------ telemetry
#: records read at most by one call (the newest ones): the engine's ``GET /telemetry`` cap
MAX_RECORDS = 100_000


def read_run_dir(
    run_dir: str | os.PathLike[str], since: datetime | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Telemetry records of a local run folder (every worker's files, rotated ones too),
    ``time > since``, oldest first; the newest ``limit`` (None: all those kept, which the
    engine's rotation bounds). Reads the files from their end (``server/telemetry.read_telemetry``),
    so the cost follows what is returned, not the history."""
    return read_telemetry(Path(run_dir), since, limit)


def fetch_records(base_uri: str, since: datetime | None = None, headers: dict[str, str] | None = None,
                  timeout_s: float = 30.0, limit: int | None = MAX_RECORDS) -> list[dict[str, Any]]:
    """Records from a running engine's ``GET <base_uri>/telemetry?since=&limit=`` (the newest
    ``limit``, at most :data:`MAX_RECORDS`, oldest first).

    Raises WebserviceException when the engine can't be reached or refuses (401 with a wrong key).
    """
    params: dict[str, Any] = {"since": since.isoformat()} if since else {}
    if limit is not None:
        params["limit"] = limit
    url = base_uri.rstrip("/") + "/telemetry"
    try:
        r = requests.get(url, params=params, headers=headers or {}, timeout=timeout_s)
    except requests.RequestException as e:
        raise WebserviceException(f"could not reach {url}: {e}") from e
    if not r.ok:
        raise WebserviceException(f"{url} answered {r.status_code}: {r.text[:500]}")
    return list(r.json().get("records", []))


def records_to_dataframe(records: list[dict[str, Any]], route: str | None = "/score") -> pd.DataFrame:
    """Records -> DataFrame (columns :data:`TELEMETRY_COLUMNS`, ``time`` as UTC datetime64),
    sorted by time; only ``route``'s records unless ``route`` is None."""
    import pandas as pd

    if route is not None:
        records = [r for r in records if r.get("route", "/score") == route]
    df = pd.DataFrame.from_records(records, columns=TELEMETRY_COLUMNS)
    df["time"] = pd.to_datetime(df["time"], utc=True, format="ISO8601")
    df["status"] = df["status"].astype("int64")
    df["latency_ms"] = df["latency_ms"].astype("float64")
    for c in ("request_bytes", "response_bytes"):
        df[c] = df[c].astype("int64")
    return df.sort_values("time", kind="stable").reset_index(drop=True)


def service_records(service: ServiceRecord, since: Any = None) -> list[dict[str, Any]]:
    """The service's telemetry records since ``since`` (local run folder or HTTP)."""
    since_dt = to_utc(since, "since")
    run_dir = service.runtime.get("run_dir")
    if service.compute_type == "local" and run_dir and Path(run_dir).is_dir():
        return read_run_dir(run_dir, since_dt)
    if not service.scoring_uri:
        raise WebserviceException(f"service {service.name} has no scoring_uri (state {service.state}): no telemetry")
    client = ScoringClient.for_service(service)
    return fetch_records(client.base_uri(), since_dt, client.auth_headers())


def get_telemetry(service: ServiceRecord, since: Any = None, route: str | None = "/score") -> pd.DataFrame:
    """Per-request telemetry of ``service`` as a DataFrame; see :meth:`Webservice.get_telemetry`."""
    return records_to_dataframe(service_records(service, since), route)


@dataclass
class TelemetrySummary:
    """Aggregates of telemetry records.

    Attributes:
        requests: number of requests. errors: those answered with status >= 400.
        error_rate: errors / requests (0.0 when there are none).
        p50_ms, p95_ms, p99_ms: latency percentiles in milliseconds, linear interpolation
            between records (numpy's default, ``DataFrame.quantile``); NaN without records.
        mean_ms, max_ms: mean and largest latency (ms).
        req_per_s: requests / span, the span running from the first request's start
            (``time - latency_ms``) to the last one's end (``time``), in seconds; NaN when
            the span is 0.
        start, end: that span (UTC).
    """

    requests: int
    errors: int
    error_rate: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    req_per_s: float
    start: datetime | None
    end: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{k}</th><td>{v:.4g}</td></tr>" if isinstance(v, float)
            else f"<tr><th style='text-align:left'>{k}</th><td>{v}</td></tr>"
            for k, v in self.to_dict().items()
        )
        return f"<table>{rows}</table>"


def summarize(df: pd.DataFrame) -> TelemetrySummary:
    """Summarize a telemetry DataFrame (from :func:`get_telemetry`)."""
    import pandas as pd

    n = len(df)
    nan = float("nan")
    if n == 0:
        return TelemetrySummary(0, 0, 0.0, nan, nan, nan, nan, nan, nan, None, None)
    lat = df["latency_ms"].astype("float64")
    errors = int((df["status"] >= 400).sum())
    q = lat.quantile([0.5, 0.95, 0.99])
    starts = df["time"] - pd.to_timedelta(lat, unit="ms")
    start, end = starts.min(), df["time"].max()
    span = (end - start).total_seconds()
    return TelemetrySummary(
        requests=n,
        errors=errors,
        error_rate=errors / n,
        p50_ms=float(q.loc[0.5]),
        p95_ms=float(q.loc[0.95]),
        p99_ms=float(q.loc[0.99]),
        mean_ms=float(lat.mean()),
        max_ms=float(lat.max()),
        req_per_s=n / span if span > 0 else nan,
        start=start.to_pydatetime(),
        end=end.to_pydatetime(),
    )


# ------------------------------------------------------------------ data collection
def data_collection_env(workspace: Workspace) -> dict[str, str]:
    """The scoring-engine variables that send collected data to ``workspace``'s artifact store.

    Local store: ``MLMANAGE_DATA_COLLECTION_DIR=<store root>/blobs/modeldata`` (a folder the
    engine must see: the local target's; a container needs it mounted). Azure Blob store:
    ``AZURE_STORAGE_CONNECTION_STRING``, ``MLMANAGE_DATA_COLLECTION_CONTAINER`` and
    ``MLMANAGE_DATA_COLLECTION_PREFIX=blobs/modeldata/``. Does not set
    ``MLMANAGE_COLLECT_MODEL_DATA`` (the deployment config does).
    """
    store = workspace.artifacts
    if isinstance(store, LocalArtifactStore):
        return {"MLMANAGE_DATA_COLLECTION_DIR": str(Path(store.root).resolve() / "blobs" / MODELDATA_PREFIX.rstrip("/"))}
    if getattr(store, "kind", "") == "azure_blob":
        spec = dict(workspace.config.get("artifact_store") or {})
        conn = spec.get("connection_string") or os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        if not conn:
            raise ValidationError("collect_model_data with an azure_blob store needs AZURE_STORAGE_CONNECTION_STRING")
        return {
            "AZURE_STORAGE_CONNECTION_STRING": conn,
            "MLMANAGE_DATA_COLLECTION_CONTAINER": store.container,  # type: ignore[attr-defined]
            "MLMANAGE_DATA_COLLECTION_PREFIX": "blobs/" + MODELDATA_PREFIX,
        }
    raise ValidationError(f"collect_model_data is not supported with the {store.kind!r} artifact store")


def _key_date(key: str) -> date | None:
    parts = key.split("/")
    try:
        return date(int(parts[-4]), int(parts[-3]), int(parts[-2]))
    except (IndexError, ValueError):
        return None


def _batch_no(key: str) -> int:
    try:
        return int(key.rsplit("-", 1)[1].split(".", 1)[0])
    except (IndexError, ValueError):
        return -1


def get_collected_data(
    workspace: Workspace,
    service_name: str,
    start: Any = None,
    end: Any = None,
    model: str | None = None,
) -> pd.DataFrame:
    """Collected inputs and predictions of ``service_name`` with ``start <= time < end``.

    Args:
        start, end: datetimes (naive = UTC), dates or ISO strings; None for no bound.
        model: only this model's partition (``"name"`` or ``"name:version"``).

    Returns a DataFrame with columns :data:`COLLECTED_COLUMNS` (``time`` as UTC datetime64,
    ``input``/``prediction`` as the decoded JSON), ordered by worker then ``seq`` (the order
    each worker answered). Only the day folders between ``start`` and ``end`` are read.
    """
    import pandas as pd

    start_dt, end_dt = to_utc(start, "start"), to_utc(end, "end")
    prefix = f"{MODELDATA_PREFIX}{service_name}/"
    if model:
        name, _, version = model.partition(":")
        prefix += f"{name}/" + (f"{version}/" if version else "")
    keys = [k for k in workspace.artifacts.list_blobs(prefix) if k.endswith(".jsonl")]
    if model and ":" not in model:
        keys = [k for k in keys if k.split("/")[2] == model]
    rows: list[dict[str, Any]] = []
    for key in sorted(keys, key=lambda k: (k.rsplit("/", 1)[1].rsplit("-", 1)[0], _batch_no(k), k)):
        d = _key_date(key)
        if d is not None and ((start_dt and d < start_dt.date()) or (end_dt and d > end_dt.date())):
            continue
        for line in workspace.artifacts.read_blob(key).decode("utf-8").splitlines():
            if line.strip():
                rows.append(json.loads(line))
    df = pd.DataFrame.from_records(rows, columns=COLLECTED_COLUMNS)
    df["time"] = pd.to_datetime(df["time"], utc=True, format="ISO8601")
    if start_dt is not None:
        df = df[df["time"] >= pd.Timestamp(start_dt)]
    if end_dt is not None:
        df = df[df["time"] < pd.Timestamp(end_dt)]
    return df.reset_index(drop=True)
