"""Azure's workspace surface: ``.azureml/config.json`` read as Azure searches it (v1 docs
"Create a workspace configuration file"), the first cell of every notebook
(``ws.name, ws.resource_group, ws.location, ws.subscription_id``), ``write_config``,
``Workspace.get`` and ``azureml.core.VERSION``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mlmanage_jupyter
from mlmanage_jupyter.core import VERSION
from mlmanage_jupyter.core.errors import NotFoundError, ValidationError
from mlmanage_jupyter.core.workspace import Workspace

AZURE_CONFIG = {"subscription_id": "0000-1111", "resource_group": "rg-ml", "workspace_name": "ws-docs"}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLMANAGE_WORKSPACE", raising=False)
    proj = tmp_path / "proj"
    (proj / ".azureml").mkdir(parents=True)
    (proj / ".azureml" / "config.json").write_text(json.dumps(AZURE_CONFIG))
    (proj / "notebooks").mkdir()
    monkeypatch.chdir(proj / "notebooks")  # Azure searches the folder, then its parents
    return proj


def test_azure_config_opens_the_project_workspace_of_that_name(project: Path) -> None:
    ws = Workspace.from_config()
    assert ws.path == project / ".mlmanage"
    assert not (project / ".azureml" / "metadata.db").exists()  # not a workspace inside .azureml/
    print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep="\n")
    assert (ws.name, ws.resource_group, ws.location, ws.subscription_id) == ("ws-docs", "rg-ml", "local", "0000-1111")
    details = ws.get_details()
    assert details["id"] == "/subscriptions/0000-1111/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/ws-docs"
    assert details["name"] == "ws-docs" and details["location"] == "local"
    # the same workspace every time, and from the project folder too
    assert Workspace.from_config(path=str(project)).path == ws.path
    assert Workspace.from_config(path=str(project / ".azureml" / "config.json")).path == ws.path


def test_config_json_in_the_folder_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.json").write_text(json.dumps({**AZURE_CONFIG, "location": "westeurope"}))
    ws = Workspace.from_config(path=tmp_path)
    assert ws.path == tmp_path / ".mlmanage" and ws.location == "westeurope"


def test_a_folder_of_another_azure_workspace_is_refused(project: Path) -> None:
    Workspace.from_config()
    (project / ".azureml" / "config.json").write_text(json.dumps({**AZURE_CONFIG, "workspace_name": "other"}))
    with pytest.raises(ValidationError, match=r"names workspace 'other' but .* is workspace 'ws-docs'"):
        Workspace.from_config()


def test_an_auto_created_workspace_takes_the_azure_name(project: Path) -> None:
    Workspace(project / ".mlmanage")  # made earlier by a plain Workspace() call
    assert Workspace.from_config().name == "ws-docs"


def test_bad_azure_config(project: Path) -> None:
    (project / ".azureml" / "config.json").write_text(json.dumps({**AZURE_CONFIG, "workspace_name": ""}))
    with pytest.raises(ValidationError, match="workspace_name must be a non-empty string"):
        Workspace.from_config()


def test_write_config_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLMANAGE_WORKSPACE", raising=False)
    ws = Workspace.create(path=tmp_path / "elsewhere" / "ws", name="team")
    written = Path(ws.write_config(path=tmp_path / "nb"))
    assert written == tmp_path / "nb" / ".azureml" / "config.json"
    cfg = json.loads(written.read_text())
    assert cfg["workspace_name"] == "team" and cfg["resource_group"] == "local"
    monkeypatch.chdir(tmp_path / "nb")
    assert Workspace.from_config().path == ws.path


def test_workspace_get_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLMANAGE_WORKSPACE", raising=False)
    with pytest.raises(NotFoundError, match="no local workspace named 'team'"):
        Workspace.get("team", subscription_id="x", resource_group="y")
    assert not (tmp_path / ".mlmanage").exists()  # looking created nothing
    Workspace.create(path=tmp_path / ".mlmanage", name="team")
    assert Workspace.get("team").path == tmp_path / ".mlmanage"
    with pytest.raises(NotFoundError, match=r"looked at: .*'team'"):
        Workspace.get("other")


def test_version() -> None:
    assert VERSION == mlmanage_jupyter.__version__
