"""How far to trust a fitted law: bootstrap intervals and an extrapolation check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.laws.fit import FitResult, check_seed, fit_law, fit_resamples, resample_batch
from sparsescale.laws.law import Law
from sparsescale.laws.points import FitOptions, Points


@dataclass
class BootstrapResult:
    """Percentile intervals over refits on resampled runs.

    intervals: name -> (low, median, high) at the requested level, for every
    coefficient and every derived quantity. samples: name -> array of B values.
    """

    level: float
    n_boot: int
    intervals: dict[str, tuple[float, float, float]]
    samples: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    n_failed: int = 0

    def relative_width(self, name: str) -> float:
        """(high - low) / |median|: a scale-free measure of how well determined a quantity is."""
        lo, med, hi = self.intervals[name]
        return float((hi - lo) / abs(med)) if med != 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "n_boot": self.n_boot,
            "n_failed": self.n_failed,
            "intervals": {
                k: {"low": v[0], "median": v[1], "high": v[2]} for k, v in self.intervals.items()
            },
        }


def bootstrap(
    points: Points,
    options: FitOptions | None = None,
    *,
    n_boot: int = 200,
    level: float = 0.95,
    derived: dict[str, Callable[[Law], float]] | None = None,
    reference: FitResult | None = None,
    batch: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    starts: list[dict[str, float]] | None = None,
) -> BootstrapResult:
    """Refit on `n_boot` resamples of the runs (rows drawn with replacement).

    A resample is a vector of point multiplicities, so all resamples share one
    problem and are refined together in batches. Each starts from every
    distinct optimum the full-data fit found (`reference`, fitted here when not
    given): on multi-modal data (the paper's T5 sweep) a resample's best optimum
    may be a different basin from the full data's, and starting in each basin
    finds it.
    derived: name -> function of a Law (a predicted loss, S_opt, an equivalent
    dense size...); their intervals are reported beside the coefficients.
    starts: coefficient sets to start every resample from instead of the
    reference's optima: draws that stay in one basin (around a published law).
    """
    options = options or FitOptions()
    seed = check_seed(options.seed)
    if n_boot < 2:
        raise SparsescaleError(f"need at least 2 resamples, got {n_boot}", param="n_boot")
    if not 0 < level < 1:
        raise SparsescaleError(f"bootstrap level must be in (0, 1), got {level}")
    if reference is None:
        reference = fit_law(points, options)
    # every distinct optimum of the full fit plus its best few starting points
    # warm starts: a resample is a small perturbation of the full data, so its
    # optimum lies near one of the full data's; starting there costs a few
    # iterations instead of the full global search per resample
    if starts is None:
        starts = [c for _, c in reference.local_optima] + reference.start_points[:6]
    # one generator for all resamples, seeded by options.seed: the same seed
    # gives the same draws whatever the batch size (see below)
    rng = np.random.default_rng(seed)
    n = len(points)
    # resamples are drawn batch by batch (same draws, in the same order, as all at
    # once) so that memory holds one batch of (n,) count vectors, not n_boot of them.
    # By default a batch is as large as the memory budget allows: the refinement's
    # cost per iteration is mostly fixed numpy overhead once few starts are still
    # moving, so four batches of 250 pay the slow tail of the iteration four times
    # where one batch of 1000 pays it once (the rows are independent: same result).
    batch = resample_batch(n, len(starts)) if batch is None else batch
    batch = max(1, min(batch, resample_batch(n, len(starts))))
    derived = derived or {}
    coef_names = list(reference.law.coefficients)
    rows, failed = _resample_rows(
        points, options, n_boot, batch, rng, starts, reference, derived, progress
    )
    if len(rows) < 2:
        raise SparsescaleError("bootstrap: fewer than 2 resamples could be fitted")
    intervals, samples = _percentile_intervals(np.array(rows), coef_names + list(derived), level)
    return BootstrapResult(
        level=level, n_boot=n_boot, intervals=intervals, samples=samples, n_failed=failed
    )


# The bootstrap resamples runs, not residuals: each resample draws n rows of
# the sweep with replacement, which keeps the design's pattern of sizes and
# lengths but lets it be thinner or thicker in places, as another sweep of the
# same plan would be. Percentile intervals of the refitted coefficients need
# no Gaussian assumption, which matters for exponents with skewed draws.
def _resample_rows(
    points: Points, options: FitOptions, n_boot, batch, rng, starts, reference, derived, progress
):
    """Draw and refit the resamples batch by batch; one row of coefficients and
    derived values per fitted resample, and the number that could not be fitted."""
    n = len(points)
    coef_names = list(reference.law.coefficients)
    rows: list[list[float]] = []
    failed = 0
    for lo in range(0, n_boot, batch):
        counts = np.stack(
            [
                np.bincount(rng.integers(0, n, size=n), minlength=n)
                for _ in range(min(batch, n_boot - lo))
            ]
        )
        # a resample is a vector of multiplicities: row i counted counts[i] times
        # in the Huber objective is the same as row i drawn counts[i] times
        coefs, objs = fit_resamples(points, counts, starts, options)
        for c, f in zip(coefs, objs):
            if not np.isfinite(f):
                failed += 1
                continue
            law = Law(
                form=reference.law.form,
                coefficients=c,
                units=reference.law.units,
                mean_sparsity_fraction=reference.law.mean_sparsity_fraction,
            )
            rows.append([c[k] for k in coef_names] + [float(fn(law)) for fn in derived.values()])
        if progress is not None:
            progress(min(lo + batch, n_boot), n_boot)
    return rows, failed


def _percentile_intervals(arr: np.ndarray, names: list[str], level: float):
    """(low, median, high) per column over its finite values, and the raw columns."""
    q = [(1 - level) / 2 * 100, 50.0, (1 + level) / 2 * 100]
    intervals, samples = {}, {}
    for j, name in enumerate(names):
        # finite values only: a resample whose derived quantity is inf or NaN (a
        # wild draw) drops out of that column alone, not out of every interval
        col = arr[:, j][np.isfinite(arr[:, j])]
        lo_, med, hi = np.percentile(col, q) if col.size else (np.nan,) * 3
        intervals[name] = (float(lo_), float(med), float(hi))
        samples[name] = arr[:, j]
    return intervals, samples


# Sizers land near the requested N, not on it (a GPT of 12 layers and width
# 768 is not exactly 85M non-zeros at every sparsity), so sizes within 2%
# count as one: a holdout of "the largest N" holds out all its runs.
def group_by_size(n_nonzero, rtol: float = 0.02) -> np.ndarray:
    """Label runs whose N agree within `rtol` with the same group id (0 = smallest)."""
    N = np.asarray(n_nonzero, dtype=float)
    order = np.argsort(N)
    labels = np.empty(N.shape[0], dtype=int)
    group, anchor = 0, None
    # a group is anchored at its smallest N and takes every N within rtol of that
    # anchor; chaining (each N within rtol of the previous one) could merge a
    # sweep of finely spaced sizes into a single group
    for i in order:
        if anchor is not None and N[i] > anchor * (1 + rtol):
            group += 1
            anchor = N[i]
        if anchor is None:
            anchor = N[i]
        labels[i] = group
    return labels


def holdout_largest_n(
    points: Points, options: FitOptions | None = None, rtol: float = 0.02
) -> dict[str, Any]:
    """Fit without the largest-N group of runs, then predict that group.

    Returns the errors of the extrapolation (relative to the measured loss)
    and the mask of held-out points, for plotting.
    """
    S, N, D, y = points.arrays
    # the largest size is the extrapolation a user of a law makes: predict it
    # from the smaller ones and compare
    labels = group_by_size(N, rtol)
    if labels.max() < 1:
        raise SparsescaleError("all runs have the same N; need at least two sizes", param="holdout")
    mask = labels == labels.max()
    keep = ~mask
    fit = fit_law(points.take(keep), options)
    pred = fit.law.predict(S[mask], N[mask], D[mask])
    # signed: mean_rel_error says whether the law over- or under-predicts the
    # larger size, which the absolute errors cannot
    rel = (pred - y[mask]) / y[mask]
    return {
        "n_heldout": int(mask.sum()),
        "n_fit": int(keep.sum()),
        "held_out_n_nonzero": float(np.median(N[mask])),
        "mean_abs_rel_error": float(np.mean(np.abs(rel))),
        "max_abs_rel_error": float(np.max(np.abs(rel))),
        "mean_rel_error": float(np.mean(rel)),
        "predicted": pred.tolist(),
        "measured": y[mask].tolist(),
        "mask": mask,
        "law": fit.law,
        "objective": fit.objective,
    }
