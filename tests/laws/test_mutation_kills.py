"""Law forms, fitting and planning against hand calculations.

Written against the mutants of laws/ that the paper-data tests let survive
(see docs/mutation.md): every expected number below is worked out in a
comment (round coefficients chosen so the powers are exact), or comes from a
brute-force reference written here, never from the code under test. The
tests go through the public functions (Law, fit_law, the planning and
interval functions) so that they hold across refactors of the modules.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws.forms import Law, load_law, preset, schedule_mean_sparsity_fraction

# Round coefficients: every power below is exact.
SPARSE = {"aS": 2.0, "bS": 0.5, "cS": 1.0, "bN": 1.0, "aD": 10.0, "bD": 2.0, "c": 0.5}
DENSE = {"A": 8.0, "alpha": 1.0 / 3.0, "B": 9.0, "beta": 0.5, "E": 1.0}
AVG = {"A": 3.0, "alpha": 0.5, "B": 4.0, "beta": 1.0, "E": 0.25}


# ---------------------------------------------------------------------------
# forms: the value of each law
# ---------------------------------------------------------------------------
def test_sparse_form_by_hand():
    law = Law("sparse", SPARSE)
    # S = 0.75: aS (1/4)^(1/2) + cS = 2 * 0.5 + 1 = 2; N = 4: 2 / 4 = 0.5;
    # D = 5: (10 / 5)^2 = 4; + c = 0.5 -> 5.0
    assert law.predict(0.75, 4.0, 5.0) == pytest.approx(5.0, rel=1e-14)
    # S = 0: (2 + 1) / 4 + 4 + 0.5 = 5.25
    assert law.predict(0.0, 4.0, 5.0) == pytest.approx(5.25, rel=1e-14)
    # broadcasting over arrays: both at once
    assert law.predict(np.array([0.75, 0.0]), 4.0, 5.0) == pytest.approx([5.0, 5.25], rel=1e-14)


def test_dense_form_by_hand_ignores_sparsity():
    law = Law("dense", DENSE)
    # 8 * 8^(-1/3) = 4; 9 * 9^(-1/2) = 3; + 1 -> 8, whatever S
    assert law.predict(0.0, 8.0, 9.0) == pytest.approx(8.0, rel=1e-14)
    assert law.predict(0.9, 8.0, 9.0) == pytest.approx(8.0, rel=1e-14)


def test_avgparam_form_by_hand():
    law = Law("avgparam", AVG, mean_sparsity_fraction=0.5)
    # N_avg = N / (1 - S) (1 - f S) = 6 / 0.5 * 0.75 = 9; 3 * 9^(-1/2) = 1; 4 * 2^-1 = 2; + 0.25 -> 3.25
    assert law.n_avg(0.5, 6.0) == pytest.approx(9.0, rel=1e-14)
    assert law.predict(0.5, 6.0, 2.0) == pytest.approx(3.25, rel=1e-14)
    # the default f is the cubic ramp's 0.625: N_avg = 8 / 0.5 * (1 - 0.3125) = 11
    assert Law("avgparam", AVG).mean_sparsity_fraction == 0.625
    assert Law("avgparam", AVG).n_avg(0.5, 8.0) == pytest.approx(11.0, rel=1e-14)


def test_dense_view_by_hand():
    # sparse: A = aS + cS, alpha = bN, aD, beta = bD, E = c
    assert Law("sparse", SPARSE).dense_view() == {"A": 3.0, "alpha": 1.0, "aD": 10.0, "beta": 2.0, "E": 0.5}
    # dense: aD = B^(1/beta) = 9^2 = 81 (so that (aD/D)^beta = B D^-beta)
    view = Law("dense", DENSE).dense_view()
    assert view["aD"] == pytest.approx(81.0, rel=1e-14)
    assert (view["A"], view["alpha"], view["beta"], view["E"]) == (8.0, 1.0 / 3.0, 0.5, 1.0)
    assert Law("avgparam", AVG).dense_view()["aD"] == pytest.approx(4.0, rel=1e-14)   # 4^(1/1)


def test_sparsity_factor_by_hand():
    # (aS (1-S)^bS + cS) / (aS + cS): S = 0.75 -> 2 / 3; S = 0 -> 1
    law = Law("sparse", SPARSE)
    assert law.sparsity_factor(0.75) == pytest.approx(2.0 / 3.0, rel=1e-14)
    assert law.sparsity_factor(0.0) == pytest.approx(1.0, rel=1e-14)
    # avgparam: (N_avg / N)^-alpha = 1.5^(-1/2) at S = 0.5, f = 0.5
    assert Law("avgparam", AVG, mean_sparsity_fraction=0.5).sparsity_factor(0.5) == pytest.approx(1.5 ** -0.5, rel=1e-14)
    with pytest.raises(SparsescaleError, match="a dense law has no sparsity term"):
        Law("dense", DENSE).sparsity_factor(0.5)


@pytest.mark.parametrize("form, coefficients, extra", [
    ("sparse", SPARSE, {}), ("nm", SPARSE, {}), ("dense", DENSE, {}), ("avgparam", AVG, {"f": 0.5}),
])
def test_the_written_formula_is_the_law(form, coefficients, extra):
    """The formula a law file carries, evaluated as Python, gives the law's prediction."""
    law = Law(form, coefficients, mean_sparsity_fraction=extra.get("f"))
    formula = law.to_dict()["formula"]
    assert formula.startswith("L = ")
    rhs = formula[4:].split("  (")[0]
    names = dict(coefficients, S=0.5, N=6.0, D=2.0)
    if form == "avgparam":
        rhs, n_avg = rhs.split(",  N_avg = ")
        names["f"] = 0.5
        names["N_avg"] = eval(n_avg, {}, names)
    assert eval(rhs, {}, names) == pytest.approx(float(law.predict(0.5, 6.0, 2.0)), rel=1e-14)


# ---------------------------------------------------------------------------
# forms: the admissible coefficients
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name, value, ok", [
    ("bS", 0.0, True), ("bS", 10.0, True), ("bS", 10.5, False), ("bS", -0.1, False),
    ("bN", 0.0, False), ("bN", 1e-9, True), ("bN", 10.0, True), ("bN", 10.01, False),
    ("bD", 0.0, False), ("bD", 10.0, True),
    ("aS", 0.0, True), ("aS", -1e-12, False), ("c", 0.0, True), ("c", -0.5, False),
    ("aD", 1e99, True), ("cS", float("nan"), False), ("cS", float("inf"), False),
])
def test_sparse_coefficient_ranges(name, value, ok):
    coefficients = dict(SPARSE, **{name: value})
    if ok:
        assert Law("sparse", coefficients).coefficients[name] == value
    else:
        with pytest.raises(SparsescaleError, match=f"coefficient {name} is"):
            Law("sparse", coefficients)


@pytest.mark.parametrize("name, value, ok", [
    ("alpha", 0.0, False), ("alpha", 10.0, True), ("beta", 0.0, False), ("beta", 10.01, False),
    ("A", 0.0, True), ("B", -1.0, False), ("E", 0.0, True), ("E", -0.01, False),
])
def test_dense_coefficient_ranges(name, value, ok):
    coefficients = dict(DENSE, **{name: value})
    if ok:
        Law("dense", coefficients)
    else:
        with pytest.raises(SparsescaleError, match=f"coefficient {name} is"):
            Law("dense", coefficients)


def test_coefficient_refusals_word_for_word():
    with pytest.raises(SparsescaleError) as err:
        Law("sparse", dict(SPARSE, bN=0.0), name="x")
    assert str(err.value) == "law x: coefficient bN is 0, outside (0, 10]"
    with pytest.raises(SparsescaleError) as err:
        Law("sparse", dict(SPARSE, aS=-1.0))
    assert str(err.value) == "law sparse: coefficient aS is -1, outside [0, inf]"
    with pytest.raises(SparsescaleError) as err:
        Law("sparse", dict(SPARSE, c=float("nan")))
    assert str(err.value) == "law sparse: coefficient c is nan, not a finite number"
    with pytest.raises(SparsescaleError) as err:
        Law("dense", {"A": 1.0})
    assert str(err.value) == "law dense: missing coefficient(s) alpha, B, beta, E"
    with pytest.raises(SparsescaleError) as err:
        Law("cubic", {})
    assert str(err.value) == "unknown law form 'cubic'; expected one of sparse, dense, nm, avgparam"


def test_coefficients_become_floats_in_the_forms_order():
    law = Law("dense", {"E": 1, "beta": 1, "B": 2, "alpha": 1, "A": 3, "extra": 7})
    assert list(law.coefficients) == ["A", "alpha", "B", "beta", "E"]
    assert all(type(v) is float for v in law.coefficients.values())
    assert law["B"] == 2.0


@pytest.mark.parametrize("f, ok", [(0.0, True), (1.0, True), (1, True), (1.01, False), (-0.1, False), (True, False),
                                   ("0.5", False)])
def test_avgparam_fraction_range(f, ok):
    if ok:
        assert Law("avgparam", AVG, mean_sparsity_fraction=f).mean_sparsity_fraction == float(f)
    else:
        with pytest.raises(SparsescaleError, match="mean_sparsity_fraction must be in \\[0, 1\\]"):
            Law("avgparam", AVG, mean_sparsity_fraction=f)


def test_units_must_be_strings():
    with pytest.raises(SparsescaleError, match="units must be an object of strings"):
        Law("dense", DENSE, units={"N": 3})
    with pytest.raises(SparsescaleError, match="units must be an object of strings"):
        Law("dense", DENSE, units=["N"])


@pytest.mark.parametrize("t, ok", [(1e-9, True), (1e18, True), (197, True), (0.9e-9, False), (1.1e18, False),
                                   (True, False), (float("nan"), False), ("1", False)])
def test_tokens_per_unit_range(t, ok):
    if ok:
        law = Law("dense", DENSE, tokens_per_unit=t)
        assert law.tokens_per_unit == float(t) and type(law.tokens_per_unit) is float
    else:
        with pytest.raises(SparsescaleError, match="tokens_per_unit: must be a number of tokens between 1e-09 and 1e\\+18"):
            Law("dense", DENSE, tokens_per_unit=t)


# ---------------------------------------------------------------------------
# forms: the schedule's mean sparsity fraction
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("args, expected", [
    (("cubic",), 0.625),                      # 3/4 * 1/2 + 1/4
    (("cubic", 0.0, 1.0), 0.75),              # the whole run is the ramp: 3/4
    (("cubic", 0.0, 0.5), 0.875),             # 3/4 * 1/2 + 1/2
    (("cubic", 0.5, 1.0), 0.375),             # 3/4 * 1/2
    (("one-shot", 0.25, 0.75, 0.4), 0.6),     # 1 - at
    (("one-shot", 0.25, 0.75, 0.0), 1.0),
    (("constant",), 1.0),
    (("dense",), 0.0),
])
def test_schedule_mean_sparsity_fraction_by_hand(args, expected):
    assert schedule_mean_sparsity_fraction(*args) == pytest.approx(expected, rel=1e-14)


def test_schedule_mean_sparsity_fraction_defaults_and_refusals():
    assert schedule_mean_sparsity_fraction() == pytest.approx(0.625, rel=1e-14)
    assert schedule_mean_sparsity_fraction("one-shot") == 1.0    # at = 0 by default
    for args in [("cubic", 0.5, 0.5), ("cubic", -0.1, 0.5), ("cubic", 0.5, 1.01), ("cubic", 0.6, 0.5)]:
        with pytest.raises(SparsescaleError, match="schedule: cubic needs 0 <= start < end <= 1"):
            schedule_mean_sparsity_fraction(*args)
    for at in (1.0, -0.1):
        with pytest.raises(SparsescaleError, match="schedule: one-shot needs 0 <= at < 1"):
            schedule_mean_sparsity_fraction("one-shot", at=at)
    with pytest.raises(SparsescaleError, match="schedule: unknown kind 'linear'; expected cubic, one-shot"):
        schedule_mean_sparsity_fraction("linear")


# ---------------------------------------------------------------------------
# forms: law files
# ---------------------------------------------------------------------------
def test_to_dict_holds_exactly_what_was_set():
    law = Law("dense", DENSE, name="d")
    assert set(law.to_dict()) == {"form", "name", "formula", "coefficients", "units"}
    law = Law("avgparam", AVG, name="a", tokens_per_unit=2.0, fit={"objective": 0.5}, mean_sparsity_fraction=0.5)
    d = law.to_dict()
    assert (d["form"], d["name"], d["tokens_per_unit"], d["mean_sparsity_fraction"], d["fit"]) == \
        ("avgparam", "a", 2.0, 0.5, {"objective": 0.5})
    assert d["units"] == {"N": "non-zero parameters", "D": "tokens"}
    assert "uncertainty" not in d


def test_law_file_round_trip_of_every_field(tmp_path):
    law = Law("avgparam", AVG, name="a", units={"N": "n", "D": "steps"}, tokens_per_unit=3.0,
              fit={"objective": 0.25}, mean_sparsity_fraction=0.3)
    path = tmp_path / "a.json"
    law.save(path)
    assert Law.is_file(path)
    back = load_law(path)
    assert (back.form, back.name, back.units, back.tokens_per_unit, back.fit, back.mean_sparsity_fraction) == \
        ("avgparam", "a", {"N": "n", "D": "steps"}, 3.0, {"objective": 0.25}, 0.3)
    assert back.coefficients == AVG and back.uncertainty is None
    # a file without a name is named after its stem
    obj = json.loads(path.read_text())
    del obj["name"]
    (tmp_path / "nameless.json").write_text(json.dumps(obj))
    assert load_law(tmp_path / "nameless.json").name == "nameless"


@pytest.mark.parametrize("obj, message", [
    ([1], "expected a JSON object with 'form' and 'coefficients'"),
    ({"coefficients": DENSE}, "needs keys 'form' and 'coefficients' (an object)"),
    ({"form": "dense", "coefficients": [1]}, "needs keys 'form' and 'coefficients' (an object)"),
    ({"form": "dense", "coefficients": dict(DENSE, A=True)}, "coefficient 'A' is not a number"),
    ({"form": "dense", "coefficients": dict(DENSE, A=1.01e100)}, "coefficient 'A' = 1.01e+100 is not a finite number of magnitude at most 1e+100"),
    ({"form": "dense", "coefficients": DENSE, "units": {"N": 1}}, "'units' must be an object of strings (N, D, loss)"),
    ({"form": "dense", "coefficients": DENSE, "units": "tokens"}, "'units' must be an object of strings (N, D, loss)"),
    ({"form": "dense", "coefficients": DENSE, "fit": [1]}, "'fit' must be an object"),
    ({"form": "dense", "coefficients": dict(DENSE, E=-1)}, "coefficient E is -1, outside [0, inf]"),
])
def test_bad_law_objects_name_the_source(obj, message):
    with pytest.raises(SparsescaleError) as err:
        Law.from_dict(obj, source="my.json")
    assert str(err.value).startswith("my.json: ") and message in str(err.value)


def test_largest_coefficient_of_a_law_file_is_accepted():
    law = Law.from_dict({"form": "dense", "coefficients": dict(DENSE, A=1e100)}, source="x.json")
    assert law["A"] == 1e100 and law.name == "x"


def test_presets_are_copies_with_uncertainty():
    a = preset("t5-c4")
    a.coefficients["aS"] = 0.0
    assert preset("t5-c4")["aS"] == 16.8
    assert preset("t5-c4").uncertainty is not None and preset("t5-c4").tokens_per_unit == 65536.0
    assert preset("vit-jft").units["D"] == "images seen"
    with pytest.raises(SparsescaleError, match="unknown law preset 'x'; presets are vit-jft, t5-c4"):
        preset("x")
    # a name that is neither a preset nor a file: refused as a preset; a path: read as a file
    with pytest.raises(SparsescaleError, match="unknown law preset 'nope'"):
        load_law("nope")
    with pytest.raises(SparsescaleError) as err:
        load_law("dir/nope")
    assert "unknown law preset" not in str(err.value)
