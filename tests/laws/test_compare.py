"""The average-parameter law as a form, and the comparison of the two sparse laws."""

import numpy as np
import pytest

from sparsescale.laws.compare import aicc, compare_forms
from sparsescale.laws.fit import fit_law
from sparsescale.laws.law import Law
from sparsescale.laws.planning import chinchilla_data, optimal_data_ratio, optimal_sparsity
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.schedule import schedule_mean_sparsity_fraction

SPARSE = Law(
    "sparse", {"aS": 60.0, "bS": 0.9, "cS": 120.0, "bN": 0.35, "aD": 3e8, "bD": 0.6, "c": 1.8}
)
AVG = Law("avgparam", {"A": 180.0, "alpha": 0.35, "B": 3e8**0.6, "beta": 0.6, "E": 1.8})


def _grid(law, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    S, N, D = np.meshgrid(
        [0, 0.5, 0.75, 0.875], np.geomspace(1e6, 1e8, 5), np.geomspace(1e8, 1e10, 4), indexing="ij"
    )
    S, N, D = S.ravel(), N.ravel(), D.ravel()
    return S, N, D, law.predict(S, N, D) * np.exp(noise * rng.standard_normal(S.size))


@pytest.mark.parametrize("law", [SPARSE, AVG], ids=["sparse", "avgparam"])
def test_each_form_recovers_its_own_coefficients(law):
    fit = fit_law(Points(*_grid(law)), FitOptions(form=law.form))
    for k, v in law.coefficients.items():
        assert fit.law[k] == pytest.approx(v, rel=1e-5), k


@pytest.mark.parametrize("law", [SPARSE, AVG], ids=["sparse", "avgparam"])
def test_comparison_picks_the_generating_form(law):
    cmp = compare_forms(Points(*_grid(law, noise=2e-3)))
    assert cmp.favoured == law.form, cmp.verdict
    assert cmp.strength == "very strong" and cmp.holdouts_agree, cmp.verdict
    scores = {s.form: s for s in cmp.scores}
    assert scores["avgparam"].n_coefficients == 5 and scores["sparse"].n_coefficients == 7


@pytest.mark.parametrize(
    "kind, kwargs",
    [
        ("cubic", {}),
        ("cubic", {"start": 0.1, "end": 0.5}),
        ("one-shot", {"at_step": 3000}),
        ("constant", {}),
    ],
)
def test_n_avg_matches_the_schedules_mean_density(kind, kwargs):
    from sparsescale.sparsity.schedules import mean_density

    total = 10_000
    S = 0.75
    if kind == "cubic":
        f = schedule_mean_sparsity_fraction(
            "cubic", kwargs.get("start", 0.25), kwargs.get("end", 0.75)
        )
        density = mean_density("cubic", S, total, every=1, **kwargs)
    elif kind == "one-shot":
        f = schedule_mean_sparsity_fraction("one-shot", at=kwargs["at_step"] / total)
        density = mean_density("one-shot", S, total, at_step=kwargs["at_step"])
    else:
        f = schedule_mean_sparsity_fraction("constant")
        density = mean_density("constant", S, total)
    law = Law("avgparam", dict(AVG.coefficients), mean_sparsity_fraction=f)
    n_dense = 4e7
    assert law.n_avg(S, n_dense * (1 - S)) == pytest.approx(n_dense * density, rel=2e-3)


def test_avgparam_planning_closed_form_and_aicc():
    N = 1e7
    d_star = chinchilla_data(AVG, N)
    for k in (2, 5, 20):
        p = optimal_sparsity(AVG, N, k * 6 * N * d_star)
        assert p.data / d_star == pytest.approx(optimal_data_ratio(AVG, p.sparsity), rel=1e-3)
        # equal compute, equal loss: under its own schedule's FLOPs the law's N_avg is
        # compute-optimal
        assert p.equivalent_dense_size == pytest.approx(AVG.n_avg(p.sparsity, N), rel=1e-9)
    r = np.array([0.1, -0.2, 0.05, 0.0, 0.3, -0.1, 0.2, 0.1])
    n, k = r.size, 3
    assert aicc(r, k) == pytest.approx(
        n * np.log(np.sum(r**2) / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (("cubic", 0.8, 0.3), "start < end"),
        (("one-shot", 0.0, 0.0, 1.0), "0 <= at < 1"),
        (("linear",), "unknown kind"),
    ],
)
def test_schedule_fraction_errors_name_the_argument(args, message):
    from sparsescale.errors import SparsescaleError

    with pytest.raises(SparsescaleError, match=f"schedule: .*{message}"):
        schedule_mean_sparsity_fraction(*args)
    assert schedule_mean_sparsity_fraction("one-shot", at=0.3) == pytest.approx(0.7)
    assert schedule_mean_sparsity_fraction("dense") == 0.0
