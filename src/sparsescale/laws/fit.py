"""Fitting a scaling law: a Huber objective and a global optimiser.

Why this shape. Every law form is linear in its amplitudes once its exponents
are fixed (L = sum_j a_j phi_j(x; e) + offset). So the search runs in two
stages:

1. Variable projection over the exponents. A seeded low-discrepancy set of
   exponent vectors is scored in one vectorised pass: for each, the
   non-negative amplitudes come from an exact NNLS (every active set is solved
   in a batch), weighted by 1/y in log space so that the linear residual
   approximates the log residual. Each candidate is then scored by the true
   Huber objective.
2. Local refinement. The best, mutually distinct candidates are refined
   together by a batched Levenberg-Marquardt iteration on the exact Huber
   objective (IRLS weights), in (amplitudes >= 0, exponents) with an analytic
   Jacobian. Amplitudes stay linear rather than log-parameterised: when the
   data want a term to vanish (c -> 0 on resamples of the T5 sweep), a log
   amplitude creeps towards -inf for hundreds of iterations, while a linear
   one reaches its bound at 0 and leaves the system.

Inputs are normalised (N / median N, D / median D) for conditioning; the
returned law is in raw units and the objective does not depend on the scaling.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.laws.forms import COEFFICIENT_NAMES, FREE_COEFFICIENTS, Law

SPACES = ("log", "linear")
DEFAULT_DELTA = {"log": 1e-3, "linear": 1e-2}

# Search boxes for the exponents (per form, in the order of `_Problem.exponent_names`).
EXPONENT_BOUNDS = {
    "sparse": [(0.0, 4.0), (1e-3, 2.0), (1e-3, 3.0)],  # bS, bN, bD
    "dense": [(1e-3, 2.0), (1e-3, 3.0)],  # alpha, beta
    "nm": [(0.0, 4.0)],  # bS
    "avgparam": [(1e-3, 2.0), (1e-3, 3.0)],  # alpha, beta: the dense problem on N_avg
}
AMPLITUDE_BOUNDS = (0.0, 1e12)  # normalised units: amplitudes are O(loss)

# Working memory of the batched stages (candidate scoring, refinement, bootstrap):
# they work in chunks of this many bytes, so a fit's memory does not grow with the
# number of points beyond the O(n) arrays of the data themselves.
MEMORY_BUDGET = 256 * 2**20
MAX_SEED = 2**32 - 1
# Curvature given to the points outside the Huber zone in the Gauss-Newton model,
# as a fraction of the IRLS weight delta/|r|. The IRLS weight makes the model a
# majoriser of the Huber loss, so every step is safe but short: with delta = 1e-3
# most of the T5 sweep's log residuals (about 3e-3) lie outside the zone, the loss
# is nearly L1, and IRLS converges linearly and slowly. The exact second derivative
# there is 0 (Huber is linear outside the zone), which makes the model singular
# when fewer points than parameters are inside. 0.1 sits between the two: the
# Levenberg-Marquardt acceptance test (a step is taken only if the true objective
# falls) keeps it monotone, and on the paper's sweeps it needs 1.6x (T5) to 2.6x
# (ViT) fewer residual evaluations than 1.0 for the same or lower optima.
OUTLIER_CURVATURE = 0.1
# Above this many points, the starting candidates are scored and first refined on
# a seeded subsample of this size; only the distinct optima found there (at most
# FULL_DATA_STARTS) are refined on all the points. Scoring 4096 exponent vectors on
# every row costs 4096 x rows basis evaluations (about 6 minutes at 250,000 rows);
# on a subsample it costs the same whatever the number of rows, so a fit's time
# grows linearly in rows, through the final refinement only. A sweep this large
# holds many points per configuration, so the subsample already pins the basins.
SCORE_ROWS = 1024
FULL_DATA_STARTS = 4


def chunk_size(floats_per_item: int, budget: int | None = None) -> int:
    """How many items of `floats_per_item` float64 each fit in the budget (at least 1)."""
    budget = MEMORY_BUDGET if budget is None else budget
    return max(1, int(budget // (8 * max(1, floats_per_item))))


@dataclass
class FitResult:
    law: Law
    objective: float
    n_points: int
    diagnostics: dict[str, Any] = field(default_factory=dict)
    # distinct optima the refinement ended in: (objective, coefficients), best first
    local_optima: list[tuple[float, dict[str, float]]] = field(default_factory=list, repr=False)
    # the best distinct starting points, before refinement (coefficients)
    start_points: list[dict[str, float]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "form": self.law.form,
            "coefficients": dict(self.law.coefficients),
            "objective": self.objective,
            "n_points": self.n_points,
            "diagnostics": self.diagnostics,
        }


def huber(residual: np.ndarray, delta: float) -> np.ndarray:
    """0.5 r^2 inside |r| <= delta, delta (|r| - delta/2) outside (scipy's huber)."""
    a = np.abs(residual)
    return np.where(a <= delta, 0.5 * residual * residual, delta * (a - 0.5 * delta))


def huber_objective(law: Law, sparsity, n_nonzero, data, loss, space: str = "log", delta: float | None = None) -> float:
    """Mean Huber loss of `law` on the points, in log or linear residuals."""
    delta = DEFAULT_DELTA[space] if delta is None else delta
    pred = law.predict(sparsity, n_nonzero, data)
    y = np.asarray(loss, dtype=float)
    r = np.log(pred) - np.log(y) if space == "log" else pred - y
    return float(np.mean(huber(r, delta)))


# ---------------------------------------------------------------------------
# The separable problem: pred = Phi(e) @ a + offset
# ---------------------------------------------------------------------------
class _Problem:
    """One form on one data set, in normalised units."""

    def __init__(self, form, S, N, D, y, space, delta, base: Law | None):
        self.form, self.space, self.delta = form, space, delta
        self.S, self.y = S, y
        self.n_scale = float(np.exp(np.median(np.log(N))))
        self.d_scale = float(np.exp(np.median(np.log(D))))
        self.logN = np.log(N / self.n_scale)
        self.logD = np.log(D / self.d_scale)
        self.log1mS = np.log1p(-S)
        self.offset = np.zeros_like(y)
        if form == "sparse":
            self.exponent_names = ("bS", "bN", "bD")
        elif form == "dense":
            self.exponent_names = ("alpha", "beta")
        else:
            self.exponent_names = ("bS",)
            k = base.coefficients
            self.bN = k["bN"]
            self.base = base
            self.offset = (k["aD"] / D) ** k["bD"] + k["c"]
        self.n_amplitudes = {"sparse": 4, "dense": 3, "nm": 2}[form]
        self.log_y = np.log(y)

    def subset(self, rows: np.ndarray) -> "_Problem":
        """The same problem on some of its points, in the SAME normalised units
        (scales are not recomputed), so that parameters carry over unchanged."""
        sub = object.__new__(_Problem)
        sub.__dict__.update(self.__dict__)
        for name in ("S", "y", "logN", "logD", "log1mS", "offset", "log_y"):
            setattr(sub, name, getattr(self, name)[rows])
        return sub

    # basis functions, batched over G exponent vectors: E (G, m) -> Phi (G, n, k)
    def basis(self, E: np.ndarray) -> np.ndarray:
        G = E.shape[0]
        n = self.y.shape[0]
        if self.form == "sparse":
            bS, bN, bD = E[:, 0:1], E[:, 1:2], E[:, 2:3]
            nterm = np.exp(-bN * self.logN)
            return np.stack([np.exp(bS * self.log1mS) * nterm, nterm, np.exp(-bD * self.logD), np.ones((G, n))], axis=2)
        if self.form == "dense":
            al, be = E[:, 0:1], E[:, 1:2]
            return np.stack([np.exp(-al * self.logN), np.exp(-be * self.logD), np.ones((G, n))], axis=2)
        bS = E[:, 0:1]
        nterm = np.broadcast_to(np.exp(-self.bN * self.logN), (G, n))
        return np.stack([np.exp(bS * self.log1mS) * nterm, nterm], axis=2)

    def residual(self, pred):
        return np.log(pred) - self.log_y if self.space == "log" else pred - self.y

    # -- stage 1: NNLS amplitudes for many exponent vectors at once -----------
    def project(self, E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best non-negative amplitudes (weighted LS) and Huber objective per row of E.
        Scored in chunks of candidates so that memory stays under MEMORY_BUDGET
        whatever the number of points (a (G, n, k) basis for all 4096 candidates
        of a 250,000-row table would be 33 GB)."""
        n, k = self.y.shape[0], self.n_amplitudes
        step = chunk_size(n * k * 4)  # basis, weighted basis, prediction, residual
        parts = [self._project_chunk(E[lo:lo + step]) for lo in range(0, E.shape[0], step)]
        return np.concatenate([a for a, _ in parts]), np.concatenate([o for _, o in parts])

    def _project_chunk(self, E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Phi = self.basis(E)  # (G, n, k)
        w = 1.0 / self.y if self.space == "log" else np.ones_like(self.y)
        tw = (self.y - self.offset) * w
        Pw = Phi * w[None, :, None]
        # every active set is solved from the k x k normal equations: one pass over the points
        gram = np.einsum("gni,gnj->gij", Pw, Pw)
        rhs = np.einsum("gni,n->gi", Pw, tw)
        del Pw
        tt = float(tw @ tw)
        G, k = Phi.shape[0], self.n_amplitudes
        best_sse = np.full(G, np.inf)
        best_amp = np.zeros((G, k))
        for size in range(1, k + 1):
            for active in itertools.combinations(range(k), size):
                idx = list(active)
                M = gram[:, idx][:, :, idx] + 1e-12 * np.eye(size)
                b = rhs[:, idx]
                try:
                    x = np.linalg.solve(M, b[..., None])[..., 0]
                except np.linalg.LinAlgError:
                    continue
                feasible = np.all(x >= 0.0, axis=1)
                # |A x - t|^2 = t.t - 2 x.b + x.M x (exact for any x, not only the LS solution)
                sse = tt - 2.0 * np.einsum("gi,gi->g", x, b) + np.einsum("gi,gij,gj->g", x, M, x)
                sse = np.where(feasible, sse, np.inf)
                better = sse < best_sse
                best_sse = np.where(better, sse, best_sse)
                amp = np.zeros((G, k))
                amp[:, idx] = x
                best_amp[better] = amp[better]
        pred = np.einsum("gnk,gk->gn", Phi, best_amp) + self.offset[None, :]
        del Phi
        with np.errstate(divide="ignore", invalid="ignore"):
            ok = np.all(pred > 0, axis=1)
            r = np.log(np.where(pred > 0, pred, 1.0)) - self.log_y if self.space == "log" else pred - self.y
        obj = np.where(ok, np.mean(huber(r, self.delta), axis=1), np.inf)
        return best_amp, obj

    # -- stage 2: residuals and Jacobians in (a, e), batched over starts -------
    def _terms(self, P: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Basis Phi (G, n, k), the amplitude-weighted terms and the prediction."""
        k = self.n_amplitudes
        Phi = self.basis(P[:, k:])
        terms = Phi * P[:, None, :k]  # (G, n, k)
        return Phi, terms, terms.sum(axis=2) + self.offset[None, :]

    def _residual_of(self, pred: np.ndarray) -> np.ndarray:
        if self.space == "log":
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log(np.where(pred > 0, pred, np.nan)) - self.log_y[None, :]
        return pred - self.y[None, :]

    def residuals(self, P: np.ndarray) -> np.ndarray:
        """Residuals r (G, n) alone: a trial step that is rejected needs no Jacobian."""
        return self._residual_of(self._terms(P)[2])

    def residual_jacobian(self, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residuals r (G, n) and their Jacobian dr/dp (G, n, k + m) at the
        parameter rows P = (amplitudes, exponents)."""
        k = self.n_amplitudes
        Phi, terms, pred = self._terms(P)
        # J is filled in place, column block by column block: d pred / d a_j = phi_j,
        # d pred / d e = the terms times the log of the base the exponent acts on
        J = np.empty(Phi.shape[:2] + (k + len(self.exponent_names),))
        J[:, :, :k] = Phi
        if self.form == "sparse":
            np.multiply(terms[:, :, 0], self.log1mS, out=J[:, :, k])
            np.multiply(terms[:, :, 0] + terms[:, :, 1], -self.logN, out=J[:, :, k + 1])
            np.multiply(terms[:, :, 2], -self.logD, out=J[:, :, k + 2])
        elif self.form == "dense":
            np.multiply(terms[:, :, 0], -self.logN, out=J[:, :, k])
            np.multiply(terms[:, :, 1], -self.logD, out=J[:, :, k + 1])
        else:
            np.multiply(terms[:, :, 0], self.log1mS, out=J[:, :, k])
        r = self._residual_of(pred)
        if self.space == "log":  # d log(pred) = d pred / pred
            J /= pred[:, :, None]
        return r, J

    # -- back to raw-unit coefficients ---------------------------------------
    def to_coefficients(self, p: np.ndarray) -> dict[str, float]:
        k = self.n_amplitudes
        a = p[:k]
        e = dict(zip(self.exponent_names, p[k:]))
        sN, sD = self.n_scale, self.d_scale
        if self.form == "sparse":
            bN, bD = e["bN"], e["bD"]
            return {
                "aS": a[0] * sN**bN, "bS": e["bS"], "cS": a[1] * sN**bN, "bN": bN,
                "aD": a[2] ** (1.0 / bD) * sD, "bD": bD, "c": a[3],
            }
        if self.form == "dense":
            return {"A": a[0] * sN ** e["alpha"], "alpha": e["alpha"], "B": a[1] * sD ** e["beta"], "beta": e["beta"], "E": a[2]}
        base = self.base.coefficients
        return {
            "aS": a[0] * sN**self.bN, "bS": e["bS"], "cS": a[1] * sN**self.bN,
            "bN": base["bN"], "aD": base["aD"], "bD": base["bD"], "c": base["c"],
        }

    def from_coefficients(self, coefs: dict[str, float]) -> np.ndarray:
        """Inverse of to_coefficients (for warm starts)."""
        sN, sD = self.n_scale, self.d_scale
        if self.form == "sparse":
            bN, bD = coefs["bN"], coefs["bD"]
            a = [coefs["aS"] / sN**bN, coefs["cS"] / sN**bN, (coefs["aD"] / sD) ** bD, coefs["c"]]
            e = [coefs["bS"], bN, bD]
        elif self.form == "dense":
            a = [coefs["A"] / sN ** coefs["alpha"], coefs["B"] / sD ** coefs["beta"], coefs["E"]]
            e = [coefs["alpha"], coefs["beta"]]
        else:
            a = [coefs["aS"] / sN**self.bN, coefs["cS"] / sN**self.bN]
            e = [coefs["bS"]]
        return np.concatenate([np.clip(a, *AMPLITUDE_BOUNDS), e])


# ---------------------------------------------------------------------------
def check_seed(seed) -> int:
    """A seed numpy's generators take: an integer in [0, MAX_SEED]."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise SparsescaleError(f"must be an integer in 0..{MAX_SEED}, got {seed!r}", param="seed")
    return int(seed)


def _validate(form, S, N, D, y, space, delta, base):
    if form not in COEFFICIENT_NAMES:
        raise SparsescaleError(f"unknown form {form!r}; expected sparse, dense, nm or avgparam", param="form")
    if space not in SPACES:
        raise SparsescaleError(f"expected log or linear, got {space!r}", param="space")
    if not (delta > 0 and math.isfinite(delta)):
        raise SparsescaleError(f"must be a positive number, got {delta}", param="delta")
    if form == "nm":
        if base is None:
            raise SparsescaleError("the nm form needs a base law (a fitted sparse law that fixes bN, aD, bD, c)", param="base")
        if base.form not in ("sparse", "nm"):   # dense and avgparam laws have no bN, aD, bD, c to keep
            raise SparsescaleError(f"the n:m refit needs a sparse-form base law (it keeps bN, aD, bD, c); "
                                   f"got form {base.form!r}", param="base")
    n_free = len(FREE_COEFFICIENTS[form])
    if y.shape[0] < n_free:
        raise SparsescaleError(f"{y.shape[0]} data points are fewer than the {n_free} free coefficients of the {form} form")
    # repeated runs of one configuration add no equation: count distinct inputs
    inputs = (N, D) if form == "dense" else (S, N, D)
    distinct = np.unique(np.column_stack(inputs), axis=0).shape[0]
    if distinct < n_free:
        what = "(N, D)" if form == "dense" else "(S, N, D)"
        raise SparsescaleError(f"the {y.shape[0]} data points hold only {distinct} distinct {what} "
                               f"configuration(s), fewer than the {n_free} free coefficients of the {form} form")
    for name, arr in (("sparsity", S), ("n_nonzero", N), ("data", D), ("loss", y)):
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise SparsescaleError(f"row {bad[0] + 1} is {arr[bad[0]]} (not finite)", param=name)
    checks = [
        ("sparsity", (S < 0) | (S >= 1), "outside [0, 1)"),
        ("n_nonzero", N <= 0, "not positive"),
        ("data", D <= 0, "not positive"),
    ]
    if space == "log":
        checks.append(("loss", y <= 0, "not positive (log-space fitting needs loss > 0)"))
    for name, mask, why in checks:
        bad = np.flatnonzero(mask)
        if bad.size:
            arr = {"sparsity": S, "n_nonzero": N, "data": D, "loss": y}[name]
            raise SparsescaleError(f"row {bad[0] + 1} is {arr[bad[0]]:g}, {why}", param=name)


def _candidates(problem: _Problem, n_candidates: int, seed: int) -> np.ndarray:
    """A low-discrepancy set of exponent vectors in the search box.

    The additive recurrence of the generalised golden ratio (Roberts' R_d
    sequence) with a seeded random shift: as even as a Sobol set, and free of
    the scipy.stats import cost."""
    bounds = np.array(EXPONENT_BOUNDS[problem.form])
    m = bounds.shape[0]
    phi = 2.0
    for _ in range(30):  # root of x^(m+1) = x + 1
        phi = (1.0 + phi) ** (1.0 / (m + 1))
    alpha = (1.0 / phi) ** np.arange(1, m + 1)
    shift = np.random.default_rng(seed).random(m)
    u = (shift[None, :] + np.arange(1, n_candidates + 1)[:, None] * alpha[None, :]) % 1.0
    return bounds[:, 0] + u * (bounds[:, 1] - bounds[:, 0])


def _distinct_best(E: np.ndarray, obj: np.ndarray, k: int, min_dist: float) -> list[int]:
    """Indices of the k best candidates, skipping near-duplicates in exponent space."""
    order = np.argsort(obj)
    chosen: list[int] = []
    for i in order:
        if not np.isfinite(obj[i]):
            break
        if all(np.max(np.abs(E[i] - E[j])) > min_dist for j in chosen):
            chosen.append(int(i))
            if len(chosen) == k:
                break
    return chosen


def _refine(problem: _Problem, P0: np.ndarray, lower: np.ndarray, upper: np.ndarray,
            weights: np.ndarray | None = None, max_iter: int = 400, rtol: float = 1e-13):
    """_refine_batch over chunks of starts under MEMORY_BUDGET: the starts are
    independent, so chunking changes no result, only the peak memory."""
    G, m = P0.shape
    step = chunk_size(problem.y.shape[0] * 8 * m)  # r, J, trial J, J^T products, weights
    if G <= step:
        return _refine_batch(problem, P0, lower, upper, weights, max_iter, rtol)
    parts = [_refine_batch(problem, P0[lo:lo + step], lower, upper,
                           None if weights is None else weights[lo:lo + step], max_iter, rtol)
             for lo in range(0, G, step)]
    return np.concatenate([p for p, _ in parts]), np.concatenate([f for _, f in parts])


def _weighted_huber(r: np.ndarray, w: np.ndarray, delta: float) -> np.ndarray:
    """Weighted Huber objective per row; inf where a residual is not finite."""
    with np.errstate(invalid="ignore"):
        f = np.sum(w * huber(r, delta), axis=1)
    return np.where(np.all(np.isfinite(r), axis=1), f, np.inf)


def _lm_step(ra: np.ndarray, Ja: np.ndarray, wa: np.ndarray, Pa: np.ndarray, lower: np.ndarray,
             upper: np.ndarray, lam_a: np.ndarray, delta: float) -> np.ndarray:
    """One damped Gauss-Newton step per start on the IRLS majoriser of the Huber loss."""
    eye = np.eye(Pa.shape[1])
    absr = np.abs(ra)
    irls = wa * np.where(absr <= delta, 1.0, OUTLIER_CURVATURE * delta / np.maximum(absr, 1e-300))
    JT = Ja.transpose(0, 2, 1)
    g = (JT @ (wa * np.clip(ra, -delta, delta))[:, :, None])[:, :, 0]
    H = JT @ (Ja * irls[:, :, None])
    # coordinates held at a bound by the gradient leave the system
    held = ((Pa <= lower) & (g > 0)) | ((Pa >= upper) & (g < 0))
    free = ~held
    H = H * (free[:, :, None] & free[:, None, :]) + held[:, :, None] * eye
    g = np.where(held, 0.0, g)
    diag = np.einsum("gmm->gm", H)
    A = H + lam_a[:, None, None] * (diag[:, :, None] * eye + 1e-12 * eye)
    try:
        return -np.linalg.solve(A, g[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return -g / (np.abs(diag) + 1e-12)


def _refine_batch(problem: _Problem, P0: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                  weights: np.ndarray | None = None, max_iter: int = 400, rtol: float = 1e-13):
    """Minimise the (weighted) mean Huber objective from every row of P0 at once.

    A Levenberg-Marquardt iteration on the IRLS majoriser of the Huber loss
    (weights min(1, delta/|r|)), projected onto the bounds, run for all starts
    in one batch so that the per-iteration cost is a few vectorised calls.
    weights (G, n): per-row point weights (bootstrap multiplicities); None = 1.
    rtol: a start stops when an accepted step gains less than rtol * objective.
    """
    delta = problem.delta
    P = np.clip(P0, lower, upper)
    G = P.shape[0]
    W = np.ones((G, problem.y.shape[0])) if weights is None else np.asarray(weights, dtype=float)
    W = W / W.sum(axis=1, keepdims=True)

    r, J = problem.residual_jacobian(P)
    f = _weighted_huber(r, W, delta)
    P_out, f_out = P.copy(), f.copy()
    # The arrays below hold only the starts that are still moving (idx says which):
    # a finished start is written out once and dropped, so an iteration late in a
    # bootstrap, when a few dozen of thousands of starts still move, costs a few
    # dozen rows and not a gather and scatter of every row's Jacobian.
    keep = np.isfinite(f)
    idx, P, r, J, W, f = np.flatnonzero(keep), P[keep], r[keep], J[keep], W[keep], f[keep]
    lam = np.full(idx.size, 1e-3)
    for _ in range(max_iter):
        if idx.size == 0:
            break
        step = _lm_step(r, J, W, P, lower, upper, lam, delta)
        Pn = np.clip(P + step, lower, upper)
        # the trial's residuals decide; its Jacobian is needed only where it is accepted
        rn = problem.residuals(Pn)
        fn = _weighted_huber(rn, W, delta)
        better = fn < f
        gain = np.where(better, f - fn, 0.0)
        if better.any():
            P[better], f[better] = Pn[better], fn[better]
            r[better], J[better] = problem.residual_jacobian(Pn[better])
        lam = np.where(better, np.maximum(lam / 3.0, 1e-12), lam * 4.0)
        # a start stops once its steps no longer change the objective
        done = (better & (gain <= rtol * f)) | (~better & (lam > 1e8))
        if done.any():
            P_out[idx[done]], f_out[idx[done]] = P[done], f[done]
            live = ~done
            idx, P, r, J, W, f, lam = idx[live], P[live], r[live], J[live], W[live], f[live], lam[live]
    P_out[idx], f_out[idx] = P, f
    return P_out, f_out


def _distinct_optima(P: np.ndarray, f: np.ndarray, k: int, rtol: float = 1e-6) -> list[int]:
    """Indices of the refined starts that ended in different optima, best first."""
    order = [i for i in np.argsort(f) if np.isfinite(f[i])]
    chosen: list[int] = []
    for i in order:
        if all(abs(f[i] - f[j]) > rtol * f[j] + 1e-15 or np.max(np.abs(P[i] - P[j])) > 1e-3 for j in chosen):
            chosen.append(int(i))
            if len(chosen) == k:
                break
    return chosen


def _projected_gradient(problem: _Problem, p: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    r, J = problem.residual_jacobian(p[None, :])
    g = np.einsum("nm,n->m", J[0], np.clip(r[0], -problem.delta, problem.delta)) / r.shape[1]
    at_lo = (p <= lower + 1e-9) & (g > 0)
    at_hi = (p >= upper - 1e-9) & (g < 0)
    return np.where(at_lo | at_hi, 0.0, g)


def _problem_from_points(sparsity, n_nonzero, data, loss, form, space, delta, base, mean_sparsity_fraction=None):
    """Validated arrays -> the normalised problem and the bounds of its parameters.
    The avgparam form is the dense problem on N_avg = N / (1 - S) (1 - f S)."""
    delta = DEFAULT_DELTA.get(space, 1e-3) if delta is None else float(delta)
    y = np.asarray(loss, dtype=float).reshape(-1)
    S = np.zeros_like(y) if sparsity is None else np.asarray(sparsity, dtype=float).reshape(-1)
    N = np.asarray(n_nonzero, dtype=float).reshape(-1)
    D = np.asarray(data, dtype=float).reshape(-1)
    if not (S.shape == N.shape == D.shape == y.shape):
        raise SparsescaleError("sparsity, n_nonzero, data and loss must have the same length")
    _validate(form, S, N, D, y, space, delta, base)
    if form == "avgparam":
        N = Law("avgparam", dict.fromkeys(COEFFICIENT_NAMES["avgparam"], 1.0),
                mean_sparsity_fraction=mean_sparsity_fraction).n_avg(S, N)
    problem = _Problem("dense" if form == "avgparam" else form, S, N, D, y, space, delta, base)
    bounds = [AMPLITUDE_BOUNDS] * problem.n_amplitudes + list(EXPONENT_BOUNDS[form])
    return problem, np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])


def _starting_points(problem: _Problem, n_candidates: int, n_starts: int, seed: int,
                     extra_starts: list[dict[str, float]] | None) -> list[np.ndarray]:
    """Stage 1: the best distinct projected candidates, then any warm starts."""
    E = _candidates(problem, n_candidates, seed)
    amps, proj_obj = problem.project(E)
    chosen = _distinct_best(E, proj_obj, n_starts, min_dist=0.02)
    starts = [np.concatenate([amps[i], E[i]]) for i in chosen]
    starts += [problem.from_coefficients(c) for c in extra_starts or []]
    if not starts:
        raise SparsescaleError("no admissible starting point: this form cannot fit the data with positive coefficients")
    return starts


def _fit_diagnostics(problem: _Problem, form: str, P: np.ndarray, f: np.ndarray, lower: np.ndarray,
                     upper: np.ndarray, n_started: int, n_candidates: int, seed: int):
    """The best refined start and the diagnostics that say how well posed its optimum is."""
    best = int(np.nanargmin(f))
    best_f, best_p = float(f[best]), P[best]
    tol = 1e-6 * best_f + 1e-15
    amplitude_names = {"sparse": ["aS", "cS", "aD", "c"], "dense": ["A", "B", "E"], "nm": ["aS", "cS"],
                       "avgparam": ["A", "B", "E"]}[form]
    names = amplitude_names + list(problem.exponent_names)
    at_bound = [n for n, v, lo, hi in zip(names, best_p, lower, upper) if v <= lo + 1e-6 or v >= hi - 1e-6]
    worse = np.sort(f[np.isfinite(f) & (f > best_f + tol)])
    diagnostics = {
        "optimizer": "low-discrepancy variable projection + batched Levenberg-Marquardt (IRLS Huber)",
        "space": problem.space,
        "delta": problem.delta,
        "seed": seed,
        "n_candidates": int(n_candidates),
        "n_starts": int(n_started),
        "starts_at_best": int(np.sum(f <= best_f + tol)),
        "grad_norm": float(np.linalg.norm(_projected_gradient(problem, best_p, lower, upper))),
        "at_bound": at_bound,
        "runner_up_objective": float(worse[0]) if worse.size else None,
    }
    return best_f, best_p, diagnostics


def _fit_through_subsample(problem: _Problem, lower, upper, n_candidates: int, n_starts: int, seed: int,
                           extra_starts: list[dict[str, float]] | None):
    """Stages 1 and 2 on SCORE_ROWS seeded rows, then the distinct optima found
    there refined on every row (see SCORE_ROWS). Returns the full-data refined
    starts, their objectives and the subsample's starting points."""
    rows = np.sort(np.random.default_rng(seed).choice(problem.y.shape[0], SCORE_ROWS, replace=False))
    sub = problem.subset(rows)
    starts = _starting_points(sub, n_candidates, n_starts, seed, None)
    # a loose tolerance: these only have to reach their basin, the full data finish them
    Ps, fs = _refine(sub, np.array(starts), lower, upper, rtol=1e-8)
    P0 = [Ps[i] for i in _distinct_optima(Ps, fs, FULL_DATA_STARTS, rtol=1e-4)]
    P0 += [problem.from_coefficients(c) for c in extra_starts or []]
    if not P0:
        raise SparsescaleError("no admissible starting point: this form cannot fit the data with positive coefficients")
    P, f = _refine(problem, np.array(P0), lower, upper)
    return P, f, starts


def fit_law(
    sparsity,
    n_nonzero,
    data,
    loss,
    form: str = "sparse",
    space: str = "log",
    delta: float | None = None,
    seed: int = 0,
    base: Law | None = None,
    n_candidates: int = 4096,
    n_starts: int = 32,
    extra_starts: list[dict[str, float]] | None = None,
    units: dict[str, str] | None = None,
    tokens_per_unit: float | None = None,
    mean_sparsity_fraction: float | None = None,
) -> FitResult:
    """Fit `form` to the points with a mean Huber objective; return the best optimum.

    sparsity, n_nonzero, data, loss: 1-D arrays of equal length (the dense form
    ignores sparsity, which may be None). space: 'log' residuals
    log(pred) - log(loss) (language; default delta 1e-3) or 'linear' residuals
    pred - loss (vision; default delta 1e-2). seed shifts the low-discrepancy
    set of exponent candidates; a well posed problem gives the same optimum for
    every seed. extra_starts: coefficient dicts to start from as well (warm
    starts, e.g. the full-data optimum inside a bootstrap). tokens_per_unit:
    what one unit of D costs (see Law); 1 by default when units["D"] is "tokens".
    mean_sparsity_fraction: avgparam only, the schedule's mean sparsity / S
    (default 0.625, the cubic 25%-75% ramp; see schedule_mean_sparsity_fraction).
    """
    seed = check_seed(seed)
    problem, lower, upper = _problem_from_points(sparsity, n_nonzero, data, loss, form, space, delta, base,
                                                 mean_sparsity_fraction)
    y = problem.y
    if y.shape[0] <= SCORE_ROWS:
        starts = _starting_points(problem, n_candidates, n_starts, seed, extra_starts)
        P, f = _refine(problem, np.array(starts), lower, upper)
    else:
        P, f, starts = _fit_through_subsample(problem, lower, upper, n_candidates, n_starts, seed, extra_starts)
    if not np.any(np.isfinite(f)):
        raise SparsescaleError("the optimiser found no finite optimum for this data")
    best_f, best_p, diagnostics = _fit_diagnostics(problem, form, P, f, lower, upper, P.shape[0], n_candidates, seed)
    diagnostics["scored_rows"] = int(min(y.shape[0], SCORE_ROWS))
    fit_meta = {"objective": best_f, "n_points": int(y.shape[0]), "diagnostics": diagnostics}
    default_units = {"N": "non-zero parameters", "D": "data (as given)"}
    law = Law(
        form=form,
        coefficients=problem.to_coefficients(best_p),
        units=units or (dict(base.units) if base is not None else default_units),
        fit=fit_meta,
        tokens_per_unit=tokens_per_unit if tokens_per_unit is not None else _token_default(units),
        mean_sparsity_fraction=mean_sparsity_fraction,
    )
    optima = [(float(f[i]), problem.to_coefficients(P[i])) for i in _distinct_optima(P, f, 16)]
    diagnostics["n_distinct_optima"] = len(optima)
    return FitResult(law=law, objective=best_f, n_points=int(y.shape[0]), diagnostics=diagnostics,
                     local_optima=optima, start_points=[problem.to_coefficients(p) for p in starts])


def _token_default(units: dict[str, str] | None) -> float | None:
    """A law whose D is a plain token count costs one token per unit."""
    return 1.0 if units and str(units.get("D", "")).strip().lower() == "tokens" else None


def fit_resamples(
    sparsity, n_nonzero, data, loss, weights: np.ndarray, starts: list[dict[str, float]],
    form: str = "sparse", space: str = "log", delta: float | None = None, base: Law | None = None,
    rtol: float = 1e-10, mean_sparsity_fraction: float | None = None,
) -> tuple[list[dict[str, float]], np.ndarray]:
    """Refit the law once per row of `weights` (point multiplicities, e.g. a
    bootstrap resample), each from every coefficient set in `starts`, all in one
    batched refinement. Returns the best coefficients and objective per row.
    rtol is looser than a single fit's: along directions the data cannot
    resolve (an amplitude drifting to 0) the last digits cost hundreds of
    iterations and move no interval."""
    problem, lower, upper = _problem_from_points(sparsity, n_nonzero, data, loss, form, space, delta, base,
                                                 mean_sparsity_fraction)
    W = np.asarray(weights, dtype=float)
    R, n_starts = W.shape[0], len(starts)
    P1 = np.array([problem.from_coefficients(c) for c in starts])
    # resamples x starts rows of (n,) weights: chunk the resamples so they stay in budget
    step = resample_batch(problem.y.shape[0], n_starts)
    coefs, objs = [], []
    for lo in range(0, R, step):
        Wc = W[lo:lo + step]
        P, f = _refine(problem, np.tile(P1, (Wc.shape[0], 1)), lower, upper,
                       weights=np.repeat(Wc, n_starts, axis=0), rtol=rtol)
        f = np.where(np.isfinite(f), f, np.inf).reshape(Wc.shape[0], n_starts)
        best = np.argmin(f, axis=1)
        P = P.reshape(Wc.shape[0], n_starts, -1)
        coefs += [problem.to_coefficients(P[r, best[r]]) for r in range(Wc.shape[0])]
        objs.append(f[np.arange(Wc.shape[0]), best])
    return coefs, np.concatenate(objs)


def resample_batch(n_points: int, n_starts: int) -> int:
    """Resamples whose weights (one (n,) row per resample and start) fit in
    MEMORY_BUDGET, at least 1; the refinement chunks its starts by itself."""
    return chunk_size(2 * n_points * max(1, n_starts))
