"""inference_schema's NumpyParameterType conversion, fast path (server/schema_fast.py): the same
array or the same error as the original method, on generated inputs (Hypothesis)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType

from mlmanage_jupyter.server import schema_fast

SAMPLES = [
    np.zeros((1, 3), dtype=np.float64),
    np.zeros((2, 2), dtype=np.float32),
    np.zeros((1, 2), dtype=np.int64),
    np.zeros(3, dtype=np.float64),
    np.zeros((1, 2, 2), dtype=np.float64),
    np.zeros((1, 2), dtype=bool),
    np.array([["a", "bc"]]),
    np.zeros((1, 2), dtype=object),
    np.array([(1, 2.0)], dtype=[("a", "i8"), ("b", "f8")]),  # structured: the original runs
    np.array(["2020-01-01"], dtype="datetime64[D]"),  # datetime: the original runs
]
scalars = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=20)


def outcome(fn, param, data):
    try:
        arr = fn(param, data)
    except Exception as e:  # noqa: BLE001 - the error is what is compared
        return ("error", type(e), str(e))
    return ("array", arr.dtype, arr.shape, repr(arr.tolist()))  # repr: NaN equals NaN


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: f"{s.dtype}{s.shape}")
@pytest.mark.parametrize("enforce", [(True, True), (True, False), (False, True)], ids=["both", "no-shape", "no-type"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(values, st.lists(st.lists(scalars, min_size=0, max_size=4), max_size=4)))
def test_fast_conversion_equals_inference_schemas(sample, enforce, data):
    param = NumpyParameterType(sample, enforce_column_type=enforce[0], enforce_shape=enforce[1])

    expected = outcome(schema_fast._ORIGINAL, param, copy.deepcopy(data))
    got = outcome(schema_fast.deserialize_input, param, copy.deepcopy(data))
    assert got == expected


def test_install_replaces_the_method_in_this_process():
    try:
        assert schema_fast.install()
        param = NumpyParameterType(np.zeros((1, 2)))
        arr = param.deserialize_input([[1, 2], [3, 4]])
        assert arr.dtype == np.float64 and arr.shape == (2, 2)
        assert NumpyParameterType.deserialize_input is schema_fast.deserialize_input
        with pytest.raises(ValueError, match="array has size 3 on dimension #1, while expected value is 2"):
            param.deserialize_input([[1, 2, 3]])
    finally:
        NumpyParameterType.deserialize_input = schema_fast._ORIGINAL
