"""JSON of the request path: orjson's speed with the semantics of Python's ``json`` module.

Azure's inference server reads request bodies with ``json.loads`` and writes ``run()``'s
output with ``json.dumps`` (azureml-inference-server-http). orjson is 3-10x faster but differs
on a few values, so each function takes orjson's answer only where it is the same value and
otherwise falls back to ``json``, which then gives Azure's answer (or error):

* :func:`loads`: orjson rejects what ``json`` accepts (``NaN``/``Infinity`` literals, numbers
  beyond a double's range, lone surrogates, a UTF-8 BOM, UTF-16/32 bodies) - any orjson error
  re-parses with ``json.loads``, whose value or ``JSONDecodeError``/``UnicodeDecodeError`` is
  the answer. orjson silently reads integers beyond 64 bits as floats where ``json`` keeps
  them exact, so a body with a run of 20+ digits not after a ``.`` (an integer >= 2**64, or
  such a run inside a string) is parsed by ``json.loads`` (a byte scan, ~2 µs per KiB).
  Where both parse a document they give the same value (same float rounding, last duplicate
  key wins).
* :func:`dumps`: orjson writes NaN/Infinity as ``null`` where ``json.dumps`` writes ``NaN``/
  ``Infinity``, and refuses non-string keys, integers beyond 64 bits and deep nesting: an
  orjson output containing ``null`` (a real ``None`` or a non-finite float) and any orjson
  error are redone with ``json.dumps``. numpy arrays/scalars and pandas objects go through
  the same ``default`` (``tolist()``, ``to_dict("records")``) in both, so values are equal;
  only the bytes differ (no spaces after separators, UTF-8 instead of ``\\uXXXX`` escapes),
  which is the same JSON document. Where orjson accepts what ``json.dumps`` refuses (a
  ``uuid.UUID`` or a plain ``Enum`` member: written as its string/value) the answer is that
  value instead of Azure's 500; dataclasses and datetimes are refused as by ``json.dumps``.

Without orjson installed both are plain ``json``.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is in the serve extra; the engine still works without it
    orjson = None  # type: ignore[assignment]


def _json_default(obj: Any) -> Any:
    tolist = getattr(obj, "tolist", None)  # numpy arrays and scalars, pandas Series/Index
    if callable(tolist):
        return tolist()
    to_dict = getattr(obj, "to_dict", None)  # pandas DataFrame
    if callable(to_dict):
        return to_dict(orient="records")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"run() returned a {type(obj).__name__}, which is not JSON serializable")


def json_dumps(obj: Any) -> bytes:
    """``json.dumps`` (Azure's serializer) with numpy/pandas support, UTF-8 encoded.

    Raises TypeError/ValueError when ``obj`` is not serializable."""
    return json.dumps(obj, default=_json_default).encode("utf-8")


if orjson is not None:
    # dataclasses and datetimes go to `default` (which refuses them, as json.dumps does)
    _OPTS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME

    # digits -> "0", "." kept, anything else -> " ": an integer part of 20+ digits is " 000..."
    _DIGITS = bytes(48 if 48 <= i <= 57 else 46 if i == 46 else 32 for i in range(256))
    _BIG_INT = b" " + b"0" * 20

    def loads(data: bytes) -> Any:
        """Parse a request body as ``json.loads(data)`` does (same value, same errors):
        JSONDecodeError, UnicodeDecodeError, RecursionError for nesting deeper than ``json``
        reads (about 1000 levels; orjson stops at 1024), ValueError for an integer of more
        than 4300 digits (``sys.get_int_max_str_digits()``). The app answers each with 400."""
        if len(data) >= 20 and _BIG_INT in b" " + data.translate(_DIGITS):
            return json.loads(data)
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return json.loads(data)

    def dumps(obj: Any) -> bytes:
        """Serialize ``run()``'s output to the same JSON value as ``json.dumps`` (see the module doc).

        Raises TypeError/ValueError (``json.dumps``'s) when ``obj`` is not serializable."""
        try:
            out = orjson.dumps(obj, default=_json_default, option=_OPTS)
        except (TypeError, ValueError):
            return json_dumps(obj)
        if b"null" in out:
            return json_dumps(obj)
        return out

else:  # pragma: no cover
    loads = json.loads  # type: ignore[assignment]
    dumps = json_dumps
