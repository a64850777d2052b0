"""No import cycle bites, whichever module of mlmanage_jupyter is imported first.

A cycle held together by import order only fails when a process happens to import one
particular module first. So every module (found with pkgutil.walk_packages) is imported
first in its own fresh interpreter, and one more interpreter imports them all in a random
order; the seed is in the failure message.
"""

from __future__ import annotations

import pkgutil
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

import mlmanage_jupyter


def _modules() -> list[str]:
    """Every module of the package except ``__main__`` ones (they run a server)."""
    return sorted(
        m.name
        for m in pkgutil.walk_packages(mlmanage_jupyter.__path__, "mlmanage_jupyter.")
        if not m.name.endswith("__main__")
    )


def _import_in_fresh_interpreter(names: list[str]) -> str | None:
    code = "import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\n"
    p = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, timeout=300)
    return None if p.returncode == 0 else f"{names[0]} (then {len(names) - 1} more): {p.stderr.strip()[-1500:]}"


def test_walk_finds_every_layer() -> None:
    names = set(_modules())
    for expected in ("mlmanage_jupyter.core.model", "mlmanage_jupyter.core.store.models", "mlmanage_jupyter.magics",
                     "mlmanage_jupyter.server.app", "mlmanage_jupyter.core.targets.base", "mlmanage_jupyter.widgets"):
        assert expected in names


@pytest.mark.slow
def test_every_module_imports_when_imported_first() -> None:
    names = _modules()
    random.SystemRandom().shuffle(names)
    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = [f for f in pool.map(lambda n: _import_in_fresh_interpreter([n]), names) if f]
    assert not failures, "these modules fail when imported first in a fresh interpreter:\n" + "\n\n".join(failures)


def test_all_modules_import_in_a_random_order() -> None:
    seed = random.SystemRandom().randrange(1 << 30)
    names = _modules()
    random.Random(seed).shuffle(names)
    failure = _import_in_fresh_interpreter(names)
    assert failure is None, f"seed {seed}, order {names}:\n{failure}"
