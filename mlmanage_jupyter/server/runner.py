"""How a worker calls ``run()``: on the event loop when that is cheaper, else in run threads.

A worker's event loop and its run threads share one GIL, so for a ``run()`` that is short and
CPU-bound (most scikit-learn/ONNX models: 0.05-5 ms of Python and numpy) a thread adds only
cost: a hand-off to the thread and a wake-up of the loop per request, plus GIL switches
between the two (~25-45 us of CPU per request, more than the rest of the server's work, and
the tail latency of the switch interval). A ``run()`` that is long, waits on I/O or releases
the GIL is better in threads: the loop keeps answering health probes and other requests, and
up to :data:`.lifecycle.RUN_THREADS` calls overlap.

:class:`Runner` picks per call, from what earlier calls did (:class:`InlinePolicy`):

* it starts with threads, measuring each call's wall time and the CPU time of its thread;
* after :data:`INLINE_STREAK` calls that each took less than ``inline_run_ms`` and were
  CPU-bound (CPU time at least half the wall time, or under :data:`ANY_CALL_MS` in all), with
  no longer call and no :data:`WAITING_RUN` waiting calls in a row between them, it calls
  ``run()`` on the loop's thread (logged: ``calling it on the event loop``);
* calls that ran in threads at the same time share the GIL, so each one's wall time and CPU
  share are judged for that concurrency (:class:`InlinePolicy`): a CPU-bound script under
  load is not mistaken for a long or waiting one;
* one call of ``inline_run_ms`` or more, or :data:`WAITING_RUN` waiting calls in a row (one
  alone may be the OS preempting the process), send it back to threads, and the streak it
  needs next time doubles (up to :data:`MAX_STREAK`), so a script whose calls are sometimes
  long settles in threads. ``inline_run_ms=0`` (``MLMANAGE_INLINE_RUN_MS``) keeps every call
  in threads.

``scoring_timeout_ms`` holds in both ways. In threads, the call's answer is a 504 at the
deadline and its thread is counted by :class:`.lifecycle.HungRuns` until it returns. On the
loop, a ``SIGALRM`` timer (``setitimer``) raises :class:`.lifecycle.RunTimedOut` (a
``BaseException``, so a script's ``except Exception`` does not swallow it) inside ``run()`` at
the deadline: Python code, ``time.sleep`` and lock waits stop there, the request answers 504
and the worker goes on serving. A call stuck in C code that ignores signals is seen by a
watchdog thread :data:`INLINE_GRACE_S` past the deadline, which trips
:class:`.lifecycle.HungRuns` so the supervisor replaces the worker.
Calls only go on the loop where the timer can work: the loop runs in the process's main
thread and nothing else (an entry script's ``init()``) has a ``SIGALRM`` handler.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mlmanage_jupyter.server.entry import RunAborted
from mlmanage_jupyter.server.lifecycle import RUN_THREADS, HungRuns, RunTimedOut

log = logging.getLogger("mlmanage.server")

#: calls in a row that must be short and CPU-bound before run() goes on the event loop
INLINE_STREAK = 32
#: the most calls in a row a script that flipped back to threads must show next time
MAX_STREAK = 4096
#: a call shorter than this (ms) counts as short and CPU-bound whatever its CPU share
ANY_CALL_MS = 1.0
#: waiting calls (>= ANY_CALL_MS, less than half of it on the CPU) in a row that count as a
#: script that waits: one alone may be the OS preempting a busy machine
WAITING_RUN = 4
#: seconds past scoring_timeout_ms after which an on-loop run() the timer did not stop (stuck
#: in C code that does not look at signals) trips the worker
INLINE_GRACE_S = 2.0


class ScoringTimeout(Exception):
    """run() did not finish within scoring_timeout_ms."""


class InlinePolicy:
    """Decides whether the next ``run()`` goes on the event loop (see the module doc).

    ``observe(wall_s, cpu_s, sharing)`` after each call (wall time of the call and CPU time of
    the thread that ran it, in seconds; ``sharing``: how many calls ran at the same time, on
    average, in threads that share one GIL) updates :attr:`inline`; ``inline_run_ms <= 0``
    never inlines. Returns True when the decision changed. Not thread-safe: the loop's thread
    only. With ``sharing`` calls at once, a CPU-bound call's wall time is about ``sharing``
    times its CPU time (each waits for the GIL while the others run): it is judged by
    ``wall_s / sharing`` (long or not) and ``cpu_s * sharing`` (its CPU share), so concurrency
    alone does not make a CPU-bound script look long or waiting.
    """

    def __init__(self, inline_run_ms: float, streak: int = INLINE_STREAK, max_streak: int = MAX_STREAK) -> None:
        self.limit_s = max(0.0, inline_run_ms) / 1000
        self.needed = streak
        self.max_streak = max_streak
        self.streak = 0
        self.waiting_run = 0  # waiting calls in a row
        self.inline = False
        self.flips = 0  #: times it went back to threads

    def observe(self, wall_s: float, cpu_s: float, sharing: float = 1.0) -> bool:
        if self.limit_s <= 0:
            return False
        sharing = max(1.0, sharing)
        long = wall_s / sharing >= self.limit_s
        # off the CPU for most of a call of 1 ms or more: waiting (I/O, sleep, a released GIL),
        # or preempted by the OS on a busy machine: only a run of them counts
        waiting = not long and wall_s >= ANY_CALL_MS / 1000 and cpu_s * sharing < wall_s / 2
        self.waiting_run = self.waiting_run + 1 if waiting else 0
        bad = long or self.waiting_run >= WAITING_RUN
        if self.inline:
            if bad:
                self.inline = False
                self.flips += 1
                self.streak = self.waiting_run = 0
                self.needed = min(self.needed * 2, self.max_streak)
                return True
            return False
        if bad:
            self.streak = self.waiting_run = 0
        elif not waiting:
            self.streak += 1
            if self.streak >= self.needed:
                self.inline = True
                return True
        return False


def _settle(fut: asyncio.Future[Any], ok: bool, value: Any, hung: HungRuns | None = None) -> None:
    if not fut.done():  # the deadline may have settled it first
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)
    elif hung is not None and not fut.cancelled() and isinstance(fut.exception(), ScoringTimeout):
        hung.returned()  # a run() past its deadline gave its thread back


def _expire(fut: asyncio.Future[Any], hung: HungRuns | None = None) -> None:
    if not fut.done():
        fut.set_exception(ScoringTimeout())
        if hung is not None:
            hung.expired()


async def call_in_thread(
    executor: ThreadPoolExecutor,
    timeout_s: float,
    fn: Callable[..., Any],
    *args: Any,
    hung: HungRuns | None = None,
    observe: Callable[[float, float], None] | None = None,
) -> Any:
    """``fn(*args)`` in ``executor``'s threads, raising ScoringTimeout after ``timeout_s`` s.

    What ``asyncio.wait_for(loop.run_in_executor(...))`` does, with one loop future, one timer
    handle and one thread-safe wake-up per call instead of the chained futures, done callbacks
    and waiter of that pair: about half its per-call cost. A run() past its deadline keeps its
    thread until it returns (Python cannot stop a thread); its answer is dropped, and
    ``hung`` (when given) counts it until it returns (both on the loop's thread).
    ``observe(wall_s, cpu_s)`` gets each call's wall time and its thread's CPU time (on the
    loop's thread). A BaseException that is not an Exception (SystemExit & co.) arrives as
    :class:`.entry.RunAborted`: set on the loop's future as it is, it would stop the loop.
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()

    def work() -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            outcome = (True, fn(*args))
        except Exception as e:  # noqa: BLE001 - handed to the awaiting request
            outcome = (False, e)
        except BaseException as e:  # noqa: BLE001 - SystemExit & co. must not stop the event loop
            outcome = (False, RunAborted.wrap(e))
        wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
        try:
            loop.call_soon_threadsafe(_done, fut, outcome, hung, observe, wall, cpu)
        except RuntimeError:  # the loop closed while a run() past its deadline was still going
            pass

    executor.submit(work)
    timer = loop.call_later(timeout_s, _expire, fut, hung)
    try:
        return await fut
    finally:
        timer.cancel()


def _done(
    fut: asyncio.Future[Any],
    outcome: tuple[bool, Any],
    hung: HungRuns | None,
    observe: Callable[[float, float], None] | None,
    wall: float,
    cpu: float,
) -> None:
    _settle(fut, outcome[0], outcome[1], hung)
    if observe is not None:
        observe(wall, cpu)


class Runner:
    """Calls ``run()`` (any ``fn(*args)``) for the app: :meth:`call` (see the module doc).

    ``timeout_s``: scoring_timeout_ms in seconds; ``hung``: the worker's hung-run counter;
    ``inline_run_ms``: the longest call that may go on the event loop (0: never). A
    BaseException (not an Exception) raised by ``fn`` arrives as :class:`.entry.RunAborted`.
    :attr:`executor` also serves the micro-batcher.
    """

    def __init__(
        self,
        timeout_s: float,
        hung: HungRuns,
        inline_run_ms: float,
        threads: int = RUN_THREADS,
    ) -> None:
        self.timeout_s = timeout_s
        self.hung = hung
        self.policy = InlinePolicy(inline_run_ms)
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="run")
        self._can_inline: bool | None = None  # decided on the loop's thread, at the first switch
        self._running_since: float | None = None  # perf_counter of the on-loop call in progress
        self._alarmed = False  # the deadline interrupted the on-loop call in progress
        self._stop = threading.Event()
        self._in_threads = 0  # calls handed to run threads and not yet returned

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``'s value; raises what ``fn`` raises, ScoringTimeout past the deadline."""
        if self.policy.inline and self._can_inline:
            return self._call_here(fn, args)
        self._in_threads += 1
        at_start = self._in_threads

        def observe(wall: float, cpu: float) -> None:  # on the loop's thread, when the call returned
            self._observe(wall, cpu, (at_start + self._in_threads) / 2)
            self._in_threads -= 1

        return await call_in_thread(self.executor, self.timeout_s, fn, *args, hung=self.hung, observe=observe)

    def _observe(self, wall: float, cpu: float, sharing: float = 1.0) -> None:
        if self.policy.observe(wall, cpu, sharing):
            if self.policy.inline:
                if self._can_inline is None:
                    self._can_inline = self._arm()
                if self._can_inline:
                    log.info(
                        "run() is short and CPU-bound (%d calls in a row under %.0f ms): calling it on the event loop",
                        self.policy.needed,
                        self.policy.limit_s * 1000,
                    )
            elif self._can_inline:
                log.info(
                    "a run() call took %.1f ms (%.1f ms of CPU): back to run threads (%d short calls in a row "
                    "needed to return to the event loop)",
                    wall * 1000,
                    cpu * 1000,
                    self.policy.needed,
                )

    def _arm(self) -> bool:
        """Install the SIGALRM handler and start the watchdog; False where that cannot work."""
        if threading.current_thread() is not threading.main_thread():
            return False
        try:
            if signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, signal.SIG_IGN, None):
                log.info("SIGALRM has a handler (the entry script's?): run() stays in run threads")
                return False
            signal.signal(signal.SIGALRM, self._on_alarm)
        except (ValueError, OSError, AttributeError):  # not the main thread / no SIGALRM
            return False
        threading.Thread(target=self._watch, name="run-watchdog", daemon=True).start()
        return True

    def _on_alarm(self, signum: int, frame: Any) -> None:
        if self._running_since is not None:
            self._alarmed = True
            raise RunTimedOut()

    def _call_here(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """``fn(*args)`` on this (the loop's) thread under the SIGALRM deadline."""
        t0, c0 = time.perf_counter(), time.thread_time()
        self._alarmed = False
        self._running_since = t0
        signal.setitimer(signal.ITIMER_REAL, self.timeout_s)
        try:
            try:
                value = fn(*args)
            except (RunTimedOut, Exception):
                raise
            except BaseException as e:  # SystemExit & co. must not stop the event loop
                raise RunAborted.wrap(e) from e
            finally:
                self._running_since = None  # from here on the alarm raises nothing
                signal.setitimer(signal.ITIMER_REAL, 0)
                self._observe(time.perf_counter() - t0, time.thread_time() - c0)
        except RunTimedOut:
            self._running_since = None  # the alarm may have landed in the finally above
            raise ScoringTimeout() from None
        if self._alarmed:  # run() swallowed the interruption (a bare except) and went on
            raise ScoringTimeout()
        return value

    def _watch(self) -> None:
        limit = self.timeout_s + INLINE_GRACE_S
        tick = min(0.5, max(0.01, self.timeout_s / 4))
        while not self._stop.wait(tick):
            since = self._running_since
            if since is not None and time.perf_counter() - since > limit:
                self.hung.trip(
                    f"a run() call on the event loop is still running {limit:.1f} s after it started, past "
                    f"scoring_timeout_ms ({self.hung.timeout_ms} ms), and did not stop when interrupted: "
                    "the worker is being replaced"
                )
                return

    def shutdown(self) -> None:
        """Stop the watchdog and the run threads (calls still running are left to finish)."""
        self._stop.set()
        self.executor.shutdown(wait=False, cancel_futures=True)
