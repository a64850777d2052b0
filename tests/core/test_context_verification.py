"""Build-context verification (images.verify_context): every file added to, removed from or
changed in a context is named in one error, and an unchanged context is checked by ``lstat``
alone through the owner-only stat cache, which can't make a changed file pass.

The added-file tests and the hash-count tests failed before the stat cache (files added were
not looked at; every verification re-hashed every file)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlmanage_jupyter.core import images
from mlmanage_jupyter.core.environment import InferenceConfig
from mlmanage_jupyter.core.errors import ArtifactCorruptError
from mlmanage_jupyter.core.image import Image
from mlmanage_jupyter.core.images import STAT_CACHE_NAME, verify_context
from mlmanage_jupyter.core.model import Model
from mlmanage_jupyter.core.workspace import Workspace

SCRIPT = "import json\n\ndef init():\n    pass\n\ndef run(data):\n    return json.loads(data)\n"


@pytest.fixture
def img(tmp_path: Path) -> Image:
    ws = Workspace(tmp_path / "ws")
    f = tmp_path / "model.pkl"
    f.write_bytes(b"weights" * 100)
    m = Model.register(ws, f, "m")
    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    (src / "score.py").write_text(SCRIPT)
    (src / "lib" / "helper.py").write_text("X = 1\n")
    return Image.create(ws, "svc", [m], InferenceConfig(entry_script="score.py", source_directory=str(src)))


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files verification re-hashes (a spy on images.sha256_file)."""
    calls: list[Path] = []
    real = images.sha256_file

    def spy(p: Path) -> tuple[str, int]:
        calls.append(Path(p))
        return real(p)

    monkeypatch.setattr(images, "sha256_file", spy)
    return calls


@pytest.fixture
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by the test count as settled at once (no 2 s wait for their timestamps)."""
    monkeypatch.setattr(images, "RACY_WINDOW_NS", -(10**12))


def _manifest_len(img: Image) -> int:
    return len(json.loads((img.context_path / ".manifest.json").read_bytes()))


# ---------------------------------------------------------------- what is caught
def test_planted_file_is_named_and_rebuild_is_the_advice(img: Image, tmp_path: Path) -> None:
    verify_context(img.record)
    (img.context_path / "app" / "src" / "evil.py").write_text("import os\n")
    with pytest.raises(ArtifactCorruptError) as e:
        verify_context(img.record)
    msg = str(e.value)
    assert "app/src/evil.py: added since the build" in msg and "Rebuild the image" in msg
    with pytest.raises(ArtifactCorruptError, match=r"app/src/evil.py: added"):
        img.save(tmp_path / "export")  # what save/deploy/update/package/export run first
    assert not (tmp_path / "export").exists()


def test_added_removed_changed_and_linked_files_are_all_named_in_one_error(img: Image) -> None:
    ctx = img.context_path
    (ctx / "azureml-models" / "m" / "1" / "extra.bin").write_bytes(b"x")
    (ctx / "app" / "src" / "lib" / "helper.py").unlink()
    (ctx / "requirements.txt").write_text("evil-package\n")
    (ctx / "app" / "linked").symlink_to("/etc")
    (ctx / "app" / "sub").mkdir()
    (ctx / "app" / "sub" / "deep.txt").write_text("x")
    with pytest.raises(ArtifactCorruptError) as e:
        verify_context(img.record)
    msg = str(e.value)
    for part in (
        "azureml-models/m/1/extra.bin: added since the build",
        "app/src/lib/helper.py: missing",
        "requirements.txt: size",
        "app/linked: added since the build (symbolic link)",
        "app/sub/deep.txt: added since the build",
    ):
        assert part in msg, part


def test_pycache_and_engine_files_are_not_additions(img: Image) -> None:
    ctx = img.context_path
    (ctx / "app" / "src" / "__pycache__").mkdir()
    (ctx / "app" / "src" / "__pycache__" / "score.cpython-311.pyc").write_bytes(b"\0")
    (ctx / "build.log").write_text("docker build output")
    verify_context(img.record)


def test_an_output_file_written_into_the_context_is_an_addition(img: Image) -> None:
    # a script writing into its cwd (the local target runs in the context) changes the image:
    # a Docker build would ship that file
    (img.context_path / "app" / "output.log").write_text("written by init()")
    with pytest.raises(ArtifactCorruptError, match=r"app/output.log: added since the build"):
        verify_context(img.record)


# ---------------------------------------------------------------- the stat cache
@pytest.mark.usefixtures("no_racy_window")
def test_unchanged_context_is_not_rehashed(img: Image, hashed: list[Path]) -> None:
    verify_context(img.record)
    assert len(hashed) == _manifest_len(img)  # cold: every file
    cache = img.context_path / STAT_CACHE_NAME
    assert cache.stat().st_mode & 0o777 == 0o600
    hashed.clear()
    verify_context(img.record)
    assert hashed == []  # warm: lstat only


@pytest.mark.usefixtures("no_racy_window")
def test_touched_file_with_same_content_is_rehashed_and_passes(img: Image, hashed: list[Path]) -> None:
    verify_context(img.record)
    script = img.context_path / "app" / "src" / "score.py"
    os.utime(script, ns=(1_000_000_000, 1_000_000_000))
    hashed.clear()
    verify_context(img.record)
    assert hashed == [script]
    hashed.clear()
    verify_context(img.record)
    assert hashed == []


@pytest.mark.usefixtures("no_racy_window")
def test_same_size_edit_with_restored_mtime_is_caught_through_the_cache(img: Image) -> None:
    verify_context(img.record)
    model_file = img.context_path / "azureml-models" / "m" / "1" / "model.pkl"
    st = model_file.stat()
    model_file.chmod(0o644)
    model_file.write_bytes(b"WEIGHTS" * 100)
    os.utime(model_file, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime put back; ctime can't be
    with pytest.raises(ArtifactCorruptError, match=r"model.pkl: content changed"):
        verify_context(img.record)


def _forge(img: Image, victim: Path, mode: int) -> None:
    """A cache claiming ``victim``'s current stat has the manifest's digest."""
    cache = img.context_path / STAT_CACHE_NAME
    data = json.loads(cache.read_text())
    rel = victim.relative_to(img.context_path).as_posix()
    st = victim.stat()
    data["files"][rel] = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev, data["files"][rel][5]]
    cache.write_text(json.dumps(data))
    cache.chmod(mode)


@pytest.mark.usefixtures("no_racy_window")
def test_cache_writable_by_others_is_ignored(img: Image) -> None:
    verify_context(img.record)
    script = img.context_path / "app" / "src" / "score.py"
    script.write_text(SCRIPT.replace("json.loads(data)", "eval(data)      "))  # same size
    _forge(img, script, 0o666)
    with pytest.raises(ArtifactCorruptError, match=r"score.py: content changed"):
        verify_context(img.record)


@pytest.mark.usefixtures("no_racy_window")
@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c.write_text("{not json"),
        lambda c: c.write_text(json.dumps({"format": 1, "context_digest": "0" * 64, "files": {}})),
        lambda c: c.write_text(json.dumps({"format": 1, "context_digest": None, "files": []})),
        lambda c: (c.unlink(), c.symlink_to("/dev/null")),
    ],
    ids=["malformed", "other-manifest", "wrong-shape", "symlink"],
)
def test_foreign_or_malformed_cache_means_full_hashing(img: Image, hashed: list[Path], tamper) -> None:  # type: ignore[no-untyped-def]
    verify_context(img.record)
    cache = img.context_path / STAT_CACHE_NAME
    tamper(cache)
    hashed.clear()
    verify_context(img.record)
    assert len(hashed) == _manifest_len(img)


def test_files_written_just_now_are_not_trusted_from_the_cache(img: Image, hashed: list[Path]) -> None:
    # racily clean: a write in the same timestamp tick as the hash would keep the stat
    verify_context(img.record)
    hashed.clear()
    verify_context(img.record)
    assert len(hashed) == _manifest_len(img)
