"""Model data collection (inputs and predictions) and the ``GET /telemetry`` reader.

Data collection is opt-in (``MLMANAGE_COLLECT_MODEL_DATA=1``, set from the deployment's
``collect_model_data=True``, Azure's parameter). Each worker keeps a bounded in-memory
buffer; the request path only appends ``(time, request_id, body, answer)`` to it (no JSON
parsing, no I/O). A background thread writes the buffer in batches of JSON Lines, one new
file per batch, partitioned like Azure's model data::

    <service>/<model>/<version>/<yyyy>/<mm>/<dd>/<worker>-<seq>.jsonl

``<worker>`` is ``<pid>x<8 hex>`` (unique per worker start, also across containers and
pods whose pids repeat); ``<seq>`` is the batch number in that worker, 6 digits from
``000000``; the date is the UTC date of the batch's first record. With several models the
partition is the first one of ``MLMANAGE_MODELS`` (every record lists all of them).

One line per request answered 2xx by ``/score``::

    {"time": ISO 8601 UTC, "request_id": str, "service": str, "model": str,
     "model_version": str, "models": ["name:version", ...], "worker": str, "seq": int,
     "input": <the request's JSON>, "prediction": <the answer's JSON>}

``seq`` numbers the records of one worker from 0, so reading a worker's files in order
gives its records in the order they were answered.

Where the files go (see CONTRIBUTING.md):

* ``MLMANAGE_DATA_COLLECTION_DIR``: a local folder (the local target passes
  ``<workspace>/artifacts/blobs/modeldata``, the local artifact store's blob folder); files
  are written under a temporary name and renamed, so readers never see half a batch;
* otherwise ``AZURE_STORAGE_CONNECTION_STRING`` + ``MLMANAGE_DATA_COLLECTION_CONTAINER``:
  Azure Blob Storage through ``azure-storage-blob`` (one Put Blob per batch), names prefixed
  with ``MLMANAGE_DATA_COLLECTION_PREFIX`` (default ``blobs/modeldata/``: where the
  workspace's ``AzureBlobArtifactStore`` keeps the keyed blob ``modeldata/...``).

Durability: a batch is written every ``MLMANAGE_DATA_COLLECTION_FLUSH_MS`` (default 1000 ms)
or as soon as ``MLMANAGE_DATA_COLLECTION_BATCH`` records (default 1000) are waiting, and at
shutdown (the app's lifespan end, after uvicorn's graceful shutdown let in-flight requests
finish): **a clean stop loses nothing; a crash (SIGKILL, OOM) loses at most the records
not yet written, i.e. about one flush interval.** A batch that fails to upload is retried
at the next flush. The buffer holds at most ``MLMANAGE_DATA_COLLECTION_MAX_BUFFER`` records
(default 100000): beyond that new records are dropped (never blocking scoring) and counted
in the Prometheus counter ``mlmanage_collected_dropped_total`` and in the log.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from mlmanage_jupyter.server.jsonio import json_dumps as dumps
from mlmanage_jupyter.server.telemetry import read_telemetry, utc_iso

log = logging.getLogger("mlmanage.server.collector")

__all__ = ["ModelDataCollector", "ScriptDataCollector", "parse_since", "read_telemetry", "stop_script_collectors"]

COLLECTED = Counter("mlmanage_collected_records", "Model data records written by data collection")
DROPPED = Counter("mlmanage_collected_dropped", "Model data records dropped because the buffer was full")

DEFAULT_PREFIX = "blobs/modeldata/"
_SAFE = re.compile(r"[^A-Za-z0-9._=-]")


def _safe(segment: str) -> str:
    return _SAFE.sub("_", segment) or "_"


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}")
    if v < 1:
        raise ValueError(f"{name} must be >= 1, got {v}")
    return v


def _one_line(data: bytes) -> bytes | None:
    """JSON text known to be valid (the app parsed it) on one line, to splice into a record
    as is (no parse and re-serialize); None when it cannot be (UTF-16/32, empty)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\x00" in data or not data.strip():
        return None
    # raw CR/LF are only whitespace in valid JSON (inside strings they must be escaped)
    return data.replace(b"\r", b" ").replace(b"\n", b" ")


def _decode(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return data.decode("utf-8", errors="replace")


class _Sink:
    def write(self, key: str, data: bytes) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError


class _FolderSink(_Sink):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def write(self, key: str, data: bytes) -> None:
        p = self.root / key
        p.parent.mkdir(parents=True, exist_ok=True)
        # ".partial-" is the prefix the local artifact store's list_blobs() skips
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".partial-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, p)

    def describe(self) -> str:
        return str(self.root)


class _BlobSink(_Sink):
    def __init__(self, connection_string: str, container: str, prefix: str) -> None:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import BlobServiceClient

        self.prefix = prefix
        svc = BlobServiceClient.from_connection_string(connection_string, connection_timeout=10, retry_total=3)
        self.container = svc.get_container_client(container)
        try:
            self.container.create_container()
        except ResourceExistsError:
            pass

    def write(self, key: str, data: bytes) -> None:
        self.container.upload_blob(self.prefix + key, data, overwrite=True)

    def describe(self) -> str:
        return f"{self.container.url}/{self.prefix}"


def collection_enabled(env: Mapping[str, str] | None = None) -> bool:
    """``MLMANAGE_COLLECT_MODEL_DATA`` is on (the deployment's ``collect_model_data=True``)."""
    env = os.environ if env is None else env
    return env.get("MLMANAGE_COLLECT_MODEL_DATA", "0").lower() in ("1", "true", "yes")


def sink_from_env(env: Mapping[str, str] | None = None) -> _Sink | None:
    """Where collected data goes (module docstring), or None when collection is off.

    Raises ValueError naming the variables when collection is on but has nowhere to write.
    """
    env = os.environ if env is None else env
    if not collection_enabled(env):
        return None
    folder = env.get("MLMANAGE_DATA_COLLECTION_DIR")
    conn = env.get("AZURE_STORAGE_CONNECTION_STRING")
    container = env.get("MLMANAGE_DATA_COLLECTION_CONTAINER")
    if folder:
        return _FolderSink(Path(folder))
    if conn and container:
        return _BlobSink(conn, container, env.get("MLMANAGE_DATA_COLLECTION_PREFIX", DEFAULT_PREFIX))
    if env.get("MLMANAGE_RUN_DIR"):
        return _FolderSink(Path(env["MLMANAGE_RUN_DIR"]) / "modeldata")
    raise ValueError(
        "MLMANAGE_COLLECT_MODEL_DATA=1 needs MLMANAGE_DATA_COLLECTION_DIR, or "
        "AZURE_STORAGE_CONNECTION_STRING and MLMANAGE_DATA_COLLECTION_CONTAINER"
    )


def batching_from_env(env: Mapping[str, str]) -> dict[str, int]:
    """``batch``, ``flush_ms``, ``max_buffer`` keyword arguments of a collector."""
    return {
        "batch": _int_env(env, "MLMANAGE_DATA_COLLECTION_BATCH", 1000),
        "flush_ms": _int_env(env, "MLMANAGE_DATA_COLLECTION_FLUSH_MS", 1000),
        "max_buffer": _int_env(env, "MLMANAGE_DATA_COLLECTION_MAX_BUFFER", 100_000),
    }


class ModelDataCollector:
    """Buffers inputs/predictions of one worker and writes them in batches (module docstring).

    Args:
        sink: where batches go (built by :meth:`from_env`).
        service: service name. models: ``("name:version", ...)`` served.
        batch: records per batch (at most). flush_ms: longest wait before a batch is written (ms).
        max_buffer: records kept in memory at most; more are dropped and counted.
    """

    def __init__(
        self,
        sink: _Sink,
        service: str,
        models: tuple[str, ...],
        *,
        batch: int = 1000,
        flush_ms: int = 1000,
        max_buffer: int = 100_000,
    ) -> None:
        self.sink = sink
        self.service = service
        self.models = list(models)
        first = models[0] if models else "unknown:0"
        name, _, version = first.partition(":")
        self.model, self.model_version = name, version or "0"
        self.batch = batch
        self.flush_s = flush_ms / 1000
        self.max_buffer = max_buffer
        self.worker = f"{os.getpid()}x{uuid.uuid4().hex[:8]}"
        self._buf: deque[tuple[Any, ...]] = deque()
        self._pending: list[tuple[str, bytes]] = []  # (key, data) that failed to write
        self._seq = 0  # next record number
        self._batch_no = 0  # next file number
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one writer at a time (thread or stop())
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.failing: str | None = None  # the error while writes fail

    @classmethod
    def from_env(cls, service: str, models: tuple[str, ...], env: Mapping[str, str] | None = None) -> ModelDataCollector | None:
        """The collector configured by the environment, or None when collection is off.

        Raises ValueError naming the variable when collection is on but has nowhere to write.
        """
        env = os.environ if env is None else env
        sink = sink_from_env(env)
        if sink is None:
            return None
        return cls(sink, service, models, **batching_from_env(env))

    # -------------------------------------------------------------- request path
    def collect(self, request_id: str, body: bytes, answer: bytes, *, valid_json: bool = False) -> None:
        """Queue one request's input and prediction (O(1), no I/O, never blocks).

        ``valid_json``: both are known to be valid JSON (the app parsed the body and wrote the
        answer), so the writer splices them into the record instead of parsing them again."""
        self._enqueue((time.time(), request_id, body, answer, valid_json))  # formatted by the writer

    def _enqueue(self, item: tuple[Any, ...]) -> None:
        """Append one record to the buffer, or drop and count it when the buffer is full."""
        if len(self._buf) >= self.max_buffer:
            self.dropped += 1
            DROPPED.inc()
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.warning("data collection buffer full (%d records): %d records dropped", self.max_buffer, self.dropped)
            return
        self._buf.append(item)
        if len(self._buf) >= self.batch:
            self._wake.set()

    # -------------------------------------------------------------- writer
    def _take_batch(self) -> list[tuple[float, str, bytes, bytes, bool]]:
        out = []
        while self._buf and len(out) < self.batch:
            out.append(self._buf.popleft())
        return out

    def _record_head(self, t: float, rid: str) -> dict[str, Any]:
        """The leading fields of one stored record (time, ids, sequence number); takes a ``seq``.
        ``t``: Unix time (s) of the request, stored as ISO 8601 UTC."""
        rec = {
            "time": utc_iso(t),
            "request_id": rid,
            "service": self.service,
            "model": self.model,
            "model_version": self.model_version,
            "models": self.models,
            "worker": self.worker,
            "seq": self._seq,
        }
        self._seq += 1
        return rec

    def _encode(self, items: list[tuple[float, str, bytes, bytes, bool]]) -> tuple[str, bytes]:
        lines = []
        # the fields every record of this collector shares, serialized once per batch
        shared = json.dumps(
            {"service": self.service, "model": self.model, "model_version": self.model_version,
             "models": self.models, "worker": self.worker},
            separators=(",", ":"),
        ).encode("utf-8")[1:-1]  # fmt: skip
        for t, rid, body, answer, valid_json in items:
            raw_in = _one_line(body) if valid_json else None
            raw_out = _one_line(answer) if valid_json else None
            if raw_in is not None and raw_out is not None:
                # the record as bytes (what json.dumps of the dict below gives, ~4x faster)
                lines.append(
                    b'{"time":"%s","request_id":%s,%s,"seq":%d,"input":%s,"prediction":%s}'
                    % (utc_iso(t).encode(), dumps(rid), shared, self._seq, raw_in, raw_out)
                )
                self._seq += 1
            else:
                rec = self._record_head(t, rid)
                rec["input"] = _decode(body)
                rec["prediction"] = _decode(answer)
                lines.append(json.dumps(rec, separators=(",", ":")).encode("utf-8"))
        day = datetime.fromtimestamp(items[0][0], timezone.utc)
        key = "/".join(
            [
                _safe(self.service),
                _safe(self.model),
                _safe(self.model_version),
                f"{day:%Y}",
                f"{day:%m}",
                f"{day:%d}",
                f"{self.worker}-{self._batch_no:06d}.jsonl",
            ]
        )
        self._batch_no += 1
        return key, b"\n".join(lines) + b"\n"

    def flush(self) -> int:
        """Write every buffered record now (in batches); return how many were written.
        A batch that cannot be written is kept and retried at the next flush."""
        written = 0
        with self._lock:
            while self._pending:
                key, data = self._pending[0]
                try:
                    self.sink.write(key, data)
                except Exception as e:  # noqa: BLE001 - storage errors of any kind
                    self._failed(key, e)
                    return written
                self._recovered()
                self._pending.pop(0)
                n = data.count(b"\n")
                written += n
                COLLECTED.inc(n)
            while self._buf:
                items = self._take_batch()
                key, data = self._encode(items)
                try:
                    self.sink.write(key, data)
                except Exception as e:  # noqa: BLE001
                    self._failed(key, e)
                    self._pending.append((key, data))
                    return written
                self._recovered()
                written += len(items)
                COLLECTED.inc(len(items))
        return written

    def _failed(self, key: str, e: Exception) -> None:
        """One warning per failure episode (a full disk fails every flush: no log flood)."""
        if self.failing is None:
            log.warning(
                "data collection: writing %s to %s failed (kept and retried every flush; new records are dropped "
                "and counted in mlmanage_collected_dropped_total once %d are waiting): %s",
                key, self.sink.describe(), self.max_buffer, e,
            )
        self.failing = str(e)

    def _recovered(self) -> None:
        if self.failing is not None:
            log.warning("data collection: writing to %s works again (it failed with: %s)", self.sink.describe(), self.failing)
            self.failing = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_s)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - keep the thread alive whatever happens
                log.exception("data collection flush failed")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="model-data-collector", daemon=True)
        self._thread.start()
        log.info("collecting model data to %s (worker %s)", self.sink.describe(), self.worker)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the thread and write everything still buffered (bounded by ``timeout_s``)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        deadline = time.monotonic() + timeout_s
        while (self._buf or self._pending) and time.monotonic() < deadline:
            before = len(self._buf) + len(self._pending)
            self.flush()
            if len(self._buf) + len(self._pending) >= before:
                time.sleep(0.5)  # storage failing: retry until the deadline
        if self._buf or self._pending:
            log.error("data collection: %d records could not be written before shutdown", len(self._buf) + len(self._pending))


# ------------------------------------------------------------------ azureml.monitoring.ModelDataCollector
#: the request being answered (set by the app around run()): request_id of script-collected records
current_request_id: ContextVar[str | None] = ContextVar("mlmanage_request_id", default=None)

_PREDICTION_DESIGNATIONS = ("prediction", "predictions", "output", "outputs")
_script_collectors: dict[tuple[str, str], ScriptDataCollector] = {}
_script_lock = threading.Lock()


class ScriptDataCollector(ModelDataCollector):
    """``azureml.monitoring.ModelDataCollector`` as entry scripts use it (Azure's
    ``how-to-enable-data-collection.md``)::

        inputs_dc = ModelDataCollector("best_model", designation="inputs", feature_names=["f1", "f2"])
        inputs_dc.collect(data)                     # in run(); data: list / numpy / pandas / JSON value

    When the deployment collects model data (``collect_model_data=True``) each ``collect`` is
    one record in the service's data-collection store (read with
    ``Webservice.get_collected_data()``), partitioned like Azure's
    ``<service>/<model>/<version>/<designation>/<yyyy>/<mm>/<dd>/<worker>-<seq>.jsonl``.
    A record has the columns of the engine's own records (module docstring) with the data in
    ``prediction`` for designations ``prediction(s)``/``output(s)`` and in ``input`` for any
    other, plus ``designation``, ``correlation_id`` (``user_correlation_id``, default the
    request id) and ``feature_names``. ``request_id`` is the request being answered.
    When collection is off, ``collect`` does nothing and the constructor logs one line, as
    Azure's does. Collectors with the same model and designation share one writer.

    Args:
        model_name: the model the data is about (its deployed version is looked up in
            ``MLMANAGE_MODELS``; ``0`` when it is not deployed here).
        designation: free text naming the data (Azure: ``inputs``, ``predictions``, ...).
        feature_names: column names of the data (stored with each record).
        model_version: overrides the looked-up version.
        workspace, webservice_name: Azure's parameters; ``webservice_name`` overrides the
            service name, ``"default"`` (Azure's default) for all three means "not given".
    """

    def __init__(
        self,
        model_name: str,
        designation: str = "default",
        feature_names: list[str] | None = None,
        workspace: str | None = "default",
        webservice_name: str | None = "default",
        model_version: str | int | None = "default",
        **kwargs: Any,
    ) -> None:
        if not isinstance(model_name, str) or not model_name:
            raise ValueError(f"ModelDataCollector needs a model name (str), got {model_name!r}")
        env = os.environ
        webservice_name = None if webservice_name == "default" else webservice_name
        model_version = None if model_version == "default" else model_version
        self.designation = str(designation)
        self.feature_names = list(feature_names) if feature_names is not None else None
        self.enabled = collection_enabled(env)
        service = webservice_name or env.get("MLMANAGE_SERVICE_NAME") or "local"
        models = tuple(m.strip() for m in (env.get("MLMANAGE_MODELS") or "").split(",") if m.strip())
        if model_version is None:
            model_version = next((m.partition(":")[2] for m in models if m.partition(":")[0] == model_name), "0")
        self.model, self.model_version, self.service = model_name, str(model_version), service
        if not self.enabled:
            log.info(
                "data collection is off for this service (deploy with collect_model_data=True to turn it on): "
                "ModelDataCollector(%r, designation=%r) will not store anything",
                model_name,
                self.designation,
            )
            return
        with _script_lock:
            shared = _script_collectors.get((model_name, self.designation))
            if shared is None:
                sink = sink_from_env(env)
                assert sink is not None
                super().__init__(sink, service, models, **batching_from_env(env))
                self.model, self.model_version = model_name, str(model_version)
                _script_collectors[(model_name, self.designation)] = self
                self.start()
            else:
                self._shared = shared

    def collect(self, input_data: Any, user_correlation_id: str = "") -> None:  # type: ignore[override]
        """Queue ``input_data`` (any JSON value, numpy array, pandas object) as one record:
        serialized to JSON here, written by the background thread (no I/O, never blocks).
        Does nothing when collection is off. Raises ValueError when the data cannot be
        represented as JSON."""
        if not self.enabled:
            return
        try:
            data = dumps(input_data)
        except (TypeError, ValueError) as e:
            raise ValueError(f"ModelDataCollector.collect: cannot store a {type(input_data).__name__} as JSON: {e}")
        target: ModelDataCollector = getattr(self, "_shared", self)
        rid = current_request_id.get() or ""
        target._enqueue((time.time(), rid, data, (self.feature_names, user_correlation_id or rid)))

    def _encode(self, items: list[tuple[float, str, bytes, Any]]) -> tuple[str, bytes]:  # type: ignore[override]
        column = "prediction" if self.designation.lower() in _PREDICTION_DESIGNATIONS else "input"
        lines = []
        for t, rid, data, (feature_names, correlation_id) in items:
            rec = self._record_head(t, rid)
            rec.update({
                "input": None,
                "prediction": None,
                "designation": self.designation,
                "correlation_id": correlation_id,
                "feature_names": feature_names,
            })
            rec[column] = json.loads(data)
            lines.append(json.dumps(rec, separators=(",", ":")))
        day = datetime.fromtimestamp(items[0][0], timezone.utc)
        key = "/".join(
            [
                _safe(self.service),
                _safe(self.model),
                _safe(self.model_version),
                _safe(self.designation),
                f"{day:%Y}",
                f"{day:%m}",
                f"{day:%d}",
                f"{self.worker}-{self._batch_no:06d}.jsonl",
            ]
        )
        self._batch_no += 1
        return key, ("\n".join(lines) + "\n").encode("utf-8")


def stop_script_collectors(timeout_s: float = 30.0) -> None:
    """Write what every script collector still buffers (the app's shutdown calls this)."""
    with _script_lock:
        collectors = list(_script_collectors.values())
        _script_collectors.clear()
    for c in collectors:
        c.stop(timeout_s)


# ------------------------------------------------------------------ GET /telemetry
# read_telemetry (re-exported here, where core and the app import it from) reads the files
# from their end: server/telemetry.py


def parse_since(raw: str | None) -> datetime | None:
    """``since`` query value: ISO 8601 (naive means UTC) or Unix seconds. Raises ValueError."""
    if raw is None or raw == "":
        return None
    try:
        return datetime.fromtimestamp(float(raw), timezone.utc)
    except ValueError:
        pass
    dt = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
