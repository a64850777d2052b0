"""The nesting depth of JSON request bodies (server/json_depth.py): exact on any document, and
the limit that keeps a script's own recursion (json.loads in run(), inference_schema) from
turning a too-deep body into a 500."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from mlmanage_jupyter.server.json_depth import MAX_JSON_DEPTH, JSONTooDeep, check_json_depth, json_depth

# strings that look like structure: brackets, escaped quotes, backslashes before quotes
TRICKY = ['[[[', ']]]}}', '"[', '\\', '\\"]', 'a\\\\"{', '{"a": [1]}', '', '“[”', '\u2028]', '\ud83d\ude00[']


def nest(depth: int, leaf: Any = 1) -> Any:
    v = leaf
    for i in range(depth):
        v = [v] if i % 2 else {"k": v}
    return v


def deep_array(depth: int) -> bytes:
    """``[[...[1]...]]``, ``depth`` levels (json.dumps of it would hit the recursion limit here)."""
    return b"[" * depth + b"1" + b"]" * depth


def reference_depth(v: Any) -> int:
    if isinstance(v, list):
        return 1 + max(map(reference_depth, v), default=0)
    if isinstance(v, dict):
        return 1 + max(map(reference_depth, v.values()), default=0)
    return 0


def random_value(rng: random.Random, budget: int) -> Any:
    kind = rng.random()
    if budget <= 0 or kind < 0.3:
        return rng.choice([1, -2.5e-3, None, True, rng.choice(TRICKY), "plain"])
    n = rng.randint(0, 4)
    if kind < 0.65:
        return [random_value(rng, budget - 1) for _ in range(n)]
    return {rng.choice(TRICKY) + str(i): random_value(rng, budget - 1) for i in range(n)}


@pytest.mark.parametrize(
    "doc,depth",
    [
        ("1", 0),
        ('"[[["', 0),
        ("[]", 1),
        ("{}", 1),
        ('[[1], {"a": [2]}]', 3),
        ('["]]]", ["\\"[[", "\\\\"], {"]": "\\\\\\"{"}]', 2),
        (' \n[ [ ] ]\n', 2),
    ],
)
def test_depth_of_documents(doc: str, depth: int) -> None:
    json.loads(doc)  # each is a JSON document
    assert json_depth(doc) == depth
    assert json_depth(doc.encode()) == depth


def test_depth_agrees_with_the_parsed_value_on_random_documents() -> None:
    rng = random.Random(20261202)
    for _ in range(400):
        v = random_value(rng, rng.randint(0, 12))
        for text in (json.dumps(v), json.dumps(v, ensure_ascii=False, indent=1)):
            assert json_depth(text.encode("utf-8", "surrogatepass")) == reference_depth(v), text


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-32-be"])
def test_every_encoding_json_reads(encoding: str) -> None:
    doc = json.dumps([{"[": ["]]", [nest(5)]]}], ensure_ascii=False)
    body = doc.encode(encoding)
    assert json.loads(body) == json.loads(doc)
    assert json_depth(body) == reference_depth(json.loads(doc)) == 9


def test_the_limit_is_checked_past_it_only() -> None:
    check_json_depth(json.dumps(nest(MAX_JSON_DEPTH)).encode())
    check_json_depth(json.dumps({"rows": [[0.5] * 10] * 5000}).encode())  # many brackets, shallow
    check_json_depth(json.dumps({"text": "[" * 5000}).encode())  # brackets in a string count not
    with pytest.raises(JSONTooDeep) as e:
        check_json_depth(json.dumps(nest(MAX_JSON_DEPTH + 1)).encode())
    assert isinstance(e.value, ValueError) and (e.value.depth, e.value.limit) == (MAX_JSON_DEPTH + 1, MAX_JSON_DEPTH)
    assert str(e.value) == (
        f"the request body is JSON nested deeper than the limit of {MAX_JSON_DEPTH} levels (it nests "
        f"{MAX_JSON_DEPTH + 1}: arrays and objects inside each other): send the data less deeply nested"
    )
    with pytest.raises(JSONTooDeep, match=r"deeper than the limit of 3 levels \(it nests 4:"):
        check_json_depth("[[[[]]]]", limit=3)


ECHO = "import json\n\ndef init():\n    pass\n\ndef run(data):\n    return {'echo': json.loads(data)}\n"


def test_a_script_parsing_a_body_the_engine_read_does_not_fail_on_its_depth() -> None:
    """The fault the limit removes: in a run() thread, a few frames deep, ``json.loads`` of a
    body the engine's parser took (orjson reads 1024 levels, json about 990) hits the
    recursion limit; any body check_json_depth lets through parses there."""
    def run_thread_parse(body: bytes, frames: int = 30) -> Any:
        def deeper(k: int) -> Any:
            return json.loads(body) if k == 0 else deeper(k - 1)

        with ThreadPoolExecutor(1) as ex:
            return ex.submit(deeper, frames).result()

    deep = deep_array(985)
    with pytest.raises(RecursionError):
        run_thread_parse(deep)
    with pytest.raises(JSONTooDeep):
        check_json_depth(deep)
    ok = json.dumps(nest(MAX_JSON_DEPTH)).encode()
    check_json_depth(ok)
    assert run_thread_parse(ok, frames=800) == json.loads(ok)  # 800 frames of headroom left over


def test_the_engine_answers_a_too_deep_body_400_whatever_the_script_does(serve) -> None:
    sp = serve(ECHO)
    assert sp.score(nest(MAX_JSON_DEPTH)).status_code == 200
    r = requests.post(
        f"{sp.url}/score", data=deep_array(985), headers={"content-type": "application/json"}, timeout=30
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"] == str(JSONTooDeep(985, MAX_JSON_DEPTH))

