"""What the ``mlmanage`` CLI prints, written the way the Azure CLI (``az``) writes it.

Every command that answers with data takes ``-o/--output`` and ``--query`` as ``az`` does:

- ``--query EXPR``: a JMESPath expression (https://jmespath.org, the ``jmespath`` library as
  ``az`` uses it) applied to the command's JSON answer before it is printed; objects the
  expression builds (``{a: x, b: y}``) keep their key order.
- ``-o json`` (2-space indent), ``-o yaml``, ``-o tsv``, ``-o table``, ``-o none``;
  ``jsonc`` / ``yamlc`` (``az``'s coloured forms) print as ``json`` / ``yaml``.

``tsv`` and ``table`` follow ``az``'s formatter (``knack.output``: ``_TsvOutput``,
``_TableOutput``): tsv writes one line per list item, a dict's values tab-separated in key
order (sorted, or as a ``--query`` built them), a nested list as its length, a nested dict
as an empty field, booleans as ``true``/``false``; a bare value prints as itself, so
``--query "[0].id" -o tsv`` prints just the id. ``table`` without ``--query`` shows the
command's own columns; with it, the scalar fields of the query's answer, headers capitalised,
``id``/``type``/``etag`` left out (as ``az`` does). An answer of ``null`` prints nothing.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from io import StringIO
from typing import Any

import jmespath
import jmespath.exceptions
import yaml
from tabulate import tabulate

from mlmanage_jupyter.core.errors import ValidationError

#: ``-o`` choices, ``az``'s names (``cmd`` is left out: it is for ``az vm run-command``)
FORMATS = ("table", "json", "jsonc", "tsv", "yaml", "yamlc", "none")

#: ``az``'s environment variable for the default ``-o`` (its ``[core] output`` setting)
OUTPUT_ENV = "AZURE_CORE_OUTPUT"


def default_output(command_default: str, environ: Mapping[str, str] | None = None) -> str:
    """The ``-o`` format when none is given: ``$AZURE_CORE_OUTPUT`` when set and not empty
    (``az``'s "environment variables override the configuration file": ``[core] output``
    -> ``AZURE_CORE_OUTPUT``, azure-cli's "Azure CLI configuration" page), else the command's
    own default (``table`` for most of ours; ``az``'s is ``json``). Case-insensitive, as
    ``-o``. Raises ValidationError naming the variable and the choices for another value."""
    value = (os.environ if environ is None else environ).get(OUTPUT_ENV, "").strip().lower()
    if not value:
        return command_default
    if value not in FORMATS:
        raise ValidationError(f"{OUTPUT_ENV}={value!r} is not an output format: use one of {', '.join(FORMATS)}")
    return value
_SKIP_TABLE_KEYS = ("id", "type", "etag")


@dataclass
class Answer:
    """A command's answer: ``data`` (JSON-able: what ``-o json`` prints and ``--query``
    searches) and, for ``-o table`` without a query, the command's own view of it:
    ``rows`` (dicts) shown as a table with ``columns``, or ``text`` printed as it is (also
    when ``data`` is None: a message such as ``deleted model m:1``). With neither, a dict
    prints as ``key  value`` lines and anything else as tsv."""

    data: Any
    rows: Sequence[dict[str, Any]] | None = None
    columns: Sequence[str] = field(default_factory=tuple)
    text: str | None = None


def apply_query(data: Any, query: str | None) -> Any:
    """``data`` searched with the JMESPath ``query`` (unchanged without one).

    Raises ValidationError naming the expression when it does not parse."""
    if not query:
        return data
    try:
        expr = jmespath.compile(query)
    except jmespath.exceptions.JMESPathError as e:
        raise ValidationError(f"--query {query!r} is not a JMESPath expression: {' '.join(str(e).split())}") from None
    try:
        return expr.search(data, jmespath.Options(dict_cls=OrderedDict))
    except jmespath.exceptions.JMESPathError as e:  # e.g. a function given the wrong type
        raise ValidationError(f"--query {query!r} failed: {' '.join(str(e).split())}") from None


def render(answer: Answer, output: str, query: str | None = None) -> str:
    """The text to print for ``answer`` in format ``output`` (one of :data:`FORMATS`), after
    ``query``; ends with a newline unless empty. Raises ValidationError for an unknown format
    or a bad query."""
    output = output.lower()
    if output not in FORMATS:
        raise ValidationError(f"-o {output!r}: use one of {', '.join(FORMATS)}")
    data = apply_query(answer.data, query)
    if output == "none":
        return ""
    if output == "table" and not query and answer.text is not None:
        return answer.text if answer.text.endswith("\n") or not answer.text else answer.text + "\n"
    if data is None:
        return ""
    if output in ("json", "jsonc"):
        return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    if output in ("yaml", "yamlc"):
        return yaml.safe_dump(json.loads(json.dumps(data, default=str)), default_flow_style=False, allow_unicode=True)
    if output == "tsv":
        return tsv(data)
    # table
    if query:
        return auto_table(data)
    if answer.rows is not None:
        return table(answer.rows, answer.columns)
    if isinstance(data, dict):
        return key_values(data)
    return tsv(data)


def tsv(data: Any) -> str:
    """``az -o tsv``: one line per item of a list (or for the one value)."""
    out = StringIO()
    for item in data if isinstance(data, list) else [data]:
        if isinstance(item, dict):
            values = list(item.values()) if isinstance(item, OrderedDict) else [v for _, v in sorted(item.items())]
            out.write("\t".join(_tsv_field(v) for v in values))
        elif isinstance(item, list):
            out.write("\t".join(_tsv_field(v) for v in item))
        else:
            out.write(_tsv_field(item))
        out.write("\n")
    return out.getvalue()


def _tsv_field(v: Any) -> str:
    if isinstance(v, list):
        return str(len(v))
    if isinstance(v, dict):
        return ""
    if isinstance(v, bool):
        return str(v).lower()
    return v if isinstance(v, str) else str(v)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` as a plain-text table with ``columns`` (``(none)`` when empty)."""
    if not rows:
        return "(none)\n"
    body = [[_cell(r.get(c)) for c in columns] for r in rows]
    return tabulate(body, headers=list(columns), tablefmt="simple", disable_numparse=True) + "\n"


def auto_table(data: Any) -> str:
    """``az -o table`` of a query's answer: scalar fields of each item, headers capitalised."""
    items = data if isinstance(data, list) else [data]
    rows: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, dict):
            rows.append({k[:1].upper() + k[1:]: v for k, v in item.items()
                         if k not in _SKIP_TABLE_KEYS and v is not None and not isinstance(v, (list, dict))})  # fmt: skip
        elif isinstance(item, list):
            rows.append({f"Column{i + 1}": v for i, v in enumerate(item)})
        else:
            rows.append({"Result": item})
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    return table(rows, columns) if columns else ""


def key_values(data: dict[str, Any]) -> str:
    """A dict as aligned ``key  value`` lines (nested values as JSON)."""
    width = max((len(k) for k in data), default=0)
    return "".join(f"{k.ljust(width)}  {_cell(v)}\n" for k, v in data.items())


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def emit(answer: Answer, output: str, query: str | None, echo: Callable[[str], None]) -> None:
    """Render ``answer`` and hand the text (if any) to ``echo`` (no newline added)."""
    text = render(answer, output, query)
    if text:
        echo(text)
