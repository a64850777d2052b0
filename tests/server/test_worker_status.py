"""The worker -> supervisor status pipe (server/worker_status.py) and the metric files a worker
claims before prometheus_client maps them (server/lifecycle.py), on real pipes and files."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from mlmanage_jupyter.server.lifecycle import claim_metric_files
from mlmanage_jupyter.server.worker_status import STATUS_FD_VAR, StatusReader, StatusWriter


@pytest.fixture
def channel():
    reader, wfd = StatusReader.pipe()
    writer = StatusWriter(wfd)
    yield reader, writer
    reader.close()
    if _is_open(wfd):
        os.close(wfd)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_the_last_line_is_the_state(channel) -> None:
    reader, writer = channel
    assert reader.poll() == {}
    writer.send(state="ready")
    assert reader.poll() == {"state": "ready"}
    assert reader.poll() == {"state": "ready"}  # nothing new: the same state
    writer.send(state="ready", recycle={"reason": "max_requests", "message": "answered 10\nrequests"})
    assert reader.poll() == {"state": "ready", "recycle": {"reason": "max_requests", "message": "answered 10\nrequests"}}


def test_a_partial_line_waits_for_its_end(channel) -> None:
    reader, writer = channel
    os.write(writer.fd, b'{"state": "rea')
    assert reader.poll() == {}
    os.write(writer.fd, b'dy"}\n{"state": "fai')
    assert reader.poll() == {"state": "ready"}
    os.write(writer.fd, b'led", "error": "boom"}\n')
    assert reader.poll() == {"state": "failed", "error": "boom"}


def test_a_line_that_is_not_an_object_is_ignored(channel, caplog) -> None:
    reader, writer = channel
    writer.send(state="ready")
    os.write(writer.fd, b"[1, 2]\nnot json\n")
    assert reader.poll() == {"state": "ready"}
    assert "not a JSON object" in caplog.text


def test_a_traceback_larger_than_the_pipe_buffer_arrives_whole(channel) -> None:
    reader, writer = channel
    error = "Traceback (most recent call last):\n" + "  File 'x.py', line 1, in f\n" * 20000  # ~560 KB
    t = threading.Thread(target=writer.send, kwargs={"state": "failed", "error": error})
    t.start()
    while reader.poll().get("state") != "failed":
        t.join(0.01)
    t.join()
    assert reader.state["error"] == error


def test_end_of_file_once_the_worker_closed_its_end(channel) -> None:
    reader, writer = channel
    writer.send(state="ready")
    os.close(writer.fd)
    assert reader.poll() == {"state": "ready"} and reader.eof


def test_a_worker_whose_supervisor_is_gone_gets_an_error(channel) -> None:
    reader, writer = channel
    reader.close()
    with pytest.raises(BrokenPipeError):
        writer.send(state="ready")


def test_the_writer_comes_from_the_environment() -> None:
    assert StatusWriter.from_env({}) is None
    with pytest.raises(ValueError, match=f"{STATUS_FD_VAR} must be a file descriptor number, got 'x'"):
        StatusWriter.from_env({STATUS_FD_VAR: "x"})
    r, w = os.pipe()
    try:
        os.set_inheritable(w, True)
        writer = StatusWriter.from_env({STATUS_FD_VAR: str(w)})
        assert writer is not None and writer.fd == w
        assert not os.get_inheritable(w)  # processes run() starts do not hold the pipe open
    finally:
        os.close(r)
        os.close(w)


def test_metric_files_are_created_with_their_blocks(tmp_path: Path) -> None:
    assert claim_metric_files(str(tmp_path), ("counter", "histogram"), size=65536) is None
    for prefix in ("counter", "histogram"):
        st = (tmp_path / f"{prefix}_{os.getpid()}.db").stat()
        assert st.st_size == 65536 and st.st_blocks * 512 >= 65536  # allocated, not sparse
    assert claim_metric_files(None) is None  # no multiprocess folder: nothing to do


def test_an_existing_metric_file_keeps_its_values(tmp_path: Path) -> None:
    f = tmp_path / f"counter_{os.getpid()}.db"
    f.write_bytes(b"\x10\x00\x00\x00values")
    assert claim_metric_files(str(tmp_path), ("counter",), size=4096) is None
    assert f.read_bytes()[:10] == b"\x10\x00\x00\x00values" and f.stat().st_size == 4096


def test_metric_files_that_cannot_be_created_name_the_folder(tmp_path: Path) -> None:
    why = claim_metric_files(str(tmp_path / "missing"), ("counter",))
    assert why is not None and str(tmp_path / "missing") in why and "No such file" in why
