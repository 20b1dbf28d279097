"""laws.compare: hand-computed scores, verdicts and dictionaries (mutation kills).

The verdict logic (Akaike weights, the gap to the runner-up, the strength bands, the holdouts'
vote, the sentence) is checked on scores with chosen AICc values: score_form is replaced by a
stand-in, so each number below follows from the table by hand. score_form itself is checked on a
small dense sweep against the definitions (AICc of the fitted residuals, the largest-N holdout,
the rolling folds).
"""

import math

import numpy as np
import pytest

import sparsescale.laws.compare as compare
from sparsescale.laws.compare import (
    COMPARED_FORMS,
    Comparison,
    FormScore,
    aicc,
    compare_forms,
    score_form,
)
from sparsescale.laws.fit import fit_law
from sparsescale.laws.law import Law
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.uncertainty.bootstrap import holdout_largest_n

# fewer exponent candidates and starts than the default: the fits of these small sweeps agree
# with the full search, and the references below use the same options
FAST = {"n_candidates": 512, "n_starts": 8}
DENSE = Law("dense", {"A": 400.0, "alpha": 0.34, "B": 2000.0, "beta": 0.28, "E": 1.7})


def _score(form, a, hold=None, roll=None):
    return FormScore(form, DENSE, 5, 0.25, a, hold, None if hold is None else 2 * hold, roll, 3)


def _compare(monkeypatch, table, forms=COMPARED_FORMS):
    """compare_forms over scores looked up by form: table[form] = (aicc, holdout, rolling)."""
    seen = []

    def fake(points, options):
        seen.append(options)
        return _score(options.form, *table[options.form])

    monkeypatch.setattr(compare, "score_form", fake)
    out = compare_forms(Points([0.0], [1.0], [1.0], [1.0]), FitOptions(space="linear"), forms)
    return out, seen


def test_compared_forms():
    assert COMPARED_FORMS == ("sparse", "avgparam")


def test_aicc_by_hand_and_its_edges():
    # n = 8, k = 3: RSS = 0.01 + 0.04 + 0.0025 + 0 + 0.09 + 0.01 + 0.04 + 0.01 = 0.2025;
    # 8 log(RSS / 8) + 6 + 2 * 3 * 4 / 4 = 8 log(RSS / 8) + 12
    r = np.array([0.1, -0.2, 0.05, 0.0, 0.3, -0.1, 0.2, 0.1])
    assert aicc(r, 3) == pytest.approx(8 * math.log(0.2025 / 8) + 12, rel=1e-12)
    # n = 5, k = 3: the correction's denominator is n - k - 1 = 1: + 6 + 24
    r5 = np.array([1.0, 1.0, 1.0, 1.0, 1.0])
    assert aicc(r5, 3) == pytest.approx(5 * math.log(1.0) + 6 + 24, abs=1e-12)
    # n = k + 1: undefined, ranked last
    assert aicc(np.ones(4), 3) == math.inf
    assert aicc(np.ones(3), 3) == math.inf
    # an exact fit: RSS is floored at 1e-300 instead of taking log 0
    assert aicc(np.zeros(5), 3) == pytest.approx(5 * math.log(1e-300 / 5) + 30, rel=1e-12)


def test_strength_bands_at_their_edges(monkeypatch):
    # Burnham and Anderson: a gap < 2 none, [2, 6) positive, [6, 10) strong, >= 10 very strong
    for gap, strength in [
        (1.99, "not distinguishable"),
        (2.0, "positive"),
        (5.99, "positive"),
        (6.0, "strong"),
        (9.99, "strong"),
        (10.0, "very strong"),
    ]:
        cmp, _ = _compare(monkeypatch, {"sparse": (100.0 + gap, None, None), "avgparam": (100.0,)})
        assert (cmp.favoured, cmp.strength) == ("avgparam", strength), gap


def test_weights_gap_and_verdict_of_three_forms(monkeypatch):
    # AICc 5, 0, 3: the favoured form is avgparam; the gap is to the runner-up (3), not to the
    # worst (5): positive. Weights exp(-AICc/2) normalised: 1 / (1 + e^-2.5 + e^-1.5)
    table = {"sparse": (5.0, 0.3, 0.2), "avgparam": (0.0, 0.1, 0.1), "dense": (3.0, 0.2, 0.3)}
    cmp, seen = _compare(monkeypatch, table, ("sparse", "avgparam", "dense"))
    # each form is scored with the caller's other options
    assert [(o.form, o.space) for o in seen] == [
        ("sparse", "linear"),
        ("avgparam", "linear"),
        ("dense", "linear"),
    ]
    w = 1 / (1 + math.exp(-2.5) + math.exp(-1.5))
    assert w == pytest.approx(0.76615721, rel=1e-8)
    assert cmp.favoured == "avgparam" and cmp.strength == "positive"
    assert cmp.weight == pytest.approx(w, rel=1e-12)
    assert cmp.holdouts_agree is True
    assert cmp.verdict == (
        "the data favour the average-parameter law: positive evidence "
        "(delta AICc 3.0, Akaike weight 0.766); the holdouts agree"
    )
    assert [s.form for s in cmp.scores] == ["sparse", "avgparam", "dense"]


def test_a_single_form_is_very_strong_evidence(monkeypatch):
    # one form: no runner-up, the gap is infinite; its weight is 1
    cmp, _ = _compare(monkeypatch, {"sparse": (7.0, None, None)}, ("sparse",))
    assert (cmp.favoured, cmp.strength, cmp.weight, cmp.holdouts_agree) == (
        "sparse",
        "very strong",
        1.0,
        None,
    )
    assert cmp.verdict == (
        "the data favour the paper's sparse law: very strong evidence "
        "(delta AICc inf, Akaike weight 1.000)"
    )


def test_holdouts_vote_separately(monkeypatch):
    # the favoured form (sparse, AICc 0 against 12) loses the largest-N holdout: they disagree
    table = {"sparse": (0.0, 0.3, 0.1), "avgparam": (12.0, 0.2, 0.2)}
    cmp, _ = _compare(monkeypatch, table)
    assert cmp.favoured == "sparse" and cmp.holdouts_agree is False
    # weight 1 / (1 + e^-6) = 0.99753
    assert cmp.verdict == (
        "the data favour the paper's sparse law: very strong evidence (delta AICc 12.0, "
        "Akaike weight 0.998); but the holdouts disagree, so extrapolation does not settle it"
    )
    # ... and loses the rolling one only
    table = {"sparse": (0.0, 0.1, 0.3), "avgparam": (12.0, 0.2, 0.2)}
    assert _compare(monkeypatch, table)[0].holdouts_agree is False
    # only the rolling folds could be computed (no largest-N holdout): they vote alone
    table = {"sparse": (0.0, None, 0.1), "avgparam": (12.0, 0.2, 0.2)}
    assert _compare(monkeypatch, table)[0].holdouts_agree is True
    table = {"sparse": (0.0, None, 0.3), "avgparam": (12.0, 0.2, 0.2)}
    assert _compare(monkeypatch, table)[0].holdouts_agree is False
    # one form without a rolling score: that attribute does not vote
    table = {"sparse": (0.0, 0.1, 0.3), "avgparam": (12.0, 0.2, None)}
    assert _compare(monkeypatch, table)[0].holdouts_agree is True
    # none at all: None, and the verdict says nothing about holdouts
    table = {"sparse": (1.0, None, None), "avgparam": (0.0, None, None)}
    cmp, _ = _compare(monkeypatch, table)
    assert cmp.holdouts_agree is None
    assert cmp.verdict == "the criterion does not separate the forms (delta AICc 1.0)"
    table = {"sparse": (1.0, 0.3, None), "avgparam": (0.0, 0.1, None)}
    cmp, _ = _compare(monkeypatch, table)
    assert cmp.verdict == (
        "the criterion does not separate the forms (delta AICc 1.0); the holdouts agree"
    )


def test_dictionaries_word_for_word(monkeypatch):
    table = {"sparse": (5.0, 0.3, 0.2), "avgparam": (0.0, 0.1, 0.1)}
    cmp, _ = _compare(monkeypatch, table)
    d = cmp.to_dict()
    assert d["scores"][0] == {
        "form": "sparse",
        "coefficients": dict(DENSE.coefficients),
        "n_coefficients": 5,
        "objective": 0.25,
        "aicc": 5.0,
        "holdout_mean_abs_rel_error": 0.3,
        "holdout_max_abs_rel_error": 0.6,
        "rolling_mean_abs_rel_error": 0.2,
        "rolling_points": 3,
    }
    assert {k: v for k, v in d.items() if k != "scores"} == {
        "favoured": "avgparam",
        "strength": "positive",
        "akaike_weight": pytest.approx(1 / (1 + math.exp(-2.5)), rel=1e-12),
        "holdouts_agree": True,
        "verdict": cmp.verdict,
    }
    assert len(d["scores"]) == 2
    # a Comparison made by hand has no verdict until one is written
    assert Comparison([], "sparse", "positive", 0.5, None).verdict == ""


# -- score_form on a small dense sweep ----------------------------------------

# Seven runs: N1..N3 at D1 only, N4 at D1..D4. The rolling folds with three training groups:
# along N, group 3 (N4) from N1..N3 = 3 runs, too few for the dense form's 5 coefficients (the
# fit refuses; the fold is skipped); along D, group 3 (D4, one run) from D1..D3 = 6 runs. So the
# rolling score is that one run's error. (With two training groups there would be one more
# fold along D: D3 from D1, D2.) The largest-N holdout fits on the 3 small runs: refused too.
N7 = np.array([1e6, 2e6, 4e6, 8e6, 8e6, 8e6, 8e6])
D7 = np.array([1e8, 1e8, 1e8, 1e8, 2e8, 4e8, 8e8])
NOISE7 = np.array([0.004, -0.003, 0.002, -0.001, 0.003, -0.002, 0.001])


@pytest.mark.parametrize("space", ["log", "linear"])
def test_score_form_against_its_definitions(space):
    S = np.zeros(7)
    y = DENSE.predict(S, N7, D7) * np.exp(NOISE7)
    points = Points(S, N7, D7, y)
    options = FitOptions(form="dense", space=space, **FAST)
    score = score_form(points, options)
    fit = fit_law(points, options)
    pred = fit.law.predict(S, N7, D7)
    r = np.log(pred / y) if space == "log" else pred - y
    assert score.form == "dense" and score.n_coefficients == 5
    assert score.law.coefficients == pytest.approx(fit.law.coefficients, rel=1e-9)
    assert score.objective == pytest.approx(fit.objective, rel=1e-9)
    assert score.aicc == pytest.approx(aicc(r, 5), rel=1e-9)
    # an AICc in the other space would differ by far more than the tolerance
    other = pred - y if space == "log" else np.log(pred / y)
    assert abs(aicc(other, 5) - score.aicc) > 1.0
    assert score.holdout_mean is None and score.holdout_max is None
    # the one rolling fold: D4 predicted from the six runs at D <= 4e8
    train = D7 < 5e8
    law = fit_law(points.take(train), options).law
    err = abs(float(law.predict(0.0, 8e6, 8e8)) / y[6] - 1.0)
    assert score.rolling_points == 1
    assert score.rolling_mean == pytest.approx(err, rel=1e-9)


def test_score_form_holdout_and_rolling_mean_over_points():
    # a 3 x 4 grid (N x D): largest-N holdout fits 8 runs; rolling with three training groups:
    # none along N (groups 0..2, nothing from the third on beyond them), one along D (D4 from
    # D1..D3: 9 runs, 3 held out). The rolling mean is over the held-out points.
    Ng, Dg = np.meshgrid([1e6, 3e6, 9e6], [1e8, 2e8, 4e8, 8e8], indexing="ij")
    N, D = Ng.ravel(), Dg.ravel()
    S = np.zeros(N.size)
    noise = 0.003 * np.sin(np.arange(N.size) * 1.7)
    y = DENSE.predict(S, N, D) * np.exp(noise)
    points = Points(S, N, D, y)
    options = FitOptions(form="dense", space="log", **FAST)
    score = score_form(points, options)
    h = holdout_largest_n(points, options)
    assert score.holdout_mean == pytest.approx(h["mean_abs_rel_error"], rel=1e-9)
    assert score.holdout_max == pytest.approx(h["max_abs_rel_error"], rel=1e-9)
    assert score.holdout_max > score.holdout_mean
    train, test = D < 5e8, D > 5e8
    law = fit_law(points.take(train), options).law
    err = np.abs(law.predict(S[test], N[test], D[test]) / y[test] - 1.0)
    assert score.rolling_points == 3
    assert score.rolling_mean == pytest.approx(float(err.mean()), rel=1e-9)


def test_score_form_falls_back_to_two_training_groups():
    # a 3 x 3 grid: no fold has three smaller groups, so the folds take two: N3 from N1, N2
    # (6 runs fit, 3 held out) and D3 from D1, D2 (likewise): 6 held-out points in all
    Ng, Dg = np.meshgrid([1e6, 3e6, 9e6], [1e8, 3e8, 9e8], indexing="ij")
    N, D = Ng.ravel(), Dg.ravel()
    S = np.zeros(N.size)
    y = DENSE.predict(S, N, D) * np.exp(0.003 * np.cos(np.arange(N.size) * 2.3))
    points = Points(S, N, D, y)
    options = FitOptions(form="dense", space="log", **FAST)
    score = score_form(points, options)
    errors = []
    for train, test in ((N < 5e6, N > 5e6), (D < 5e8, D > 5e8)):
        law = fit_law(points.take(train), options).law
        errors.append(np.abs(law.predict(S[test], N[test], D[test]) / y[test] - 1.0))
    assert score.rolling_points == 6
    assert score.rolling_mean == pytest.approx(float(np.concatenate(errors).mean()), rel=1e-9)


def test_score_form_when_no_fold_can_be_fitted():
    # N1, N2, N3 at D1, N4 at D1, D2, D3: along N the fold predicting N4 has 3 runs to fit the
    # dense form's 5 coefficients (refused); along D there are three groups, none with three
    # smaller ones, so the two-group fallback is not tried (the N fold exists). No score.
    N = np.array([1e6, 2e6, 4e6, 8e6, 8e6, 8e6])
    D = np.array([1e8, 1e8, 1e8, 1e8, 2e8, 4e8])
    S = np.zeros(6)
    y = DENSE.predict(S, N, D) * np.exp(NOISE7[:6])
    score = score_form(Points(S, N, D, y), FitOptions(form="dense", space="log", **FAST))
    assert (score.rolling_mean, score.rolling_points) == (None, 0)
    assert score.holdout_mean is None


def test_weights_of_large_criteria(monkeypatch):
    # AICc of many points fitted closely is large and negative (n log(RSS / n): 80 points with
    # residuals of 1e-3 give about -1100). The weights are relative to the best form:
    # exp(-(a - a_min) / 2) = 1 and e^-5, so 1 / (1 + e^-5), whatever the level of a
    for base in (-2000.0, 2000.0):
        table = {"sparse": (base, None, None), "avgparam": (base + 10.0, None, None)}
        cmp, _ = _compare(monkeypatch, table)
        assert cmp.weight == pytest.approx(1 / (1 + math.exp(-5)), rel=1e-12), base
