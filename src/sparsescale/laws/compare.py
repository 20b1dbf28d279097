"""Which law do the data support? The paper's sparse law against the
average-parameter law (Jin et al., ICLR 2025), scored on the same points.

Three scores per form, because each answers a different question:
- largest-N holdout: fit without the largest size, predict it (mean and max
  relative error) -- the extrapolation a user of the law makes;
- rolling holdouts: every fold of `calibration.rolling_splits` (the next
  size or training length from the smaller ones), mean relative error over
  all held-out points -- the same, averaged over more than one split;
- AICc on the fit's residuals (log or linear, as fitted), treating them as
  Gaussian: n log(RSS / n) + 2k + 2k(k + 1) / (n - k - 1), k the number of
  free coefficients (7 against 5) -- in-sample fit, penalised for size.
The verdict follows the criterion (Akaike weights give "how strongly") and
says whether the holdouts agree; when they do not, the data do not settle it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.laws.fit import fit_law, resolve_form
from sparsescale.laws.law import Law
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.uncertainty.bootstrap import holdout_largest_n
from sparsescale.laws.uncertainty.calibration import rolling_splits

COMPARED_FORMS = ("sparse", "avgparam")


@dataclass
class FormScore:
    form: str
    law: Law
    n_coefficients: int
    objective: float
    aicc: float
    holdout_mean: float | None
    holdout_max: float | None
    rolling_mean: float | None
    rolling_points: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "form": self.form,
            "coefficients": dict(self.law.coefficients),
            "n_coefficients": self.n_coefficients,
            "objective": self.objective,
            "aicc": self.aicc,
            "holdout_mean_abs_rel_error": self.holdout_mean,
            "holdout_max_abs_rel_error": self.holdout_max,
            "rolling_mean_abs_rel_error": self.rolling_mean,
            "rolling_points": self.rolling_points,
        }


@dataclass
class Comparison:
    scores: list[FormScore]
    favoured: str
    strength: str  # "not distinguishable", "positive", "strong", "very strong"
    weight: float  # Akaike weight of the favoured form
    holdouts_agree: bool | None  # None when no holdout could be computed
    verdict: str = field(default="")

    def to_dict(self) -> dict[str, Any]:
        return {
            "scores": [s.to_dict() for s in self.scores],
            "favoured": self.favoured,
            "strength": self.strength,
            "akaike_weight": self.weight,
            "holdouts_agree": self.holdouts_agree,
            "verdict": self.verdict,
        }


# AICc. For Gaussian residuals with unknown variance the maximised
# log-likelihood is -n/2 log(RSS/n) + const, so AIC = n log(RSS/n) + 2k; the
# small-sample correction 2k(k+1)/(n-k-1) (Hurvich and Tsai) matters here,
# where sweeps have tens of points and the forms 5 or 7 coefficients. Only
# differences between forms on the same points mean anything.
def aicc(residuals: np.ndarray, k: int) -> float:
    """Small-sample Akaike criterion of Gaussian residuals with k coefficients."""
    n = residuals.size
    rss = float(np.sum(residuals**2))
    # with n <= k + 1 points the correction's denominator is not positive and the
    # criterion is undefined: inf ranks such a form last instead of raising.
    # max(rss, 1e-300) below: an exact fit (rss = 0) would take log 0.
    if n - k - 1 <= 0:
        return math.inf
    return n * math.log(max(rss, 1e-300) / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)


def _rolling_error(points: Points, options: FitOptions) -> tuple[float | None, int]:
    S, N, D, y = points.arrays
    # three training groups when the sweep has them (calibration's rule: a fold
    # on two groups fits an under-determined curve); two only as a fallback
    splits = rolling_splits(N, D, min_train_groups=3) or rolling_splits(N, D, min_train_groups=2)
    errors = []
    for _, _, train, test in splits:
        try:
            law = fit_law(points.take(train), options).law
        except SparsescaleError:
            continue
        errors.append(np.abs(law.predict(S[test], N[test], D[test]) / y[test] - 1.0))
    if not errors:
        return None, 0
    allerr = np.concatenate(errors)
    return float(allerr.mean()), int(allerr.size)


# k counts only the FREE coefficients: a refit that keeps its base's
# coefficients is penalised for what it fitted, not for what it inherited.
def score_form(points: Points, options: FitOptions) -> FormScore:
    """Fit `options.form` and score it (see the module docstring)."""
    S, N, D, y = points.arrays
    # the schedule's fraction matters only to forms that read it; the others ignore it
    fit = fit_law(points, options)
    pred = fit.law.predict(S, N, D)
    # residuals in the space the form was fitted in, so the RSS in AICc is the
    # quantity the fit minimised (up to the Huber loss's robust tails)
    r = np.log(pred / y) if options.space == "log" else pred - y
    k = len(resolve_form(options.form).free)
    try:
        h = holdout_largest_n(points, options)
        h_mean, h_max = h["mean_abs_rel_error"], h["max_abs_rel_error"]
    except SparsescaleError:
        h_mean = h_max = None
    rolling, n_rolling = _rolling_error(points, options)
    return FormScore(
        options.form, fit.law, k, fit.objective, aicc(r, k), h_mean, h_max, rolling, n_rolling
    )


def compare_forms(
    points: Points, options: FitOptions | None = None, forms=COMPARED_FORMS
) -> Comparison:
    """Fit and score every form in `forms` on the same points, with the other
    settings of `options` (its own form is ignored; see the module docstring)."""
    options = options or FitOptions()
    scores = [score_form(points, options.replace(form=f)) for f in forms]
    a = np.array([s.aicc for s in scores])
    # Akaike weights: exp(-AICc / 2) normalised, the relative likelihood of each form
    rel = np.exp(-0.5 * (a - a.min()))
    weights = rel / rel.sum()
    best = int(np.argmin(a))
    # the gap to the runner-up, not to the worst: with more than two forms the
    # evidence for the favoured one is only as strong as its closest rival
    gap = float(np.sort(a)[1] - a.min()) if len(a) > 1 else math.inf
    # Burnham and Anderson's reading of an AICc difference: < 2 none, 2-6 positive,
    # 6-10 strong, > 10 very strong
    strength = (
        "not distinguishable"
        if gap < 2
        else "positive"
        if gap < 6
        else "strong"
        if gap < 10
        else "very strong"
    )
    agree = _holdouts_agree(scores, best)
    cmp = Comparison(scores, scores[best].form, strength, float(weights[best]), agree)
    cmp.verdict = _verdict(cmp, gap)
    return cmp


# The holdouts vote separately from the criterion: AICc scores the fit inside
# the data, the holdouts the extrapolation a user makes. A form that wins the
# first and loses the second fits the sweep but does not predict beyond it.
def _holdouts_agree(scores: list[FormScore], best: int) -> bool | None:
    votes = []
    for attr in ("holdout_mean", "rolling_mean"):
        vals = [getattr(s, attr) for s in scores]
        if all(v is not None for v in vals):
            votes.append(int(np.argmin(vals)) == best)
    return None if not votes else all(votes)


def _verdict(cmp: Comparison, gap: float) -> str:
    who = resolve_form(cmp.favoured).title
    if cmp.strength == "not distinguishable":
        text = f"the criterion does not separate the forms (delta AICc {gap:.1f})"
    else:
        text = (
            f"the data favour {who}: {cmp.strength} evidence "
            f"(delta AICc {gap:.1f}, Akaike weight {cmp.weight:.3f})"
        )
    if cmp.holdouts_agree is True:
        text += "; the holdouts agree"
    elif cmp.holdouts_agree is False:
        text += "; but the holdouts disagree, so extrapolation does not settle it"
    return text
