"""The paper's sparse law (arXiv 2309.08520, eq. 1):

    L(S, N, D) = (aS (1-S)^bS + cS) N^-bN + (aD / D)^bD + c

S is the final sparsity of the pruned layers, N their NON-ZERO parameters, D
the training data in the law's unit. At S = 0 it is the Chinchilla law with
A = aS + cS; (1-S)^bS shrinks the N-term as sparsity grows, down to cS at S -> 1.
"""

from __future__ import annotations

import numpy as np

from sparsescale.laws.forms.base import AMPLITUDE, DECAY, SHAPE, Design, LawForm

NAMES = ("aS", "bS", "cS", "bN", "aD", "bD", "c")


def predict(k, S, N, D, f=None):
    return (
        (k["aS"] * (1.0 - S) ** k["bS"] + k["cS"]) * N ** -k["bN"]
        + (k["aD"] / D) ** k["bD"]
        + k["c"]
    )


def dense_view(k):
    # at S = 0 the N-term amplitude is aS + cS; (aD/D)^bD is already Chinchilla's B D^-beta with aD
    # = B^(1/beta)
    return {"A": k["aS"] + k["cS"], "alpha": k["bN"], "aD": k["aD"], "beta": k["bD"], "E": k["c"]}


def sparsity_factor(k, S, f=None):
    """F(S) = (aS (1-S)^bS + cS) / (aS + cS): how much the N-term shrinks at S."""
    return (k["aS"] * (1.0 - S) ** k["bS"] + k["cS"]) / (k["aS"] + k["cS"])


def sparsity_factor_slope(k, S, f=None):
    """-dF/dS = aS bS (1-S)^(bS-1) / (aS + cS)."""
    return k["aS"] * k["bS"] * (1.0 - S) ** (k["bS"] - 1.0) / (k["aS"] + k["cS"])


# -- the fitter's view ---------------------------------------------------------
# Four amplitudes over three exponents (bS, bN, bD):
#   pred = a0 (1-S)^bS N'^-bN + a1 N'^-bN + a2 D'^-bD + a3,   N' = N/sN, D' = D/sD.
def basis(x: Design, E: np.ndarray) -> np.ndarray:
    G, n = E.shape[0], x.logN.shape[0]
    bS, bN, bD = E[:, 0:1], E[:, 1:2], E[:, 2:3]
    nterm = np.exp(-bN * x.logN)
    return np.stack(
        [np.exp(bS * x.log1mS) * nterm, nterm, np.exp(-bD * x.logD), np.ones((G, n))], axis=2
    )


def exponent_jacobian(x: Design, terms: np.ndarray, out: np.ndarray) -> None:
    # d/d bS of a0 (1-S)^bS N'^-bN is the term times log(1-S); bN acts on both
    # N-terms (times -log N'); bD on the data term (times -log D')
    np.multiply(terms[:, :, 0], x.log1mS, out=out[:, :, 0])
    np.multiply(terms[:, :, 0] + terms[:, :, 1], -x.logN, out=out[:, :, 1])
    np.multiply(terms[:, :, 2], -x.logD, out=out[:, :, 2])


# Units. aS N^-bN = aS sN^-bN N'^-bN, so a0 = aS sN^-bN and aS = a0 sN^bN (cS the
# same). (aD / D)^bD = (aD / sD)^bD D'^-bD, so a2 = (aD / sD)^bD and
# aD = a2^(1/bD) sD. The floor c has the loss's unit: a3 = c.
def to_coefficients(a, e, sN, sD, base=None):
    bS, bN, bD = e
    return {
        "aS": a[0] * sN**bN,
        "bS": bS,
        "cS": a[1] * sN**bN,
        "bN": bN,
        "aD": a[2] ** (1.0 / bD) * sD,
        "bD": bD,
        "c": a[3],
    }


def from_coefficients(k, sN, sD):
    bN, bD = k["bN"], k["bD"]
    return [k["aS"] / sN**bN, k["cS"] / sN**bN, (k["aD"] / sD) ** bD, k["c"]], [k["bS"], bN, bD]


SPARSE = LawForm(
    name="sparse",
    title="the paper's sparse law",
    coefficients=NAMES,
    free=NAMES,
    amplitudes=("aS", "cS", "aD", "c"),
    exponents=("bS", "bN", "bD"),
    exponent_bounds=((0.0, 4.0), (1e-3, 2.0), (1e-3, 3.0)),
    ranges={
        "aS": AMPLITUDE,
        "bS": SHAPE,
        "cS": AMPLITUDE,
        "bN": DECAY,
        "aD": AMPLITUDE,
        "bD": DECAY,
        "c": AMPLITUDE,
    },
    formula="L = (aS*(1-S)**bS + cS) * N**(-bN) + (aD/D)**bD + c",
    predict=predict,
    dense_view=dense_view,
    basis=basis,
    exponent_jacobian=exponent_jacobian,
    to_coefficients=to_coefficients,
    from_coefficients=from_coefficients,
    sparsity_factor=sparsity_factor,
    sparsity_factor_slope=sparsity_factor_slope,
)
