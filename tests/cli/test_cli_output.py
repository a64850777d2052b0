"""``cli_output``: az's output formats (knack's ``_TsvOutput`` / ``_TableOutput``) and ``--query``."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import yaml

from mlmanage_jupyter.cli_output import Answer, apply_query, render, tsv
from mlmanage_jupyter.core.errors import ValidationError

MODELS = [
    {"name": "b", "version": 2, "tags": {"k": "v"}, "files": ["x", "y"], "isFolder": True, "description": None},
    {"name": "a", "version": 1, "tags": {}, "files": [], "isFolder": False, "description": "first"},
]


def test_tsv_rows_as_az_writes_them() -> None:
    # dict values in sorted key order: description, files, isFolder, name, tags, version
    assert tsv(MODELS) == "None\t2\ttrue\tb\t\t2\nfirst\t0\tfalse\ta\t\t1\n"
    assert tsv(OrderedDict([("z", 1), ("a", 2)])) == "1\t2\n"  # a query's object keeps its order
    assert tsv("bidaf_onnx:1") == "bidaf_onnx:1\n"
    assert tsv([["a", 1], ["b", 2]]) == "a\t1\nb\t2\n"
    assert tsv([]) == ""


def test_render_formats() -> None:
    answer = Answer(MODELS, rows=[{"name": "b"}, {"name": "a"}], columns=["name"])
    assert yaml.safe_load(render(answer, "yaml")) == MODELS == yaml.safe_load(render(answer, "yamlc"))
    assert render(answer, "json") == render(answer, "jsonc") and render(answer, "none") == ""
    assert render(answer, "table").split() == ["name", "------", "b", "a"]
    assert render(answer, "table", "[].{name: name, files: files, version: version}").splitlines()[0].split() == \
        ["Name", "Version"]  # fmt: skip
    assert render(Answer(None, text="deleted model a:1"), "table") == "deleted model a:1\n"
    assert render(Answer(None, text="deleted model a:1"), "json") == ""
    assert render(Answer({"k": [1], "n": None}), "table") == "k  [1]\nn  \n"
    assert render(Answer(MODELS), "TSV", "[0].name") == "b\n"  # az lower-cases -o
    with pytest.raises(ValidationError, match="-o 'xml': use one of"):
        render(answer, "xml")


def test_query_errors_name_the_expression() -> None:
    assert apply_query(MODELS, "[?version > `1`].name") == ["b"]
    assert apply_query(MODELS, None) is MODELS
    with pytest.raises(ValidationError, match=r"--query '\[0\.' is not a JMESPath expression"):
        apply_query(MODELS, "[0.")
    with pytest.raises(ValidationError, match=r"--query 'abs\(\[0\].name\)' failed"):
        apply_query(MODELS, "abs([0].name)")
