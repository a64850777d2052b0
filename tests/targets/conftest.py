"""Fixtures of the cross-target tests: the kubernetes suite's ``kube`` (kmock or a real
cluster) and ``namespace`` fixtures, loaded from tests/kubernetes/conftest.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_mlm_kubernetes_fixtures", Path(__file__).resolve().parents[1] / "kubernetes" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_k8s = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _k8s  # dataclasses look their module up while the file runs
_spec.loader.exec_module(_k8s)

kube = _k8s.kube
namespace = _k8s.namespace
