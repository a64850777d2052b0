"""Where run() is called (issue 15): on the event loop when it is short and CPU-bound, else in
run threads, with ``scoring_timeout_ms`` kept either way (``server/runner.py``). Real
supervisor and worker processes, real HTTP; the script reports the thread that ran it."""

from __future__ import annotations

import threading

import pytest
import requests
from test_lifecycle import poll

from mlmanage_jupyter.server.runner import ANY_CALL_MS, WAITING_RUN, InlinePolicy

pytestmark = pytest.mark.timeout(300)

SCRIPT = """
import json, os, signal, threading, time
def init():
    if os.environ.get("TAKE_SIGALRM"):
        signal.signal(signal.SIGALRM, lambda *a: None)
def run(raw):
    d = json.loads(raw)
    if d.get("sleep"):
        time.sleep(d["sleep"])
    if d.get("guarded_sleep"):
        try:
            time.sleep(d["guarded_sleep"])
        except Exception:
            return {"swallowed": True}
    if d.get("bare_except"):
        try:
            time.sleep(d["bare_except"])
        except BaseException:
            pass
    if d.get("deaf"):  # a C call that does not look at signals, for as long as it lasts
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
        try:
            time.sleep(d["deaf"])
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGALRM])
    if d.get("io"):
        time.sleep(0.003)
    return {"thread": threading.current_thread().name, "pid": os.getpid()}
"""


def threads_of(sp, n: int, body: dict | None = None) -> list[str]:
    s = requests.Session()
    out = []
    for _ in range(n):
        r = s.post(sp.url + "/score", json=body or {}, timeout=30)
        assert r.status_code == 200, r.text
        out.append(r.json()["thread"])
    return out


def warm_to_the_loop(sp, limit: int = 5000) -> int:
    """Fast requests until one runs on the event loop's (main) thread; returns how many."""
    s = requests.Session()
    for i in range(1, limit + 1):
        if s.post(sp.url + "/score", json={}, timeout=30).json()["thread"] == "MainThread":
            return i
    raise AssertionError(f"run() never moved to the event loop in {limit} calls:\n{sp.logs()}")


def assert_timeout(r: requests.Response) -> None:
    assert r.status_code == 504, r.text
    assert r.json()["error"]["code"] == "ScoringTimeout"


def test_a_fast_run_moves_to_the_event_loop_and_the_deadline_still_answers_504(serve):
    sp = serve(SCRIPT, MLMANAGE_SCORING_TIMEOUT_MS="500")
    first = threads_of(sp, 1)[0]
    assert first.startswith("run"), first  # nothing is known of run() yet: a run thread
    n = warm_to_the_loop(sp)
    assert n > 30  # it takes a streak of short calls, not one
    assert "calling it on the event loop" in sp.logs()
    pid = sp.score({}).json()["pid"]

    # past the deadline on the loop: interrupted there, 504, and the same worker goes on
    assert_timeout(sp.score({"sleep": 30}))
    after = sp.score({})
    assert after.status_code == 200 and after.json()["pid"] == pid
    assert after.json()["thread"].startswith("run")  # the long call sent it back to threads
    assert "back to run threads" in sp.logs()

    # a script's `except Exception` does not swallow the deadline
    assert warm_to_the_loop(sp) > n  # the streak needed doubled
    assert_timeout(sp.score({"guarded_sleep": 30}))
    # a bare except that swallows it and returns late still answers 504
    warm_to_the_loop(sp)
    assert_timeout(sp.score({"bare_except": 30}))
    assert sp.score({}).json()["pid"] == pid
    assert sp.status()["recycles"].get("hung_runs", 0) == 0


CPU_SCRIPT = """
import threading, time
def init():
    pass
def run(raw):
    t0 = time.thread_time()
    while time.thread_time() - t0 < 0.003:  # 3 ms of CPU, holding the GIL
        pass
    return {"thread": threading.current_thread().name}
"""


def test_a_cpu_bound_run_under_concurrent_load_moves_to_the_event_loop(serve):
    """8 clients at once: in threads each call waits for the GIL while the others run, so its
    wall time is several times its 3 ms of CPU; it is still short and CPU-bound."""
    from concurrent.futures import ThreadPoolExecutor

    sp = serve(CPU_SCRIPT)

    def client(_: int) -> list[str]:
        s = requests.Session()
        return [s.post(sp.url + "/score", data="{}", timeout=30).json()["thread"] for _ in range(40)]

    with ThreadPoolExecutor(8) as pool:
        names = [t for batch in pool.map(client, range(8)) for t in batch]
    assert "MainThread" in names, sp.logs()[-2000:]
    assert "calling it on the event loop" in sp.logs()


def test_a_run_that_waits_stays_in_threads(serve):
    sp = serve(SCRIPT)
    names = threads_of(sp, 80, {"io": True})
    assert all(t.startswith("run") for t in names), set(names)
    assert "calling it on the event loop" not in sp.logs()


@pytest.mark.parametrize("env", [{"MLMANAGE_INLINE_RUN_MS": "0"}, {"TAKE_SIGALRM": "1"}], ids=["off", "sigalrm-taken"])
def test_no_event_loop_calls_when_off_or_when_the_script_owns_sigalrm(serve, env):
    sp = serve(SCRIPT, **env)
    names = threads_of(sp, 80)
    assert all(t.startswith("run") for t in names), set(names)
    if "TAKE_SIGALRM" in env:
        assert "SIGALRM has a handler" in sp.logs()


def test_a_deaf_run_on_the_loop_trips_the_watchdog_and_the_worker_is_replaced(serve):
    sp = serve(SCRIPT, MLMANAGE_SCORING_TIMEOUT_MS="300")
    warm_to_the_loop(sp)
    old = sp.score({}).json()["pid"]
    answers: list[int] = []

    def deaf() -> None:
        try:
            answers.append(requests.post(sp.url + "/score", json={"deaf": 8}, timeout=60).status_code)
        except requests.RequestException:
            answers.append(-1)

    t = threading.Thread(target=deaf)
    t.start()
    st = poll(lambda: (s := sp.status()).get("recycles", {}).get("hung_runs") and s, timeout=60, what="a hung_runs recycle")
    assert old not in poll(lambda: [w for w in sp.status().get("workers", []) if w != old], timeout=60, what="a new worker")
    r = sp.score({})
    assert r.status_code == 200 and r.json()["pid"] != old
    assert "did not stop when interrupted" in sp.logs()
    assert st["recycles"]["hung_runs"] == 1
    t.join(timeout=60)
    assert answers and answers[0] in (504, -1)  # its answer is the deadline's, or its worker is gone


# ------------------------------------------------------------------------------- the policy
def test_policy_needs_a_streak_and_backs_off_after_each_flip():
    p = InlinePolicy(10, streak=4, max_streak=16)
    fast = (0.0002, 0.0002)
    for _ in range(3):
        assert not p.observe(*fast)
    assert p.observe(*fast) and p.inline
    assert p.observe(0.050, 0.050) and not p.inline  # one long call: back to threads
    assert p.needed == 8 and p.flips == 1
    for _ in range(7):
        p.observe(*fast)
    assert not p.inline
    p.observe(*fast)
    assert p.inline
    p.observe(0.050, 0.050)
    p.observe(0.050, 0.050)
    assert p.needed == 16  # capped at max_streak
    p.observe(0.050, 0.050)
    assert p.needed == 16


def test_policy_counts_cpu_bound_calls_only_and_a_run_of_waiting_ones_resets():
    p = InlinePolicy(10, streak=3)
    waiting = (0.004, 0.0001)  # 4 ms of wall time, almost no CPU: I/O or sleep (or preempted)
    cpu = (0.004, 0.003)
    tiny = (ANY_CALL_MS / 2000, 0.0)  # under ANY_CALL_MS: counted whatever its CPU share
    p.observe(*cpu)
    p.observe(*waiting)  # one waiting call alone (preemption?) neither counts nor resets
    assert p.streak == 1
    for _ in range(WAITING_RUN):
        p.observe(*waiting)
    assert p.streak == 0  # a run of them: a script that waits
    p.observe(*tiny)
    p.observe(*cpu)
    assert p.observe(*cpu) and p.inline
    for _ in range(WAITING_RUN - 1):
        assert not p.observe(*waiting) and p.inline
    assert p.observe(*waiting) and not p.inline


def test_policy_judges_threaded_calls_for_their_concurrency():
    p = InlinePolicy(10, streak=2)
    # 8 calls at once of 3 ms of CPU each: ~24 ms of wall time each, waiting for the GIL
    assert not p.observe(0.024, 0.003, sharing=8)
    assert p.observe(0.024, 0.003, sharing=8) and p.inline
    q = InlinePolicy(10, streak=2)
    for _ in range(WAITING_RUN):  # 8 calls at once waiting 5 ms each on I/O: still waiting
        q.observe(0.005, 0.0002, sharing=8)
    assert q.streak == 0 and not q.inline
    assert InlinePolicy(10).observe(0.024, 0.003) is False  # alone, the same call is long


def test_policy_off_never_inlines():
    p = InlinePolicy(0, streak=1)
    for _ in range(10):
        assert not p.observe(0.0001, 0.0001)
    assert not p.inline
