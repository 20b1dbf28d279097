"""laws.points, case by case: every column check word for word, the shapes a
column may come in, the optional columns (pattern, dense_tokens), `take` by
mask and by indices, and FitOptions' defaults and `replace`."""

import dataclasses
import math

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws.points import COLUMNS, FitOptions, Points


def refused(message, *args, **kw):
    with pytest.raises(SparsescaleError) as exc:
        Points(*args, **kw)
    assert str(exc.value) == message
    return exc.value


def test_columns_word_for_word():
    assert COLUMNS == ("sparsity", "n_nonzero", "data", "loss")
    y = [3.0, 2.5, 2.0]
    e = refused("loss: expected numbers, got 'abc'", None, [1, 2, 3], [1, 2, 3], "abc")
    assert e.param == "loss"
    # the repr is cut at 60 characters
    long = ["x" * 100]
    refused(f"n_nonzero: expected numbers, got {long!r:.60}", None, long, [1, 2, 3], y)
    assert len(f"{long!r:.60}") == 60
    refused("data: expected numbers, got [[1, 2], [3]]", None, [1, 2, 3], [[1, 2], [3]], y)
    refused(
        "n_nonzero: 2 values, but loss has 3; the columns must have the same length",
        None, [1, 2], [1, 2, 3], y,
    )  # fmt: skip
    refused(
        "sparsity: 4 values, but loss has 3; the columns must have the same length",
        [0, 0, 0, 0], [1, 2, 3], [1, 2, 3], y,
    )  # fmt: skip
    refused("data: row 3 is inf (not finite)", None, [1, 2, 3], [1, 2, math.inf], y)
    refused("loss: row 1 is nan (not finite)", None, [1, 2, 3], [1, 2, 3], [math.nan, 1, 2])
    refused("dense_tokens: row 2 is nan (not finite)", None, [1, 2, 3], [1, 2, 3], y,
            dense_tokens=[0, math.nan, 0])  # fmt: skip
    refused(
        "dense_tokens: 2 values, but loss has 3; the columns must have the same length",
        None, [1, 2, 3], [1, 2, 3], y, dense_tokens=[0, 1],
    )  # fmt: skip
    refused(
        "pattern: 2 values, but loss has 3; the columns must have the same length",
        None, [1, 2, 3], [1, 2, 3], y, pattern=["2:4", None],
    )  # fmt: skip


def test_shapes_and_optional_columns():
    p = Points(None, [[1.0], [2.0], [3.0]], (4, 5, 6), np.array([3.0, 2.5, 2.0]))
    assert len(p) == 3
    S, N, D, y = p.arrays
    assert S.tolist() == [0.0, 0.0, 0.0] and N.tolist() == [1.0, 2.0, 3.0]
    assert D.dtype == float and D.tolist() == [4.0, 5.0, 6.0] and y.shape == (3,)
    assert p.pattern is None and p.dense_tokens is None
    one = Points(0.5, 10, 100, 2.0)  # scalars: one run
    assert len(one) == 1 and one.sparsity.tolist() == [0.5] and one.loss.tolist() == [2.0]
    q = Points([0.5, 0.5], [1, 2], [3, 4], [2, 1], pattern=["2:4", None], dense_tokens=[1, 0])
    assert q.pattern == ("2:4", None) and isinstance(q.pattern, tuple)
    assert q.dense_tokens.tolist() == [1.0, 0.0] and q.dense_tokens.dtype == float
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.loss = None  # frozen: points do not change under a fit
    assert Points(None, [1], [1], [1]) != Points(None, [1], [1], [1])  # eq=False: identity


def test_take_by_mask_and_by_indices():
    p = Points(
        [0.0, 0.5, 0.75, 0.5],
        [1, 2, 3, 4],
        [10, 20, 30, 40],
        [4.0, 3.0, 2.0, 1.0],
        pattern=[None, "2:4", "1:4", "2:4"],
        dense_tokens=[0, 5, 6, 7],
    )
    m = p.take(np.array([True, False, True, False]))
    assert m.sparsity.tolist() == [0.0, 0.75] and m.n_nonzero.tolist() == [1.0, 3.0]
    assert m.data.tolist() == [10.0, 30.0] and m.loss.tolist() == [4.0, 2.0]
    assert m.pattern == (None, "1:4") and m.dense_tokens.tolist() == [0.0, 6.0]
    i = p.take([3, 1, 1])  # indices, in their order, repeats kept
    assert i.loss.tolist() == [1.0, 3.0, 3.0] and i.pattern == ("2:4", "2:4", "2:4")
    assert i.dense_tokens.tolist() == [7.0, 5.0, 5.0] and i.data.tolist() == [40.0, 20.0, 20.0]
    assert i.sparsity.tolist() == [0.5, 0.5, 0.5] and i.n_nonzero.tolist() == [4.0, 2.0, 2.0]
    # a 0/1 integer array is indices, not a mask
    assert p.take(np.array([1, 0])).loss.tolist() == [3.0, 4.0]
    bare = Points(None, [1, 2], [1, 2], [2.0, 1.0]).take([True, False])
    assert bare.pattern is None and bare.dense_tokens is None and bare.loss.tolist() == [2.0]


def test_fit_options_defaults_and_replace():
    o = FitOptions()
    assert dataclasses.asdict(o) == {
        "form": "sparse",
        "space": "log",
        "delta": None,
        "seed": 0,
        "base": None,
        "mean_sparsity_fraction": None,
        "n_candidates": 4096,
        "n_starts": 32,
        "units": None,
        "tokens_per_unit": None,
    }
    r = o.replace(seed=3, form="dense")
    assert (r.seed, r.form, r.space) == (3, "dense", "log") and o.seed == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.seed = 1
    assert FitOptions() == FitOptions() and hash(FitOptions()) == hash(FitOptions())
