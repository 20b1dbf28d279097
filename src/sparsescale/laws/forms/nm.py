"""The n:m refit: the sparse law with its dense part fixed from a base law.

    L = (aS (1-S)^bS + cS) N^-bN + (aD / D)^bD + c,   bN, aD, bD, c from the base

Only aS, bS, cS are free: a structured pattern (n:m keeps n weights of every m
along the input dimension) changes how sparsity shrinks the N-term, not how the
dense model scales, so the base law's dense scaling is kept (laws.nm_patterns
fits whole families of patterns this way).
"""

from __future__ import annotations

import numpy as np

from sparsescale.laws.forms import sparse
from sparsescale.laws.forms.base import Design, LawForm, Prepared


def prepare(S, N, D, base, f) -> Prepared:
    # the base's data term and floor hold no free parameter: they are the offset
    # the linear amplitudes are fitted on top of (in raw units, scale-free)
    k = base.coefficients
    return Prepared(S, N, D, (k["aD"] / D) ** k["bD"] + k["c"], {"bN": k["bN"]})


# -- the fitter's view: pred = a0 (1-S)^bS N'^-bN + a1 N'^-bN + offset, bN fixed --
def basis(x: Design, E: np.ndarray) -> np.ndarray:
    G, n = E.shape[0], x.logN.shape[0]
    bS = E[:, 0:1]
    nterm = np.broadcast_to(np.exp(-x.fixed["bN"] * x.logN), (G, n))
    return np.stack([np.exp(bS * x.log1mS) * nterm, nterm], axis=2)


def exponent_jacobian(x: Design, terms: np.ndarray, out: np.ndarray) -> None:
    np.multiply(terms[:, :, 0], x.log1mS, out=out[:, :, 0])


# Units as for the sparse form (aS = a0 sN^bN, cS = a1 sN^bN), with bN the base's.
def to_coefficients(a, e, sN, sD, base):
    k = base.coefficients
    return {
        "aS": a[0] * sN ** k["bN"],
        "bS": e[0],
        "cS": a[1] * sN ** k["bN"],
        "bN": k["bN"],
        "aD": k["aD"],
        "bD": k["bD"],
        "c": k["c"],
    }


def from_coefficients(k, sN, sD):
    return [k["aS"] / sN ** k["bN"], k["cS"] / sN ** k["bN"]], [k["bS"]]


NM = LawForm(
    name="nm",
    title="the n:m refit of the sparse law",
    coefficients=sparse.NAMES,
    free=("aS", "bS", "cS"),
    amplitudes=("aS", "cS"),
    exponents=("bS",),
    exponent_bounds=((0.0, 4.0),),
    ranges=sparse.SPARSE.ranges,
    formula="L = (aS*(1-S)**bS + cS) * N**(-bN) + (aD/D)**bD + c  (bN, aD, bD, c fixed from a "
    "dense base)",
    predict=sparse.predict,
    dense_view=sparse.dense_view,
    basis=basis,
    exponent_jacobian=exponent_jacobian,
    to_coefficients=to_coefficients,
    from_coefficients=from_coefficients,
    sparsity_factor=sparse.sparsity_factor,
    sparsity_factor_slope=sparse.sparsity_factor_slope,
    prepare=prepare,
    base_forms=("sparse", "nm"),
)
