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
from sparsescale.laws.forms import get_form
from sparsescale.laws.forms.base import Design, LawForm
from sparsescale.laws.law import Law
from sparsescale.laws.points import FitOptions, Points

SPACES = ("log", "linear")
DEFAULT_DELTA = {"log": 1e-3, "linear": 1e-2}

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


# A fit's result: the law, and what says how much to trust the optimum (the
# objective, how many starts ended there, the projected gradient, which
# parameters sit on a bound, the distinct optima the refinement found).
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


# Huber on log loss. A law predicts the log of the loss better than the loss:
# the residuals of a good fit are relative errors of a few tenths of a percent
# at every scale, so r = log(pred) - log(y) weighs a 2.0-loss run and a
# 4.0-loss run alike, where pred - y would let the larger losses dominate.
# Huber's loss is quadratic for |r| <= delta and linear beyond: a run that
# diverged or a mis-logged loss pulls on the fit with a bounded force (delta
# times its sign) instead of its square. delta = 1e-3 in log space is a 0.1%
# relative error, about the noise of a final validation loss (Hoffmann et al.
# use the same value); vision losses are fitted on raw residuals with 1e-2.
def huber(residual: np.ndarray, delta: float) -> np.ndarray:
    """0.5 r^2 inside |r| <= delta, delta (|r| - delta/2) outside (scipy's huber)."""
    a = np.abs(residual)
    return np.where(a <= delta, 0.5 * residual * residual, delta * (a - 0.5 * delta))


def huber_objective(
    law: Law, sparsity, n_nonzero, data, loss, space: str = "log", delta: float | None = None
) -> float:
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
    """One form on one data set, in normalised units.

    Units. The fitter works on N' = N / n_scale and D' = D / d_scale, with the
    scales the geometric medians of the data: a power law N^-b over N from 1e6
    to 1e9 spans nine orders of magnitude in its amplitude, while N'^-b stays
    near 1, so the amplitudes are O(loss) and the normal equations are well
    conditioned. The objective does not depend on the scaling: a power law in N'
    is the same power law in N with its amplitude multiplied by n_scale^-b (each
    form's to_coefficients undoes that, see laws/forms/)."""

    def __init__(
        self,
        form: LawForm | str,
        S,
        N,
        D,
        y,
        space,
        delta,
        base: Law | None = None,
        f: float | None = None,
    ):
        form = get_form(form)
        self.form, self.space, self.delta, self.base = form, space, delta, base
        # the form's own inputs: avgparam sees N_avg, nm an offset from its base
        prep = form.prepare(S, N, D, base, f)
        self.S, self.y = S, y
        self.n_scale = float(np.exp(np.median(np.log(prep.n_nonzero))))
        self.d_scale = float(np.exp(np.median(np.log(prep.data))))
        self.design = Design(
            np.log1p(-prep.sparsity),
            np.log(prep.n_nonzero / self.n_scale),
            np.log(prep.data / self.d_scale),
            prep.fixed,
        )
        self.offset = prep.offset
        self.exponent_names = form.exponents
        self.n_amplitudes = len(form.amplitudes)
        self.log_y = np.log(y)

    def subset(self, rows: np.ndarray) -> "_Problem":
        """The same problem on some of its points, in the SAME normalised units
        (scales are not recomputed), so that parameters carry over unchanged."""
        sub = object.__new__(_Problem)
        sub.__dict__.update(self.__dict__)
        for name in ("S", "y", "offset", "log_y"):
            setattr(sub, name, getattr(self, name)[rows])
        sub.design = self.design.subset(rows)
        return sub

    # basis functions, batched over G exponent vectors: E (G, m) -> Phi (G, n, k)
    def basis(self, E: np.ndarray) -> np.ndarray:
        return self.form.basis(self.design, E)

    # -- stage 1: NNLS amplitudes for many exponent vectors at once -----------
    def project(self, E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best non-negative amplitudes (weighted LS) and Huber objective per row of E.
        Scored in chunks of candidates so that memory stays under MEMORY_BUDGET
        whatever the number of points (a (G, n, k) basis for all 4096 candidates
        of a 250,000-row table would be 33 GB)."""
        n, k = self.y.shape[0], self.n_amplitudes
        step = chunk_size(n * k * 4)  # basis, weighted basis, prediction, residual
        parts = [self._project_chunk(E[lo : lo + step]) for lo in range(0, E.shape[0], step)]
        return np.concatenate([a for a, _ in parts]), np.concatenate([o for _, o in parts])

    # Variable projection. For fixed exponents e the prediction is linear in
    # the amplitudes, pred = Phi(e) a + offset, so the best a is a least-squares
    # problem with a closed-form answer, and the search needs to cover only e
    # (2 or 3 dimensions instead of 5 or 7). The amplitudes must be >= 0 (a
    # negative one is a term that grows with N or D), so the answer is a
    # non-negative least squares (NNLS). With k <= 4 amplitudes there are at
    # most 2^4 - 1 = 15 active sets; each is solved for every candidate at
    # once from the k x k normal equations, and the best feasible one kept.
    # That is exact NNLS (the optimum is the unconstrained LS solution of its
    # own active set) at the cost of a few batched solves.
    #
    # Why weights 1/y in log space: the objective is on log(pred) - log(y), and
    # to first order log(pred) - log(y) = (pred - y) / y. Least squares on
    # (pred - y) / y is therefore the linearised log objective, and keeps the
    # projection linear. The candidate is then scored by the TRUE Huber
    # objective on its actual residuals, so the approximation only ranks
    # starting points; stage 2 optimises the exact objective.
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
        G, k = (
            Phi.shape[0],
            self.n_amplitudes,
        )  # infeasible sets (any negative amplitude) score inf and never win

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
            r = (
                np.log(np.where(pred > 0, pred, 1.0)) - self.log_y
                if self.space == "log"
                else pred - self.y
            )
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

    # The Jacobian in (a, e). d pred / d a_j is the basis function phi_j itself;
    # d pred / d e_i is the sum of the terms a_j phi_j that e_i acts on, times
    # the log of the base it is the exponent of (d/de x^e = x^e log x), which
    # the form computes from its terms (forms/*.exponent_jacobian). In log
    # space r = log pred - log y, so dr = d pred / pred: one division by pred.
    def residual_jacobian(self, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residuals r (G, n) and their Jacobian dr/dp (G, n, k + m) at the
        parameter rows P = (amplitudes, exponents)."""
        k = self.n_amplitudes
        Phi, terms, pred = self._terms(P)
        # J is filled in place, column block by column block: d pred / d a_j = phi_j,
        # d pred / d e = the terms times the log of the base the exponent acts on
        J = np.empty(Phi.shape[:2] + (k + len(self.exponent_names),))
        J[:, :, :k] = Phi
        self.form.exponent_jacobian(self.design, terms, J[:, :, k:])
        r = self._residual_of(pred)
        if self.space == "log":  # d log(pred) = d pred / pred
            J /= pred[:, :, None]
        return r, J

    # -- back to raw-unit coefficients ---------------------------------------
    def to_coefficients(self, p: np.ndarray) -> dict[str, float]:
        k = self.n_amplitudes
        return self.form.to_coefficients(p[:k], p[k:], self.n_scale, self.d_scale, self.base)

    def from_coefficients(self, coefs: dict[str, float]) -> np.ndarray:
        """Inverse of to_coefficients (for warm starts)."""
        a, e = self.form.from_coefficients(coefs, self.n_scale, self.d_scale)
        return np.concatenate([np.clip(a, *AMPLITUDE_BOUNDS), e])


# ---------------------------------------------------------------------------
# numpy's default_rng takes any non-negative integer, but a seed is also
# written into law files and specs: bounded to 32 bits so it survives JSON
# and every consumer of it.
def check_seed(seed) -> int:
    """A seed numpy's generators take: an integer in [0, MAX_SEED]."""
    if (
        isinstance(seed, bool)
        or not isinstance(seed, (int, np.integer))
        or not 0 <= seed <= MAX_SEED
    ):
        raise SparsescaleError(f"must be an integer in 0..{MAX_SEED}, got {seed!r}", param="seed")
    return int(seed)


def resolve_form(form) -> LawForm:
    """The LawForm of a form name, with an error that names the `form` argument."""
    try:
        return get_form(form)
    except SparsescaleError as exc:
        raise SparsescaleError(str(exc), param="form") from None


def _validate(spec: LawForm, S, N, D, y, space, delta, base):
    if space not in SPACES:
        raise SparsescaleError(f"expected log or linear, got {space!r}", param="space")
    if not (delta > 0 and math.isfinite(delta)):
        raise SparsescaleError(f"must be a positive number, got {delta}", param="delta")
    spec.check_base(base)
    n_free = len(spec.free)
    if y.shape[0] < n_free:
        raise SparsescaleError(
            f"{y.shape[0]} data points are fewer than the {n_free} free coefficients of the "
            f"{spec.name} form"
        )
    # repeated runs of one configuration add no equation: count distinct inputs
    # (a form that ignores S sees runs at one (N, D) and different S as one)
    inputs, what = ((S, N, D), "(S, N, D)") if spec.uses_sparsity else ((N, D), "(N, D)")
    distinct = np.unique(np.column_stack(inputs), axis=0).shape[0]
    if distinct < n_free:
        raise SparsescaleError(
            f"the {y.shape[0]} data points hold only {distinct} distinct {what} "
            f"configuration(s), fewer than the {n_free} free coefficients of the {spec.name} form"
        )
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


# Stage 1's candidates. The exponents live in a small box (bS in [0, 4], bN
# in (0, 2], bD in (0, 3] for the sparse form; each form declares its own), and
# the objective over it has several basins on real sweeps (the paper's T5 data
# have at least two). A space-filling set of 4096 exponent vectors, each
# scored with its optimal amplitudes, finds the basins without a starting
# point from the user; the best mutually distinct ones (max-norm distance
# above 0.02) are refined.
def _candidates(problem: _Problem, n_candidates: int, seed: int) -> np.ndarray:
    """A low-discrepancy set of exponent vectors in the search box.

    The additive recurrence of the generalised golden ratio (Roberts' R_d
    sequence) with a seeded random shift: as even as a Sobol set, and free of
    the scipy.stats import cost."""
    bounds = np.array(problem.form.exponent_bounds)
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


# Every start is refined in one batch: the LM iteration's cost is a handful
# of batched numpy calls whatever the number of starts, so 32 starts cost
# little more than one; chunking only bounds the memory.
def _refine(
    problem: _Problem,
    P0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    weights: np.ndarray | None = None,
    max_iter: int = 400,
    rtol: float = 1e-13,
):
    """_refine_batch over chunks of starts under MEMORY_BUDGET: the starts are
    independent, so chunking changes no result, only the peak memory."""
    G, m = P0.shape
    step = chunk_size(problem.y.shape[0] * 8 * m)  # r, J, trial J, J^T products, weights
    if G <= step:
        return _refine_batch(problem, P0, lower, upper, weights, max_iter, rtol)
    parts = [
        _refine_batch(
            problem,
            P0[lo : lo + step],
            lower,
            upper,
            None if weights is None else weights[lo : lo + step],
            max_iter,
            rtol,
        )
        for lo in range(0, G, step)
    ]
    return np.concatenate([p for p, _ in parts]), np.concatenate([f for _, f in parts])


def _weighted_huber(r: np.ndarray, w: np.ndarray, delta: float) -> np.ndarray:
    """Weighted Huber objective per row; inf where a residual is not finite."""
    with np.errstate(invalid="ignore"):
        f = np.sum(w * huber(r, delta), axis=1)
    return np.where(np.all(np.isfinite(r), axis=1), f, np.inf)


# Stage 2: Levenberg-Marquardt on the Huber objective by iteratively
# reweighted least squares. At the current residuals r, Huber's loss is
# majorised by a weighted square: rho(r') <= rho(r) + psi(r)(r' - r) + w/2 (r' - r)^2
# with psi(r) = clip(r, -delta, delta) its derivative and w = min(1, delta/|r|).
# Linearising r' = r + J dp gives the Gauss-Newton system
#     (J^T W J + lambda diag(J^T W J)) dp = -J^T psi(r)
# whose damping lambda grows after a rejected step (towards gradient descent)
# and shrinks after an accepted one (towards Gauss-Newton). A step is taken
# only if the true objective falls, so the iteration is monotone whatever
# curvature is used outside the Huber zone (see OUTLIER_CURVATURE).
def _lm_step(
    ra: np.ndarray,
    Ja: np.ndarray,
    wa: np.ndarray,
    Pa: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    lam_a: np.ndarray,
    delta: float,
) -> np.ndarray:
    """One damped Gauss-Newton step per start on the IRLS majoriser of the Huber loss."""
    # per-point curvature: 1 inside the Huber zone, OUTLIER_CURVATURE delta/|r| outside
    eye = np.eye(Pa.shape[1])
    absr = np.abs(ra)
    irls = wa * np.where(absr <= delta, 1.0, OUTLIER_CURVATURE * delta / np.maximum(absr, 1e-300))
    JT = Ja.transpose(0, 2, 1)
    g = (JT @ (wa * np.clip(ra, -delta, delta))[:, :, None])[:, :, 0]
    H = JT @ (Ja * irls[:, :, None])
    # Bounds. An amplitude at 0 whose gradient pushes it further down, or an
    # exponent at the edge of its box pushing outwards, is held: its row and
    # column are replaced by the identity and its gradient by 0, so the step
    # moves the free coordinates only (a projected Newton step). Clipping the
    # step afterwards keeps the others inside the box.
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


def _refine_batch(
    problem: _Problem,
    P0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    weights: np.ndarray | None = None,
    max_iter: int = 400,
    rtol: float = 1e-13,
):
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
            idx, P, r, J, W, f, lam = (
                idx[live],
                P[live],
                r[live],
                J[live],
                W[live],
                f[live],
                lam[live],
            )
    P_out[idx], f_out[idx] = P, f
    return P_out, f_out


# Two refined starts that end within rtol in objective and 1e-3 in every
# parameter are the same optimum; the rest are reported as distinct optima (a
# bootstrap starts from each, since a resample may prefer another basin).
def _distinct_optima(P: np.ndarray, f: np.ndarray, k: int, rtol: float = 1e-6) -> list[int]:
    """Indices of the refined starts that ended in different optima, best first."""
    order = [i for i in np.argsort(f) if np.isfinite(f[i])]
    chosen: list[int] = []
    for i in order:
        if all(
            abs(f[i] - f[j]) > rtol * f[j] + 1e-15 or np.max(np.abs(P[i] - P[j])) > 1e-3
            for j in chosen
        ):
            chosen.append(int(i))
            if len(chosen) == k:
                break
    return chosen


# The diagnostic gradient: the mean Huber gradient J^T psi(r) / n with the
# components that push against an active bound removed. At an interior optimum
# it is ~0; a large value says the refinement stopped before converging.
def _projected_gradient(
    problem: _Problem, p: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> np.ndarray:
    r, J = problem.residual_jacobian(p[None, :])
    g = np.einsum("nm,n->m", J[0], np.clip(r[0], -problem.delta, problem.delta)) / r.shape[1]
    at_lo = (p <= lower + 1e-9) & (g > 0)
    at_hi = (p >= upper - 1e-9) & (g < 0)
    return np.where(at_lo | at_hi, 0.0, g)


def _problem_from_points(points: Points, options: FitOptions):
    """Validated points -> the normalised problem and the bounds of its parameters."""
    spec = resolve_form(options.form)
    space = options.space
    delta = DEFAULT_DELTA.get(space, 1e-3) if options.delta is None else float(options.delta)
    S, N, D, y = points.arrays
    _validate(spec, S, N, D, y, space, delta, options.base)
    problem = _Problem(spec, S, N, D, y, space, delta, options.base, options.mean_sparsity_fraction)
    bounds = [AMPLITUDE_BOUNDS] * problem.n_amplitudes + list(spec.exponent_bounds)
    return problem, np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])


# Both stages refuse in the same words when no start is left: stage 1 when no
# candidate has positive amplitudes, the subsample path when none of its
# refined starts has a finite objective.
NO_START = "no admissible starting point: this form cannot fit the data with positive coefficients"


def _starting_points(
    problem: _Problem,
    n_candidates: int,
    n_starts: int,
    seed: int,
    extra_starts: list[dict[str, float]] | None,
) -> list[np.ndarray]:
    """Stage 1: the best distinct projected candidates, then any warm starts."""
    E = _candidates(problem, n_candidates, seed)
    amps, proj_obj = problem.project(E)
    chosen = _distinct_best(E, proj_obj, n_starts, min_dist=0.02)
    starts = [np.concatenate([amps[i], E[i]]) for i in chosen]
    starts += [problem.from_coefficients(c) for c in extra_starts or []]
    if not starts:
        raise SparsescaleError(NO_START)
    return starts


def _fit_diagnostics(
    problem: _Problem,
    P: np.ndarray,
    f: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    n_started: int,
    n_candidates: int,
    seed: int,
):
    """The best refined start and the diagnostics that say how well posed its optimum is."""
    best = int(np.nanargmin(f))
    best_f, best_p = float(f[best]), P[best]
    tol = 1e-6 * best_f + 1e-15
    names = list(problem.form.amplitudes) + list(problem.exponent_names)
    at_bound = [
        n for n, v, lo, hi in zip(names, best_p, lower, upper) if v <= lo + 1e-6 or v >= hi - 1e-6
    ]
    worse = np.sort(f[np.isfinite(f) & (f > best_f + tol)])
    diagnostics = {
        "optimizer": "low-discrepancy variable projection + batched Levenberg-Marquardt (IRLS "
        "Huber)",
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


# Large tables. Scoring 4096 candidates costs 4096 x n basis evaluations; on a
# seeded subsample of SCORE_ROWS rows it is a fixed cost. A sweep with more
# than 1024 rows has many evaluations per configuration (every eval step of
# every run), so the subsample already holds every configuration several
# times and pins the same basins; the full data then only finish the optima.
def _fit_through_subsample(
    problem: _Problem,
    lower,
    upper,
    n_candidates: int,
    n_starts: int,
    seed: int,
    extra_starts: list[dict[str, float]] | None,
):
    """Stages 1 and 2 on SCORE_ROWS seeded rows, then the distinct optima found
    there refined on every row (see SCORE_ROWS). Returns the full-data refined
    starts, their objectives and the subsample's starting points."""
    rows = np.sort(
        np.random.default_rng(seed).choice(problem.y.shape[0], SCORE_ROWS, replace=False)
    )
    sub = problem.subset(rows)
    starts = _starting_points(sub, n_candidates, n_starts, seed, None)
    # a loose tolerance: these only have to reach their basin, the full data finish them
    Ps, fs = _refine(sub, np.array(starts), lower, upper, rtol=1e-8)
    P0 = [Ps[i] for i in _distinct_optima(Ps, fs, FULL_DATA_STARTS, rtol=1e-4)]
    P0 += [problem.from_coefficients(c) for c in extra_starts or []]
    if not P0:
        raise SparsescaleError(NO_START)
    P, f = _refine(problem, np.array(P0), lower, upper)
    return P, f, starts


def fit_law(
    points: Points,
    options: FitOptions | None = None,
    *,
    extra_starts: list[dict[str, float]] | None = None,
) -> FitResult:
    """Fit `options.form` to the points with a mean Huber objective; return the best optimum.

    options (FitOptions; defaults: the sparse form, log residuals): space 'log'
    fits log(pred) - log(loss) (language; default delta 1e-3), 'linear' fits
    pred - loss (vision; default delta 1e-2). seed shifts the low-discrepancy
    set of exponent candidates; a well posed problem gives the same optimum for
    every seed. tokens_per_unit: what one unit of D costs (see Law); 1 by
    default when units["D"] is "tokens". extra_starts: coefficient dicts to
    start from as well (warm starts, e.g. the full-data optimum inside a bootstrap).
    """
    options = options or FitOptions()
    seed = check_seed(options.seed)
    n_candidates, n_starts = options.n_candidates, options.n_starts
    problem, lower, upper = _problem_from_points(points, options)
    y = problem.y
    if y.shape[0] <= SCORE_ROWS:
        starts = _starting_points(problem, n_candidates, n_starts, seed, extra_starts)
        P, f = _refine(problem, np.array(starts), lower, upper)
    else:
        P, f, starts = _fit_through_subsample(
            problem, lower, upper, n_candidates, n_starts, seed, extra_starts
        )
    if not np.any(np.isfinite(f)):
        raise SparsescaleError("the optimiser found no finite optimum for this data")
    best_f, best_p, diagnostics = _fit_diagnostics(
        problem, P, f, lower, upper, P.shape[0], n_candidates, seed
    )
    diagnostics["scored_rows"] = int(min(y.shape[0], SCORE_ROWS))
    fit_meta = {"objective": best_f, "n_points": int(y.shape[0]), "diagnostics": diagnostics}
    default_units = {"N": "non-zero parameters", "D": "data (as given)"}
    units, base = options.units, options.base
    law = Law(
        form=options.form,
        coefficients=problem.to_coefficients(best_p),
        units=units or (dict(base.units) if base is not None else default_units),
        fit=fit_meta,
        tokens_per_unit=options.tokens_per_unit
        if options.tokens_per_unit is not None
        else _token_default(units),
        mean_sparsity_fraction=options.mean_sparsity_fraction
        if problem.form.needs_schedule
        else None,
    )
    optima = [(float(f[i]), problem.to_coefficients(P[i])) for i in _distinct_optima(P, f, 16)]
    diagnostics["n_distinct_optima"] = len(optima)
    return FitResult(
        law=law,
        objective=best_f,
        n_points=int(y.shape[0]),
        diagnostics=diagnostics,
        local_optima=optima,
        start_points=[problem.to_coefficients(p) for p in starts],
    )


# A law's tokens_per_unit says what one unit of D costs in tokens, so that a
# budget in FLOPs can be converted (C = 6 N D tokens_per_unit c_mul(S)). Only a
# D in tokens is known without being told.
def _token_default(units: dict[str, str] | None) -> float | None:
    """A law whose D is a plain token count costs one token per unit."""
    return 1.0 if units and str(units.get("D", "")).strip().lower() == "tokens" else None


def fit_resamples(
    points: Points,
    weights: np.ndarray,
    starts: list[dict[str, float]],
    options: FitOptions | None = None,
    rtol: float = 1e-10,
) -> tuple[list[dict[str, float]], np.ndarray]:
    """Refit the law once per row of `weights` (point multiplicities, e.g. a
    bootstrap resample), each from every coefficient set in `starts`, all in one
    batched refinement. Returns the best coefficients and objective per row.
    rtol is looser than a single fit's: along directions the data cannot
    resolve (an amplitude drifting to 0) the last digits cost hundreds of
    iterations and move no interval."""
    problem, lower, upper = _problem_from_points(points, options or FitOptions())
    W = np.asarray(weights, dtype=float)
    R, n_starts = W.shape[0], len(starts)
    P1 = np.array([problem.from_coefficients(c) for c in starts])
    # resamples x starts rows of (n,) weights: chunk the resamples so they stay in budget
    step = resample_batch(problem.y.shape[0], n_starts)
    coefs, objs = [], []
    for lo in range(0, R, step):
        Wc = W[lo : lo + step]
        P, f = _refine(
            problem,
            np.tile(P1, (Wc.shape[0], 1)),
            lower,
            upper,
            weights=np.repeat(Wc, n_starts, axis=0),
            rtol=rtol,
        )
        f = np.where(np.isfinite(f), f, np.inf).reshape(Wc.shape[0], n_starts)
        best = np.argmin(f, axis=1)
        P = P.reshape(Wc.shape[0], n_starts, -1)
        coefs += [problem.to_coefficients(P[r, best[r]]) for r in range(Wc.shape[0])]
        objs.append(f[np.arange(Wc.shape[0]), best])
    return coefs, np.concatenate(objs)


# Memory of a batch of resamples: each resample x start refines with an (n,)
# weight vector, plus the refinement's own O(n m) arrays, chunked separately.
def resample_batch(n_points: int, n_starts: int) -> int:
    """Resamples whose weights (one (n,) row per resample and start) fit in
    MEMORY_BUDGET, at least 1; the refinement chunks its starts by itself."""
    return chunk_size(2 * n_points * max(1, n_starts))
