"""The fast fitting paths reach the same optima as straightforward references.

- the refinement's Gauss-Newton model (outliers at 0.1 of the IRLS curvature)
  against the plain IRLS majoriser (curvature 1.0, the earlier optimiser), on
  the paper's T5 and ViT sweeps, for the fit and for bootstrap resamples;
- both against scipy.optimize started at the optimum on the plain mean-Huber
  objective in raw coefficients: no descent left;
- the subsample path of large tables against scoring every row;
- S_opt's zoom search against scipy's bounded Brent;
- the grouped regime check against a per-group mask loop.
"""

import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar

import sparsescale.laws.fit as fitmod
from sparsescale.laws.fit import fit_law, fit_resamples, huber_objective
from sparsescale.laws.law import Law
from sparsescale.laws.paper import paper_points
from sparsescale.laws.planning import MAX_SPARSITY, _loss_along_budget, optimal_sparsity
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.presets import preset
from sparsescale.laws.regime import check_series
from sparsescale.laws.uncertainty.bootstrap import group_by_size

PAPER = {"t5": ("paper:t5", "log", 1e-3), "vit": ("paper:vit", "linear", 1e-2)}


def _scipy_polish(law: Law, points, space: str, delta: float) -> float:
    """Powell on the plain objective from the optimum, in log amplitudes and raw
    exponents (a parameterisation unlike the fitter's): the lowest it finds."""
    names = list(law.coefficients)
    amps = {"aS", "cS", "aD", "c"}
    x0 = np.array([np.log(max(law[k], 1e-300)) if k in amps else law[k] for k in names])

    def objective(x):
        coefs = {k: (np.exp(v) if k in amps else v) for k, v in zip(names, x)}
        try:
            return huber_objective(Law("sparse", coefs), *points, space=space, delta=delta)
        except Exception:
            return np.inf

    res = minimize(
        objective, x0, method="Powell", options={"xtol": 1e-10, "ftol": 1e-15, "maxfev": 4000}
    )
    return min(res.fun, objective(x0))


@pytest.mark.parametrize("which", ["t5", "vit"])
def test_paper_fits_match_the_irls_reference_and_scipy(which, monkeypatch):
    name, space, delta = PAPER[which]
    points = paper_points(name)
    fast = fit_law(Points(*points), FitOptions(space=space, delta=delta, seed=0))
    monkeypatch.setattr(fitmod, "OUTLIER_CURVATURE", 1.0)
    reference = fit_law(Points(*points), FitOptions(space=space, delta=delta, seed=0))
    assert abs(fast.objective - reference.objective) <= 1e-9 * reference.objective
    polished = _scipy_polish(fast.law, points, space, delta)
    assert polished >= fast.objective * (1 - 1e-9)


def test_bootstrap_resamples_are_no_worse_than_the_irls_reference(monkeypatch):
    points = paper_points("paper:t5")
    fit = fit_law(Points(*points), FitOptions(space="log", delta=1e-3, seed=0))
    starts = [c for _, c in fit.local_optima] + fit.start_points[:6]
    rng = np.random.default_rng(1)
    W = np.stack([np.bincount(rng.integers(0, 48, 48), minlength=48) for _ in range(60)])
    _, fast = fit_resamples(Points(*points), W, starts, FitOptions(space="log", delta=1e-3))
    monkeypatch.setattr(fitmod, "OUTLIER_CURVATURE", 1.0)
    _, reference = fit_resamples(Points(*points), W, starts, FitOptions(space="log", delta=1e-3))
    # every resample's optimum is as low as the reference's (the reference's
    # slower iteration stops a little above some of them: fast may be lower)
    assert np.all(fast <= reference * (1 + 1e-9))
    assert np.median(np.abs(fast - reference) / reference) < 1e-9


def test_large_tables_fit_through_a_subsample_to_the_same_optimum(monkeypatch):
    rng = np.random.default_rng(3)
    rows = 2400
    law = preset("t5-c4")
    S = rng.choice([0.0, 0.5, 0.75, 0.875], rows)
    N = np.exp(rng.uniform(np.log(1e6), np.log(1e9), rows))
    D = np.exp(rng.uniform(np.log(1e3), np.log(1e6), rows))
    y = law.predict(S, N, D) * np.exp(rng.normal(0, 0.01, rows))
    monkeypatch.setattr(fitmod, "SCORE_ROWS", 300)
    sub = fit_law(Points(S, N, D, y), FitOptions(n_candidates=512))
    assert sub.diagnostics["scored_rows"] == 300
    monkeypatch.setattr(fitmod, "SCORE_ROWS", 10**9)
    every = fit_law(Points(S, N, D, y), FitOptions(n_candidates=512))
    assert every.diagnostics["scored_rows"] == rows
    assert abs(sub.objective - every.objective) <= 1e-9 * every.objective
    for k, v in every.law.coefficients.items():
        assert sub.law.coefficients[k] == pytest.approx(v, rel=1e-4), k


@pytest.mark.parametrize("name", ["vit-jft", "t5-c4"])
@pytest.mark.parametrize("multiple", [1.5, 5.0, 20.0])
def test_sopt_zoom_search_matches_brent(name, multiple):
    law = preset(name)
    N = 1e8
    k = law.dense_view()
    d_star = (
        k["aD"]
        * (k["beta"] / (k["alpha"] * k["A"])) ** (1 / k["beta"])
        * N ** (k["alpha"] / k["beta"])
    )
    C = multiple * 6 * N * d_star
    ours = optimal_sparsity(law, N, C).sparsity
    grid = np.linspace(0.0, MAX_SPARSITY, 4001)
    L, _ = _loss_along_budget(law, grid, N, C, "sparse", 0.25, 0.75)
    i = int(np.argmin(L))
    res = minimize_scalar(
        lambda s: float(_loss_along_budget(law, s, N, C, "sparse", 0.25, 0.75)[0]),
        bounds=(grid[max(i - 1, 0)], grid[min(i + 1, 4000)]),
        method="bounded",
        options={"xatol": 1e-10},
    )
    brent = res.x if res.fun <= L[i] else grid[i]
    # near the minimum L(S) - L* ~ L'' dS^2 / 2 sinks below float resolution
    # (1e-16 L) once dS ~ 1e-8: both searches stop there, so compare the losses
    loss = lambda s: float(_loss_along_budget(law, s, N, C, "sparse", 0.25, 0.75)[0])  # noqa: E731
    assert loss(ours) <= loss(brent) * (1 + 1e-14)
    assert ours == pytest.approx(brent, abs=1e-6)


def test_grouped_regime_check_matches_a_mask_per_group():
    rng = np.random.default_rng(5)
    n = 400
    S = rng.choice([0.0, 0.5, 0.75], n)
    N = rng.choice([1e6, 1.01e6, 4e6, 1.6e7], n)
    D = rng.choice([1e3, 2e3, 4e3, 8e3], n)
    L = 3.0 + N**-0.2 + (1e3 / D) ** 0.3 + rng.normal(0, 1e-3, n)
    got = {(x.sparsity, round(x.n_nonzero)): x for x in check_series(S, N, D, L)}
    size = group_by_size(N)
    expected = 0
    for s in np.unique(S):
        for g in np.unique(size[S == s]):
            at = (S == s) & (size == g)
            d = np.unique(D[at])
            y = [L[at & (D == v)].mean() for v in d]
            x = got[(float(s), round(float(np.median(N[at]))))]
            assert x.data == d.tolist()
            assert np.allclose(x.loss, y, rtol=1e-14)
            expected += 1
    assert len(got) == expected
