"""Adaptive micro-batching: concurrent requests merged into one ``run()`` call and split back.

Opt-in per deployment (``MLMANAGE_MAX_BATCH_SIZE`` > 1, from the deployment's
``max_batch_size``; off by default) for entry scripts whose ``run`` takes a batch: an
``inference_schema``-decorated ``run`` with one input parameter (no ``request_headers``)
whose value is a JSON array of rows, returning one answer per row (a list, a numpy array or
a pandas object with ``tolist()``/``to_dict``). Other requests/scripts take the usual path.

How a batch forms (adaptive, no fixed window under load): a request arriving while no batch
runs waits at most ``MLMANAGE_MAX_LATENCY_MS`` (default 2 ms; 0: not at all) for company;
requests arriving while a batch runs queue and go together in the next batch as soon as it
ends. A batch holds at most ``max_batch_size`` rows (a request is never split; one larger
than that runs alone). At low load each request runs alone after the wait; under load the
batch grows with the concurrency.

Answers: the rows of the merged output are split back by each request's row count. Errors
stay per request: when the merged call raises, or does not return one answer per row, every
request of the batch is run again on its own, so each gets its own answer or error (the
cost of a failing batch is one extra call per request). ``scoring_timeout_ms`` applies to
each request from the moment it is queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mlmanage_jupyter.server.entry import EntryScript
from mlmanage_jupyter.server.lifecycle import HungRuns


class _Pending:
    __slots__ = ("rows", "fut")

    def __init__(self, rows: list[Any], fut: asyncio.Future[Any]) -> None:
        self.rows = rows
        self.fut = fut


def batchable(script: EntryScript) -> str | None:
    """None when ``script``'s run() can take merged batches, else why not."""
    if not script.decorated:
        return "run() is not decorated with inference_schema's @input_schema"
    if script.wants_headers:
        return "run() takes request_headers, which differ per request"
    if len(script.params) != 1:
        return "run() takes more than one input parameter"
    return None


def _split(result: Any, counts: list[int]) -> list[Any] | None:
    """``result`` cut into ``counts`` rows each, or None when it is not one answer per row."""
    if not isinstance(result, list):
        tolist = getattr(result, "tolist", None)  # numpy arrays, pandas Series
        to_dict = getattr(result, "to_dict", None)  # pandas DataFrame
        if callable(tolist):
            result = tolist()
        elif callable(to_dict):
            result = to_dict(orient="records")
        else:
            return None
    if not isinstance(result, list) or len(result) != sum(counts):
        return None
    out, start = [], 0
    for n in counts:
        out.append(result[start : start + n])
        start += n
    return out


class MicroBatcher:
    """Merges the rows of concurrent requests into one ``script.run_fn`` call (see the module doc).

    ``submit(rows)`` returns this request's answer (a list, one answer per row) or raises
    what its own run raised; ``ScoringTimeout`` (``timeout_error()``) past ``timeout_s``.
    """

    def __init__(
        self,
        script: EntryScript,
        executor: ThreadPoolExecutor,
        max_batch_size: int,
        max_latency_ms: float,
        timeout_s: float,
        timeout_error: Callable[[], BaseException],
        hung: HungRuns | None = None,
    ) -> None:
        self.script = script
        self.param = script.params[0].name
        self.executor = executor
        self.max_batch_size = max_batch_size
        self.max_latency_s = max_latency_ms / 1000
        self.timeout_s = timeout_s
        self.timeout_error = timeout_error
        self.hung = hung
        self._in_call: list[asyncio.Future[Any]] = []  # the requests of the batch being run
        self._queue: list[_Pending] = []
        self._queued_rows = 0
        self._running = False
        self.batches = 0  #: merged calls made (for tests and logs)

    def accepts(self, parsed: Any) -> list[Any] | None:
        """The request's rows when it can join a batch (a JSON object with the parameter's
        key holding a non-empty array), else None (it takes the usual path)."""
        if isinstance(parsed, dict) and len(parsed) == 1:
            rows = parsed.get(self.param)
            if isinstance(rows, list) and rows:
                return rows
        return None

    async def submit(self, rows: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.append(_Pending(rows, fut))
        self._queued_rows += len(rows)
        if not self._running:
            self._running = True
            loop.create_task(self._drain())
        timer = loop.call_later(self.timeout_s, self._expire, fut)
        try:
            return await fut
        finally:
            timer.cancel()

    def _expire(self, fut: asyncio.Future[Any]) -> None:
        if not fut.done():
            fut.set_exception(self.timeout_error())
            if self.hung is not None and any(f is fut for f in self._in_call):
                self._stuck()  # before the 504 goes out: readiness already tells

    def _take(self) -> list[_Pending]:
        batch: list[_Pending] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].rows) <= self.max_batch_size):
            p = self._queue.pop(0)
            size += len(p.rows)
            batch.append(p)
        self._queued_rows -= size
        return batch

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self.max_latency_s > 0 and self._queued_rows < self.max_batch_size:
                await asyncio.sleep(self.max_latency_s)  # the idle wait for company
            while self._queue:
                batch = [p for p in self._take() if not p.fut.done()]  # timed out ones are gone
                if batch:
                    # batches run one at a time: one that hangs holds every later request
                    self._in_call = [p.fut for p in batch]
                    try:
                        outcomes = await loop.run_in_executor(self.executor, self._run_batch, [p.rows for p in batch])
                    finally:
                        self._in_call = []
                    for p, (ok, value) in zip(batch, outcomes, strict=True):
                        if not p.fut.done():
                            if ok:
                                p.fut.set_result(value)
                            else:
                                p.fut.set_exception(value)
        finally:
            self._running = False
            if self._queue:  # arrived between the last take and now
                self._running = True
                loop.create_task(self._drain())

    def _stuck(self) -> None:
        assert self.hung is not None
        self.hung.trip(
            f"a micro-batched run() call is still running past scoring_timeout_ms ({self.hung.timeout_ms} ms) "
            "and every batched request waits behind it: the worker is being replaced"
        )

    def _call(self, rows: list[Any]) -> Any:
        return self.script.invoke({self.param: rows})

    def _run_batch(self, requests: list[list[Any]]) -> list[tuple[bool, Any]]:
        """In a worker thread: one merged call, else one call per request."""
        if len(requests) > 1:
            self.batches += 1
            merged = [row for rows in requests for row in rows]
            try:
                parts = _split(self._call(merged), [len(r) for r in requests])
            except Exception:  # noqa: BLE001 - each request gets its own error below
                parts = None
            if parts is not None:
                return [(True, part) for part in parts]
        outcomes: list[tuple[bool, Any]] = []
        for rows in requests:
            try:
                outcomes.append((True, self._call(rows)))
            except Exception as e:  # noqa: BLE001 - handed to that request (BadInput answers 400)
                outcomes.append((False, e))
        return outcomes
