"""The dense (Chinchilla) law, Hoffmann et al. 2022:

    L(N, D) = A N^-alpha + B D^-beta + E

It ignores S: a sweep fitted with it counts its distinct runs by (N, D).
"""

from __future__ import annotations

import numpy as np

from sparsescale.laws.forms.base import AMPLITUDE, DECAY, Design, LawForm

NAMES = ("A", "alpha", "B", "beta", "E")
RANGES = {"A": AMPLITUDE, "alpha": DECAY, "B": AMPLITUDE, "beta": DECAY, "E": AMPLITUDE}


def predict(k, S, N, D, f=None):
    # + 0 S: the prediction broadcasts over S like the other forms' do
    return k["A"] * N ** -k["alpha"] + k["B"] * D ** -k["beta"] + k["E"] + 0.0 * S


def dense_view(k):
    # planning speaks the sparse law's data term (aD / D)^beta: B D^-beta = (B^(1/beta) / D)^beta
    return {
        "A": k["A"],
        "alpha": k["alpha"],
        "aD": k["B"] ** (1.0 / k["beta"]),
        "beta": k["beta"],
        "E": k["E"],
    }


# -- the fitter's view: pred = a0 N'^-alpha + a1 D'^-beta + a2 -------------------
def basis(x: Design, E: np.ndarray) -> np.ndarray:
    G, n = E.shape[0], x.logN.shape[0]
    al, be = E[:, 0:1], E[:, 1:2]
    return np.stack([np.exp(-al * x.logN), np.exp(-be * x.logD), np.ones((G, n))], axis=2)


def exponent_jacobian(x: Design, terms: np.ndarray, out: np.ndarray) -> None:
    np.multiply(terms[:, :, 0], -x.logN, out=out[:, :, 0])
    np.multiply(terms[:, :, 1], -x.logD, out=out[:, :, 1])


# Units. A N^-alpha = A sN^-alpha N'^-alpha, so A = a0 sN^alpha; likewise B = a1 sD^beta; E = a2.
def to_coefficients(a, e, sN, sD, base=None):
    alpha, beta = e
    return {"A": a[0] * sN**alpha, "alpha": alpha, "B": a[1] * sD**beta, "beta": beta, "E": a[2]}


def from_coefficients(k, sN, sD):
    return [k["A"] / sN ** k["alpha"], k["B"] / sD ** k["beta"], k["E"]], [k["alpha"], k["beta"]]


DENSE = LawForm(
    name="dense",
    title="the dense law",
    coefficients=NAMES,
    free=NAMES,
    amplitudes=("A", "B", "E"),
    exponents=("alpha", "beta"),
    exponent_bounds=((1e-3, 2.0), (1e-3, 3.0)),
    ranges=RANGES,
    formula="L = A*N**(-alpha) + B*D**(-beta) + E",
    predict=predict,
    dense_view=dense_view,
    basis=basis,
    exponent_jacobian=exponent_jacobian,
    to_coefficients=to_coefficients,
    from_coefficients=from_coefficients,
    uses_sparsity=False,
)
