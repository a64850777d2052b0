"""Tutorial notebooks run in a real kernel (nbclient): notebook 02 ends showing its panels and
never leaves its service behind; notebook 05 skips in one line without a usable base image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def _client(path: Path, tmp_path: Path) -> Any:
    """The notebook and an nbclient running it in ``tmp_path`` (the kernel inherits os.environ)."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    return nb, NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})


def _run_code(client: Any, nb: Any, code: str) -> str:
    """Run extra code in the notebook's kernel; its stdout."""
    cell = nbformat.v4.new_code_cell(code)
    nb.cells.append(cell)
    client.execute_cell(cell, len(nb.cells) - 1)
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def _errors(cell: Any) -> list[str]:
    return [f"{o['ename']}: {o['evalue']}" for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def test_notebook_02_ends_showing_its_panels_and_deletes_its_service(tmp_path: Path) -> None:
    from mlmanage_jupyter.core.webservice import Webservice

    nb, client = _client(REPO / "notebooks" / "02-widgets.ipynb", tmp_path)
    with client.setup_kernel():
        for i, cell in enumerate(list(nb.cells)):
            if cell.cell_type == "code":
                client.execute_cell(cell, i)
                assert not _errors(cell), (i, _errors(cell))
        shown = _run_code(client, nb, "print([w.comm is not None for w in (browser, form, logs, console, chart, monitor)]); print(ws.path)")
    flags, ws_path = shown.strip().splitlines()
    assert flags == "[True, True, True, True, True, True]"  # the cleanup left every panel open
    assert Webservice.list(ws_path, refresh=False) == []
    last = next(c for c in reversed(nb.cells[:-1]) if c.cell_type == "code")
    assert "deleted diabetes-tour" in "".join(o.get("text", "") for o in last.outputs)


def test_notebook_02_stopped_early_still_deletes_its_service(tmp_path: Path) -> None:
    from mlmanage_jupyter.core.webservice import Webservice

    nb, client = _client(REPO / "notebooks" / "02-widgets.ipynb", tmp_path)
    deploy_cell = next(i for i, c in enumerate(nb.cells) if "form.deploy_button.click()" in c.source)
    with client.setup_kernel():
        for i, cell in enumerate(list(nb.cells[: deploy_cell + 1])):
            if cell.cell_type == "code":
                client.execute_cell(cell, i)
        out = _run_code(client, nb, "print(ws.path); print(form.service.state)")
    ws_path, state = out.strip().splitlines()
    assert state == "Healthy"
    # the kernel was shut down here, before the clean-up cell: its atexit hook deleted the service
    assert Webservice.list(ws_path, refresh=False) == []


def test_notebook_05_skips_in_one_line_without_the_base_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLMANAGE_BASE_IMAGE", "127.0.0.1:9/mlmanage-no-such-image:0")  # not present, not pullable
    nb, client = _client(REPO / "notebooks" / "05-docker.ipynb", tmp_path)
    client.execute()
    texts = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert not _errors(cell), (i, _errors(cell))
        assert not [o for o in cell.outputs if o.get("name") == "stderr"], (i, cell.outputs)  # nothing on red
        texts.append("".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream"))
    first = texts[0].strip().splitlines()
    assert len(first) == 1 and first[0].startswith("Skipping this notebook:") and "mlmanage-no-such-image" in first[0]
    assert all(t.strip() in ("", "Skipping: no Docker Engine or base image") for t in texts[2:]), texts
