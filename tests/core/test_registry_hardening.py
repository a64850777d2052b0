"""Issue 16, the registry and image build contexts under attack: special files and symbolic
links (one rule), temporary files of killed registrations, tampered metadata paths and edited
build contexts (digests), YAML alias bombs in conda specifications.

Every test here failed (or hung until its timeout) before the fix."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from mlmanage_jupyter.core.conda_dependencies import CondaDependencies
from mlmanage_jupyter.core.environment import Environment, InferenceConfig
from mlmanage_jupyter.core.errors import ArtifactCorruptError, ValidationError
from mlmanage_jupyter.core.image import Image
from mlmanage_jupyter.core.images import verify_context
from mlmanage_jupyter.core.model import Model, collect_garbage
from mlmanage_jupyter.core.store import metadata as md
from mlmanage_jupyter.core.targets.base import LocalDeploymentConfig
from mlmanage_jupyter.core.workspace import Workspace

SCRIPT = "import json\n\ndef init():\n    pass\n\ndef run(data):\n    return json.loads(data)\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "saved_model"
    (d / "variables").mkdir(parents=True)
    (d / "saved_model.pb").write_bytes(b"pb" * 100)
    (d / "variables" / "variables.data").write_bytes(os.urandom(10_000))
    return d


def _objects_and_tmp(ws: Workspace) -> tuple[int, list[str]]:
    objs = len(list(ws.artifacts.iter_objects()))
    return objs, sorted(p.name for p in (ws.path / "artifacts" / "tmp").iterdir())


# ---------------------------------------------------------------- special files and symbolic links
@pytest.mark.timeout(60)
def test_fifo_in_model_folder_refused_before_reading(ws: Workspace, folder: Path) -> None:
    fifo = folder / "variables" / "pipe"
    os.mkfifo(fifo)  # before the fix: registration blocked forever opening it
    with pytest.raises(ValidationError, match=r"pipe is a FIFO \(named pipe\), not a regular file"):
        Model.register(ws, folder, "m")
    assert _objects_and_tmp(ws) == (0, [])  # nothing read, nothing stored
    with pytest.raises(ValidationError, match="FIFO"):
        Model.register(ws, fifo, "m")


@pytest.mark.timeout(60)
def test_symlink_to_dev_zero_refused(ws: Workspace, folder: Path, tmp_path: Path) -> None:
    (folder / "zeros").symlink_to("/dev/zero")  # before: read until the disk was full
    with pytest.raises(ValidationError, match=r"zeros \(a symbolic link to /dev/zero\) is a character device"):
        Model.register(ws, folder, "m")
    assert _objects_and_tmp(ws) == (0, [])
    (tmp_path / "z.pkl").symlink_to("/dev/zero")
    with pytest.raises(ValidationError, match="character device"):
        Model.register(ws, tmp_path / "z.pkl", "m")


def test_socket_in_model_folder_refused(ws: Workspace, folder: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(folder / "sock"))
        with pytest.raises(ValidationError, match="sock is a socket"):
            Model.register(ws, folder, "m")
    finally:
        s.close()


def test_symlinked_folder_and_file_are_followed_under_their_link_names(ws: Workspace, folder: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared_assets"
    shared.mkdir()
    (shared / "vocab.txt").write_text("a b c")
    (folder / "assets").symlink_to(shared, target_is_directory=True)  # before: silently dropped
    (folder / "weights.bin").symlink_to(folder / "variables" / "variables.data")
    m = Model.register(ws, folder, "m")
    assert sorted(f["path"] for f in m.get_files()) == [
        "assets/vocab.txt", "saved_model.pb", "variables/variables.data", "weights.bin",
    ]  # fmt: skip
    out = Path(m.download(tmp_path / "dl"))
    assert (out / "assets" / "vocab.txt").read_text() == "a b c" and not (out / "assets").is_symlink()
    assert (out / "weights.bin").read_bytes() == (folder / "variables" / "variables.data").read_bytes()
    # a link to a file keeps the link's name as the model's root name
    (tmp_path / "alias.pkl").symlink_to(folder / "saved_model.pb")
    single = Model.register(ws, tmp_path / "alias.pkl", "single")
    assert Path(single.download(tmp_path / "dl2")).name == "alias.pkl"
    assert (tmp_path / "dl2" / "alias.pkl").read_bytes() == b"pb" * 100


def test_symlink_loop_and_broken_link_refused(ws: Workspace, folder: Path) -> None:
    (folder / "variables" / "up").symlink_to(folder, target_is_directory=True)
    with pytest.raises(ValidationError, match=r"symbolic link loop at .*variables/up"):
        Model.register(ws, folder, "m")
    (folder / "variables" / "up").unlink()
    (folder / "self").symlink_to(folder / "self")
    with pytest.raises(ValidationError, match=r"symbolic link loop at .*self"):
        Model.register(ws, folder, "m")
    (folder / "self").unlink()
    (folder / "gone").symlink_to(folder / "nothing-here")
    with pytest.raises(ValidationError, match=r"broken symbolic link .*gone"):
        Model.register(ws, folder, "m")


@pytest.mark.timeout(60)
def test_source_directory_follows_the_same_rule(ws: Workspace, tmp_path: Path) -> None:
    f = tmp_path / "model.pkl"
    f.write_bytes(b"weights")
    m = Model.register(ws, f, "m")
    src = tmp_path / "src"
    src.mkdir()
    (src / "score.py").write_text(SCRIPT)
    lib = tmp_path / "shared_lib"
    lib.mkdir()
    (lib / "helper.py").write_text("X = 1\n")
    (src / "lib").symlink_to(lib, target_is_directory=True)
    ic = InferenceConfig(entry_script="score.py", source_directory=str(src))
    img = Image.create(ws, "svc", [m], ic)
    assert (img.context_path / "app" / "src" / "lib" / "helper.py").read_text() == "X = 1\n"
    (src / "zeros.bin").symlink_to("/dev/zero")  # before: hashed by reading it whole into memory
    with pytest.raises(ValidationError, match=r"source directory: .*zeros.bin .* is a character device"):
        Image.create(ws, "svc", [m], ic)
    (src / "zeros.bin").unlink()
    os.mkfifo(src / "pipe")
    with pytest.raises(ValidationError, match=r"source directory: .*pipe is a FIFO"):
        Image.create(ws, "svc", [m], ic)


# ---------------------------------------------------------------- temporary files of killed registrations
_BLOCKED_REGISTER = textwrap.dedent(
    """
    import os, sys, time
    from mlmanage_jupyter.core.model import Model
    from mlmanage_jupyter.core.workspace import Workspace
    def blocked_fsync(fd):  # the file is written in full, not renamed yet: stop here
        print("writing", flush=True)
        time.sleep(600)
    os.fsync = blocked_fsync
    Model.register(Workspace(sys.argv[1]), sys.argv[2], "big")
    """
)
BIG = 8 << 20


def _start_blocked_registration(ws: Workspace, tmp_path: Path) -> subprocess.Popen[str]:
    big = tmp_path / "big.bin"
    if not big.exists():
        big.write_bytes(os.urandom(BIG))
    p = subprocess.Popen([sys.executable, "-c", _BLOCKED_REGISTER, str(ws.path), str(big)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    line = p.stdout.readline()
    assert line == "writing\n", p.stderr.read() if p.stderr else ""
    return p


def _kill9(p: subprocess.Popen[str]) -> None:
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL


def test_kill9_mid_registration_then_gc_frees_the_partial_file(ws: Workspace, tmp_path: Path) -> None:
    p = _start_blocked_registration(ws, tmp_path)
    _kill9(p)
    _, tmp = _objects_and_tmp(ws)
    assert len(tmp) == 1 and tmp[0].startswith("put-")
    assert (ws.path / "artifacts" / "tmp" / tmp[0]).stat().st_size == BIG
    env = dict(os.environ, MLMANAGE_WORKSPACE=str(ws.path))
    r = subprocess.run([sys.executable, "-m", "mlmanage_jupyter.cli", "gc", "-o", "json"], capture_output=True,
                       text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["temp_deleted"] == 1 and out["bytes_freed"] == BIG
    assert _objects_and_tmp(ws) == (0, [])


def test_live_registration_kept_then_collected_at_the_next_registration(ws: Workspace, tmp_path: Path) -> None:
    p = _start_blocked_registration(ws, tmp_path)
    try:
        assert collect_garbage(ws)["temp_deleted"] == 0  # its owner runs: kept
        assert len(_objects_and_tmp(ws)[1]) == 1
        f = tmp_path / "small.pkl"
        f.write_bytes(b"small")
        Model.register(ws, f, "small")  # opportunistic collection keeps a live owner's file too
        assert len(_objects_and_tmp(ws)[1]) == 1
    finally:
        _kill9(p)
    Model.register(ws, f, "small")  # the owner is gone: registration starts by removing it
    assert _objects_and_tmp(ws)[1] == []


def test_unmarked_temp_files_are_collected_by_age_or_explicit_gc(ws: Workspace, tmp_path: Path) -> None:
    tmpdir = ws.path / "artifacts" / "tmp"
    old, fresh = tmpdir / "put-legacy-old", tmpdir / "put-legacy-fresh"
    old.write_bytes(b"x" * 100)
    fresh.write_bytes(b"y" * 10)
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    f = tmp_path / "m.pkl"
    f.write_bytes(b"m")
    Model.register(ws, f, "m")
    assert sorted(p.name for p in tmpdir.iterdir()) == ["put-legacy-fresh"]  # young: may be a writer's
    other_host = tmpdir / "put-@00000000.4242.1700000000000@abc"  # a shared folder: another machine's
    other_host.write_bytes(b"z")
    assert collect_garbage(ws)["temp_deleted"] == 1  # explicit gc: every unmarked one
    assert [p.name for p in tmpdir.iterdir()] == [other_host.name]  # its owner can't be checked: kept
    os.utime(other_host, (two_days_ago, two_days_ago))
    assert collect_garbage(ws)["temp_deleted"] == 1
    assert list(tmpdir.iterdir()) == []


# ---------------------------------------------------------------- tampered metadata paths
def _set_file_path(ws: Workspace, old: str, new: str) -> None:
    with ws.write() as c:
        c.execute(update(md.model_files).where(md.model_files.c.path == old).values(path=new))


@pytest.mark.parametrize("evil", ["../../escaped.bin", "/tmp/mlmanage-escaped.bin", "a/../../escaped.bin", "a//b"])
def test_tampered_file_path_refused_nothing_written_outside(ws: Workspace, folder: Path, tmp_path: Path, evil: str) -> None:
    m = Model.register(ws, folder, "m")
    _set_file_path(ws, "saved_model.pb", evil)
    target = tmp_path / "a" / "b" / "target"
    target.mkdir(parents=True)
    with pytest.raises(ValidationError, match=rf"file path of model m:1 in the metadata is '{evil}', not a safe relative path"):
        m.download(target)
    with pytest.raises(ValidationError, match="not a safe relative path"):
        Model.get_model_path("m", 1, ws)
    assert not (tmp_path / "escaped.bin").exists() and not (tmp_path / "a" / "escaped.bin").exists()
    assert not Path("/tmp/mlmanage-escaped.bin").exists()
    assert list(target.iterdir()) == []


def test_tampered_root_name_and_digest_refused(ws: Workspace, folder: Path, tmp_path: Path) -> None:
    m = Model.register(ws, folder, "m")
    with ws.write() as c:
        c.execute(update(md.models).values(root_name="../outside"))
    with pytest.raises(ValidationError, match="root name of model m:1 in the metadata is '../outside'"):
        Model(ws, "m", 1).download(tmp_path / "t")
    with ws.write() as c:
        c.execute(update(md.models).values(root_name="saved_model"))
    # a path renamed inside the folder: safe, but the list no longer hashes to the version's sha256
    _set_file_path(ws, "saved_model.pb", "renamed.pb")
    with pytest.raises(ArtifactCorruptError, match="file list of model m:1 in the metadata no longer matches"):
        m.download(tmp_path / "t2")
    assert not (tmp_path / "t2").exists()


def test_symlink_in_target_leading_out_is_refused(ws: Workspace, folder: Path, tmp_path: Path) -> None:
    m = Model.register(ws, folder, "m")
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    (target / "saved_model").mkdir(parents=True)
    (target / "saved_model" / "variables").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValidationError, match="outside"):
        m.download(target, exist_ok=True)
    assert list(outside.iterdir()) == []


def test_materialized_cache_edited_is_made_again(ws: Workspace, folder: Path) -> None:
    m = Model.register(ws, folder, "m")
    path = Path(Model.get_model_path("m", 1, ws))
    (path / "saved_model.pb").chmod(0o644)
    (path / "saved_model.pb").write_bytes(b"evil")
    assert Path(Model.get_model_path("m", 1, ws)) == path
    assert (path / "saved_model.pb").read_bytes() == b"pb" * 100
    assert m.version == 1


# ---------------------------------------------------------------- edited image build contexts
def _image(ws: Workspace, tmp_path: Path) -> tuple[Model, InferenceConfig, Image]:
    f = tmp_path / "model.pkl"
    f.write_bytes(b"weights")
    m = Model.register(ws, f, "m")
    src = tmp_path / "src"
    src.mkdir()
    (src / "score.py").write_text(SCRIPT)
    ic = InferenceConfig(entry_script="score.py", source_directory=str(src))
    return m, ic, Image.create(ws, "svc", [m], ic)


def test_edited_build_context_refused_at_deploy_package_and_save(ws: Workspace, tmp_path: Path) -> None:
    m, ic, img = _image(ws, tmp_path)
    assert img.record.spec["context_digest"]
    verify_context(img.record)  # intact: no error
    script = img.context_path / "app" / "src" / "score.py"
    script.write_text(SCRIPT + "import os; os.system('curl evil')\n")
    with pytest.raises(ArtifactCorruptError, match=r"build context of image svc:1 was changed .*app/src/score.py: size"):
        img.save(tmp_path / "export")
    with pytest.raises(ArtifactCorruptError, match=r"app/src/score.py"):
        Model.deploy(ws, "svc", [m], ic, LocalDeploymentConfig())
    with pytest.raises(ArtifactCorruptError, match=r"app/src/score.py"):
        Model.package(ws, [m], ic, generate_dockerfile=True, image_name="svc").save(tmp_path / "pkg")
    assert not (tmp_path / "export").exists() and not (tmp_path / "pkg").exists()


def test_same_size_edit_of_a_model_file_in_a_context_is_named(ws: Workspace, tmp_path: Path) -> None:
    _m, _ic, img = _image(ws, tmp_path)
    model_file = img.context_path / "azureml-models" / "m" / "1" / "model.pkl"
    model_file.chmod(0o644)
    model_file.write_bytes(b"WEIGHTS")  # same size, other bytes
    with pytest.raises(ArtifactCorruptError, match=r"azureml-models/m/1/model.pkl: content changed"):
        img.save(tmp_path / "export")
    model_file.write_bytes(b"weights")
    (img.context_path / ".manifest.json").write_text("{}")  # hiding the edit in the manifest: refused too
    with pytest.raises(ArtifactCorruptError, match=r"\.manifest\.json: content changed"):
        img.save(tmp_path / "export")


def test_reusing_an_edited_context_for_a_new_image_name_is_refused(ws: Workspace, tmp_path: Path) -> None:
    m, ic, img = _image(ws, tmp_path)
    other = Image.create(ws, "other", [m], ic)  # same content, another name: the context is shared
    assert other.context_path == img.context_path
    verify_context(other.record)
    (img.context_path / "requirements.txt").write_text("evil-package\n")
    with pytest.raises(ArtifactCorruptError, match=r"requirements.txt"):
        Image.create(ws, "third", [m], ic)
    with pytest.raises(ArtifactCorruptError, match=r"image other:1 .*requirements.txt"):
        verify_context(other.record)


def test_bytecode_python_adds_to_its_context_is_not_an_edit(ws: Workspace, tmp_path: Path) -> None:
    # other added files are (tests/core/test_context_verification.py)
    _m, _ic, img = _image(ws, tmp_path)
    (img.context_path / "app" / "src" / "__pycache__").mkdir()
    (img.context_path / "app" / "src" / "__pycache__" / "score.cpython-311.pyc").write_bytes(b"\0")
    verify_context(img.record)  # what deploy/update/package run first: no error


# ---------------------------------------------------------------- YAML alias bomb
# 9 levels of 9 aliases: 9**9 = 387 million strings once expanded (copied, dumped or hashed)
BOMB = (
    "name: env\ndependencies:\n  - python=3.11\n  - pip\n"
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
)


@pytest.mark.timeout(60)
def test_yaml_alias_bomb_refused_quickly(ws: Workspace, tmp_path: Path) -> None:
    assert len(BOMB.encode()) < 500
    bomb = tmp_path / "myenv.yml"
    bomb.write_text(BOMB)
    with pytest.raises(ValidationError, match=r"myenv.yml: line 5, column 4: YAML anchors and aliases"):
        Environment.from_conda_specification("e", bomb)
    with pytest.raises(ValidationError, match="YAML anchors and aliases"):
        CondaDependencies(bomb)


def test_conda_yaml_other_faults_have_one_clear_error(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yml"
    deep.write_text("dependencies: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ValidationError, match="deep.yml"):
        Environment.from_conda_specification("e", deep)
    big = tmp_path / "big.yml"
    big.write_text("dependencies: []\n#" + "x" * (2 << 20) + "\n")
    with pytest.raises(ValidationError, match=r"big.yml is \d+ bytes; the limit is 1048576 bytes"):
        CondaDependencies(big)
    os.mkfifo(tmp_path / "fifo.yml")
    with pytest.raises(ValidationError, match="FIFO"):
        Environment.from_conda_specification("e", tmp_path / "fifo.yml")
    ok = tmp_path / "ok.yml"
    ok.write_text("name: e\ndependencies:\n  - python=3.11\n  - pip:\n    - numpy\n")
    assert Environment.from_conda_specification("e", ok).pip_requirements == ["numpy"]
