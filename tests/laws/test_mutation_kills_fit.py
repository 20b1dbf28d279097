"""Kill tests for laws/fit.py's optimiser (the separable problem, the Levenberg-Marquardt
refinement, the starting points, the diagnostics).

Every expected value is a closed form, a hand calculation (in the comments) or an independent
reference: scipy.optimize.nnls for the projected amplitudes, scipy.optimize.least_squares on the
same Huber objective for an optimum, and a plain re-implementation of the documented LM
iteration (`_reference_refine`) for the path of the refinement: its damping, its acceptance
test and where it stops are visible through `max_iter` and `rtol`.
"""

import numpy as np
import pytest
from scipy.optimize import least_squares, nnls

import sparsescale.laws.fit as fitmod
from sparsescale.errors import SparsescaleError
from sparsescale.laws import FitOptions, Law, Points
from sparsescale.laws.fit import _Problem

SPARSE = {"aS": 2.0, "bS": 0.5, "cS": 1.0, "bN": 1.0, "aD": 10.0, "bD": 2.0, "c": 0.5}
DENSE = {"A": 8.0, "alpha": 1.0 / 3.0, "B": 9.0, "beta": 0.5, "E": 1.0}


def _grid(law, S=(0.0, 0.5, 0.75, 0.875), noise=0.0, seed=0):
    S, N, D = np.meshgrid(list(S), [1.0, 2.0, 4.0, 8.0], [5.0, 10.0, 20.0], indexing="ij")
    S, N, D = S.ravel(), N.ravel(), D.ravel()
    y = law.predict(S, N, D) * np.exp(noise * np.random.default_rng(seed).standard_normal(S.size))
    return S, N, D, y


def _bounds(problem):
    b = [fitmod.AMPLITUDE_BOUNDS] * problem.n_amplitudes + list(problem.form.exponent_bounds)
    return np.array([x[0] for x in b]), np.array([x[1] for x in b])


def _huber(r, delta):
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


# ---------------------------------------------------------------------------
# the separable problem
# ---------------------------------------------------------------------------
def test_problem_units_and_subset_by_hand():
    S = np.array([0.0, 0.5, 0.75])
    N = np.array([1.0, 4.0, 16.0])  # the geometric median is the median of the logs: 4
    D = np.array([10.0, 1000.0, 1e5])  # 1000
    y = np.array([3.0, 2.0, 1.5])
    p = _Problem("sparse", S, N, D, y, "log", 1e-3)
    assert (p.n_scale, p.d_scale) == pytest.approx((4.0, 1000.0), rel=1e-12)
    assert p.design.log1mS == pytest.approx(np.log([1.0, 0.5, 0.25]), abs=1e-15)
    assert p.design.logN == pytest.approx(np.log([0.25, 1.0, 4.0]), abs=1e-15)
    assert p.design.logD == pytest.approx(np.log([0.01, 1.0, 100.0]), abs=1e-14)
    assert p.offset.tolist() == [0.0, 0.0, 0.0] and p.log_y == pytest.approx(np.log(y))
    assert (p.space, p.delta, p.base, p.n_amplitudes) == ("log", 1e-3, None, 4)
    assert tuple(p.exponent_names) == ("bS", "bN", "bD")
    sub = p.subset(np.array([2, 0]))
    assert (sub.n_scale, sub.d_scale) == (p.n_scale, p.d_scale)  # not recomputed
    assert sub.S.tolist() == [0.75, 0.0] and sub.y.tolist() == [1.5, 3.0]
    assert sub.log_y == pytest.approx(np.log([1.5, 3.0])) and sub.offset.tolist() == [0.0, 0.0]
    assert sub.design.logN == pytest.approx(np.log([4.0, 0.25]), abs=1e-15)
    P = np.array([[1.0, 0.5, 0.2, 0.3, 0.7, 0.4, 0.9]])
    assert sub.residuals(P) == pytest.approx(p.residuals(P)[:, [2, 0]], abs=1e-15)
    assert p.subset(np.array([1])).design.log1mS == pytest.approx(np.log([0.5]))


def test_nm_problem_offset_is_the_base_data_term_and_floor():
    base = Law("sparse", SPARSE)
    S, N, D, y = _grid(Law("sparse", dict(SPARSE, aS=3.0, bS=1.5, cS=0.5)))
    p = _Problem("nm", S, N, D, y, "log", 1e-3, base)
    # (aD / D)^bD + c = (10 / D)^2 + 0.5: 4.5, 1.5, 0.75 at D = 5, 10, 20
    assert p.offset[:3] == pytest.approx([4.5, 1.5, 0.75], rel=1e-14)
    assert p.base is base and p.design.fixed == {"bN": 1.0}
    # the refit's exact coefficients give residual 0 and come back from the parameters
    truth = dict(SPARSE, aS=3.0, bS=1.5, cS=0.5)
    P = p.from_coefficients(truth)
    assert p.residuals(P[None])[0] == pytest.approx(np.zeros(48), abs=1e-14)
    assert p.to_coefficients(P) == pytest.approx(truth, rel=1e-12)


@pytest.mark.parametrize("space", ["log", "linear"])
def test_residuals_are_the_law_residuals(space):
    law = Law("sparse", SPARSE)
    S, N, D, y = _grid(law, noise=0.01)
    p = _Problem("sparse", S, N, D, y, space, 1e-3)
    P = p.from_coefficients(SPARSE)
    pred = law.predict(S, N, D)
    want = np.log(pred) - np.log(y) if space == "log" else pred - y
    assert p.residuals(P[None])[0] == pytest.approx(want, abs=1e-13)
    assert p.residual_jacobian(P[None])[0][0] == pytest.approx(want, abs=1e-13)
    assert p.basis(P[None, 4:]).shape == (1, 48, 4)
    assert p.to_coefficients(P) == pytest.approx(SPARSE, rel=1e-12)


def test_residuals_of_a_non_positive_prediction():
    # all amplitudes 0: pred = 0, whose log is not a number (nan, not -inf) in log space; in
    # linear space the residual is just 0 - y
    S, N, D, y = _grid(Law("dense", DENSE), S=(0.0,))
    P = np.array([[0.0, 0.0, 0.0, 0.5, 0.5], [0.0, 0.0, -1.0, 0.5, 0.5]])
    r = _Problem("dense", S, N, D, y, "log", 1e-3).residuals(P)
    assert np.isnan(r).all()
    r = _Problem("dense", S, N, D, y, "linear", 1e-2).residuals(P)
    assert r == pytest.approx(np.stack([-y, -1.0 - y]), abs=1e-15)
    assert fitmod._weighted_huber(r, np.full((2, 12), 1 / 12), 1e-2) == pytest.approx(
        [np.mean(_huber(y, 1e-2)), np.mean(_huber(1.0 + y, 1e-2))], rel=1e-14
    )


def test_from_coefficients_clips_the_amplitudes():
    S, N, D, y = _grid(Law("dense", DENSE), S=(0.0,))
    p = _Problem("dense", S, N, D, y, "log", 1e-3)
    # n_scale = 2 sqrt(2) (median of log N over 1, 2, 4, 8 x 3: between log 2 and log 4), d_scale
    # 10; A / n_scale^alpha with alpha = 1: -1 -> -0.35 -> 0; 1e14 -> 3.5e13 -> 1e12 (the bound)
    P = p.from_coefficients({"A": -1.0, "alpha": 1.0, "B": 1e14, "beta": 1.0, "E": 2.0})
    assert p.n_scale == pytest.approx(2 * np.sqrt(2), rel=1e-14)
    assert P.tolist() == [0.0, 1e12, 2.0, 1.0, 1.0]


# ---------------------------------------------------------------------------
# stage 1: the projection is an exact NNLS
# ---------------------------------------------------------------------------
def _nnls_reference(p, e):
    """Weighted NNLS by scipy: min |w (Phi a + offset - y)|, a >= 0, w = 1/y in log space."""
    Phi = p.basis(e[None])[0]
    w = 1.0 / p.y if p.space == "log" else np.ones_like(p.y)
    a, _ = nnls(Phi * w[:, None], (p.y - p.offset) * w)
    pred = Phi @ a + p.offset
    r = np.log(pred) - np.log(p.y) if p.space == "log" else pred - p.y
    return a, np.mean(_huber(r, p.delta))


@pytest.mark.parametrize(
    "form, space", [("sparse", "log"), ("sparse", "linear"), ("nm", "log"), ("dense", "linear")]
)
def test_projection_is_the_nnls_of_every_candidate(form, space, monkeypatch):
    base = Law("sparse", SPARSE)
    truth = Law("sparse", dict(SPARSE, c=0.0, aS=0.3))
    S, N, D, y = _grid(truth, noise=0.02, seed=4)
    p = _Problem(form, S, N, D, y, space, 1e-3 if space == "log" else 1e-2, base)
    rng = np.random.default_rng(5)
    box = np.array(p.form.exponent_bounds)
    E = box[:, 0] + rng.uniform(0.05, 0.95, (13, box.shape[0])) * (box[:, 1] - box[:, 0])
    amps, obj = p.project(E)
    # chunks of 3 candidates (a budget of 3 x 4 floats per point and amplitude): the same answer
    monkeypatch.setattr(fitmod, "MEMORY_BUDGET", 8 * 48 * p.n_amplitudes * 4 * 3)
    amps3, obj3 = p.project(E)
    assert np.array_equal(amps3, amps) and np.array_equal(obj3, obj)
    n_zero = 0
    for e, a, o in zip(E, amps, obj):
        ref_a, ref_o = _nnls_reference(p, e)
        assert a == pytest.approx(ref_a, rel=1e-6, abs=1e-9)
        assert o == pytest.approx(ref_o, rel=1e-7)
        n_zero += int(np.any(ref_a == 0.0))
    assert n_zero > 0  # some candidates have an active bound: the NNLS is not the plain LS


def test_projection_with_two_identical_basis_columns():
    # S = 0 everywhere: the sparse form's first two columns, (1-S)^bS N'^-bN and N'^-bN, are the
    # same, so every active set holding both is exactly singular (the 1e-12 ridge is lost in
    # gram entries of ~1e6 at losses ~0.03) and skipped; the others still give the exact NNLS
    rng = np.random.default_rng(11)
    N, D = rng.uniform(1.0, 8.0, 30), rng.uniform(5.0, 20.0, 30)
    y = 0.01 * (1.0 / N + (10.0 / D) ** 2 + 0.5) * np.exp(rng.normal(0, 0.01, 30))
    p = _Problem("sparse", np.zeros(30), N, D, y, "log", 1e-3)
    E = np.array([[0.5, 1.0, 2.0], [1.0, 0.7, 1.5], [2.0, 1.3, 2.5]])
    amps, obj = p.project(E)
    for e, a, o in zip(E, amps, obj):
        ref_a, ref_o = _nnls_reference(p, e)
        assert o == pytest.approx(ref_o, rel=1e-7)
        # the N-term's amplitude lands on one of the two equal columns: their sum is the NNLS one
        assert a[0] + a[1] == pytest.approx(ref_a[0] + ref_a[1], rel=1e-6)
        assert a[2:] == pytest.approx(ref_a[2:], rel=1e-6)
        assert np.count_nonzero(a) == 3


def test_projection_scores_a_zero_prediction_inf():
    # linear space, every loss negative: every amplitude's best value is < 0, so all are held at 0;
    # the prediction 0 is not admissible (a loss must be > 0) and the candidate scores inf
    S, N, D, y = _grid(Law("dense", DENSE), S=(0.0,))
    p = _Problem("dense", S, N, D, -y, "linear", 1e-2)
    amps, obj = p.project(np.array([[0.5, 0.5], [1.0, 1.5]]))
    assert amps.tolist() == [[0.0] * 3] * 2 and obj.tolist() == [np.inf, np.inf]
    # and a single-amplitude active set wins where it is the NNLS optimum: a loss that rises
    # with N (D = N) is best fitted by a floor alone, every other amplitude wanting to be < 0:
    # E = the mean of y (weights 1 in linear space)
    N = np.geomspace(1.0, 8.0, 12)
    y = 2.0 - 0.1 * N**-0.5
    p = _Problem("dense", 0 * N, N, N, y, "linear", 1e-2)
    amps, obj = p.project(np.array([[0.5, 1.0]]))
    assert amps[0] == pytest.approx([0.0, 0.0, np.mean(y)], abs=1e-12)
    assert obj[0] == pytest.approx(np.mean(_huber(np.mean(y) - y, 1e-2)), rel=1e-12)
    assert _nnls_reference(p, np.array([0.5, 1.0]))[0] == pytest.approx(amps[0], abs=1e-12)


# ---------------------------------------------------------------------------
# the weighted objective and one LM step
# ---------------------------------------------------------------------------
def test_weighted_huber_by_hand():
    r = np.array([[0.5e-3, -2e-3], [np.nan, 0.0], [np.inf, 0.0], [0.0, 0.0]])
    w = np.array([[0.25, 0.75], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    # 0.25 * 0.5 (5e-4)^2 + 0.75 * 1e-3 (2e-3 - 5e-4) = 3.125e-8 + 1.125e-6
    f = fitmod._weighted_huber(r, w, 1e-3)
    assert f[0] == pytest.approx(1.15625e-6, rel=1e-12)
    assert f[1:].tolist() == [np.inf, np.inf, 0.0]


def _reference_step(r, J, w, P, lower, upper, lam, delta, curvature=0.1):
    """The documented step: (H + lam (diag H + 1e-12)) dp = -g with g = J^T w psi(r),
    H = J^T w c J, c = 1 inside the Huber zone and curvature delta/|r| outside; a coordinate at
    a bound whose gradient pushes outwards is held (its row and column the identity, g = 0)."""
    steps = []
    for rg, Jg, wg, Pg, lg in zip(r, J, w, P, lam):
        psi = np.clip(rg, -delta, delta)
        c = np.where(np.abs(rg) <= delta, 1.0, curvature * delta / np.abs(rg))
        g = Jg.T @ (wg * psi)
        H = Jg.T @ (Jg * (wg * c)[:, None])
        held = ((Pg <= lower) & (g > 0)) | ((Pg >= upper) & (g < 0))
        H[held, :] = 0.0
        H[:, held] = 0.0
        H[held, held] = 1.0
        g[held] = 0.0
        A = H + lg * (np.diag(np.diag(H)) + 1e-12 * np.eye(len(g)))
        steps.append(-np.linalg.solve(A, g))
    return np.array(steps)


def test_lm_step_against_the_reference():
    rng = np.random.default_rng(7)
    G, n, m, delta = 4, 9, 3, 1e-2
    J = rng.normal(size=(G, n, m))
    r = rng.normal(0, 0.02, (G, n))  # about half inside |r| <= delta
    r[1, 0], r[2, 1] = delta, -delta  # on the edge of the zone: still inside (curvature 1)
    w = rng.uniform(0.5, 1.5, (G, n))
    lower, upper = np.zeros(m), np.ones(m)
    lam = np.array([1e-3, 0.5, 3.0, 1e-12])
    # the unconstrained gradients decide which coordinates a bound holds
    g = np.einsum("gnm,gn->gm", J, w * np.clip(r, -delta, delta))
    P = np.full((G, m), 0.5)
    P[0] = np.where(g[0] > 0, 0.0, 1.0)  # every coordinate pushed outwards: held
    P[1] = np.where(g[1] > 0, 1.0, 0.0)  # every one pushed inwards: free
    P[2, 0] = 0.0 if g[2, 0] > 0 else 1.0  # one held, two free
    step = fitmod._lm_step(r, J, w, P, lower, upper, lam, delta)
    assert step == pytest.approx(_reference_step(r, J, w, P, lower, upper, lam, delta), rel=1e-9)
    assert step[0].tolist() == [0.0, 0.0, 0.0] and np.all(step[1] != 0.0)
    assert step[2, 0] == 0.0 and np.all(step[2, 1:] != 0.0)


def test_lm_step_on_a_singular_system_falls_back_to_a_scaled_gradient():
    # one point, two parameters with equal Jacobians: H = [[1, 1], [1, 1]] is singular, and with
    # no damping (lam = 0) so is the system; the step is -g / (|diag H| + 1e-12) instead.
    # r = 2e-3 > delta = 1e-3: psi = 1e-3, curvature 0.1 * 1e-3 / 2e-3 = 0.05 -> H = 0.05 [[1,1],
    # [1,1]], g = (1e-3, 1e-3), step = -1e-3 / (0.05 + 1e-12) per coordinate
    lo, hi, no_damping = np.zeros(2), np.ones(2), np.zeros(1)
    r = np.array([[2e-3]])
    J = np.array([[[1.0, 1.0]]])
    P = np.array([[0.5, 0.5]])
    step = fitmod._lm_step(r, J, np.ones((1, 1)), P, lo, hi, no_damping, 1e-3)
    assert step[0] == pytest.approx([-0.02, -0.02], rel=1e-9)
    # a Jacobian of 1e-6: diag H = 1e-12 (r = 5e-4 inside the zone), g = 5e-10 each, and the
    # 1e-12 of the denominator is half of it: step = -5e-10 / 2e-12 = -250
    J = np.array([[[1e-6, 1e-6]]])
    step = fitmod._lm_step(np.array([[5e-4]]), J, np.ones((1, 1)), P, lo, hi, no_damping, 1e-3)
    assert step[0] == pytest.approx([-250.0, -250.0], rel=1e-9)


def test_lm_step_holds_a_bound_only_when_the_gradient_pushes_outwards():
    # two points, weights 1 and 2, J = [[1, 1], [-1, 1]], r = (5e-4, 2.5e-4) inside the zone:
    # g = J^T (w r) = (5e-4 - 2 x 2.5e-4, 5e-4 + 2 x 2.5e-4) = (0, 1e-3) exactly, and
    # H = J^T diag(w) J = [[3, -1], [-1, 3]]. The first coordinate sits on its lower bound with
    # g = 0: it is free (not pushed outwards), so the coupled step moves it:
    # (H + lam diag H) dp = -g with lam = 0: dp = -H^-1 g = -(1e-3 / 8) (1, 3)
    J = np.array([[[1.0, 1.0], [-1.0, 1.0]]])
    r, w = np.array([[5e-4, 2.5e-4]]), np.array([[1.0, 2.0]])
    no_damping = np.zeros(1)
    for P in ([[0.0, 0.5]], [[1.0, 0.5]]):  # on the lower bound, then on the upper one
        step = fitmod._lm_step(r, J, w, np.array(P), np.zeros(2), np.ones(2), no_damping, 1e-3)
        assert step[0] == pytest.approx([-1.25e-4, -3.75e-4], rel=1e-12)


# ---------------------------------------------------------------------------
# the refinement: its path against a plain re-implementation
# ---------------------------------------------------------------------------
def _reference_refine(problem, P0, lower, upper, weights=None, max_iter=400, rtol=1e-13):
    """The documented iteration, one start at a time: lam starts at 1e-3, a step is taken only
    if the weighted mean Huber objective falls (lam / 3, at least 1e-12), else lam x 4; a start
    stops when an accepted step gains at most rtol x objective or lam exceeds 1e8."""
    n = problem.y.shape[0]
    P_out, f_out = [], []
    for g, p0 in enumerate(P0):
        w = np.ones(n) if weights is None else np.asarray(weights[g], dtype=float)
        w = w / w.sum()

        def objective(p, w=w):
            r = problem.residuals(p[None])[0]
            return np.sum(w * _huber(r, problem.delta)) if np.all(np.isfinite(r)) else np.inf

        p = np.clip(p0, lower, upper)
        f, lam = objective(p), 1e-3
        for _ in range(max_iter if np.isfinite(f) else 0):
            r, J = problem.residual_jacobian(p[None])
            step = _reference_step(r, J, w[None], p[None], lower, upper, [lam], problem.delta)[0]
            pn = np.clip(p + step, lower, upper)
            fn = objective(pn)
            if fn < f:
                gain, p, f, lam = f - fn, pn, fn, max(lam / 3.0, 1e-12)
                if gain <= rtol * f:
                    break
            else:
                lam *= 4.0
                if lam > 1e8:
                    break
        P_out.append(p)
        f_out.append(f)
    return np.array(P_out), np.array(f_out)


def _noisy_sparse_problem(space="log"):
    S, N, D, y = _grid(Law("sparse", SPARSE), noise=0.01, seed=2)
    y[5] *= 1.2  # an outlier, far outside the Huber zone
    p = _Problem("sparse", S, N, D, y, space, 1e-3 if space == "log" else 1e-2)
    lower, upper = _bounds(p)
    starts = np.array(
        [
            p.from_coefficients(dict(SPARSE, bS=1.5, bN=0.5, bD=1.0)),
            p.from_coefficients(dict(SPARSE, aS=5.0, c=0.0, bD=0.8)),
            p.from_coefficients(SPARSE),
        ]
    )
    return p, lower, upper, starts


@pytest.mark.parametrize("max_iter", [0, 1, 2, 3, 5, 8, 13])
def test_refine_follows_the_reference_path(max_iter):
    p, lower, upper, starts = _noisy_sparse_problem()
    starts[1, 4] = -1.0  # bS below its box: clipped to 0 before the first step
    P, f = fitmod._refine(p, starts, lower, upper, max_iter=max_iter)
    Pr, fr = _reference_refine(p, starts, lower, upper, max_iter=max_iter)
    assert P == pytest.approx(Pr, rel=1e-8, abs=1e-12) and f == pytest.approx(fr, rel=1e-10)


@pytest.mark.parametrize("rtol", [1e-2, 1e-4, 1e-7])
def test_refine_stops_where_the_reference_stops(rtol):
    # a loose rtol stops every start early, at the first accepted step that gains less than
    # rtol x objective: the same step of the same path
    p, lower, upper, starts = _noisy_sparse_problem("linear")
    P, f = fitmod._refine(p, starts, lower, upper, rtol=rtol)
    Pr, fr = _reference_refine(p, starts, lower, upper, rtol=rtol)
    assert P == pytest.approx(Pr, rel=1e-7, abs=1e-11) and f == pytest.approx(fr, rel=1e-10)


def test_refine_with_its_defaults_ends_where_the_reference_ends():
    # rtol 1e-13, at most 400 iterations: the starts converge, and stop at the same step
    p, lower, upper, starts = _noisy_sparse_problem()
    P, f = fitmod._refine(p, starts, lower, upper)
    Pr, fr = _reference_refine(p, starts, lower, upper)
    assert P == pytest.approx(Pr, rel=1e-10, abs=1e-13) and f == pytest.approx(fr, rel=1e-13)


def test_refine_with_weights_in_chunks(monkeypatch):
    p, lower, upper, starts = _noisy_sparse_problem()
    P0 = np.concatenate([starts, starts[:2]])
    W = np.random.default_rng(3).integers(0, 4, (5, 48)).astype(float)
    P, f = fitmod._refine(p, P0, lower, upper, weights=W, max_iter=6)
    Pr, fr = _reference_refine(p, P0, lower, upper, weights=W, max_iter=6)
    assert P == pytest.approx(Pr, rel=1e-8, abs=1e-12) and f == pytest.approx(fr, rel=1e-10)
    # chunks of 2 starts (a budget of 2 x 8 floats per point and parameter): the same answer
    monkeypatch.setattr(fitmod, "MEMORY_BUDGET", 8 * 48 * 8 * 7 * 2)
    P2, f2 = fitmod._refine(p, P0, lower, upper, weights=W, max_iter=6)
    assert np.array_equal(P2, P) and np.array_equal(f2, f)
    P2, f2 = fitmod._refine(p, P0, lower, upper, max_iter=6)
    assert P2[0] == pytest.approx(fitmod._refine(p, P0[:1], lower, upper, max_iter=6)[0][0])


def test_refine_leaves_an_inadmissible_start_where_it_is():
    # a start whose prediction is 0 somewhere has objective inf in log space: it is clipped into
    # the box and returned as it is, with f = inf; the other start is refined as usual
    p, lower, upper, starts = _noisy_sparse_problem()
    bad = np.array([0.0, 0.0, 0.0, 0.0, 5.0, 0.5, 0.5])  # no amplitude: pred = 0; bS = 5 > 4
    P, f = fitmod._refine(p, np.stack([bad, starts[0]]), lower, upper, max_iter=3)
    assert P[0].tolist() == [0.0, 0.0, 0.0, 0.0, 4.0, 0.5, 0.5] and f[0] == np.inf
    Pr, fr = _reference_refine(p, starts[:1], lower, upper, max_iter=3)
    assert P[1] == pytest.approx(Pr[0], rel=1e-8) and f[1] == pytest.approx(fr[0], rel=1e-10)


def _ls_optimum(p, lower, upper, x0):
    """scipy's least_squares on the same objective: its 'huber' loss with f_scale = delta is
    0.5 r^2 inside |r| <= delta and delta (|r| - delta / 2) outside, summed over the points."""
    res = least_squares(
        lambda x: p.residuals(x[None])[0],
        x0,
        jac=lambda x: p.residual_jacobian(x[None])[1][0],
        bounds=(lower, upper),
        loss="huber",
        f_scale=p.delta,
        xtol=1e-15,
        ftol=1e-15,
        gtol=1e-15,
        max_nfev=2000,
    )
    return res.x, res.cost / p.y.shape[0]


@pytest.mark.parametrize("space", ["log", "linear"])
def test_fit_reaches_the_least_squares_optimum(space):
    p, lower, upper, _ = _noisy_sparse_problem(space)
    S, N, D, y = p.S, *(np.exp(p.design.logN) * p.n_scale, np.exp(p.design.logD) * p.d_scale), p.y
    result = fitmod.fit_law(Points(S, N, D, y), FitOptions(space=space, n_candidates=256))
    best = p.from_coefficients(result.law.coefficients)
    x, cost = _ls_optimum(p, lower, upper, best)
    # started at the fit's optimum, least_squares finds nothing lower, and stays there
    assert result.objective <= cost * (1 + 1e-12)
    assert result.objective == pytest.approx(cost, rel=1e-9)
    assert best == pytest.approx(x, rel=1e-5, abs=1e-8)
    # the diagnostic gradient there is ~0, and an objective the fit reports is the true one
    assert result.diagnostics["grad_norm"] < 1e-9
    assert result.objective == pytest.approx(
        fitmod.huber_objective(result.law, S, N, D, y, space=space), rel=1e-12
    )


# ---------------------------------------------------------------------------
# the projected gradient
# ---------------------------------------------------------------------------
def _mean_huber_gradient(p, x):
    r, J = p.residual_jacobian(x[None])
    # the mean Huber gradient J^T psi(r) / n, psi = clip(r, -delta, delta)
    return J[0].T @ np.clip(r[0], -p.delta, p.delta) / p.y.shape[0]


def test_projected_gradient_by_hand():
    p, lower, upper, starts = _noisy_sparse_problem()
    x = starts[0]
    assert fitmod._projected_gradient(p, x, lower, upper) == pytest.approx(
        _mean_huber_gradient(p, x), rel=1e-12
    )
    # a coordinate within 1e-9 of a bound it is pushed against is dropped; at 1.5e-9 it is not.
    # Amplitudes twice too large: the prediction is above every loss (psi > 0), so the floor c
    # (d pred / dc = 1 > 0) is pushed down towards 0 and bS (d pred / dbS = term log(1-S) <= 0)
    # up towards 4: both push outwards at those ends, and bS inwards at its lower end 0.
    x = p.from_coefficients(dict(SPARSE, aS=4.0, cS=2.0, aD=20.0, c=1.0))
    cases = [(3, lower, 1.0, 0.5e-9, True), (3, lower, 1.0, 1.5e-9, False)]
    cases += [(4, upper, -1.0, 0.5e-9, True), (4, upper, -1.0, 1.5e-9, False)]
    cases += [(3, lower, 1.0, 1e-9, True), (4, upper, -1.0, 1e-9, True)]  # exactly 1e-9: on it
    cases += [(4, lower, 1.0, 0.5e-9, False)]  # pushed inwards: kept
    for i, side, sign, off, zeroed in cases:
        y = x.copy()
        y[i] = side[i] + sign * off
        g = _mean_huber_gradient(p, y)
        assert (sign * g[i] > 0) == (side is not lower or i != 4), (i, sign)
        want = np.where(np.arange(7) == i, 0.0, g) if zeroed else g
        pg = fitmod._projected_gradient(p, y, lower, upper)
        assert pg == pytest.approx(want, rel=1e-12), (i, sign, off)
    # amplitudes too small: the prediction is below every loss, bS is pushed down (inwards) at 4
    y = p.from_coefficients(dict(SPARSE, aS=1.0, cS=0.5, aD=5.0, c=0.25))
    y[4] = upper[4] - 0.5e-9
    g = _mean_huber_gradient(p, y)
    assert g[4] > 0 and fitmod._projected_gradient(p, y, lower, upper) == pytest.approx(
        g, rel=1e-12
    )


# ---------------------------------------------------------------------------
# fit_law's own bookkeeping
# ---------------------------------------------------------------------------
def test_fit_result_to_dict_and_law_fields():
    S, N, D, y = _grid(Law("dense", DENSE), S=(0.0,))
    result = fitmod.fit_law(
        Points(S, N, D, y), FitOptions(form="dense", n_candidates=64, n_starts=4)
    )
    d = result.to_dict()
    assert list(d) == ["form", "coefficients", "objective", "n_points", "diagnostics"]
    assert d["form"] == "dense" and d["n_points"] == 12 and d["objective"] == result.objective
    assert d["coefficients"] == result.law.coefficients
    assert d["coefficients"] is not result.law.coefficients  # a copy
    assert d["diagnostics"] is result.diagnostics
    assert result.law.fit == {
        "objective": result.objective,
        "n_points": 12,
        "diagnostics": result.diagnostics,
    }
    assert result.diagnostics["scored_rows"] == 12
    assert result.law.mean_sparsity_fraction is None


def test_avgparam_fit_keeps_its_schedule_fraction():
    law = Law("avgparam", DENSE, mean_sparsity_fraction=0.5)
    S, N, D, y = _grid(law)
    result = fitmod.fit_law(
        Points(S, N, D, y),
        FitOptions(form="avgparam", mean_sparsity_fraction=0.5, n_candidates=64, n_starts=2),
    )
    assert result.law.mean_sparsity_fraction == 0.5
    assert result.law.coefficients == pytest.approx(DENSE, rel=1e-6)


def test_a_base_gives_its_units_when_none_are_given():
    base = Law("sparse", SPARSE, units={"N": "n", "D": "steps"})
    S, N, D, y = _grid(Law("sparse", dict(SPARSE, aS=3.0)))
    result = fitmod.fit_law(
        Points(S, N, D, y), FitOptions(form="nm", base=base, n_candidates=32, n_starts=2)
    )
    assert result.law.units == {"N": "n", "D": "steps"}
    assert result.law.units is not base.units
    given = fitmod.fit_law(
        Points(S, N, D, y),
        FitOptions(form="nm", base=base, n_candidates=32, n_starts=2, units={"N": "k", "D": "t"}),
    )
    assert given.law.units == {"N": "k", "D": "t"}


def test_at_most_16_distinct_optima_are_kept():
    # exact data with aS = 0: bS is free (the objective is flat along it), so the starts end at
    # their own bS, all at objective ~0: 24 distinct optima (measured), of which 16 are reported
    S, N, D, y = _grid(Law("sparse", dict(SPARSE, aS=0.0)))
    result = fitmod.fit_law(Points(S, N, D, y), FitOptions(n_candidates=512, n_starts=32))
    assert result.diagnostics["n_distinct_optima"] == 16 == len(result.local_optima)


def test_the_subsample_path_starts_at_more_than_score_rows(monkeypatch):
    # at exactly SCORE_ROWS points every row is scored (the direct path: up to n_starts starts);
    # the subsample path would refine at most FULL_DATA_STARTS = 4 on the full data
    S, N, D, y = _grid(Law("sparse", SPARSE), noise=0.01, seed=3)
    monkeypatch.setattr(fitmod, "SCORE_ROWS", 48)
    result = fitmod.fit_law(Points(S, N, D, y), FitOptions(n_candidates=256, n_starts=8))
    assert result.diagnostics["scored_rows"] == 48 and result.diagnostics["n_starts"] == 8


def test_no_finite_optimum_is_refused_word_for_word():
    # linear space, losses < 0: every candidate's amplitudes are held at 0 (pred 0, inadmissible)
    # and the one warm start overflows (A at its bound 1e12 times N'^-2 with N' ~ 1e-160): no
    # refined start has a finite objective
    N = np.array([1e-160, 1e-80, 1.0, 1e80, 1e160] * 2)
    D = np.repeat([10.0, 100.0], 5)
    y = -np.ones(10)
    warm = {"A": 1e300, "alpha": 2.0, "B": 0.0, "beta": 1.0, "E": 0.0}
    with pytest.raises(SparsescaleError) as err:
        fitmod.fit_law(
            Points(None, N, D, y),
            FitOptions(form="dense", space="linear", n_candidates=16, n_starts=2),
            extra_starts=[warm],
        )
    assert str(err.value) == "the optimiser found no finite optimum for this data"


def test_no_admissible_start_is_refused():
    # linear space, every loss < 0: each candidate's amplitudes are all held at 0, its prediction
    # 0 is inadmissible (inf), and with no warm start there is nothing to refine
    S, N, D, y = _grid(Law("dense", DENSE), S=(0.0,))
    with pytest.raises(SparsescaleError) as err:
        fitmod.fit_law(Points(S, N, D, -y), FitOptions(form="dense", space="linear"))
    assert str(err.value) == (
        "no admissible starting point: this form cannot fit the data with positive coefficients"
    )


# ---------------------------------------------------------------------------
# stage 1's candidates and starts
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("form, seed", [("sparse", 0), ("dense", 9), ("nm", 2**32 - 1)])
def test_candidates_are_the_shifted_r_sequence(form, seed):
    base = Law("sparse", SPARSE)
    S, N, D, y = _grid(Law("sparse", SPARSE))
    p = _Problem(form, S, N, D, y, "log", 1e-3, base)
    box = np.array(p.form.exponent_bounds)
    m = box.shape[0]
    # Roberts' R_m: phi is the positive root of x^(m+1) = x + 1 (the golden ratio for m = 1),
    # alpha_j = phi^-j; candidate i = 1..n is frac(shift + i alpha), scaled into the box
    roots = np.roots([1.0] + [0.0] * (m - 1) + [-1.0, -1.0])
    phi = max(r.real for r in roots if abs(r.imag) < 1e-12)
    assert phi == pytest.approx({1: 1.6180339887498949, 2: 1.3247179572447460}.get(m, phi))
    alpha = phi ** -np.arange(1.0, m + 1)
    shift = np.random.default_rng(seed).random(m)
    u = np.array([(shift + i * alpha) % 1.0 for i in range(1, 101)])
    E = fitmod._candidates(p, 100, seed)
    assert E == pytest.approx(box[:, 0] + u * (box[:, 1] - box[:, 0]), rel=1e-12, abs=1e-12)


def test_distinct_best_by_hand():
    # exact binary distances: 0.25 apart is not more than min_dist 0.25 (a near-duplicate)
    E = np.array([[0.0, 0.0], [0.25, 0.0], [0.5, 0.25], [1.0, 1.0], [0.0, 0.5], [2.0, 2.0]])
    obj = np.array([1.0, 0.5, 2.0, np.inf, 3.0, np.nan])
    # by objective: 1 (0.5), 0 (1.0, 0.25 from 1: skipped), 2 (0.25 from 1 in x and y: skipped),
    # 4 (0.5 from 1 in y: kept); then inf and nan end the list
    assert fitmod._distinct_best(E, obj, 5, 0.25) == [1, 4]
    assert fitmod._distinct_best(E, obj, 1, 0.25) == [1]
    assert fitmod._distinct_best(E, obj, 5, 0.2) == [1, 0, 2, 4]
    assert fitmod._distinct_best(E, obj, 2, 0.2) == [1, 0]
    assert fitmod._distinct_best(E, np.full(6, np.inf), 3, 0.1) == []


def test_distinct_optima_by_hand():
    P = np.array([[0.0, 0.0], [0.0, 0.0], [1.5e-3, 0.0], [0.0, 5e-4], [0.0, 0.0], [9.0, 9.0]])
    # f[1] is 1.5e-6 relative above f[0]: more than rtol 1e-6, a distinct optimum; f[4] is 0.5e-6
    # above: the same as 0; P[2] is 1.5e-3 from P[0] in one parameter: distinct; P[3] 5e-4: same
    f = np.array([2.0, 2.0 * (1 + 1.5e-6), 2.0, 2.0, 2.0 * (1 + 0.5e-6), np.inf])
    got = fitmod._distinct_optima(P, f, 16)
    # order by objective: 0, 2, 3 (ties at 2.0, argsort keeps index order), 4, 1; inf dropped
    assert got == [0, 2, 1]
    assert fitmod._distinct_optima(P, f, 2) == [0, 2]
    assert fitmod._distinct_optima(P, f, 16, rtol=1e-5) == [0, 2]
    # objectives near 0: the absolute 1e-15 decides (1.5e-15 apart is distinct, 0.5e-15 is not)
    P0 = np.zeros((3, 2))
    assert fitmod._distinct_optima(P0, np.array([0.0, 0.5e-15, 1.5e-15]), 16) == [0, 2]


def test_starting_points_are_the_best_distinct_projected_candidates():
    S, N, D, y = _grid(Law("sparse", SPARSE), noise=0.01, seed=5)
    p = _Problem("sparse", S, N, D, y, "log", 1e-3)
    starts = fitmod._starting_points(p, 128, 6, 3, [SPARSE])
    E = fitmod._candidates(p, 128, 3)
    amps, obj = p.project(E)
    # by hand: the candidates by objective, skipping any within 0.02 (max norm) of one taken
    chosen = []
    for i in np.argsort(obj):
        if all(np.max(np.abs(E[i] - E[j])) > 0.02 for j in chosen):
            chosen.append(i)
    want = [np.concatenate([amps[i], E[i]]) for i in chosen[:6]] + [p.from_coefficients(SPARSE)]
    assert len(starts) == 7 and np.array_equal(np.array(starts), np.array(want))


def test_fit_diagnostics_by_hand():
    S, N, D, y = _grid(Law("dense", DENSE), S=(0.0,), noise=0.01, seed=1)
    p = _Problem("dense", S, N, D, y, "log", 1e-3)
    lower, upper = _bounds(p)  # amplitudes [0, 1e12], alpha [1e-3, 2], beta [1e-3, 3]
    best = np.array([0.5e-6, 3.0, 1.0, 2.0 - 0.5e-6, 1.5])  # A at 0, alpha at 2: both on a bound
    P = np.stack([best + 1.0, best, best + 0.1, best + 0.2, best + 0.3, best])
    # best 1e-4; tol = 1e-6 x 1e-4 + 1e-15 = 1.00000001e-10: 1e-4 + 0.5e-10 ties with it, 1e-4 +
    # 1.5e-10 does not and is the runner-up; nan and inf count for neither
    f = np.array([np.nan, 1e-4, 1e-4 + 1.5e-10, 2e-4, np.inf, 1e-4 + 0.5e-10])
    best_f, best_p, d = fitmod._fit_diagnostics(p, P, f, lower, upper, 6, 99, 7)
    assert best_f == 1e-4 and best_p.tolist() == best.tolist()
    assert d == {
        "optimizer": "low-discrepancy variable projection + batched Levenberg-Marquardt (IRLS "
        "Huber)",
        "space": "log",
        "delta": 1e-3,
        "seed": 7,
        "n_candidates": 99,
        "n_starts": 6,
        "starts_at_best": 2,
        "grad_norm": pytest.approx(
            np.linalg.norm(fitmod._projected_gradient(p, best, lower, upper)), rel=1e-12
        ),
        "at_bound": ["A", "alpha"],
        "runner_up_objective": 1e-4 + 1.5e-10,
    }
    # 1.5e-6 from a bound is not on it; no worse optimum: no runner-up
    P[1] = [1.5e-6, 3.0, 1.0, 2.0 - 1.5e-6, 3.0 - 0.5e-6]
    _, _, d = fitmod._fit_diagnostics(p, P[1:2], f[1:2], lower, upper, 1, 1, 0)
    assert d["at_bound"] == ["beta"] and d["runner_up_objective"] is None
    assert d["starts_at_best"] == 1 and d["grad_norm"] > 0


def test_the_subsample_path_by_hand(monkeypatch):
    # 60 rows, SCORE_ROWS 40: stage 1 and a loose refinement on 40 seeded rows (drawn without
    # replacement, sorted), the distinct optima found there (at most 4) plus the warm start
    # refined on all 60 rows
    rng = np.random.default_rng(8)
    law = Law("sparse", SPARSE)
    S = rng.choice([0.0, 0.5, 0.75], 60)
    N, D = rng.uniform(1.0, 8.0, 60), rng.uniform(5.0, 20.0, 60)
    y = law.predict(S, N, D) * np.exp(rng.normal(0, 0.01, 60))
    monkeypatch.setattr(fitmod, "SCORE_ROWS", 40)
    warm = dict(SPARSE, bS=0.7)
    result = fitmod.fit_law(
        Points(S, N, D, y), FitOptions(n_candidates=128, n_starts=8, seed=4), extra_starts=[warm]
    )
    p = _Problem("sparse", S, N, D, y, "log", 1e-3)
    lower, upper = _bounds(p)
    rows = np.sort(np.random.default_rng(4).choice(60, 40, replace=False))
    assert np.unique(rows).size == 40
    sub = p.subset(rows)
    starts = fitmod._starting_points(sub, 128, 8, 4, None)
    assert [p.to_coefficients(s) for s in starts] == result.start_points
    Ps, fs = fitmod._refine(sub, np.array(starts), lower, upper, rtol=1e-8)
    P0 = [Ps[i] for i in fitmod._distinct_optima(Ps, fs, 4, rtol=1e-4)]
    P0.append(p.from_coefficients(warm))
    P, f = fitmod._refine(p, np.array(P0), lower, upper)
    assert result.diagnostics["n_starts"] == len(P0)
    assert result.objective == f.min() and result.diagnostics["scored_rows"] == 40
    assert [o for o, _ in result.local_optima] == [f[i] for i in fitmod._distinct_optima(P, f, 16)]


def test_the_subsample_path_refuses_without_a_start(monkeypatch):
    S, N, D, y = _grid(Law("dense", DENSE), S=(0.0,))
    monkeypatch.setattr(fitmod, "SCORE_ROWS", 6)
    with pytest.raises(SparsescaleError) as err:
        fitmod.fit_law(Points(S, N, D, -y), FitOptions(form="dense", space="linear"))
    assert str(err.value) == (
        "no admissible starting point: this form cannot fit the data with positive coefficients"
    )


def test_fit_resamples_against_one_refinement_per_resample(monkeypatch):
    S, N, D, y = _grid(Law("sparse", SPARSE), noise=0.01, seed=6)
    starts = [SPARSE, dict(SPARSE, bS=1.5, bN=0.6), dict(SPARSE, aS=4.0, c=0.2)]
    W = np.random.default_rng(2).integers(0, 3, (5, 48)).astype(float)
    options = FitOptions(space="linear", delta=0.02)
    # resample_batch(48, 3) = budget // (8 x 2 x 48 x 3): a budget of 2 x 2304 bytes gives
    # chunks of 2 resamples (2, 2, 1)
    monkeypatch.setattr(fitmod, "MEMORY_BUDGET", 2 * 2304)
    coefs, objs = fitmod.fit_resamples(Points(S, N, D, y), W, starts, options, rtol=1e-12)
    monkeypatch.undo()
    p = _Problem("sparse", S, N, D, y, "linear", 0.02)
    lower, upper = _bounds(p)
    P1 = np.array([p.from_coefficients(c) for c in starts])
    assert objs.shape == (5,) and len(coefs) == 5
    for r in range(5):
        P, f = fitmod._refine(p, P1, lower, upper, weights=np.tile(W[r], (3, 1)), rtol=1e-12)
        i = int(np.argmin(f))
        assert objs[r] == f[i]
        assert coefs[r] == pytest.approx(p.to_coefficients(P[i]), rel=1e-12)
    # a resample whose every start is inadmissible (log space, all-zero amplitudes: pred 0) has
    # objective inf and the first start's coefficients
    zero = {"aS": 0.0, "bS": 0.5, "cS": 0.0, "bN": 1.0, "aD": 0.0, "bD": 2.0, "c": 0.0}
    coefs, objs = fitmod.fit_resamples(Points(S, N, D, y), W[:2], [zero, zero])
    assert objs.tolist() == [np.inf, np.inf] and coefs[0] == pytest.approx(zero)


def test_candidates_with_one_exponent_step_by_the_golden_ratio_exactly():
    # One exponent (the n:m form): the root of x^2 = x + 1 is the golden ratio, (1 + sqrt 5) / 2,
    # and the fixed-point iteration from 2 reaches its double exactly; every candidate is then
    # shift + i / phi (mod 1), scaled into the box, to the last bit.
    from types import SimpleNamespace

    box = SimpleNamespace(form=SimpleNamespace(exponent_bounds=[(0.5, 2.5)]))
    phi = (1.0 + 5.0**0.5) / 2.0
    shift = np.random.default_rng(11).random(1)
    u = (shift[None, :] + np.arange(1, 201)[:, None] * (1.0 / phi)) % 1.0
    assert np.array_equal(fitmod._candidates(box, 200, 11), 0.5 + u * 2.0)


def test_distinct_optima_at_the_exact_edges():
    # the same objective and the same (non-zero) parameters: one optimum
    P = np.array([[1.0, 2.0], [1.0, 2.0]])
    assert fitmod._distinct_optima(P, np.array([1.0, 1.0]), 5) == [0]
    # objectives exactly rtol f + 1e-15 apart (f = 0: exactly 1e-15) are the same optimum
    assert fitmod._distinct_optima(P, np.array([0.0, 1e-15]), 5) == [0]
    # parameters exactly 1e-3 apart in one coordinate (0 and 1e-3 subtract exactly): the same
    Q = np.array([[0.0, 2.0], [1e-3, 2.0]])
    assert fitmod._distinct_optima(Q, np.array([1.0, 1.0]), 5) == [0]


def test_fit_diagnostics_at_the_exact_edges():
    S, N, D, y = _grid(Law("dense", DENSE), S=(0.0,), noise=0.01, seed=1)
    p = _Problem("dense", S, N, D, y, "log", 1e-3)
    lower, upper = _bounds(p)
    # A exactly 1e-6 above its lower bound, alpha exactly 1e-6 below its upper: both count as on
    # the bound (the comparisons are inclusive)
    best = np.array([lower[0] + 1e-6, 3.0, 1.0, upper[3] - 1e-6, 1.5])
    P = np.stack([best, best + 0.1, best + 0.2])
    # best objective 0: tol = 1e-6 x 0 + 1e-15 = 1e-15. A start exactly at 0 + tol ties with the
    # best (inclusive); one at 1.5e-15 is the runner-up (it would tie under a 2e-15 floor)
    f = np.array([0.0, 1e-15, 1.5e-15])
    _, _, d = fitmod._fit_diagnostics(p, P, f, lower, upper, 3, 8, 0)
    assert d["at_bound"] == ["A", "alpha"]
    assert d["starts_at_best"] == 2 and d["runner_up_objective"] == 1.5e-15
