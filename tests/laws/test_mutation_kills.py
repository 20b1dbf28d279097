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
import re

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws import FitOptions, Law, Points, load_law, preset
from sparsescale.laws.schedule import schedule_mean_sparsity_fraction

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
    # N_avg = N / (1 - S) (1 - f S) = 6 / 0.5 * 0.75 = 9; 3 * 9^(-1/2) = 1; 4 * 2^-1 = 2; + 0.25 ->
    # 3.25
    assert law.n_avg(0.5, 6.0) == pytest.approx(9.0, rel=1e-14)
    assert law.predict(0.5, 6.0, 2.0) == pytest.approx(3.25, rel=1e-14)
    # the default f is the cubic ramp's 0.625: N_avg = 8 / 0.5 * (1 - 0.3125) = 11
    assert Law("avgparam", AVG).mean_sparsity_fraction == 0.625
    assert Law("avgparam", AVG).n_avg(0.5, 8.0) == pytest.approx(11.0, rel=1e-14)


def test_dense_view_by_hand():
    # sparse: A = aS + cS, alpha = bN, aD, beta = bD, E = c
    assert Law("sparse", SPARSE).dense_view() == {
        "A": 3.0,
        "alpha": 1.0,
        "aD": 10.0,
        "beta": 2.0,
        "E": 0.5,
    }
    # dense: aD = B^(1/beta) = 9^2 = 81 (so that (aD/D)^beta = B D^-beta)
    view = Law("dense", DENSE).dense_view()
    assert view["aD"] == pytest.approx(81.0, rel=1e-14)
    assert (view["A"], view["alpha"], view["beta"], view["E"]) == (8.0, 1.0 / 3.0, 0.5, 1.0)
    assert Law("avgparam", AVG).dense_view()["aD"] == pytest.approx(4.0, rel=1e-14)  # 4^(1/1)


def test_sparsity_factor_by_hand():
    # (aS (1-S)^bS + cS) / (aS + cS): S = 0.75 -> 2 / 3; S = 0 -> 1
    law = Law("sparse", SPARSE)
    assert law.sparsity_factor(0.75) == pytest.approx(2.0 / 3.0, rel=1e-14)
    assert law.sparsity_factor(0.0) == pytest.approx(1.0, rel=1e-14)
    # avgparam: (N_avg / N)^-alpha = 1.5^(-1/2) at S = 0.5, f = 0.5
    assert Law("avgparam", AVG, mean_sparsity_fraction=0.5).sparsity_factor(0.5) == pytest.approx(
        1.5**-0.5, rel=1e-14
    )
    with pytest.raises(SparsescaleError, match="a dense law has no sparsity term"):
        Law("dense", DENSE).sparsity_factor(0.5)


@pytest.mark.parametrize(
    "form, coefficients, extra",
    [
        ("sparse", SPARSE, {}),
        ("nm", SPARSE, {}),
        ("dense", DENSE, {}),
        ("avgparam", AVG, {"f": 0.5}),
    ],
)
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
@pytest.mark.parametrize(
    "name, value, ok",
    [
        ("bS", 0.0, True),
        ("bS", 10.0, True),
        ("bS", 10.5, False),
        ("bS", -0.1, False),
        ("bN", 0.0, False),
        ("bN", 1e-9, True),
        ("bN", 10.0, True),
        ("bN", 10.01, False),
        ("bD", 0.0, False),
        ("bD", 10.0, True),
        ("aS", 0.0, True),
        ("aS", -1e-12, False),
        ("c", 0.0, True),
        ("c", -0.5, False),
        ("aD", 1e99, True),
        ("cS", float("nan"), False),
        ("cS", float("inf"), False),
    ],
)
def test_sparse_coefficient_ranges(name, value, ok):
    coefficients = dict(SPARSE, **{name: value})
    if ok:
        assert Law("sparse", coefficients).coefficients[name] == value
    else:
        with pytest.raises(SparsescaleError, match=f"coefficient {name} is"):
            Law("sparse", coefficients)


@pytest.mark.parametrize(
    "name, value, ok",
    [
        ("alpha", 0.0, False),
        ("alpha", 10.0, True),
        ("beta", 0.0, False),
        ("beta", 10.01, False),
        ("A", 0.0, True),
        ("B", -1.0, False),
        ("E", 0.0, True),
        ("E", -0.01, False),
    ],
)
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
    assert (
        str(err.value)
        == "unknown law form 'cubic'; expected one of sparse, dense, nm, avgparam (or name your "
        "own as package.module:attribute)"
    )


def test_coefficients_become_floats_in_the_forms_order():
    law = Law("dense", {"E": 1, "beta": 1, "B": 2, "alpha": 1, "A": 3, "extra": 7})
    assert list(law.coefficients) == ["A", "alpha", "B", "beta", "E"]
    assert all(type(v) is float for v in law.coefficients.values())
    assert law["B"] == 2.0


@pytest.mark.parametrize(
    "f, ok",
    [
        (0.0, True),
        (1.0, True),
        (1, True),
        (1.01, False),
        (-0.1, False),
        (True, False),
        ("0.5", False),
    ],
)
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


@pytest.mark.parametrize(
    "t, ok",
    [
        (1e-9, True),
        (1e18, True),
        (197, True),
        (0.9e-9, False),
        (1.1e18, False),
        (True, False),
        (float("nan"), False),
        ("1", False),
    ],
)
def test_tokens_per_unit_range(t, ok):
    if ok:
        law = Law("dense", DENSE, tokens_per_unit=t)
        assert law.tokens_per_unit == float(t) and type(law.tokens_per_unit) is float
    else:
        with pytest.raises(
            SparsescaleError,
            match="tokens_per_unit: must be a number of tokens between 1e-09 and 1e\\+18",
        ):
            Law("dense", DENSE, tokens_per_unit=t)


# ---------------------------------------------------------------------------
# forms: the schedule's mean sparsity fraction
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, expected",
    [
        (("cubic",), 0.625),  # 3/4 * 1/2 + 1/4
        (("cubic", 0.0, 1.0), 0.75),  # the whole run is the ramp: 3/4
        (("cubic", 0.0, 0.5), 0.875),  # 3/4 * 1/2 + 1/2
        (("cubic", 0.5, 1.0), 0.375),  # 3/4 * 1/2
        (("one-shot", 0.25, 0.75, 0.4), 0.6),  # 1 - at
        (("one-shot", 0.25, 0.75, 0.0), 1.0),
        (("constant",), 1.0),
        (("dense",), 0.0),
    ],
)
def test_schedule_mean_sparsity_fraction_by_hand(args, expected):
    assert schedule_mean_sparsity_fraction(*args) == pytest.approx(expected, rel=1e-14)


def test_schedule_refusals_word_for_word():
    def refused(message, *args, **kw):
        with pytest.raises(SparsescaleError) as err:
            schedule_mean_sparsity_fraction(*args, **kw)
        assert str(err.value) == message

    refused(
        "schedule: cubic needs 0 <= start < end <= 1, got start=0.5, end=0.5", "cubic", 0.5, 0.5
    )
    refused("schedule: one-shot needs 0 <= at < 1, got 1.0", "one-shot", at=1.0)
    refused(
        "schedule: unknown kind 'linear'; expected cubic, one-shot, constant or dense", "linear"
    )


def test_a_law_is_unnamed_by_default():
    law = Law("dense", DENSE)
    assert (
        law.name == ""
        and law.to_dict()["name"] == ""
        and law.fit is None
        and law.uncertainty is None
    )
    with pytest.raises(SparsescaleError) as err:
        Law("dense", DENSE, units={"N": 1})
    assert str(err.value) == "law dense: units must be an object of strings, got {'N': 1}"
    with pytest.raises(SparsescaleError) as err:
        Law("avgparam", AVG, name="a", mean_sparsity_fraction=2.0)
    assert str(err.value) == "law a: mean_sparsity_fraction must be in [0, 1], got 2.0"
    with pytest.raises(SparsescaleError) as err:
        Law("dense", DENSE, name="t", tokens_per_unit=0.0)
    assert str(err.value).startswith("law t: tokens_per_unit: must be a number of tokens between")


def test_schedule_mean_sparsity_fraction_defaults_and_refusals():
    assert schedule_mean_sparsity_fraction() == pytest.approx(0.625, rel=1e-14)
    assert schedule_mean_sparsity_fraction("one-shot") == 1.0  # at = 0 by default
    for args in [
        ("cubic", 0.5, 0.5),
        ("cubic", -0.1, 0.5),
        ("cubic", 0.5, 1.01),
        ("cubic", 0.6, 0.5),
    ]:
        with pytest.raises(SparsescaleError, match="schedule: cubic needs 0 <= start < end <= 1"):
            schedule_mean_sparsity_fraction(*args)
    for at in (1.0, -0.1):
        with pytest.raises(SparsescaleError, match="schedule: one-shot needs 0 <= at < 1"):
            schedule_mean_sparsity_fraction("one-shot", at=at)
    with pytest.raises(
        SparsescaleError, match="schedule: unknown kind 'linear'; expected cubic, one-shot"
    ):
        schedule_mean_sparsity_fraction("linear")


# ---------------------------------------------------------------------------
# forms: law files
# ---------------------------------------------------------------------------
def test_to_dict_holds_exactly_what_was_set():
    law = Law("dense", DENSE, name="d")
    assert set(law.to_dict()) == {"form", "name", "formula", "coefficients", "units"}
    law = Law(
        "avgparam",
        AVG,
        name="a",
        tokens_per_unit=2.0,
        fit={"objective": 0.5},
        mean_sparsity_fraction=0.5,
    )
    d = law.to_dict()
    assert (d["form"], d["name"], d["tokens_per_unit"], d["mean_sparsity_fraction"], d["fit"]) == (
        "avgparam",
        "a",
        2.0,
        0.5,
        {"objective": 0.5},
    )
    assert d["units"] == {"N": "non-zero parameters", "D": "tokens"}
    assert "uncertainty" not in d


def test_law_file_round_trip_of_every_field(tmp_path):
    law = Law(
        "avgparam",
        AVG,
        name="a",
        units={"N": "n", "D": "steps"},
        tokens_per_unit=3.0,
        fit={"objective": 0.25},
        mean_sparsity_fraction=0.3,
    )
    path = tmp_path / "a.json"
    law.save(path)
    assert Law.is_file(path)
    back = load_law(path)
    assert (
        back.form,
        back.name,
        back.units,
        back.tokens_per_unit,
        back.fit,
        back.mean_sparsity_fraction,
    ) == ("avgparam", "a", {"N": "n", "D": "steps"}, 3.0, {"objective": 0.25}, 0.3)
    assert back.coefficients == AVG and back.uncertainty is None
    # a file without a name is named after its stem
    obj = json.loads(path.read_text())
    del obj["name"]
    (tmp_path / "nameless.json").write_text(json.dumps(obj))
    assert load_law(tmp_path / "nameless.json").name == "nameless"


@pytest.mark.parametrize(
    "obj, message",
    [
        ([1], "expected a JSON object with 'form' and 'coefficients'"),
        ({"coefficients": DENSE}, "needs keys 'form' and 'coefficients' (an object)"),
        (
            {"form": "dense", "coefficients": [1]},
            "needs keys 'form' and 'coefficients' (an object)",
        ),
        ({"form": "dense", "coefficients": dict(DENSE, A=True)}, "coefficient 'A' is not a number"),
        (
            {"form": "dense", "coefficients": dict(DENSE, A=1.01e100)},
            "coefficient 'A' = 1.01e+100 is not a finite number of magnitude at most 1e+100",
        ),
        (
            {"form": "dense", "coefficients": DENSE, "units": {"N": 1}},
            "'units' must be an object of strings (N, D, loss)",
        ),
        (
            {"form": "dense", "coefficients": DENSE, "units": "tokens"},
            "'units' must be an object of strings (N, D, loss)",
        ),
        ({"form": "dense", "coefficients": DENSE, "fit": [1]}, "'fit' must be an object"),
        (
            {"form": "dense", "coefficients": dict(DENSE, E=-1)},
            "coefficient E is -1, outside [0, inf]",
        ),
    ],
)
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
    with pytest.raises(
        SparsescaleError, match="unknown law preset 'x'; presets are vit-jft, t5-c4"
    ):
        preset("x")
    # a name that is neither a preset nor a file: refused as a preset; a path: read as a file
    with pytest.raises(SparsescaleError, match="unknown law preset 'nope'"):
        load_law("nope")
    with pytest.raises(SparsescaleError) as err:
        load_law("dir/nope")
    assert "unknown law preset" not in str(err.value)


# ---------------------------------------------------------------------------
# planning
# ---------------------------------------------------------------------------
from sparsescale.laws import planning  # noqa: E402


def _loss_by_hand(S, N, C, f=None):
    """SPARSE's loss along the budget C = 6 N D c_mul(S): D = C / (6 N c_mul(S)),
    c_mul = 1 / (1 - S) (dense FLOPs) or (1 - f S) / (1 - S) (sparse, mean sparsity fraction f)."""
    c = (1.0 if f is None else 1.0 - f * S) / (1.0 - S)
    D = C / (6.0 * N * c)
    return (2.0 * np.sqrt(1.0 - S) + 1.0) / N + (10.0 / D) ** 2 + 0.5, D


def test_c_mul_and_its_log_derivative_by_hand():
    # dense FLOPs: 1 / (1 - S) -> 2 at S = 1/2; d log / dS = 1 / (1 - S) = 2
    assert planning.c_mul(0.5, "dense") == pytest.approx(2.0, rel=1e-14)
    assert planning.dlog_c_mul(0.5, "dense") == pytest.approx(2.0, rel=1e-14)
    # sparse FLOPs, default ramp f = 0.625: (1 - 0.3125) / 0.5 = 1.375; d log / dS = 2 - 0.625 /
    # 0.6875
    assert planning.c_mul(0.5) == pytest.approx(1.375, rel=1e-14)
    assert planning.dlog_c_mul(0.5) == pytest.approx(2.0 - 0.625 / 0.6875, rel=1e-14)
    # ramp over the whole run: f = 3/4 -> (1 - 0.375) / 0.5 = 1.25; derivative 2 - 0.75 / 0.625 =
    # 0.8
    assert planning.c_mul(0.5, "sparse", 0.0, 1.0) == pytest.approx(1.25, rel=1e-14)
    assert planning.dlog_c_mul(0.5, "sparse", 0.0, 1.0) == pytest.approx(0.8, rel=1e-14)
    assert planning.c_mul(0.0) == 1.0 and planning.c_mul(0.0, "dense") == 1.0
    with pytest.raises(SparsescaleError, match="flops: expected sparse or dense, got 'ideal'"):
        planning.c_mul(0.5, "ideal")
    # the derivative refuses the same names (it once read any other name as sparse)
    with pytest.raises(SparsescaleError, match="flops: expected sparse or dense, got 'ideal'"):
        planning.dlog_c_mul(0.5, "ideal")
    # training FLOPs: 6 N D c_mul = 6 * 10 * 100 * 2
    assert planning.training_flops(10, 100, 0.5, "dense") == pytest.approx(12000.0, rel=1e-14)
    assert planning.training_flops(10, 100, 0.5) == pytest.approx(6000.0 * 1.375, rel=1e-14)


def test_mean_sparsity_fraction_of_the_planner_by_hand():
    assert planning.mean_sparsity_fraction() == pytest.approx(0.625, rel=1e-14)
    assert planning.mean_sparsity_fraction(0.0, 1.0) == pytest.approx(0.75, rel=1e-14)
    assert planning.mean_sparsity_fraction(0.5, 1.0) == pytest.approx(0.375, rel=1e-14)
    for start, end in [(0.5, 0.5), (-0.1, 0.5), (0.2, 1.1)]:
        with pytest.raises(SparsescaleError, match="need 0 <= start < end <= 1"):
            planning.mean_sparsity_fraction(start, end)


def test_budget_units_by_hand():
    law = Law("sparse", SPARSE, tokens_per_unit=4.0)
    assert planning.law_compute(law, 100.0) == pytest.approx(25.0, rel=1e-14)
    assert planning.compute_in_flops(law, 25.0) == pytest.approx(100.0, rel=1e-14)
    bare = Law("sparse", SPARSE, name="bare", units={"D": "steps"})
    assert planning.compute_in_flops(bare, 25.0) is None
    with pytest.raises(SparsescaleError) as err:
        planning.law_compute(bare, 100.0)
    assert str(err.value).startswith(
        "compute_flops: law bare does not say what one unit of D (steps) costs"
    )


def test_chinchilla_line_and_equivalent_size_by_hand():
    law = Law("sparse", SPARSE)
    # dense view: A = 3, alpha = 1, aD = 10, beta = 2. D*(N) = aD (beta / (alpha A))^(1/beta)
    # N^(alpha/beta)
    # = 10 sqrt(2/3) sqrt(N): N = 4 -> 20 sqrt(2/3) = 16.3299...
    assert planning.chinchilla_data(law, 4.0) == pytest.approx(
        20.0 * math.sqrt(2.0 / 3.0), rel=1e-14
    )
    assert planning.dense_optimal_compute(law, 4.0) == pytest.approx(
        24.0 * 20.0 * math.sqrt(2.0 / 3.0), rel=1e-14
    )
    # equivalent dense factor at S = 0.75: (3 / 2)^(1/bN) = 1.5
    assert planning.equivalent_dense_factor(law, 0.75) == pytest.approx(1.5, rel=1e-14)
    with pytest.raises(SparsescaleError, match="this needs a sparse-form law"):
        planning.equivalent_dense_factor(Law("dense", DENSE), 0.5)


def test_optimal_data_ratio_by_hand():
    law = Law("sparse", SPARSE)
    # (bN A c_mul'/c_mul / (aS bS (1-S)^(bS-1)))^(1/bD); dense FLOPs at S = 1/2:
    # (1 * 3 * 2 / (2 * 0.5 * 0.5^-0.5))^(1/2) = (6 / sqrt 2)^(1/2) = 2.0597...
    assert planning.optimal_data_ratio(law, 0.5, "dense") == pytest.approx(
        math.sqrt(6.0 / math.sqrt(2.0)), rel=1e-13
    )
    sparse_dlog = 2.0 - 0.625 / 0.6875
    assert planning.optimal_data_ratio(law, 0.5) == pytest.approx(
        math.sqrt(3.0 * sparse_dlog / math.sqrt(2.0)), rel=1e-13
    )
    # avgparam with sparse FLOPs on its own schedule (f = 0.5 = mean_sparsity_fraction(1/3, 1)):
    # D_S / D* = g^(alpha / beta), g = N_avg / N = 0.75 / 0.5 = 1.5 -> 1.5^(1/2)
    avg = Law("avgparam", AVG, mean_sparsity_fraction=0.5)
    assert planning.optimal_data_ratio(avg, 0.5, "sparse", 1.0 / 3.0, 1.0) == pytest.approx(
        math.sqrt(1.5), rel=1e-12
    )


@pytest.mark.parametrize("flops, f", [("dense", None), ("sparse", 0.625)])
@pytest.mark.parametrize("compute", [1e3, 1e4])
def test_optimal_sparsity_is_the_brute_force_minimum(flops, f, compute):
    law = Law("sparse", SPARSE, tokens_per_unit=2.0)
    N = 4.0
    S = np.linspace(0.0, 0.9995, 2_000_001)
    L, D = _loss_by_hand(S, N, compute, f)
    i = int(np.argmin(L))
    point = planning.optimal_sparsity(law, N, compute, flops)
    assert point.sparsity == pytest.approx(S[i], abs=2e-6)
    assert point.loss == pytest.approx(L[i], rel=1e-9) and point.loss <= L[i] + 1e-15
    assert point.data == pytest.approx(_loss_by_hand(point.sparsity, N, compute, f)[1], rel=1e-12)
    # S = 0: D = C / (6 N), the dense loss at that D
    dense_loss, dense_data = _loss_by_hand(0.0, N, compute, f)
    assert (point.dense_data, point.dense_loss) == (
        pytest.approx(dense_data, rel=1e-14),
        pytest.approx(dense_loss, rel=1e-14),
    )
    assert point.compute_flops == pytest.approx(2.0 * compute, rel=1e-14)
    assert point.compute_vs_dense_optimal == pytest.approx(
        compute / (24.0 * 20.0 * math.sqrt(2.0 / 3.0)), rel=1e-13
    )
    # equivalent dense size: N ((aS + cS) / (aS sqrt(1 - S) + cS))^(1/bN)
    assert point.equivalent_dense_size == pytest.approx(
        N * 3.0 / (2.0 * math.sqrt(1 - point.sparsity) + 1.0), rel=1e-12
    )
    assert point.chinchilla_data == pytest.approx(20.0 * math.sqrt(2.0 / 3.0), rel=1e-14)
    assert (point.n_nonzero, point.compute, point.flops) == (N, compute, flops)
    # the grid version agrees within its resolution
    grid = planning.optimal_sparsity_grid(
        law, np.array([N, N]), np.array([compute, compute]), flops, resolution=2000
    )
    assert grid.shape == (2,) and np.all(np.abs(grid - S[i]) <= 0.9995 / 2000)


def test_optimal_sparsity_refusals():
    law = Law("sparse", SPARSE)
    for n in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(SparsescaleError, match="n_nonzero: must be a positive number"):
            planning.optimal_sparsity(law, n, 1e3)
    for c in (0.0, math.inf):
        with pytest.raises(SparsescaleError, match="compute: must be a positive number"):
            planning.optimal_sparsity(law, 4.0, c)
    with pytest.raises(SparsescaleError, match="flops: expected sparse or dense"):
        planning.optimal_sparsity(law, 4.0, 1e3, "ideal")
    with pytest.raises(SparsescaleError, match="this needs a sparse-form law"):
        planning.optimal_sparsity(Law("dense", DENSE), 4.0, 1e3)


# ---------------------------------------------------------------------------
# intervals
# ---------------------------------------------------------------------------
from sparsescale.laws.uncertainty import intervals  # noqa: E402

Z95 = 1.959963984540054  # the 97.5% standard-normal quantile
# 101 evenly spaced values v_i = i / 100: numpy's (linear) percentile q of them is q / 100 exactly,
# so the half 16-84% range is (0.84135 - 0.15865) / 2 = 0.34135
SPREAD = np.arange(101) / 100.0
HALF_RANGE = (0.84135 - 0.15865) / 2.0


def _unc(form, draws, floor=0.0, per_efold=0.0, fit_range=None):
    return intervals.Uncertainty(
        form=form,
        draws=np.asarray(draws, dtype=float),
        fit_range=fit_range or intervals.FitRange((10.0, 100.0), (1e3, 1e4), 0.5),
        model_error=intervals.ModelError(floor, per_efold),
        source="hand",
    )


def test_z_score_and_its_refusals():
    assert intervals.z_score(0.95) == pytest.approx(Z95, rel=1e-12)
    assert intervals.z_score(0.6826894921370859) == pytest.approx(1.0, rel=1e-9)
    for level in (0.0, 1.0, 1.5):
        with pytest.raises(SparsescaleError) as err:
            intervals.z_score(level)
        assert str(err.value) == f"level: must be in (0, 1), got {level}"


def test_fit_range_and_distance_by_hand():
    r = intervals.FitRange.of([0.0, 0.5, 0.25], [10.0, 100.0, 50.0], [1e4, 1e3])
    assert (r.n_nonzero, r.data, r.sparsity_max) == ((10.0, 100.0), (1e3, 1e4), 0.5)
    assert intervals.FitRange.of(None, [1.0], [2.0]).sparsity_max == 0.0
    assert r.distance(0.25, 50.0, 5e3) == 0.0  # inside on every axis
    # N 10x above, D 10x below, 1 - S half of the sparsest run's 0.5: 2 ln 10 + ln 2
    assert r.distance(0.75, 1000.0, 100.0) == pytest.approx(
        2 * math.log(10) + math.log(2), rel=1e-14
    )
    assert r.distance(0.0, 1.0, 1e5) == pytest.approx(
        2 * math.log(10), rel=1e-14
    )  # N 10x below, D 10x above
    # S = 1: 1 - S is floored at 1e-300, a large but finite distance: ln(0.5 / 1e-300)
    assert r.distance(1.0, 50.0, 5e3) == pytest.approx(
        math.log(0.5) + 300 * math.log(10), rel=1e-12
    )
    assert r.to_dict() == {"n_nonzero": [10.0, 100.0], "data": [1e3, 1e4], "sparsity_max": 0.5}


def test_model_error_by_hand():
    e = intervals.ModelError(0.03, 0.04)
    assert e.sigma(0.0) == pytest.approx(0.03, rel=1e-14)
    assert e.sigma(1.0) == pytest.approx(0.05, rel=1e-14)  # the 3-4-5 triangle
    assert e.sigma(np.array([0.0, 1.0])) == pytest.approx([0.03, 0.05], rel=1e-14)


def test_coefficient_sd_is_half_the_16_84_range_of_the_log_predictions():
    # dense draws with A = B = 0 and E = e^v: log prediction = v, spread SPREAD
    draws = [[0.0, 1.0, 0.0, 1.0, math.exp(v)] for v in SPREAD]
    unc = _unc("dense", draws)
    law = Law("dense", {"A": 0.0, "alpha": 1.0, "B": 0.0, "beta": 1.0, "E": 1.0})
    sd = unc.coefficient_sd(law, [0.0, 0.5], [20.0, 30.0], [2e3, 3e3])
    assert sd == pytest.approx([HALF_RANGE, HALF_RANGE], rel=1e-12)
    assert unc.coefficient_sd(law, np.zeros(0), np.zeros(0), np.zeros(0)).shape == (0,)


def test_coefficient_sd_of_avgparam_uses_the_average_size():
    # A = 1, B = E = 0, alpha_v = 0.5 + v: log prediction = -alpha_v log N_avg, so the sd is
    # HALF_RANGE * log N_avg; with S = 1/2, f = 1/2, N_avg = N * 0.75 / 0.5 = e^2 when N = e^2 / 1.5
    draws = [[1.0, 0.5 + v, 0.0, 1.0, 0.0] for v in SPREAD]
    law = Law(
        "avgparam",
        {"A": 1.0, "alpha": 1.0, "B": 0.0, "beta": 1.0, "E": 0.0},
        mean_sparsity_fraction=0.5,
    )
    sd = _unc("avgparam", draws).coefficient_sd(law, 0.5, math.exp(2) / 1.5, 10.0)
    assert float(sd) == pytest.approx(2 * HALF_RANGE, rel=1e-12)


def test_coefficient_sd_of_sparse_draws_matches_their_own_predictions():
    # reference: every draw's Law.predict (checked by hand above), then the percentiles
    rng = np.random.default_rng(5)
    base = np.array([SPARSE[k] for k in ("aS", "bS", "cS", "bN", "aD", "bD", "c")])
    draws = base * rng.uniform(0.8, 1.25, (40, 7))
    unc = _unc("sparse", draws)
    law = Law("sparse", SPARSE)
    S, N, D = np.array([0.0, 0.5, 0.9]), np.array([4.0, 8.0, 2.0]), np.array([5.0, 20.0, 3.0])
    logs = np.log([Law("sparse", dict(zip(SPARSE, row))).predict(S, N, D) for row in draws])
    lo, hi = np.percentile(logs, [15.865, 84.135], axis=0)
    assert unc.coefficient_sd(law, S, N, D) == pytest.approx((hi - lo) / 2, rel=1e-12)


def test_loss_interval_by_hand():
    draws = [[0.0, 1.0, 0.0, 1.0, math.exp(v)] for v in SPREAD]
    law = Law("dense", {"A": 0.0, "alpha": 1.0, "B": 0.0, "beta": 1.0, "E": 2.0})  # point: 2
    # no model error: sd = HALF_RANGE
    lo, hi = _unc("dense", draws).loss_interval(law, 0.0, 20.0, 2e3)
    assert (lo, hi) == (
        pytest.approx(2 * math.exp(-Z95 * HALF_RANGE), rel=1e-12),
        pytest.approx(2 * math.exp(Z95 * HALF_RANGE), rel=1e-12),
    )
    # model error 0.1 + 0.2 per e-fold, at N 10x above the range: sd^2 = HALF^2 + 0.1^2 + (0.2 ln
    # 10)^2
    unc = _unc("dense", draws, 0.1, 0.2)
    sd = math.sqrt(HALF_RANGE**2 + 0.01 + (0.2 * math.log(10)) ** 2)
    lo, hi = unc.loss_interval(law, 0.0, 1000.0, 2e3, level=0.6826894921370859)
    assert (lo, hi) == (
        pytest.approx(2 * math.exp(-sd), rel=1e-9),
        pytest.approx(2 * math.exp(sd), rel=1e-9),
    )


def test_quantity_interval_by_hand():
    draws = [[0.0, 1.0, 0.0, 1.0, e] for e in range(1, 102)]  # E = 1..101
    unc = _unc("dense", draws)
    law = Law("dense", {"A": 0.0, "alpha": 1.0, "B": 0.0, "beta": 1.0, "E": 50.0})
    # percentiles 2.5 and 97.5 of 1..101: 1 + 2.5 = 3.5 and 1 + 97.5 = 98.5
    assert unc.quantity_interval(law, lambda l: l["E"]) == (pytest.approx(3.5), pytest.approx(98.5))
    # 80%: 1 + 10 = 11 and 1 + 90 = 91
    assert unc.quantity_interval(law, lambda l: l["E"], level=0.8) == (
        pytest.approx(11.0),
        pytest.approx(91.0),
    )
    # stretched to contain the point
    far = Law("dense", {"A": 0.0, "alpha": 1.0, "B": 0.0, "beta": 1.0, "E": 200.0})
    assert unc.quantity_interval(far, lambda l: l["E"]) == (pytest.approx(3.5), 200.0)
    # non-finite values are dropped; fewer than 2 left (only the draw E = 7): the point alone
    assert unc.quantity_interval(
        law, lambda l: l["E"] if l is law or l["E"] == 7.0 else math.inf
    ) == (50.0, 50.0)
    # two left, 1 and 2: 1.025 and 1.975, stretched up to the point
    assert unc.quantity_interval(
        law, lambda l: l["E"] if l is law or l["E"] <= 2.0 else math.nan
    ) == (pytest.approx(1.025), 50.0)
    with pytest.raises(SparsescaleError, match="level: must be in"):
        unc.quantity_interval(law, lambda l: l["E"], level=1.0)


def test_draw_laws_keep_the_laws_units_and_fraction():
    law = Law(
        "avgparam",
        AVG,
        units={"N": "n", "D": "steps"},
        tokens_per_unit=3.0,
        mean_sparsity_fraction=0.5,
    )
    draws = [[1.0, 0.5, 2.0, 1.0, 0.1], [2.0, 0.6, 3.0, 1.1, 0.2]]
    laws = _unc("avgparam", draws).draw_laws(law)
    assert [d.coefficients for d in laws] == [dict(zip(AVG, r)) for r in draws]
    assert all(
        (d.form, d.units, d.tokens_per_unit, d.mean_sparsity_fraction)
        == ("avgparam", {"N": "n", "D": "steps"}, 3.0, 0.5)
        for d in laws
    )


def test_uncertainty_round_trip_and_refusals():
    draws = [[0.0, 1.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.5, 0.5, 2.0]]
    unc = _unc("dense", draws, 0.1, 0.2)
    unc.calibration = {"coverage": 0.9}
    d = unc.to_dict()
    assert d["coefficient_names"] == ["A", "alpha", "B", "beta", "E"] and d["source"] == "hand"
    assert d["model_error"] == {"floor": 0.1, "per_efold": 0.2} and d["draws"] == draws
    assert "sigma = sqrt(floor^2 + (per_efold * d)^2)" in d["method"]
    back = intervals.Uncertainty.from_dict(json.loads(json.dumps(d)), "dense")
    assert (back.form, back.source, back.calibration) == ("dense", "hand", {"coverage": 0.9})
    assert (
        np.array_equal(back.draws, unc.draws)
        and back.fit_range == unc.fit_range
        and back.model_error == unc.model_error
    )
    bare = intervals.Uncertainty.from_dict(
        {k: v for k, v in d.items() if k not in ("source", "calibration")}, "dense"
    )
    assert (bare.source, bare.calibration) == ("", {})

    def refused(obj, message):
        with pytest.raises(SparsescaleError) as err:
            intervals.Uncertainty.from_dict(obj, "dense")
        assert str(err.value).startswith(message), str(err.value)

    refused(
        {k: v for k, v in d.items() if k != "fit_range"},
        "uncertainty: malformed (KeyError: 'fit_range')",
    )
    refused(
        dict(d, draws=draws[:1]),
        "uncertainty: draws must be a list of at least 2 rows of A, alpha, B, beta, E",
    )
    refused(
        dict(d, coefficient_names=d["coefficient_names"][::-1]),
        "uncertainty: draws must be a list of at least 2 rows",
    )
    refused(
        dict(d, draws=[r[:4] for r in draws]),
        "uncertainty: draws must be a list of at least 2 rows",
    )
    refused(
        dict(d, draws=[draws[0], [0.5, 0.5, 0.5, 0.5, math.nan]]),
        "uncertainty: draws and model_error must be finite and non-negative",
    )
    refused(
        dict(d, model_error={"floor": -0.1, "per_efold": 0.2}),
        "uncertainty: draws and model_error must be finite",
    )
    refused(
        dict(d, model_error={"floor": 0.1, "per_efold": -0.2}),
        "uncertainty: draws and model_error must be finite",
    )
    refused(
        dict(d, model_error={"floor": 0.1, "per_efold": math.inf}),
        "uncertainty: draws and model_error must be finite",
    )
    refused(
        dict(d, draws=[draws[0], [0.5, 0.0, 0.5, 0.5, 2.0]]),
        "uncertainty: draw 2: coefficient alpha is 0, outside (0, 10]",
    )
    # zero model error is allowed
    intervals.Uncertainty.from_dict(dict(d, model_error={"floor": 0.0, "per_efold": 0.0}), "dense")


def test_optimal_intervals_by_hand():
    law = Law("sparse", SPARSE)
    point = planning.optimal_sparsity(law, 4.0, 1e3, "dense")
    assert planning.optimal_intervals(law, point) is None
    # every draw is the law itself: the re-planned quantities do not move, and the loss intervals
    # are the model error alone, point * exp(-+z sigma(d)) with d = the distance of each point
    fr = intervals.FitRange((1.0, 2.0), (1.0, 1e6), 0.0)
    law.uncertainty = _unc("sparse", [list(SPARSE.values())] * 3, 0.05, 0.1, fr)
    out = planning.optimal_intervals(law, point, flops="dense")
    for name in ("sparsity", "data", "equivalent_dense_size"):
        assert out[name] == (
            pytest.approx(getattr(point, name), rel=1e-9),
            pytest.approx(getattr(point, name), rel=1e-9),
        )
    for name, S, D in (("loss", point.sparsity, point.data), ("dense_loss", 0.0, point.dense_data)):
        d = math.log(4.0 / 2.0) + math.log(1.0 / (1.0 - S))  # N = 4 is 2x above; 1 - S below 1
        sd = math.sqrt(0.05**2 + (0.1 * d) ** 2)
        pred = float(law.predict(S, 4.0, D))
        assert out[name] == (
            pytest.approx(pred * math.exp(-Z95 * sd), rel=1e-9),
            pytest.approx(pred * math.exp(Z95 * sd), rel=1e-9),
        )


def test_presets_ship_their_uncertainty():
    unc = intervals.preset_uncertainty("t5-c4")
    assert (
        unc is not None
        and unc.form == "sparse"
        and unc.draws.shape[1] == 7
        and unc.draws.shape[0] >= 2
    )
    assert intervals.preset_uncertainty("no-such-preset") is None


# ---------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------
from sparsescale.laws import fit as fitmod  # noqa: E402
from sparsescale.laws.fit import huber, huber_objective  # noqa: E402

_OPTION_NAMES = (
    "form",
    "space",
    "delta",
    "seed",
    "base",
    "mean_sparsity_fraction",
    "n_candidates",
    "n_starts",
    "units",
    "tokens_per_unit",
)


def fit_law(S, N, D, y, extra_starts=None, **options):
    """The fit through the public API (Points, FitOptions), from plain arrays."""
    sparsity = np.zeros(np.shape(N)) if S is None else S
    return fitmod.fit_law(
        Points(sparsity, N, D, y), FitOptions(**options), extra_starts=extra_starts
    )


def fit_resamples(S, N, D, y, weights, starts, **options):
    return fitmod.fit_resamples(Points(S, N, D, y), weights, starts, FitOptions(**options))


def test_huber_by_hand():
    # 0.5 r^2 inside |r| <= delta, delta (|r| - delta / 2) outside; both give 0.5 delta^2 at |r| =
    # delta
    assert huber(np.array([0.5, -2.0, 1.0, -1.0, 0.0]), 1.0) == pytest.approx(
        [0.125, 1.5, 0.5, 0.5, 0.0], abs=1e-15
    )
    assert huber(np.array([3.0]), 2.0) == pytest.approx([4.0], abs=1e-15)  # 2 (3 - 1)


def _grid(law, S=(0.0, 0.5, 0.75, 0.875)):
    S, N, D = np.meshgrid(list(S), [1.0, 2.0, 4.0, 8.0], [5.0, 10.0, 20.0], indexing="ij")
    S, N, D = S.ravel(), N.ravel(), D.ravel()
    return S, N, D, law.predict(S, N, D)


def test_huber_objective_by_hand():
    law = Law("sparse", SPARSE)
    S, N, D = np.array([0.0, 0.5]), np.array([4.0, 2.0]), np.array([5.0, 10.0])
    pred = law.predict(S, N, D)
    # log residuals log pred - log y of +5e-4 and -2e-3 (delta 1e-3 by default in log space):
    # 0.5 (5e-4)^2 = 1.25e-7 and 1e-3 (2e-3 - 5e-4) = 1.5e-6 -> mean 8.125e-7
    y = pred * np.exp(-np.array([5e-4, -2e-3]))
    assert huber_objective(law, S, N, D, y) == pytest.approx(8.125e-7, rel=1e-9)
    # linear residuals pred - y of 5e-3 and 2e-2 (delta 1e-2 by default): 1.25e-5 and 1.5e-4 ->
    # 8.125e-5
    y = pred - np.array([5e-3, 2e-2])
    assert huber_objective(law, S, N, D, y, space="linear") == pytest.approx(8.125e-5, rel=1e-9)
    # an explicit delta: 1 -> both inside, 0.5 r^2
    assert huber_objective(law, S, N, D, y, space="linear", delta=1.0) == pytest.approx(
        (1.25e-5 + 2e-4) / 2, rel=1e-9
    )


def test_chunk_sizes_by_hand():
    assert fitmod.chunk_size(4, budget=64) == 2  # 64 bytes / (8 bytes * 4 floats)
    assert fitmod.chunk_size(0, budget=64) == 8  # at least one float per item
    assert fitmod.chunk_size(100, budget=64) == 1  # at least one item
    assert fitmod.chunk_size(1) == 256 * 2**20 // 8  # the default budget is 256 MiB
    assert fitmod.resample_batch(10, 4) == 256 * 2**20 // (8 * 80)
    assert fitmod.resample_batch(10, 0) == 256 * 2**20 // (8 * 20)


@pytest.mark.parametrize(
    "seed, ok",
    [
        (0, True),
        (2**32 - 1, True),
        (np.int64(7), True),
        (-1, False),
        (2**32, False),
        (True, False),
        (1.0, False),
    ],
)
def test_seed_range(seed, ok):
    law = Law("dense", DENSE)
    _, N, D, y = _grid(law, S=(0.0,))
    if ok:
        assert fit_law(
            None, N, D, y, form="dense", seed=seed, n_candidates=64, n_starts=2
        ).diagnostics["seed"] == int(seed)
    else:
        with pytest.raises(SparsescaleError) as err:
            fit_law(None, N, D, y, form="dense", seed=seed)
        assert str(err.value) == f"seed: must be an integer in 0..4294967295, got {seed!r}"


@pytest.mark.parametrize(
    "form, truth, extra",
    [
        ("sparse", SPARSE, {}),
        ("dense", DENSE, {}),
        ("avgparam", AVG, {"mean_sparsity_fraction": 0.5}),
        ("avgparam", AVG, {}),
    ],
)
@pytest.mark.parametrize("space", ["log", "linear"])
def test_exact_data_give_back_the_law(form, truth, extra, space):
    law = Law(form, truth, mean_sparsity_fraction=extra.get("mean_sparsity_fraction"))
    S, N, D, y = _grid(law)
    result = fit_law(S, N, D, y, form=form, space=space, n_candidates=512, n_starts=8, **extra)
    for name, value in truth.items():
        assert result.law.coefficients[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name
    assert result.objective < 1e-16 and result.law.fit["objective"] == result.objective
    assert result.law.predict(S, N, D) == pytest.approx(y, rel=1e-7)
    assert result.law.mean_sparsity_fraction == (
        law.mean_sparsity_fraction if form == "avgparam" else None
    )
    d = result.diagnostics
    assert (d["space"], d["delta"], d["seed"], d["n_candidates"], d["scored_rows"]) == (
        space,
        {"log": 1e-3, "linear": 1e-2}[space],
        0,
        512,
        48,
    )
    assert d["n_starts"] == len(result.start_points) and 1 <= d["n_starts"] <= 8
    assert 1 <= d["starts_at_best"] <= d["n_starts"] and d["n_distinct_optima"] == len(
        result.local_optima
    )
    assert d["grad_norm"] < 1e-6 and d["at_bound"] == []
    assert result.n_points == 48 and result.law.fit["n_points"] == 48
    assert result.local_optima[0][0] == result.objective
    assert all(a[0] <= b[0] for a, b in zip(result.local_optima, result.local_optima[1:]))
    assert all(set(p) == set(truth) for p in result.start_points)
    assert result.to_dict() == {
        "form": form,
        "coefficients": result.law.coefficients,
        "objective": result.objective,
        "n_points": 48,
        "diagnostics": d,
    }


def test_a_vanishing_term_is_reported_at_its_bound():
    S, N, D, y = _grid(Law("sparse", dict(SPARSE, c=0.0)))
    result = fit_law(S, N, D, y, n_candidates=512, n_starts=8)
    assert result.diagnostics["at_bound"] == ["c"]
    assert result.law["c"] == pytest.approx(0.0, abs=1e-9) and result.law["cS"] == pytest.approx(
        1.0, rel=1e-6
    )
    # with aS = 0 the sparsity exponent is free; the fit says where it stopped (bS at its lower
    # bound 0)
    S, N, D, y = _grid(Law("sparse", dict(SPARSE, aS=0.0)))
    result = fit_law(S, N, D, y, n_candidates=512, n_starts=8)
    assert result.diagnostics["at_bound"] in (["aS"], ["aS", "bS"], ["bS"])
    # the objective of a worse optimum, if any, is above the best one
    runner_up = result.diagnostics["runner_up_objective"]
    assert runner_up is None or runner_up > result.objective


def test_nm_refit_keeps_the_base_and_its_units():
    base = Law("sparse", SPARSE, units={"N": "n", "D": "steps"}, tokens_per_unit=4.0)
    truth = dict(SPARSE, aS=3.0, bS=1.5, cS=0.5)
    S, N, D, y = _grid(Law("sparse", truth))
    result = fit_law(S, N, D, y, form="nm", base=base, n_candidates=256, n_starts=4)
    assert result.law.form == "nm" and result.law.units == {"N": "n", "D": "steps"}
    for name, value in truth.items():
        assert result.law[name] == pytest.approx(value, rel=1e-6), name
    assert result.law.tokens_per_unit is None  # not inherited: only given or from a token unit
    # a dense-form base has no bN, aD, bD, c to keep
    with pytest.raises(SparsescaleError) as err:
        fit_law(S, N, D, y, form="nm", base=Law("dense", DENSE))
    assert str(err.value) == (
        "base: the nm form refits a sparse-form base law (it keeps bN, aD, bD, c); got form 'dense'"
    )
    # an nm law is a valid base too
    fit_law(S, N, D, y, form="nm", base=result.law, n_candidates=64, n_starts=2)


def test_units_and_tokens_per_unit_of_a_fit():
    S, N, D, y = _grid(Law("sparse", SPARSE))
    bare = fit_law(S, N, D, y, n_candidates=64, n_starts=2).law
    assert (
        bare.units == {"N": "non-zero parameters", "D": "data (as given)"}
        and bare.tokens_per_unit is None
    )
    tokens = fit_law(S, N, D, y, n_candidates=64, n_starts=2, units={"N": "n", "D": " Tokens "}).law
    assert tokens.units == {"N": "n", "D": " Tokens "} and tokens.tokens_per_unit == 1.0
    given = fit_law(
        S, N, D, y, n_candidates=64, n_starts=2, units={"D": "tokens"}, tokens_per_unit=3.0
    ).law
    assert given.tokens_per_unit == 3.0


def test_a_warm_start_is_refined_too():
    S, N, D, y = _grid(Law("sparse", SPARSE))
    result = fit_law(S, N, D, y, n_candidates=16, n_starts=1, extra_starts=[SPARSE])
    assert result.diagnostics["n_starts"] == 2 and len(result.start_points) == 2
    assert result.start_points[1] == pytest.approx(SPARSE, rel=1e-12)
    assert result.objective < 1e-20


@pytest.mark.parametrize(
    "change, message",
    [
        (
            dict(form="cubic"),
            "form: unknown law form 'cubic'; expected one of sparse, dense, nm, avgparam (or name "
            "your own as package.module:attribute)",
        ),
        (dict(space="log2"), "space: expected log or linear, got 'log2'"),
        (dict(delta=0.0), "delta: must be a positive number, got 0.0"),
        (dict(delta=-1.0), "delta: must be a positive number, got -1.0"),
        (dict(delta=math.inf), "delta: must be a positive number, got inf"),
        (dict(delta=math.nan), "delta: must be a positive number, got nan"),
        (
            dict(form="nm"),
            "base: the nm form needs a base law (a fitted sparse law that fixes bN, aD, bD, c)",
        ),
    ],
)
def test_bad_options_word_for_word(change, message):
    S, N, D, y = _grid(Law("sparse", SPARSE))
    with pytest.raises(SparsescaleError) as err:
        fit_law(S, N, D, y, **change)
    assert str(err.value) == message


def test_bad_points_word_for_word():
    S, N, D, y = _grid(Law("sparse", SPARSE))

    def refused(message, *points, **kw):
        with pytest.raises(SparsescaleError) as err:
            fit_law(*points, **kw)
        assert str(err.value) == message

    refused(
        "data: 47 values, but loss has 48; the columns must have the same length", S, N, D[:-1], y
    )
    refused(
        "6 data points are fewer than the 7 free coefficients of the sparse form",
        S[:6],
        N[:6],
        D[:6],
        y[:6],
    )
    refused(
        "4 data points are fewer than the 5 free coefficients of the dense form",
        None,
        N[:4],
        D[:4],
        y[:4],
        form="dense",
    )
    # 8 rows but 4 distinct configurations: repeats add no equation
    idx = np.array([0, 1, 2, 3] * 2)
    refused(
        "the 8 data points hold only 4 distinct (S, N, D) configuration(s), fewer than the 7 free "
        "coefficients of the sparse form",
        S[idx],
        N[idx],
        D[idx],
        y[idx],
    )
    # the dense form counts (N, D) only: 12 (N, D) configurations x 4 sparsities are 12, not 48
    refused(
        "the 8 data points hold only 4 distinct (N, D) configuration(s), fewer than the 5 free "
        "coefficients of the dense form",
        S[idx] + np.arange(8) / 10,
        N[idx],
        D[idx],
        y[idx],
        form="dense",
    )
    fit_law(
        S[:12], N[:12], D[:12], y[:12], form="dense", n_candidates=32, n_starts=2
    )  # 12 distinct: enough

    def at(arr, i, value):
        out = arr.copy()
        out[i] = value
        return out

    refused("sparsity: row 3 is nan (not finite)", at(S, 2, math.nan), N, D, y)
    refused("n_nonzero: row 1 is inf (not finite)", S, at(N, 0, math.inf), D, y)
    refused("data: row 5 is -inf (not finite)", S, N, at(D, 4, -math.inf), y)
    refused("loss: row 2 is nan (not finite)", S, N, D, at(y, 1, math.nan))
    refused("sparsity: row 4 is -0.1, outside [0, 1)", at(S, 3, -0.1), N, D, y)
    refused("sparsity: row 4 is 1, outside [0, 1)", at(S, 3, 1.0), N, D, y)
    refused("n_nonzero: row 2 is 0, not positive", S, at(N, 1, 0.0), D, y)
    refused("data: row 7 is -3, not positive", S, N, at(D, 6, -3.0), y)
    refused(
        "loss: row 1 is 0, not positive (log-space fitting needs loss > 0)", S, N, D, at(y, 0, 0.0)
    )
    # linear space takes a loss of 0 (its residuals need no log)
    fit_law(S, N, D, at(y, 0, 0.0), space="linear", n_candidates=32, n_starts=2)


def test_fit_resamples_by_hand():
    S, N, D, y = _grid(Law("sparse", SPARSE))
    fitted = fit_law(S, N, D, y, n_candidates=256, n_starts=4)
    # exact data: every reweighting has the same optimum, the law itself, at objective 0
    W = np.ones((3, 48))
    W[1, :10] = 0.0
    W[2, ::2] = 5.0
    coefs, objs = fit_resamples(S, N, D, y, W, [fitted.law.coefficients, SPARSE])
    assert len(coefs) == 3 and objs.shape == (3,)
    for c in coefs:
        for name, value in SPARSE.items():
            assert c[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name
    assert np.all(objs < 1e-16)
    # a noisy point changes the weighted optimum only where it is weighted: its objective is the
    # weighted mean Huber loss, which the refit can only lower from the start's
    y2 = y.copy()
    y2[0] *= 1.01
    coefs, objs = fit_resamples(
        S, N, D, y2, np.array([np.ones(48), np.r_[0.0, np.ones(47)]]), [SPARSE]
    )
    assert objs[1] < 1e-16 < objs[0]
    start = huber_objective(Law("sparse", SPARSE), S, N, D, y2)
    assert objs[0] <= start


# ---------------------------------------------------------------------------
# costs
# ---------------------------------------------------------------------------
from sparsescale.laws import costs  # noqa: E402


def test_cost_model_idealisations_by_hand():
    assert costs.dense_cost().c_mul(0.5) == pytest.approx(2.0, rel=1e-12)
    assert costs.sparse_cost().c_mul(0.5) == pytest.approx(
        1.375, rel=1e-12
    )  # (1 - 0.625 / 2) / 0.5
    assert costs.sparse_cost(0.0, 1.0).c_mul(0.5) == pytest.approx(1.25, rel=1e-12)  # f = 3/4
    assert costs.sparse_cost().dlog_c_mul(0.5) == pytest.approx(2.0 - 0.625 / 0.6875, rel=1e-8)
    assert costs.dense_cost().dlog_c_mul(0.5) == pytest.approx(2.0, rel=1e-8)
    # at S = 0 the central difference is one-sided: (log c(h) - log c(0)) / h ~ d log c / dS at 0
    assert costs.dense_cost().dlog_c_mul(0.0) == pytest.approx(1.0, rel=1e-5)
    assert str(costs.dense_cost()) == "dense" and str(costs.sparse_cost()) == "sparse"


def test_mean_step_time_of_a_kinked_r_by_hand():
    # r(s) = 1 up to s = 1/2, then 2 (1 - s): at S = 1 the ramp s(p) = 1 - (1 - p)^3 crosses 1/2 at
    # p* = 1 - 2^(-1/3); ramp mean = p* + int_{p*}^1 2 (1 - p)^3 dp = p* + (1 - p*)^4 / 2
    model = costs.CostModel("kink", (0.0, 0.5, 1.0), (1.0, 1.0, 0.0))
    q = 2.0 ** (-1.0 / 3.0)
    ramp = (1.0 - q) + q**4 / 2.0
    # dense before the ramp (1/4), the ramp (1/2), r(1) = 0 after it (1/4)
    assert model.mean_step_time(1.0) == pytest.approx(0.25 + 0.5 * ramp, rel=1e-12)
    assert model.relative_step_time(0.75) == pytest.approx(0.5, rel=1e-14)
    # other windows: start 0.1, end 0.5 -> 0.1 + 0.4 ramp + 0
    assert costs.CostModel(
        "kink", (0.0, 0.5, 1.0), (1.0, 1.0, 0.0), start=0.1, end=0.5
    ).mean_step_time(1.0) == pytest.approx(0.1 + 0.4 * ramp, rel=1e-12)
    # S = 0: r(0) = 1 throughout
    assert model.mean_step_time(0.0) == pytest.approx(1.0, rel=1e-14)
    # final_only (an n:m kernel): end r(0) + (1 - end) r(S) = 0.75 + 0.25 * 0.5
    final = costs.CostModel("nm", (0.0, 0.5, 1.0), (1.0, 1.0, 0.0), final_only=True)
    assert final.mean_step_time(0.75) == pytest.approx(0.875, rel=1e-14)
    assert final.c_mul(0.75) == pytest.approx(3.5, rel=1e-14)


@pytest.mark.parametrize(
    "knots, times, message",
    [
        (
            (0.0, 0.5, 0.5),
            (1.0, 1.0, 1.0),
            "knots must be strictly increasing, one relative step time each",
        ),
        ((0.0, 0.6, 0.5), (1.0, 1.0, 1.0), "knots must be strictly increasing"),
        ((0.0, 1.0), (1.0,), "knots must be strictly increasing"),
        ((), (), "knots must be strictly increasing"),
        ((0.0, 1.0), (1.0, -0.1), "relative step times must be finite and >= 0"),
        ((0.0, 1.0), (1.0, math.inf), "relative step times must be finite and >= 0"),
    ],
)
def test_cost_model_refusals(knots, times, message):
    with pytest.raises(SparsescaleError, match=re.escape(message)):
        costs.CostModel("x", knots, times)


def test_cost_model_schedule_refusals():
    costs.CostModel("x", (0.0, 1.0), (1.0, 0.0), start=0.0, end=1.0)
    for start, end in [(0.5, 0.5), (-0.1, 0.5), (0.5, 1.1)]:
        with pytest.raises(SparsescaleError, match="schedule fractions need 0 <= start < end <= 1"):
            costs.CostModel("x", (0.0, 1.0), (1.0, 0.0), start=start, end=end)
    costs.CostModel("x", (0.0,), (0.0,))  # one knot, zero time: allowed


def _doc(table, **extra):
    return dict({"format": "sparsescale-speedups/1", "speedups": table}, **extra)


def test_measured_unstructured_speedups_by_hand():
    sp = costs.speedups_from_dict(
        _doc({"unstructured": {"0.5": 2.0}}, machine={"device": "cpu"}), "f.json"
    )
    assert (
        sp.table == {"unstructured": {0.5: 2.0}}
        and sp.machine == {"device": "cpu"}
        and sp.source == "f.json"
    )
    model = sp.cost_model()
    # r = 1 - s up to 0.5 (speedup 2 there), held at 0.5 beyond: below 0.5 it is the sparse
    # accounting
    assert (model.name, model.knots, model.step_time, model.final_only) == (
        "measured:unstructured",
        (0.0, 0.5),
        (1.0, 0.5),
        False,
    )
    assert model.c_mul(0.5) == pytest.approx(1.375, rel=1e-12)
    assert sp.c_mul(0.5) == pytest.approx(1.375, rel=1e-12)
    # S = 0.9: ramp mean of r(0.9 (1 - (1-p)^3)) splits at s = 0.5; compare with a fine numerical
    # integral
    p = (np.arange(200_000) + 0.5) / 200_000
    s = 0.9 * (1 - (1 - p) ** 3)
    ramp = np.mean(np.where(s < 0.5, 1 - s, 0.5))
    assert model.mean_step_time(0.9) == pytest.approx(0.25 + 0.5 * ramp + 0.25 * 0.5, rel=1e-9)
    assert (
        sp.cost_model(start=0.1, end=0.5).start == 0.1
        and sp.cost_model(start=0.1, end=0.5).end == 0.5
    )


def test_slower_kernels_fall_back_to_dense_by_hand():
    sp = costs.speedups_from_dict(_doc({"unstructured": {"0.5": 2.0, "0.9": 0.5}}))
    # r: 1 at 0, 0.5 at 0.5, 2 at 0.9; capped at 1 from the crossing 0.5 + 0.5 * 0.4 / 1.5 =
    # 0.6333...
    capped = sp.cost_model()
    assert capped.knots == pytest.approx((0.0, 0.5, 0.5 + 0.2 / 1.5, 0.9), rel=1e-14)
    assert capped.step_time == pytest.approx((1.0, 0.5, 1.0, 1.0), rel=1e-14)
    assert capped.relative_step_time(0.6) == pytest.approx(
        0.5 + 0.1 / 0.4 * 1.5, rel=1e-12
    )  # 0.875
    assert capped.relative_step_time(0.8) == pytest.approx(1.0, rel=1e-14)
    raw = sp.cost_model(dense_fallback=False)
    assert raw.name == "measured:unstructured:no-dense-fallback"
    assert raw.relative_step_time(0.8) == pytest.approx(0.5 + 0.3 / 0.4 * 1.5, rel=1e-12)  # 1.625
    # a kernel slower everywhere: capped, the dense accounting exactly
    slow = costs.speedups_from_dict(_doc({"unstructured": {"0.5": 0.5}})).cost_model()
    assert slow.c_mul(0.5) == pytest.approx(2.0, rel=1e-12)
    assert slow.step_time == (1.0, 1.0)


def test_nm_speedups_count_only_at_the_final_mask_by_hand():
    sp = costs.speedups_from_dict(_doc({"2:4": {"0.5": 1.5}}))
    model = sp.cost_model("2:4")
    assert model.final_only and model.name == "measured:2:4"
    assert model.knots == (0.0, 0.5 - 1e-12, 0.5) and model.step_time == pytest.approx(
        (1.0, 1.0, 1.0 / 1.5)
    )
    # R = end r(0) + (1 - end) r(0.5) = 0.75 + 0.25 / 1.5; c_mul = R / 0.5
    assert model.c_mul(0.5) == pytest.approx((0.75 + 0.25 / 1.5) / 0.5, rel=1e-9)
    with pytest.raises(SparsescaleError) as err:
        sp.cost_model("unstructured")
    assert str(err.value) == "speedups: no speedups measured for pattern 'unstructured' (has: 2:4)"
    with pytest.raises(SparsescaleError, match=re.escape("(has: none)")):
        costs.Speedups({}).cost_model()


@pytest.mark.parametrize(
    "obj, message",
    [
        ([1], "f: expected a JSON object, got list"),
        (
            {"speedups": {"unstructured": {"0.5": 2}}},
            "f: 'format' must be 'sparsescale-speedups/1', got None",
        ),
        (_doc({}), "f: 'speedups' must be a non-empty object of pattern -> {sparsity: speedup}"),
        (_doc([1]), "f: 'speedups' must be a non-empty object of pattern -> {sparsity: speedup}"),
        (
            _doc({"unstructured": {}}),
            "f: speedups['unstructured']: expected an object mapping sparsity to speedup, got {}",
        ),
        (
            _doc({"unstructured": {"0": 2}}),
            "f: speedups['unstructured']: sparsity '0' is outside (0, 1)",
        ),
        (
            _doc({"unstructured": {"1": 2}}),
            "f: speedups['unstructured']: sparsity '1' is outside (0, 1)",
        ),
        (
            _doc({"2:4": {"0.4": 2}}),
            "f: speedups['2:4']: sparsity '0.4' is below 0.5, the least pattern 2:4 gives",
        ),
        (
            _doc({"unstructured": {"0.5": 0}}),
            "f: speedups['unstructured']['0.5']: speedup must be > 0, got 0",
        ),
        (
            _doc({"unstructured": {"0.5": True}}),
            "f: speedups['unstructured']['0.5']: expected a number, got True",
        ),
        (
            _doc({"unstructured": {"0.5": "fast"}}),
            "f: speedups['unstructured']['0.5']: expected a number, got 'fast'",
        ),
        (
            _doc({"unstructured": {"0.5": None}}),
            "f: speedups['unstructured']['0.5']: expected a number, got None",
        ),
        (
            _doc({"unstructured": {"0.5": "inf"}}),
            "f: speedups['unstructured']['0.5']: 'inf' is not finite",
        ),
        (
            _doc({"unstructured": {"x": 2}}),
            "f: speedups['unstructured']: sparsity: expected a number, got 'x'",
        ),
        (
            _doc({"unstructured": {"0.5": 2, "0.50": 3}}),
            "f: speedups['unstructured']: sparsity '0.50' given twice",
        ),
        (
            _doc({"2:4": {"0.5": 2}, " 2:4 ": {"0.6": 2}}),
            "f: pattern '2:4' given twice in 'speedups'",
        ),
        (_doc({"unstructured": {"0.5": 2}}, machine=[1]), "f: 'machine' must be an object"),
    ],
)
def test_bad_speedup_documents_word_for_word(obj, message):
    with pytest.raises(SparsescaleError) as err:
        costs.speedups_from_dict(obj, "f")
    assert str(err.value) == message


def test_speedup_documents_accepted_at_the_edges(tmp_path):
    # a hair below n/m's own sparsity is float error, not a lower sparsity
    sp = costs.speedups_from_dict(
        _doc({"2:4T": {str(0.5 - 1e-10): 1.2}, "Unstructured": {"0.99": 3}})
    )
    assert (
        set(sp.table) == {"2:4T", "unstructured"} and sp.machine == {} and sp.source == "speedups"
    )
    assert (
        costs.canonical_pattern(None) == "unstructured"
        and costs.canonical_pattern("2:4t") == "2:4T"
    )
    path = tmp_path / "s.json"
    path.write_text(json.dumps(_doc({"unstructured": {"0.9": 1.6}})))
    assert costs.is_speedups_file(path)
    assert costs.load_speedups(path).table == {"unstructured": {0.9: 1.6}} and costs.load_speedups(
        path
    ).source == str(path)
    other = tmp_path / "o.json"
    other.write_text(json.dumps({"speedups": {}, "format": "other"}))
    assert not costs.is_speedups_file(other)


# ---------------------------------------------------------------------------
# forms: law files and presets, word for word
# ---------------------------------------------------------------------------
def test_law_file_fields_word_for_word(tmp_path):
    from sparsescale.laws.law import check_tokens_per_unit

    with pytest.raises(SparsescaleError) as err:
        Law("dense", DENSE).sparsity_factor(0.5)
    assert str(err.value) == "a dense law has no sparsity term; fit the sparse form"
    with pytest.raises(SparsescaleError) as err:
        check_tokens_per_unit(-1)
    assert (
        str(err.value)
        == "tokens_per_unit: must be a number of tokens between 1e-09 and 1e+18, got -1"
    )
    # from_dict without a source: named "law", errors start with "law: "
    assert Law.from_dict({"form": "dense", "coefficients": DENSE}).name == "law"
    with pytest.raises(SparsescaleError) as err:
        Law.from_dict([1])
    assert str(err.value).startswith("law: expected a JSON object")
    # the name in the file wins over the file's stem
    assert (
        Law.from_dict(
            {"form": "dense", "coefficients": DENSE, "name": "mine"}, source="other.json"
        ).name
        == "mine"
    )
    # the uncertainty travels through to_dict / from_dict
    t5 = preset("t5-c4")
    d = t5.to_dict()
    assert d["uncertainty"] == t5.uncertainty.to_dict()
    back = Law.from_dict(json.loads(t5.to_json()), source="t5.json")
    assert back.uncertainty is not None and np.array_equal(
        back.uncertainty.draws, t5.uncertainty.draws
    )
    # two-space indented JSON, newline-terminated
    text = Law("dense", DENSE, name="d").to_json()
    assert text.endswith("}\n") and text.splitlines()[1] == '  "form": "dense",'


def test_preset_names_and_units_word_for_word():
    vit, t5 = preset("vit-jft"), preset("t5-c4")
    assert (vit.name, t5.name) == ("vit-jft", "t5-c4")
    assert vit.units == {
        "N": "non-zero parameters",
        "D": "images seen",
        "loss": "validation cross-entropy (JFT-4B)",
    }
    assert t5.units == {
        "N": "non-zero parameters",
        "D": "training steps (batch 128 x 512 tokens)",
        "loss": "validation cross-entropy (C4)",
    }
    with pytest.raises(SparsescaleError) as err:
        preset("x")
    assert (
        str(err.value)
        == "unknown law preset 'x'; presets are vit-jft, t5-c4 (or give a LAW.json path)"
    )
    with pytest.raises(SparsescaleError) as err:
        load_law("nope")
    assert (
        str(err.value)
        == "unknown law preset 'nope'; presets are vit-jft, t5-c4 (or give a LAW.json path)"
    )
    # a .json name is a file, even when missing: the file reader's error, naming the law file
    with pytest.raises(SparsescaleError) as err:
        load_law("nope.json")
    assert "unknown law preset" not in str(err.value) and "law file" in str(err.value)


def test_point_counts_at_the_edge_and_data_of_one_unit():
    # exactly as many points (and distinct configurations) as free coefficients: accepted
    law = Law("dense", DENSE)
    N, D = np.array([1.0, 2.0, 4.0, 8.0, 2.0]), np.array([5.0, 5.0, 10.0, 20.0, 40.0])
    fit_law(None, N, D, law.predict(0.0, N, D), form="dense", n_candidates=32, n_starts=2)
    # data of exactly 1 unit is data; 0 is not
    S, N, D, y = _grid(Law("sparse", SPARSE))
    D1 = D.copy()
    D1[0] = 1.0
    fit_law(S, N, D1, Law("sparse", SPARSE).predict(S, N, D1), n_candidates=32, n_starts=2)
    D0 = D.copy()
    D0[2] = 0.0
    with pytest.raises(SparsescaleError) as err:
        fit_law(S, N, D0, y)
    assert str(err.value) == "data: row 3 is 0, not positive"
