"""The law, its forms, the schedule fraction and the presets against hand calculations.

Written against the mutants of laws/law.py, laws/forms/, laws/schedule.py and
laws/presets.py that tests/laws/test_mutation_kills.py and test_forms.py let
survive (see docs/mutation.md). Every expected number is worked out in a
comment (round coefficients, so the powers are exact) or comes from a
reference written here (finite differences), never from the code under test.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws import Law, preset
from sparsescale.laws.forms import FORMS, get_form, register_form
from sparsescale.laws.forms.base import Design

# the same round coefficients as test_mutation_kills.py
SPARSE = {"aS": 2.0, "bS": 0.5, "cS": 1.0, "bN": 1.0, "aD": 10.0, "bD": 2.0, "c": 0.5}
DENSE = {"A": 8.0, "alpha": 1.0 / 3.0, "B": 9.0, "beta": 0.5, "E": 1.0}
AVG = {"A": 3.0, "alpha": 0.5, "B": 4.0, "beta": 1.0, "E": 0.25}


# ---------------------------------------------------------------------------
# the slope of the sparsity factor
# ---------------------------------------------------------------------------
def test_sparsity_factor_slope_by_hand():
    # sparse: -dF/dS = aS bS (1-S)^(bS-1) / (aS + cS); S = 0.75: 2 * 0.5 * 0.25^-0.5 / 3 = 2/3
    assert Law("sparse", SPARSE).sparsity_factor_slope(0.75) == pytest.approx(2 / 3, rel=1e-14)
    # S = 0: 2 * 0.5 * 1 / 3 = 1/3; the nm form shares it
    assert Law("nm", SPARSE).sparsity_factor_slope(0.0) == pytest.approx(1 / 3, rel=1e-14)
    # avgparam, f = 0.5, S = 0.5: g = (1 - 0.25) / 0.5 = 1.5;
    # alpha g^-alpha (1/(1-S) - f/(1-fS)) = 0.5 * 1.5^-0.5 * (2 - 0.5/0.75) = 1.5^-0.5 * 2/3
    law = Law("avgparam", AVG, mean_sparsity_fraction=0.5)
    assert law.sparsity_factor_slope(0.5) == pytest.approx(1.5**-0.5 * 2 / 3, rel=1e-14)
    # f = 0.2, S = 0.5: g = 0.9 / 0.5 = 1.8; 0.5 * 1.8^-0.5 * (2 - 0.2 / 0.9)
    law = Law("avgparam", AVG, mean_sparsity_fraction=0.2)
    assert law.sparsity_factor_slope(0.5) == pytest.approx(
        0.5 * 1.8**-0.5 * (2 - 0.2 / 0.9), rel=1e-14
    )
    assert law.sparsity_factor(0.5) == pytest.approx(1.8**-0.5, rel=1e-14)
    with pytest.raises(SparsescaleError) as err:
        Law("dense", DENSE).sparsity_factor_slope(0.5)
    assert str(err.value) == "a dense law has no sparsity term; fit the sparse form"


def test_the_slope_is_minus_the_derivative_of_the_factor():
    # central differences of F(S) against -dF/dS, for each form with a sparsity term
    S = np.array([0.1, 0.4, 0.7])
    h = 1e-6
    for law in (
        Law("sparse", dict(SPARSE, bS=1.7)),
        Law("avgparam", AVG, mean_sparsity_fraction=0.3),
    ):
        numeric = -(law.sparsity_factor(S + h) - law.sparsity_factor(S - h)) / (2 * h)
        assert law.sparsity_factor_slope(S) == pytest.approx(numeric, rel=1e-7)


# ---------------------------------------------------------------------------
# Law: copies, spec, files
# ---------------------------------------------------------------------------
def test_with_coefficients_keeps_everything_but_the_numbers():
    law = Law(
        "avgparam",
        AVG,
        name="a",
        units={"N": "n", "D": "steps"},
        tokens_per_unit=3.0,
        mean_sparsity_fraction=0.5,
        fit={"objective": 1.0},
    )
    new = dict(AVG, A=6.0)
    other = law.with_coefficients(new)
    new["A"] = 7.0  # the copy does not share the caller's dict
    assert other.coefficients == dict(AVG, A=6.0)
    assert (other.form, other.units, other.tokens_per_unit, other.mean_sparsity_fraction) == (
        "avgparam",
        {"N": "n", "D": "steps"},
        3.0,
        0.5,
    )
    # a draw is unnamed and carries no fit metadata
    assert (other.name, other.fit, other.uncertainty) == ("", None, None)
    assert law.spec is get_form("avgparam") and other.spec.name == "avgparam"


def test_is_file_needs_form_coefficients_and_formula(tmp_path):
    import json

    path = tmp_path / "law.json"
    law = Law("dense", DENSE)
    law.save(path)
    assert Law.is_file(path)
    assert law.is_file(path)  # a static method: also through a law
    obj = json.loads(path.read_text())
    for key in ("form", "coefficients", "formula"):
        (tmp_path / "x.json").write_text(json.dumps({k: v for k, v in obj.items() if k != key}))
        assert not Law.is_file(tmp_path / "x.json")


def test_law_objects_at_the_edges_word_for_word():
    def refused(obj):
        with pytest.raises(SparsescaleError) as err:
            Law.from_dict(obj, source="f.json")
        return str(err.value)

    # the magnitude bound holds on both sides of 0 (a negative one is not a range error first)
    assert refused({"form": "dense", "coefficients": dict(DENSE, A=-1.01e100)}) == (
        "f.json: coefficient 'A' = -1.01e+100 is not a finite number of magnitude at most 1e+100"
    )
    assert refused({"form": "dense", "coefficients": dict(DENSE, A=math.nan)}) == (
        "f.json: coefficient 'A' = nan is not a finite number of magnitude at most 1e+100"
    )
    # keys of units must be strings too; the echoed value is cut at 60 characters
    assert refused({"form": "dense", "coefficients": DENSE, "units": {1: "x"}}) == (
        "f.json: 'units' must be an object of strings (N, D, loss), got {1: 'x'}"
    )
    long = {"N": 1, "D": "d" * 100}
    assert refused({"form": "dense", "coefficients": DENSE, "units": long}) == (
        "f.json: 'units' must be an object of strings (N, D, loss), got " + repr(long)[:60]
    )
    assert refused({"form": "dense", "coefficients": DENSE, "fit": 3}) == (
        "f.json: 'fit' must be an object"
    )
    # no fit, no units: accepted, with no units at all (the file's, not the default)
    law = Law.from_dict({"form": "dense", "coefficients": DENSE, "fit": None}, source="f.json")
    assert law.fit is None and law.units == {} and law.name == "f"


# ---------------------------------------------------------------------------
# forms: the registry
# ---------------------------------------------------------------------------
def test_registry_by_hand():
    sparse = get_form("sparse")
    assert get_form(sparse) is sparse  # a LawForm is its own form
    with pytest.raises(SparsescaleError) as err:
        get_form(3)
    assert (
        str(err.value) == "unknown law form 3; expected one of sparse, dense, nm, avgparam (or "
        "name your own as package.module:attribute)"
    )
    with pytest.raises(SparsescaleError) as err:
        register_form({"name": "x"})
    assert str(err.value) == "register_form: expected a LawForm, got a dict"
    saved = dict(FORMS)
    try:
        import dataclasses

        mine = dataclasses.replace(sparse, name="mine")
        assert register_form(mine) is mine and get_form("mine") is mine
        assert Law("mine", SPARSE).predict(0.75, 4.0, 5.0) == pytest.approx(5.0, rel=1e-14)
    finally:
        FORMS.clear()
        FORMS.update(saved)


def test_a_users_form_is_registered_under_both_names(monkeypatch):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "fixtures"))
    saved = dict(FORMS)
    try:
        form = get_form("user_law_form:SATURATING")
        assert form.name == "saturating"
        assert FORMS["user_law_form:SATURATING"] is form and FORMS["saturating"] is form
        with pytest.raises(SparsescaleError) as err:
            get_form("user_law_form:NAMES")
        assert str(err.value) == (
            "form 'user_law_form:NAMES': NAMES is a tuple, not a sparsescale LawForm"
        )
        with pytest.raises(SparsescaleError) as err:
            get_form("not a module:X")
        assert str(err.value) == (
            "form 'not a module:X': expected package.module:attribute (choose sparse, dense, "
            "nm, avgparam, user_law_form:SATURATING, saturating, or name your own as "
            "package.module:attribute)"
        )
    finally:
        FORMS.clear()
        FORMS.update(saved)
    # a registered name that is already taken keeps its form (setdefault)
    saved = dict(FORMS)
    try:
        import dataclasses

        other = dataclasses.replace(get_form("dense"), name="sparse")
        monkeypatch.setattr("user_law_form.SATURATING", other, raising=True)
        assert get_form("user_law_form:SATURATING") is other
        assert FORMS["sparse"].title == "the paper's sparse law"
    finally:
        FORMS.clear()
        FORMS.update(saved)


def test_form_records_word_for_word():
    sparse, dense, nm, avg = (get_form(n) for n in ("sparse", "dense", "nm", "avgparam"))
    assert [f.name for f in (sparse, dense, nm, avg)] == ["sparse", "dense", "nm", "avgparam"]
    # a record shared by every law of its form is immutable
    with pytest.raises(AttributeError):
        sparse.title = "x"
    assert [f.title for f in (sparse, dense, nm, avg)] == [
        "the paper's sparse law",
        "the dense law",
        "the n:m refit of the sparse law",
        "the average-parameter law",
    ]
    assert sparse.fixed == () and dense.fixed == () and avg.fixed == ()
    assert nm.fixed == ("bN", "aD", "bD", "c") and nm.free == ("aS", "bS", "cS")
    assert (sparse.uses_sparsity, dense.uses_sparsity, nm.uses_sparsity, avg.uses_sparsity) == (
        True,
        False,
        True,
        True,
    )
    assert [f.needs_schedule for f in (sparse, dense, nm, avg)] == [False, False, False, True]
    assert [f.base_forms for f in (sparse, dense, nm, avg)] == [(), (), ("sparse", "nm"), ()]
    assert sparse.amplitudes == ("aS", "cS", "aD", "c") and sparse.exponents == ("bS", "bN", "bD")
    assert dense.amplitudes == avg.amplitudes == ("A", "B", "E")
    assert dense.exponents == avg.exponents == ("alpha", "beta")
    assert nm.amplitudes == ("aS", "cS") and nm.exponents == ("bS",)
    # the fitter's search boxes (documented in each form module)
    assert sparse.exponent_bounds == ((0.0, 4.0), (1e-3, 2.0), (1e-3, 3.0))
    assert dense.exponent_bounds == avg.exponent_bounds == ((1e-3, 2.0), (1e-3, 3.0))
    assert nm.exponent_bounds == ((0.0, 4.0),)
    assert nm.formula == (
        "L = (aS*(1-S)**bS + cS) * N**(-bN) + (aD/D)**bD + c  (bN, aD, bD, c fixed from a dense "
        "base)"
    )
    assert avg.formula == (
        "L = A*N_avg**(-alpha) + B*D**(-beta) + E,  N_avg = N/(1-S)*(1-f*S)  (f: the schedule's "
        "mean sparsity / S)"
    )


def test_check_base_word_for_word():
    nm = get_form("nm")
    get_form("sparse").check_base(None)  # a form without base_forms takes none
    nm.check_base(Law("sparse", SPARSE))
    nm.check_base(Law("nm", SPARSE))
    with pytest.raises(SparsescaleError) as err:
        nm.check_base(None)
    assert str(err.value) == (
        "base: the nm form needs a base law (a fitted sparse law that fixes bN, aD, bD, c)"
    )
    assert err.value.param == "base"
    with pytest.raises(SparsescaleError) as err:
        nm.check_base(Law("dense", DENSE))
    assert str(err.value) == (
        "base: the nm form refits a sparse-form base law (it keeps bN, aD, bD, c); got form 'dense'"
    )
    assert err.value.param == "base"


# ---------------------------------------------------------------------------
# forms: predictions of many draws
# ---------------------------------------------------------------------------
def test_predict_draws_by_hand():
    sparse = get_form("sparse")
    draws = [list(SPARSE.values()), list(dict(SPARSE, c=1.5).values())]
    out = sparse.predict_draws(draws, [0.75, 0.0], [4.0, 4.0], [5.0, 5.0])
    # 5.0 and 5.25 (test_mutation_kills.py), and 1 more for the second draw's floor
    assert out.shape == (2, 2)
    assert out == pytest.approx(np.array([[5.0, 5.25], [6.0, 6.25]]), rel=1e-14)
    # the dense form ignores S, yet gives one row per draw and one column per point
    dense = get_form("dense")
    out = dense.predict_draws([list(DENSE.values())] * 3, [0.0, 0.5], [8.0, 8.0], [9.0, 9.0])
    assert out.shape == (3, 2) and np.all(out == pytest.approx(8.0, rel=1e-14))
    out[0, 0] = 0.0  # a writable array of its own, not a broadcast view
    # avgparam reads f: N_avg = 6 / 0.5 * 0.75 = 9 -> 3.25 (test_mutation_kills.py)
    avg = get_form("avgparam")
    out = avg.predict_draws([list(AVG.values())], 0.5, 6.0, 2.0, 0.5)
    assert out.shape == (1, 1) and out[0, 0] == pytest.approx(3.25, rel=1e-14)
    # a wild draw overflows to inf without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wild = sparse.predict_draws([list(dict(SPARSE, bN=10.0).values())], 0.0, 1e-40, 5.0)
    assert np.isinf(wild[0, 0])


# ---------------------------------------------------------------------------
# forms: the fitter's view
# ---------------------------------------------------------------------------
def _design(fixed=None):
    # S = 0.75, 0; N' = 2, 4; D' = 5, 10 (in the fitter's normalised units)
    return Design(
        np.log1p(-np.array([0.75, 0.0])),
        np.log(np.array([2.0, 4.0])),
        np.log(np.array([5.0, 10.0])),
        fixed or {},
    )


def test_basis_by_hand():
    x = _design()
    # sparse, e = (bS, bN, bD) = (0.5, 1, 2): columns (1-S)^bS N'^-bN, N'^-bN, D'^-bD, 1
    phi = get_form("sparse").basis(x, np.array([[0.5, 1.0, 2.0]]))
    assert phi.shape == (1, 2, 4)
    assert phi[0] == pytest.approx(
        np.array([[0.5 * 0.5, 0.5, 1 / 25, 1.0], [1.0 * 0.25, 0.25, 1 / 100, 1.0]]), rel=1e-14
    )
    # dense, e = (alpha, beta) = (1, 0.5) for two exponent vectors at once: N'^-1, D'^-0.5, 1
    phi = get_form("dense").basis(x, np.array([[1.0, 0.5], [2.0, 1.0]]))
    assert phi.shape == (2, 2, 3)
    assert phi[0] == pytest.approx(
        np.array([[0.5, 5**-0.5, 1.0], [0.25, 10**-0.5, 1.0]]), rel=1e-14
    )
    assert phi[1] == pytest.approx(np.array([[0.25, 0.2, 1.0], [1 / 16, 0.1, 1.0]]), rel=1e-14)
    # nm, bN fixed at 2 from the base, e = (bS,) = (1,): (1-S) N'^-2, N'^-2
    phi = get_form("nm").basis(_design({"bN": 2.0}), np.array([[1.0], [0.0]]))
    assert phi.shape == (2, 2, 2)
    assert phi[0] == pytest.approx(np.array([[0.25 / 4, 0.25], [1 / 16, 1 / 16]]), rel=1e-14)
    assert phi[1] == pytest.approx(np.array([[0.25, 0.25], [1 / 16, 1 / 16]]), rel=1e-14)


@pytest.mark.parametrize(
    "name, a, e, fixed",
    [
        ("sparse", [2.0, 1.0, 3.0, 0.5], [0.5, 1.0, 2.0], {}),
        ("dense", [2.0, 3.0, 0.5], [0.7, 0.4], {}),
        ("nm", [2.0, 1.0], [1.5], {"bN": 0.8}),
    ],
)
def test_exponent_jacobian_is_the_derivative_of_the_prediction(name, a, e, fixed):
    form, x = get_form(name), _design(fixed)
    a, e = np.array(a), np.array(e)

    def pred(e):
        return (form.basis(x, e[None, :])[0] * a).sum(axis=1)

    terms = form.basis(x, e[None, :]) * a
    out = np.full((1, 2, len(e)), np.nan)
    form.exponent_jacobian(x, terms, out)
    h = 1e-6
    for i in range(len(e)):
        step = np.zeros_like(e)
        step[i] = h
        numeric = (pred(e + step) - pred(e - step)) / (2 * h)
        assert out[0, :, i] == pytest.approx(numeric, rel=1e-7, abs=1e-12)


def test_coefficients_in_the_fitters_units_by_hand():
    # sN = 9 and bN = 0.5, so that sN^bN = 3 differs from sN * bN = 4.5 (with bN = 1 they agree)
    # sparse: aS = a0 sN^bN = 1.5, cS = a1 sN^bN = 0.75, aD = a2^(1/bD) sD = 4^(1/2) 10 = 20, c = a3
    sparse = get_form("sparse")
    k = sparse.to_coefficients([0.5, 0.25, 4.0, 0.5], [0.5, 0.5, 2.0], 9.0, 10.0)
    assert k == pytest.approx(
        {"aS": 1.5, "bS": 0.5, "cS": 0.75, "bN": 0.5, "aD": 20.0, "bD": 2.0, "c": 0.5}, rel=1e-14
    )
    assert list(k) == list(SPARSE)
    a, e = sparse.from_coefficients(k, 9.0, 10.0)
    assert a == pytest.approx([0.5, 0.25, 4.0, 0.5], rel=1e-14) and e == [0.5, 0.5, 2.0]
    # dense: A = a0 sN^alpha = 2 * 9^0.5 = 6, B = a1 sD^beta = 3 * 100^0.5 = 30, E = a2
    dense = get_form("dense")
    k = dense.to_coefficients([2.0, 3.0, 0.5], [0.5, 0.5], 9.0, 100.0)
    assert k == pytest.approx({"A": 6.0, "alpha": 0.5, "B": 30.0, "beta": 0.5, "E": 0.5})
    assert list(k) == ["A", "alpha", "B", "beta", "E"]
    a, e = dense.from_coefficients(k, 9.0, 100.0)
    assert a == pytest.approx([2.0, 3.0, 0.5], rel=1e-14) and e == [0.5, 0.5]
    # nm: the base's bN = 0.5 scales the amplitudes (aS = 0.25 * 3, cS = 0.5 * 3);
    # bN, aD, bD, c are the base's
    nm, base = get_form("nm"), Law("sparse", dict(SPARSE, bN=0.5))
    k = nm.to_coefficients([0.25, 0.5], [1.5], 9.0, 10.0, base)
    assert k == pytest.approx(
        {"aS": 0.75, "bS": 1.5, "cS": 1.5, "bN": 0.5, "aD": 10.0, "bD": 2.0, "c": 0.5}, rel=1e-14
    )
    assert list(k) == list(SPARSE)
    a, e = nm.from_coefficients(k, 9.0, 10.0)
    assert a == pytest.approx([0.25, 0.5], rel=1e-14) and e == [1.5]


def test_prepare_by_hand():
    S, N, D = np.array([0.5, 0.0]), np.array([6.0, 4.0]), np.array([5.0, 10.0])
    # nm: the offset is the base's (aD / D)^bD + c = 4.5, 1.5; bN is fixed from the base
    prep = get_form("nm").prepare(S, N, D, Law("sparse", SPARSE), None)
    assert prep.offset == pytest.approx([4.5, 1.5], rel=1e-14) and prep.fixed == {"bN": 1.0}
    assert prep.n_nonzero is N and prep.data is D and prep.sparsity is S
    # avgparam: N becomes N_avg = N / (1 - S) (1 - f S): 6 / 0.5 * 0.75 = 9 at f = 0.5;
    # with the default f = 0.625: 6 / 0.5 * (1 - 0.3125) = 8.25
    prep = get_form("avgparam").prepare(S, N, D, None, 0.5)
    assert prep.n_nonzero == pytest.approx([9.0, 4.0], rel=1e-14)
    assert np.array_equal(prep.offset, [0.0, 0.0]) and prep.fixed == {}
    prep = get_form("avgparam").prepare(S, N, D, None, None)
    assert prep.n_nonzero == pytest.approx([8.25, 4.0], rel=1e-14)
    with pytest.raises(SparsescaleError, match=r"mean_sparsity_fraction must be in \[0, 1\]"):
        get_form("avgparam").prepare(S, N, D, None, 1.5)
    # sparse and dense: the inputs as given, no offset
    for name in ("sparse", "dense"):
        prep = get_form(name).prepare(S, N, D, None, None)
        assert prep.n_nonzero is N and np.array_equal(prep.offset, [0.0, 0.0])
        assert prep.fixed == {}


def test_design_subset_keeps_the_fixed_coefficients():
    # a design of a form without a base holds no fixed coefficients: an empty dict of its own
    a, b = Design(np.zeros(1), np.zeros(1), np.zeros(1)), Design(*[np.zeros(1)] * 3)
    assert a.fixed == {} and a.fixed is not b.fixed
    x = _design({"bN": 2.0})
    sub = x.subset(np.array([1]))
    assert sub.log1mS == pytest.approx([0.0]) and sub.logN == pytest.approx([math.log(4.0)])
    assert sub.logD == pytest.approx([math.log(10.0)]) and sub.fixed == {"bN": 2.0}


def test_a_preset_is_a_sparse_law_with_table_1s_numbers():
    # t5-c4 at S = 0.5, N = 1e7, D = 1e5 by hand from Table 1's coefficients
    k = preset("t5-c4").coefficients
    expected = (16.8 * 0.5**0.722 + 45.0) * 1e7**-0.245 + (1.05e4 / 1e5) ** 0.203 + 0.651
    assert k == {
        "aS": 16.8,
        "bS": 0.722,
        "cS": 45.0,
        "bN": 0.245,
        "aD": 1.05e4,
        "bD": 0.203,
        "c": 0.651,
    }
    assert preset("t5-c4").predict(0.5, 1e7, 1e5) == pytest.approx(expected, rel=1e-14)


# ---------------------------------------------------------------------------
# schedule: the mean sparsity fraction
# ---------------------------------------------------------------------------
def test_cubic_fraction_by_hand_and_its_refusals():
    from sparsescale.laws.schedule import cubic_mean_sparsity_fraction

    # f = 3/4 (end - start) + (1 - end): defaults 0.25, 0.75 -> 3/8 + 1/4 = 0.625
    assert cubic_mean_sparsity_fraction() == 0.625
    assert cubic_mean_sparsity_fraction(0.0, 1.0) == 0.75  # the whole run is the ramp
    assert cubic_mean_sparsity_fraction(0.5) == pytest.approx(0.4375, rel=1e-14)  # 3/16 + 1/4
    assert cubic_mean_sparsity_fraction(end=0.5) == pytest.approx(0.6875, rel=1e-14)  # 3/16 + 1/2
    for start, end in ((0.5, 0.5), (-0.1, 0.5), (0.2, 1.1), (0.6, 0.5)):
        with pytest.raises(SparsescaleError) as err:
            cubic_mean_sparsity_fraction(start, end)
        assert str(err.value) == f"need 0 <= start < end <= 1, got start={start}, end={end}"


def test_schedule_fraction_edges_and_parameters():
    from sparsescale.laws.schedule import schedule_mean_sparsity_fraction

    # start = 0 and end = 1 are allowed; start = end is not (above)
    assert schedule_mean_sparsity_fraction("cubic", 0.0, 0.1) == pytest.approx(0.975, rel=1e-14)
    assert schedule_mean_sparsity_fraction("cubic", 0.9, 1.0) == pytest.approx(0.075, rel=1e-14)
    assert schedule_mean_sparsity_fraction("cubic", end=0.5) == pytest.approx(0.6875, rel=1e-14)
    assert schedule_mean_sparsity_fraction("one-shot", at=0.0) == 1.0
    assert schedule_mean_sparsity_fraction("one-shot", at=0.999) == pytest.approx(1e-3, rel=1e-9)
    with pytest.raises(SparsescaleError) as err:
        schedule_mean_sparsity_fraction("one-shot", at=-0.1)
    assert str(err.value) == "schedule: one-shot needs 0 <= at < 1, got -0.1"
    assert err.value.param == "schedule"
    with pytest.raises(SparsescaleError) as err:
        schedule_mean_sparsity_fraction("cubic", 0.2, 1.1)
    assert str(err.value) == "schedule: cubic needs 0 <= start < end <= 1, got start=0.2, end=1.1"
    assert err.value.param == "schedule"


def test_check_mean_sparsity_fraction_by_hand():
    from sparsescale.laws.schedule import check_mean_sparsity_fraction, n_avg

    assert check_mean_sparsity_fraction(None) == 0.625
    f = check_mean_sparsity_fraction(1)
    assert f == 1.0 and type(f) is float
    for bad in (2, -0.5, True, "0.5", float("nan")):
        with pytest.raises(SparsescaleError) as err:
            check_mean_sparsity_fraction(bad)
        assert str(err.value) == f"mean_sparsity_fraction must be in [0, 1], got {bad!r}"
    with pytest.raises(SparsescaleError) as err:
        check_mean_sparsity_fraction(2, "f")
    assert str(err.value) == "f must be in [0, 1], got 2"
    # N_avg = N (1 - f S) / (1 - S): f = 0 is the dense size N / (1 - S), f = 1 is N
    assert n_avg(0.75, 4.0, 0.0) == 16.0 and n_avg(0.75, 4.0, 1.0) == 4.0
    assert n_avg(0.5, 6.0, 0.5) == pytest.approx(9.0, rel=1e-14)


# ---------------------------------------------------------------------------
# presets: loading by name or file
# ---------------------------------------------------------------------------
def test_load_law_tells_a_preset_from_a_file(tmp_path, monkeypatch):
    from sparsescale.laws import load_law

    monkeypatch.chdir(tmp_path)
    Law("dense", DENSE, name="d").save(tmp_path / "mylaw")  # a file with no .json suffix
    assert load_law("mylaw").name == "d"  # it exists: read as a file, not refused as a preset
    # a missing .JSON or a path with a slash is a file: the reader's own message, word for word
    for spec in ("nope.JSON", "dir/nope"):
        with pytest.raises(SparsescaleError) as err:
            load_law(spec)
        assert str(err.value) == f"{spec}: no such law file"
    law = load_law("t5-c4")  # a preset comes with its uncertainty and units
    assert law.name == "t5-c4" and law.uncertainty is not None and law.tokens_per_unit == 65536.0
    assert law.fit is None and law.mean_sparsity_fraction is None
