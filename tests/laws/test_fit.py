import numpy as np
import pytest
from scipy.special import huber as scipy_huber

from sparsescale.errors import SparsescaleError
from sparsescale.laws.fit import _Problem, fit_law, fit_resamples, huber, huber_objective
from sparsescale.laws.law import Law
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.presets import preset


def test_huber_matches_scipy():
    r = np.linspace(-0.05, 0.05, 101)
    assert np.allclose(huber(r, 0.01), scipy_huber(0.01, r), rtol=0, atol=1e-18)


@pytest.mark.parametrize(
    "form, space", [("sparse", "log"), ("sparse", "linear"), ("dense", "log"), ("nm", "log")]
)
def test_jacobian_matches_finite_differences(form, space):
    rng = np.random.default_rng(0)
    S = rng.choice([0, 0.5, 0.75], 20)
    N = rng.uniform(1e6, 1e8, 20)
    D = rng.uniform(1e5, 1e6, 20)
    base = preset("t5-c4")
    y = base.predict(S, N, D) * (1 + 0.01 * rng.standard_normal(20))
    prob = _Problem(form, S, N, D, y, space, 1e-3, base)
    m = prob.n_amplitudes + len(prob.exponent_names)
    P = np.concatenate(
        [rng.normal(0, 0.3, prob.n_amplitudes), rng.uniform(0.2, 0.8, m - prob.n_amplitudes)]
    )[None, :]
    r, J = prob.residual_jacobian(P)
    for j in range(m):
        h = 1e-6
        Pp, Pm = P.copy(), P.copy()
        Pp[0, j] += h
        Pm[0, j] -= h
        fd = (prob.residual_jacobian(Pp)[0] - prob.residual_jacobian(Pm)[0]) / (2 * h)
        assert np.allclose(J[0, :, j], fd[0], rtol=1e-5, atol=1e-8)


def test_vit_reproduces_table_1(vit_points):
    """Paper setting: linear space, delta 0.01. Best optimum from every start."""
    result = fit_law(Points(*vit_points), FitOptions(space="linear", delta=0.01, seed=0))
    assert result.objective <= 4.92909e-4
    table1 = preset("vit-jft").coefficients
    for name, value in table1.items():
        assert result.law.coefficients[name] == pytest.approx(value, rel=5e-3), name
    assert result.diagnostics["starts_at_best"] == result.diagnostics["n_starts"]
    assert result.diagnostics["at_bound"] == []


def test_t5_finds_the_lowest_optimum_for_every_seed(t5_points, t5_fit):
    """The published T5 coefficients (objective ~7.6e-6) are a local optimum;
    the global one is below 4.9e-6 and must be found from any seed."""
    published = huber_objective(preset("t5-c4"), *t5_points, space="log", delta=1e-3)
    assert 7.5e-6 < published < 7.7e-6
    # the same objective by hand from Table 1: the mean over the 48 runs of the Huber
    # loss (0.5 r^2 inside |r| <= 1e-3, 1e-3 (|r| - 5e-4) outside) of r = log pred - log y
    S, N, D, y = t5_points
    pred = (16.8 * (1 - S) ** 0.722 + 45.0) * N**-0.245 + (10500.0 / D) ** 0.203 + 0.651
    r = np.abs(np.log(pred) - np.log(y))
    by_hand = np.mean([0.5 * x * x if x <= 1e-3 else 1e-3 * (x - 5e-4) for x in r])
    assert published == pytest.approx(by_hand, rel=1e-12)
    objectives, exponents = [t5_fit.objective], [t5_fit.law.coefficients["bD"]]
    for seed in (1, 2, 3, 4, 5):
        r = fit_law(Points(*t5_points), FitOptions(space="log", delta=1e-3, seed=seed))
        objectives.append(r.objective)
        exponents.append(r.law.coefficients["bD"])
    assert max(objectives) < 4.9e-6
    assert max(objectives) - min(objectives) <= 1e-9 * min(objectives)
    assert np.ptp(exponents) < 1e-4
    # and it is a real optimum: no published-coefficient start improves on it
    warm = fit_law(
        Points(*t5_points), FitOptions(seed=0), extra_starts=[preset("t5-c4").coefficients]
    )
    assert warm.objective >= t5_fit.objective * (1 - 1e-9)
    assert t5_fit.diagnostics["grad_norm"] < 1e-6


def _synthetic(truth: Law, noise: float, seed: int):
    rng = np.random.default_rng(seed)
    S, N, D = np.meshgrid(
        [0, 0.5, 0.75, 0.875], np.geomspace(1e6, 1e8, 5), np.geomspace(1e8, 1e10, 4), indexing="ij"
    )
    S, N, D = S.ravel(), N.ravel(), D.ravel()
    y = truth.predict(S, N, D) * np.exp(noise * rng.standard_normal(S.size))
    return S, N, D, y


def test_synthetic_sparse_coefficients_are_recovered():
    truth = Law(
        "sparse", {"aS": 60.0, "bS": 0.9, "cS": 120.0, "bN": 0.35, "aD": 3e8, "bD": 0.6, "c": 1.8}
    )
    S, N, D, y = _synthetic(truth, noise=1e-4, seed=1)
    fitted = fit_law(Points(S, N, D, y), FitOptions(seed=3)).law.coefficients
    # measured relative errors at this noise (1e-4) and seed: 1.9e-3 (cS), 1.8e-3 (aS),
    # 4.2e-4 (bN), 1.5e-4 (c) and below; 6e-3 is about 3x the largest
    for name, value in truth.coefficients.items():
        assert fitted[name] == pytest.approx(value, rel=6e-3), name


def test_synthetic_dense_and_nm_forms():
    truth = Law("dense", {"A": 400.0, "alpha": 0.34, "B": 410.0, "beta": 0.28, "E": 1.69})
    _, N, D, y = _synthetic(truth, noise=1e-5, seed=2)
    fitted = fit_law(Points(None, N, D, y), FitOptions(form="dense")).law.coefficients
    # measured: 3.6e-4 (B), 8e-5 (beta) and below
    for name, value in truth.coefficients.items():
        assert fitted[name] == pytest.approx(value, rel=1.5e-3), name
    # n:m refit: the dense base stays, only aS, bS, cS move
    base = preset("t5-c4")
    nm_truth = Law("sparse", {**base.coefficients, "aS": 25.0, "bS": 1.1, "cS": 40.0})
    S, N, D, y = _synthetic(nm_truth, noise=1e-5, seed=3)
    r = fit_law(Points(S, N, D, y), FitOptions(form="nm", base=base))
    assert r.law.form == "nm"
    for name in ("bN", "aD", "bD", "c"):
        assert r.law.coefficients[name] == base.coefficients[name]
    # measured: 6.8e-5 (bS), 2.1e-5 (aS), 1.8e-5 (cS)
    for name in ("aS", "bS", "cS"):
        assert r.law.coefficients[name] == pytest.approx(nm_truth.coefficients[name], rel=3e-4), (
            name
        )


def test_fit_resamples_with_unit_weights_reproduces_the_fit(t5_points, t5_fit):
    W = np.ones((2, t5_points[0].size))
    W[1, :5] = 3  # a resample that repeats five runs three times
    coefs, objs = fit_resamples(Points(*t5_points), W, [c for _, c in t5_fit.local_optima])
    assert objs[0] == pytest.approx(t5_fit.objective, rel=1e-9)
    idx = np.repeat(np.arange(W.shape[1]), W[1].astype(int))
    direct = fit_law(Points(*(a[idx] for a in t5_points)))
    assert objs[1] <= direct.objective * (1 + 1e-4)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda S, N, D, y: (S, N, D, y[:5]), "same length"),
        (
            lambda S, N, D, y: (np.where(np.arange(S.size) == 3, 1.0, S), N, D, y),
            "sparsity: row 4 is 1, outside",
        ),
        (
            lambda S, N, D, y: (S, np.where(np.arange(S.size) == 0, -1.0, N), D, y),
            "n_nonzero: row 1 is -1",
        ),
        (
            lambda S, N, D, y: (S, N, D, np.where(np.arange(S.size) == 2, np.nan, y)),
            "loss: row 3 is nan",
        ),
        (
            lambda S, N, D, y: (S, N, D, np.where(np.arange(S.size) == 2, 0.0, y)),
            "loss: row 3 is 0, not positive",
        ),
        (lambda S, N, D, y: (S[:6], N[:6], D[:6], y[:6]), "fewer than the 7 free coefficients"),
    ],
)
def test_bad_points_raise_clear_errors(t5_points, change, message):
    with pytest.raises(SparsescaleError, match=message):
        fit_law(Points(*change(*t5_points)))


def test_nm_needs_a_base(t5_points):
    with pytest.raises(SparsescaleError, match="base: the nm form needs a base law"):
        fit_law(Points(*t5_points), FitOptions(form="nm"))
