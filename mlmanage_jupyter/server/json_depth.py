"""How deeply a JSON request body nests, and the limit the scoring engine puts on it.

Python reads nested JSON recursively: ``json.loads`` (Azure's parser), ``json.dumps``,
``inference_schema``'s conversions and most code an entry script runs on the value recurse
once or more per level, and Python stops at ``sys.getrecursionlimit()`` frames (1000) with
RecursionError. The engine's own parser reads up to about 990 levels (orjson: 1024), but a
script that parses the body again (``json.loads(data)`` in ``run()``) or walks the value runs
in a thread already some frames deep and fails a few levels earlier: a 500 for what is the
client's fault. A body nested more than :data:`MAX_JSON_DEPTH` levels is refused up front
(:func:`check_json_depth`, 400), whatever the script would have done with it; that limit is
serde_json's default recursion limit (128), far above what model inputs use (a 6-D tensor
nests 7 levels, pandas ``records`` 2) and far below where Python's recursion limit bites.

The depth is that of the arrays and objects: ``1`` and ``"x"`` are 0, ``[]`` and ``{}`` 1,
``[[1], {"a": [2]}]`` 3. Brackets inside strings do not count.
"""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate

#: the deepest nesting of arrays/objects a request body may have (serde_json's default
#: recursion limit; Python's recursion limit is 1000 frames)
MAX_JSON_DEPTH = 128

# every byte but the quote and the four brackets, to delete
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
# what is left of a string once its content is deleted and its escapes are gone
_STRING = re.compile(rb'"[^"]*"')
# opening bracket -> +1, closing -> -1 (as a signed byte)
_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


class JSONTooDeep(ValueError):
    """A request body nested deeper than the limit. ``depth``: how deep it nests; ``limit``:
    the limit; ``str()``: the message for the client (what the limit is, what to change)."""

    def __init__(self, depth: int, limit: int) -> None:
        self.depth, self.limit = depth, limit
        super().__init__(
            f"the request body is JSON nested deeper than the limit of {limit} levels (it nests {depth}: "
            "arrays and objects inside each other): send the data less deeply nested"
        )


def json_depth(data: bytes | str) -> int:
    """The deepest nesting of arrays and objects in the JSON document ``data`` (bytes in any
    encoding ``json.loads`` reads: UTF-8, UTF-16 or UTF-32, as ``json.detect_encoding`` tells;
    or str). Meant for a document that parsed: for malformed JSON the answer is the depth of
    its brackets outside of its (well-formed) strings. Cost: a few byte scans in C (about 1.5 ms per
    MiB; 20-35 % of orjson's parse of the same body), no Python loop per value."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    else:
        encoding = json.detect_encoding(data)
        if encoding not in ("utf-8", "utf-8-sig"):
            data = data.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
    if b"\\" in data:  # escapes (only inside strings): an escaped quote ends no string
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    seq = data.translate(None, _NOT_STRUCTURE)  # quotes and brackets, in order
    if b'"' in seq:
        # quotes alternate opening/closing: deleting two adjacent ones deletes a string without
        # brackets or the bracket-less gap between two strings; what is left is rarer
        seq = seq.replace(b'""', b"")
        if b'"' in seq:
            seq = _STRING.sub(b"", seq)
    return max(accumulate(array("b", seq.translate(_STEP))), default=0)


def check_json_depth(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise :class:`JSONTooDeep` (a ValueError) when the JSON document ``data`` nests
    arrays/objects more than ``limit`` levels (:func:`json_depth`). A body with at most
    ``limit`` brackets returns after two ``bytes.count`` scans (every usual request)."""
    if isinstance(data, (bytes, bytearray)) and data.count(b"[") + data.count(b"{") <= limit:
        return
    depth = json_depth(data)
    if depth > limit:
        raise JSONTooDeep(depth, limit)
