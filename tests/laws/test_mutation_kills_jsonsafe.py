"""laws.jsonsafe.finite_json, case by case: numpy values become Python ones,
non-finite floats become None, and the path of each replaced value is spelled
out exactly (dotted keys, [i] indices, "(value)" at the top)."""

import json
import math

import numpy as np

from sparsescale.laws.jsonsafe import finite_json


def test_top_level_values():
    assert finite_json(math.nan) == (None, ["(value)"])
    assert finite_json(-math.inf, "") == (None, ["(value)"])
    assert finite_json(math.inf, "here") == (None, ["here"])
    assert finite_json(np.float64("nan")) == (None, ["(value)"])
    assert finite_json(1.5) == (1.5, [])
    for v in ("text", 3, None, True, 0.0):
        out, bad = finite_json(v)
        assert out == v and type(out) is type(v) and bad == []


def test_numpy_scalars_and_arrays_become_python_values():
    out, bad = finite_json(np.float32(0.5))
    assert out == 0.5 and type(out) is float and bad == []
    out, bad = finite_json(np.int64(7))
    assert out == 7 and type(out) is int and bad == []
    out, bad = finite_json(np.bool_(True))
    assert out is True and bad == []
    out, bad = finite_json(np.array([[1.0, np.nan], [np.inf, 2.0]]))
    assert out == [[1.0, None], [None, 2.0]] and bad == ["[0][1]", "[1][0]"]
    assert type(out[0][0]) is float


def test_paths_through_dicts_lists_and_tuples():
    obj = {
        "a": {"b": math.nan, "c": [1.0, math.inf, {"d": -math.inf}]},
        "e": (np.float64(2.0), math.nan),
        7: math.nan,
        "ok": "x",
    }
    out, bad = finite_json(obj)
    assert out == {"a": {"b": None, "c": [1.0, None, {"d": None}]}, "e": [2.0, None], 7: None,
                   "ok": "x"}  # fmt: skip
    assert bad == ["a.b", "a.c[1]", "a.c[2].d", "e[1]", "7"]
    assert type(out["e"]) is list and type(out["e"][0]) is float
    # a path given from outside prefixes every path below it
    out, bad = finite_json({"k": [math.nan]}, "root")
    assert out == {"k": [None]} and bad == ["root.k[0]"]
    out, bad = finite_json([{"k": math.nan}, [math.nan]])
    assert out == [{"k": None}, [None]] and bad == ["[0].k", "[1][0]"]
    # the copy is new: the input keeps its NaN, and the result is JSON without NaN
    assert math.isnan(obj["a"]["b"])
    json.dumps(finite_json({"a": [math.nan, np.array([1.0])]})[0], allow_nan=False)
